// Package sqlstore implements ghbridge's storage interfaces on SQL: an
// embedded SQLite file (pure Go, no cgo) for one server, PostgreSQL for
// several replicas behind a load balancer. Every store passes its
// package's conformance suite; delivery de-duplication and job
// compare-and-set hold across processes sharing one PostgreSQL database.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/ghbridge/ghbridge/status"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"
)

// Dialect is the SQL flavour of a database.
type Dialect string

// Dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is an open ghbridge database with its schema migrated.
type DB struct {
	dialect Dialect
	w       *sql.DB // writes (SQLite: one connection, the single writer)
	r       *sql.DB // reads (SQLite: a pool of read-only connections)
	cp      *sql.DB // SQLite: the connection that checkpoints the WAL
	path    string  // SQLite: the database file

	stopCheckpoints func()   // stops the checkpointer and waits for it
	batch           *batcher // SQLite: group commit of the hot writes
	closeOnce       sync.Once
	closeErr        error
	now             func() time.Time
	wal             walLimits    // SQLite: the WAL sizes the checkpointer keeps to
	walResets       atomic.Int64 // SQLite: RESTART and TRUNCATE checkpoints done
	pruneBatch      int          // the rows one DELETE of Prune removes
	installStates   int          // the unused install states a tenant keeps
	maxConns        int          // PostgreSQL: the most open connections

	mu    sync.Mutex
	stmts map[stmtKey]*sql.Stmt

	jobs *lru.Cache[string, status.Job] // recently read or written, by id
}

type stmtKey struct {
	pool  *sql.DB
	query string
}

