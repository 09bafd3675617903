package webhook_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/webhook"
	"github.com/ghbridge/ghbridge/webhook/webhooktest"
)

func TestEventLabel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"workflow_run", "workflow_run"},
		{"ping", "ping"},
		{"installation_repositories", "installation_repositories"},
		{"deployment_status", "deployment_status"},
		{"", webhook.OtherEvent},
		{"other", webhook.OtherEvent},
		{"Workflow_Run", webhook.OtherEvent},
		{"workflow_run ", webhook.OtherEvent},
		{"workflow_run\xff", webhook.OtherEvent},
		{"évènement", webhook.OtherEvent},
		{strings.Repeat("a", 10000), webhook.OtherEvent},
	} {
		assert.Equal(t, tc.want, webhook.EventLabel(tc.in), "%q", tc.in)
	}
}

// Headers that are not valid UTF-8, or absurdly long, are refused before
// anything reads them into a log, a store or a metric: signed or not.
func TestOddHeadersAre400(t *testing.T) {
	t.Parallel()
	var seen []webhook.Observation
	h := newHandler(t, webhook.WithObserver(func(o webhook.Observation) { seen = append(seen, o) }))
	called := 0
	h.On("workflow_run", func(context.Context, *webhook.Delivery) error { called++; return nil })
	long := strings.Repeat("a", 257)
	for _, tc := range []struct {
		name, header, value, want string
	}{
		{"event not UTF-8", "X-GitHub-Event", "workflow_run\xff", "malformed X-GitHub-Event header: not valid UTF-8"},
		{"event lone continuation byte", "X-GitHub-Event", "\x80", "X-GitHub-Event header: not valid UTF-8"},
		{"event surrogate half", "X-GitHub-Event", "\xed\xa0\x80", "X-GitHub-Event header: not valid UTF-8"},
		{"event too long", "X-GitHub-Event", long, "X-GitHub-Event header: longer than 256 bytes"},
		{"delivery not UTF-8", "X-GitHub-Delivery", "\xc3\x28", "malformed X-GitHub-Delivery header: not valid UTF-8"},
		{"delivery too long", "X-GitHub-Delivery", long, "X-GitHub-Delivery header: longer than"},
		{"hook id not UTF-8", "X-GitHub-Hook-ID", "12\xfe", "malformed X-GitHub-Hook-ID header"},
		{"target id not UTF-8", "X-GitHub-Hook-Installation-Target-ID", "\xff", "X-GitHub-Hook-Installation-Target-ID header"},
		{"target type not UTF-8", "X-GitHub-Hook-Installation-Target-Type", "integration\xff", "X-GitHub-Hook-Installation-Target-Type header"},
	} {
		for _, signed := range []bool{true, false} {
			t.Run(tc.name+"/signed="+strconv.FormatBool(signed), func(t *testing.T) {
				seen = seen[:0]
				r := webhooktest.NewRequest("workflow_run", runPayload, secret)
				if !signed {
					r.Header.Del("X-Hub-Signature-256")
				}
				r.Header.Add(tc.header, tc.value) // a second value is checked as well as the first
				if tc.header != "X-GitHub-Hook-ID" {
					r.Header.Set(tc.header, tc.value)
				}
				w := serve(h, r)
				assert.Equal(t, http.StatusBadRequest, w.Code)
				assert.Contains(t, w.Body.String(), tc.want)
				require.Len(t, seen, 1)
				assert.Equal(t, webhook.OutcomeMalformed, seen[0].Outcome)
				assert.Contains(t, []string{"workflow_run", webhook.OtherEvent}, seen[0].Event)
				assert.Empty(t, seen[0].DeliveryID, "a header that may be the bad one is not passed on")
				assert.Zero(t, h.UnverifiedBytes())
			})
		}
	}
	assert.Zero(t, called, "no handler ran")
}

// An event name GitHub does not have is routed by its name, and observed as
// "other".
func TestUnknownEventIsOtherToObservers(t *testing.T) {
	t.Parallel()
	var seen []webhook.Observation
	h := newHandler(t, webhook.WithObserver(func(o webhook.Observation) { seen = append(seen, o) }))
	var got string
	h.On("my_event", func(_ context.Context, d *webhook.Delivery) error { got = d.Event; return nil })
	for _, event := range []string{"my_event", "évènement", "totally_new_event"} {
		serve(h, webhooktest.NewRequest(event, []byte(`{}`), secret))
		serve(h, webhooktest.NewRequest(event, []byte(`{}`), "wrong secret"))
	}
	assert.Equal(t, "my_event", got)
	require.Len(t, seen, 6)
	for _, o := range seen {
		assert.Equal(t, webhook.OtherEvent, o.Event)
	}
	assert.Equal(t, []webhook.Outcome{webhook.OutcomeHandled, webhook.OutcomeBadSignature}, []webhook.Outcome{seen[0].Outcome, seen[1].Outcome})
}

