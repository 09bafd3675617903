package githubtest

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RepoHook is a repository webhook in the fake. Hosts that manage repository
// webhooks set up and assert on them.
type RepoHook struct {
	ID          int64
	Owner, Repo string
	URL         string
	// Secret is kept as set; GitHub never shows it.
	Secret      string
	ContentType string // "json" or "form"
	InsecureSSL string // "0" or "1"
	Events      []string
	Active      bool
}

type repoHook struct {
	RepoHook
	createdAt, updatedAt time.Time
}

// AddRepoHook adds a repository webhook, as a person would in the
// repository's settings, and returns it with its id.
func (s *Server) AddRepoHook(h RepoHook) RepoHook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addRepoHook(h).RepoHook
}

func (s *Server) addRepoHook(h RepoHook) *repoHook {
	if s.repoHooks == nil {
		s.repoHooks = map[int64]*repoHook{}
	}
	h.ID = s.id()
	h.Events = slices.Clone(h.Events)
	if h.ContentType == "" {
		h.ContentType = "form"
	}
	if h.InsecureSSL == "" {
		h.InsecureSSL = "0"
	}
	rh := &repoHook{RepoHook: h, createdAt: s.now(), updatedAt: s.now()}
	s.repoHooks[h.ID] = rh
	return rh
}

// RepoHooks returns the webhooks of a repository, oldest first.
func (s *Server) RepoHooks(owner, repo string) []RepoHook {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []RepoHook
	for _, id := range slices.Sorted(maps.Keys(s.repoHooks)) {
		h := s.repoHooks[id]
		if strings.EqualFold(h.Owner, owner) && strings.EqualFold(h.Repo, repo) {
			c := h.RepoHook
			c.Events = slices.Clone(c.Events)
			out = append(out, c)
		}
	}
	return out
}

// subscribes reports whether the hook wants the event.
func (h *repoHook) subscribes(event string) bool {
	return h.Active && (slices.Contains(h.Events, event) || slices.Contains(h.Events, "*"))
}

// hooksFor returns the active webhooks of a repository that want event.
// The caller holds s.mu.
func (s *Server) hooksFor(owner, repo, event string) []webhookConfig {
	var out []webhookConfig
	for _, id := range slices.Sorted(maps.Keys(s.repoHooks)) {
		h := s.repoHooks[id]
		if strings.EqualFold(h.Owner, owner) && strings.EqualFold(h.Repo, repo) && h.subscribes(event) {
			out = append(out, h.config())
		}
	}
	return out
}

func (h *repoHook) config() webhookConfig {
	return webhookConfig{url: h.URL, secret: h.Secret, id: h.ID, repo: h.Owner + "/" + h.Repo,
		client: &http.Client{Timeout: 10 * time.Second}}
}

func (s *Server) repoHookJSON(h *repoHook) map[string]any {
	base := s.apiURL("/repos/%s/%s/hooks/%d", h.Owner, h.Repo, h.ID)
	cfg := map[string]any{"url": h.URL, "content_type": h.ContentType, "insecure_ssl": h.InsecureSSL}
	if h.Secret != "" {
		cfg["secret"] = "********"
	}
	last := map[string]any{"code": nil, "status": "unused", "message": nil}
	for _, d := range slices.Backward(s.deliveries) {
		if d.HookID == h.ID {
			last = map[string]any{"code": d.StatusCode, "status": "active", "message": d.Error}
			break
		}
	}
	return map[string]any{
		"type": "Repository", "id": h.ID, "name": "web", "active": h.Active, "events": slices.Clone(h.Events),
		"config": cfg, "updated_at": h.updatedAt.UTC().Format(time.RFC3339), "created_at": h.createdAt.UTC().Format(time.RFC3339),
		"url": base, "test_url": base + "/test", "ping_url": base + "/pings", "deliveries_url": base + "/deliveries",
		"last_response": last,
	}
}

