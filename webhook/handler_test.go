package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gh "github.com/google/go-github/v62/github"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/failure"
	"github.com/ghbridge/ghbridge/github/githubtest"
	"github.com/ghbridge/ghbridge/webhook"
	"github.com/ghbridge/ghbridge/webhook/webhooktest"
)

const secret = "s3cret"

var runPayload = []byte(`{"action":"completed","workflow_run":{"id":42,"name":"deploy","display_title":"Deploy job-1","status":"completed","conclusion":"success","run_attempt":1,"updated_at":"2026-01-10T10:03:00Z"},"repository":{"id":501,"name":"deployer","full_name":"acme/deployer","owner":{"login":"acme"}},"installation":{"id":777}}`)

func newHandler(t *testing.T, opts ...webhook.Option) *webhook.Handler {
	t.Helper()
	h, err := webhook.New([]string{secret}, opts...)
	require.NoError(t, err)
	return h
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// GitHub's published test vector for X-Hub-Signature-256.
func TestSignatureTestVector(t *testing.T) {
	t.Parallel()
	const want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	assert.Equal(t, want, webhook.Sign("It's a Secret to Everybody", []byte("Hello, World!")))
	assert.Equal(t, want, githubtest.Sign("It's a Secret to Everybody", []byte("Hello, World!")))

	h, err := webhook.New([]string{"It's a Secret to Everybody"})
	require.NoError(t, err)
	w := serve(h, signedVector(want))
	assert.Equal(t, http.StatusBadRequest, w.Code, "the signature passes; the body is not JSON")
	assert.Contains(t, w.Body.String(), "malformed JSON")
	w = serve(h, signedVector(want[:len(want)-1]+"8"))
	assert.Equal(t, http.StatusUnauthorized, w.Code, "one hex digit off fails")
}

func signedVector(sig string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("Hello, World!"))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-GitHub-Event", "push")
	r.Header.Set("X-GitHub-Delivery", "d1")
	r.Header.Set("X-Hub-Signature-256", sig)
	return r
}

func TestNoSecretIsAConfigurationError(t *testing.T) {
	t.Parallel()
	for _, secrets := range [][]string{nil, {}, {""}, {"  ", ""}} {
		_, err := webhook.New(secrets)
		require.ErrorIs(t, err, webhook.ErrNoSecret)
		assert.ErrorIs(t, err, failure.ErrInvalidIntegration, "its class")
	}
	assert.Equal(t, []string{"a", "b"}, webhook.ParseSecrets(" a, ,b ,"))
}

