package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ghbridge/ghbridge/examples/internal/testdb"
	"github.com/ghbridge/ghbridge/examples/server/app"
	"github.com/ghbridge/ghbridge/github/githubtest"
)

// A job from create to successful as an exporter sees it: the create,
// render, credential, dispatch, GitHub call, webhook and status spans,
// with job, run and installation ids, and the webhook's status update
// linked to the dispatch.
func TestTraceOfAJob(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	fake, inst := fakeGitHub(t)
	e := start(t, fake, baseVars(fake, testdb.MigratedSQLite(t)), app.WithTracerProvider(tp))
	e.claimed(t, "tenant-a", inst)
	exp.Reset()

	code, job := e.create(t, keyA, jobRequest("job-1"))
	require.Equal(t, 201, code, job)
	require.Equal(t, "in_progress", job["status"], job)
	runID := int64(job["runId"].(float64))
	_, err := fake.SetRunStatus(runID, "completed", "success")
	require.NoError(t, err)
	_, job = e.call(t, "GET", "/api/jobs/job-1", keyA, nil)
	require.Equal(t, "successful", job["status"])

	spans := exp.GetSpans()
	t.Logf("trace of tenant-a.job-1:\n%s", render(spans))
	byName := func(name string) []tracetest.SpanStub {
		var out []tracetest.SpanStub
		for _, s := range spans {
			if s.Name == name {
				out = append(out, s)
			}
		}
		return out
	}
	attr := func(s tracetest.SpanStub, key string) string {
		for _, a := range s.Attributes {
			if string(a.Key) == key {
				return a.Value.String()
			}
		}
		return ""
	}
	for _, name := range []string{"ghbridge.job.create", "ghbridge.dispatch", "ghbridge.render", "ghbridge.resolve_credential", "GitHub POST", "ghbridge.webhook", "ghbridge.status.apply"} {
		require.NotEmpty(t, byName(name), "no %s span", name)
	}
	create := byName("ghbridge.job.create")[0]
	assert.Equal(t, "tenant-a.job-1", attr(create, "ghbridge.job.id"))
	disp := byName("ghbridge.dispatch")[0]
	assert.Equal(t, "tenant-a.job-1", attr(disp, "ghbridge.job.id"))
	assert.Equal(t, fmt.Sprint(runID), attr(disp, "ghbridge.run.id"))
	assert.Equal(t, fmt.Sprint(inst.ID), attr(disp, "ghbridge.installation.id"))
	require.Len(t, disp.Links, 1, "the dispatch links to the job's create span")
	assert.Equal(t, create.SpanContext.SpanID(), disp.Links[0].SpanContext.SpanID())
	cred := byName("ghbridge.resolve_credential")[0]
	assert.Equal(t, disp.SpanContext.SpanID(), cred.Parent.SpanID(), "resolution runs under the dispatch")
	assert.Equal(t, "installation", attr(cred, "ghbridge.credential.type"))
	for _, s := range spans {
		for _, a := range s.Attributes {
			assert.NotContains(t, a.Value.String(), "ghs_", "no token in span %s", s.Name)
		}
	}

	var final *tracetest.SpanStub
	for _, s := range byName("ghbridge.status.apply") {
		if attr(s, "ghbridge.job.status") == "successful" {
			final = &s
		}
	}
	require.NotNil(t, final)
	assert.Equal(t, fmt.Sprint(runID), attr(*final, "ghbridge.run.id"))
	require.Len(t, final.Links, 1, "the webhook's status update links to the dispatch")
	assert.Equal(t, disp.SpanContext.SpanID(), final.Links[0].SpanContext.SpanID())
	hook := byName("ghbridge.webhook")
	require.NotEmpty(t, hook)
	assert.True(t, slices.ContainsFunc(hook, func(s tracetest.SpanStub) bool { return s.SpanContext.SpanID() == final.Parent.SpanID() }),
		"the status update runs under the webhook delivery's span")
}

// render prints spans as trees, parents first, for the test log.
func render(spans tracetest.SpanStubs) string {
	var b strings.Builder
	children := map[string][]tracetest.SpanStub{}
	ids := map[string]bool{}
	for _, s := range spans {
		ids[s.SpanContext.SpanID().String()] = true
	}
	var roots []tracetest.SpanStub
	for _, s := range spans {
		if p := s.Parent.SpanID().String(); s.Parent.IsValid() && ids[p] {
			children[p] = append(children[p], s)
		} else {
			roots = append(roots, s)
		}
	}
	var walk func(s tracetest.SpanStub, depth int)
	walk = func(s tracetest.SpanStub, depth int) {
		var attrs []string
		for _, a := range s.Attributes {
			k := string(a.Key)
			if strings.HasPrefix(k, "ghbridge.") || strings.HasPrefix(k, "github.") || k == "http.response.status_code" || k == "url.full" {
				attrs = append(attrs, k+"="+a.Value.String())
			}
		}
		fmt.Fprintf(&b, "%s%s [span %s] %s", strings.Repeat("  ", depth), s.Name, s.SpanContext.SpanID(), strings.Join(attrs, " "))
		for _, l := range s.Links {
			fmt.Fprintf(&b, " link->%s", l.SpanContext.SpanID())
		}
		if s.Status.Code != 0 {
			fmt.Fprintf(&b, " status=%s", s.Status.Code)
		}
		b.WriteByte('\n')
		kids := children[s.SpanContext.SpanID().String()]
		slices.SortFunc(kids, func(x, y tracetest.SpanStub) int { return x.StartTime.Compare(y.StartTime) })
		for _, c := range kids {
			walk(c, depth+1)
		}
	}
	slices.SortFunc(roots, func(x, y tracetest.SpanStub) int { return x.StartTime.Compare(y.StartTime) })
	for _, r := range roots {
		walk(r, 0)
	}
	return b.String()
}

