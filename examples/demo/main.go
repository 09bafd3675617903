// Command demo runs ghbridge's whole pipeline on this machine, with no
// GitHub credentials: it starts the fake GitHub (github/githubtest) and
// the reference server in-process (SQLite in a temporary directory),
// installs the App, creates a job from a templated agent config, lets the
// fake GitHub run it through queued, in_progress and completed with
// signed webhook deliveries, and prints the job's status history; then
// cancels a running job and re-runs a failed one.
//
//	go run ./examples/demo
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/examples/server/app"
	"github.com/ghbridge/ghbridge/github/githubtest"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

const (
	apiKey        = "demo-tenant:demo-key-0123456789abcdef"
	bearer        = "demo-key-0123456789abcdef"
	webhookSecret = "demo-webhook-secret"
)

// agentConfig is the job agent config a host stores: which workflow runs
// a deployment, with Go templates filled from each job.
const agentConfig = `{
  "owner": "acme",
  "repo": "deployer",
  "workflowId": "deploy.yml",
  "ref": "main",
  "inputs": {
    "version": "{{ .version.tag }}",
    "environment": "{{ .environment.name }}",
    "target": "{{ .resource.identifier }}",
    "region": "{{ get .deployment.variables \"REGION\" \"us-east-1\" }}"
  }
}`

func run(ctx context.Context, out io.Writer) error {
	// Runs ignore cancel requests until the demo ends them (step 8), so
	// that the cancel's answer always comes before the run's end.
	d := &demo{out: out, fake: githubtest.NewServer(githubtest.WithCancelDelay(-1))}
	defer d.fake.Close()
	d.installApp()

	dir, err := os.MkdirTemp("", "ghbridge-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	base, stop, err := startServer(ctx, d.fake, dir)
	if err != nil {
		return err
	}
	defer stop()
	d.fake.SetWebhook(base+"/api/github/webhook", webhookSecret)
	d.say("2. ghbridge server at %s (SQLite in %s); the fake GitHub delivers webhooks to it", base, dir)
	d.c = &client{base: base}

	if err := d.installFlow(); err != nil {
		return err
	}
	job := deployJob()
	created, err := d.createJob(job)
	if err != nil {
		return err
	}
	if err := d.moveRun(created.RunID); err != nil {
		return err
	}
	if err := d.report(created.ID); err != nil {
		return err
	}
	if err := d.cancel(job); err != nil {
		return err
	}
	if err := d.rerun(job); err != nil {
		return err
	}
	return d.list()
}

// demo is what the steps share: the fake GitHub, the App's installation
// on it, a client of the ghbridge server, and where the steps print.
type demo struct {
	fake *githubtest.Server
	inst githubtest.AppInstallation
	c    *client
	out  io.Writer
}

// say prints one line of the demo's story.
func (d *demo) say(format string, a ...any) { fmt.Fprintf(d.out, format+"\n", a...) }

// installApp (step 1) adds the deployer repository and its workflow to
// the fake GitHub, and installs the App on it.
func (d *demo) installApp() {
	d.fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "deployer", Workflows: []githubtest.Workflow{{
		Name: "deploy", Path: ".github/workflows/deploy.yml", RunName: "Deploy ${{ inputs.job_id }}",
		Inputs: []string{"job_id", "version", "environment", "target", "region"},
	}}})
	d.inst = d.fake.AddInstallation(githubtest.AppInstallation{Account: "acme", Repositories: []string{"acme/deployer"}})
	d.say("1. fake GitHub at %s: App %q (id %d) installed on acme/deployer as installation %d", d.fake.URL, d.fake.AppSlug, d.fake.AppID, d.inst.ID)
}

// startServer (step 2) starts the reference server on loopback, configured
// for the fake GitHub with SQLite in dir; stop shuts it down.
func startServer(ctx context.Context, fake *githubtest.Server, dir string) (base string, stop func() error, err error) {
	env := map[string]string{
		"GITHUB_APP_ID":          strconv.FormatInt(fake.AppID, 10),
		"GITHUB_APP_PRIVATE_KEY": fake.PrivateKeyPEM(),
		"GITHUB_APP_NAME":        fake.AppSlug,
		"GITHUB_API_URL":         fake.URL,
		"GITHUB_WEBHOOK_SECRET":  webhookSecret,
		"GHBRIDGE_API_KEYS":      apiKey,
		"GHBRIDGE_DATABASE_URL":  "sqlite:" + filepath.Join(dir, "ghbridge.db"),
	}
	cfg, err := app.LoadConfig(credentials.MapLookup(env))
	if err != nil {
		return "", nil, err
	}
	srv, err := app.New(ctx, cfg, app.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return "", nil, err
	}
	return srv.ServeLoopback(ctx)
}

