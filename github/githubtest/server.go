// Package githubtest is an in-process fake of the parts of the GitHub REST
// API that ghbridge uses, for tests and demos.
//
// A Server checks App JWTs (RS256, iss, iat/exp window) against a fixed
// test key, issues installation tokens with an expiry and counts the
// exchanges, enforces what each installation may see and do, records
// workflow dispatches, repository dispatches, deployments, deployment
// statuses and check runs, and serves workflow runs that a test moves
// through their states. It answers like GitHub (status codes, error
// bodies, rate-limit headers), can inject faults per route, and can send
// signed webhook deliveries to a URL.
//
// The API lives under "/api/v3/", as on GitHub Enterprise Server, so the
// base URL handling clients need for GHES is exercised too.
//
// Hosts use it in their own tests, started with New(t), and in demos
// (NewServer).
package githubtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ghbridge/ghbridge/credentials"
)

// apiPrefix is the path under which the fake serves the API.
const apiPrefix = "/api/v3"

// Server is a fake GitHub. Create it with NewServer and Close it when done.
// All methods are safe for concurrent use. Hosts use it in their own tests
// (New) and demos (NewServer): the Add and Set methods set up and move what
// a test needs, playing GitHub's or a person's part; the methods that return
// what the fake recorded or holds (Dispatches, Runs, Deployments, CheckRuns,
// Deliveries, Requests, ...) are for the test's assertions.
type Server struct {
	// URL is the API base URL, ending in "/api/v3/": what hosts pass to
	// github.WithBaseURL (AppConfig carries it too).
	URL string
	// AppID and ClientID identify the fake's only App; ClientSecret is
	// its OAuth client secret.
	AppID        int64
	ClientID     string
	ClientSecret string
	// AppSlug is the App's URL name.
	AppSlug string

	srv    *httptest.Server
	key    *rsa.PrivateKey
	keyPEM string

	tokenLifetime time.Duration
	runDelay      time.Duration
	cancelDelay   time.Duration
	leanRuns      bool // see WithLeanRuns
	runDetails    bool // accept return_run_details
	runDetailsErr int  // status answered to return_run_details when unsupported
	now           func() time.Time

	bg            sync.WaitGroup // background redeliveries
	mu            sync.Mutex
	installations map[int64]*installation
	tokens        map[string]*issuedToken
	staticTokens  map[string]bool
	exchanges     map[int64]int
	repos         map[string]*repo // by lower-case "owner/name"
	runs          map[int64]*run
	dispatches    []WorkflowDispatch
	repoEvents    []RepositoryDispatch
	deployments   map[int64]*Deployment
	checkRuns     map[int64]*CheckRun
	requests      map[string]int
	log           []RecordedRequest
	users         map[string][]int64 // login -> installations the user can see
	oauthCodes    map[string]oauthCode
	userTokens    map[string]string // user token -> login
	faults        []*faultState
	hook          webhookConfig
	appEvents     []string // nil: defaultAppEvents
	repoHooks     map[int64]*repoHook
	rateUsed      map[string]int // calls per credential, for x-ratelimit-*
	deliveries    []*Delivery
	nextID        int64
	gitObjects    *gitState
	api, web      handlers             // this server's handler of each route
	contract      ContractReporter     // see WithContract
	gates         map[int64]*gates     // what waiting runs wait for
	userStatic    map[string]string    // reviewer token -> login
	comments      map[string][]Comment // "owner/repo#number" -> comments
}

// Option configures a Server. Hosts pass options to New or NewServer.
type Option func(*Server)

// WithTokenLifetime sets how long installation tokens live (default 1h;
// zero or less keeps it). Hosts test their token refresh with it.
func WithTokenLifetime(d time.Duration) Option {
	return func(s *Server) {
		if d > 0 {
			s.tokenLifetime = d
		}
	}
}

// WithClock sets the fake's clock, for token expiry and timestamps
// (default time.Now). A host's test with a fake clock gives the fake the
// same one.
func WithClock(now func() time.Time) Option {
	return func(s *Server) {
		if now != nil {
			s.now = now
		}
	}
}

// WithRunDelay makes a dispatched run invisible to the API for d, as on
// GitHub where a run shows up a few seconds after its dispatch. Hosts
// test their handling of a run that is not listed yet with it.
func WithRunDelay(d time.Duration) Option { return func(s *Server) { s.runDelay = d } }

