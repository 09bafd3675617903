package app

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/ghbridge/ghbridge"
	"github.com/ghbridge/ghbridge/dispatch"
	"github.com/ghbridge/ghbridge/examples/server/sqlstore"
	"github.com/ghbridge/ghbridge/failure"
	"github.com/ghbridge/ghbridge/status"
)

// A job accepted by POST /api/jobs is stored pending; a queue runs its
// dispatch, one dispatch.Step at a time, until GitHub accepts it, refuses
// it, or the deadline passes. The job row (status pending, dispatch state,
// next attempt) is the truth: a queue only decides who works on it when.
// PostgreSQL uses River (several replicas share it); SQLite, with one
// process, a small worker over the jobs table.

// queue runs the dispatch of pending jobs.
type queue interface {
	// Enqueue asks for a job's dispatch now. Enqueuing a job twice is
	// harmless; a job never enqueued is found by the sweep.
	Enqueue(ctx context.Context, key string) error
	// Run works until ctx ends.
	Run(ctx context.Context) error
}

const (
	queueWorkers = 16
	// stepTimeout bounds one Step: a few requests with their retries.
	// River rescues a step whose process died after rescueAfter.
	stepTimeout   = 45 * time.Second
	rescueAfter   = time.Minute
	backoffBase   = 2 * time.Second
	backoffMax    = 5 * time.Minute
	sweepInterval = time.Minute
)

// backoff returns the wait before try n (from 1): exponential from 2 s,
// capped at 5 min, with jitter over its upper half.
func backoff(n int) time.Duration {
	d := backoffMax
	if n < 20 {
		d = min(backoffBase<<max(n-1, 0), backoffMax)
	}
	return d/2 + rand.N(d/2+1)
}

// work runs one step of a pending job's dispatch and records the
// outcome. It returns when the next step is due, zero when the dispatch
// is over (or the job is no longer pending). An error means the server
// could not do its part (the database); the step is tried again.
func (s *Server) work(ctx context.Context, key string) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	rec, err := s.db.Jobs().GetRecord(ctx, key)
	switch {
	case errors.Is(err, status.ErrJobNotFound):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, err
	case rec.Status != status.Pending:
		return time.Time{}, nil
	}
	d, err := s.db.Jobs().DispatchOf(ctx, key)
	if err != nil {
		return time.Time{}, err
	}
	if d.Next.After(s.now()) {
		return d.Next, nil // not due yet (a sweep or an early wake-up)
	}
	jc, err := decodeContext(rec.Context)
	if err != nil {
		return time.Time{}, err
	}
	log := s.log.With("job_id", key, "tenant", rec.Tenant)
	d.Tries++
	start := s.now()
	save := func(ctx context.Context, st dispatch.State) error {
		s.rememberSpan(ctx, key) // ctx holds the dispatch span
		d.State = st
		return s.db.Jobs().SaveDispatch(ctx, key, &d)
	}
	res, st, derr := s.dispatcher.Step(ctx, dispatch.Request{ID: key, Tenant: rec.Tenant, Agent: rec.Agent, Context: jc}, d.State, save)
	d.State, d.Next = st, time.Time{}
	if failure.IsTransient(derr) {
		deadline := rec.CreatedAt.Add(s.cfg.DispatchDeadline)
		if d.Since.After(rec.CreatedAt) {
			deadline = d.Since.Add(s.cfg.DispatchDeadline)
		}
		next := failure.RetryAfter(derr)
		if next.Before(start) {
			next = start.Add(s.backoff(d.Tries))
		}
		if next.After(deadline) {
			derr = fmt.Errorf("gave up after %s of trying (%s): %s", s.cfg.DispatchDeadline, EnvDispatchDeadline, derr.Error())
		} else {
			d.Next = next
		}
	}
	// A failed step keeps its state for the next step or a re-run; a
	// dispatch GitHub accepted moves the job on below, and saving its
	// state would only cost a write.
	if derr != nil {
		if err := s.db.Jobs().SaveDispatch(ctx, key, &d); err != nil {
			if !errors.Is(err, sqlstore.ErrNotPending) {
				return time.Time{}, err
			}
			// Moved on meanwhile: its run reported, or it was cancelled.
			// Whatever the step started must not go on: record and end it.
			if res.RunID != 0 || res.DeploymentID != 0 || res.PullRequestNumber != 0 {
				if _, err := s.tracker.Dispatched(ctx, key, ghbridge.Dispatched(res), nil); err != nil {
					return time.Time{}, err
				}
				if _, err := s.control.Started(ctx, key, res); err != nil {
					return time.Time{}, err
				}
			}
			return time.Time{}, nil
		}
	}
	outcome := status.StatusForDispatchError(derr)
	switch {
	case derr == nil:
		log.InfoContext(ctx, "job dispatched", "run_id", res.RunID, "repo", res.Owner+"/"+res.Repo, "credential", res.CredentialType, "tries", d.Tries)
	case !d.Next.IsZero():
		log.WarnContext(ctx, "dispatch failed; retrying", "error", derr, "try", d.Tries, "next", d.Next)
	default:
		log.WarnContext(ctx, "dispatch failed", "error", derr, "status", outcome, "tries", d.Tries)
	}
	s.metrics.dispatches.WithLabelValues(string(res.Kind), string(outcome)).Inc()
	if _, err := s.tracker.Dispatched(ctx, key, ghbridge.Dispatched(res), derr); err != nil {
		return d.Next, err
	}
	if derr == nil {
		// A cancel may have come between the save above and this record:
		// then what the step started is ended.
		if _, err := s.control.Started(ctx, key, res); err != nil {
			return d.Next, err
		}
		s.afterDispatch(ctx, key, res)
	}
	return d.Next, nil
}

