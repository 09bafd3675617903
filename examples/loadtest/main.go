// Command loadtest measures the reference server's webhook path: it starts
// the server in-process on loopback, creates jobs in its database, and
// posts signed workflow_run deliveries (requested, in_progress,
// completed per job, in order per job, jobs in parallel) with a Go HTTP
// client. It reports deliveries per second and latency percentiles, then
// checks that every delivery was recorded and every job finished: none
// lost. On SQLite it also reports the WAL file's peak size during the
// load and its size after the writes pause (-idle).
//
//	go run ./examples/loadtest                      # SQLite in a temporary file
//	go run ./examples/loadtest -db postgres         # $GHBRIDGE_TEST_POSTGRES_URL or the local server
//	go run ./examples/loadtest -jobs 5000 -concurrency 32
//
// -mode dispatch measures the dispatch queue instead (jobs posted, then
// dispatched by the server's workers to an in-process fake GitHub;
// -replicas 2 runs two servers on one PostgreSQL), and -mode accept
// measures POST /api/jobs while GitHub accepts connections and never
// answers.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/examples/internal/testdb"
	"github.com/ghbridge/ghbridge/examples/server/app"
	"github.com/ghbridge/ghbridge/examples/server/sqlstore"
	"github.com/ghbridge/ghbridge/status"
	"github.com/ghbridge/ghbridge/webhook"
)

const secret = "loadtest-secret"

