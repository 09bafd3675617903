package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ghbridge/ghbridge/webhook"
)

// FuzzVerify throws arbitrary bodies, signatures and GitHub headers (any
// bytes) at the handler: it must never panic, never accept a delivery
// whose signature is not the HMAC of its body under a configured secret,
// answer 400 to headers that are not UTF-8 or too long, give observers
// only bounded event labels, and give back every unverified byte.
func FuzzVerify(f *testing.F) {
	f.Add([]byte(`{"action":"completed"}`), webhook.Sign(secret, []byte(`{"action":"completed"}`)), "workflow_run", false, "d1", "1", false)
	f.Add([]byte(`{"action":"completed"}`), "sha256=00", "workflow_run", false, "d1", "", true)
	f.Add([]byte("Hello, World!"), "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "push", false, "d1", "", false)
	f.Add([]byte(`payload=%7B%7D`), webhook.Sign(secret, []byte(`payload=%7B%7D`)), "ping", true, "d1", "1", false)
	f.Add([]byte{}, "", "", false, "", "", false)
	f.Add([]byte(`{}`), webhook.Sign(secret, []byte(`{}`)), "workflow_run\xff", false, "d\xc3\x28", "\x80", true)
	f.Add([]byte(`{}`), webhook.Sign(secret, []byte(`{}`)), "évènement", false, strings.Repeat("d", 257), "1", false)
	f.Add([]byte(`{"action":"completed"}`), strings.ToUpper(webhook.Sign(secret, []byte(`{"action":"completed"}`))), "workflow_run", false, "d1", "1", false)
	for event, payloads := range loadCorpus(f).Events {
		p := payloads[0]
		f.Add([]byte(p), webhook.Sign(secret, p), event, false, "d1", "1", false)
	}
	var obs webhook.Observation
	h, err := webhook.New([]string{secret, "second"}, webhook.WithSHA1(true), webhook.WithMaxBodySize(1<<16),
		webhook.WithObserver(func(o webhook.Observation) { obs = o }))
	if err != nil {
		f.Fatal(err)
	}
	h.On("workflow_run", func(context.Context, *webhook.Delivery) error { return nil })
	webhook.Handle(h, "push", func(context.Context, *webhook.Delivery, *webhook.WorkflowRunEvent) error { return nil })
	f.Fuzz(func(t *testing.T, body []byte, sig, event string, form bool, delivery, hookID string, chunked bool) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
		r.Header.Set("Content-Type", "application/json")
		if form {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if chunked {
			r.ContentLength = -1
		}
		r.Header.Set("X-GitHub-Event", event)
		r.Header.Set("X-GitHub-Delivery", delivery)
		r.Header.Set("X-GitHub-Hook-ID", hookID)
		r.Header.Set("X-Hub-Signature-256", sig)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		badHeader := false
		for _, v := range []string{event, delivery, hookID} {
			badHeader = badHeader || !utf8.ValidString(v) || len(v) > 256
		}
		// Authentic: the HMAC under a secret, as GitHub writes it
		// ("sha256=" and hex), in any case, around white space that
		// header parsing would drop.
		sig = strings.TrimSpace(sig)
		authentic := strings.EqualFold(sig, webhook.Sign(secret, body)) || strings.EqualFold(sig, webhook.Sign("second", body))
		switch {
		case badHeader && w.Code != http.StatusBadRequest:
			t.Fatalf("a header that is not UTF-8 or too long got %d", w.Code)
		case !authentic && w.Code != http.StatusUnauthorized && w.Code != http.StatusRequestEntityTooLarge && w.Code != http.StatusBadRequest:
			t.Fatalf("a delivery with a bad signature got %d", w.Code)
		case !authentic && !badHeader && w.Code == http.StatusBadRequest:
			t.Fatalf("a delivery with a bad signature got 400 with good headers: %s", w.Body)
		case authentic && w.Code == http.StatusUnauthorized:
			t.Fatalf("an authentic delivery was refused: %s", w.Body)
		}
		if obs.Event != webhook.EventLabel(obs.Event) || (obs.Event != event && obs.Event != webhook.OtherEvent) {
			t.Fatalf("observed event label %q for %q", obs.Event, event)
		}
		if n := h.UnverifiedBytes(); n != 0 {
			t.Fatalf("%d unverified bytes still held", n)
		}
	})
}

// FuzzDecode checks the decoding of every event type against
// encoding/json: same verdict on validity, same result, and nothing of
// the result changes when the payload is modified after the decoding.
func FuzzDecode(f *testing.F) {
	f.Add(runPayload)
	f.Add([]byte(`{"action":"closed","number":7,"pull_request":{"merged":true,"body":"x","head":{"ref":"a"}}}`))
	f.Add([]byte(`{"action":"created","installation":{"id":1,"account":{"login":"a"},"suspended_at":null},"repositories":[{"full_name":"a/b"}]}`))
	f.Add([]byte(`{"deployment":{"id":1,"payload":{"job_id":"j"}},"deployment_status":{"state":"success","created_at":"2026-01-01T00:00:00Z"}}`))
	f.Add([]byte(`{"workflow_job":{"steps":[{"name":"a","number":1}],"completed_at":null}}`))
	f.Add([]byte(`{"a":"\ud800"}`))
	f.Add([]byte(`{"workflow_run":{"id":1e3}}`))
	// One recorded payload of each event: TestCorpus checks every one
	// against encoding/json in its own event type.
	for _, payloads := range loadCorpus(f).Events {
		f.Add([]byte(payloads[0]))
	}
	types := []func() any{
		func() any { return new(webhook.WorkflowRunEvent) }, func() any { return new(webhook.WorkflowJobEvent) },
		func() any { return new(webhook.InstallationEvent) }, func() any { return new(webhook.InstallationRepositoriesEvent) },
		func() any { return new(webhook.DeploymentStatusEvent) }, func() any { return new(webhook.CheckRunEvent) },
		func() any { return new(webhook.PullRequestEvent) }, func() any { return new(webhook.DeploymentProtectionRuleEvent) },
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		valid := json.Valid(payload)
		for _, mk := range types {
			fast, std := mk(), mk()
			// The event must not refer to the payload: a handler may
			// modify it afterwards.
			d := &webhook.Delivery{Event: "x", Payload: bytes.Clone(payload)}
			errFast := d.Decode(fast)
			for i := range d.Payload {
				d.Payload[i] = '#'
			}
			errStd := json.Unmarshal(payload, std)
			if !valid && errFast == nil {
				t.Fatalf("invalid JSON accepted into %T: %q", fast, payload)
			}
			if errFast == nil && errStd == nil && !reflect.DeepEqual(fast, std) {
				t.Fatalf("decoders disagree on %T:\nfast %+v\nstd  %+v", fast, fast, std)
			}
		}
	})
}