func TestAnswers(t *testing.T) {
	t.Parallel()
	h := newHandler(t, webhook.WithMaxBodySize(1024), webhook.WithSHA1(false))
	h.On("workflow_run", func(context.Context, *webhook.Delivery) error { return nil })
	h.On("check_run.completed", func(context.Context, *webhook.Delivery) error { return errors.New("db down: password=hunter2") })
	h.On("workflow_job", func(context.Context, *webhook.Delivery) error { panic("boom") })

	req := func(event string, body []byte, mutate func(*http.Request)) *http.Request {
		r := webhooktest.NewRequest(event, body, secret)
		if mutate != nil {
			mutate(r)
		}
		return r
	}
	big := append([]byte(`{"action":"x","pad":"`), bytes.Repeat([]byte("a"), 2048)...)
	big = append(big, `"}`...)
	for _, tc := range []struct {
		name string
		r    *http.Request
		code int
		body string
	}{
		{"handled", req("workflow_run", runPayload, nil), 200, "ok"},
		{"ping", req("ping", []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`), nil), 200, "pong"},
		{"unknown event", req("star", []byte(`{"action":"created"}`), nil), 202, "ignored"},
		{"unknown action", req("check_run", []byte(`{"action":"rerequested"}`), nil), 202, "ignored"},
		{"handler error", req("check_run", []byte(`{"action":"completed"}`), nil), 500, "internal error"},
		{"handler panic", req("workflow_job", []byte(`{"action":"queued"}`), nil), 500, "internal error"},
		{"GET", req("workflow_run", runPayload, func(r *http.Request) { r.Method = http.MethodGet }), 405, "method not allowed"},
		{"PUT", req("workflow_run", runPayload, func(r *http.Request) { r.Method = http.MethodPut }), 405, ""},
		{"text/plain", req("workflow_run", runPayload, func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }), 415, "unsupported content type"},
		{"no content type", req("workflow_run", runPayload, func(r *http.Request) { r.Header.Del("Content-Type") }), 415, ""},
		{"json with charset", req("workflow_run", runPayload, func(r *http.Request) { r.Header.Set("Content-Type", "application/json; charset=utf-8") }), 200, ""},
		{"missing signature", req("workflow_run", runPayload, func(r *http.Request) { r.Header.Del("X-Hub-Signature-256") }), 401, "missing X-Hub-Signature-256"},
		{"wrong secret", req("workflow_run", runPayload, func(r *http.Request) { r.Header.Set("X-Hub-Signature-256", webhook.Sign("other", runPayload)) }), 401, "does not match"},
		{"malformed signature", req("workflow_run", runPayload, func(r *http.Request) { r.Header.Set("X-Hub-Signature-256", "sha256=zz") }), 401, "malformed"},
		{"sha1 only, not allowed", req("workflow_run", runPayload, func(r *http.Request) {
			r.Header.Del("X-Hub-Signature-256")
			r.Header.Set("X-Hub-Signature", githubtest.SignSHA1(secret, runPayload))
		}), 401, "missing X-Hub-Signature-256"},
		{"body changed after signing", req("workflow_run", runPayload, func(r *http.Request) {
			r.Body = ioNop(bytes.Replace(runPayload, []byte("success"), []byte("failure"), 1))
		}), 401, "does not match"},
		{"malformed JSON", req("workflow_run", []byte(`{"action":`), nil), 400, "malformed JSON"},
		{"JSON with trailing garbage", req("workflow_run", []byte(`{"action":"x"} {}`), nil), 400, "malformed JSON"},
		{"no event header", req("", runPayload, nil), 400, "missing X-GitHub-Event"},
		{"no delivery header", req("workflow_run", runPayload, func(r *http.Request) { r.Header.Del("X-GitHub-Delivery") }), 400, "X-GitHub-Delivery"},
		{"too large by Content-Length", req("workflow_run", big, nil), 413, "too large"},
		{"too large streamed", req("workflow_run", big, func(r *http.Request) { r.ContentLength = -1 }), 413, "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(h, tc.r)
			assert.Equal(t, tc.code, w.Code, w.Body.String())
			assert.Contains(t, w.Body.String(), tc.body)
			assert.NotContains(t, w.Body.String(), "hunter2", "handler errors never reach the body")
			if tc.code == 405 {
				assert.Equal(t, "POST", w.Header().Get("Allow"))
			}
		})
	}
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func ioNop(b []byte) nopCloser { return nopCloser{bytes.NewReader(b)} }

func TestSecretRotation(t *testing.T) {
	t.Parallel()
	h, err := webhook.New([]string{"old", "new"})
	require.NoError(t, err)
	h.On("workflow_run", func(context.Context, *webhook.Delivery) error { return nil })
	for _, s := range []string{"old", "new"} {
		assert.Equal(t, 200, serve(h, webhooktest.NewRequest("workflow_run", runPayload, s)).Code, s)
	}
	assert.Equal(t, 401, serve(h, webhooktest.NewRequest("workflow_run", runPayload, "older")).Code)
}

func TestSHA1WhenAllowed(t *testing.T) {
	t.Parallel()
	h := newHandler(t, webhook.WithSHA1(true))
	h.On("workflow_run", func(context.Context, *webhook.Delivery) error { return nil })
	r := webhooktest.NewRequest("workflow_run", runPayload, secret)
	r.Header.Del("X-Hub-Signature-256")
	r.Header.Set("X-Hub-Signature", githubtest.SignSHA1(secret, runPayload))
	assert.Equal(t, 200, serve(h, r).Code)
	r = webhooktest.NewRequest("workflow_run", runPayload, secret)
	r.Header.Del("X-Hub-Signature-256")
	r.Header.Set("X-Hub-Signature", githubtest.SignSHA1("wrong", runPayload))
	assert.Equal(t, 401, serve(h, r).Code)
	r = webhooktest.NewRequest("workflow_run", runPayload, secret)
	r.Header.Set("X-Hub-Signature-256", webhook.Sign("wrong", runPayload))
	r.Header.Set("X-Hub-Signature", githubtest.SignSHA1(secret, runPayload))
	assert.Equal(t, 401, serve(h, r).Code, "a bad SHA-256 signature is not rescued by SHA-1")
}

func TestFormEncodedDelivery(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	var got *webhook.Delivery
	h.On("workflow_run", func(_ context.Context, d *webhook.Delivery) error { got = d; return nil })
	body := []byte("payload=" + url.QueryEscape(string(runPayload)))
	r := webhooktest.NewRequest("workflow_run", body, secret) // signed over the form body
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := serve(h, r)
	require.Equal(t, 200, w.Code, w.Body.String())
	assert.JSONEq(t, string(runPayload), string(got.Payload))
	assert.Equal(t, "completed", got.Action)

	r = webhooktest.NewRequest("workflow_run", []byte("other=1"), secret)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	assert.Equal(t, 400, serve(h, r).Code)
}

func TestDeliveryFields(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	var got *webhook.Delivery
	var run *webhook.WorkflowRunEvent
	webhook.Handle(h, "workflow_run", func(_ context.Context, d *webhook.Delivery, e *webhook.WorkflowRunEvent) error {
		got, run = d, e
		return nil
	})
	r := webhooktest.NewRequestWithID("workflow_run", "guid-1", runPayload, secret)
	require.Equal(t, 200, serve(h, r).Code)
	assert.Equal(t, "guid-1", got.ID)
	assert.Equal(t, "workflow_run", got.Event)
	assert.Equal(t, "completed", got.Action)
	assert.Equal(t, "1", got.HookID)
	assert.Equal(t, int64(777), got.InstallationID)
	assert.Equal(t, "acme/deployer", got.Repository.FullName)
	assert.Equal(t, int64(42), run.WorkflowRun.ID)
	assert.Equal(t, "Deploy job-1", run.WorkflowRun.DisplayTitle)
	assert.Equal(t, time.Date(2026, 1, 10, 10, 3, 0, 0, time.UTC), run.WorkflowRun.UpdatedAt)

	ev, err := got.GitHubEvent()
	require.NoError(t, err)
	ghRun, ok := ev.(*gh.WorkflowRunEvent)
	require.True(t, ok, "%T", ev)
	assert.Equal(t, int64(42), ghRun.GetWorkflowRun().GetID())
}

func TestRoutingOrderAndTypedDecodeOnce(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	var order []string
	decodes := 0
	h.On("workflow_run.completed", func(context.Context, *webhook.Delivery) error { order = append(order, "action"); return nil })
	h.On("workflow_run", func(context.Context, *webhook.Delivery) error { order = append(order, "event-1"); return nil })
	webhook.Handle(h, "workflow_run", func(_ context.Context, _ *webhook.Delivery, e *counting) error {
		order = append(order, "typed")
		return nil
	})
	webhook.Handle(h, "workflow_run", func(_ context.Context, _ *webhook.Delivery, e *counting) error {
		decodes = e.decodes
		return nil
	})
	require.Equal(t, 200, serve(h, webhooktest.NewRequest("workflow_run", runPayload, secret)).Code)
	assert.Equal(t, []string{"event-1", "typed", "action"}, order)
	assert.Equal(t, 1, decodes, "the second handler of the same type reuses the decoded event")
}

// counting counts how often it is decoded.
type counting struct{ decodes int }

func (c *counting) UnmarshalJSON([]byte) error { c.decodes++; return nil }

func TestDuplicatesAreNotAppliedTwice(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	var calls atomic.Int32
	h.On("workflow_run", func(context.Context, *webhook.Delivery) error { calls.Add(1); return nil })
	r := func() *http.Request {
		return webhooktest.NewRequestWithID("workflow_run", "same-guid", runPayload, secret)
	}
	assert.Equal(t, 200, serve(h, r()).Code)
	w := serve(h, r())
	assert.Equal(t, 202, w.Code)
	assert.Contains(t, w.Body.String(), "duplicate")
	assert.EqualValues(t, 1, calls.Load())

	// Concurrent copies of one delivery: applied once.
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			serve(h, webhooktest.NewRequestWithID("workflow_run", "burst", runPayload, secret))
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 2, calls.Load())
}

func TestFailedDeliveryIsProcessedOnRedelivery(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	fail := true
	calls := 0
	h.On("workflow_run", func(context.Context, *webhook.Delivery) error {
		calls++
		if fail {
			return errors.New("store down")
		}
		return nil
	})
	r := func() *http.Request {
		return webhooktest.NewRequestWithID("workflow_run", "guid-r", runPayload, secret)
	}
	assert.Equal(t, 500, serve(h, r()).Code)
	fail = false
	assert.Equal(t, 200, serve(h, r()).Code, "GitHub's redelivery (same GUID) is processed")
	assert.Equal(t, 202, serve(h, r()).Code)
	assert.Equal(t, 2, calls)
}

// A process killed while handling a delivery leaves its claim behind. A
// redelivery (GitHub's Redeliver button, same GUID) is processed, not
// answered "duplicate": by the process once restarted, and by another
// replica once the restarted process has released its old claims.
func TestRedeliveryAfterACrashIsProcessed(t *testing.T) {
	t.Parallel()
	clock := webhooktest.NewClock(time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC))
	store := webhook.NewMemoryDeliveryStore(0, webhook.WithStoreClock(clock.Now))
	var calls atomic.Int32
	count := func(context.Context, *webhook.Delivery) error { calls.Add(1); return nil }
	ctx := context.Background()

	// The first incarnation of "web-1" claims two deliveries and is killed.
	dead := webhook.Holder{Name: "web-1", Incarnation: 1}
	for _, id := range []string{"guid-1", "guid-2"} {
		ok, err := store.Claim(ctx, id, dead, webhook.DefaultClaimLease)
		require.NoError(t, err)
		require.True(t, ok)
	}
	other := newHandler(t, webhook.WithDeliveryStore(store), webhook.WithHolder(webhook.Holder{Name: "web-2", Incarnation: 1}))
	other.On("workflow_run", count)
	assert.Equal(t, 202, serve(other, webhooktest.NewRequestWithID("workflow_run", "guid-2", runPayload, secret)).Code,
		"web-2 cannot tell yet that web-1 died")

	restarted := newHandler(t, webhook.WithDeliveryStore(store), webhook.WithHolder(webhook.Holder{Name: "web-1", Incarnation: 2}))
	restarted.On("workflow_run", count)
	assert.Equal(t, 200, serve(restarted, webhooktest.NewRequestWithID("workflow_run", "guid-1", runPayload, secret)).Code,
		"the restarted process takes over its own stale claim")
	n, err := restarted.ReleaseStaleClaims(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "guid-2")
	assert.Equal(t, 200, serve(other, webhooktest.NewRequestWithID("workflow_run", "guid-2", runPayload, secret)).Code,
		"any replica processes the redelivery at once")
	assert.EqualValues(t, 2, calls.Load())
	assert.Equal(t, 202, serve(other, webhooktest.NewRequestWithID("workflow_run", "guid-1", runPayload, secret)).Code,
		"and once only")
}

// failingStore fails Claim, as a database that is down would.
type failingStore struct{ webhook.DeliveryStore }

func (failingStore) Claim(context.Context, string, webhook.Holder, time.Duration) (bool, error) {
	return false, errors.New("connection refused")
}

func TestStoreFailureIs500(t *testing.T) {
	t.Parallel()
	h := newHandler(t, webhook.WithDeliveryStore(failingStore{}))
	called := false
	h.On("workflow_run", func(context.Context, *webhook.Delivery) error { called = true; return nil })
	assert.Equal(t, 500, serve(h, webhooktest.NewRequest("workflow_run", runPayload, secret)).Code)
	assert.False(t, called)
}

func TestHandlerTimeout(t *testing.T) {
	t.Parallel()
	h := newHandler(t, webhook.WithHandlerTimeout(20*time.Millisecond))
	h.On("workflow_run", func(ctx context.Context, _ *webhook.Delivery) error {
		<-ctx.Done()
		return ctx.Err()
	})
	assert.Equal(t, 500, serve(h, webhooktest.NewRequest("workflow_run", runPayload, secret)).Code)
}

func TestObserver(t *testing.T) {
	t.Parallel()
	var seen []webhook.Observation
	h := newHandler(t, webhook.WithObserver(func(o webhook.Observation) { seen = append(seen, o) }))
	h.On("workflow_run", func(context.Context, *webhook.Delivery) error { return nil })
	serve(h, webhooktest.NewRequestWithID("workflow_run", "o1", runPayload, secret))
	serve(h, webhooktest.NewRequestWithID("workflow_run", "o1", runPayload, secret))
	serve(h, webhooktest.NewRequest("workflow_run", runPayload, "bad"))
	require.Len(t, seen, 3)
	assert.Equal(t, webhook.Observation{DeliveryID: "o1", Event: "workflow_run", Action: "completed", Outcome: webhook.OutcomeHandled, StatusCode: 200, Duration: seen[0].Duration}, seen[0])
	assert.Equal(t, webhook.OutcomeDuplicate, seen[1].Outcome)
	assert.Equal(t, webhook.OutcomeBadSignature, seen[2].Outcome)
}

// End to end with the fake GitHub sending signed deliveries over HTTP.
func TestDeliveriesFromFakeGitHub(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	var got []*webhook.WorkflowRunEvent
	var mu sync.Mutex
	webhook.Handle(h, "workflow_run", func(_ context.Context, _ *webhook.Delivery, e *webhook.WorkflowRunEvent) error {
		mu.Lock()
		got = append(got, e)
		mu.Unlock()
		return nil
	})
	receiver := httptest.NewServer(h)
	defer receiver.Close()
	fake := githubtest.New(t)
	fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "deployer", Workflows: []githubtest.Workflow{{Name: "deploy"}}})
	inst := fake.AddInstallation(githubtest.AppInstallation{Account: "acme", AllRepositories: true})
	fake.SetWebhook(receiver.URL, secret)
	run, err := fake.CreateRun(githubtest.Run{Owner: "acme", Repo: "deployer", WorkflowID: fake.Workflows("acme", "deployer")[0].ID, DisplayTitle: "Deploy job-1"})
	require.NoError(t, err)
	_, err = fake.SetRunStatus(run.ID, "in_progress", "")
	require.NoError(t, err)
	_, err = fake.SetRunStatus(run.ID, "completed", "success")
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, "in_progress", got[0].Action)
	assert.Equal(t, "completed", got[1].Action)
	assert.Equal(t, "success", got[1].WorkflowRun.Conclusion)
	assert.Equal(t, inst.ID, got[1].Installation.ID)
	assert.Equal(t, "acme/deployer", got[1].Repository.FullName)
	for _, d := range fake.Deliveries() {
		assert.True(t, d.OK())
	}
}

func TestHandleDecodesOnce(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	var first, second *webhook.WorkflowRunEvent
	webhook.Handle(h, "workflow_run", func(_ context.Context, _ *webhook.Delivery, e *webhook.WorkflowRunEvent) error { first = e; return nil })
	webhook.Handle(h, "workflow_run.completed", func(_ context.Context, _ *webhook.Delivery, e *webhook.WorkflowRunEvent) error {
		second = e
		return nil
	})
	require.Equal(t, 200, serve(h, webhooktest.NewRequest("workflow_run", runPayload, secret)).Code)
	require.NotNil(t, first)
	assert.Same(t, first, second, "the event decoded while validating is the one handlers get")
	assert.Equal(t, int64(42), first.WorkflowRun.ID)

	w := serve(h, webhooktest.NewRequest("workflow_run", []byte(`{"action":"completed","workflow_run":{"id":"not a number"}}`), secret))
	assert.Equal(t, 400, w.Code, "a payload that does not fit the event is malformed")
	w = serve(h, webhooktest.NewRequest("workflow_run", []byte(`{"action":`), secret))
	assert.Equal(t, 400, w.Code)
}

// The algorithm prefix is matched in any case, as the hex digest is, so
// that the handler and FuzzVerify's notion of authentic agree.
func TestSignaturePrefixCase(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	h.On("workflow_run", func(context.Context, *webhook.Delivery) error { return nil })
	body := []byte(`{"action":"completed"}`)
	for _, sig := range []string{webhook.Sign(secret, body), strings.ToUpper(webhook.Sign(secret, body)), "Sha256=" + strings.TrimPrefix(webhook.Sign(secret, body), "sha256=")} {
		r := webhooktest.NewRequest("workflow_run", body, secret)
		r.Header.Set("X-Hub-Signature-256", sig)
		assert.Equal(t, 200, serve(h, r).Code, sig)
	}
	r := webhooktest.NewRequest("workflow_run", body, secret)
	r.Header.Set("X-Hub-Signature-256", "sha1="+strings.TrimPrefix(webhook.Sign(secret, body), "sha256="))
	assert.Equal(t, 401, serve(h, r).Code)
}

func TestAnswersAreJSON(t *testing.T) {
	t.Parallel()
	h, err := webhook.New([]string{"s"})
	require.NoError(t, err)
	for _, tc := range []struct {
		req  *http.Request
		code int
		key  string
	}{
		{webhooktest.NewRequest("workflow_run", []byte(`{}`), "wrong"), 401, "error"},
		{webhooktest.NewRequest("ping", []byte(`{"zen":"x"}`), "s"), 200, "message"},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, tc.req)
		assert.Equal(t, tc.code, w.Code)
		assert.Equal(t, "application/json; charset=utf-8", w.Header().Get("Content-Type"))
		var body map[string]string
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body), w.Body.String())
		assert.NotEmpty(t, body[tc.key], w.Body.String())
	}
}
