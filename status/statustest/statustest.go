// Package statustest holds the conformance suite for status.JobStore
// implementations. A host's store runs it from its own tests:
//
//	func TestMyJobStore(t *testing.T) {
//		statustest.TestJobStore(t, func(t *testing.T) status.JobStore { return newEmptyStore(t) })
//	}
package statustest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/internal/contend"
	"github.com/ghbridge/ghbridge/status"
)

// TestJobStore runs the JobStore conformance suite; a host's store calls
// it from its tests. newStore must return an empty store for each call.
// The StaleLister and CancelLister parts run when the store implements
// them.
func TestJobStore(t *testing.T, newStore func(t *testing.T) status.JobStore) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, s status.JobStore)
	}{
		{"CreateAndGet", createAndGet},
		{"CreateRejects", createRejects},
		{"GetMissing", getMissing},
		{"UpdateAppliesAndRecordsHistory", updateAppliesAndRecordsHistory},
		{"UpdateOtherFields", updateOtherFields},
		{"CompareAndSet", compareAndSet},
		{"ConcurrentUpdatesOneWinner", concurrentUpdatesOneWinner},
		{"RunIDIndexFollowsUpdates", runIDIndexFollowsUpdates},
		{"ListStaleJobs", listStaleJobs},
		{"ControlProgressAndActors", controlProgressAndActors},
		{"CanceledContext", canceledContext},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, newStore(t)) })
	}
}

// at is when the suite's jobs are created; the cases' other times are
// offsets from it. It is never assigned.
var at = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// newJob returns the pending job the cases create, with the given id.
func newJob(id string) status.Job {
	return status.Job{
		ID: id, Tenant: "tenant-a", Status: status.Pending, Kind: "workflow_dispatch", Owner: "acme", Repo: "deployer", InstallationID: 7,
		Report:    status.Report{DeploymentStatus: true, CheckRunName: "deploy", HeadSHA: "abc"},
		CreatedAt: at,
	}
}

func ptr[T any](v T) *T { return &v }

// createAndGet checks that a created job reads back field by field, at
// version 1 with no history.
func createAndGet(t *testing.T, s status.JobStore) {
	ctx := context.Background()
	require.NoError(t, s.CreateJob(ctx, newJob("j1")))
	j, err := s.GetJob(ctx, "j1")
	require.NoError(t, err)
	assert.Equal(t, "j1", j.ID)
	assert.Equal(t, "tenant-a", j.Tenant, "the tenant decides which credentials reports and polls may use")
	assert.Equal(t, status.Pending, j.Status)
	assert.Equal(t, "workflow_dispatch", j.Kind)
	assert.Equal(t, "acme", j.Owner)
	assert.Equal(t, "deployer", j.Repo)
	assert.Equal(t, int64(7), j.InstallationID)
	assert.Equal(t, status.Report{DeploymentStatus: true, CheckRunName: "deploy", HeadSHA: "abc"}, j.Report)
	assert.Equal(t, int64(1), j.Version)
	assert.True(t, at.Equal(j.CreatedAt))
	assert.Empty(t, j.History)
}

// createRejects checks that CreateJob refuses a duplicate id, a job without
// id, an unknown status and a non-zero version.
func createRejects(t *testing.T, s status.JobStore) {
	ctx := context.Background()
	require.NoError(t, s.CreateJob(ctx, newJob("j1")))
	require.ErrorIs(t, s.CreateJob(ctx, newJob("j1")), status.ErrJobExists)
	assert.Error(t, s.CreateJob(ctx, status.Job{Status: status.Pending}), "no id")
	assert.Error(t, s.CreateJob(ctx, status.Job{ID: "j2", Status: "bogus"}))
	bad := newJob("j3")
	bad.Version = 4
	assert.Error(t, s.CreateJob(ctx, bad))
}

// getMissing checks ErrJobNotFound from every lookup and from UpdateJob.
func getMissing(t *testing.T, s status.JobStore) {
	ctx := context.Background()
	_, err := s.GetJob(ctx, "nope")
	require.ErrorIs(t, err, status.ErrJobNotFound)
	_, err = s.FindJobByRunID(ctx, 42)
	require.ErrorIs(t, err, status.ErrJobNotFound)
	_, err = s.UpdateJob(ctx, "nope", 1, status.Update{Status: status.InProgress})
	require.ErrorIs(t, err, status.ErrJobNotFound)
}

