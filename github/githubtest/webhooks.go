package githubtest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

type webhookConfig struct {
	url    string
	secret string
	client *http.Client
	// id and repo identify a repository webhook; zero for the App's.
	id   int64
	repo string
}

// Delivery is one webhook delivery attempt the fake made. Hosts assert with
// it on what their webhook endpoint answered (Deliver, Deliveries).
type Delivery struct {
	ID             int64
	GUID           string
	Event          string
	Action         string
	InstallationID int64
	RepositoryID   int64
	Payload        []byte
	// Header is the request's headers as sent, signatures included.
	Header http.Header
	// HookID is the repository webhook that sent it; 0 for the App's.
	HookID int64
	// StatusCode is the receiver's answer; 0 when it could not be reached.
	StatusCode  int
	Error       string
	Redelivery  bool
	DeliveredAt time.Time
	Duration    time.Duration
}

// OK reports whether the receiver answered 2xx.
func (d Delivery) OK() bool { return d.StatusCode >= 200 && d.StatusCode < 300 }

// SetAppEvents sets the events the App subscribes to (GET /app's
// events); by default workflow_run, workflow_job, deployment_status,
// check_run and pull_request.
func (s *Server) SetAppEvents(events ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appEvents = slices.Clone(events)
	if s.appEvents == nil {
		s.appEvents = []string{}
	}
}

// events returns the App's events; the caller holds s.mu or owns s.
func (s *Server) events() []string {
	if s.appEvents == nil {
		return []string{"workflow_run", "workflow_job", "deployment_status", "check_run", "pull_request"}
	}
	return slices.Clone(s.appEvents)
}

// SetWebhook makes the fake deliver events to url, signed with secret (an
// empty secret sends unsigned deliveries, as GitHub does).
func (s *Server) SetWebhook(url, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = webhookConfig{url: url, secret: secret, client: &http.Client{Timeout: 10 * time.Second}}
}

// WaitDeliveries waits until the deliveries the server sends in the
// background (redeliveries asked for through the API, pull request events
// of merges) have been answered and logged, so that a test can assert on
// them without polling.
func (s *Server) WaitDeliveries() { s.bg.Wait() }

// Deliveries returns every delivery attempt, oldest first.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, len(s.deliveries))
	for i, d := range s.deliveries {
		out[i] = *d
	}
	return out
}

// Sign returns the X-Hub-Signature-256 value for body under secret. Tests
// that post deliveries of their own to a webhook endpoint sign them with it.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// SignSHA1 returns the legacy X-Hub-Signature value for body. Tests of the
// legacy header use it.
func SignSHA1(secret string, body []byte) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write(body)
	return "sha1=" + hex.EncodeToString(m.Sum(nil))
}

// Deliver sends an event to the webhook URL the way GitHub does: JSON
// body, X-GitHub-Event, X-GitHub-Delivery, X-GitHub-Hook-* headers and
// both signatures. payload is marshalled unless it is []byte or
// json.RawMessage. The delivery is recorded whatever the outcome; the
// error reports a receiver that could not be reached or did not answer
// 2xx.
func (s *Server) Deliver(event string, payload any) (Delivery, error) {
	var body []byte
	switch p := payload.(type) {
	case []byte:
		body = p
	case json.RawMessage:
		body = p
	default:
		var err error
		if body, err = json.Marshal(payload); err != nil {
			return Delivery{}, fmt.Errorf("githubtest: marshalling the %s payload: %w", event, err)
		}
	}
	var head struct {
		Action       string `json:"action"`
		Installation struct {
			ID int64 `json:"id"`
		} `json:"installation"`
		Repository struct {
			ID int64 `json:"id"`
		} `json:"repository"`
	}
	_ = json.Unmarshal(body, &head)
	s.mu.Lock()
	d := &Delivery{
		ID: s.id(), GUID: newGUID(), Event: event, Action: head.Action,
		InstallationID: head.Installation.ID, RepositoryID: head.Repository.ID, Payload: body,
	}
	s.mu.Unlock()
	return s.send(d)
}

func (s *Server) send(d *Delivery) (Delivery, error) {
	s.mu.Lock()
	hook := s.hook
	s.mu.Unlock()
	return s.sendTo(hook, d)
}

