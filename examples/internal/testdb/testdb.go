// Package testdb gives the example programs (load test, crash campaign) a
// database of their own: a new SQLite file, or a new PostgreSQL schema.
package testdb

import (
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
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
