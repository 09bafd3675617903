package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ghbridge/ghbridge/github/githubtest"
)

const (
	apiKey        = "crash-key-0123456789abcdef0123"
	webhookSecret = "crash-secret"
	tenant        = "crash"
)

// Campaign is one crash campaign.
type Campaign struct {
	// DB is the server's database URL.
	DB string
	// Dir holds the server binary and logs.
	Dir         string
	Jobs        int
	Kills       int
	Replicas    int
	Concurrency int
	Seed        int64
	// Settle bounds the wait, after the last restart, for every job to be
	// final.
	Settle time.Duration
	// Bin, when set, is a server binary to use instead of building this
	// tree's (an older build, to compare); Unqualified says that it sends
	// job ids to GitHub as given, not "tenant.id".
	Bin         string
	Unqualified bool
	// Outage, when set, makes GitHub answer 503 to every dispatch for
	// that long from the start of the load: a moment of network trouble.
	Outage time.Duration
}

// Report is what a campaign found.
type Report struct {
	Kills, Acked, Runs               int
	Deliveries, FailedDeliveries     int
	Redeliveries                     int
	Lost, Doubled, Stuck, Unfinished int
	SettledIn                        time.Duration
	Problems                         []string
}

// OK reports whether the promises held.
func (r Report) OK() bool { return r.Lost+r.Doubled+r.Stuck+r.Unfinished == 0 }

func (r Report) String() string {
	return fmt.Sprintf("kills %d, jobs acknowledged %d, runs %d, deliveries %d (%d failed while down, %d redelivered); lost %d, doubled %d, stuck pending %d, unfinished %d; settled %s after the last restart",
		r.Kills, r.Acked, r.Runs, r.Deliveries, r.FailedDeliveries, r.Redeliveries, r.Lost, r.Doubled, r.Stuck, r.Unfinished, r.SettledIn.Round(10*time.Millisecond))
}

// replica is one server process.
type replica struct {
	bin, addr string
	env       []string
	log       *os.File
	mu        sync.Mutex
	cmd       *exec.Cmd
}

func (r *replica) url() string { return "http://" + r.addr }

func (r *replica) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cmd := exec.Command(r.bin)
	cmd.Env = r.env
	cmd.Stdout, cmd.Stderr = r.log, r.log
	if err := cmd.Start(); err != nil {
		return err
	}
	r.cmd = cmd
	return nil
}