// heldBody is a request body that says when it is first read and then
// blocks until it is let go: a delivery held in flight.
type heldBody struct {
	reading chan struct{} // closed on the first Read
	letGo   chan error    // nil: the rest of the body; an error: the client hangs up
	rest    io.Reader
	once    sync.Once
	err     error
}

func newHeldBody(rest []byte) *heldBody {
	return &heldBody{reading: make(chan struct{}), letGo: make(chan error, 1), rest: bytes.NewReader(rest)}
}

func (b *heldBody) Read(p []byte) (int, error) {
	b.once.Do(func() {
		close(b.reading)
		b.err = <-b.letGo
	})
	if b.err != nil {
		return 0, b.err
	}
	return b.rest.Read(p)
}

func (b *heldBody) Close() error { return nil }

func (b *heldBody) wasRead() bool {
	select {
	case <-b.reading:
		return true
	default:
		return false
	}
}

// heldRequest is an unsigned delivery of n bytes whose body is held.
func heldRequest(n int, contentLength bool) (*http.Request, *heldBody) {
	body := newHeldBody(bytes.Repeat([]byte("x"), n))
	r := httptest.NewRequest(http.MethodPost, "/", body)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-GitHub-Event", "workflow_run")
	r.Header.Set("X-GitHub-Delivery", "held")
	r.Header.Set("X-Hub-Signature-256", webhook.Sign("not the secret", nil))
	r.ContentLength = -1
	if contentLength {
		r.ContentLength = int64(n)
	}
	return r, body
}

func TestUnverifiedBudget(t *testing.T) {
	t.Parallel()
	const maxBody, budget = 10000, 30000
	h := newHandler(t, webhook.WithMaxBodySize(maxBody), webhook.WithUnverifiedBudget(budget))
	handled := 0
	h.On("workflow_run", func(context.Context, *webhook.Delivery) error { handled++; return nil })
	start := func(r *http.Request) chan int {
		done := make(chan int, 1)
		go func() { done <- serve(h, r).Code }()
		return done
	}

	// Three unsigned bodies of the largest size fill the budget: each is
	// charged its Content-Length before a byte is read.
	var bodies []*heldBody
	var answers []chan int
	for range 3 {
		r, body := heldRequest(maxBody, true)
		answers = append(answers, start(r))
		<-body.reading
		bodies = append(bodies, body)
	}
	require.Equal(t, int64(budget), h.UnverifiedBytes())

	// Beyond the budget: 503 with Retry-After, the body unread; signed or not.
	for _, signed := range []bool{false, true} {
		r, body := heldRequest(10, true)
		if signed {
			r = webhooktest.NewRequest("workflow_run", runPayload, secret)
		}
		w := serve(h, r)
		assert.Equal(t, http.StatusServiceUnavailable, w.Code)
		assert.Equal(t, "1", w.Header().Get("Retry-After"))
		assert.Equal(t, "application/json; charset=utf-8", w.Header().Get("Content-Type"))
		assert.Contains(t, w.Body.String(), "retry later")
		assert.False(t, body.wasRead(), "a refused body is not read")
	}
	// An empty body costs nothing and still gets to the signature check.
	r, _ := heldRequest(0, true)
	assert.Equal(t, http.StatusUnauthorized, serve(h, r).Code)

	// One held body arrives and fails its signature: its bytes are given
	// back, and a signed delivery gets through.
	bodies[0].letGo <- nil
	assert.Equal(t, http.StatusUnauthorized, <-answers[0])
	assert.Equal(t, int64(budget-maxBody), h.UnverifiedBytes())
	assert.Equal(t, http.StatusOK, serve(h, webhooktest.NewRequest("workflow_run", runPayload, secret)).Code)
	assert.Equal(t, 1, handled)
	assert.Equal(t, int64(budget-maxBody), h.UnverifiedBytes(), "a verified delivery holds no budget")

	// A body of unknown length is charged as its buffer grows (4 KiB, then
	// doubling up to one byte over the largest body), and refused midway
	// when the budget runs out: 10,000 are free, it would need 10,001.
	r, body := heldRequest(maxBody, false)
	done := start(r)
	<-body.reading
	assert.Equal(t, int64(budget-maxBody+4096), h.UnverifiedBytes())
	body.letGo <- nil
	assert.Equal(t, http.StatusServiceUnavailable, <-done)
	assert.Equal(t, int64(budget-maxBody), h.UnverifiedBytes())

	// The other clients hang up.
	bodies[1].letGo <- errors.New("client went away")
	assert.Equal(t, http.StatusBadRequest, <-answers[1])
	bodies[2].letGo <- io.ErrUnexpectedEOF
	assert.Equal(t, http.StatusBadRequest, <-answers[2])
	assert.Zero(t, h.UnverifiedBytes())

	// Alone, a streamed body of the largest size always fits.
	r, body = heldRequest(maxBody, false)
	body.letGo <- nil
	assert.Equal(t, http.StatusUnauthorized, serve(h, r).Code)
	assert.Zero(t, h.UnverifiedBytes())
}