// stmt returns the prepared statement for a hot query, preparing it once:
// parsing SQL on every call costs more than running it. Inside tx the
// statement is bound to it; an uncached one is prepared on tx itself,
// because SQLite's single writer connection is the one tx holds.
func (db *DB) stmt(ctx context.Context, tx *sql.Tx, pool *sql.DB, query string) (*sql.Stmt, error) {
	k := stmtKey{pool, query}
	db.mu.Lock()
	st, ok := db.stmts[k]
	db.mu.Unlock()
	if ok {
		if tx != nil {
			return tx.StmtContext(ctx, st), nil
		}
		return st, nil
	}
	if tx != nil {
		// Closed with tx; cached by the next call outside a transaction.
		return tx.PrepareContext(ctx, db.q(query))
	}
	st, err := pool.PrepareContext(ctx, db.q(query))
	if err != nil {
		return nil, err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if prev, ok := db.stmts[k]; ok {
		st.Close() // another goroutine won the race
		return prev, nil
	}
	if db.stmts == nil {
		db.stmts = map[stmtKey]*sql.Stmt{}
	}
	db.stmts[k] = st
	return st, nil
}

// prepared returns the statements of queries on pool, each prepared once
// (see stmt). A transaction takes them before it begins, so that none is
// prepared on the connection it holds (SQLite's single writer), and binds
// them to itself with tx.StmtContext: see txPrepared.
func (db *DB) prepared(ctx context.Context, pool *sql.DB, queries ...string) ([]*sql.Stmt, error) {
	sts := make([]*sql.Stmt, len(queries))
	for i, query := range queries {
		st, err := db.stmt(ctx, nil, pool, query)
		if err != nil {
			return nil, err
		}
		sts[i] = st
	}
	return sts, nil
}

// txPrepared runs fn in a write transaction, with the statements of
// queries, each prepared once, bound to the transaction.
func (db *DB) txPrepared(ctx context.Context, queries []string, fn func(tx *sql.Tx, st []*sql.Stmt) error) error {
	sts, err := db.prepared(ctx, db.w, queries...)
	if err != nil {
		return err
	}
	return db.tx(ctx, func(tx *sql.Tx) error {
		bound := make([]*sql.Stmt, len(sts))
		for i, st := range sts {
			bound[i] = tx.StmtContext(ctx, st)
		}
		return fn(tx, bound)
	})
}

// prepare readies the hot statements, so a transaction never has to
// prepare one on the connection it holds.
func (db *DB) prepare(ctx context.Context) error {
	hot := []struct {
		pool  *sql.DB
		query string
	}{
		{db.r, loadQuery(byID)}, {db.r, loadQuery(byRunID)}, {db.w, updateJobQuery}, {db.w, insertJobQuery},
		{db.w, claimDeliveryQuery}, {db.w, completeDeliveryQuery},
	}
	for _, h := range hot {
		if _, err := db.stmt(ctx, nil, h.pool, h.query); err != nil {
			return fmt.Errorf("preparing statements: %w", err)
		}
	}
	return nil
}

// An Option configures Open.
type Option func(*DB)

// WithClock sets the clock the stores read (default time.Now): claim
// leases, job and delivery times, retention. For tests.
func WithClock(now func() time.Time) Option {
	return func(db *DB) {
		if now != nil {
			db.now = now
		}
	}
}

// WithMaxConns sets the most connections a PostgreSQL database is opened
// with (default 32), for servers that share one PostgreSQL server's
// max_connections among many processes. SQLite ignores it: it has one
// writer and eight readers.
func WithMaxConns(n int) Option {
	return func(db *DB) {
		if n > 0 {
			db.maxConns = n
		}
	}
}

// connect opens the writer's connection. Switching a new SQLite file to
// WAL takes an exclusive lock that SQLite's busy timeout does not wait
// for, so processes opening one file together retry for a few seconds.
func (db *DB) connect(ctx context.Context) error {
	for try := 0; ; try++ {
		err := db.w.PingContext(ctx)
		if err == nil || db.dialect != SQLite || try == 50 || !strings.Contains(err.Error(), "SQLITE_BUSY") {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Open opens and migrates the database named by url: "sqlite:PATH" (the
// file is created) or "postgres://..." / "postgresql://...".
func Open(ctx context.Context, url string, opts ...Option) (*DB, error) {
	db := &DB{now: time.Now, wal: walLimits{walRestartBytes, walSizeLimit}, pruneBatch: pruneBatch, installStates: maxInstallStates, maxConns: 32}
	for _, o := range opts {
		o(db)
	}
	switch {
	case strings.HasPrefix(url, "sqlite:"):
		if err := db.openSQLite(strings.TrimPrefix(url, "sqlite:")); err != nil {
			return nil, err
		}
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		p, err := sql.Open("pgx", url)
		if err != nil {
			return nil, err
		}
		p.SetMaxOpenConns(db.maxConns)
		p.SetMaxIdleConns(db.maxConns)
		db.dialect, db.w, db.r = Postgres, p, p
	default:
		return nil, fmt.Errorf("unsupported database URL %q: use sqlite:PATH or postgres://HOST/DB", redactURL(url))
	}
	db.jobs, _ = lru.New[string, status.Job](jobCacheSize) // errors only for a size <= 0
	if err := db.connect(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connecting to %s: %w", redactURL(url), err)
	}
	if err := db.start(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// openSQLite opens the three connection pools on the file at path: the
// single writer, the readers and the checkpointer.
func (db *DB) openSQLite(path string) error {
	if path == "" {
		return errors.New("sqlite: no file name; use sqlite:PATH")
	}
	pragmas := "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)"
	// The writer never checkpoints (wal_autocheckpoint 0): the
	// checkpointer connection does, off the write path, so the fsync
	// a checkpoint needs never stalls a delivery.
	w, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_pragma=wal_autocheckpoint(0)&_txlock=immediate"+
		fmt.Sprintf("&_pragma=journal_size_limit(%d)", db.wal.sizeLimit))
	if err != nil {
		return err
	}
	// SQLite has one writer at a time; one connection makes writers
	// queue in Go instead of failing with "database is locked".
	w.SetMaxOpenConns(1)
	// Readers need no more than the busy timeout: WAL mode stays with
	// the file once the writer set it, and the other settings are about
	// writes. Every setting costs a statement on each new connection.
	r, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=query_only(true)")
	if err != nil {
		w.Close()
		return err
	}
	// All of them stay open: a new connection reads the whole schema
	// again and prepares its statements anew (database/sql keeps 2 idle
	// by default).
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	cp, err := sql.Open("sqlite", "file:"+path+"?"+pragmas)
	if err != nil {
		w.Close()
		r.Close()
		return err
	}
	cp.SetMaxOpenConns(1)
	db.dialect, db.w, db.r, db.cp, db.path = SQLite, w, r, cp, path
	return nil
}

// start migrates the connected database, prepares the hot statements and,
// on SQLite, starts the checkpointer and the group commit.
func (db *DB) start(ctx context.Context) error {
	if err := db.migrate(ctx); err != nil {
		return err
	}
	if db.dialect == SQLite {
		// The reader pool opens after the migration created the file.
		if err := db.r.PingContext(ctx); err != nil {
			return err
		}
	}
	if err := db.prepare(ctx); err != nil {
		return err
	}
	if db.dialect == SQLite {
		db.startCheckpoints(checkpointEvery)
		db.startBatcher()
	}
	return nil
}

// The WAL is kept small by a checkpointer of its own, which runs every
// checkpointEvery and at once when the WAL file passes walRestartBytes.
// Passive checkpoints copy the WAL into the database without blocking
// anyone, but under steady writes they never catch up with the end of the
// WAL, and SQLite starts the WAL over only once a checkpoint did: the file
// would grow without bound. So when the WAL passes walRestartBytes, a RESTART
// checkpoint follows the passive one, on the writer's own connection:
// writes queue in Go meanwhile (rather than sleeping in SQLite's busy
// handler), and they wait only for the frames committed since the passive
// checkpoint a moment before. The next commit starts the WAL over and
// truncates the file to walSizeLimit. When writes pause, a TRUNCATE
// checkpoint empties the file.
const (
	// checkpointEvery is how often the WAL is copied into the database
	// file. Between checkpoints the WAL holds every committed page, so
	// nothing is lost by waiting; shorter keeps the WAL file small.
	checkpointEvery = 250 * time.Millisecond
	// walWatchEvery is how often the WAL file's size is looked at
	// between checkpoints.
	walWatchEvery = 25 * time.Millisecond
	// walRestartBytes is the WAL size from which it is started over: at
	// 40 MB/s of WAL (2,000 deliveries/s) every 200 ms.
	walRestartBytes = 8 << 20
	// walSizeLimit is SQLite's journal_size_limit: the size a WAL file
	// is truncated to when it is started over.
	walSizeLimit = 4 << 20
	// idleTicks is how many checkpoint rounds without a write make a
	// pause, after which the WAL file is emptied.
	idleTicks = 2
)

// walLimits are the WAL sizes the checkpointer keeps to: walRestartBytes
// and walSizeLimit, which tests scale down to fill the WAL with fewer
// writes.
type walLimits struct {
	restart, sizeLimit int64
}

// startCheckpoints runs the checkpointer until the database closes.
func (db *DB) startCheckpoints(every time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := checkpointer{db: db, lastFrames: -1, restarted: -1}
		t := time.NewTicker(walWatchEvery)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				// Between rounds the WAL's size is watched, so that a
				// burst of writes is met at once.
				if now.Sub(last) < every && db.walSize() < db.wal.restart {
					continue
				}
				last = now
				c.round(ctx)
			}
		}
	}()
	db.stopCheckpoints = func() { cancel(); <-done }
}

// walSize returns the size of the WAL file, 0 if unknown. After a restart
// the file keeps walSizeLimit bytes and grows past it only as frames are
// appended past it.
func (db *DB) walSize() int64 {
	fi, err := os.Stat(db.path + "-wal")
	if err != nil {
		return 0
	}
	return fi.Size()
}

type checkpointer struct {
	db         *DB
	frameBytes int // a WAL frame's size; 0 until the first round reads it
	lastFrames int // the WAL's frames at the previous round, -1 unknown
	quiet      int // rounds in a row without a write
	restarted  int // the WAL's frames after the last RESTART
}

// round runs one checkpoint round. A checkpoint that fails (the database
// is busy) is retried at the next round: the WAL keeps its frames.
func (c *checkpointer) round(ctx context.Context) {
	if c.frameBytes == 0 {
		// Read here, not when the database opens: the checkpointer's
		// connection opens at its first round, and a database closed
		// before that never pays for it (the last connection to close
		// checkpoints the WAL).
		c.frameBytes = 4096 + 24
		var pageSize int
		if err := c.db.cp.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&pageSize); err == nil && pageSize > 0 {
			c.frameBytes = pageSize + 24
		}
	}
	var busy, frames, copied int
	err := c.db.cp.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
	if err != nil || busy != 0 {
		c.lastFrames, c.quiet = -1, 0
		return
	}
	if frames > 0 && frames == copied && frames == c.lastFrames {
		c.quiet++
	} else {
		c.quiet = 0
	}
	c.lastFrames = frames
	switch {
	case c.quiet >= idleTicks:
		// Writes paused: empty the file. Nobody waits for it.
		err = c.db.cp.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &copied)
		c.lastFrames, c.quiet = -1, 0
	case int64(frames*c.frameBytes) >= c.db.wal.restart:
		if frames == c.restarted {
			return // already restarted; no commit since
		}
		err = c.db.w.QueryRowContext(ctx, `PRAGMA wal_checkpoint(RESTART)`).Scan(&busy, &frames, &copied)
		c.restarted = frames
	default:
		return
	}
	if err == nil && busy == 0 {
		c.db.walResets.Add(1)
	}
}

var urlPassword = regexp.MustCompile(`://([^:/@]*):[^@]*@`)

// redactURL hides a password in a database URL for error messages.
func redactURL(u string) string { return urlPassword.ReplaceAllString(u, "://$1:xxxxx@") }

// Dialect returns the database's SQL flavour.
func (db *DB) Dialect() Dialect { return db.dialect }

// Close closes the database; later calls return the first one's result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() { db.closeErr = db.close() })
	return db.closeErr
}

