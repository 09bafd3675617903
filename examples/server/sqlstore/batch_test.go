package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/status"
	"github.com/ghbridge/ghbridge/webhook"
)

// openSQLite opens a SQLite database of the test's own: a copy of a file
// migrated once per process (see WriteMigrated).
func openSQLite(t *testing.T) *DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "b.db")
	if WriteMigrated != nil {
		require.NoError(t, WriteMigrated(path))
	}
	db, err := Open(context.Background(), "sqlite:"+path)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// A batch commits its writes together; one that fails is rolled back
// alone and answered with its own error; one whose caller gave up is not
// run.
func TestBatchIsolatesFailures(t *testing.T) {
	t.Parallel()
	db := openSQLite(t)
	ctx := context.Background()
	jobs := db.Jobs()
	create := func(id string) writeFunc {
		return func(ctx context.Context, tx *sql.Tx) error {
			st, err := db.stmt(ctx, tx, db.w, insertJobQuery)
			if err != nil {
				return err
			}
			_, err = st.ExecContext(ctx, id, "", "pending", "", "", "", "", 0, 0, "", 0, 0, 0, 0, 0, "", "", 0, "", "", "", 1)
			return err
		}
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	reqs := []*writeReq{
		{ctx: ctx, fn: create("a")},
		{ctx: ctx, fn: create("a")}, // duplicate key
		{ctx: ctx, fn: func(context.Context, *sql.Tx) error { return errors.New("refused") }},
		{ctx: gone, fn: create("never")},
		{ctx: ctx, fn: create("b")},
	}
	for _, r := range reqs {
		r.done = make(chan error, 1)
	}
	db.batch.commit(reqs)
	got := make([]error, len(reqs))
	for i, r := range reqs {
		got[i] = <-r.done
	}
	assert.NoError(t, got[0])
	assert.True(t, isUniqueViolation(got[1]), "duplicate: %v", got[1])
	assert.EqualError(t, got[2], "refused")
	assert.ErrorIs(t, got[3], context.Canceled)
	assert.NoError(t, got[4])
	for _, id := range []string{"a", "b"} {
		_, err := jobs.GetJob(ctx, id)
		assert.NoError(t, err, id)
	}
	_, err := jobs.GetJob(ctx, "never")
	assert.ErrorIs(t, err, status.ErrJobNotFound)
}

func TestWriteAfterClose(t *testing.T) {
	t.Parallel()
	db := openSQLite(t)
	require.NoError(t, db.Close())
	require.NoError(t, db.Close(), "Close twice")
	done := make(chan error, 1)
	go func() {
		_, err := db.Deliveries().Claim(context.Background(), "d", webhook.NewHolder("t"), time.Minute)
		done <- err
	}()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, errClosed)
	case <-time.After(10 * time.Second):
		t.Fatal("a write after Close hangs")
	}
}

// A database created before the history moved into the job row keeps
// every transition.
func TestMigrationMovesHistory(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "old.db")
	ctx := context.Background()
	old, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	for _, stmt := range append(strings.Split(migrations[0].all, ";"),
		`CREATE TABLE ghbridge_migrations (version INTEGER PRIMARY KEY)`,
		`INSERT INTO ghbridge_migrations (version) VALUES (1)`,
		`INSERT INTO jobs (id, status, created_at, updated_at, version) VALUES ('j', 'successful', 1, 2, 3)`,
		`INSERT INTO job_transitions (job_id, seq, from_status, to_status, message, at, source) VALUES
			('j', 2, 'in_progress', 'successful', 'done', 2000000, 'workflow_run'),
			('j', 1, 'pending', 'in_progress', '', 1000000, 'dispatch')`) {
		_, err := old.ExecContext(ctx, stmt)
		require.NoError(t, err, stmt)
	}
	require.NoError(t, old.Close())
	url := "sqlite:" + path

	db, err := Open(ctx, url)
	require.NoError(t, err)
	defer db.Close()
	j, err := db.Jobs().GetJob(ctx, "j")
	require.NoError(t, err)
	assert.Equal(t, []status.Transition{
		{From: status.Pending, To: status.InProgress, At: time.Unix(1, 0).UTC(), Source: "dispatch"},
		{From: status.InProgress, To: status.Successful, Message: "done", At: time.Unix(2, 0).UTC(), Source: "workflow_run"},
	}, j.History)
	var n int
	require.NoError(t, db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name = 'job_transitions'`).Scan(&n))
	assert.Zero(t, n, "old table dropped")
}