// kill sends SIGKILL and reaps the process.
func (r *replica) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// healthy waits until the replica answers /healthz.
func (r *replica) healthy(ctx context.Context) error {
	for {
		resp, err := http.Get(r.url() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("server at %s did not come up: %w", r.addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Run builds the server, runs the campaign and prints its report to out.
func (c Campaign) Run(ctx context.Context, out io.Writer) (Report, error) {
	var rep Report
	rng := rand.New(rand.NewPCG(uint64(c.Seed), 0))
	bin := c.Bin
	if bin == "" {
		bin = filepath.Join(c.Dir, "ghbridge-server")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/ghbridge/ghbridge/examples/server")
		build.Stdout, build.Stderr = out, out
		if err := build.Run(); err != nil {
			return rep, fmt.Errorf("building the server: %w", err)
		}
	}

	fake := githubtest.NewServer()
	defer fake.Close()
	fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "deployer", Workflows: []githubtest.Workflow{
		{Name: "deploy", Path: ".github/workflows/deploy.yml", RunName: "Deploy ${{ inputs.job_id }}", Inputs: []string{"job_id"}},
	}})
	fake.AddInstallation(githubtest.AppInstallation{Account: "acme", Repositories: []string{"acme/deployer"}})

	var reps []*replica
	for i := range max(c.Replicas, 1) {
		addr, err := freePort()
		if err != nil {
			return rep, err
		}
		lf, err := os.Create(filepath.Join(c.Dir, fmt.Sprintf("server-%d.log", i)))
		if err != nil {
			return rep, err
		}
		defer lf.Close()
		reps = append(reps, &replica{bin: bin, addr: addr, log: lf, env: append(os.Environ(),
			"GITHUB_APP_ID="+strconv.FormatInt(fake.AppID, 10),
			"GITHUB_APP_PRIVATE_KEY="+fake.PrivateKeyPEM(),
			"GITHUB_API_URL="+fake.URL,
			"GITHUB_WEBHOOK_SECRET="+webhookSecret,
			"GHBRIDGE_API_KEYS="+tenant+":"+apiKey,
			"GHBRIDGE_DATABASE_URL="+c.DB,
			"GHBRIDGE_ADDR="+addr,
			"GHBRIDGE_RECONCILE_INTERVAL=1s",
			"GHBRIDGE_QUIET_AFTER=24h", // no polling: a job finishes only through its delivery
			"GHBRIDGE_LOG_LEVEL=warn",
			// The fake lists a run as soon as it exists; GitHub may take
			// longer, hence the 2 min default.
			"GHBRIDGE_DISPATCH_SETTLE=15s",
		)})
	}
	defer func() {
		for _, r := range reps {
			r.kill()
		}
	}()
	upCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, r := range reps {
		if err := r.start(); err != nil {
			return rep, err
		}
		if err := r.healthy(upCtx); err != nil {
			return rep, err
		}
	}
	front, victim := reps[0], reps[len(reps)-1]
	fake.SetWebhook(front.url()+"/api/github/webhook", webhookSecret)
	if code, err := call(front.url(), "POST", "/api/github/installations/recover", nil, nil); err != nil || code != 200 {
		return rep, fmt.Errorf("recovering installations: %d %v", code, err)
	}

	// The runs complete on GitHub as soon as they exist; each completion
	// is a delivery, failed while the server is down.
	stopMover := make(chan struct{})
	var moverDone sync.WaitGroup
	moverDone.Add(1)
	go func() {
		defer moverDone.Done()
		for {
			for _, run := range fake.Runs() {
				if run.Status != "completed" {
					_, _ = fake.SetRunStatus(run.ID, "completed", "success")
				}
			}
			select {
			case <-stopMover:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	defer func() { close(stopMover); moverDone.Wait() }()

	// Jobs are created by several clients, retried through the crashes
	// until the server answers; 201 and 409 (created by an earlier try
	// whose answer was lost) are acknowledged.
	ids := make(chan string)
	acked := make(chan string, c.Jobs)
	var clients sync.WaitGroup
	for range max(c.Concurrency, 1) {
		clients.Add(1)
		go func() {
			defer clients.Done()
			for id := range ids {
				for try := 0; ; try++ {
					r := reps[rand.IntN(len(reps))]
					code, err := call(r.url(), "POST", "/api/jobs", map[string]any{"id": id, "agent": map[string]any{
						"owner": "acme", "repo": "deployer", "workflowId": "deploy.yml"}}, nil)
					if err == nil && (code == 201 || code == 409) {
						acked <- id
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	// The load is paced over a window in which the kills fall at random
	// moments, so that they hit creations, dispatches and deliveries.
	window := max(time.Duration(c.Kills)*700*time.Millisecond, 2*time.Second)
	begin := time.Now()
	go func() {
		for i := range c.Jobs {
			ids <- fmt.Sprintf("job-%d", i)
			time.Sleep(window / time.Duration(max(c.Jobs, 1)))
		}
		close(ids)
	}()
	if c.Outage > 0 {
		fake.InjectFault(githubtest.Fault{Route: "POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", Status: 503, Times: -1})
		time.AfterFunc(c.Outage, fake.ClearFaults)
	}
	var at []time.Duration
	for range c.Kills {
		at = append(at, time.Duration(rng.Int64N(int64(window))))
	}
	slices.Sort(at)
	for _, d := range at {
		time.Sleep(time.Until(begin.Add(d)))
		victim.kill()
		rep.Kills++
		if err := victim.start(); err != nil {
			return rep, err
		}
	}
	if err := victim.healthy(upCtx); err != nil {
		return rep, err
	}
	lastRestart := time.Now()
	clients.Wait()
	close(acked)
	var jobs []string
	for id := range acked {
		jobs = append(jobs, id)
	}
	rep.Acked = len(jobs)

	// Every acknowledged job must become successful, exactly once.
	deadline := lastRestart.Add(c.Settle)
	var final map[string]string
	for {
		final = map[string]string{}
		done := 0
		for _, id := range jobs {
			var job struct {
				Status string `json:"status"`
			}
			code, err := call(front.url(), "GET", "/api/jobs/"+id, nil, &job)
			switch {
			case err != nil:
				final[id] = "unreachable"
			case code == 404:
				final[id] = "lost"
			default:
				final[id] = job.Status
			}
			if final[id] == "successful" {
				done++
			}
		}
		if done == len(jobs) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	rep.SettledIn = time.Since(lastRestart)
	runsOf := map[string]int{}
	for _, run := range fake.Runs() {
		runsOf[run.Inputs["job_id"]]++
		rep.Runs++
	}
	for _, id := range jobs {
		switch final[id] {
		case "successful":
		case "lost":
			rep.Lost++
		case "pending":
			rep.Stuck++
		default:
			rep.Unfinished++
		}
		if final[id] != "successful" {
			rep.Problems = append(rep.Problems, id+": "+final[id])
		}
		key := tenant + "." + id
		if c.Unqualified {
			key = id
		}
		if n := runsOf[key]; n > 1 {
			rep.Doubled++
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %d runs", id, n))
		}
	}
	for _, d := range fake.Deliveries() {
		rep.Deliveries++
		if d.StatusCode < 200 || d.StatusCode > 299 {
			rep.FailedDeliveries++
		}
		if d.Redelivery {
			rep.Redeliveries++
		}
	}
	fmt.Fprintln(out, rep)
	for i, p := range rep.Problems {
		if i == 20 {
			fmt.Fprintf(out, "  ... and %d more\n", len(rep.Problems)-20)
			break
		}
		fmt.Fprintln(out, "  "+p)
	}
	return rep, nil
}

// call sends a JSON request with the campaign's key and decodes the
// answer into out (when not nil).
func call(base, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode < 300 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, err
		}
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	return resp.StatusCode, nil
}
