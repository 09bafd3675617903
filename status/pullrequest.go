package status

import (
	"context"
	"fmt"
	"regexp"
	"strings"
)

// PullRequestUpdate is what a pull_request delivery says. Register and
// the Poller fill it; hosts that route deliveries themselves fill it for
// ApplyPullRequest.
type PullRequestUpdate struct {
	Action         string
	Number         int
	Merged         bool
	Body           string
	HeadRef        string
	Repository     string
	InstallationID int64
}

// prMarker finds the job id in a pull request's body; qualified ids
// ("tenant.id") hold a '.'.
var prMarker = regexp.MustCompile(`ghbridge-job: ([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)`)

// pullJobID finds the job id of a pull request ghbridge opened: in the
// marker of its body, else in its default head branch name.
func pullJobID(p PullRequestUpdate) string {
	if m := prMarker.FindStringSubmatch(p.Body); m != nil {
		return m[1]
	}
	if id, ok := strings.CutPrefix(p.HeadRef, "ghbridge/job-"); ok {
		return id
	}
	return ""
}

// ApplyPullRequest finishes a pull-request job when its pull request is
// closed: merged is successful, closed without merging is cancelled.
// Register calls it for pull_request deliveries; hosts that route
// deliveries themselves call it.
func (t *Tracker) ApplyPullRequest(ctx context.Context, p PullRequestUpdate) (Result, error) {
	if p.Action != "closed" {
		return Result{Effect: Unchanged, Reason: "only closing a pull request finishes its job"}, nil
	}
	id := pullJobID(p)
	if id == "" {
		return Result{Effect: NoJob, Reason: "not a ghbridge pull request"}, nil
	}
	return t.update(ctx, func() (Job, error) { return t.store.GetJob(ctx, id) }, func(j Job) (*Update, Result) {
		if res, ok := t.sameTenant(j, p.Repository, p.InstallationID); !ok {
			return nil, res
		}
		if j.PullRequestNumber != 0 && j.PullRequestNumber != p.Number {
			return nil, Result{Effect: NoJob, Reason: fmt.Sprintf("job %s belongs to pull request #%d", j.ID, j.PullRequestNumber)}
		}
		if j.Status.Final() {
			return nil, Result{Effect: Finished, Reason: fmt.Sprintf("job is %s", j.Status)}
		}
		to, msg := Cancelled, fmt.Sprintf("pull request #%d closed without merging", p.Number)
		if p.Merged {
			to, msg = Successful, fmt.Sprintf("pull request #%d merged", p.Number)
		}
		u := &Update{Status: to, Message: &msg, PullRequestNumber: p.Number, Source: "pull_request", Control: &Control{}}
		if to == Cancelled && j.Control.CancelRequestedBy != "" {
			u.Actor = j.Control.CancelRequestedBy
		}
		return u, Result{}
	})
}
