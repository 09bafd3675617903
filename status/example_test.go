package status_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ghbridge/ghbridge/status"
)

func ExampleTracker_ApplyRun() {
	ctx := context.Background()
	store := status.NewMemoryJobStore()
	_ = store.CreateJob(ctx, status.Job{ID: "job-1", Status: status.InProgress,
		Owner: "acme", Repo: "deployer", InstallationID: 7, RunID: 42})
	tracker := status.NewTracker(store)
	// In a server: tracker.Register(webhookHandler) routes workflow_run
	// deliveries here.

	at := time.Date(2026, 1, 10, 10, 0, 0, 0, time.UTC)
	for _, u := range []status.RunUpdate{
		{RunID: 42, Status: "completed", Conclusion: "success", UpdatedAt: at.Add(time.Minute)},
		{RunID: 42, Status: "in_progress", UpdatedAt: at},                                       // late, out of order
		{RunID: 42, Status: "completed", Conclusion: "success", UpdatedAt: at.Add(time.Minute)}, // duplicate
	} {
		u.Repository, u.InstallationID = "acme/deployer", 7
		res, err := tracker.ApplyRun(ctx, u)
		if err != nil {
			panic(err)
		}
		fmt.Println(res.Effect, res.Job.Status)
	}
	// A run of another repository cannot move the job.
	res, _ := tracker.ApplyRun(ctx, status.RunUpdate{RunID: 42, Status: "completed", Conclusion: "failure",
		Repository: "mallory/evil", InstallationID: 666, UpdatedAt: at.Add(time.Hour)})
	fmt.Println(res.Effect)
	// Output:
	// applied successful
	// stale successful
	// unchanged successful
	// cross_tenant
}