func (db *DB) close() error {
	if db.batch != nil {
		db.batch.close()
	}
	if db.stopCheckpoints != nil {
		db.stopCheckpoints()
	}
	db.mu.Lock()
	for _, st := range db.stmts {
		st.Close()
	}
	db.stmts = nil
	db.mu.Unlock()
	err := db.w.Close()
	if db.r != db.w {
		err = errors.Join(err, db.r.Close())
	}
	if db.cp != nil {
		// The last connection to close checkpoints the rest: the
		// checkpointer's, or a reader's if no round opened it.
		err = errors.Join(err, db.cp.Close())
	}
	return err
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.r.PingContext(ctx) }

var placeholder = regexp.MustCompile(`\$(\d+)`)

// q adapts a query written with $N placeholders to the dialect.
func (db *DB) q(query string) string {
	if db.dialect == SQLite {
		return placeholder.ReplaceAllString(query, "?$1")
	}
	return query
}

// micros stores times as microseconds since the epoch; zero stays zero.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMicro(n).UTC()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A migration is SQL statements separated by semicolons (sqlite, when
// set, replaces all for SQLite), then an optional step in Go.
type migration struct {
	all, sqlite string
	then        func(ctx context.Context, db *DB, tx *sql.Tx) error
}

func (m migration) sql(d Dialect) string {
	if d == SQLite && m.sqlite != "" {
		return m.sqlite
	}
	return m.all
}

