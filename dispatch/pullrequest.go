package dispatch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	gh "github.com/google/go-github/v62/github"
)

// prMarker identifies a job's commit and pull request.
func prMarker(jobID string) string { return "ghbridge-job: " + jobID }

func (a *attempt) pullRequest(ctx context.Context, res *Receipt) error {
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
