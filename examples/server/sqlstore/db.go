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
	"regexp"
	"strings"
	"sync"
	"time"

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
	now     func() time.Time

	mu    sync.Mutex
	stmts map[stmtKey]*sql.Stmt
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

// prepare readies the hot statements, so a transaction never has to
// prepare one on the connection it holds.
func (db *DB) prepare(ctx context.Context) error {
	hot := []struct {
		pool  *sql.DB
		query string
	}{
		{db.r, loadQuery(byID)}, {db.r, loadQuery(byRunID)}, {db.r, historyQuery},
		{db.w, loadQuery(byID)}, {db.w, historyQuery}, {db.w, updateJobQuery}, {db.w, insertTransitionQuery},
		{db.w, claimDeliveryQuery}, {db.w, completeDeliveryQuery},
	}
	for _, h := range hot {
		if _, err := db.stmt(ctx, nil, h.pool, h.query); err != nil {
			return fmt.Errorf("preparing statements: %w", err)
		}
	}
	return nil
}

// Open opens and migrates the database named by url: "sqlite:PATH" (the
// file is created) or "postgres://..." / "postgresql://...".
func Open(ctx context.Context, url string) (*DB, error) {
	var db *DB
	switch {
	case strings.HasPrefix(url, "sqlite:"):
		path := strings.TrimPrefix(url, "sqlite:")
		if path == "" {
			return nil, errors.New("sqlite: no file name; use sqlite:PATH")
		}
		pragmas := "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)"
		w, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_txlock=immediate")
		if err != nil {
			return nil, err
		}
		// SQLite has one writer at a time; one connection makes writers
		// queue in Go instead of failing with "database is locked".
		w.SetMaxOpenConns(1)
		r, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_pragma=query_only(true)")
		if err != nil {
			w.Close()
			return nil, err
		}
		r.SetMaxOpenConns(8)
		db = &DB{dialect: SQLite, w: w, r: r}
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		p, err := sql.Open("pgx", url)
		if err != nil {
			return nil, err
		}
		p.SetMaxOpenConns(32)
		p.SetMaxIdleConns(32)
		db = &DB{dialect: Postgres, w: p, r: p}
	default:
		return nil, fmt.Errorf("unsupported database URL %q: use sqlite:PATH or postgres://HOST/DB", redactURL(url))
	}
	db.now = time.Now
	if err := db.w.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connecting to %s: %w", redactURL(url), err)
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if db.dialect == SQLite {
		// The reader pool opens after the migration created the file.
		if err := db.r.PingContext(ctx); err != nil {
			db.Close()
			return nil, err
		}
	}
	if err := db.prepare(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

var urlPassword = regexp.MustCompile(`://([^:/@]*):[^@]*@`)

// redactURL hides a password in a database URL for error messages.
func redactURL(u string) string { return urlPassword.ReplaceAllString(u, "://$1:xxxxx@") }

// Dialect returns the database's SQL flavour.
func (db *DB) Dialect() Dialect { return db.dialect }

// Close closes the database.
func (db *DB) Close() error {
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

// migrations are applied in order, once each; never edit one that has
// shipped, add another.
var migrations = []string{
	`CREATE TABLE IF NOT EXISTS installations (
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
	)`,
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
		for _, stmt := range strings.Split(migrations[v-1], ";") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migration %d: %w", v, err)
			}
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO ghbridge_migrations (version) VALUES ($1)`), v); err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
	}
	return tx.Commit()
}

// TryLease takes or renews a named lease for holder until ttl from now.
// It reports false while another holder's lease runs. Replicas use it so
// that one of them runs a periodic task.
func (db *DB) TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := db.now()
	var got string
	err := db.w.QueryRowContext(ctx, db.q(`INSERT INTO leases (name, holder, until_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_at = excluded.until_at
		WHERE leases.until_at < $4 OR leases.holder = excluded.holder
		RETURNING name`), name, holder, micros(now.Add(ttl)), micros(now)).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// Get reads a value of the small key-value table; "" when absent.
func (db *DB) Get(ctx context.Context, key string) (string, error) {
	var v string
	err := db.r.QueryRowContext(ctx, db.q(`SELECT value FROM kv WHERE name = $1`), key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// Set writes a value of the small key-value table.
func (db *DB) Set(ctx context.Context, key, value string) error {
	_, err := db.w.ExecContext(ctx, db.q(`INSERT INTO kv (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`), key, value)
	return err
}