// updateAppliesAndRecordsHistory checks that UpdateJob applies an update,
// records status changes (only) in the history, and that the history and
// the run id index survive a read.
func updateAppliesAndRecordsHistory(t *testing.T, s status.JobStore) {
	ctx := context.Background()
	require.NoError(t, s.CreateJob(ctx, newJob("j1")))
	j, err := s.UpdateJob(ctx, "j1", 1, status.Update{
		Status: status.InProgress, Message: ptr("run 9 queued"), RunID: 9, RunURL: "https://x/runs/9",
		RunAttempt: 1, RunUpdatedAt: at.Add(time.Second), Source: "workflow_run", At: at.Add(2 * time.Second),
	})
	require.NoError(t, err)
	assert.Equal(t, int64(2), j.Version)
	assert.Equal(t, status.InProgress, j.Status)
	assert.Equal(t, "run 9 queued", j.Message)
	assert.Equal(t, int64(9), j.RunID)
	assert.Equal(t, "https://x/runs/9", j.RunURL)
	assert.Equal(t, 1, j.RunAttempt)
	assert.True(t, at.Add(time.Second).Equal(j.RunUpdatedAt))
	require.Len(t, j.History, 1)
	assert.Equal(t, status.Pending, j.History[0].From)
	assert.Equal(t, status.InProgress, j.History[0].To)
	assert.Equal(t, "run 9 queued", j.History[0].Message)
	assert.Equal(t, "workflow_run", j.History[0].Source)
	assert.True(t, at.Add(2*time.Second).Equal(j.History[0].At))

	// A message-only update does not add history.
	j, err = s.UpdateJob(ctx, "j1", 2, status.Update{Message: ptr("job build in_progress"), At: at.Add(3 * time.Second)})
	require.NoError(t, err)
	assert.Len(t, j.History, 1)
	assert.Equal(t, status.InProgress, j.Status)
	assert.Equal(t, int64(9), j.RunID, "zero fields leave values as they are")

	j, err = s.UpdateJob(ctx, "j1", 3, status.Update{Status: status.Successful, Message: ptr("done"), Source: "workflow_run", At: at.Add(4 * time.Second)})
	require.NoError(t, err)
	require.Len(t, j.History, 2)
	assert.Equal(t, status.Successful, j.History[1].To)

	got, err := s.GetJob(ctx, "j1")
	require.NoError(t, err)
	assert.Equal(t, j.Version, got.Version)
	assert.Equal(t, j.History, got.History, "history survives a read")
	byRun, err := s.FindJobByRunID(ctx, 9)
	require.NoError(t, err)
	assert.Equal(t, "j1", byRun.ID)
}

// updateOtherFields checks the Update fields outside the run: deployment,
// pull request, installation and report.
func updateOtherFields(t *testing.T, s status.JobStore) {
	ctx := context.Background()
	require.NoError(t, s.CreateJob(ctx, newJob("j1")))
	j, err := s.UpdateJob(ctx, "j1", 1, status.Update{DeploymentID: 5, PullRequestNumber: 6, InstallationID: 8, CheckRunID: 11, Reported: status.Pending})
	require.NoError(t, err)
	assert.Equal(t, int64(5), j.DeploymentID)
	assert.Equal(t, 6, j.PullRequestNumber)
	assert.Equal(t, int64(8), j.InstallationID)
	assert.Equal(t, int64(11), j.Report.CheckRunID)
	assert.Equal(t, status.Pending, j.Report.Reported)
	assert.Equal(t, "deploy", j.Report.CheckRunName)
}

// compareAndSet checks that UpdateJob refuses a stale version and changes
// nothing then.
func compareAndSet(t *testing.T, s status.JobStore) {
	ctx := context.Background()
	require.NoError(t, s.CreateJob(ctx, newJob("j1")))
	_, err := s.UpdateJob(ctx, "j1", 1, status.Update{Status: status.InProgress})
	require.NoError(t, err)
	_, err = s.UpdateJob(ctx, "j1", 1, status.Update{Status: status.Failure})
	require.ErrorIs(t, err, status.ErrConflict, "a stale version is refused")
	j, err := s.GetJob(ctx, "j1")
	require.NoError(t, err)
	assert.Equal(t, status.InProgress, j.Status, "and changes nothing")
	_, err = s.UpdateJob(ctx, "j1", 2, status.Update{Status: "bogus"})
	assert.Error(t, err)
}

