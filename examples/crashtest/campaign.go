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
	"sync/atomic"
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
	up        chan struct{} // closed once the process last started answers /healthz
}

func (r *replica) url() string { return "http://" + r.addr }

// boot starts the process and waits until it answers /healthz.
func (r *replica) boot(ctx context.Context) error {
	if err := r.start(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := r.healthy(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	close(r.up)
	return nil
}

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

// ready returns a channel closed while the replica is up: after boot,
// until the next kill.
func (r *replica) ready() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.up
}

// kill sends SIGKILL and reaps the process. The replica is down from
// before the signal, so that a client that saw it die waits for the next
// boot.
func (r *replica) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.up:
		r.up = make(chan struct{})
	default:
	}
	if r.cmd != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// healthy waits until the replica answers /healthz.
func (r *replica) healthy(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
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
		case <-t.C:
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

// buildServer builds this tree's server into dir and returns its path.
// The binary is built without the race detector, whatever the caller's
// build: the campaign tests how the server process behaves when killed.
func buildServer(ctx context.Context, dir string, out io.Writer) (string, error) {
	bin := filepath.Join(dir, "ghbridge-server")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/ghbridge/ghbridge/examples/server")
	build.Stdout, build.Stderr = out, out
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("building the server: %w", err)
	}
	return bin, nil
}

// Run builds the server (unless Bin is set), runs the campaign and
// prints its report to out.
func (c Campaign) Run(ctx context.Context, out io.Writer) (Report, error) {
	bin := c.Bin
	if bin == "" {
		var err error
		if bin, err = buildServer(ctx, c.Dir, out); err != nil {
			return Report{}, err
		}
	}
	s := &session{c: c, fake: newGitHub()}
	defer s.fake.Close()
	defer s.stop()
	if err := s.startReplicas(ctx, bin); err != nil {
		return Report{}, err
	}
	defer completeRuns(s.fake)()
	var rep Report
	jobs, lastUp, err := s.load(ctx, &rep)
	if err != nil {
		return rep, err
	}
	final := s.settle(ctx, jobs, lastUp.Add(c.Settle))
	rep.SettledIn = time.Since(lastUp)
	s.check(&rep, jobs, final)
	rep.print(out)
	return rep, nil
}

// session is one run of a campaign: the fake GitHub and the servers.
type session struct {
	c             Campaign
	fake          *githubtest.Server
	reps          []*replica
	front, victim *replica
}

// newGitHub returns the fake GitHub: one repository with the deploy
// workflow, installed.
func newGitHub() *githubtest.Server {
	fake := githubtest.NewServer()
	fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "deployer", Workflows: []githubtest.Workflow{
		{Name: "deploy", Path: ".github/workflows/deploy.yml", RunName: "Deploy ${{ inputs.job_id }}", Inputs: []string{"job_id"}},
	}})
	fake.AddInstallation(githubtest.AppInstallation{Account: "acme", Repositories: []string{"acme/deployer"}})
	return fake
}

// startReplicas starts the servers, one after the other, points the
// fake's webhook at the first and has it recover the installation. The
// last is the victim.
func (s *session) startReplicas(ctx context.Context, bin string) error {
	for i := range max(s.c.Replicas, 1) {
		addr, err := freePort()
		if err != nil {
			return err
		}
		lf, err := os.Create(filepath.Join(s.c.Dir, fmt.Sprintf("server-%d.log", i)))
		if err != nil {
			return err
		}
		r := &replica{bin: bin, addr: addr, log: lf, env: s.serverEnv(addr), up: make(chan struct{})}
		s.reps = append(s.reps, r)
		if err := r.boot(ctx); err != nil {
			return err
		}
	}
	s.front, s.victim = s.reps[0], s.reps[len(s.reps)-1]
	s.fake.SetWebhook(s.front.url()+"/api/github/webhook", webhookSecret)
	if code, err := call(s.front.url(), "POST", "/api/github/installations/recover", nil, nil); err != nil || code != 200 {
		return fmt.Errorf("recovering installations: %d %v", code, err)
	}
	return nil
}

