package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/template"
)

// retrying sends a request that may start the job until it succeeds,
// fails definitely, or fails ambiguously and recover cannot prove that
// nothing happened. recover returns done when it found the effect of an
// earlier attempt, and nil with done false when a retry is safe.
func (a *attempt) retrying(ctx context.Context, op, target string, send func() error, recover func(*Error) (bool, error)) error {
	for {
		err := a.send(ctx, send)
		if err == nil {
			return nil
		}
		e, kind := a.classify(ctx, op, target, err)
		if kind == definite || a.step {
			// In a Step an ambiguous failure is resolved by the next
			// Step, which looks before it sends.
			a.unsure = kind == ambiguous
			return e
		}
		if ctx.Err() != nil {
			return a.uncertain(e, "the context ended before the outcome could be checked")
		}
		done, rerr := recover(e)
		if rerr != nil || done {
			return rerr
		}
		if a.sent >= a.max {
			return e
		}
	}
}

func (a *attempt) repositoryDispatch(ctx context.Context, res *Result) error {
	const op = "repository_dispatch"
	payload := maps.Clone(a.cfg.ClientPayload)
	if payload == nil {
		payload = map[string]any{}
	}
	payload[template.JobIDKey] = a.jobID
	raw, err := json.Marshal(payload)
	if err != nil {
		return &Error{Kind: ErrInvalidAgentConfig, Op: op, Repo: a.cfg.Repository(), Err: err}
	}
	if len(raw) > template.MaxClientPayloadBytes {
		// Refused before sending: GitHub would refuse it, or worse, a
		// proxy would cut it.
		return &Error{Kind: ErrInvalidAgentConfig, Op: op, Repo: a.cfg.Repository(), Target: a.cfg.EventType,
			Hint: fmt.Sprintf("client_payload is %d bytes of JSON; GitHub takes less than 64 KB (%d bytes); send a reference (a URL, an id) instead of the data", len(raw), template.MaxClientPayloadBytes)}
	}
	msg := json.RawMessage(raw)
	since := a.d.now().Add(-a.d.lookup.ClockSkew)
	err = a.retrying(ctx, op, a.cfg.EventType, func() error {
		_, _, err := a.client.Repositories.Dispatch(ctx, a.cfg.Owner, a.cfg.Repo, gh.DispatchRequestOptions{EventType: a.cfg.EventType, ClientPayload: &msg})
		return err
	}, func(e *Error) (bool, error) {
		err := a.resolveAmbiguous(ctx, e, since, res)
		return res.RunID != 0, err
	})
	if err != nil || res.RunID != 0 {
		return err
	}
	run, err := a.findRun(ctx, since, a.runTimeout())
	if err != nil {
		return err
	}
	if run == nil && a.step {
		return nil // accepted; the run is matched by its job id later
	}
	if run == nil {
		return &Error{Kind: ErrRunNotFound, Op: op, Repo: a.cfg.Repository(), Target: a.cfg.EventType,
			Hint: "no run with the job id appeared; the workflow needs \"on: repository_dispatch\" with this event type and \"run-name: ... ${{ github.event.client_payload.job_id }}\""}
	}
	setRun(res, run)
	return nil
}