// Whatever becomes of a delivery, the bytes it was charged are returned.
func TestUnverifiedBudgetIsAlwaysReleased(t *testing.T) {
	t.Parallel()
	h := newHandler(t, webhook.WithMaxBodySize(4096), webhook.WithUnverifiedBudget(4097))
	h.On("workflow_run", func(context.Context, *webhook.Delivery) error { return nil })
	h.On("check_run", func(context.Context, *webhook.Delivery) error { return errors.New("handler failed") })
	h.On("workflow_job", func(context.Context, *webhook.Delivery) error { panic("boom") })
	big := []byte(`{"pad":"` + strings.Repeat("a", 5000) + `"}`)
	signed := func(event string, body []byte, mutate func(*http.Request)) func() *http.Request {
		return func() *http.Request {
			r := webhooktest.NewRequest(event, body, secret)
			if mutate != nil {
				mutate(r)
			}
			return r
		}
	}
	streamed := func(r *http.Request) { r.ContentLength = -1 }
	for _, tc := range []struct {
		name string
		req  func() *http.Request
		code int
	}{
		{"handled", signed("workflow_run", runPayload, nil), 200},
		{"handled, streamed", signed("workflow_run", runPayload, streamed), 200},
		{"duplicate", signed("workflow_run", runPayload, func(r *http.Request) { r.Header.Set("X-GitHub-Delivery", "dup") }), 0},
		{"handler error", signed("check_run", []byte(`{}`), nil), 500},
		{"handler panic", signed("workflow_job", []byte(`{}`), nil), 500},
		{"malformed JSON", signed("workflow_run", []byte(`{`), nil), 400},
		{"bad signature", signed("workflow_run", runPayload, func(r *http.Request) { r.Header.Set("X-Hub-Signature-256", webhook.Sign("x", runPayload)) }), 401},
		{"bad signature, streamed", signed("workflow_run", runPayload, func(r *http.Request) {
			r.Header.Set("X-Hub-Signature-256", webhook.Sign("x", runPayload))
			streamed(r)
		}), 401},
		{"too large by Content-Length", signed("workflow_run", big, nil), 413},
		{"too large, streamed", signed("workflow_run", big, streamed), 413},
		{"Content-Length longer than the body", signed("workflow_run", runPayload, func(r *http.Request) { r.ContentLength = 4000 }), 400},
		{"client hangs up", func() *http.Request {
			r, body := heldRequest(4096, true)
			body.letGo <- io.ErrUnexpectedEOF
			return r
		}, 400},
		{"client hangs up, streamed", func() *http.Request {
			r, body := heldRequest(4096, false)
			body.letGo <- errors.New("connection reset")
			return r
		}, 400},
		{"bad header", signed("workflow_run", runPayload, func(r *http.Request) { r.Header.Set("X-GitHub-Delivery", "\xff") }), 400},
		{"not a POST", signed("workflow_run", runPayload, func(r *http.Request) { r.Method = http.MethodGet }), 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := serve(h, tc.req()).Code
			if tc.code != 0 {
				assert.Equal(t, tc.code, code)
			}
			assert.Zero(t, h.UnverifiedBytes())
			// The whole budget is there: a body of the largest size fits.
			r, body := heldRequest(4096, true)
			body.letGo <- nil
			assert.Equal(t, http.StatusUnauthorized, serve(h, r).Code)
		})
	}
}

// signalReads lets a test see, over a real connection, that the handler
// has started on a body (and so has been charged for it).
type signalReads struct {
	io.ReadCloser
	once    sync.Once
	reading chan<- struct{}
}

func (s *signalReads) Read(p []byte) (int, error) {
	s.once.Do(func() { s.reading <- struct{}{} })
	return s.ReadCloser.Read(p)
}

