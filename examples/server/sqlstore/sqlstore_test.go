package sqlstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/credentials/credentialstest"
	"github.com/ghbridge/ghbridge/examples/internal/testdb"
	"github.com/ghbridge/ghbridge/examples/server/sqlstore"
	"github.com/ghbridge/ghbridge/internal/contend"
	"github.com/ghbridge/ghbridge/status"
	"github.com/ghbridge/ghbridge/status/statustest"
	"github.com/ghbridge/ghbridge/webhook"
	"github.com/ghbridge/ghbridge/webhook/webhooktest"
)

func init() { sqlstore.WriteMigrated = testdb.WriteMigratedSQLite } // for the internal tests

// emptySQLite returns the URL of a database file not created yet.
func emptySQLite(t testing.TB) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "ghbridge.db")
}

// open opens url for a test. A PostgreSQL handle opens at most 8
// connections: the tests of several packages share one server's 100.
func open(t testing.TB, url string, opts ...sqlstore.Option) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), url, append([]sqlstore.Option{sqlstore.WithMaxConns(8)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

var backends = map[string]func(testing.TB) string{"sqlite": testdb.MigratedSQLite, "postgres": freshPostgres}

// stores give a test an open database, migrated and empty, whose clock
// is now (nil: time.Now): on SQLite one that an earlier test left,
// emptied (opening one costs more than most tests under the race
// detector); on PostgreSQL a schema of its own.
var stores = map[string]func(t testing.TB, now func() time.Time) *sqlstore.DB{
	"sqlite": reusedSQLite,
	"postgres": func(t testing.TB, now func() time.Time) *sqlstore.DB {
		return open(t, freshPostgres(t), sqlstore.WithClock(now))
	},
}

// sqlitePool holds the open SQLite databases that finished tests left,
// emptied, for reusedSQLite; close closes them and removes their files.
var sqlitePool struct {
	mu   sync.Mutex
	free []*sqlstore.DB
	all  []*sqlstore.DB
	dirs []string
}

func reusedSQLite(t testing.TB, now func() time.Time) *sqlstore.DB {
	t.Helper()
	p := &sqlitePool
	p.mu.Lock()
	var db *sqlstore.DB
	if n := len(p.free); n > 0 {
		db, p.free = p.free[n-1], p.free[:n-1]
	}
	p.mu.Unlock()
	if db == nil {
		dir, err := os.MkdirTemp("", "sqlstore-test-")
		require.NoError(t, err)
		path := filepath.Join(dir, "ghbridge.db")
		require.NoError(t, testdb.WriteMigratedSQLite(path))
		db, err = sqlstore.Open(context.Background(), "sqlite:"+path)
		require.NoError(t, err)
		p.mu.Lock()
		p.all, p.dirs = append(p.all, db), append(p.dirs, dir)
		p.mu.Unlock()
	}
	db.SetClock(now)
	t.Cleanup(func() {
		if db.Empty(context.Background()) == nil {
			p.mu.Lock()
			p.free = append(p.free, db)
			p.mu.Unlock()
		}
	})
	return db
}

// closeSQLitePool closes the databases of reusedSQLite and removes them.
func closeSQLitePool() {
	p := &sqlitePool
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, db := range p.all {
		db.Close()
	}
	for _, dir := range p.dirs {
		os.RemoveAll(dir)
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	for name, store := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			t.Run("InstallationStore", func(t *testing.T) {
				t.Parallel()
				newStore := func(t *testing.T) credentials.InstallationStore { return store(t, nil).Installations() }
				credentialstest.TestInstallationStore(t, newStore)
				credentialstest.TestTenantRules(t, newStore)
			})
			t.Run("JobStore", func(t *testing.T) {
				t.Parallel()
				statustest.TestJobStore(t, func(t *testing.T) status.JobStore { return store(t, nil).Jobs() })
			})
			t.Run("DeliveryStore", func(t *testing.T) {
				t.Parallel()
				webhooktest.TestDeliveryStore(t, func(t *testing.T, now func() time.Time) webhook.DeliveryStore {
					return store(t, now).Deliveries()
				})
			})
		})
	}
}

