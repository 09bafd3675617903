package githubtest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"
)

// RepositoryDispatch records an accepted repository_dispatch. Hosts assert
// on them (RepositoryDispatches).
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

// WorkflowDispatch records a workflow_dispatch the fake accepted. Hosts
// assert on them (Dispatches): the workflow, ref and inputs a job was sent
// with.
type WorkflowDispatch struct {
	Owner, Repo      string
	WorkflowID       int64
	Ref              string
	Inputs           map[string]string
	ReturnRunDetails bool
	RunID            int64
	At               time.Time
}

// Dispatches returns the accepted workflow dispatches, oldest first.
func (s *Server) Dispatches() []WorkflowDispatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.dispatches)
	for i := range out {
		out[i].Inputs = maps.Clone(out[i].Inputs)
	}
	return out
}

// dispatchRoutes serves the two ways to start a workflow on request.
func (s *Server) dispatchRoutes(mux router) {
	s.handle(mux, "POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", authToken, s.dispatchWorkflow)
	s.handle(mux, "POST /repos/{owner}/{repo}/dispatches", authToken, s.repositoryDispatch)
}

type dispatchBody struct {
	Ref              string                     `json:"ref"`
	Inputs           map[string]json.RawMessage `json:"inputs"`
	ReturnRunDetails bool                       `json:"return_run_details"`
}

// maxDispatchInputs is GitHub's limit on workflow_dispatch inputs.
const maxDispatchInputs = 25

// dispatchWorkflow starts a run of a workflow with workflow_dispatch. The
// request is checked before s.mu is taken and answered after it is
// released.
func (s *Server) dispatchWorkflow(w http.ResponseWriter, r *http.Request, c caller) {
	req, ok := s.readDispatch(w, r)
	if !ok {
		return
	}
	rp := s.lockRepo(w, r, c, "actions", "write")
	if rp == nil {
		return
	}
	wf := rp.workflow(r.PathValue("workflow_id"))
	if wf == nil {
		s.mu.Unlock()
		notFound(w)
		return
	}
	branch, msg := dispatchRefusal(rp, wf, req.Ref, req.inputs)
	if msg != "" {
		s.mu.Unlock()
		writeError(w, http.StatusUnprocessableEntity, msg)
		return
	}
	rn := s.newRun(rp, wf, branch, "workflow_dispatch", req.inputs, nil, "")
	s.dispatches = append(s.dispatches, WorkflowDispatch{
		Owner: rp.Owner, Repo: rp.Name, WorkflowID: wf.ID, Ref: req.Ref, Inputs: req.inputs,
		ReturnRunDetails: req.ReturnRunDetails, RunID: rn.ID, At: s.now(),
	})
	full := rp.Owner + "/" + rp.Name
	details := map[string]any{
		"workflow_run_id": rn.ID,
		"run_url":         s.apiURL("/repos/%s/actions/runs/%d", full, rn.ID),
		"html_url":        s.webURL(fmt.Sprintf("%s/actions/runs/%d", full, rn.ID)),
	}
	s.mu.Unlock()
	if req.ReturnRunDetails || req.alwaysDetails {
		writeJSON(w, http.StatusOK, details)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// dispatchRequest is a workflow_dispatch request that passed the checks
// GitHub makes before it looks at the workflow.
type dispatchRequest struct {
	dispatchBody
	inputs map[string]string // as the workflow sees them
	// alwaysDetails: API version 2026-03-10 always answers the run and
	// knows no return_run_details.
	alwaysDetails bool
}

// readDispatch reads and checks a workflow_dispatch body; it answers and
// returns false when the body is refused.
func (s *Server) readDispatch(w http.ResponseWriter, r *http.Request) (dispatchRequest, bool) {
	var raw map[string]json.RawMessage
	if !readJSON(w, r, &raw) {
		return dispatchRequest{}, false
	}
	req := dispatchRequest{alwaysDetails: r.Header.Get("X-GitHub-Api-Version") >= apiVersion20260310}
	for k := range raw {
		switch {
		case k == "return_run_details" && req.alwaysDetails:
			invalid(w, "\"return_run_details\" is not a permitted key.")
			return req, false
		case k == "return_run_details" && !s.runDetails:
			writeError(w, s.runDetailsErr, "Invalid request.\n\n\"return_run_details\" is not a permitted key.")
			return req, false
		case k != "ref" && k != "inputs" && k != "return_run_details":
			invalid(w, fmt.Sprintf("%q is not a permitted key.", k))
			return req, false
		}
	}
	b, _ := json.Marshal(raw)
	if err := json.Unmarshal(b, &req.dispatchBody); err != nil {
		invalid(w, "For 'properties', the request body does not match the schema: "+err.Error())
		return req, false
	}
	if req.Ref == "" {
		invalid(w, "\"ref\" wasn't supplied.")
		return req, false
	}
	if len(req.Inputs) > maxDispatchInputs {
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("you may only define up to %d `inputs` for a `workflow_dispatch` event", maxDispatchInputs))
		return req, false
	}
	var ok bool
	req.inputs, ok = dispatchInputs(w, req.Inputs)
	return req, ok
}

// dispatchInputs turns the inputs of a dispatch into the text a workflow
// sees; it answers and returns false when one is not a string, number or
// boolean.
func dispatchInputs(w http.ResponseWriter, raw map[string]json.RawMessage) (map[string]string, bool) {
	inputs := make(map[string]string, len(raw))
	for k, v := range raw {
		// Inputs of type boolean and number may be sent as JSON
		// booleans and numbers; workflows see them as text.
		var val any
		if err := json.Unmarshal(v, &val); err != nil {
			invalid(w, fmt.Sprintf("For 'properties/%s', %s is not valid JSON.", k, v))
			return nil, false
		}
		switch val := val.(type) {
		case string:
			inputs[k] = val
		case bool, float64:
			inputs[k] = string(v)
		case nil:
			inputs[k] = ""
		default:
			invalid(w, fmt.Sprintf("For 'properties/%s', %s is not a string, number or boolean.", k, v))
			return nil, false
		}
	}
	return inputs, true
}

// dispatchRefusal returns the branch a dispatch of wf on ref runs on, or
// GitHub's message when wf cannot be dispatched so. s.mu is held.
func dispatchRefusal(rp *repo, wf *Workflow, ref string, inputs map[string]string) (branch, msg string) {
	switch {
	case wf.NoDispatch:
		return "", "Workflow does not have 'workflow_dispatch' trigger"
	case wf.Disabled:
		return "", "Cannot trigger a 'workflow_dispatch' on a disabled workflow"
	}
	branch, _, ok := rp.resolveRef(ref)
	if !ok {
		return "", "No ref found for: " + ref
	}
	if wf.Inputs != nil {
		var unexpected []string
		for k := range inputs {
			if !slices.Contains(wf.Inputs, k) {
				unexpected = append(unexpected, k)
			}
		}
		if len(unexpected) > 0 {
			slices.Sort(unexpected)
			list, _ := json.Marshal(unexpected)
			return "", "Unexpected inputs provided: " + string(list)
		}
	}
	for _, req := range wf.RequiredInputs {
		if inputs[req] == "" {
			return "", fmt.Sprintf("Required input '%s' not provided", req)
		}
	}
	return branch, ""
}

// Limits GitHub puts on repository_dispatch.
const (
	maxEventTypeLen      = 100
	maxClientPayloadKeys = 10
)

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
