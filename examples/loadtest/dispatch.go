package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/examples/server/app"
	"github.com/ghbridge/ghbridge/github/githubtest"
)

const apiKey = "load-key-0123456789abcdef0123456"

// startServers starts replicas of the server on one database, talking to
// the GitHub API at apiURL with the fake's App, and returns their URLs.
func startServers(ctx context.Context, dbURL, apiURL string, fake *githubtest.Server, replicas int) ([]string, func(), error) {
	env := map[string]string{
		"GHBRIDGE_DATABASE_URL":  dbURL,
		"GITHUB_WEBHOOK_SECRET":  secret,
		"GHBRIDGE_LOG_LEVEL":     "error",
		"GHBRIDGE_API_KEYS":      "load:" + apiKey,
		"GITHUB_APP_ID":          strconv.FormatInt(fake.AppID, 10),
		"GITHUB_APP_PRIVATE_KEY": fake.PrivateKeyPEM(),
		"GITHUB_API_URL":         apiURL,
	}
	cfg, err := app.LoadConfig(credentials.MapLookup(env))
	if err != nil {
		return nil, nil, err
	}
	var urls []string
	var stops []func() error
	stopAll := func() {
		for _, s := range stops {
			_ = s()
		}
	}
	for range max(replicas, 1) {
		srv, err := app.New(ctx, cfg, app.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			stopAll()
			return nil, nil, err
		}
		u, stop, err := srv.ServeLoopback(ctx)
		if err != nil {
			stopAll()
			return nil, nil, err
		}
		urls, stops = append(urls, u), append(stops, stop)
	}
	return urls, stopAll, nil
}

// createJobs posts jobs to the servers, concurrency at a time, and
// returns each answer's latency.
func createJobs(urls []string, jobs, concurrency int) ([]time.Duration, error) {
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	agent := json.RawMessage(`{"owner": "acme", "repo": "deployer", "workflowId": "deploy.yml"}`)
	next := make(chan int)
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				body, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("job-%d", i), "agent": agent})
				req, _ := http.NewRequest(http.MethodPost, urls[i%len(urls)]+"/api/jobs", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+apiKey)
				req.Header.Set("Content-Type", "application/json")
				t := time.Now()
				resp, err := client.Do(req)
				d := time.Since(t)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						err = fmt.Errorf("POST /api/jobs answered %d", resp.StatusCode)
					}
				}
				mu.Lock()
				lat = append(lat, d)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	slices.Sort(lat)
	return lat, firstErr
}

func percentiles(lat []time.Duration) string {
	pct := func(p float64) time.Duration { return lat[int(float64(len(lat)-1)*p)].Round(time.Microsecond) }
	return fmt.Sprintf("p50 %s  p99 %s  max %s", pct(.5), pct(.99), lat[len(lat)-1].Round(time.Microsecond))
}

// runDispatch measures the dispatch queue: jobs posted to the servers,
// dispatched by their workers to the fake GitHub; dispatches per second
// from the first POST to the last dispatch. Every job must be dispatched
// exactly once.
func runDispatch(dbFlag string, jobs, concurrency, replicas int, out io.Writer) error {
	ctx := context.Background()
	dbURL, cleanup, err := database(dbFlag)
	if err != nil {
		return err
	}
	defer cleanup()
	fake := githubtest.NewServer()
	defer fake.Close()
	fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "deployer", Workflows: []githubtest.Workflow{
		{Name: "deploy", Path: ".github/workflows/deploy.yml", RunName: "Deploy ${{ inputs.job_id }}", Inputs: []string{"job_id"}},
	}})
	fake.AddInstallation(githubtest.AppInstallation{Account: "acme", Repositories: []string{"acme/deployer"}})
	urls, stop, err := startServers(ctx, dbURL, fake.URL, fake, replicas)
	if err != nil {
		return err
	}
	defer stop()
	if err := recoverInstallations(urls[0]); err != nil {
		return err
	}
	start := time.Now()
	lat, err := createJobs(urls, jobs, concurrency)
	if err != nil {
		return err
	}
	accepted := time.Since(start)
	deadline := time.Now().Add(10 * time.Minute)
	for len(fake.Dispatches()) < jobs && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	perJob := map[string]int{}
	for _, d := range fake.Dispatches() {
		perJob[d.Inputs["job_id"]]++
	}
	doubled := 0
	for _, n := range perJob {
		if n > 1 {
			doubled++
		}
	}
	fmt.Fprintf(out, "database      %s, %d replica(s)\n", dbFlag, len(urls))
	fmt.Fprintf(out, "jobs          %d accepted in %s (%s per POST)\n", jobs, accepted.Round(time.Millisecond), percentiles(lat))
	fmt.Fprintf(out, "dispatched    %d in %s: %.0f dispatches/s\n", len(perJob), elapsed.Round(time.Millisecond), float64(len(perJob))/elapsed.Seconds())
	fmt.Fprintf(out, "doubled       %d jobs with more than one dispatch\n", doubled)
	if len(perJob) != jobs || doubled != 0 {
		return fmt.Errorf("%d of %d jobs dispatched, %d twice", len(perJob), jobs, doubled)
	}
	return nil
}

// runAccept measures POST /api/jobs while GitHub accepts connections and
// never answers: accepting a job must not wait for GitHub.
func runAccept(dbFlag string, jobs, concurrency int, out io.Writer) error {
	ctx := context.Background()
	dbURL, cleanup, err := database(dbFlag)
	if err != nil {
		return err
	}
	defer cleanup()
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer hole.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // never answered
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	fake := githubtest.NewServer() // for the App's key only
	defer fake.Close()
	urls, stop, err := startServers(ctx, dbURL, "http://"+hole.Addr().String()+"/api/v3/", fake, 1)
	if err != nil {
		return err
	}
	defer stop()
	lat, err := createJobs(urls, jobs, concurrency)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "database      %s; GitHub accepts connections and never answers\n", dbFlag)
	fmt.Fprintf(out, "POST /api/jobs %d jobs, %d in flight: %s\n", jobs, concurrency, percentiles(lat))
	return nil
}

func recoverInstallations(base string) error {
	req, _ := http.NewRequest(http.MethodPost, base+"/api/github/installations/recover", nil)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("recovering installations: %d %s", resp.StatusCode, b)
	}
	return nil
}
