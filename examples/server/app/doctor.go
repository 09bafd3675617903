package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	gh "github.com/google/go-github/v62/github"
	"go.yaml.in/yaml/v3"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/github"
)

// DoctorTarget is what the doctor checks the setup against.
type DoctorTarget struct {
	Owner, Repo    string
	Workflow       string // file name or numeric id
	Ref            string // default main
	InstallationID int64  // 0: the repository's installation
}

// doctor prints one line per check and remembers failures.
type doctor struct {
	out    io.Writer
	failed bool
}

func (d *doctor) ok(format string, a ...any) { fmt.Fprintf(d.out, "  ok    "+format+"\n", a...) }
func (d *doctor) warn(what, fix string) {
	fmt.Fprintf(d.out, "  warn  %s\n        fix: %s\n", what, fix)
}
func (d *doctor) fail(what, fix string) {
	d.failed = true
	fmt.Fprintf(d.out, "  FAIL  %s\n        fix: %s\n", what, fix)
}
func (d *doctor) skip(what string) { fmt.Fprintf(d.out, "  skip  %s\n", what) }

// Doctor checks a GitHub App setup step by step, the usual troubleshooting
// list, and prints what is wrong and how to fix it. It reports whether
// everything passed.
func Doctor(ctx context.Context, lookup credentials.LookupFunc, t DoctorTarget, out io.Writer) bool {
	d := &doctor{out: out}
	if t.Ref == "" {
		t.Ref = "main"
	}
	fmt.Fprintf(out, "ghbridge doctor: %s/%s, workflow %s, ref %s\n", t.Owner, t.Repo, t.Workflow, t.Ref)

	secrets, _ := lookup(EnvWebhookSecret)
	cfg, err := credentials.LoadAppConfig(lookup)
	if err != nil {
		d.fail("App id and private key: "+err.Error(), "set GITHUB_APP_ID to the numeric App ID and GITHUB_APP_PRIVATE_KEY (or GITHUB_APP_PRIVATE_KEY_FILE) to the .pem downloaded from the App's settings page")
		d.checkWebhookSecret(ctx, secrets, nil)
		return false
	}
	d.ok("App id %d and private key parse", cfg.AppID)

	clients, err := github.NewClientFactory(github.WithBaseURL(cfg.BaseURL), github.WithUserAgent("ghbridge-doctor"),
		github.WithRetryPolicy(github.RetryPolicy{MaxRetries: 1}))
	if err != nil {
		d.fail("API base URL: "+err.Error(), "set GITHUB_API_URL to https://api.github.com or https://HOST/api/v3")
		return false
	}
	app, err := clients.AppClient(cfg)
	if err != nil {
		d.fail(err.Error(), "check the App configuration")
		return false
	}
	meta, _, err := app.Apps.Get(ctx, "")
	if err != nil {
		d.fail("GitHub rejects the App's JWT: "+ghMessage(err), "the App id must belong to the private key (App settings > General); check this machine's clock (JWTs are valid for minutes)")
		d.checkWebhookSecret(ctx, secrets, nil)
		return false
	}
	d.ok("GitHub accepts the App's JWT (App %q)", meta.GetSlug())
	d.checkWebhookSecret(ctx, secrets, app)

	var inst *gh.Installation
	if t.InstallationID != 0 {
		inst, _, err = app.Apps.GetInstallation(ctx, t.InstallationID)
	} else {
		inst, _, err = app.Apps.FindRepositoryInstallation(ctx, t.Owner, t.Repo)
	}
	if err != nil {
		d.fail(fmt.Sprintf("no installation of the App reaches %s/%s: %s", t.Owner, t.Repo, ghMessage(err)),
			fmt.Sprintf("install the App on %s and grant it %s/%s (https://github.com/apps/%s/installations/new)", t.Owner, t.Owner, t.Repo, meta.GetSlug()))
		d.skip("repository, workflow, ref and permission checks need an installation")
		return false
	}
	if inst.SuspendedAt != nil {
		d.fail(fmt.Sprintf("installation %d (%s) is suspended", inst.GetID(), inst.GetAccount().GetLogin()),
			"an owner of the account unsuspends it under Settings > GitHub Apps > Configure")
		return false
	}
	d.ok("installation %d (%s) reachable, not suspended", inst.GetID(), inst.GetAccount().GetLogin())

	tokens, err := credentials.NewTokenCache(cfg, credentials.WithTransport(clients.Transport()))
	if err != nil {
		d.fail(err.Error(), "check the App configuration")
		return false
	}
	tok, err := tokens.Token(ctx, inst.GetID())
	if err != nil {
		d.fail("installation token: "+err.Error(), "see the message; reinstalling the App usually helps")
		return false
	}
	d.ok("installation token issued")
	if perm := tok.Permissions["actions"]; perm == "write" || perm == "admin" {
		d.ok("Actions permission: %s", perm)
	} else {
		d.fail(fmt.Sprintf("Actions permission is %q, workflow dispatches need write", perm),
			"App settings > Permissions > Repository > Actions: Read and write; then the installation owner accepts the new permissions")
	}

	client, err := clients.Client(credentials.ForInstallation(tokens, inst.GetID(), "doctor"))
	if err != nil {
		d.fail(err.Error(), "")
		return false
	}
	repo, _, err := client.Repositories.Get(ctx, t.Owner, t.Repo)
	if err != nil {
		d.fail(fmt.Sprintf("the installation cannot see %s/%s: %s", t.Owner, t.Repo, ghMessage(err)),
			"add the repository to the installation (Settings > GitHub Apps > Configure > Repository access)")
		d.skip("workflow and ref checks need the repository")
		return false
	}
	d.ok("repository %s granted to the installation", repo.GetFullName())

	d.checkWorkflow(ctx, client, t)
	if _, _, err := client.Git.GetRef(ctx, t.Owner, t.Repo, "heads/"+strings.TrimPrefix(t.Ref, "refs/heads/")); err != nil {
		d.fail(fmt.Sprintf("ref %q not found in %s/%s", t.Ref, t.Owner, t.Repo), "push the branch, or set ref in the job agent config to an existing branch")
	} else {
		d.ok("ref %s exists", t.Ref)
	}
	if d.failed {
		fmt.Fprintln(out, "some checks failed; fix them and run the doctor again")
		return false
	}
	fmt.Fprintln(out, "all checks passed")
	return true
}