// serverEnv is the environment of a server listening on addr.
func (s *session) serverEnv(addr string) []string {
	return append(os.Environ(),
		"GITHUB_APP_ID="+strconv.FormatInt(s.fake.AppID, 10),
		"GITHUB_APP_PRIVATE_KEY="+s.fake.PrivateKeyPEM(),
		"GITHUB_API_URL="+s.fake.URL,
		"GITHUB_WEBHOOK_SECRET="+webhookSecret,
		"GHBRIDGE_API_KEYS="+tenant+":"+apiKey,
		"GHBRIDGE_DATABASE_URL="+s.c.DB,
		// Three campaigns, two with PostgreSQL, share the test server's
		// connections with other packages' tests.
		"GHBRIDGE_DATABASE_MAX_CONNS=8",
		"GHBRIDGE_ADDR="+addr,
		// Deliveries that failed while a server was down are redelivered
		// at the next reconciliation: soon, so that a campaign settles
		// within a second of its last restart.
		"GHBRIDGE_RECONCILE_INTERVAL=200ms",
		"GHBRIDGE_QUIET_AFTER=24h", // no polling: a job finishes only through its delivery
		"GHBRIDGE_LOG_LEVEL=warn",
		// The fake lists a run as soon as it exists (before it answers the
		// dispatch); GitHub may take longer, hence the 2 min default. A
		// kill between a dispatch and its record leaves it ambiguous:
		// looked up, and sent again if no run has its id, after this.
		"GHBRIDGE_DISPATCH_SETTLE=500ms",
	)
}

// stop kills the servers and closes their logs.
func (s *session) stop() {
	for _, r := range s.reps {
		r.kill()
		r.log.Close()
	}
}

// completeRuns completes the runs on GitHub as soon as they exist, until
// the returned stop is called; each completion is a delivery, failed
// while the server is down.
func completeRuns(fake *githubtest.Server) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			for _, run := range fake.Runs() {
				if run.Status != "completed" {
					_, _ = fake.SetRunStatus(run.ID, "completed", "success")
				}
			}
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(quit); <-done }
}

