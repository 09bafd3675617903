package dispatch_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/github/githubtest"
)

// BenchmarkDispatch measures a whole workflow_dispatch against the fake
// GitHub: render, resolve, request with return_run_details, audit.
// Baseline: the bare go-github dispatch call over the same client, the
// floor that ghbridge's work adds to.
func BenchmarkDispatch(b *testing.B) {
	ctx := context.Background()
	b.Run("ghbridge", func(b *testing.B) {
		e := newEnv(b, envOptions{})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := e.d.Dispatch(ctx, job(fmt.Sprint("job-", i), deployAgent)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline-go-github", func(b *testing.B) {
		e := newEnv(b, envOptions{})
		client, err := e.clients.Client(credentials.ForInstallation(e.tokens, e.inst.ID, "bench"))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			_, err := client.Actions.CreateWorkflowDispatchEventByFileName(ctx, "acme", "deployer", "deploy.yml", gh.CreateWorkflowDispatchEventRequest{
				Ref: "main", Inputs: map[string]any{"job_id": fmt.Sprint("job-", i), "version": "v1.4.0", "environment": "production"},
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDispatch10kOver10Installations sends 10,000 dispatches spread
// over 10 installations, 16 at a time, and reports the token exchanges
// they cost: one per installation.
func BenchmarkDispatch10kOver10Installations(b *testing.B) {
	const installations, dispatches = 10, 10_000
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b, envOptions{})
		var ids []int64
		for i := range installations {
			owner := fmt.Sprintf("org%d", i)
			r := deployerRepo()
			r.Owner = owner
			e.srv.AddRepo(r)
			ids = append(ids, e.srv.AddInstallation(githubtest.AppInstallation{Account: owner, AllRepositories: true}).ID)
		}
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for i := range dispatches {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				n := i % installations
				_, err := e.d.Dispatch(context.Background(), job(fmt.Sprint("job-", i),
					fmt.Sprintf(`{"installationId":%d,"owner":"org%d","repo":"deployer","workflowId":"deploy.yml"}`, ids[n], n)))
				if err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(dispatches)/time.Since(start).Seconds(), "dispatches/s")
		b.ReportMetric(float64(e.srv.TotalTokenExchanges()), "token-exchanges")
	}
}
