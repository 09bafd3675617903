package githubtest

import (
	"cmp"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	jwt "github.com/golang-jwt/jwt/v4"
)

// DefaultPermissions are granted to an installation added without any.
var defaultPermissions = map[string]string{
	"actions":       "write",
	"checks":        "write",
	"contents":      "write",
	"deployments":   "write",
	"metadata":      "read",
	"pull_requests": "write",
}

// DefaultPermissions returns the permissions an installation gets when
// AddInstallation is given none: write on actions, checks, contents,
// deployments and pull_requests, read on metadata. Hosts start from it to
// test a missing permission.
func DefaultPermissions() map[string]string { return maps.Clone(defaultPermissions) }

// AppInstallation is an App installation in the fake. Hosts add one
// (AddInstallation) for each account their tests install the App on.
type AppInstallation struct {
	// ID is assigned when zero.
	ID int64
	// Account is the user or organization login.
	Account string
	// AccountType is "Organization" (default) or "User".
	AccountType string
	// AllRepositories grants every repository of Account; otherwise only
	// Repositories ("owner/name").
	AllRepositories bool
	Repositories    []string
	// Permissions default to DefaultPermissions.
	Permissions map[string]string
	Suspended   bool
}

type installation struct {
	AppInstallation
	deleted   bool
	createdAt time.Time
}

type issuedToken struct {
	installationID int64
	expiresAt      time.Time
	revoked        bool
}

func (in *installation) grants(owner, name string) bool {
	if in.deleted {
		return false
	}
	if in.AllRepositories {
		return strings.EqualFold(in.Account, owner)
	}
	full := owner + "/" + name
	return slices.ContainsFunc(in.Repositories, func(r string) bool { return strings.EqualFold(r, full) })
}

func (in *installation) can(perm, level string) bool {
	have := in.Permissions[perm]
	switch level {
	case "read":
		return have == "read" || have == "write" || have == "admin"
	case "write":
		return have == "write" || have == "admin"
	}
	return have == level
}

// AddInstallation adds (or replaces, by ID) an installation and returns it
// with its ID and defaults filled in.
func (s *Server) AddInstallation(in AppInstallation) AppInstallation {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.ID == 0 {
		in.ID = s.id()
	}
	if in.AccountType == "" {
		in.AccountType = "Organization"
	}
	if in.Permissions == nil {
		in.Permissions = DefaultPermissions()
	}
	in.Repositories = slices.Clone(in.Repositories)
	in.Permissions = maps.Clone(in.Permissions)
	s.installations[in.ID] = &installation{AppInstallation: in, createdAt: s.now()}
	return in
}

// SetSuspended suspends or unsuspends an installation.
func (s *Server) SetSuspended(id int64, suspended bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in := s.installations[id]; in != nil {
		in.Suspended = suspended
	}
}

// SetPermissions replaces an installation's permissions. Tokens issued
// afterwards carry them; like GitHub, the fake checks them per request.
func (s *Server) SetPermissions(id int64, perms map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in := s.installations[id]; in != nil {
		in.Permissions = maps.Clone(perms)
	}
}

// DeleteInstallation uninstalls the App from the account: its tokens stop
// working and token exchanges answer 404.
func (s *Server) DeleteInstallation(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in := s.installations[id]; in != nil {
		in.deleted = true
	}
}

// TokenExchanges returns how many installation tokens were issued for the
// installation. Tests check with it that tokens are cached.
func (s *Server) TokenExchanges(installationID int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exchanges[installationID]
}

// TotalTokenExchanges returns how many installation tokens were issued.
// Tests check with it that tokens are cached.
func (s *Server) TotalTokenExchanges() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.exchanges {
		n += v
	}
	return n
}

// IssuedTokens returns every installation token value issued so far, for
// tests that check tokens never leak into logs.
func (s *Server) IssuedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.tokens))
}

// AddStaticToken registers a token (a personal access token, say) that may
// act on every repository with every permission.
func (s *Server) AddStaticToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.staticTokens[token] = true
}

// verifyJWT checks an App JWT the way GitHub does and returns GitHub's
// message when it is not acceptable.
func (s *Server) verifyJWT(raw string) string {
	parser := jwt.NewParser(jwt.WithoutClaimsValidation(), jwt.WithValidMethods([]string{"RS256"}))
	var claims jwt.RegisteredClaims
	_, err := parser.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return &s.key.PublicKey, nil })
	if err != nil {
		return "A JSON web token could not be decoded"
	}
	now := s.now()
	switch {
	case claims.Issuer != strconv.FormatInt(s.AppID, 10) && claims.Issuer != s.ClientID:
		return "Integration not found"
	case claims.IssuedAt == nil:
		return "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
	case claims.ExpiresAt == nil:
		return "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
	case claims.IssuedAt.After(now.Add(30 * time.Second)):
		return "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
	case !claims.ExpiresAt.After(now):
		return "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
	case claims.ExpiresAt.After(now.Add(10 * time.Minute)):
		return "'Expiration time' claim ('exp') is too far in the future"
	case claims.ExpiresAt.Sub(claims.IssuedAt.Time) > 11*time.Minute:
		return "'Expiration time' claim ('exp') is too far in the future"
	}
	return ""
}