func main() {
	db := flag.String("db", "sqlite", `"sqlite", "postgres", or a database URL`)
	jobs := flag.Int("jobs", 3000, "jobs; each gets three deliveries")
	concurrency := flag.Int("concurrency", 16, "deliveries in flight at once")
	fixture := flag.String("fixture", "", "workflow_run payload to send (default: webhook/testdata/workflow_run_completed_success.json)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	mode := flag.String("mode", "deliveries", `"deliveries", "dispatch" or "accept"`)
	replicas := flag.Int("replicas", 1, "servers on the database, for -mode dispatch")
	idle := flag.Duration("idle", 3*time.Second, "SQLite: how long writes pause before the WAL size after the load is read")
	flag.Parse()
	var err error
	switch *mode {
	case "dispatch":
		err = runDispatch(*db, *jobs, *concurrency, *replicas, os.Stdout)
	case "accept":
		err = runAccept(*db, *jobs, *concurrency, os.Stdout)
	default:
		err = run(*db, *jobs, *concurrency, *fixture, *cpuprofile, *idle, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

type delivery struct {
	id, sig string
	body    []byte
}

func run(dbFlag string, jobs, concurrency int, fixture, cpuprofile string, idle time.Duration, out io.Writer) error {
	ctx := context.Background()
	dbURL, cleanup, err := database(dbFlag)
	if err != nil {
		return err
	}
	defer cleanup()
	var wal *walWatch
	if path, ok := strings.CutPrefix(dbURL, "sqlite:"); ok {
		wal = watchWAL(path + "-wal")
		defer wal.stop()
	}
	base, err := readFixture(fixture)
	if err != nil {
		return err
	}
	srv, url, stop, err := startServer(ctx, dbURL)
	if err != nil {
		return err
	}
	defer stop()
	if err := createRunningJobs(ctx, srv.DB().Jobs(), jobs); err != nil {
		return err
	}
	perJob, size, err := prepareDeliveries(base, jobs)
	if err != nil {
		return err
	}
	stopProfile, err := startProfile(cpuprofile)
	if err != nil {
		return err
	}
	defer stopProfile()
	res := loadResult{dialect: srv.DB().Dialect(), jobs: jobs, size: size, concurrency: concurrency, idle: idle, wal: wal != nil}
	if wal != nil {
		res.setupPeak = wal.reset() // the peak while the jobs were created
	}
	res.latencies, res.failed, res.elapsed = postAll(url, perJob, concurrency)
	pprof.StopCPUProfile()
	if wal != nil {
		res.walPeak = wal.peak()
		time.Sleep(idle) // the writes pause: the WAL may shrink back
		res.walIdle = wal.size()
	}
	if res.finished, res.recorded, err = countDone(ctx, srv, jobs); err != nil {
		return err
	}
	res.print(out)
	return res.check()
}

// readFixture reads the workflow_run payload: fixture, or the repository's
// webhook/testdata one.
func readFixture(fixture string) ([]byte, error) {
	if fixture == "" {
		var err error
		if fixture, err = findFixture(); err != nil {
			return nil, err
		}
	}
	return os.ReadFile(fixture)
}

// startServer starts the server on dbURL on loopback and returns its
// webhook URL.
func startServer(ctx context.Context, dbURL string) (srv *app.Server, url string, stop func() error, err error) {
	env := map[string]string{"GHBRIDGE_DATABASE_URL": dbURL, "GITHUB_WEBHOOK_SECRET": secret, "GHBRIDGE_LOG_LEVEL": "error"}
	cfg, err := app.LoadConfig(credentials.MapLookup(env))
	if err != nil {
		return nil, "", nil, err
	}
	srv, err = app.New(ctx, cfg, app.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, "", nil, err
	}
	serverURL, stop, err := srv.ServeLoopback(ctx)
	if err != nil {
		return nil, "", nil, err
	}
	return srv, serverURL + "/api/github/webhook", stop, nil
}

// createRunningJobs creates the jobs as a dispatch would have left them:
// in progress, job-i with run 40,000,000+i.
func createRunningJobs(ctx context.Context, store status.JobStore, jobs int) error {
	for i := range jobs {
		j := status.Job{ID: fmt.Sprintf("job-%d", i), Status: status.InProgress, Kind: "workflow_dispatch",
			Owner: "acme", Repo: "deployer", InstallationID: 777, RunID: int64(40_000_000 + i), RunAttempt: 1}
		if err := store.CreateJob(ctx, j); err != nil {
			return err
		}
	}
	return nil
}

// prepareDeliveries signs each job's three deliveries (requested,
// in_progress, completed) before the clock starts, from the base payload,
// and returns them with the size of one.
func prepareDeliveries(base []byte, jobs int) (perJob [][]delivery, size int, err error) {
	var tmpl map[string]any
	if err := json.Unmarshal(base, &tmpl); err != nil {
		return nil, 0, err
	}
	steps := []struct{ action, status, conclusion string }{{"requested", "queued", ""}, {"in_progress", "in_progress", ""}, {"completed", "completed", "success"}}
	perJob = make([][]delivery, jobs)
	for i := range jobs {
		for s, st := range steps {
			run := tmpl["workflow_run"].(map[string]any)
			run["id"], run["display_title"] = 40_000_000+i, fmt.Sprintf("Deploy job-%d", i)
			run["status"], run["updated_at"] = st.status, time.Date(2026, 1, 10, 10, 0, s*5, 0, time.UTC).Format(time.RFC3339)
			run["conclusion"] = nil
			if st.conclusion != "" {
				run["conclusion"] = st.conclusion
			}
			tmpl["action"] = st.action
			body, err := json.Marshal(tmpl)
			if err != nil {
				return nil, 0, err
			}
			size = len(body)
			perJob[i] = append(perJob[i], delivery{id: fmt.Sprintf("%d-%d", i, s), sig: webhook.Sign(secret, body), body: body})
		}
	}
	return perJob, size, nil
}

// startProfile starts a CPU profile into the file cpuprofile, when set;
// stop closes the file.
func startProfile(cpuprofile string) (stop func(), err error) {
	if cpuprofile == "" {
		return func() {}, nil
	}
	f, err := os.Create(cpuprofile)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// postAll posts each job's deliveries in order, jobs concurrency at a
// time, and returns each delivery's latency, the answers other than 200,
// and the time it all took.
func postAll(url string, perJob [][]delivery, concurrency int) (latencies []time.Duration, failed int64, elapsed time.Duration) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency}}
	latencies = make([]time.Duration, 0, len(perJob)*3)
	var mu sync.Mutex
	var fails atomic.Int64
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 256)
			for i := range next {
				for _, d := range perJob[i] {
					t := time.Now()
					if !post(client, url, d) {
						fails.Add(1)
					}
					local = append(local, time.Since(t))
				}
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		}()
	}
	for i := range perJob {
		next <- i
	}
	close(next)
	wg.Wait()
	return latencies, fails.Load(), time.Since(start)
}