// sendTo delivers d through hook (the App's, or a repository's).
func (s *Server) sendTo(hook webhookConfig, d *Delivery) (Delivery, error) {
	d.HookID = hook.id
	if hook.url == "" {
		return *d, fmt.Errorf("githubtest: no webhook URL set (call SetWebhook)")
	}
	req, err := http.NewRequest(http.MethodPost, hook.url, bytes.NewReader(d.Payload))
	if err != nil {
		return *d, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/fake")
	req.Header.Set("X-GitHub-Event", d.Event)
	req.Header.Set("X-GitHub-Delivery", d.GUID)
	req.Header.Set("X-GitHub-Hook-ID", strconv.FormatInt(max(hook.id, 1), 10))
	if hook.repo != "" {
		req.Header.Set("X-GitHub-Hook-Installation-Target-Type", "repository")
		req.Header.Set("X-GitHub-Hook-Installation-Target-ID", strconv.FormatInt(d.RepositoryID, 10))
	} else {
		req.Header.Set("X-GitHub-Hook-Installation-Target-Type", "integration")
		req.Header.Set("X-GitHub-Hook-Installation-Target-ID", strconv.FormatInt(s.AppID, 10))
	}
	if hook.secret != "" {
		req.Header.Set("X-Hub-Signature", SignSHA1(hook.secret, d.Payload))
		req.Header.Set("X-Hub-Signature-256", Sign(hook.secret, d.Payload))
	}
	d.Header = req.Header.Clone()
	start := time.Now()
	resp, err := hook.client.Do(req)
	d.Duration = time.Since(start)
	d.DeliveredAt = s.now()
	if err != nil {
		d.Error = err.Error()
	} else {
		d.StatusCode = resp.StatusCode
		_ = resp.Body.Close()
	}
	s.mu.Lock()
	s.deliveries = append(s.deliveries, d)
	out := *d
	s.mu.Unlock()
	switch {
	case err != nil:
		return out, fmt.Errorf("githubtest: delivering %s %s: %w", d.Event, d.GUID, err)
	case !out.OK():
		return out, fmt.Errorf("githubtest: delivering %s %s: receiver answered %d", d.Event, d.GUID, out.StatusCode)
	}
	return out, nil
}

func newGUID() string {
	h := randomHex(16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// RunEventPayload returns the workflow_run webhook payload GitHub would send
// for the run's current state with action. Tests that post workflow_run
// deliveries of their own use it.
func (s *Server) RunEventPayload(id int64, action string) (map[string]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rn := s.runs[id]
	if rn == nil {
		return nil, fmt.Errorf("no run %d", id)
	}
	return s.runEventPayload(rn, action), nil
}

func (s *Server) runEventPayload(rn *run, action string) map[string]any {
	p := map[string]any{
		"action":       action,
		"workflow_run": s.runJSON(rn, nil),
		"sender":       map[string]any{"login": "octocat", "id": 1, "type": "User"},
	}
	if rp := s.repos[strings.ToLower(rn.Owner+"/"+rn.Repo)]; rp != nil {
		p["repository"] = s.repoJSON(rp)
		if wf := rp.workflow(strconv.FormatInt(rn.WorkflowID, 10)); wf != nil {
			p["workflow"] = s.workflowJSON(rp, wf)
		}
		for _, id := range slices.Sorted(maps.Keys(s.installations)) {
			if in := s.installations[id]; in.grants(rp.Owner, rp.Name) {
				p["installation"] = map[string]any{"id": in.ID, "node_id": "MDIz" + strconv.FormatInt(in.ID, 10)}
				break
			}
		}
	}
	return p
}

// deliverRunEvent sends a workflow_run delivery when a webhook is set:
// the App's, and every webhook of the run's repository that subscribes to
// workflow_run. The error is the App hook's.
func (s *Server) deliverRunEvent(r Run, action string) (Delivery, error) {
	s.mu.Lock()
	rn := s.runs[r.ID]
	payload := s.runEventPayload(rn, action)
	repoHooks := s.hooksFor(rn.Owner, rn.Repo, "workflow_run")
	appHook := s.hook.url != ""
	s.mu.Unlock()
	if len(repoHooks) > 0 {
		// A repository webhook's payload names no installation.
		rp := maps.Clone(payload)
		delete(rp, "installation")
		body, err := json.Marshal(rp)
		if err != nil {
			return Delivery{}, err
		}
		for _, h := range repoHooks {
			s.mu.Lock()
			d := &Delivery{ID: s.id(), GUID: newGUID(), Event: "workflow_run", Action: action, Payload: body}
			if repo, ok := rp["repository"].(map[string]any); ok {
				d.RepositoryID, _ = repo["id"].(int64)
			}
			s.mu.Unlock()
			_, _ = s.sendTo(h, d)
		}
	}
	if !appHook {
		return Delivery{}, nil
	}
	return s.Deliver("workflow_run", payload)
}

// hookRoutes serves the App's delivery log, used to find and redeliver
// failed deliveries.
// hookRoutes serves the App webhook's delivery log.
func (s *Server) hookRoutes(mux router) {
	s.handle(mux, "GET /app/hook/deliveries", authApp, s.listAppHookDeliveries)
	s.handle(mux, "GET /app/hook/deliveries/{delivery_id}", authApp, s.getAppHookDelivery)
	s.handle(mux, "POST /app/hook/deliveries/{delivery_id}/attempts", authApp, s.redeliverAppHook)
}

// listAppHookDeliveries pages through the App's deliveries, newest first,
// with a cursor in the Link header.
func (s *Server) listAppHookDeliveries(w http.ResponseWriter, r *http.Request, _ caller) {
	s.mu.Lock()
	s.writeDeliveryPage(w, r, 0)
}

// writeDeliveryPage answers one page of a hook's deliveries (0: the
// App's), newest first, with the next cursor in the Link header. It is
// called with s.mu held and releases it before answering.
func (s *Server) writeDeliveryPage(w http.ResponseWriter, r *http.Request, hookID int64) {
	_, perPage := paging(r.URL.Query())
	cursor, _ := strconv.ParseInt(r.URL.Query().Get("cursor"), 10, 64)
	list := []any{}
	var next int64
	for _, d := range slices.Backward(s.deliveries) {
		if d.HookID != hookID || (cursor != 0 && d.ID >= cursor) {
			continue
		}
		if len(list) == perPage {
			next = d.ID + 1
			break
		}
		list = append(list, s.deliveryJSON(d))
	}
	s.mu.Unlock()
	if next != 0 {
		s.linkNext(w, r, "cursor", strconv.FormatInt(next, 10))
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) getAppHookDelivery(w http.ResponseWriter, r *http.Request, _ caller) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.findDelivery(r.PathValue("delivery_id"))
	if d == nil || d.HookID != 0 {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.deliveryDetailJSON(d))
}

// redeliverAppHook answers at once and sends the delivery again in the
// background, as GitHub queues it.
func (s *Server) redeliverAppHook(w http.ResponseWriter, r *http.Request, _ caller) {
	s.mu.Lock()
	d := s.findDelivery(r.PathValue("delivery_id"))
	var again *Delivery
	if d != nil && d.HookID == 0 {
		again = &Delivery{ID: s.id(), GUID: d.GUID, Event: d.Event, Action: d.Action,
			InstallationID: d.InstallationID, RepositoryID: d.RepositoryID, Payload: d.Payload, Redelivery: true}
	}
	s.mu.Unlock()
	if again == nil {
		notFound(w)
		return
	}
	// GitHub queues the redelivery and answers at once.
	writeJSON(w, http.StatusAccepted, map[string]any{})
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		_, _ = s.send(again)
	}()
}

func (s *Server) findDelivery(raw string) *Delivery {
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return nil
	}
	for _, d := range s.deliveries {
		if d.ID == id {
			return d
		}
	}
	return nil
}

func (s *Server) deliveryJSON(d *Delivery) map[string]any {
	status := "OK"
	if !d.OK() {
		status = fmt.Sprintf("Invalid HTTP Response: %d", d.StatusCode)
		if d.StatusCode == 0 {
			status = "Failed to connect to host"
		}
	}
	var action any
	if d.Action != "" {
		action = d.Action
	}
	return map[string]any{
		"id":              d.ID,
		"guid":            d.GUID,
		"delivered_at":    d.DeliveredAt.UTC().Format(time.RFC3339),
		"redelivery":      d.Redelivery,
		"duration":        d.Duration.Seconds(),
		"status":          status,
		"status_code":     d.StatusCode,
		"event":           d.Event,
		"action":          action,
		"installation_id": d.InstallationID,
		"repository_id":   d.RepositoryID,
	}
}

// deliveryDetailJSON is a delivery with its request and response, as GET
// .../deliveries/{id} answers: the request headers as sent (signatures
// included) and the payload.
func (s *Server) deliveryDetailJSON(d *Delivery) map[string]any {
	m := s.deliveryJSON(d)
	headers := map[string]string{}
	for k := range d.Header {
		headers[k] = d.Header.Get(k)
	}
	m["request"] = map[string]any{"headers": headers, "payload": json.RawMessage(d.Payload)}
	m["response"] = map[string]any{"headers": map[string]string{}, "payload": nil}
	return m
}
