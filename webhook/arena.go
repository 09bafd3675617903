package webhook

import (
	"strings"

	gojson "github.com/goccy/go-json"
)

// decodeJSON decodes payload into v. This package's event types are
// decoded with their strings referring to the payload, then moved
// together into one allocation of their own (detach): a delivery's event
// costs one allocation for its strings rather than one each, and, as
// with a plain decode, refers to nothing of the payload, which a handler
// may modify, and which a string kept from the event does not keep alive.
func decodeJSON(payload []byte, v any) error {
	d, ok := v.(detacher)
	if !ok {
		return gojson.Unmarshal(payload, v)
	}
	err := gojson.UnmarshalWithOption(payload, v, gojson.DecodeNoCopyString())
	d.detach() // also after an error: what was decoded stays in v
	return err
}

// detacher is an event type whose strings detach moves into one
// allocation, after a decode that left them referring to the payload. Its
// detach visits every string the type holds (TestDetachVisitsEveryString
// checks it); types with maps are not detachers.
type detacher interface{ detach() }

// stringArena moves strings into one allocation (one per len(strs)
// strings): its user visits them with str, then calls move.
//
//	var a stringArena
//	a.str(&v.Name)
//	a.str(&v.Title)
//	a.move()
type stringArena struct {
	n    int // strs[:n] are the non-empty strings visited
	size int // their total length
	strs [32]*string
}

// str visits a string.
func (a *stringArena) str(s *string) {
	if len(*s) == 0 {
		*s = "" // not an empty string at an address in the payload
		return
	}
	if a.n == len(a.strs) {
		a.move()
	}
	a.strs[a.n] = s
	a.n++
	a.size += len(*s)
}

// move copies the strings visited into one allocation, points them at
// their copies, and starts again.
func (a *stringArena) move() {
	// A strings.Builder never modifies the bytes written to it, and,
	// grown once to the total, never moves them: a string of its bytes
	// is a string of its own.
	var b strings.Builder
	b.Grow(a.size)
	for _, s := range a.strs[:a.n] {
		off := b.Len()
		b.WriteString(*s)
		*s = b.String()[off:]
	}
	a.n, a.size = 0, 0
}

func (r *Repository) strings(a *stringArena) {
	a.str(&r.Name)
	a.str(&r.FullName)
	a.str(&r.Owner.Login)
}

func (u *User) strings(a *stringArena) {
	a.str(&u.Login)
	a.str(&u.Type)
}

func (d *Deployment) strings(a *stringArena) {
	a.str(&d.Ref)
	a.str(&d.SHA)
	a.str(&d.Task)
	a.str(&d.Environment)
	// Payload, a json.RawMessage, is a copy: its UnmarshalJSON makes one.
}

func (hd *head) detach() {
	var a stringArena
	a.str(&hd.Action)
	hd.Repository.strings(&a)
	a.move()
}

func (e *WorkflowRunEvent) detach() {
	var a stringArena
	a.str(&e.Action)
	r := &e.WorkflowRun
	a.str(&r.Name)
	a.str(&r.DisplayTitle)
	a.str(&r.Event)
	a.str(&r.Status)
	a.str(&r.Conclusion)
	a.str(&r.HeadBranch)
	a.str(&r.HeadSHA)
	a.str(&r.Path)
	a.str(&r.URL)
	a.str(&r.HTMLURL)
	r.TriggeringActor.strings(&a)
	e.Repository.strings(&a)
	a.move()
}

func (e *WorkflowJobEvent) detach() {
	var a stringArena
	a.str(&e.Action)
	j := &e.WorkflowJob
	a.str(&j.Name)
	a.str(&j.WorkflowName)
	a.str(&j.Status)
	a.str(&j.Conclusion)
	a.str(&j.HTMLURL)
	for i := range j.Steps {
		s := &j.Steps[i]
		a.str(&s.Name)
		a.str(&s.Status)
		a.str(&s.Conclusion)
	}
	e.Repository.strings(&a)
	a.move()
}

func (e *DeploymentStatusEvent) detach() {
	var a stringArena
	a.str(&e.Action)
	s := &e.DeploymentStatus
	a.str(&s.State)
	a.str(&s.Description)
	a.str(&s.Environment)
	a.str(&s.LogURL)
	a.str(&s.TargetURL)
	a.str(&s.Creator.Login)
	a.str(&s.Creator.Type)
	a.str(&s.PerformedViaGitHubApp.Slug)
	e.Deployment.strings(&a)
	e.Repository.strings(&a)
	a.move()
}

func (e *CheckRunEvent) detach() {
	var a stringArena
	a.str(&e.Action)
	c := &e.CheckRun
	a.str(&c.Name)
	a.str(&c.HeadSHA)
	a.str(&c.ExternalID)
	a.str(&c.Status)
	a.str(&c.Conclusion)
	a.str(&c.HTMLURL)
	e.Repository.strings(&a)
	a.str(&e.RequestedAction.Identifier)
	e.Sender.strings(&a)
	a.move()
}

func (e *DeploymentProtectionRuleEvent) detach() {
	var a stringArena
	a.str(&e.Action)
	a.str(&e.Environment)
	a.str(&e.Event)
	a.str(&e.SHA)
	a.str(&e.Ref)
	a.str(&e.DeploymentCallbackURL)
	e.Deployment.strings(&a)
	e.Repository.strings(&a)
	e.Sender.strings(&a)
	a.move()
}

func (e *PullRequestEvent) detach() {
	var a stringArena
	a.str(&e.Action)
	p := &e.PullRequest
	a.str(&p.State)
	a.str(&p.Title)
	a.str(&p.Body)
	a.str(&p.HTMLURL)
	a.str(&p.Head.Ref)
	a.str(&p.Head.SHA)
	a.str(&p.Base.Ref)
	e.Repository.strings(&a)
	a.move()
}