func (s *Server) installationJSON(in *installation) map[string]any {
	sel := "selected"
	if in.AllRepositories {
		sel = "all"
	}
	m := map[string]any{
		"id":                   in.ID,
		"app_id":               s.AppID,
		"app_slug":             s.AppSlug,
		"target_type":          cmp.Or(in.AccountType, "Organization"),
		"target_id":            accountID(in.Account),
		"account":              s.accountJSON(in.Account, in.AccountType),
		"single_file_name":     nil,
		"suspended_at":         nil,
		"suspended_by":         nil,
		"repository_selection": sel,
		"permissions":          in.Permissions,
		"events":               []string{"workflow_run", "workflow_job", "deployment_status", "check_run", "pull_request"},
		"created_at":           in.createdAt.UTC().Format(time.RFC3339),
		"updated_at":           s.ts(),
		"html_url":             s.webURL("settings/installations/" + strconv.FormatInt(in.ID, 10)),
		"access_tokens_url":    s.apiURL("/app/installations/%d/access_tokens", in.ID),
		"repositories_url":     s.apiURL("/installation/repositories"),
	}
	if in.Suspended {
		m["suspended_at"] = s.ts()
		m["suspended_by"] = s.accountJSON(in.Account, "User")
	}
	return m
}

func accountID(login string) int64 {
	var h int64 = 7
	for _, c := range strings.ToLower(login) {
		h = h*31 + int64(c)
	}
	if h < 0 {
		h = -h
	}
	return h%1_000_000 + 1
}

// appRoutes serves the App's endpoints (App JWT) and those an
// installation token calls about itself.
func (s *Server) appRoutes(mux router) {
	s.handle(mux, "GET /app", authApp, s.getApp)
	s.handle(mux, "GET /app/installations", authApp, s.listInstallations)
	s.handle(mux, "GET /app/installations/{installation_id}", authApp, s.getInstallation)
	s.handle(mux, "GET /repos/{owner}/{repo}/installation", authApp, s.getRepoInstallation)
	s.handle(mux, "GET /app/hook/config", authApp, s.getAppHookConfig)
	s.handle(mux, "DELETE /app/installations/{installation_id}", authApp, s.deleteInstallation)
	s.handle(mux, "POST /app/installations/{installation_id}/access_tokens", authApp, s.createInstallationToken)
	s.handle(mux, "GET /installation/repositories", authToken, s.listInstallationRepos)
	s.handle(mux, "DELETE /installation/token", authToken, s.revokeInstallationToken)
}

func (s *Server) getApp(w http.ResponseWriter, _ *http.Request, _ caller) {
	s.mu.Lock()
	app := s.appJSON()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, app)
}

func (s *Server) listInstallations(w http.ResponseWriter, _ *http.Request, _ caller) {
	s.mu.Lock()
	out := []map[string]any{}
	for _, id := range slices.Sorted(maps.Keys(s.installations)) {
		if in := s.installations[id]; !in.deleted {
			out = append(out, s.installationJSON(in))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getInstallation(w http.ResponseWriter, r *http.Request, _ caller) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.lookupInstallation(r.PathValue("installation_id"))
	if in == nil {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.installationJSON(in))
}

func (s *Server) getRepoInstallation(w http.ResponseWriter, r *http.Request, _ caller) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repos[strings.ToLower(r.PathValue("owner")+"/"+r.PathValue("repo"))]
	if rp == nil {
		notFound(w)
		return
	}
	in := s.installationFor(rp)
	if in == nil {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.installationJSON(in))
}

func (s *Server) getAppHookConfig(w http.ResponseWriter, _ *http.Request, _ caller) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := map[string]any{"content_type": "json", "insecure_ssl": "0", "url": s.hook.url}
	if s.hook.secret != "" {
		cfg["secret"] = "********"
	}
	writeJSON(w, http.StatusOK, cfg)
}

func (s *Server) deleteInstallation(w http.ResponseWriter, r *http.Request, _ caller) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.lookupInstallation(r.PathValue("installation_id"))
	if in == nil {
		notFound(w)
		return
	}
	in.deleted = true
	if r.Header.Get("X-GitHub-Api-Version") >= apiVersion20260310 {
		// Since 2026-03-10 GitHub uninstalls in the background.
		w.WriteHeader(http.StatusAccepted)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// createInstallationToken is the token exchange: an App JWT in, an
// installation token out.
func (s *Server) createInstallationToken(w http.ResponseWriter, r *http.Request, _ caller) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.lookupInstallation(r.PathValue("installation_id"))
	switch {
	case in == nil:
		notFound(w)
		return
	case in.Suspended:
		writeError(w, http.StatusForbidden, "This installation has been suspended")
		return
	}
	tok := "ghs_" + randomHex(18)
	exp := s.now().Add(s.tokenLifetime)
	s.tokens[tok] = &issuedToken{installationID: in.ID, expiresAt: exp}
	s.exchanges[in.ID]++
	sel := "selected"
	if in.AllRepositories {
		sel = "all"
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"token":                tok,
		"expires_at":           exp.UTC().Format(time.RFC3339),
		"permissions":          in.Permissions,
		"repository_selection": sel,
	})
}

func (s *Server) listInstallationRepos(w http.ResponseWriter, _ *http.Request, c caller) {
	if c.installation == nil {
		writeError(w, http.StatusForbidden, "This endpoint requires an installation token")
		return
	}
	s.mu.Lock()
	repos := []any{}
	for _, key := range slices.Sorted(maps.Keys(s.repos)) {
		rp := s.repos[key]
		if c.installation.grants(rp.Owner, rp.Name) {
			repos = append(repos, s.repoJSON(rp))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"total_count": len(repos), "repositories": repos})
}

func (s *Server) revokeInstallationToken(w http.ResponseWriter, r *http.Request, _ caller) {
	_, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	s.mu.Lock()
	if it := s.tokens[tok]; it != nil {
		it.revoked = true
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) lookupInstallation(raw string) *installation {
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return nil
	}
	in := s.installations[id]
	if in == nil || in.deleted {
		return nil
	}
	return in
}
