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

// stringArena moves strings into one allocation, in two passes over
// them: the first adds up their lengths, the second copies them, pointing
// each at its copy. Its user visits the strings with str while next is
// true:
//
//	var a stringArena
//	for a.next() {
//		a.str(&v.Name)
//		a.str(&v.Title)
//	}
//
// str keeps no pointer it is given, so that a value on the stack stays
// there.
type stringArena struct {
	pass int // 1 measures, 2 copies
	size int
	// buf is grown to size before the copies: it never moves, and a
	// strings.Builder never modifies the bytes written to it, so that a
	// string of its bytes is a string of its own.
	buf strings.Builder
}

// next starts the next pass, or reports that the strings are moved.
func (a *stringArena) next() bool {
	a.pass++
	if a.pass == 2 {
		a.buf.Grow(a.size)
	}
	return a.pass <= 2
}

// str visits a string.
func (a *stringArena) str(s *string) {
	switch {
	case len(*s) == 0:
		*s = "" // not an empty string at an address in the payload
	case a.pass == 1:
		a.size += len(*s)
	default:
		off := a.buf.Len()
		a.buf.WriteString(*s)
		*s = a.buf.String()[off:]
	}
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
	for a.next() {
		a.str(&hd.Action)
		hd.Repository.strings(&a)
	}
}

func (e *WorkflowRunEvent) detach() {
	var a stringArena
	for a.next() {
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
	}
}

func (e *WorkflowJobEvent) detach() {
	var a stringArena
	for a.next() {
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
	}
}

func (e *DeploymentStatusEvent) detach() {
	var a stringArena
	for a.next() {
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
	}
}

func (e *CheckRunEvent) detach() {
	var a stringArena
	for a.next() {
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
	}
}

func (e *DeploymentProtectionRuleEvent) detach() {
	var a stringArena
	for a.next() {
		a.str(&e.Action)
		a.str(&e.Environment)
		a.str(&e.Event)
		a.str(&e.SHA)
		a.str(&e.Ref)
		a.str(&e.DeploymentCallbackURL)
		e.Deployment.strings(&a)
		e.Repository.strings(&a)
		e.Sender.strings(&a)
	}
}

func (e *PullRequestEvent) detach() {
	var a stringArena
	for a.next() {
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
	}
}