// WithoutRunDetails makes the fake behave like GitHub Enterprise Server
// 3.20 and older: a workflow dispatch carrying return_run_details is
// rejected with status (400 or 422; 0 means 422). Hosts that support
// GitHub Enterprise Server test with it.
func WithoutRunDetails(status int) Option {
	if status == 0 {
		status = http.StatusUnprocessableEntity
	}
	return func(s *Server) { s.runDetails, s.runDetailsErr = false, status }
}

// WithLeanRuns makes the run lists (GET .../actions/runs and
// .../actions/workflows/{workflow_id}/runs) carry a lean repository and
// head_repository in each run: id, node_id, name, full_name, private,
// the owner's login, id and type, and the URLs html_url and url, where
// GitHub sends a whole minimal-repository (about 4 KB each, every run).
// Hosts whose tests page through thousands of runs, and read nothing
// else of a run's repository, use it to spend a fifth of the bytes and
// decoding. Lean runs are not GitHub's shape: WithContract reports them.
func WithLeanRuns() Option { return func(s *Server) { s.leanRuns = true } }

// WithAppID sets the App id (default 4242), for a host's test that needs
// a given one; most read Server.AppID instead.
func WithAppID(id int64) Option { return func(s *Server) { s.AppID = id } }

// NewServer starts a fake GitHub on a loopback port. Hosts call it outside
// tests (demos, load tests); tests usually call New.
func NewServer(opts ...Option) *Server {
	key := appKey()
	s := &Server{
		AppID:         4242,
		ClientID:      "Iv1.fakeclientid",
		ClientSecret:  "fake-client-secret",
		AppSlug:       "ghbridge-test",
		key:           key,
		tokenLifetime: time.Hour,
		runDetails:    true,
		now:           time.Now,
		installations: map[int64]*installation{},
		tokens:        map[string]*issuedToken{},
		staticTokens:  map[string]bool{},
		exchanges:     map[int64]int{},
		repos:         map[string]*repo{},
		runs:          map[int64]*run{},
		deployments:   map[int64]*Deployment{},
		checkRuns:     map[int64]*CheckRun{},
		requests:      map[string]int{},
		nextID:        1000,
	}
	s.keyPEM = appKeyPKCS1PEM
	for _, o := range opts {
		o(s)
	}
	s.api, s.web = handlers{}, handlers{}
	s.routes(s.api)
	s.webRoutes(s.web)
	s.srv = httptest.NewServer(s.record(sharedMux()))
	s.URL = s.srv.URL + apiPrefix + "/"
	return s
}

// Close waits for background redeliveries and shuts the server down.
func (s *Server) Close() {
	s.bg.Wait()
	s.srv.Close()
}

// Client returns an HTTP client for the server (plain, no retries). Tests
// use it for requests of their own to the fake; any HTTP client works.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// PrivateKeyPEM returns the App's private key, PKCS#1 PEM. Hosts that load
// the App key from text, as a server reads it from its configuration, use
// it; others use AppConfig.
func (s *Server) PrivateKeyPEM() string { return s.keyPEM }

// PrivateKey returns the App's private key. Tests that sign a JWT of their
// own use it.
func (s *Server) PrivateKey() *rsa.PrivateKey { return s.key }

// AppConfig returns a credentials.AppConfig for the fake's App. Hosts
// configure their App with it.
func (s *Server) AppConfig() credentials.AppConfig {
	return credentials.AppConfig{
		AppID:        s.AppID,
		ClientID:     s.ClientID,
		ClientSecret: credentials.NewSecret(s.ClientSecret),
		Slug:         s.AppSlug,
		PrivateKey:   credentials.NewSecret(s.keyPEM),
		BaseURL:      s.URL,
	}
}

// Now returns the fake's current time. Tests with WithClock read the fake's
// time with it.
func (s *Server) Now() time.Time { return s.now() }

func (s *Server) id() int64 {
	s.nextID++
	return s.nextID
}

// RequestCount returns how many requests reached route, a pattern such as
// "POST /repos/{owner}/{repo}/dispatches", as in Fault.Route. Tests count
// with it the calls a step made.
func (s *Server) RequestCount(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[route]
}

// RecordedRequest is one request the fake received, as Requests lists it.
type RecordedRequest struct {
	Method string
	// Path is the request path under the API prefix, e.g.
	// "/repos/acme/deployer/actions/workflows/deploy.yml/dispatches".
	Path string
	// Scheme is the Authorization scheme in lower case ("bearer",
	// "token", "basic"), "" without one. The credential is not kept.
	Scheme string
}