// migrations are applied in order, once each; never edit one that has
// shipped, add another.
var migrations = []migration{
	{all: `CREATE TABLE IF NOT EXISTS installations (
		id BIGINT PRIMARY KEY,
		account TEXT NOT NULL DEFAULT '',
		account_type TEXT NOT NULL DEFAULT '',
		status TEXT NOT NULL,
		repository_selection TEXT NOT NULL,
		tenant TEXT NOT NULL DEFAULT '',
		updated_at BIGINT NOT NULL
	);
	CREATE TABLE IF NOT EXISTS installation_repositories (
		installation_id BIGINT NOT NULL,
		name_key TEXT NOT NULL,
		full_name TEXT NOT NULL,
		PRIMARY KEY (installation_id, name_key)
	);
	CREATE INDEX IF NOT EXISTS installation_repositories_name ON installation_repositories (name_key);
	CREATE TABLE IF NOT EXISTS jobs (
		id TEXT PRIMARY KEY,
		tenant TEXT NOT NULL DEFAULT '',
		status TEXT NOT NULL,
		message TEXT NOT NULL DEFAULT '',
		kind TEXT NOT NULL DEFAULT '',
		owner TEXT NOT NULL DEFAULT '',
		repo TEXT NOT NULL DEFAULT '',
		installation_id BIGINT NOT NULL DEFAULT 0,
		run_id BIGINT NOT NULL DEFAULT 0,
		run_url TEXT NOT NULL DEFAULT '',
		run_attempt INTEGER NOT NULL DEFAULT 0,
		run_updated_at BIGINT NOT NULL DEFAULT 0,
		deployment_id BIGINT NOT NULL DEFAULT 0,
		pull_request_number INTEGER NOT NULL DEFAULT 0,
		report_deployment INTEGER NOT NULL DEFAULT 0,
		check_run_name TEXT NOT NULL DEFAULT '',
		head_sha TEXT NOT NULL DEFAULT '',
		check_run_id BIGINT NOT NULL DEFAULT 0,
		reported TEXT NOT NULL DEFAULT '',
		agent TEXT NOT NULL DEFAULT '',
		context TEXT NOT NULL DEFAULT '',
		transitions INTEGER NOT NULL DEFAULT 0,
		created_at BIGINT NOT NULL,
		updated_at BIGINT NOT NULL,
		version BIGINT NOT NULL
	);
	CREATE INDEX IF NOT EXISTS jobs_run_id ON jobs (run_id) WHERE run_id <> 0;
	CREATE INDEX IF NOT EXISTS jobs_status_updated ON jobs (status, updated_at);
	CREATE TABLE IF NOT EXISTS job_transitions (
		job_id TEXT NOT NULL,
		seq INTEGER NOT NULL,
		from_status TEXT NOT NULL,
		to_status TEXT NOT NULL,
		message TEXT NOT NULL,
		at BIGINT NOT NULL,
		source TEXT NOT NULL,
		PRIMARY KEY (job_id, seq)
	);
	CREATE TABLE IF NOT EXISTS deliveries (
		id TEXT PRIMARY KEY,
		state TEXT NOT NULL,
		lease_until BIGINT NOT NULL,
		updated_at BIGINT NOT NULL
	);
	CREATE INDEX IF NOT EXISTS deliveries_updated ON deliveries (updated_at);
	CREATE TABLE IF NOT EXISTS audit_events (
		at BIGINT NOT NULL,
		name TEXT NOT NULL,
		credential_type TEXT NOT NULL,
		repo TEXT NOT NULL,
		installation_id BIGINT NOT NULL,
		job_id TEXT NOT NULL,
		attempt INTEGER NOT NULL,
		outcome TEXT NOT NULL,
		error TEXT NOT NULL
	);
	CREATE INDEX IF NOT EXISTS audit_events_at ON audit_events (at);
	CREATE TABLE IF NOT EXISTS leases (
		name TEXT PRIMARY KEY,
		holder TEXT NOT NULL,
		until_at BIGINT NOT NULL
	);
	CREATE TABLE IF NOT EXISTS kv (
		name TEXT PRIMARY KEY,
		value TEXT NOT NULL
	)`},
	// A job's history moves into its row (one read and one write per
	// update instead of a second table); on SQLite deliveries become
	// WITHOUT ROWID, one B-tree instead of a table plus its key index.
	{
		all: `ALTER TABLE jobs ADD COLUMN history TEXT NOT NULL DEFAULT ''`,
		sqlite: `ALTER TABLE jobs ADD COLUMN history TEXT NOT NULL DEFAULT '';
		CREATE TABLE deliveries_v2 (
			id TEXT PRIMARY KEY,
			state TEXT NOT NULL,
			lease_until BIGINT NOT NULL,
			updated_at BIGINT NOT NULL
		) WITHOUT ROWID;
		INSERT INTO deliveries_v2 SELECT id, state, lease_until, updated_at FROM deliveries;
		DROP TABLE deliveries;
		ALTER TABLE deliveries_v2 RENAME TO deliveries;
		CREATE INDEX deliveries_updated ON deliveries (updated_at)`,
		then: moveHistory,
	},
	// Tenant isolation: job ids become "tenant.id" (unique across
	// tenants; the id sent to GitHub), single-use install states, and the
	// tenant in audit events. The dispatch queue: a pending job's dispatch
	// state and when to try it next.
	{all: `UPDATE jobs SET id = tenant || '.' || id WHERE tenant <> '' AND id NOT LIKE '%.%';
	ALTER TABLE jobs ADD COLUMN dispatch_state TEXT NOT NULL DEFAULT '';
	ALTER TABLE jobs ADD COLUMN next_attempt_at BIGINT NOT NULL DEFAULT 0;
	CREATE INDEX IF NOT EXISTS jobs_pending ON jobs (next_attempt_at) WHERE status = 'pending';
	CREATE TABLE IF NOT EXISTS install_states (
		nonce TEXT PRIMARY KEY,
		tenant TEXT NOT NULL,
		installation_id BIGINT NOT NULL DEFAULT 0,
		expires_at BIGINT NOT NULL
	);
	CREATE INDEX IF NOT EXISTS install_states_tenant ON install_states (tenant, expires_at);
	ALTER TABLE audit_events ADD COLUMN tenant TEXT NOT NULL DEFAULT ''`},
	// Delivery claims name their holder, so that a restarted process
	// frees the claims it held when it died; the poller records when it
	// last looked at a job, so that it takes the least recently polled.
	{all: `ALTER TABLE deliveries ADD COLUMN holder TEXT NOT NULL DEFAULT '';
	ALTER TABLE deliveries ADD COLUMN incarnation BIGINT NOT NULL DEFAULT 0;
	CREATE INDEX deliveries_processing ON deliveries (lease_until) WHERE state = 'processing';
	ALTER TABLE jobs ADD COLUMN polled_at BIGINT NOT NULL DEFAULT 0`},
	// Operators' control of jobs: what was asked (cancel, re-run,
	// approvals) and the run's progress, one JSON column; the cancels
	// under way indexed for the sweep that sends and forces them; the
	// tenant's list of jobs, newest first.
	{all: `ALTER TABLE jobs ADD COLUMN control TEXT NOT NULL DEFAULT '';
	ALTER TABLE jobs ADD COLUMN cancel_requested_at BIGINT NOT NULL DEFAULT 0;
	CREATE INDEX IF NOT EXISTS jobs_cancelling ON jobs (cancel_requested_at) WHERE cancel_requested_at <> 0;
	CREATE INDEX IF NOT EXISTS jobs_tenant_created ON jobs (tenant, created_at, id)`},
}