func scrape(t *testing.T, e *env) string {
	t.Helper()
	resp, err := e.http.Client().Get(e.http.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestOperationalMetricsAndLogs: a GitHub request retried through a 502
// (the install flow's token exchange) and a dispatched job show in the
// metrics and, with the access log on, in the logs.
func TestOperationalMetricsAndLogs(t *testing.T) {
	t.Parallel()
	fake, inst := fakeGitHub(t)
	vars := baseVars(fake, testdb.MigratedSQLite(t))
	vars["GHBRIDGE_ACCESS_LOG"] = "true"
	var logs syncBuffer
	e := start(t, fake, vars, app.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))))
	// The install flow's token exchange meets a 502 and is retried.
	fake.InjectFault(githubtest.Fault{Route: "POST /app/installations/{installation_id}/access_tokens", Status: 502})
	code, body := e.install(t, keyA, inst.ID)
	require.Equal(t, 200, code, body)
	code, job := e.create(t, keyA, jobRequest("job-1"))
	require.Equal(t, 201, code, job)
	require.Equal(t, "in_progress", job["status"], job)

	m := scrape(t, e)
	assert.Contains(t, m, fmt.Sprintf(`ghbridge_github_rate_limit_remaining{credential="installation",installation="%d",resource="core"}`, inst.ID))
	assert.Contains(t, m, fmt.Sprintf(`ghbridge_github_rate_limit_reset_timestamp_seconds{credential="installation",installation="%d",resource="core"}`, inst.ID))
	assert.Contains(t, m, `ghbridge_github_rate_limit_remaining{credential="app",installation="",resource="core"}`)
	assert.Contains(t, m, `ghbridge_github_retries_total{cause="5xx"} 1`)
	assert.Contains(t, m, "ghbridge_dispatch_queue_depth 0")
	assert.Contains(t, m, "ghbridge_dispatch_queue_oldest_age_seconds 0")

	out := logs.String()
	assert.Contains(t, out, `msg="http request" method=POST path=/api/jobs route="POST /api/jobs" code=201`)
	assert.Regexp(t, `level=WARN msg="retrying GitHub request" attempt=1 wait=\S+ cause=5xx method=POST path=\S+/access_tokens status=502`, out)
	assert.NotContains(t, out, "level=ERROR", "a retried request that then succeeds is not an error")
	assert.NotContains(t, out, "request failed")
}

// Every error answer is JSON: unknown routes, wrong methods, webhook
// refusals, as well as the API's own.
func TestEveryErrorIsJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		method, path, body string
		hdr                map[string]string
		code               int
		want               string
	}{
		{"GET", "/nope", "", nil, 404, "no such route: GET /nope"},
		{"PUT", "/api/jobs", "", nil, 405, "method PUT not allowed here: use GET or HEAD or POST"},
		{"DELETE", "/healthz", "", nil, 405, "not allowed"},
		{"POST", "/api/github/webhook", `{}`, map[string]string{"Content-Type": "application/json", "X-GitHub-Event": "ping", "X-GitHub-Delivery": "d-1", "X-Hub-Signature-256": "sha256=00"}, 401, "X-Hub-Signature-256"},
		{"POST", "/api/jobs", `{}`, map[string]string{"Authorization": "Bearer " + keyA, "Content-Type": "application/x-www-form-urlencoded"}, 415, "application/json"},
	} {
		req, err := http.NewRequest(tc.method, e.http.URL+tc.path, strings.NewReader(tc.body))
		require.NoError(t, err)
		for k, v := range tc.hdr {
			req.Header.Set(k, v)
		}
		resp, err := e.http.Client().Do(req)
		require.NoError(t, err)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, tc.code, resp.StatusCode, "%s %s: %s", tc.method, tc.path, raw)
		assert.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"), "%s %s: %s", tc.method, tc.path, resp.Header.Get("Content-Type"))
		var body map[string]string
		require.NoError(t, json.Unmarshal(raw, &body), "%s %s: %s", tc.method, tc.path, raw)
		assert.Contains(t, body["error"], tc.want)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
