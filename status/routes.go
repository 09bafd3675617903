package status

import (
	"context"
	"encoding/json"

	"github.com/ghbridge/ghbridge/webhook"
)

// Register routes the deliveries the tracker applies: workflow_run,
// workflow_job, pull_request (closed) and deployment_status. Deliveries
// that concern no job, another tenant's job, or a finished job are
// acknowledged; only failures to read or store a job fail the delivery.
// Hosts call it once on their webhook handler.
func (t *Tracker) Register(h *webhook.Handler) {
	webhook.Handle(h, "workflow_run", func(ctx context.Context, d *webhook.Delivery, e *webhook.WorkflowRunEvent) error {
		r := e.WorkflowRun
		res, err := t.ApplyRun(ctx, RunUpdate{
			RunID: r.ID, RunAttempt: r.RunAttempt, Status: r.Status, Conclusion: r.Conclusion,
			DisplayTitle: r.DisplayTitle, Name: r.Name, HTMLURL: r.HTMLURL, UpdatedAt: r.UpdatedAt,
			Repository: e.Repository.FullName, InstallationID: e.Installation.ID, TriggeredBy: r.TriggeringActor.Login,
		})
		t.logResult(ctx, d, res)
		return err
	})
	webhook.Handle(h, "workflow_job", func(ctx context.Context, d *webhook.Delivery, e *webhook.WorkflowJobEvent) error {
		wj := e.WorkflowJob
		step := ""
		for _, s := range wj.Steps {
			if s.Status == "in_progress" {
				step = s.Name
			}
		}
		res, err := t.ApplyJobProgress(ctx, JobProgress{
			RunID: wj.RunID, RunAttempt: wj.RunAttempt, JobName: wj.Name, Status: wj.Status, Conclusion: wj.Conclusion,
			Step: step, Repository: e.Repository.FullName, InstallationID: e.Installation.ID,
		})
		t.logResult(ctx, d, res)
		return err
	})
	webhook.Handle(h, "pull_request.closed", func(ctx context.Context, d *webhook.Delivery, e *webhook.PullRequestEvent) error {
		pr := e.PullRequest
		res, err := t.ApplyPullRequest(ctx, PullRequestUpdate{
			Action: e.Action, Number: e.Number, Merged: pr.Merged, Body: pr.Body, HeadRef: pr.Head.Ref,
			Repository: e.Repository.FullName, InstallationID: e.Installation.ID,
		})
		t.logResult(ctx, d, res)
		return err
	})
	webhook.Handle(h, "deployment_status", func(ctx context.Context, d *webhook.Delivery, e *webhook.DeploymentStatusEvent) error {
		var payload struct {
			JobID string `json:"job_id"`
		}
		_ = json.Unmarshal(e.Deployment.Payload, &payload)
		st := e.DeploymentStatus
		res, err := t.ApplyDeploymentStatus(ctx, DeploymentUpdate{
			DeploymentID: e.Deployment.ID, State: st.State, Description: st.Description, LogURL: st.LogURL,
			JobID: payload.JobID, Repository: e.Repository.FullName, InstallationID: e.Installation.ID, CreatedAt: st.CreatedAt,
			AppID: st.PerformedViaGitHubApp.ID,
		})
		t.logResult(ctx, d, res)
		return err
	})
}

func (t *Tracker) logResult(ctx context.Context, d *webhook.Delivery, res Result) {
	if res.Effect == "" {
		return
	}
	level := t.log.DebugContext
	if res.Effect == CrossTenant {
		level = t.log.WarnContext
	}
	level(ctx, "delivery applied", "delivery_id", d.ID, "event", d.Event, "action", d.Action,
		"outcome", res.Effect, "job_id", res.Job.ID, "reason", res.Reason)
}
