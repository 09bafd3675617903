package status

import (
	"context"
	"fmt"
	"net/http"

	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/internal/textlimit"
)

// ClientSource gives the GitHub client for a job's target and the
// credential it authenticates with; *github.ClientSource is the
// implementation. Hosts pass one to NewGitHubReporter and NewPoller.
type ClientSource interface {
	For(ctx context.Context, t credentials.Target) (*gh.Client, credentials.Credential, error)
}

// target is what a job's credential is resolved for.
func target(j Job) credentials.Target {
	return credentials.Target{Tenant: j.Tenant, Owner: j.Owner, Repo: j.Repo, InstallationID: j.InstallationID, JobID: j.ID}
}

// GitHubReporter mirrors job statuses to GitHub: as deployment statuses
// of a deployment job's deployment, and as a check run on a commit. It
// authenticates as the job's installation; check runs need a GitHub App.
// Hosts pass it to WithReporter.
type GitHubReporter struct {
	clients ClientSource
}

// NewGitHubReporter returns a reporter that gets its clients from clients.
func NewGitHubReporter(clients ClientSource) *GitHubReporter {
	return &GitHubReporter{clients: clients}
}

// DeploymentState maps a job status to the deployment status state
// GitHubReporter posts. ApplyDeploymentStatus ignores deliveries of that
// state, so a host's own Reporter that posts deployment statuses uses it.
func DeploymentState(s Status) string {
	switch s {
	case Pending:
		return "queued"
	case InProgress, ActionRequired:
		return "in_progress"
	case Successful:
		return "success"
	case Failure:
		return "failure"
	case Cancelled, Skipped:
		return "inactive"
	}
	return "error"
}

// CheckRunState maps a job status to the check run status and conclusion
// GitHubReporter sets. A host's own Reporter uses it to report alike.
func CheckRunState(s Status) (status, conclusion string) {
	switch s {
	case Pending:
		return "queued", ""
	case InProgress, ActionRequired, ExternalRunNotFound:
		return "in_progress", ""
	case Successful:
		return "completed", "success"
	case Cancelled:
		return "completed", "cancelled"
	case Skipped:
		return "completed", "skipped"
	}
	return "completed", "failure"
}

// Report implements Reporter.
func (r *GitHubReporter) Report(ctx context.Context, j Job) (*Update, error) {
	client, _, err := r.clients.For(ctx, target(j))
	if err != nil {
		return nil, err
	}
	u := &Update{}
	if j.Report.DeploymentStatus && j.DeploymentID != 0 {
		_, _, err := client.Repositories.CreateDeploymentStatus(ctx, j.Owner, j.Repo, j.DeploymentID, &gh.DeploymentStatusRequest{
			State:       gh.String(DeploymentState(j.Status)),
			LogURL:      optional(j.RunURL),
			Description: gh.String(textlimit.Runes(j.Message, maxDescription)),
		})
		if err != nil {
			return nil, fmt.Errorf("deployment status: %w", err)
		}
	}
	if j.Report.CheckRunName != "" && j.Report.HeadSHA != "" {
		status, conclusion := CheckRunState(j.Status)
		out := &gh.CheckRunOutput{
			Title:   gh.String(textlimit.Bytes(fmt.Sprintf("%s: %s", j.Report.CheckRunName, j.Status), maxCheckOutput)),
			Summary: gh.String(checkSummary(j)),
		}
		if j.Report.CheckRunID == 0 {
			cr, _, err := client.Checks.CreateCheckRun(ctx, j.Owner, j.Repo, gh.CreateCheckRunOptions{
				Name: j.Report.CheckRunName, HeadSHA: j.Report.HeadSHA, ExternalID: gh.String(j.ID),
				DetailsURL: optional(j.RunURL), Status: gh.String(status), Conclusion: optional(conclusion), Output: out,
			})
			if err != nil {
				return nil, fmt.Errorf("check run: %w", err)
			}
			u.CheckRunID = cr.GetID()
		} else {
			_, resp, err := client.Checks.UpdateCheckRun(ctx, j.Owner, j.Repo, j.Report.CheckRunID, gh.UpdateCheckRunOptions{
				Name: j.Report.CheckRunName, ExternalID: gh.String(j.ID), DetailsURL: optional(j.RunURL),
				Status: gh.String(status), Conclusion: optional(conclusion), Output: out,
			})
			if err != nil && (resp == nil || resp.StatusCode != http.StatusNotFound) {
				return nil, fmt.Errorf("check run: %w", err)
			}
		}
	}
	return u, nil
}

func checkSummary(j Job) string {
	s := fmt.Sprintf("Job `%s` is **%s**.", j.ID, j.Status)
	if j.Message != "" {
		s += "\n\n" + j.Message
	}
	if j.RunURL != "" {
		s += fmt.Sprintf("\n\n[Workflow run](%s)", j.RunURL)
	}
	return textlimit.Bytes(s, maxCheckOutput)
}

// GitHub's limits, in GitHub's units.
const (
	// maxDescription is a deployment status description's limit, in
	// characters.
	maxDescription = 140
	// maxCheckOutput is the limit of a check run's output title, summary
	// and text, in bytes.
	maxCheckOutput = 65535
)

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
