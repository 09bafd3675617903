package app_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/examples/server/app"
	"github.com/ghbridge/ghbridge/webhook"
	"github.com/ghbridge/ghbridge/webhook/webhooktest"
)

// The edge before authentication: what an anonymous client can do to the
// webhook route and to /metrics.

// series is one line of the Prometheus text format: name and labels.
type series struct {
	name   string
	labels map[string]string
}

var labelRE = regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)

// scrape reads /metrics and returns the series of the ghbridge_ metrics.
func (e *env) scrape(t *testing.T) map[string]series {
	t.Helper()
	resp, err := e.http.Client().Get(e.http.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	out := map[string]series{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "ghbridge_") {
			continue
		}
		key := line[:strings.LastIndexByte(line, ' ')] // label values may hold spaces, the value does not
		name, labels, _ := strings.Cut(key, "{")
		s := series{name: name, labels: map[string]string{}}
		for _, m := range labelRE.FindAllStringSubmatch(labels, -1) {
			s.labels[m[1]] = m[2]
		}
		out[key] = s
	}
	require.NoError(t, sc.Err())
	return out
}

// assertBoundedLabels checks every label value against its fixed set.
func assertBoundedLabels(t *testing.T, all map[string]series) {
	t.Helper()
	routes := map[string]bool{"unmatched": true}
	for _, r := range []string{"GET /healthz", "GET /metrics", "POST /api/jobs", "GET /api/jobs/{id}", "GET /api/jobs/{id}/inputs",
		"POST /api/jobs/{id}/status", "POST /api/github/webhook", "GET /api/github/install-url", "GET /api/github/install-callback",
		"POST /api/github/installations/recover", "DELETE /api/github/installations/{id}"} {
		routes[r] = true
	}
	outcomes := map[string]bool{}
	for _, o := range []webhook.Outcome{webhook.OutcomeHandled, webhook.OutcomePing, webhook.OutcomeIgnored, webhook.OutcomeDuplicate,
		webhook.OutcomeBadSignature, webhook.OutcomeMalformed, webhook.OutcomeTooLarge, webhook.OutcomeBadMethod,
		webhook.OutcomeBadContentType, webhook.OutcomeHandlerError, webhook.OutcomeStoreUnavailable, webhook.OutcomeBusy} {
		outcomes[string(o)] = true
	}
	code := regexp.MustCompile(`^[1-5][0-9][0-9]$`)
	for key, s := range all {
		switch {
		case strings.HasPrefix(s.name, "ghbridge_http_request_duration_seconds"):
			assert.True(t, routes[s.labels["route"]], "route label of %s", key)
			assert.Regexp(t, code, s.labels["code"], "code label of %s", key)
		case s.name == "ghbridge_webhook_deliveries_total":
			assert.Equal(t, webhook.EventLabel(s.labels["event"]), s.labels["event"], "event label of %s", key)
			assert.True(t, outcomes[s.labels["outcome"]], "outcome label of %s", key)
		}
	}
}