// concurrentUpdatesOneWinner checks that of concurrent updates at one
// version exactly one wins.
func concurrentUpdatesOneWinner(t *testing.T, s status.JobStore) {
	ctx := context.Background()
	require.NoError(t, s.CreateJob(ctx, newJob("j1")))
	won := contend.Winners(16, func(i int) bool {
		_, err := s.UpdateJob(ctx, "j1", 1, status.Update{Status: status.InProgress, Message: ptr(fmt.Sprint("writer ", i))})
		if err != nil {
			assert.ErrorIs(t, err, status.ErrConflict)
		}
		return err == nil
	})
	assert.Equal(t, 1, won)
	j, err := s.GetJob(ctx, "j1")
	require.NoError(t, err)
	assert.Equal(t, int64(2), j.Version)
	assert.Len(t, j.History, 1)
}

// runIDIndexFollowsUpdates checks that FindJobByRunID finds a job by the
// run id it was created or updated with.
func runIDIndexFollowsUpdates(t *testing.T, s status.JobStore) {
	ctx := context.Background()
	j := newJob("j1")
	j.RunID = 100
	require.NoError(t, s.CreateJob(ctx, j))
	got, err := s.FindJobByRunID(ctx, 100)
	require.NoError(t, err)
	assert.Equal(t, "j1", got.ID)
	require.NoError(t, s.CreateJob(ctx, newJob("j2")))
	_, err = s.UpdateJob(ctx, "j2", 1, status.Update{RunID: 200})
	require.NoError(t, err)
	got, err = s.FindJobByRunID(ctx, 200)
	require.NoError(t, err)
	assert.Equal(t, "j2", got.ID)
}

// listStaleJobs checks the StaleLister ordering, when the store implements
// it: unfinished jobs, oldest first, then polled jobs behind the others.
func listStaleJobs(t *testing.T, s status.JobStore) {
	ctx := context.Background()
	lister, ok := s.(status.StaleLister)
	if !ok {
		t.Skip("the store does not implement status.StaleLister")
	}
	for i, st := range []status.Status{status.Pending, status.InProgress, status.Successful, status.ExternalRunNotFound, status.InvalidJobAgent} {
		id := fmt.Sprint("j", i)
		require.NoError(t, s.CreateJob(ctx, newJob(id)))
		_, err := s.UpdateJob(ctx, id, 1, status.Update{Status: st, At: at.Add(time.Duration(i) * time.Minute)})
		require.NoError(t, err)
	}
	assert.Equal(t, []string{"j0", "j1", "j3"}, staleIDs(t, lister, at.Add(10*time.Minute), 10), "unfinished jobs, oldest first")
	assert.Len(t, staleIDs(t, lister, at.Add(90*time.Second), 10), 2)
	assert.Len(t, staleIDs(t, lister, at.Add(10*time.Minute), 1), 1)

	polledJobsGoToTheBack(t, s, lister)
}

// polledJobsGoToTheBack is the second half of listStaleJobs: polled jobs
// go to the back of the line, whatever was found.
func polledJobsGoToTheBack(t *testing.T, s status.JobStore, lister status.StaleLister) {
	ctx := context.Background()
	before, err := s.GetJob(ctx, "j0")
	require.NoError(t, err)
	require.NoError(t, lister.MarkPolled(ctx, at.Add(5*time.Minute), "j0", "unknown"))
	after, err := s.GetJob(ctx, "j0")
	require.NoError(t, err)
	assert.Equal(t, before.Version, after.Version, "a poll is not an update")
	assert.True(t, before.UpdatedAt.Equal(after.UpdatedAt), "a poll is not an update")
	assert.Equal(t, []string{"j1", "j3", "j0"}, staleIDs(t, lister, at.Add(10*time.Minute), 10), "never polled first, then the least recently polled")
	ids := staleIDs(t, lister, at.Add(10*time.Minute), 2)
	require.Len(t, ids, 2)
	assert.Equal(t, "j3", ids[1], "the limit cuts the most recently polled")
	assert.Equal(t, []string{"j1", "j3"}, staleIDs(t, lister, at.Add(4*time.Minute), 10), "j0 was polled since")
	require.NoError(t, lister.MarkPolled(ctx, at.Add(6*time.Minute), "j1"))
	require.NoError(t, lister.MarkPolled(ctx, at.Add(7*time.Minute), "j3"))
	assert.Equal(t, []string{"j0", "j1", "j3"}, staleIDs(t, lister, at.Add(10*time.Minute), 10), "least recently polled first")
}