// ---- SQLite: a worker over the jobs table ----

// tableQueue polls the jobs table for due pending jobs. It suits one
// process (SQLite); an Enqueue wakes it at once, and so does a step that
// is due again before the next poll (a run looked for every few seconds,
// a short backoff).
type tableQueue struct {
	s    *Server
	wake chan struct{}
	poll time.Duration
}

func newTableQueue(s *Server) *tableQueue {
	return &tableQueue{s: s, wake: make(chan struct{}, 1), poll: s.queuePoll}
}

func (q *tableQueue) Enqueue(context.Context, string) error {
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

func (q *tableQueue) Run(ctx context.Context) error {
	keys := make(chan string)
	var (
		mu       sync.Mutex
		inFlight = map[string]bool{}
		wg       sync.WaitGroup
	)
	for range queueWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range keys {
				next, err := q.s.work(context.WithoutCancel(ctx), key)
				if err != nil {
					q.s.log.Error("dispatch step failed", "job_id", key, "error", err)
				}
				mu.Lock()
				delete(inFlight, key)
				mu.Unlock()
				q.Enqueue(ctx, "") // look again: more may be due
				if wait := next.Sub(q.s.now()); !next.IsZero() && wait < q.poll {
					time.AfterFunc(wait, func() { q.Enqueue(ctx, "") })
				}
			}
		}()
	}
	defer func() { close(keys); wg.Wait() }()
	t := time.NewTicker(q.poll)
	defer t.Stop()
	for {
		due, err := q.s.db.Jobs().DueJobs(ctx, q.s.now(), 4*queueWorkers)
		if err != nil && ctx.Err() == nil {
			q.s.log.Error("listing due jobs failed", "error", err)
		}
		for _, key := range due {
			mu.Lock()
			busy := inFlight[key]
			inFlight[key] = true
			mu.Unlock()
			if busy {
				continue
			}
			select {
			case keys <- key:
			case <-ctx.Done():
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-q.wake:
		case <-t.C:
		}
	}
}

// ---- PostgreSQL: River ----

// dispatchArgs is the River job of a dispatch: the job's key.
type dispatchArgs struct {
	Job string `json:"job"`
}

// Kind implements river.JobArgs.
func (dispatchArgs) Kind() string { return "ghbridge_dispatch" }

// InsertOpts makes a job's dispatch unique while it is queued or running.
func (dispatchArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
		rivertype.JobStateRunning, rivertype.JobStateScheduled,
	}}}
}

type dispatchWorker struct {
	river.WorkerDefaults[dispatchArgs]
	s *Server
}

func (w *dispatchWorker) Timeout(*river.Job[dispatchArgs]) time.Duration {
	return stepTimeout + 10*time.Second
}

