package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"io"
	"net/http"
	"strconv"
	"testing"

	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/webhook"
)

// benchRequest builds a delivery request cheaply, so that the benchmarks
// measure handling rather than httptest's request parsing.
func benchRequest(payload []byte, sig, id string) *http.Request {
	return &http.Request{
		Method:        http.MethodPost,
		Header:        http.Header{"Content-Type": {"application/json"}, "X-Github-Event": {"workflow_run"}, "X-Github-Delivery": {id}, "X-Hub-Signature-256": {sig}},
		Body:          io.NopCloser(bytes.NewReader(payload)),
		ContentLength: int64(len(payload)),
	}
}

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkDelivery compares, on the workflow_run fixture as GitHub sends
// it (compact JSON): ghbridge's whole handling (read, verify, decode,
// de-duplicate, route to a typed handler), bare HMAC-SHA256 of the same
// bytes (the floor), and go-github's ValidatePayload + ParseWebHook.
func BenchmarkDelivery(b *testing.B) {
	payload := fixture(b, "workflow_run_completed_success.json")
	sig := webhook.Sign(secret, payload)

	b.Run("ghbridge", func(b *testing.B) {
		h, err := webhook.New([]string{secret})
		if err != nil {
			b.Fatal(err)
		}
		var runID int64
		webhook.Handle(h, "workflow_run", func(_ context.Context, _ *webhook.Delivery, e *webhook.WorkflowRunEvent) error {
			runID = e.WorkflowRun.ID
			return nil
		})
		w := &discard{h: http.Header{}}
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			h.ServeHTTP(w, benchRequest(payload, sig, strconv.Itoa(i)))
		}
		if runID != 30433642 {
			b.Fatal("not routed")
		}
	})
	b.Run("baseline-hmac-sha256", func(b *testing.B) {
		key := []byte(secret)
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		for b.Loop() {
			m := hmac.New(sha256.New, key)
			m.Write(payload)
			m.Sum(nil)
		}
	})
	b.Run("go-github", func(b *testing.B) {
		key := []byte(secret)
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		for b.Loop() {
			r := benchRequest(payload, sig, "x")
			body, err := gh.ValidatePayload(r, key)
			if err != nil {
				b.Fatal(err)
			}
			ev, err := gh.ParseWebHook(gh.WebHookType(r), body)
			if err != nil {
				b.Fatal(err)
			}
			if ev.(*gh.WorkflowRunEvent).GetWorkflowRun().GetID() != 30433642 {
				b.Fatal("wrong run")
			}
		}
	})
}