func (d *doctor) checkWebhookSecret(ctx context.Context, secrets string, app *gh.Client) {
	if strings.TrimSpace(secrets) == "" {
		d.fail(EnvWebhookSecret+" is not set: deliveries cannot be verified, so the webhook route answers 503",
			"set it to the webhook secret of the App's settings (a comma-separated list during a rotation)")
		return
	}
	d.ok("%s set", EnvWebhookSecret)
	if app == nil {
		return
	}
	hc, _, err := app.Apps.GetHookConfig(ctx)
	switch {
	case err != nil:
		d.warn("could not read the App's webhook configuration: "+ghMessage(err), "check the App's webhook settings by hand")
	case hc.GetSecret() == "":
		d.fail("the App's webhook has no secret", "App settings > General > Webhook secret: set the same value as "+EnvWebhookSecret)
	case hc.GetURL() == "":
		d.warn("the App has no webhook URL", "App settings > General > Webhook URL: https://YOUR-HOST/api/github/webhook")
	default:
		d.ok("App webhook %s has a secret", hc.GetURL())
	}
}

func (d *doctor) checkWorkflow(ctx context.Context, client *gh.Client, t DoctorTarget) {
	var wf *gh.Workflow
	var err error
	if id, perr := parseID(t.Workflow); perr == nil {
		wf, _, err = client.Actions.GetWorkflowByID(ctx, t.Owner, t.Repo, id)
	} else {
		wf, _, err = client.Actions.GetWorkflowByFileName(ctx, t.Owner, t.Repo, t.Workflow)
	}
	if err != nil {
		d.fail(fmt.Sprintf("workflow %q not found: %s", t.Workflow, ghMessage(err)),
			"use the workflow's file name under .github/workflows (deploy.yml) or its numeric id, from the default branch")
		return
	}
	if wf.GetState() != "active" {
		d.fail(fmt.Sprintf("workflow %s is %s", wf.GetPath(), wf.GetState()), "enable it in the repository's Actions tab")
	}
	file, _, _, err := client.Repositories.GetContents(ctx, t.Owner, t.Repo, wf.GetPath(), &gh.RepositoryContentGetOptions{Ref: t.Ref})
	if err != nil {
		d.warn("could not read "+wf.GetPath()+" at "+t.Ref+": "+ghMessage(err), "check the workflow by hand")
		return
	}
	text, err := file.GetContent()
	if err != nil {
		d.warn("could not decode "+wf.GetPath()+": "+err.Error(), "check the workflow by hand")
		return
	}
	var doc struct {
		RunName string    `yaml:"run-name"`
		On      yaml.Node `yaml:"on"`
	}
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		d.fail(wf.GetPath()+" is not valid YAML: "+err.Error(), "fix the workflow file")
		return
	}
	dispatchable, inputs := triggers(&doc.On)
	if !dispatchable {
		d.fail(wf.GetPath()+" has no workflow_dispatch trigger", "add \"on: workflow_dispatch\" with a job_id input to the workflow (on the ref that is run)")
		return
	}
	d.ok("workflow %s exists and has workflow_dispatch", wf.GetPath())
	if !inputs["job_id"] {
		d.warn(wf.GetPath()+" declares no job_id input, and GitHub rejects undeclared inputs", "add under on.workflow_dispatch.inputs:  job_id: { required: true, type: string }")
	}
	if !strings.Contains(doc.RunName, "job_id") {
		d.warn(wf.GetPath()+" has no run-name with the job id; servers without return_run_details (GitHub Enterprise Server 3.20 and older) cannot find its runs",
			"add: run-name: Deploy ${{ inputs.job_id }}")
	}
}

// triggers reads the workflow's on: section in any of its forms.
func triggers(on *yaml.Node) (dispatch bool, inputs map[string]bool) {
	inputs = map[string]bool{}
	switch on.Kind {
	case yaml.ScalarNode:
		return on.Value == "workflow_dispatch", inputs
	case yaml.SequenceNode:
		for _, n := range on.Content {
			if n.Value == "workflow_dispatch" {
				return true, inputs
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(on.Content); i += 2 {
			if on.Content[i].Value != "workflow_dispatch" {
				continue
			}
			wd := on.Content[i+1]
			for j := 0; j+1 < len(wd.Content); j += 2 {
				if wd.Content[j].Value == "inputs" {
					in := wd.Content[j+1]
					for k := 0; k+1 < len(in.Content); k += 2 {
						inputs[in.Content[k].Value] = true
					}
				}
			}
			return true, inputs
		}
	}
	return false, inputs
}

func parseID(s string) (int64, error) {
	var n int64
	_, err := fmt.Sscan(s, &n)
	if err != nil || fmt.Sprint(n) != s {
		return 0, errors.New("not a number")
	}
	return n, nil
}

// ghMessage shortens a GitHub error for a person.
func ghMessage(err error) string {
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return fmt.Sprintf("%d %s: %s", er.Response.StatusCode, http.StatusText(er.Response.StatusCode), er.Message)
	}
	return err.Error()
}
