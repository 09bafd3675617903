package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"
	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/webhook"
)

// benchRequest is one delivery request, made ready again for each
// delivery: the benchmarks measure handling, not building requests (which
// net/http does whatever the handler).
type benchRequest struct {
	req     http.Request
	body    bytes.Reader
	payload []byte
}

func newBenchRequest(payload []byte, sig string) *benchRequest {
	q := &benchRequest{payload: payload}
	q.req = http.Request{
		Method:        http.MethodPost,
		Header:        http.Header{"Content-Type": {"application/json"}, "X-Github-Event": {"workflow_run"}, "X-Github-Delivery": {""}, "X-Hub-Signature-256": {sig}},
		Body:          io.NopCloser(&q.body),
		ContentLength: int64(len(payload)),
	}
	return q
}

// next returns the request, ready for a delivery with id.
func (q *benchRequest) next(id string) *http.Request {
	q.body.Reset(q.payload)
	q.req.Header["X-Github-Delivery"][0] = id
	return &q.req
}

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// smallWorkflowRun returns a workflow_run delivery of about 2 KB: the
// fixture without the nested actors, repositories, organization and
// sender. At this size the per-delivery fixed cost dominates.
func smallWorkflowRun(b *testing.B) []byte {
	b.Helper()
	var m map[string]any
	if err := json.Unmarshal(fixture(b, "workflow_run_completed_success.json"), &m); err != nil {
		b.Fatal(err)
	}
	for _, k := range []string{"workflow", "organization", "sender"} {
		delete(m, k)
	}
	run := m["workflow_run"].(map[string]any)
	for _, k := range []string{"actor", "repository", "head_repository", "head_commit"} {
		delete(run, k)
	}
	run["triggering_actor"] = map[string]any{"login": "octocat", "id": 1, "type": "User"}
	repo := m["repository"].(map[string]any)
	small := map[string]any{"owner": map[string]any{"login": "acme", "id": 2, "type": "Organization"}}
	for _, k := range []string{"id", "node_id", "name", "full_name", "private", "html_url", "url", "description", "default_branch", "visibility", "created_at", "pushed_at"} {
		small[k] = repo[k]
	}
	m["repository"] = small
	out, err := json.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkDelivery compares, in one process and on workflow_run
// deliveries as GitHub sends them (compact JSON), at 18 KB (the fixture)
// and at 2 KB (where the fixed cost per delivery shows):
//
//   - path=hmac: bare HMAC-SHA256 of the same bytes, the floor;
//   - path=ghbridge: the whole handling (read, verify, decode, de-duplicate
//     in memory, route to a typed handler);
//   - path=go-github: go-github's ValidatePayloadFromBody + ParseWebHook.
//
// Compare the columns with: benchstat -col /path -row /size.
func BenchmarkDelivery(b *testing.B) {
	sizes := []struct {
		name    string
		payload []byte
	}{
		{"18KB", fixture(b, "workflow_run_completed_success.json")},
		{"2KB", smallWorkflowRun(b)},
	}
	for _, s := range sizes {
		payload := s.payload
		sig := webhook.Sign(secret, payload)
		b.Run("size="+s.name+"/path=hmac", func(b *testing.B) {
			key := []byte(secret)
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				m := hmac.New(sha256.New, key)
				m.Write(payload)
				m.Sum(nil)
			}
		})
		b.Run("size="+s.name+"/path=ghbridge", func(b *testing.B) {
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
			q := newBenchRequest(payload, sig)
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				h.ServeHTTP(w, q.next(strconv.Itoa(i)))
			}
			if runID != 30433642 {
				b.Fatal("not routed")
			}
		})
		b.Run("size="+s.name+"/path=go-github", func(b *testing.B) {
			key := []byte(secret)
			q := newBenchRequest(payload, sig)
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				r := q.next("x")
				body, err := gh.ValidatePayloadFromBody(r.Header.Get("Content-Type"), r.Body, r.Header.Get("X-Hub-Signature-256"), key)
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
}

// BenchmarkDecodeLibrary decides whether goccy/go-json earns its place:
// decoding a workflow_run delivery into the event Handle gives handlers,
// with goccy/go-json (what the handler uses) and with encoding/json, next
// to bare HMAC-SHA256 of the same bytes.
//
// Compare with: benchstat -col /lib -row /size.
func BenchmarkDecodeLibrary(b *testing.B) {
	sizes := []struct {
		name    string
		payload []byte
	}{
		{"18KB", fixture(b, "workflow_run_completed_success.json")},
		{"2KB", smallWorkflowRun(b)},
	}
	for _, s := range sizes {
		payload := s.payload
		b.Run("size="+s.name+"/lib=hmac", func(b *testing.B) {
			key := []byte(secret)
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				m := hmac.New(sha256.New, key)
				m.Write(payload)
				m.Sum(nil)
			}
		})
		for _, lib := range []struct {
			name      string
			unmarshal func([]byte, any) error
		}{{"goccy", gojson.Unmarshal}, {"encoding-json", json.Unmarshal}} {
			b.Run("size="+s.name+"/lib="+lib.name, func(b *testing.B) {
				b.SetBytes(int64(len(payload)))
				b.ReportAllocs()
				for b.Loop() {
					var e webhook.WorkflowRunEvent
					if err := lib.unmarshal(payload, &e); err != nil || e.WorkflowRun.ID != 30433642 {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkDeliveryInterleaved measures the three paths of
// BenchmarkDelivery in turn within each iteration, and reports the
// medians of their times as ratios: how long ghbridge takes per bare
// HMAC ("x-hmac"), what it adds to HMAC ("ns-over-hmac", the fixed cost at
// 2 KB) and how many times faster than go-github it is ("x-faster-than-
// go-github"). Interleaved and by medians, the ratios hold on a busy
// machine, where BenchmarkDelivery's separate runs drift apart.
func BenchmarkDeliveryInterleaved(b *testing.B) {
	for _, s := range []struct {
		name    string
		payload []byte
	}{
		{"18KB", fixture(b, "workflow_run_completed_success.json")},
		{"2KB", smallWorkflowRun(b)},
	} {
		b.Run("size="+s.name, func(b *testing.B) {
			payload, key := s.payload, []byte(secret)
			sig := webhook.Sign(secret, payload)
			h, err := webhook.New([]string{secret})
			if err != nil {
				b.Fatal(err)
			}
			webhook.Handle(h, "workflow_run", func(context.Context, *webhook.Delivery, *webhook.WorkflowRunEvent) error { return nil })
			w := &discard{h: http.Header{}}
			q, qg := newBenchRequest(payload, sig), newBenchRequest(payload, sig)
			var hm, gb, gg []time.Duration
			i := 0
			for b.Loop() {
				// The requests are made ready before the clock starts: it
				// measures handling only.
				i++
				r, rg := q.next(strconv.Itoa(i)), qg.next("x")
				t0 := time.Now()
				m := hmac.New(sha256.New, key)
				m.Write(payload)
				m.Sum(nil)
				t1 := time.Now()
				h.ServeHTTP(w, r)
				t2 := time.Now()
				body, err := gh.ValidatePayloadFromBody(rg.Header.Get("Content-Type"), rg.Body, rg.Header.Get("X-Hub-Signature-256"), key)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := gh.ParseWebHook(gh.WebHookType(rg), body); err != nil {
					b.Fatal(err)
				}
				t3 := time.Now()
				hm, gb, gg = append(hm, t1.Sub(t0)), append(gb, t2.Sub(t1)), append(gg, t3.Sub(t2))
			}
			median := func(d []time.Duration) float64 {
				slices.Sort(d)
				return float64(d[len(d)/2])
			}
			mh, mg, mgg := median(hm), median(gb), median(gg)
			b.ReportMetric(mg/mh, "x-hmac")
			b.ReportMetric(mg-mh, "ns-over-hmac")
			b.ReportMetric(mgg/mg, "x-faster-than-go-github")
		})
	}
}