// countDone counts the jobs finished and the deliveries recorded.
func countDone(ctx context.Context, srv *app.Server, jobs int) (finished, recorded int, err error) {
	for i := range jobs {
		j, err := srv.DB().Jobs().GetJob(ctx, fmt.Sprintf("job-%d", i))
		if err != nil {
			return 0, 0, err
		}
		if j.Status == status.Successful {
			finished++
		}
	}
	recorded, err = countDeliveries(srv)
	return finished, recorded, err
}

// loadResult is what a run of the delivery load measured.
type loadResult struct {
	dialect                     sqlstore.Dialect
	jobs, size, concurrency     int
	elapsed, idle               time.Duration
	latencies                   []time.Duration
	failed                      int64
	wal                         bool
	walPeak, setupPeak, walIdle int64
	finished, recorded          int
}

func (r loadResult) print(out io.Writer) {
	slices.Sort(r.latencies)
	pct := func(p float64) time.Duration { return r.latencies[int(float64(len(r.latencies)-1)*p)] }
	n := len(r.latencies)
	fmt.Fprintf(out, "database      %s\n", r.dialect)
	fmt.Fprintf(out, "deliveries    %d (%d jobs x 3, %d bytes each, %d in flight)\n", n, r.jobs, r.size, r.concurrency)
	fmt.Fprintf(out, "elapsed       %s\n", r.elapsed.Round(time.Millisecond))
	fmt.Fprintf(out, "throughput    %.0f deliveries/s\n", float64(n)/r.elapsed.Seconds())
	fmt.Fprintf(out, "latency       p50 %s  p90 %s  p99 %s  max %s\n", pct(.5).Round(time.Microsecond), pct(.9).Round(time.Microsecond), pct(.99).Round(time.Microsecond), r.latencies[n-1].Round(time.Microsecond))
	if r.wal {
		fmt.Fprintf(out, "wal           peak %.1f MB during the load (%.1f MB while creating the jobs), %.1f MB after %s without writes\n",
			mb(r.walPeak), mb(r.setupPeak), mb(r.walIdle), r.idle)
	}
	fmt.Fprintf(out, "errors        %d non-200 answers\n", r.failed)
	fmt.Fprintf(out, "lost          %d deliveries unrecorded, %d jobs not finished\n", n-r.recorded, r.jobs-r.finished)
}

// check fails when a delivery was refused or lost, or a job not finished.
func (r loadResult) check() error {
	if r.failed > 0 || r.recorded != len(r.latencies) || r.finished != r.jobs {
		return fmt.Errorf("deliveries were lost or refused")
	}
	return nil
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

// walWatch samples the size of a SQLite WAL file and keeps its peak.
type walWatch struct {
	path string
	max  atomic.Int64
	quit chan struct{}
	done chan struct{}
}

func watchWAL(path string) *walWatch {
	w := &walWatch{path: path, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.quit:
				return
			case <-t.C:
				w.size()
			}
		}
	}()
	return w
}

// size returns the file's size now (0 when absent) and updates the peak.
func (w *walWatch) size() int64 {
	fi, err := os.Stat(w.path)
	if err != nil {
		return 0
	}
	n := fi.Size()
	for {
		old := w.max.Load()
		if n <= old || w.max.CompareAndSwap(old, n) {
			return n
		}
	}
}

func (w *walWatch) peak() int64 { w.size(); return w.max.Load() }

// reset starts a new peak from the current size and returns the old one.
func (w *walWatch) reset() int64 {
	old := w.peak()
	w.max.Store(0)
	w.size()
	return old
}

func (w *walWatch) stop() { close(w.quit); <-w.done }

func post(c *http.Client, url string, d delivery) bool {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(d.body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "workflow_run")
	req.Header.Set("X-GitHub-Delivery", d.id)
	req.Header.Set("X-Hub-Signature-256", d.sig)
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// countDeliveries counts delivery ids the server recorded as processed.
func countDeliveries(srv *app.Server) (int, error) {
	return srv.DB().CountDeliveries(context.Background())
}

// database returns the URL to test and a cleanup.
func database(flagValue string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "ghbridge-load-")
	if err != nil {
		return "", nil, err
	}
	url, drop, err := testdb.Fresh(flagValue, dir, "load")
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return url, func() { drop(); os.RemoveAll(dir) }, nil
}

func findFixture() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "webhook", "testdata", "workflow_run_completed_success.json")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("webhook/testdata not found; run from the repository or pass -fixture")
		}
		dir = parent
	}
}
