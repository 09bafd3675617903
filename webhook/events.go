package webhook

import (
	"encoding/json"
	"time"
)

// The event types below hold only the fields ghbridge uses, so decoding a
// delivery skips the rest of GitHub's (large) payload quickly. Hosts
// receive them in the handlers they register with Handle; hosts that want
// everything call Delivery.GitHubEvent for go-github's typed event.

// Repository identifies a repository in a payload (Delivery.Repository,
// the events' Repository).
type Repository struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	FullName string `json:"full_name"`
	Private  bool   `json:"private"`
	Owner    struct {
		Login string `json:"login"`
	} `json:"owner"`
}

// InstallationRef identifies the App installation a delivery is for (the
// events' Installation; Delivery.InstallationID has its id).
type InstallationRef struct {
	ID int64 `json:"id"`
}

// WorkflowRunEvent is a workflow_run delivery, for handlers registered with Handle.
type WorkflowRunEvent struct {
	Action       string          `json:"action"`
	WorkflowRun  WorkflowRun     `json:"workflow_run"`
	Repository   Repository      `json:"repository"`
	Installation InstallationRef `json:"installation"`
}

// WorkflowRun is the run in a workflow_run delivery
// (WorkflowRunEvent.WorkflowRun).
type WorkflowRun struct {
	ID           int64     `json:"id"`
	WorkflowID   int64     `json:"workflow_id"`
	Name         string    `json:"name"`
	DisplayTitle string    `json:"display_title"`
	Event        string    `json:"event"`
	Status       string    `json:"status"`
	Conclusion   string    `json:"conclusion"`
	HeadBranch   string    `json:"head_branch"`
	HeadSHA      string    `json:"head_sha"`
	Path         string    `json:"path"`
	RunNumber    int       `json:"run_number"`
	RunAttempt   int       `json:"run_attempt"`
	URL          string    `json:"url"`
	HTMLURL      string    `json:"html_url"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	RunStartedAt time.Time `json:"run_started_at"`
	// TriggeringActor started this attempt (who clicked "Re-run").
	TriggeringActor User `json:"triggering_actor"`
}

// WorkflowJobEvent is a workflow_job delivery, for handlers registered with Handle.
type WorkflowJobEvent struct {
	Action       string          `json:"action"`
	WorkflowJob  WorkflowJob     `json:"workflow_job"`
	Repository   Repository      `json:"repository"`
	Installation InstallationRef `json:"installation"`
}

// WorkflowJob is the job in a workflow_job delivery
// (WorkflowJobEvent.WorkflowJob).
type WorkflowJob struct {
	ID           int64      `json:"id"`
	RunID        int64      `json:"run_id"`
	RunAttempt   int        `json:"run_attempt"`
	Name         string     `json:"name"`
	WorkflowName string     `json:"workflow_name"`
	Status       string     `json:"status"`
	Conclusion   string     `json:"conclusion"`
	HTMLURL      string     `json:"html_url"`
	StartedAt    time.Time  `json:"started_at"`
	CompletedAt  *time.Time `json:"completed_at"`
	Steps        []Step     `json:"steps"`
}

// Step is one step of a workflow job (WorkflowJob.Steps).
type Step struct {
	Name       string `json:"name"`
	Status     string `json:"status"`
	Conclusion string `json:"conclusion"`
	Number     int    `json:"number"`
}

// InstallationEvent is an installation delivery (created, deleted,
// suspend, unsuspend, new_permissions_accepted), for handlers registered
// with Handle; SyncInstallations handles them.
type InstallationEvent struct {
	Action       string           `json:"action"`
	Installation InstallationInfo `json:"installation"`
	// Repositories are the granted repositories, for created and deleted.
	Repositories []Repository `json:"repositories"`
}

// InstallationInfo is the installation object of installation and
// installation_repositories deliveries.
type InstallationInfo struct {
	ID      int64 `json:"id"`
	AppID   int64 `json:"app_id"`
	Account struct {
		Login string `json:"login"`
		ID    int64  `json:"id"`
		Type  string `json:"type"`
	} `json:"account"`
	RepositorySelection string            `json:"repository_selection"`
	Permissions         map[string]string `json:"permissions"`
	SuspendedAt         *time.Time        `json:"suspended_at"`
}

// InstallationRepositoriesEvent is an installation_repositories delivery,
// for handlers registered with Handle; SyncInstallations handles them.
type InstallationRepositoriesEvent struct {
	Action              string           `json:"action"`
	Installation        InstallationInfo `json:"installation"`
	RepositorySelection string           `json:"repository_selection"`
	RepositoriesAdded   []Repository     `json:"repositories_added"`
	RepositoriesRemoved []Repository     `json:"repositories_removed"`
}

// DeploymentStatusEvent is a deployment_status delivery, for handlers registered with Handle.
type DeploymentStatusEvent struct {
	Action           string           `json:"action"`
	DeploymentStatus DeploymentStatus `json:"deployment_status"`
	Deployment       Deployment       `json:"deployment"`
	Repository       Repository       `json:"repository"`
	Installation     InstallationRef  `json:"installation"`
}

// DeploymentStatus is the status of a deployment_status delivery
// (DeploymentStatusEvent.DeploymentStatus).
type DeploymentStatus struct {
	ID          int64     `json:"id"`
	State       string    `json:"state"`
	Description string    `json:"description"`
	Environment string    `json:"environment"`
	LogURL      string    `json:"log_url"`
	TargetURL   string    `json:"target_url"`
	CreatedAt   time.Time `json:"created_at"`
	// Creator posted the status; for an App, its bot user.
	Creator struct {
		Login string `json:"login"`
		ID    int64  `json:"id"`
		Type  string `json:"type"`
	} `json:"creator"`
	// PerformedViaGitHubApp is the App that posted the status, if any.
	PerformedViaGitHubApp struct {
		ID   int64  `json:"id"`
		Slug string `json:"slug"`
	} `json:"performed_via_github_app"`
}

// Deployment is GitHub's deployment in a deployment_status or
// deployment_protection_rule delivery (not template.Deployment, the
// host's pipeline).
type Deployment struct {
	ID          int64           `json:"id"`
	Ref         string          `json:"ref"`
	SHA         string          `json:"sha"`
	Task        string          `json:"task"`
	Environment string          `json:"environment"`
	Payload     json.RawMessage `json:"payload"`
}

// CheckRunEvent is a check_run delivery, for handlers registered with Handle.
type CheckRunEvent struct {
	Action       string          `json:"action"`
	CheckRun     CheckRun        `json:"check_run"`
	Repository   Repository      `json:"repository"`
	Installation InstallationRef `json:"installation"`
	// RequestedAction is the button pressed, for action requested_action.
	RequestedAction struct {
		Identifier string `json:"identifier"`
	} `json:"requested_action"`
	Sender User `json:"sender"`
}

// User is the account that caused a delivery (its sender), or a run's
// triggering actor.
type User struct {
	Login string `json:"login"`
	ID    int64  `json:"id"`
	Type  string `json:"type"`
}

// DeploymentProtectionRuleEvent is a deployment_protection_rule delivery,
// for handlers registered with Handle: a run waits for this App, a custom
// deployment protection rule of the environment, to approve or reject its
// deployment by answering DeploymentCallbackURL.
type DeploymentProtectionRuleEvent struct {
	Action      string `json:"action"`
	Environment string `json:"environment"`
	Event       string `json:"event"`
	SHA         string `json:"sha"`
	Ref         string `json:"ref"`
	// DeploymentCallbackURL is
	// ".../repos/OWNER/REPO/actions/runs/RUN_ID/deployment_protection_rule".
	DeploymentCallbackURL string          `json:"deployment_callback_url"`
	Deployment            Deployment      `json:"deployment"`
	Repository            Repository      `json:"repository"`
	Installation          InstallationRef `json:"installation"`
	Sender                User            `json:"sender"`
}

// CheckRun is the check run of a check_run delivery
// (CheckRunEvent.CheckRun).
type CheckRun struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	HeadSHA    string `json:"head_sha"`
	ExternalID string `json:"external_id"`
	Status     string `json:"status"`
	Conclusion string `json:"conclusion"`
	HTMLURL    string `json:"html_url"`
	App        struct {
		ID int64 `json:"id"`
	} `json:"app"`
}

// PullRequestEvent is a pull_request delivery, for handlers registered with Handle.
type PullRequestEvent struct {
	Action       string          `json:"action"`
	Number       int             `json:"number"`
	PullRequest  PullRequest     `json:"pull_request"`
	Repository   Repository      `json:"repository"`
	Installation InstallationRef `json:"installation"`
}

// PullRequest is the pull request of a pull_request delivery
// (PullRequestEvent.PullRequest).
type PullRequest struct {
	ID       int64      `json:"id"`
	Number   int        `json:"number"`
	State    string     `json:"state"`
	Merged   bool       `json:"merged"`
	Title    string     `json:"title"`
	Body     string     `json:"body"`
	HTMLURL  string     `json:"html_url"`
	MergedAt *time.Time `json:"merged_at"`
	ClosedAt *time.Time `json:"closed_at"`
	Head     struct {
		Ref string `json:"ref"`
		SHA string `json:"sha"`
	} `json:"head"`
	Base struct {
		Ref string `json:"ref"`
	} `json:"base"`
}

// headed events carry what routing needs, so that a delivery decoded into
// one is decoded once.
type headed interface{ head() head }

func (e *WorkflowRunEvent) head() head {
	return head{Action: e.Action, Installation: e.Installation, Repository: e.Repository}
}

func (e *WorkflowJobEvent) head() head {
	return head{Action: e.Action, Installation: e.Installation, Repository: e.Repository}
}

func (e *InstallationEvent) head() head {
	return head{Action: e.Action, Installation: InstallationRef{ID: e.Installation.ID}}
}

func (e *InstallationRepositoriesEvent) head() head {
	return head{Action: e.Action, Installation: InstallationRef{ID: e.Installation.ID}}
}

func (e *DeploymentStatusEvent) head() head {
	return head{Action: e.Action, Installation: e.Installation, Repository: e.Repository}
}

func (e *CheckRunEvent) head() head {
	return head{Action: e.Action, Installation: e.Installation, Repository: e.Repository}
}

func (e *DeploymentProtectionRuleEvent) head() head {
	return head{Action: e.Action, Installation: e.Installation, Repository: e.Repository}
}

func (e *PullRequestEvent) head() head {
	return head{Action: e.Action, Installation: e.Installation, Repository: e.Repository}
}