// Requests returns every request received so far, oldest first, routed or
// not: tests assert with it that nothing was sent to GitHub.
func (s *Server) Requests() []RecordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

func (s *Server) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		s.mu.Lock()
		s.log = append(s.log, RecordedRequest{Method: r.Method, Path: strings.TrimPrefix(r.URL.Path, apiPrefix), Scheme: strings.ToLower(scheme)})
		s.mu.Unlock()
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), serverKey{}, s)))
	})
}

// ---- errors, as GitHub writes them ----

const docsURL = "https://docs.github.com/rest"

// apiError is GitHub's error body.
type apiError struct {
	Message          string            `json:"message"`
	Errors           []json.RawMessage `json:"errors,omitempty"`
	DocumentationURL string            `json:"documentation_url"`
	Status           string            `json:"status"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apiError{Message: msg, DocumentationURL: docsURL, Status: strconv.Itoa(status)})
}

// fieldError is one entry of the errors array of a 422 Validation Failed.
type fieldError struct {
	Resource string `json:"resource,omitempty"`
	Field    string `json:"field,omitempty"`
	Code     string `json:"code"`
	Message  string `json:"message,omitempty"`
}

// validationFailed answers as GitHub does when a request is well formed
// but invalid: "Validation Failed" with the details in errors.
func validationFailed(w http.ResponseWriter, docs string, errs ...fieldError) {
	raw := make([]json.RawMessage, len(errs))
	for i, e := range errs {
		raw[i], _ = json.Marshal(e)
	}
	writeJSON(w, http.StatusUnprocessableEntity, apiError{Message: "Validation Failed", Errors: raw, DocumentationURL: docs, Status: "422"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

func notFound(w http.ResponseWriter) { writeError(w, http.StatusNotFound, "Not Found") }

// ---- routing, auth and faults ----

type authKind int

const (
	authNone  authKind = iota
	authApp            // App JWT
	authToken          // installation or static token
)

// caller is who made a request.
type caller struct {
	installation *installation // nil for static tokens and App JWTs
	static       bool
	login        string // the user of a reviewer token
}

type handler func(w http.ResponseWriter, r *http.Request, c caller)

func (s *Server) handle(mux router, pattern string, auth authKind, h handler) {
	mux.HandleFunc(pattern, s.checked(pattern, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests[pattern]++
		f := s.takeFault(pattern)
		s.mu.Unlock()
		w.Header().Set("X-GitHub-Request-Id", randomHex(8))
		if _, ok := apiVersion(w, r); !ok {
			return
		}
		if f != nil && !f.AfterHandling {
			if f.apply(w, r) {
				return
			}
		}
		c, ok := s.authenticate(w, r, auth)
		if !ok {
			return
		}
		if auth != authNone {
			s.rateLimitHeaders(w, c, auth)
		}
		if f != nil && f.AfterHandling {
			rec := httptest.NewRecorder()
			h(rec, r, c)
			if !f.apply(w, r) {
				copyRecorded(w, rec)
			}
			return
		}
		h(w, r, c)
	}))
}

func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, kind authKind) (caller, bool) {
	if kind == authNone {
		return caller{}, true
	}
	authz := r.Header.Get("Authorization")
	scheme, tok, _ := strings.Cut(authz, " ")
	if tok == "" || (!strings.EqualFold(scheme, "bearer") && !strings.EqualFold(scheme, "token")) {
		writeError(w, http.StatusUnauthorized, "Requires authentication")
		return caller{}, false
	}
	if kind == authApp {
		if msg := s.verifyJWT(tok); msg != "" {
			writeError(w, http.StatusUnauthorized, msg)
			return caller{}, false
		}
		return caller{}, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.staticTokens[tok] {
		return caller{static: true, login: s.userStatic[tok]}, true
	}
	it := s.tokens[tok]
	if it == nil || !s.now().Before(it.expiresAt) || it.revoked {
		writeError(w, http.StatusUnauthorized, "Bad credentials")
		return caller{}, false
	}
	in := s.installations[it.installationID]
	if in == nil || in.deleted {
		writeError(w, http.StatusUnauthorized, "Bad credentials")
		return caller{}, false
	}
	if in.Suspended {
		writeError(w, http.StatusForbidden, "This installation has been suspended")
		return caller{}, false
	}
	return caller{installation: in}, true
}

// Fault is an injected failure for requests to one route. Hosts inject
// faults (InjectFault) to test how they handle GitHub's failures: errors,
// rate limits, timeouts, lost answers.
type Fault struct {
	// Route is the pattern to affect, e.g.
	// "POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches".
	Route string
	// Status, when set, is answered instead of the route's own answer,
	// with a GitHub-style error body.
	Status int
	// SecondaryRateLimit answers 403 with GitHub's secondary-rate-limit
	// body, and RetryAfter (when set) as Retry-After.
	SecondaryRateLimit bool
	// PrimaryRateLimit answers 403 with x-ratelimit-remaining: 0 and an
	// x-ratelimit-reset RetryAfter from now.
	PrimaryRateLimit bool
	// RetryAfter sets Retry-After (secondary) or the reset (primary).
	RetryAfter time.Duration
	// Delay waits before answering (after handling, with AfterHandling).
	Delay time.Duration
	// AfterHandling lets the request take effect (a run is created, a
	// deployment recorded) before the fault answers: the ambiguous
	// failures a client cannot tell from a lost request.
	AfterHandling bool
	// ResetConnection closes the connection without an answer.
	ResetConnection bool
	// Times is how many requests the fault affects: 0 means 1, negative
	// means every request until ClearFaults.
	Times int
}

type faultState struct {
	Fault
	left int
	now  func() time.Time
}

// InjectFault adds a fault. Faults for a route apply in the order added.
func (s *Server) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	left := f.Times
	if left == 0 {
		left = 1
	}
	s.faults = append(s.faults, &faultState{Fault: f, left: left, now: s.now})
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

func (s *Server) takeFault(route string) *faultState {
	for i, f := range s.faults {
		if f.Route != route {
			continue
		}
		if f.left > 0 {
			f.left--
			if f.left == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		return f
	}
	return nil
}

// apply writes the fault's answer; false means the request should proceed
// (a pure delay).
func (f *faultState) apply(w http.ResponseWriter, r *http.Request) bool {
	if f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
			return true
		}
	}
	switch {
	case f.ResetConnection:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				if tc, ok := conn.(interface{ SetLinger(int) error }); ok {
					_ = tc.SetLinger(0)
				}
				_ = conn.Close()
			}
		}
		return true
	case f.SecondaryRateLimit:
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(f.RetryAfter.Round(time.Second)/time.Second)))
		}
		writeJSON(w, http.StatusForbidden, apiError{
			Message:          "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.",
			DocumentationURL: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
			Status:           "403",
		})
		return true
	case f.PrimaryRateLimit:
		reset := f.now().Add(f.RetryAfter)
		w.Header().Set("X-RateLimit-Limit", "5000")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Used", "5000")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		w.Header().Set("X-RateLimit-Resource", "core")
		writeJSON(w, http.StatusForbidden, apiError{
			Message:          "API rate limit exceeded for installation ID 1.",
			DocumentationURL: "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting",
			Status:           "403",
		})
		return true
	case f.Status != 0:
		writeError(w, f.Status, http.StatusText(f.Status))
		return true
	}
	return false
}

// ---- small helpers ----

func copyRecorded(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "Problems reading the request body")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON")
		return false
	}
	return true
}

func (s *Server) ts() string { return s.now().UTC().Format(time.RFC3339) }

func (s *Server) webURL(path string) string {
	return strings.TrimSuffix(s.srv.URL, "/") + "/" + strings.TrimPrefix(path, "/")
}

func (s *Server) apiURL(format string, args ...any) string {
	return strings.TrimSuffix(s.URL, "/") + fmt.Sprintf(format, args...)
}

// rateLimitHeaders sets GitHub's x-ratelimit-* headers: each credential
// (installation, App, static token) has its own budget of 5000 calls an
// hour, used by every authenticated call.
func (s *Server) rateLimitHeaders(w http.ResponseWriter, c caller, auth authKind) {
	key := "app"
	switch {
	case c.installation != nil:
		key = "installation:" + strconv.FormatInt(c.installation.ID, 10)
	case c.static:
		key = "token"
	case auth == authToken:
		key = "user"
	}
	s.mu.Lock()
	if s.rateUsed == nil {
		s.rateUsed = map[string]int{}
	}
	s.rateUsed[key]++
	used := s.rateUsed[key]
	reset := s.now().Truncate(time.Hour).Add(time.Hour).Unix()
	s.mu.Unlock()
	h := w.Header()
	h.Set("X-RateLimit-Limit", "5000")
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(5000-used, 0)))
	h.Set("X-RateLimit-Used", strconv.Itoa(used))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
	h.Set("X-RateLimit-Resource", "core")
}