// post sends a request to the webhook route as an anonymous client would.
func (e *env) post(t *testing.T, hdr map[string]string, body io.Reader, n int64) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.http.URL+"/api/github/webhook", body)
	require.NoError(t, err)
	req.ContentLength = n
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.http.Client().Do(req)
	if err != nil {
		return nil, err.Error()
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

func TestWebhookOddHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	payload := []byte(`{"action":"completed"}`)
	for _, tc := range []struct {
		name   string
		header string
		value  string
		signed bool
		code   int
		want   string
	}{
		{"event not UTF-8, unsigned", "X-GitHub-Event", "workflow_run\xff", false, 400, "X-GitHub-Event header: not valid UTF-8"},
		{"event not UTF-8, signed", "X-GitHub-Event", "\xc3\x28", true, 400, "X-GitHub-Event header: not valid UTF-8"},
		{"delivery not UTF-8", "X-GitHub-Delivery", "\xff\xfe", true, 400, "X-GitHub-Delivery header: not valid UTF-8"},
		{"hook id not UTF-8", "X-GitHub-Hook-ID", "1\x80", false, 400, "X-GitHub-Hook-ID header: not valid UTF-8"},
		{"event too long", "X-GitHub-Event", strings.Repeat("e", 300), false, 400, "longer than 256 bytes"},
		{"unknown event, valid UTF-8, unsigned", "X-GitHub-Event", "évènement", false, 401, "missing X-Hub-Signature-256"},
		{"unknown event, signed", "X-GitHub-Event", "not_a_github_event", true, 202, "ignored"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": webhooktest.NewDeliveryID(), tc.header: tc.value}
			if tc.signed {
				hdr["X-Hub-Signature-256"] = webhook.Sign(secret, payload)
			}
			resp, body := e.post(t, hdr, bytes.NewReader(payload), int64(len(payload)))
			require.NotNil(t, resp, body)
			assert.Equal(t, tc.code, resp.StatusCode, body)
			assert.Contains(t, body, tc.want)
		})
	}
	all := e.scrape(t)
	assertBoundedLabels(t, all)
	assert.Contains(t, all, `ghbridge_webhook_deliveries_total{event="other",outcome="malformed"}`)
	assert.Contains(t, all, `ghbridge_webhook_deliveries_total{event="other",outcome="bad_signature"}`)
	assert.Contains(t, all, `ghbridge_webhook_deliveries_total{event="other",outcome="ignored"}`)
	code, _ := e.call(t, "GET", "/healthz", "", nil)
	assert.Equal(t, 200, code, "the server still answers")
}

// A hundred made-up event names make no series beyond "other" (any
// series per event would show as a hundred new ones).
func TestBogusEventsMakeNoSeries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.post(t, map[string]string{"X-GitHub-Event": "warmup", "X-GitHub-Delivery": "warmup"}, strings.NewReader("{}"), 2)
	e.scrape(t) // the scrape's own series
	before := e.scrape(t)
	for i := range 100 {
		event := "bogus_" + strconv.Itoa(i)
		if i%3 == 0 {
			event += "\xff" // not UTF-8: refused as malformed
		}
		resp, body := e.post(t, map[string]string{"X-GitHub-Event": event, "X-GitHub-Delivery": strconv.Itoa(i)}, strings.NewReader("{}"), 2)
		require.NotNil(t, resp, body)
		require.Contains(t, []int{400, 401}, resp.StatusCode, body)
	}
	after := e.scrape(t)
	assertBoundedLabels(t, after)
	for key, s := range after {
		if _, ok := before[key]; ok {
			continue
		}
		switch s.name {
		case "ghbridge_webhook_deliveries_total":
			assert.Equal(t, `ghbridge_webhook_deliveries_total{event="other",outcome="malformed"}`, key,
				"the bad signatures are counted under \"other\" since the warm-up; only the malformed outcome is new")
		default:
			// The 400 answers of the webhook route are new in the request
			// histogram; nothing is per event.
			assert.Equal(t, map[string]string{"route": "POST /api/github/webhook", "code": "400"},
				map[string]string{"route": s.labels["route"], "code": s.labels["code"]}, key)
		}
	}
	assert.Contains(t, after, `ghbridge_webhook_deliveries_total{event="other",outcome="bad_signature"}`)
	for key, s := range after {
		if s.name == "ghbridge_webhook_deliveries_total" {
			assert.Equal(t, "other", s.labels["event"], key)
		}
	}
}

// Route and code labels: registered patterns and numeric codes, whatever
// the path and method.
func TestRequestLabels(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/nope/" + strings.Repeat("x", 100), 404},
		{"GET", "/api/jobs/%ff%fe", 401},
		{"GET", "/api//jobs/../jobs/j1", 307},
		{"PUT", "/api/jobs", 405},
		{"CONNECT", "/api/jobs", 0},
		{"GET", "/healthz", 200},
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		w := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(w, req)
		if tc.code != 0 {
			assert.Equal(t, tc.code, w.Code, "%s %s", tc.method, tc.path)
		}
	}
	all := e.scrape(t)
	assertBoundedLabels(t, all)
	for _, want := range []string{
		`ghbridge_http_request_duration_seconds_count{code="404",route="unmatched"}`,
		`ghbridge_http_request_duration_seconds_count{code="401",route="GET /api/jobs/{id}"}`,
		`ghbridge_http_request_duration_seconds_count{code="405",route="unmatched"}`,
		`ghbridge_http_request_duration_seconds_count{code="200",route="GET /healthz"}`,
	} {
		assert.Contains(t, all, want)
	}
}

