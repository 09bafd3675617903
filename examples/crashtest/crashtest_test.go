package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	"github.com/ghbridge/ghbridge/examples/internal/testdb"
)

// TestCrashCampaign is the short campaign CI runs: a few kills on SQLite,
// on PostgreSQL, and on two PostgreSQL replicas with one of them killed,
// the three at once on one server build. The full campaign is
// `go run ./examples/crashtest` (see the README).
func TestCrashCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills server processes")
	}
	var build bytes.Buffer
	bin, err := buildServer(context.Background(), t.TempDir(), &build)
	if err != nil {
		t.Fatalf("%v\n%s", err, build.String())
	}
	for _, tc := range []struct {
		name     string
		db       string
		replicas int
	}{
		{"sqlite", "sqlite", 1},
		{"postgres", "postgres", 1},
		{"postgres-2-replicas", "postgres", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if tc.db == "postgres" {
				requirePostgres(t)
			}
			url, drop, err := databaseURL(tc.db, dir)
			if err != nil {
				t.Fatal(err)
			}
			defer drop()
			c := Campaign{DB: url, Dir: dir, Bin: bin, Jobs: 40, Kills: 3, Replicas: tc.replicas, Concurrency: 8,
				Seed: time.Now().UnixNano(), Settle: 150 * time.Second}
			var out bytes.Buffer
			rep, err := c.Run(context.Background(), &out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			t.Logf("seed %d: %s", c.Seed, rep)
			if !rep.OK() {
				t.Errorf("promises broken (seed %d):\n%s", c.Seed, out.String())
			}
			if rep.Kills != c.Kills || rep.Acked != c.Jobs {
				t.Errorf("campaign incomplete: %s", rep)
			}
		})
	}
}

func requirePostgres(t *testing.T) {
	t.Helper()
	db, err := sql.Open("pgx", testdb.PostgresURL())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
		db.Close()
	}
	if err != nil {
		if os.Getenv("GHBRIDGE_TEST_POSTGRES") == "required" {
			t.Fatalf("PostgreSQL is required but unreachable: %v", err)
		}
		t.Skipf("PostgreSQL not reachable: %v", err)
	}
}