// load creates the jobs from several clients while the victim is killed
// at random points of the load, and returns the jobs acknowledged and
// when the victim was last up again.
func (s *session) load(ctx context.Context, rep *Report) (jobs []string, lastUp time.Time, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	acked := make(chan string, s.c.Jobs)
	progress := make(chan struct{}, 1) // a job was acknowledged
	var n atomic.Int64
	ids := make(chan string)
	var clients sync.WaitGroup
	for range max(s.c.Concurrency, 1) {
		clients.Add(1)
		go func() {
			defer clients.Done()
			for id := range ids {
				if s.create(ctx, id) {
					acked <- id
					n.Add(1)
					select {
					case progress <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	go func() {
		defer close(ids)
		for i := range s.c.Jobs {
			select {
			case ids <- fmt.Sprintf("job-%d", i):
			case <-ctx.Done():
				return
			}
		}
	}()
	s.startOutage()
	err = s.kills(ctx, rep, func() int { return int(n.Load()) }, progress)
	lastUp = time.Now()
	if err != nil {
		cancel() // the clients give up
	}
	clients.Wait()
	close(acked)
	for id := range acked {
		jobs = append(jobs, id)
	}
	rep.Acked = len(jobs)
	return jobs, lastUp, err
}

// create posts the job to random servers until one acknowledges it:
// 201, or 409 when an earlier try whose answer was lost created it. A
// server that did not answer is tried again once it is up; one that
// answered an error, a moment later.
func (s *session) create(ctx context.Context, id string) bool {
	agent := map[string]any{"owner": "acme", "repo": "deployer", "workflowId": "deploy.yml"}
	for {
		r := s.reps[rand.IntN(len(s.reps))]
		code, err := call(r.url(), "POST", "/api/jobs", map[string]any{"id": id, "agent": agent}, nil)
		if err == nil && (code == 201 || code == 409) {
			return true
		}
		if !s.retry(ctx, r, err == nil) {
			return false
		}
	}
}

// retry waits before a job is posted again to r: until it is up when it
// did not answer, a moment when it answered an error. It reports false
// when ctx ends first.
func (s *session) retry(ctx context.Context, r *replica, answered bool) bool {
	if answered {
		t := time.NewTimer(20 * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	select {
	case <-r.ready():
		return true
	case <-ctx.Done():
		return false
	}
}

// startOutage makes GitHub refuse dispatches for the campaign's Outage.
func (s *session) startOutage() {
	if s.c.Outage > 0 {
		s.fake.InjectFault(githubtest.Fault{Route: "POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", Status: 503, Times: -1})
		time.AfterFunc(s.c.Outage, s.fake.ClearFaults)
	}
}

// kills SIGKILLs the victim at random points of the load: once the jobs
// acknowledged reach a number drawn at random (0 to all of them), and the
// victim is up again from the kill before.
func (s *session) kills(ctx context.Context, rep *Report, acked func() int, progress <-chan struct{}) error {
	rng := rand.New(rand.NewPCG(uint64(s.c.Seed), 0))
	var at []int
	for range s.c.Kills {
		at = append(at, rng.IntN(max(s.c.Jobs, 0)+1))
	}
	slices.Sort(at)
	for _, n := range at {
		for acked() < n {
			select {
			case <-progress:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		s.victim.kill()
		rep.Kills++
		if err := s.victim.boot(ctx); err != nil {
			return err
		}
	}
	return nil
}

// settle asks for the jobs until each is successful, or until deadline,
// and returns the status each was last seen in. It waits on the first
// job not seen successful yet, so that a tick costs one request, and asks
// for every job left when time is up.
func (s *session) settle(ctx context.Context, jobs []string, deadline time.Time) map[string]string {
	final := map[string]string{}
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	next := 0 // jobs[:next] were seen successful; a final status stays
	for {
		for next < len(jobs) {
			id := jobs[next]
			if final[id] = s.statusOf(id); final[id] != "successful" {
				break
			}
			next++
		}
		if next == len(jobs) {
			return final
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			for _, id := range jobs[next+1:] {
				final[id] = s.statusOf(id)
			}
			return final
		}
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
}

// statusOf returns the job's status on the front server, "lost" when it
// does not know the job, "unreachable" when it does not answer.
func (s *session) statusOf(id string) string {
	var job struct {
		Status string `json:"status"`
	}
	code, err := call(s.front.url(), "GET", "/api/jobs/"+id, nil, &job)
	switch {
	case err != nil:
		return "unreachable"
	case code == 404:
		return "lost"
	}
	return job.Status
}

// check counts what every acknowledged job should be and is not:
// successful, from exactly one run.
func (s *session) check(rep *Report, jobs []string, final map[string]string) {
	runsOf := map[string]int{}
	for _, run := range s.fake.Runs() {
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
		if s.c.Unqualified {
			key = id
		}
		if n := runsOf[key]; n > 1 {
			rep.Doubled++
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %d runs", id, n))
		}
	}
	for _, d := range s.fake.Deliveries() {
		rep.Deliveries++
		if d.StatusCode < 200 || d.StatusCode > 299 {
			rep.FailedDeliveries++
		}
		if d.Redelivery {
			rep.Redeliveries++
		}
	}
}

// print writes the report and its first problems.
func (r Report) print(out io.Writer) {
	fmt.Fprintln(out, r)
	for i, p := range r.Problems {
		if i == 20 {
			fmt.Fprintf(out, "  ... and %d more\n", len(r.Problems)-20)
			break
		}
		fmt.Fprintln(out, "  "+p)
	}
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