func (a *attempt) deployment(ctx context.Context, res *Result) error {
	const op = "deployment"
	payload := maps.Clone(a.cfg.Payload)
	if payload == nil {
		payload = map[string]any{}
	}
	payload[template.JobIDKey] = a.jobID
	req := &gh.DeploymentRequest{
		Ref:         gh.String(a.cfg.Ref),
		Environment: gh.String(a.cfg.Environment),
		Payload:     payload,
		AutoMerge:   gh.Bool(a.d.autoMerge),
	}
	if a.cfg.Task != "" {
		req.Task = gh.String(a.cfg.Task)
	}
	if a.cfg.Description != "" {
		req.Description = gh.String(a.cfg.Description)
	}
	if a.cfg.AutoMerge != nil {
		req.AutoMerge = a.cfg.AutoMerge
	}
	switch {
	case a.cfg.RequiredContexts != nil:
		req.RequiredContexts = &a.cfg.RequiredContexts
	case a.d.contexts != nil:
		req.RequiredContexts = &a.d.contexts
	}
	var dep *gh.Deployment
	find := func(*Error) (bool, error) {
		d, err := a.findDeployment(ctx)
		if err != nil {
			return false, err
		}
		dep = d
		return d != nil, nil
	}
	err := a.retrying(ctx, op, a.cfg.Environment, func() error {
		d, _, err := a.client.Repositories.CreateDeployment(ctx, a.cfg.Owner, a.cfg.Repo, req)
		var accepted *gh.AcceptedError
		if errors.As(err, &accepted) {
			// 202: GitHub merged the default branch into the ref instead
			// of creating the deployment.
			return &Error{Kind: ErrRejected, Op: op, Repo: a.cfg.Repository(), Target: a.cfg.Environment, StatusCode: http.StatusAccepted,
				Hint: "GitHub auto-merged the default branch into the ref instead of deploying; set autoMerge to false or dispatch again"}
		}
		dep = d
		return err
	}, find)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.StatusCode == http.StatusAccepted {
			return e
		}
		return err
	}
	res.DeploymentID = dep.GetID()
	res.RunURL = dep.GetURL()
	return nil
}

// findDeployment looks for the deployment an earlier attempt created,
// by the job id in its payload.
func (a *attempt) findDeployment(ctx context.Context) (*gh.Deployment, error) {
	deps, _, err := a.client.Repositories.ListDeployments(ctx, a.cfg.Owner, a.cfg.Repo, &gh.DeploymentsListOptions{
		Ref: a.cfg.Ref, Environment: a.cfg.Environment, ListOptions: gh.ListOptions{PerPage: 100},
	})
	if err != nil {
		return nil, err
	}
	for _, d := range deps {
		var p map[string]any
		if json.Unmarshal(d.Payload, &p) == nil && p[template.JobIDKey] == a.jobID {
			return d, nil
		}
	}
	return nil, nil
}

// prMarker identifies a job's commit and pull request.
func prMarker(jobID string) string { return "ghbridge-job: " + jobID }

func (a *attempt) pullRequest(ctx context.Context, res *Result) error {
	const op = "pull_request"
	spec := a.cfg.PullRequest
	fail := func(err error) error {
		e, _ := a.classify(ctx, op, spec.Branch, err)
		if e.Kind == ErrRepoNotAccessible || e.Kind == ErrWorkflowNotFound {
			e.Kind, e.Hint = ErrRefNotFound, fmt.Sprintf("the base branch %q does not exist in %s", a.cfg.Ref, a.cfg.Repository())
		}
		return e
	}
	base, _, err := a.client.Git.GetRef(ctx, a.cfg.Owner, a.cfg.Repo, "heads/"+a.cfg.Ref)
	if err != nil {
		return fail(err)
	}
	head, err := a.prepareBranch(ctx, op, base.GetObject().GetSHA())
	if err != nil {
		return err
	}
	body := strings.TrimSpace(spec.Body + "\n\n<!-- " + prMarker(a.jobID) + " -->")
	var pr *gh.PullRequest
	find := func(*Error) (bool, error) {
		p, err := a.findPull(ctx)
		pr = p
		return p != nil, err
	}
	err = a.retrying(ctx, op, spec.Branch, func() error {
		p, _, err := a.client.PullRequests.Create(ctx, a.cfg.Owner, a.cfg.Repo, &gh.NewPullRequest{
			Title: gh.String(spec.Title), Head: gh.String(spec.Branch), Base: gh.String(a.cfg.Ref),
			Body: gh.String(body), Draft: gh.Bool(spec.Draft),
		})
		pr = p
		return err
	}, find)
	if alreadyExists(err) {
		// An earlier attempt opened it.
		if found, ferr := find(nil); ferr == nil && found {
			err = nil
		}
	}
	if err != nil {
		return err
	}
	res.PullRequestNumber, res.PullRequestURL, res.HTMLURL = pr.GetNumber(), pr.GetHTMLURL(), pr.GetHTMLURL()
	res.RunURL = pr.GetURL()
	res.Ref = head
	return nil
}