// A flood of large unsigned bodies over HTTP: what fits the budget is held,
// the rest is refused at once with 503 and Retry-After; a signed delivery
// gets through once bytes are returned, and clients hanging up return
// theirs.
func TestUnsignedFlood(t *testing.T) {
	t.Parallel()
	const maxBody = 1 << 20
	const budget = 4 * maxBody
	answered := make(chan webhook.Observation, 64)
	h := newHandler(t, webhook.WithMaxBodySize(maxBody), webhook.WithUnverifiedBudget(budget),
		webhook.WithObserver(func(o webhook.Observation) { answered <- o }))
	handled := make(chan string, 1)
	h.On("workflow_run", func(_ context.Context, d *webhook.Delivery) error { handled <- d.ID; return nil })
	reading := make(chan struct{}, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = &signalReads{ReadCloser: r.Body, reading: reading}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	client := srv.Client()
	post := func(id string, body io.Reader, n int64, sig string) *http.Request {
		req, err := http.NewRequest(http.MethodPost, srv.URL, body)
		require.NoError(t, err)
		req.ContentLength = n
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "workflow_run")
		req.Header.Set("X-GitHub-Delivery", id)
		req.Header.Set("X-Hub-Signature-256", sig)
		return req
	}
	signed := func(id string) int {
		resp, err := client.Do(post(id, bytes.NewReader(runPayload), int64(len(runPayload)), webhook.Sign(secret, runPayload)))
		require.NoError(t, err)
		resp.Body.Close()
		<-answered
		return resp.StatusCode
	}

	type answer struct {
		i    int
		resp *http.Response
	}
	const n = 20
	pipes := make([]*io.PipeWriter, n)
	answers := make(chan answer, n)
	for i := range pipes {
		pr, pw := io.Pipe()
		pipes[i] = pw
		req := post("flood-"+strconv.Itoa(i), pr, maxBody, webhook.Sign("guess", nil))
		go func() {
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			answers <- answer{i, resp}
		}()
	}
	// Four bodies of the largest size fill the budget; the sixteen others
	// are answered at once, unread.
	refused := map[int]bool{}
	for range n - 4 {
		a := <-answers
		require.NotNil(t, a.resp)
		assert.Equal(t, http.StatusServiceUnavailable, a.resp.StatusCode)
		assert.Equal(t, "1", a.resp.Header.Get("Retry-After"))
		assert.Equal(t, webhook.OutcomeBusy, (<-answered).Outcome)
		refused[a.i] = true
		pipes[a.i].CloseWithError(errors.New("refused: stop sending"))
	}
	for range 4 {
		<-reading
	}
	assert.Empty(t, reading, "no refused body was read")
	assert.Equal(t, int64(budget), h.UnverifiedBytes())
	assert.Equal(t, http.StatusServiceUnavailable, signed("signed-1"), "the budget is spent for signed deliveries too")

	var held []int
	for i := range n {
		if !refused[i] {
			held = append(held, i)
		}
	}
	require.Len(t, held, 4)
	// One held body arrives in full, fails its signature and gives its
	// bytes back: a signed delivery now gets through.
	go func() {
		_, _ = pipes[held[0]].Write(bytes.Repeat([]byte("x"), maxBody))
		pipes[held[0]].Close()
	}()
	a := <-answers
	require.Equal(t, held[0], a.i)
	assert.Equal(t, http.StatusUnauthorized, a.resp.StatusCode)
	assert.Equal(t, webhook.OutcomeBadSignature, (<-answered).Outcome)
	assert.Equal(t, int64(budget-maxBody), h.UnverifiedBytes())
	assert.Equal(t, http.StatusOK, signed("signed-2"))
	assert.Equal(t, "signed-2", <-handled)

	// The other clients hang up midway: the server gives their bytes back.
	for _, i := range held[1:] {
		pipes[i].CloseWithError(errors.New("client hangs up"))
	}
	for range held[1:] {
		assert.Equal(t, webhook.OutcomeMalformed, (<-answered).Outcome)
		<-answers
	}
	assert.Zero(t, h.UnverifiedBytes())
}

// A budget below the largest body is raised to it: a delivery of the
// largest size always fits once it is alone.
func TestUnverifiedBudgetBelowMaxBody(t *testing.T) {
	t.Parallel()
	h := newHandler(t, webhook.WithMaxBodySize(1000), webhook.WithUnverifiedBudget(10))
	for _, contentLength := range []bool{true, false} {
		r, body := heldRequest(1000, contentLength)
		body.letGo <- nil
		assert.Equal(t, http.StatusUnauthorized, serve(h, r).Code, "Content-Length given: %v", contentLength)
	}
	assert.Zero(t, h.UnverifiedBytes())
}