// staleIDs returns the ids of the jobs ListStaleJobs lists as quiet since
// quietSince, at most limit.
func staleIDs(t *testing.T, lister status.StaleLister, quietSince time.Time, limit int) []string {
	t.Helper()
	got, err := lister.ListStaleJobs(context.Background(), quietSince, limit)
	require.NoError(t, err)
	var ids []string
	for _, j := range got {
		ids = append(ids, j.ID)
	}
	return ids
}

// controlProgressAndActors checks that Control, Progress, the actor and the
// run attempt are stored, and the CancelLister when the store implements
// it.
func controlProgressAndActors(t *testing.T, s status.JobStore) {
	ctx := context.Background()
	require.NoError(t, s.CreateJob(ctx, newJob("j1")))
	c := status.Control{
		CancelRequestedAt: at.Add(time.Minute), CancelRequestedBy: "alice", CancelSentAt: at.Add(2 * time.Minute),
		RerunAttempt: 3, RerunBy: "bob",
		Approvals: []status.Approval{{Kind: status.ApprovalReviewers, Environment: "production", EnvironmentID: 161, Reviewers: []string{"carol", "acme/ops"}, RequestedAt: at}},
	}
	p := status.Progress{WorkflowJob: "deploy", Status: "in_progress", Step: "Apply", At: at.Add(time.Minute)}
	_, err := s.UpdateJob(ctx, "j1", 1, status.Update{Status: status.ActionRequired, RunID: 5, RunAttempt: 2, Control: &c, Progress: &p, Source: "approval", Actor: "dave", At: at.Add(3 * time.Minute)})
	require.NoError(t, err)
	j, err := s.GetJob(ctx, "j1")
	require.NoError(t, err)
	assert.Equal(t, "alice", j.Control.CancelRequestedBy)
	assert.True(t, c.CancelRequestedAt.Equal(j.Control.CancelRequestedAt))
	assert.True(t, c.CancelSentAt.Equal(j.Control.CancelSentAt))
	assert.True(t, j.Control.ForceCancelSentAt.IsZero())
	assert.Equal(t, 3, j.Control.RerunAttempt)
	assert.Equal(t, "bob", j.Control.RerunBy)
	require.Len(t, j.Control.Approvals, 1)
	assert.Equal(t, []string{"carol", "acme/ops"}, j.Control.Approvals[0].Reviewers)
	assert.Equal(t, int64(161), j.Control.Approvals[0].EnvironmentID)
	assert.Equal(t, "Apply", j.Progress.Step)
	assert.Equal(t, "deploy", j.Progress.WorkflowJob)
	require.Len(t, j.History, 1)
	assert.Equal(t, "dave", j.History[0].Actor, "the history says who asked")
	assert.Equal(t, 2, j.History[0].Attempt, "and which run attempt the job was at")

	require.NoError(t, s.CreateJob(ctx, newJob("j2")))
	if lister, ok := s.(status.CancelLister); ok {
		got, err := lister.ListCancelling(ctx, 10)
		require.NoError(t, err)
		require.Len(t, got, 1, "unfinished jobs with a cancel asked")
		assert.Equal(t, "j1", got[0].ID)
		_, err = s.UpdateJob(ctx, "j1", j.Version, status.Update{Status: status.Cancelled, Control: &status.Control{}})
		require.NoError(t, err)
		got, err = lister.ListCancelling(ctx, 10)
		require.NoError(t, err)
		assert.Empty(t, got, "a cancel concluded is no longer listed")
	}
	_, err = s.UpdateJob(ctx, "j2", 1, status.Update{Message: ptr("x")})
	require.NoError(t, err)
	j2, err := s.GetJob(ctx, "j2")
	require.NoError(t, err)
	assert.Empty(t, j2.Control.Approvals, "an update without Control leaves it")
}

// canceledContext checks that a cancelled context fails the calls.
func canceledContext(t *testing.T, s status.JobStore) {
	ctx := context.Background()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	assert.Error(t, s.CreateJob(cctx, newJob("j1")))
	_, err := s.GetJob(cctx, "j1")
	assert.Error(t, err)
}