// moveHistory copies job_transitions into jobs.history and drops the table.
func moveHistory(ctx context.Context, db *DB, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT job_id, from_status, to_status, message, at, source FROM job_transitions ORDER BY job_id, seq`)
	if err != nil {
		return err
	}
	byJob := map[string][]status.Transition{}
	for rows.Next() {
		var id, from, to string
		var t status.Transition
		var at int64
		if err := rows.Scan(&id, &from, &to, &t.Message, &at, &t.Source); err != nil {
			rows.Close()
			return err
		}
		t.From, t.To, t.At = status.Status(from), status.Status(to), fromMicros(at)
		byJob[id] = append(byJob[id], t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for id, h := range byJob {
		enc, err := encodeHistory(h)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE jobs SET history = $1 WHERE id = $2`), enc, id); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, `DROP TABLE job_transitions`)
	return err
}

// migrate applies the migrations not applied yet. Replicas starting
// together serialise on a lock (PostgreSQL advisory lock; SQLite's single
// writer).
func (db *DB) migrate(ctx context.Context) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	defer tx.Rollback()
	if db.dialect == Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7146250112)`); err != nil {
			return fmt.Errorf("migrating: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS ghbridge_migrations (version INTEGER PRIMARY KEY)`); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM ghbridge_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	for v := current + 1; v <= len(migrations); v++ {
		for _, stmt := range strings.Split(migrations[v-1].sql(db.dialect), ";") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migration %d: %w", v, err)
			}
		}
		if m := migrations[v-1]; m.then != nil {
			if err := m.then(ctx, db, tx); err != nil {
				return fmt.Errorf("migration %d: %w", v, err)
			}
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO ghbridge_migrations (version) VALUES ($1)`), v); err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
	}
	return tx.Commit()
}

const tryLeaseQuery = `INSERT INTO leases (name, holder, until_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_at = excluded.until_at
		WHERE leases.until_at < $4 OR leases.holder = excluded.holder
		RETURNING name`

// TryLease takes or renews a named lease for holder until ttl from now.
// It reports false while another holder's lease runs. Replicas use it so
// that one of them runs a periodic task.
func (db *DB) TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := db.now()
	st, err := db.stmt(ctx, nil, db.w, tryLeaseQuery)
	if err != nil {
		return false, err
	}
	var got string
	err = st.QueryRowContext(ctx, name, holder, micros(now.Add(ttl)), micros(now)).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// Get reads a value of the small key-value table; "" when absent.
func (db *DB) Get(ctx context.Context, key string) (string, error) {
	st, err := db.stmt(ctx, nil, db.r, `SELECT value FROM kv WHERE name = $1`)
	if err != nil {
		return "", err
	}
	var v string
	err = st.QueryRowContext(ctx, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// Set writes a value of the small key-value table.
func (db *DB) Set(ctx context.Context, key, value string) error {
	st, err := db.stmt(ctx, nil, db.w, `INSERT INTO kv (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, key, value)
	return err
}
