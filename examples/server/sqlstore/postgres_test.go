package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/ghbridge/ghbridge/examples/server/sqlstore"
	"github.com/ghbridge/ghbridge/internal/testmain"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pg.close()
	closeSQLitePool()
	testmain.Exit(code)
}

// PostgresURL returns the test database URL: $GHBRIDGE_TEST_POSTGRES_URL,
// or the local server this machine kind runs.
func postgresURL() string {
	if u := os.Getenv("GHBRIDGE_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// pg is the test PostgreSQL server: an admin connection, and the
// migrated schemas that finished tests left, emptied, for the next test.
// Under the race detector migrating a new schema takes a few hundred
// milliseconds, longer than most tests.
var pg pgServer

type pgServer struct {
	mu      sync.Mutex
	admin   *sql.DB
	free    []string // emptied, for freshPostgres
	made    []string // dropped by close
	tried   bool
	connErr error
}

// connect returns the admin connection. Without a reachable server the
// test is skipped, unless GHBRIDGE_TEST_POSTGRES=required (as .ci/run
// sets it).
func (p *pgServer) connect(t testing.TB) *sql.DB {
	t.Helper()
	p.mu.Lock()
	if !p.tried {
		p.tried = true
		p.admin, p.connErr = sql.Open("pgx", postgresURL())
		if p.connErr == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			p.connErr = p.admin.PingContext(ctx)
			cancel()
		}
	}
	admin, err := p.admin, p.connErr
	p.mu.Unlock()
	if err != nil {
		if os.Getenv("GHBRIDGE_TEST_POSTGRES") == "required" {
			t.Fatalf("PostgreSQL at %s is required but unreachable: %v", postgresURL(), err)
		}
		t.Skipf("PostgreSQL not reachable at %s (%v); set GHBRIDGE_TEST_POSTGRES_URL", postgresURL(), err)
	}
	return admin
}

// create makes a new schema.
func (p *pgServer) create(t testing.TB) string {
	t.Helper()
	admin := p.connect(t)
	schema := "t_" + strings.ToLower(rand.Text()) // tests run in parallel
	_, err := admin.Exec("CREATE SCHEMA " + schema)
	require.NoError(t, err)
	return schema
}

// empty deletes every row of the schema but its migrations.
func (p *pgServer) empty(schema string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := p.admin.QueryContext(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> 'ghbridge_migrations'`, schema)
	if err != nil {
		return err
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, schema+"."+name)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(tables) == 0 {
		return err
	}
	// DELETE, not TRUNCATE: TRUNCATE gives each table new files, which
	// costs PostgreSQL more than deleting the few rows a test leaves.
	_, err = p.admin.ExecContext(ctx, "DELETE FROM "+strings.Join(tables, "; DELETE FROM "))
	return err
}

// close drops the schemas of freshPostgres.
func (p *pgServer) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, schema := range p.made {
		_, _ = p.admin.Exec("DROP SCHEMA " + schema + " CASCADE")
	}
	if p.admin != nil {
		p.admin.Close()
	}
}

func schemaURL(schema string) string {
	base := postgresURL()
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

// freshPostgres returns the URL of a schema of the test's own, migrated
// or not, without rows.
func freshPostgres(t testing.TB) string {
	t.Helper()
	pg.connect(t)
	pg.mu.Lock()
	var schema string
	if n := len(pg.free); n > 0 {
		schema, pg.free = pg.free[n-1], pg.free[:n-1]
	}
	pg.mu.Unlock()
	if schema == "" {
		schema = pg.create(t)
		pg.mu.Lock()
		pg.made = append(pg.made, schema)
		pg.mu.Unlock()
	}
	t.Cleanup(func() { // after the test's own, which close its connections
		if pg.empty(schema) == nil {
			pg.mu.Lock()
			pg.free = append(pg.free, schema)
			pg.mu.Unlock()
		}
	})
	return schemaURL(schema)
}

// emptyPostgres returns the URL of a new schema, dropped when the test
// ends.
func emptyPostgres(t testing.TB) string {
	t.Helper()
	schema := pg.create(t)
	t.Cleanup(func() { _, _ = pg.admin.Exec("DROP SCHEMA " + schema + " CASCADE") })
	return schemaURL(schema)
}

// TestMaxConns: a PostgreSQL handle opens at most 32 connections unless
// told otherwise; SQLite keeps its one writer whatever it is told.
func TestMaxConns(t *testing.T) {
	t.Parallel()
	url := freshPostgres(t)
	db, err := sqlstore.Open(context.Background(), url)
	require.NoError(t, err)
	require.Equal(t, 32, db.MaxOpenConns())
	db.Close()
	require.Equal(t, 3, open(t, url, sqlstore.WithMaxConns(3)).MaxOpenConns())
	require.Equal(t, 8, open(t, url).MaxOpenConns(), "the tests' handles")
	require.Equal(t, 1, open(t, emptySQLite(t), sqlstore.WithMaxConns(3)).MaxOpenConns())
}
