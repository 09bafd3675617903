// Package testdb gives the example programs (load test, crash campaign)
// and the reference server's tests a database of their own: a new SQLite
// file, or a new PostgreSQL schema.
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver

	"github.com/ghbridge/ghbridge/examples/server/sqlstore"
)

// PostgresURL is the PostgreSQL server used for "postgres":
// $GHBRIDGE_TEST_POSTGRES_URL, or the local one.
func PostgresURL() string {
	if u := os.Getenv("GHBRIDGE_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// Fresh returns the URL of an empty database for kind: "sqlite" (a file
// in dir), "postgres" (a new schema on PostgresURL, named after prefix),
// or a database URL, used as it is. drop removes what Fresh made.
func Fresh(kind, dir, prefix string) (url string, drop func(), err error) {
	switch kind {
	case "sqlite":
		return "sqlite:" + filepath.Join(dir, "ghbridge.db"), func() {}, nil
	case "postgres":
		base := PostgresURL()
		admin, err := sql.Open("pgx", base)
		if err != nil {
			return "", nil, err
		}
		// Random, for databases made at once (the crash campaigns run in
		// parallel).
		schema := prefix + "_" + strings.ToLower(rand.Text())
		if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
			admin.Close()
			return "", nil, fmt.Errorf("PostgreSQL at %s: %w", base, err)
		}
		drop := func() {
			_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
			admin.Close()
		}
		sep := "?"
		if strings.Contains(base, "?") {
			sep = "&"
		}
		return base + sep + "search_path=" + schema, drop, nil
	}
	return kind, func() {}, nil
}

// migrated is an empty SQLite database file with the schema migrated,
// made once per process: under the race detector migrating a new file
// takes longer than most tests do.
var migrated = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "ghbridge-testdb-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "ghbridge.db")
	db, err := sqlstore.Open(context.Background(), "sqlite:"+path)
	if err != nil {
		return nil, err
	}
	if err := db.Close(); err != nil { // checkpoints the WAL into the file
		return nil, err
	}
	if _, err := os.Stat(path + "-wal"); err == nil {
		return nil, fmt.Errorf("%s-wal outlived Close: the file alone is not the database", path)
	}
	return os.ReadFile(path)
})

// MigratedSQLite returns the URL of a SQLite database of t's own, in
// t.TempDir(), with the schema migrated: a copy of a file migrated once
// per process.
func MigratedSQLite(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ghbridge.db")
	if err := WriteMigratedSQLite(path); err != nil {
		t.Fatal(err)
	}
	return "sqlite:" + path
}

// WriteMigratedSQLite writes a SQLite database with the schema migrated
// to path: a copy of a file migrated once per process. It is for a
// database that outlives a test; MigratedSQLite is for one of a test's
// own.
func WriteMigratedSQLite(path string) error {
	raw, err := migrated()
	if err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o600)
}