// installFlow (step 3) goes through the install flow as a browser would:
// the install URL, then GitHub's redirect to the App's setup URL.
func (d *demo) installFlow() error {
	var installURL struct {
		URL string `json:"url"`
	}
	if err := d.c.do("GET", "/api/github/install-url", nil, &installURL); err != nil {
		return err
	}
	u, err := url.Parse(installURL.URL)
	if err != nil {
		return err
	}
	// The browser comes back from GitHub to the App's setup URL.
	callback := fmt.Sprintf("/api/github/install-callback?installation_id=%d&setup_action=install&state=%s", d.inst.ID, url.QueryEscape(u.Query().Get("state")))
	var installed struct {
		Installation struct {
			Account      string   `json:"account"`
			Repositories []string `json:"repositories"`
		} `json:"installation"`
	}
	if err := d.c.do("GET", callback, nil, &installed); err != nil {
		return err
	}
	d.say("3. install flow: %s, callback stored installation %d of %s with %v", u.Path, d.inst.ID, installed.Installation.Account, installed.Installation.Repositories)
	return nil
}

// deployJob returns the job the demo creates: the agent config and the
// context its templates are filled from.
func deployJob() map[string]any {
	return map[string]any{
		"id":    "deploy-api-1-4-0",
		"agent": json.RawMessage(agentConfig),
		"context": map[string]any{
			"version":     map[string]any{"tag": "v1.4.0", "name": "1.4.0"},
			"environment": map[string]any{"id": "env-prod", "name": "production"},
			"resource":    map[string]any{"identifier": "cluster-eu-1", "name": "EU cluster", "kind": "kubernetes"},
			"deployment":  map[string]any{"name": "api", "variables": map[string]any{"REGION": "eu-west-1"}},
		},
	}
}

// createJob (step 4) creates job, waits until a worker has dispatched
// it, and shows what GitHub received.
func (d *demo) createJob(job map[string]any) (jobView, error) {
	var created jobView
	if err := d.c.do("POST", "/api/jobs", job, &created); err != nil {
		return created, err
	}
	d.say("4. POST /api/jobs -> %s (accepted at once; a worker dispatches it)", created.Status)
	for deadline := time.Now().Add(10 * time.Second); created.Status == "pending"; {
		if time.Now().After(deadline) {
			return created, fmt.Errorf("job %s still pending after 10 s: %s", created.ID, created.Message)
		}
		time.Sleep(10 * time.Millisecond)
		if err := d.c.do("GET", "/api/jobs/"+created.ID, nil, &created); err != nil {
			return created, err
		}
	}
	d.say("   the dispatch queue -> %s, %s", created.Status, created.Message)
	for _, w := range d.fake.Dispatches() {
		d.say("   GitHub received workflow_dispatch of workflow %d on %s with inputs %v", w.WorkflowID, w.Ref, sorted(w.Inputs))
	}
	run, _ := d.fake.GetRun(created.RunID)
	d.say("   run %d %q", run.ID, run.DisplayTitle)
	return created, nil
}

// moveRun (step 5) moves the run on GitHub to success; each change is a
// signed workflow_run delivery to the server.
func (d *demo) moveRun(runID int64) error {
	d.say("5. the run moves on GitHub; each change is a signed workflow_run delivery:")
	for _, st := range [][2]string{{"queued", ""}, {"in_progress", ""}, {"completed", "success"}} {
		r, err := d.fake.SetRunStatus(runID, st[0], st[1])
		if err != nil {
			return err
		}
		ds := d.fake.Deliveries()
		last := ds[len(ds)-1]
		d.say("   %-11s %-8s -> delivery %s answered %d", r.Status, r.Conclusion, last.GUID[:8], last.StatusCode)
	}
	return nil
}