func TestInstallStates(t *testing.T) {
	t.Parallel()
	// The flood goes two past a bound of 5 rather than the default 100,
	// which the same query enforces.
	const bound = 5
	for name, fresh := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, 100, stores[name](t, nil).MaxInstallStates(), "a tenant keeps 100 states by default")
			db := open(t, fresh(t), sqlstore.WithMaxInstallStates(bound))
			ctx := context.Background()
			exp := time.Now().Add(time.Hour)
			require.NoError(t, db.PutInstallState(ctx, sqlstore.InstallState{Nonce: "n1", Tenant: "t1", InstallationID: 7, ExpiresAt: exp}))
			st, err := db.ConsumeInstallState(ctx, "n1")
			require.NoError(t, err)
			assert.Equal(t, "t1", st.Tenant)
			assert.Equal(t, int64(7), st.InstallationID)
			_, err = db.ConsumeInstallState(ctx, "n1")
			require.ErrorIs(t, err, sqlstore.ErrStateUsed, "a state is single-use")
			_, err = db.ConsumeInstallState(ctx, "never")
			require.ErrorIs(t, err, sqlstore.ErrStateUsed)

			require.NoError(t, db.PutInstallState(ctx, sqlstore.InstallState{Nonce: "old", Tenant: "t1", ExpiresAt: time.Now().Add(-time.Second)}))
			_, err = db.ConsumeInstallState(ctx, "old")
			require.ErrorIs(t, err, sqlstore.ErrStateUsed, "an expired state is refused")

			// Two past the bound: the oldest two go, one per state added.
			for i := range bound + 2 {
				require.NoError(t, db.PutInstallState(ctx, sqlstore.InstallState{Nonce: fmt.Sprint("x", i), Tenant: "flood", ExpiresAt: exp.Add(time.Duration(i) * time.Second)}))
			}
			require.NoError(t, db.PutInstallState(ctx, sqlstore.InstallState{Nonce: "other", Tenant: "t2", ExpiresAt: exp}))
			for _, gone := range []string{"x0", "x1"} {
				_, err = db.ConsumeInstallState(ctx, gone)
				require.ErrorIs(t, err, sqlstore.ErrStateUsed, "a tenant keeps its newest states only, up to the bound")
			}
			_, err = db.ConsumeInstallState(ctx, "x2")
			require.NoError(t, err)
			_, err = db.ConsumeInstallState(ctx, fmt.Sprint("x", bound+1))
			require.NoError(t, err)
			_, err = db.ConsumeInstallState(ctx, "other")
			require.NoError(t, err, "one tenant's flood does not push out another's states")
		})
	}
}

func TestMigrationsAreIdempotent(t *testing.T) {
	t.Parallel()
	for name, fresh := range map[string]func(testing.TB) string{"sqlite": emptySQLite, "postgres": emptyPostgres} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			url := fresh(t)
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for range 4 { // replicas starting together
				wg.Add(1)
				go func() {
					defer wg.Done()
					db, err := sqlstore.Open(context.Background(), url)
					if err == nil {
						db.Close()
					}
					errs <- err
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			db := open(t, url)
			require.NoError(t, db.Jobs().CreateJob(context.Background(), status.Job{ID: "j", Status: status.Pending}))
			db.Close()
			db = open(t, url)
			_, err := db.Jobs().GetJob(context.Background(), "j")
			require.NoError(t, err, "data survives reopening")
		})
	}
}

func TestRecords(t *testing.T) {
	t.Parallel()
	for name, store := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := store(t, nil)
			ctx := context.Background()
			rec := sqlstore.Record{Job: status.Job{ID: "j1", Tenant: "t1", Status: status.Pending, Owner: "acme", Repo: "api"},
				Agent: json.RawMessage(`{"owner":"acme"}`), Context: json.RawMessage(`{"jobId":"j1"}`)}
			require.NoError(t, db.Jobs().CreateRecord(ctx, rec))
			got, err := db.Jobs().GetRecord(ctx, "j1")
			require.NoError(t, err)
			assert.Equal(t, "t1", got.Tenant)
			assert.JSONEq(t, `{"owner":"acme"}`, string(got.Agent))
			assert.JSONEq(t, `{"jobId":"j1"}`, string(got.Context))
		})
	}
}

func TestLeasesAndKV(t *testing.T) {
	t.Parallel()
	for name, store := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := store(t, nil)
			ctx := context.Background()
			ok, err := db.TryLease(ctx, "reconcile", "a", time.Minute)
			require.NoError(t, err)
			assert.True(t, ok)
			ok, err = db.TryLease(ctx, "reconcile", "b", time.Minute)
			require.NoError(t, err)
			assert.False(t, ok, "held by a")
			ok, err = db.TryLease(ctx, "reconcile", "a", time.Minute)
			require.NoError(t, err)
			assert.True(t, ok, "renewed by its holder")
			ok, err = db.TryLease(ctx, "other", "b", -time.Second)
			require.NoError(t, err)
			assert.True(t, ok)
			ok, err = db.TryLease(ctx, "other", "c", time.Minute)
			require.NoError(t, err)
			assert.True(t, ok, "an expired lease is taken over")

			v, err := db.Get(ctx, "k")
			require.NoError(t, err)
			assert.Empty(t, v)
			require.NoError(t, db.Set(ctx, "k", "1"))
			require.NoError(t, db.Set(ctx, "k", "2"))
			v, err = db.Get(ctx, "k")
			require.NoError(t, err)
			assert.Equal(t, "2", v)
		})
	}
}

