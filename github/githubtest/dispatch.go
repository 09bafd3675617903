package githubtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"
)

// RepositoryDispatch records an accepted repository_dispatch.
type RepositoryDispatch struct {
	Owner, Repo   string
	EventType     string
	ClientPayload map[string]any
	// RunIDs are the runs it started (workflows listing the event type).
	RunIDs []int64
	At     time.Time
}

// RepositoryDispatches returns the accepted repository dispatches.
func (s *Server) RepositoryDispatches() []RepositoryDispatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.repoEvents)
}

// Limits GitHub puts on repository_dispatch.
const (
	maxEventTypeLen      = 100
	maxClientPayloadKeys = 10
)

// dispatchRoutes serves the two ways to start a workflow on request.
func (s *Server) dispatchRoutes(mux *http.ServeMux) {
	s.handle(mux, "POST /repos/{owner}/{repo}/dispatches", authToken, s.repositoryDispatch)
}

type repositoryDispatchRequest struct {
	EventType     string         `json:"event_type"`
	ClientPayload map[string]any `json:"client_payload"`
}

func (b *repositoryDispatchRequest) validate() string {
	switch {
	case b.EventType == "":
		return "\"event_type\" wasn't supplied."
	case utf8.RuneCountInString(b.EventType) > maxEventTypeLen:
		return fmt.Sprintf("For 'properties/event_type', %q is too long (maximum is %d characters).", b.EventType, maxEventTypeLen)
	case len(b.ClientPayload) > maxClientPayloadKeys:
		return fmt.Sprintf("For 'properties/client_payload', the object has more than %d properties.", maxClientPayloadKeys)
	case clientPayloadSize(b.ClientPayload) >= 64<<10:
		return "client_payload is too large; it must be less than 64KB."
	}
	return ""
}

// repositoryDispatch records a repository_dispatch and starts the
// workflows listing its event type; it answers after releasing s.mu.
func (s *Server) repositoryDispatch(w http.ResponseWriter, r *http.Request, c caller) {
	var body repositoryDispatchRequest
	if !readBody(w, r, &body) {
		return
	}
	rp := s.lockRepo(w, r, c, "contents", "write")
	if rp == nil {
		return
	}
	rec := RepositoryDispatch{Owner: rp.Owner, Repo: rp.Name, EventType: body.EventType, ClientPayload: body.ClientPayload, At: s.now()}
	vars := flatten("github.event.client_payload", body.ClientPayload)
	for _, wf := range rp.workflows {
		if slices.Contains(wf.RepositoryDispatchTypes, body.EventType) {
			rn := s.newRun(rp, wf, rp.DefaultBranch, "repository_dispatch", nil, vars, "")
			rec.RunIDs = append(rec.RunIDs, rn.ID)
		}
	}
	s.repoEvents = append(s.repoEvents, rec)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// flatten turns a JSON object into "prefix.key" -> text entries for
// run-name substitution; nested objects use dotted paths.
func flatten(prefix string, m map[string]any) map[string]string {
	out := map[string]string{}
	var walk func(p string, v any)
	walk = func(p string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, vv := range x {
				walk(p+"."+k, vv)
			}
		case string:
			out[p] = x
		case nil:
			out[p] = ""
		default:
			b, _ := json.Marshal(x)
			out[p] = string(b)
		}
	}
	for k, v := range m {
		walk(prefix+"."+k, v)
	}
	return out
}

func clientPayloadSize(p map[string]any) int {
	b, _ := json.Marshal(p)
	return len(b)
}
