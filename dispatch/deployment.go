package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/template"
)

func (a *attempt) deployment(ctx context.Context, res *Receipt) error {
	const op = "deployment"
	payload := withJobID(a.cfg.Payload, any(a.jobID))
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