type hookConfigBody struct {
	URL         *string `json:"url"`
	ContentType *string `json:"content_type"`
	Secret      *string `json:"secret"`
	InsecureSSL any     `json:"insecure_ssl"`
}

func (b *hookConfigBody) apply(h *RepoHook) {
	if b == nil {
		return
	}
	if b.URL != nil {
		h.URL = *b.URL
	}
	if b.ContentType != nil {
		h.ContentType = *b.ContentType
	}
	if b.Secret != nil {
		h.Secret = *b.Secret
	}
	switch v := b.InsecureSSL.(type) {
	case string:
		h.InsecureSSL = v
	case float64:
		h.InsecureSSL = strconv.FormatFloat(v, 'f', -1, 64)
	}
}

// findHook finds the request's hook in rp; it answers 404 and returns nil
// when there is none. s.mu is held.
func (s *Server) findHook(w http.ResponseWriter, r *http.Request, rp *repo) *repoHook {
	id, _ := strconv.ParseInt(r.PathValue("hook_id"), 10, 64)
	h := s.repoHooks[id]
	if h == nil || !strings.EqualFold(h.Owner, rp.Owner) || !strings.EqualFold(h.Repo, rp.Name) {
		notFound(w)
		return nil
	}
	return h
}

// lockHook is lockRepo (with the repository_hooks permission) and
// findHook: on success s.mu is held, otherwise it was released after
// answering.
func (s *Server) lockHook(w http.ResponseWriter, r *http.Request, c caller, level string) *repoHook {
	rp := s.lockRepo(w, r, c, "repository_hooks", level)
	if rp == nil {
		return nil
	}
	h := s.findHook(w, r, rp)
	if h == nil {
		s.mu.Unlock()
	}
	return h
}

// repoHookRoutes serves repository webhooks and their delivery logs.
func (s *Server) repoHookRoutes(mux router) {
	const perm = "repository_hooks"
	s.handleRepo(mux, "GET /repos/{owner}/{repo}/hooks", perm, "read", s.listRepoHooks)
	handleRepoJSON(s, mux, "POST /repos/{owner}/{repo}/hooks", perm, "write", s.createRepoHook)
	s.handleRepo(mux, "GET /repos/{owner}/{repo}/hooks/{hook_id}", perm, "read", s.getRepoHook)
	handleRepoJSON(s, mux, "PATCH /repos/{owner}/{repo}/hooks/{hook_id}", perm, "write", s.updateRepoHook)
	s.handle(mux, "GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries", authToken, s.listRepoHookDeliveries)
	s.handleRepo(mux, "GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}", perm, "read", s.getRepoHookDelivery)
	s.handle(mux, "POST /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts", authToken, s.redeliverRepoHook)
}

