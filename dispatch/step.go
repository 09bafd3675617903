package dispatch

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ghbridge/ghbridge/internal/otelx"
	"github.com/ghbridge/ghbridge/template"
)

// State is what a host keeps of a job's dispatch between Steps, next to
// the job: with it, a process that dies at any point leaves the job where
// the next Step (in this process or another) finishes it, with one run in
// the end.
type State struct {
	// Sends counts the requests sent that may have started the job.
	Sends int `json:"sends,omitempty"`
	// SentAt is when the last of them was sent; zero when none may have
	// reached GitHub.
	SentAt time.Time `json:"sentAt,omitzero"`
	// Accepted reports that GitHub accepted one: the job started, and
	// nothing is ever sent again for it.
	Accepted bool `json:"accepted,omitempty"`
}

// SaveFunc stores a job's dispatch State. Step calls it before every
// request that may start the job; if it fails, nothing is sent. Hosts
// pass one that writes the State next to the job.
type SaveFunc func(ctx context.Context, st State) error

// Step performs one resumable, idempotent step of a job's dispatch, for a
// queue of the host's (its own table, River, Temporal, ...) to drive:
//
//  1. When st says a request may have reached GitHub, the job's run (or
//     deployment, or pull request) is looked for first. Found, the step
//     returns it. Not found yet, the step returns ErrDispatchUncertain
//     (failure.ErrTransient, with failure.RetryAfter set) until
//     RunLookup.Settle has passed since that request: GitHub lists a new
//     run only after a while, and sending again could start the job twice.
//  2. Otherwise the new State is saved, then one request is sent. GitHub
//     accepting it ends the dispatch; a refusal returns the error with a
//     State saying that nothing was started; an outcome that is unknown
//     (a timeout, a 5xx answer) returns a transient error, and the next
//     Step looks before it sends.
//
// The error's class (package failure) tells the caller what to do:
// ErrTransient means call Step again later with the returned State
// (failure.RetryAfter says when, if GitHub said); any other class ends
// the job. On success the Receipt may lack the run id (GitHub Enterprise
// Server does not return it and the run was not listed yet): the run is
// then matched to the job by its job id when it reports, or found by
// Dispatcher.FindRun. A Step with an accepted State sends nothing and
// succeeds, with the run if it is listed by then.
//
// The returned State is the one to keep, with or without an error.
func (d *Dispatcher) Step(ctx context.Context, job Request, st State, save SaveFunc) (res Receipt, next State, err error) {
	// save sees this span in its context, so a host can store it with the
	// job and link the job's later spans (its webhook's) to it.
	ctx, span := d.tracer.Start(ctx, "ghbridge.dispatch", trace.WithAttributes(
		otelx.JobID.String(job.ID), otelx.Tenant.String(job.Tenant), attribute.Int("ghbridge.dispatch.sends", st.Sends)))
	defer func() {
		span.SetAttributes(otelx.Kind.String(string(res.Kind)), otelx.Repository.String(res.Owner+"/"+res.Repo),
			otelx.InstallationID.Int64(res.InstallationID), otelx.RunID.Int64(res.RunID), attribute.Bool("ghbridge.dispatch.accepted", next.Accepted))
		otelx.End(span, err)
	}()
	return d.step(ctx, job, st, save)
}

func (d *Dispatcher) step(ctx context.Context, job Request, st State, save SaveFunc) (Receipt, State, error) {
	a, err := d.prepare(ctx, job)
	if err != nil {
		return Receipt{}, st, err
	}
	a.step, a.max = true, 1
	res := Receipt{Kind: a.cfg.Type, Owner: a.cfg.Owner, Repo: a.cfg.Repo, Ref: a.cfg.Ref,
		CredentialType: a.cred.Type, InstallationID: a.cred.InstallationID, Config: a.cfg, Attempts: st.Sends}

	if !st.SentAt.IsZero() {
		found, err := a.lookEarlier(ctx, st, &res)
		switch {
		case st.Accepted:
			// Started already: done, with the run if it is listed.
			return res, st, nil
		case err != nil || found:
			return res, st, err
		}
	}

	next := State{Sends: st.Sends + 1, SentAt: d.now()}
	if err := save(ctx, next); err != nil {
		return res, st, &Error{Kind: ErrUnavailable, Op: string(a.cfg.Type), Repo: a.cfg.Repository(), Err: err,
			Hint: "the dispatch state could not be saved, so nothing was sent"}
	}
	out, err := a.run(ctx)
	out.Attempts = next.Sends
	switch {
	case err == nil:
		next.Accepted = true
	case a.unsure:
		// Keep SentAt: the next Step looks before it sends.
	default:
		next.SentAt = time.Time{} // GitHub refused: nothing was started
	}
	return out, next, err
}

// lookEarlier looks for what an earlier request of the job started. It
// reports found with res filled in; not found, it returns nil while a
// request may be sent, and ErrDispatchUncertain while the earlier one may
// still show up.
func (a *attempt) lookEarlier(ctx context.Context, st State, res *Receipt) (bool, error) {
	since := st.SentAt.Add(-a.d.lookup.ClockSkew)
	op, target := string(a.cfg.Type), ""
	switch a.cfg.Type {
	case template.KindDeployment:
		dep, err := a.findDeployment(ctx)
		if err != nil {
			e, _ := a.classify(ctx, op, a.cfg.Environment, err)
			return false, e
		}
		if dep != nil {
			res.DeploymentID, res.RunURL = dep.GetID(), dep.GetURL()
			return true, nil
		}
		// The deployments list is consistent at once: not there, not made.
		return false, nil
	case template.KindPullRequest:
		// Branch and pull request are found by their marker when sent
		// again.
		return false, nil
	case template.KindRepositoryDispatch:
		target = a.cfg.EventType
	default:
		target = a.cfg.Workflow.String()
	}
	runs, err := a.listRuns(ctx, since)
	if err != nil {
		e, _ := a.classify(ctx, op, target, err)
		return false, e
	}
	if run := matchRun(runs, a.jobID); run != nil {
		setRun(res, run)
		return true, nil
	}
	if st.Accepted {
		return false, nil
	}
	now := a.d.now()
	settled := st.SentAt.Add(a.d.lookup.Settle)
	if now.Before(settled) {
		return false, &Error{Kind: ErrDispatchUncertain, Op: op, Repo: a.cfg.Repository(), Target: target,
			RetryAt: minTime(now.Add(a.d.lookup.Interval), settled),
			Hint:    fmt.Sprintf("an earlier request may have started the job; its run is looked for until %s before anything is sent again", settled.UTC().Format(time.RFC3339))}
	}
	none, err := a.provablyNoRun(ctx, since)
	if err != nil {
		e, _ := a.classify(ctx, op, target, err)
		return false, e
	}
	if !none {
		return false, &Error{Kind: ErrRunNotFound, Op: op, Repo: a.cfg.Repository(), Target: target,
			Hint: "an earlier request may have started a run, and runs without the job id in their title make it impossible to tell; not sent again, to never start the job twice (put the job id in the workflow's run-name)"}
	}
	return false, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