// prepareBranch commits the files on a new branch from base and returns
// the branch head. A branch left by an earlier attempt for the same job is
// reused; any other existing branch is an error.
func (a *attempt) prepareBranch(ctx context.Context, op, base string) (string, error) {
	spec := a.cfg.PullRequest
	commitErr := func(err error) error { e, _ := a.classify(ctx, op, spec.Branch, err); return e }
	baseCommit, _, err := a.client.Git.GetCommit(ctx, a.cfg.Owner, a.cfg.Repo, base)
	if err != nil {
		return "", commitErr(err)
	}
	var entries []*gh.TreeEntry
	for _, path := range slices.Sorted(maps.Keys(spec.Files)) {
		entries = append(entries, &gh.TreeEntry{Path: gh.String(path), Mode: gh.String("100644"), Type: gh.String("blob"), Content: gh.String(spec.Files[path])})
	}
	// Trees and commits are content objects: the clients' transport
	// retries their creation like a GET (an ambiguous failure only leaves
	// an unreferenced object behind).
	tree, _, err := a.client.Git.CreateTree(ctx, a.cfg.Owner, a.cfg.Repo, baseCommit.GetTree().GetSHA(), entries)
	if err != nil {
		return "", commitErr(err)
	}
	commit, _, err := a.client.Git.CreateCommit(ctx, a.cfg.Owner, a.cfg.Repo, &gh.Commit{
		Message: gh.String(spec.CommitMessage + "\n\n" + prMarker(a.jobID)),
		Tree:    tree, Parents: []*gh.Commit{{SHA: gh.String(base)}},
	}, nil)
	if err != nil {
		return "", commitErr(err)
	}
	ours := func() (bool, error) {
		ref, _, err := a.client.Git.GetRef(ctx, a.cfg.Owner, a.cfg.Repo, "heads/"+spec.Branch)
		var er *gh.ErrorResponse
		if errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusNotFound {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		c, _, err := a.client.Git.GetCommit(ctx, a.cfg.Owner, a.cfg.Repo, ref.GetObject().GetSHA())
		if err != nil {
			return false, err
		}
		if !strings.Contains(c.GetMessage(), prMarker(a.jobID)) {
			return false, &Error{Kind: ErrRejected, Op: op, Repo: a.cfg.Repository(), Target: spec.Branch,
				Hint: fmt.Sprintf("branch %q already exists and was not created for this job; choose another branch", spec.Branch)}
		}
		return true, nil
	}
	err = a.retrying(ctx, op, spec.Branch, func() error {
		_, _, err := a.client.Git.CreateRef(ctx, a.cfg.Owner, a.cfg.Repo, &gh.Reference{
			Ref: gh.String("refs/heads/" + spec.Branch), Object: &gh.GitObject{SHA: commit.SHA},
		})
		return err
	}, func(*Error) (bool, error) { return ours() })
	if alreadyExists(err) {
		done, oerr := ours()
		switch {
		case oerr != nil:
			return "", oerr
		case done:
			return spec.Branch, nil
		}
	}
	if err != nil {
		return "", err
	}
	return spec.Branch, nil
}

// alreadyExists reports GitHub's 422 for something that exists: "Reference
// already exists" in the message, or, for pull requests, "Validation
// Failed" with "A pull request already exists for owner:branch." in
// errors[].
func alreadyExists(err error) bool {
	var er *gh.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil || er.Response.StatusCode != http.StatusUnprocessableEntity {
		return false
	}
	if strings.Contains(strings.ToLower(er.Message), "already exists") {
		return true
	}
	for _, fe := range er.Errors {
		if strings.Contains(strings.ToLower(fe.Message), "already exists") || fe.Code == "already_exists" {
			return true
		}
	}
	return false
}

// findPull looks for the job's pull request by its head branch.
func (a *attempt) findPull(ctx context.Context) (*gh.PullRequest, error) {
	pulls, _, err := a.client.PullRequests.List(ctx, a.cfg.Owner, a.cfg.Repo, &gh.PullRequestListOptions{
		State: "all", Head: a.cfg.Owner + ":" + a.cfg.PullRequest.Branch,
	})
	if err != nil {
		return nil, err
	}
	for _, p := range pulls {
		if strings.Contains(p.GetBody(), prMarker(a.jobID)) {
			return p, nil
		}
	}
	return nil, nil
}