// Work runs one step; a later step is a snooze (not an error: the
// schedule is the dispatch's, with GitHub's Retry-After honoured).
func (w *dispatchWorker) Work(ctx context.Context, job *river.Job[dispatchArgs]) error {
	next, err := w.s.work(ctx, job.Args.Job)
	if err != nil {
		return err
	}
	if !next.IsZero() {
		return river.JobSnooze(max(time.Until(next), time.Millisecond))
	}
	return nil
}

// riverQueue runs dispatches on River over PostgreSQL, shared by every
// replica on the database.
type riverQueue struct {
	s      *Server
	pool   *pgxpool.Pool
	client *river.Client[pgx.Tx]
	id     string
}

func newRiverQueue(ctx context.Context, s *Server, url string) (*riverQueue, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, err
	}
	driver := riverpgxv5.New(pool)
	m, err := rivermigrate.New(driver, nil)
	if err == nil {
		_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("migrating River's tables: %w", err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &dispatchWorker{s: s})
	q := &riverQueue{s: s, pool: pool, id: riverClientID(s.cfg.Instance, time.Now())}
	client, err := river.NewClient(driver, &river.Config{
		ID:          q.id,
		Queues:      map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: queueWorkers}},
		Workers:     workers,
		Logger:      s.log,
		MaxAttempts: 25,
		// A step held by a killed process is taken up again after this
		// (River's default is an hour); a step still running then cannot
		// send twice: the dispatch state is saved by compare-and-set.
		RescueStuckJobsAfter: rescueAfter,
		FetchCooldown:        20 * time.Millisecond,
	})
	if err != nil {
		pool.Close()
		return nil, err
	}
	q.client = client
	return q, nil
}

// riverClientID names the River client after the server instance and
// its start, so that a restarted instance knows its earlier steps.
func riverClientID(instance string, start time.Time) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, instance) + "_" + strconv.FormatInt(start.UnixNano(), 36)
}

// releaseEarlier makes the steps that an earlier run of this instance was
// working on when it died available again at once, instead of after
// River's rescue delay. River offers no call for running jobs, hence the
// statement on its table.
func (q *riverQueue) releaseEarlier(ctx context.Context) error {
	prefix := q.id[:strings.LastIndexByte(q.id, '_')+1]
	tag, err := q.pool.Exec(ctx, `UPDATE river_job SET state = 'available', scheduled_at = now()
		WHERE state = 'running' AND kind = $1
		AND starts_with(attempted_by[array_length(attempted_by, 1)], $2)
		AND attempted_by[array_length(attempted_by, 1)] <> $3`, dispatchArgs{}.Kind(), prefix, q.id)
	if err == nil && tag.RowsAffected() > 0 {
		q.s.log.Info("took up the dispatch steps of this instance's earlier run", "steps", tag.RowsAffected())
	}
	return err
}

func (q *riverQueue) Enqueue(ctx context.Context, key string) error {
	_, err := q.client.Insert(ctx, dispatchArgs{Job: key}, nil)
	return err
}

// Run works until ctx ends, and sweeps: a job committed by a process that
// died before its Enqueue is found by the next sweep of any replica.
func (q *riverQueue) Run(ctx context.Context) error {
	defer q.pool.Close()
	if err := q.releaseEarlier(ctx); err != nil {
		q.s.log.Warn("taking up the earlier run's dispatch steps failed; River rescues them later", "error", err)
	}
	if err := q.client.Start(ctx); err != nil {
		return err
	}
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		q.sweep(ctx)
		select {
		case <-ctx.Done():
			stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return q.client.Stop(stopCtx)
		case <-t.C:
		}
	}
}

func (q *riverQueue) sweep(ctx context.Context) {
	due, err := q.s.db.Jobs().DueJobs(ctx, q.s.now(), 1000)
	if err != nil {
		if ctx.Err() == nil {
			q.s.log.Error("listing pending jobs failed", "error", err)
		}
		return
	}
	for _, key := range due {
		if err := q.Enqueue(ctx, key); err != nil && ctx.Err() == nil {
			q.s.log.Error("enqueuing a pending job failed", "job_id", key, "error", err)
		}
	}
}