// A flood of unsigned 25 MB bodies: two fit the 64 MiB budget and are
// held, the third is refused at once with 503 and Retry-After, a small
// signed delivery still gets through, and once the held bodies are done
// their bytes are free again (the route holds none: full-size bodies fit
// as the first two did).
func TestUnsignedFloodOnTheServer(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("sends 25 MB over loopback")
	}
	e := newEnv(t)
	const size = webhook.DefaultMaxBodySize
	hdr := func(i int) map[string]string {
		return map[string]string{"X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": "flood-" + strconv.Itoa(i),
			"X-Hub-Signature-256": webhook.Sign("guess", nil)}
	}
	type answer struct {
		i    int
		resp *http.Response
		body string
	}
	answers := make(chan answer, 3)
	bodies := make([]*heldBody, 3)
	for i := range bodies {
		bodies[i] = &heldBody{gate: make(chan error, 1), left: size}
		go func() {
			resp, body := e.post(t, hdr(i), bodies[i], size)
			answers <- answer{i, resp, body}
		}()
	}
	// A refusal means the two others were admitted: 2 x 25 MB fit in
	// 64 MiB, 3 do not. The held ones wait for bodies that never come.
	a := <-answers
	require.NotNil(t, a.resp, a.body)
	assert.Equal(t, http.StatusServiceUnavailable, a.resp.StatusCode)
	assert.Equal(t, "1", a.resp.Header.Get("Retry-After"))
	assert.Contains(t, a.body, "too many unverified deliveries in flight")
	bodies[a.i].gate <- errors.New("refused")
	assert.Equal(t, int64(2*size), app.UnverifiedBytes(e.srv), "the two others are held, charged their Content-Length")

	payload := []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`)
	resp, body := e.post(t, map[string]string{"X-GitHub-Event": "ping", "X-GitHub-Delivery": "ping-1",
		"X-Hub-Signature-256": webhook.Sign(secret, payload)}, bytes.NewReader(payload), int64(len(payload)))
	require.NotNil(t, resp, body)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "a small signed delivery fits in what is left")

	// One held client gives up before sending a byte: its charge is
	// given back. The other's 25 MB arrive and fail their signature.
	var held []int
	for i := range bodies {
		if i != a.i {
			held = append(held, i)
		}
	}
	bodies[held[0]].gate <- errors.New("client gone")
	gone := <-answers
	require.Equal(t, held[0], gone.i)
	if gone.resp != nil {
		assert.Equal(t, http.StatusBadRequest, gone.resp.StatusCode, gone.body)
	}
	require.Eventually(t, func() bool { return app.UnverifiedBytes(e.srv) == size }, 10*time.Second, time.Millisecond,
		"the body that never came is no longer charged")
	bodies[held[1]].gate <- nil
	a = <-answers
	require.NotNil(t, a.resp, a.body)
	assert.Equal(t, http.StatusUnauthorized, a.resp.StatusCode, "a held body arrives and fails its signature")
	// Its bytes are given back (before the answer was written).
	assert.Zero(t, app.UnverifiedBytes(e.srv))
	all := e.scrape(t)
	assertBoundedLabels(t, all)
	assert.Contains(t, all, `ghbridge_webhook_deliveries_total{event="workflow_run",outcome="busy"}`)
	assert.Contains(t, all, `ghbridge_webhook_deliveries_total{event="workflow_run",outcome="bad_signature"}`)
}

// heldBody is a request body that sends nothing until its gate gives an
// error (the client gives up) or nil, then left bytes of junk. The junk is
// whatever the caller's buffer holds: copying 25 MB of it first would
// only cost the race detector's time.
type heldBody struct {
	gate   chan error
	opened bool
	left   int64
}

func (b *heldBody) Read(p []byte) (int, error) {
	if !b.opened {
		if err := <-b.gate; err != nil {
			return 0, err
		}
		b.opened = true
	}
	if b.left == 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), b.left))
	b.left -= int64(n)
	return n, nil
}