func TestAuditAndPrune(t *testing.T) {
	t.Parallel()
	for name, store := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := store(t, nil)
			ctx := context.Background()
			a := db.Audit(func(err error) { t.Error(err) })
			a.Audit(ctx, credentials.AuditEvent{Name: "dispatch.workflow_dispatch", CredentialType: credentials.TypeInstallation, Repo: "a/b",
				InstallationID: 7, JobID: "j", Attempt: 2, Outcome: credentials.OutcomeFailure, Error: "boom"})
			evs, err := a.Events(ctx, 10)
			require.NoError(t, err)
			require.Len(t, evs, 1)
			assert.Equal(t, "boom", evs[0].Error)
			assert.Equal(t, 2, evs[0].Attempt)
			assert.False(t, evs[0].Time.IsZero())

			d := db.Deliveries()
			require.NoError(t, d.Complete(ctx, "old"))
			n, err := d.Prune(ctx, time.Now().Add(time.Hour))
			require.NoError(t, err)
			assert.EqualValues(t, 1, n)
		})
	}
}

// Two processes (here: two connection pools) on one PostgreSQL database:
// a delivery is claimed once, and concurrent job updates do not both win.
func TestReplicasSharePostgres(t *testing.T) {
	t.Parallel()
	url := freshPostgres(t)
	a, b := open(t, url), open(t, url)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	claims := map[string]int{}
	for i := range 50 {
		for _, db := range []*sqlstore.DB{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprint("d", i)
				ok, err := db.Deliveries().Claim(ctx, id, webhook.NewHolder(""), time.Minute)
				assert.NoError(t, err)
				if ok {
					mu.Lock()
					claims[id]++
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	assert.Len(t, claims, 50)
	for id, n := range claims {
		assert.Equal(t, 1, n, id)
	}

	require.NoError(t, a.Jobs().CreateJob(ctx, status.Job{ID: "j", Status: status.Pending}))
	replicas := []*sqlstore.DB{a, b, a, b}
	wins := contend.Winners(len(replicas), func(i int) bool {
		_, err := replicas[i].Jobs().UpdateJob(ctx, "j", 1, status.Update{Status: status.InProgress})
		if err != nil {
			assert.ErrorIs(t, err, status.ErrConflict)
		}
		return err == nil
	})
	assert.Equal(t, 1, wins)
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	_, err := sqlstore.Open(context.Background(), "mysql://x")
	assert.ErrorContains(t, err, "unsupported database URL")
	_, err = sqlstore.Open(context.Background(), "sqlite:")
	assert.Error(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = sqlstore.Open(ctx, "postgres://nobody:secret@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "secret", "passwords stay out of errors")
}

// A replica's remembered copy of a job never hides another replica's
// update: the version decides.
func TestReplicaCacheNeverStale(t *testing.T) {
	t.Parallel()
	url := freshPostgres(t)
	a, b := open(t, url), open(t, url)
	ctx := context.Background()
	require.NoError(t, a.Jobs().CreateJob(ctx, status.Job{ID: "j", Status: status.Pending}))
	j, err := a.Jobs().GetJob(ctx, "j") // a remembers version 1
	require.NoError(t, err)
	require.EqualValues(t, 1, j.Version)

	_, err = b.Jobs().UpdateJob(ctx, "j", 1, status.Update{Status: status.InProgress, Source: "b"})
	require.NoError(t, err)
	_, err = a.Jobs().UpdateJob(ctx, "j", 1, status.Update{Status: status.Failure, Source: "a"})
	require.ErrorIs(t, err, status.ErrConflict, "a's copy is stale")

	j, err = a.Jobs().UpdateJob(ctx, "j", 2, status.Update{Status: status.Successful, Source: "a"})
	require.NoError(t, err)
	assert.EqualValues(t, 3, j.Version)
	require.Len(t, j.History, 2)
	assert.Equal(t, "b", j.History[0].Source)
	assert.Equal(t, status.Successful, j.History[1].To)
	got, err := b.Jobs().GetJob(ctx, "j")
	require.NoError(t, err)
	assert.Equal(t, j.History, got.History)
}

func TestSaveDispatchIsACompareAndSet(t *testing.T) {
	t.Parallel()
	for name, store := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := store(t, nil)
			ctx := context.Background()
			require.NoError(t, db.Jobs().CreateJob(ctx, status.Job{ID: "t.j1", Tenant: "t", Status: status.Pending}))
			a, err := db.Jobs().DispatchOf(ctx, "t.j1")
			require.NoError(t, err)
			b, err := db.Jobs().DispatchOf(ctx, "t.j1")
			require.NoError(t, err)
			a.State.Sends, a.State.SentAt = 1, time.Now()
			require.NoError(t, db.Jobs().SaveDispatch(ctx, "t.j1", &a))
			b.State.Sends, b.State.SentAt = 1, time.Now()
			require.ErrorIs(t, db.Jobs().SaveDispatch(ctx, "t.j1", &b), sqlstore.ErrNotPending, "of two workers that read the same state one sends")
			a.Tries = 2
			require.NoError(t, db.Jobs().SaveDispatch(ctx, "t.j1", &a), "the winner saves again")
			got, err := db.Jobs().DispatchOf(ctx, "t.j1")
			require.NoError(t, err)
			assert.Equal(t, 2, got.Tries)
			assert.Equal(t, 1, got.State.Sends)
		})
	}
}