func (s *Server) listRepoHooks(w http.ResponseWriter, _ *http.Request, _ caller, rp *repo) {
	out := []any{}
	for _, id := range slices.Sorted(maps.Keys(s.repoHooks)) {
		if h := s.repoHooks[id]; strings.EqualFold(h.Owner, rp.Owner) && strings.EqualFold(h.Repo, rp.Name) {
			out = append(out, s.repoHookJSON(h))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

type createRepoHookRequest struct {
	Name   string          `json:"name"`
	Config *hookConfigBody `json:"config"`
	Events []string        `json:"events"`
	Active *bool           `json:"active"`
}

func (s *Server) createRepoHook(w http.ResponseWriter, _ *http.Request, _ caller, rp *repo, body *createRepoHookRequest) {
	h := RepoHook{Owner: rp.Owner, Repo: rp.Name, Events: body.Events, Active: body.Active == nil || *body.Active}
	body.Config.apply(&h)
	if h.URL == "" {
		validationFailed(w, "https://docs.github.com/rest/repos/webhooks#create-a-repository-webhook",
			fieldError{Resource: "Hook", Code: "custom", Message: "Config must contain URL for webhooks"})
		return
	}
	if len(h.Events) == 0 {
		h.Events = []string{"push"}
	}
	for _, other := range s.repoHooks {
		if other.URL == h.URL && strings.EqualFold(other.Owner, rp.Owner) && strings.EqualFold(other.Repo, rp.Name) {
			validationFailed(w, "https://docs.github.com/rest/repos/webhooks#create-a-repository-webhook",
				fieldError{Resource: "Hook", Code: "custom", Message: "Hook already exists on this repository"})
			return
		}
	}
	writeJSON(w, http.StatusCreated, s.repoHookJSON(s.addRepoHook(h)))
}

func (s *Server) getRepoHook(w http.ResponseWriter, r *http.Request, _ caller, rp *repo) {
	if h := s.findHook(w, r, rp); h != nil {
		writeJSON(w, http.StatusOK, s.repoHookJSON(h))
	}
}

type updateRepoHookRequest struct {
	Config       *hookConfigBody `json:"config"`
	Events       []string        `json:"events"`
	AddEvents    []string        `json:"add_events"`
	RemoveEvents []string        `json:"remove_events"`
	Active       *bool           `json:"active"`
}

func (s *Server) updateRepoHook(w http.ResponseWriter, r *http.Request, _ caller, rp *repo, body *updateRepoHookRequest) {
	h := s.findHook(w, r, rp)
	if h == nil {
		return
	}
	body.Config.apply(&h.RepoHook)
	if body.Events != nil {
		h.Events = slices.Clone(body.Events)
	}
	for _, e := range body.AddEvents {
		if !slices.Contains(h.Events, e) {
			h.Events = append(h.Events, e)
		}
	}
	h.Events = slices.DeleteFunc(h.Events, func(e string) bool { return slices.Contains(body.RemoveEvents, e) })
	if body.Active != nil {
		h.Active = *body.Active
	}
	h.updatedAt = s.now()
	writeJSON(w, http.StatusOK, s.repoHookJSON(h))
}

// listRepoHookDeliveries pages through a hook's deliveries, newest first,
// with a cursor in the Link header.
func (s *Server) listRepoHookDeliveries(w http.ResponseWriter, r *http.Request, c caller) {
	h := s.lockHook(w, r, c, "read")
	if h == nil {
		return
	}
	s.writeDeliveryPage(w, r, h.ID)
}

func (s *Server) getRepoHookDelivery(w http.ResponseWriter, r *http.Request, _ caller, rp *repo) {
	h := s.findHook(w, r, rp)
	if h == nil {
		return
	}
	d := s.findDelivery(r.PathValue("delivery_id"))
	if d == nil || d.HookID != h.ID {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.deliveryDetailJSON(d))
}

// redeliverRepoHook answers at once and sends the delivery again in the
// background, as GitHub queues it.
func (s *Server) redeliverRepoHook(w http.ResponseWriter, r *http.Request, c caller) {
	h := s.lockHook(w, r, c, "write")
	if h == nil {
		return
	}
	d := s.findDelivery(r.PathValue("delivery_id"))
	if d == nil || d.HookID != h.ID {
		s.mu.Unlock()
		notFound(w)
		return
	}
	again := &Delivery{ID: s.id(), GUID: d.GUID, Event: d.Event, Action: d.Action, HookID: h.ID,
		InstallationID: d.InstallationID, RepositoryID: d.RepositoryID, Payload: d.Payload, Redelivery: true}
	hook := h.config()
	s.mu.Unlock()
	writeJSON(w, http.StatusAccepted, map[string]any{})
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		_, _ = s.sendTo(hook, again)
	}()
}

// EditRepoHook changes a repository webhook as a person would in the
// repository's settings; it reports whether the hook exists.
func (s *Server) EditRepoHook(id int64, edit func(h *RepoHook)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.repoHooks[id]
	if h == nil {
		return false
	}
	edit(&h.RepoHook)
	h.updatedAt = s.now()
	return true
}