// report (steps 6 and 7) shows the job's status history and the inputs
// the workflow fetches, and fails unless the job succeeded.
func (d *demo) report(id string) error {
	var final jobView
	if err := d.c.do("GET", "/api/jobs/"+id, nil, &final); err != nil {
		return err
	}
	d.say("6. GET /api/jobs/%s: %s (%s)", final.ID, final.Status, final.Message)
	d.say("   status history:")
	for _, h := range final.History {
		d.say("     %s  %-11s -> %-11s  %-15s %s", h.At.Format("15:04:05.000"), h.From, h.To, "("+h.Source+")", h.Message)
	}
	var inputs map[string]any
	if err := d.c.do("GET", "/api/jobs/"+id+"/inputs", nil, &inputs); err != nil {
		return err
	}
	d.say("7. what the workflow fetches from GET /api/jobs/%s/inputs: version_tag=%v environment_name=%v resource_identifier=%v",
		id, inputs["version_tag"], inputs["environment_name"], inputs["resource_identifier"])
	d.say("   token exchanges: %d (one per installation per token lifetime)", d.fake.TokenExchanges(d.inst.ID))
	if final.Status != "successful" {
		return fmt.Errorf("the job ended %s, not successful", final.Status)
	}
	return nil
}

// cancel (step 8) shows what an operator does to a job that runs: a
// second job, cancelled while in progress.
func (d *demo) cancel(job map[string]any) error {
	job["id"] = "deploy-api-1-4-1"
	var v jobView
	if err := d.c.do("POST", "/api/jobs", job, &v); err != nil {
		return err
	}
	v, err := d.wait(v.ID, "in_progress")
	if err != nil {
		return err
	}
	if err := d.c.do("POST", "/api/jobs/"+v.ID+"/cancel", nil, &v); err != nil {
		return err
	}
	d.say("8. POST /api/jobs/%s/cancel -> %s (%s); GitHub cancels the run asynchronously", v.ID, v.Status, v.Message)
	if _, err := d.fake.SetRunStatus(v.RunID, "completed", "cancelled"); err != nil {
		return err
	}
	if v, err = d.wait(v.ID, "cancelled"); err != nil {
		return err
	}
	d.say("   then %s: %s", v.Status, v.Message)
	return nil
}

// rerun (step 9) shows what an operator does to a job that failed: a
// third job, whose run fails, re-run and then successful.
func (d *demo) rerun(job map[string]any) error {
	job["id"] = "deploy-api-1-4-2"
	var v jobView
	if err := d.c.do("POST", "/api/jobs", job, &v); err != nil {
		return err
	}
	v, err := d.wait(v.ID, "in_progress")
	if err != nil {
		return err
	}
	if _, err := d.fake.SetRunStatus(v.RunID, "completed", "failure"); err != nil {
		return err
	}
	if v, err = d.wait(v.ID, "failure"); err != nil {
		return err
	}
	d.say("9. job %s ended %s; POST /api/jobs/%s/rerun {\"failedOnly\": true}:", v.ID, v.Status, v.ID)
	if err := d.c.do("POST", "/api/jobs/"+v.ID+"/rerun", map[string]any{"failedOnly": true}, &v); err != nil {
		return err
	}
	d.say("   -> %s, run %d attempt %d", v.Status, v.RunID, v.RunAttempt)
	if _, err := d.fake.SetRunStatus(v.RunID, "completed", "success"); err != nil {
		return err
	}
	if v, err = d.wait(v.ID, "successful"); err != nil {
		return err
	}
	d.say("   status history:")
	for _, h := range v.History {
		d.say("     attempt %d  %-11s -> %-11s  %-15s %-14s %s", h.Attempt, h.From, h.To, "("+h.Source+")", h.Actor, h.Message)
	}
	return nil
}

// list (step 10) lists the jobs, newest first.
func (d *demo) list() error {
	var list struct {
		Jobs []jobView `json:"jobs"`
	}
	if err := d.c.do("GET", "/api/jobs?limit=10", nil, &list); err != nil {
		return err
	}
	d.say("10. GET /api/jobs, newest first:")
	for _, j := range list.Jobs {
		d.say("     %-18s %s", j.ID, j.Status)
	}
	return nil
}

// wait polls job id until it has status want, for at most 10 s.
func (d *demo) wait(id, want string) (jobView, error) {
	var v jobView
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if err := d.c.do("GET", "/api/jobs/"+id, nil, &v); err != nil || v.Status == want {
			return v, err
		}
		if time.Now().After(deadline) {
			return v, fmt.Errorf("job %s is %s, not %s: %s", id, v.Status, want, v.Message)
		}
	}
}

type jobView struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	Message    string `json:"message"`
	RunID      int64  `json:"runId"`
	RunAttempt int    `json:"runAttempt"`
	History    []struct {
		From, To, Message, Source, Actor string
		Attempt                          int
		At                               time.Time
	} `json:"history"`
}

type client struct{ base string }

func (c *client) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	return json.Unmarshal(raw, out)
}

func sorted(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, " ")
}
