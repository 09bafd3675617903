// Command crashtest kills the reference server with SIGKILL at random
// points of a load and starts it again, then checks what was promised:
// every job the server acknowledged (201) exists, ran exactly once and
// reached its final status from its run's webhook delivery; none is left
// pending. GitHub is the in-process fake; its deliveries that fail while
// the server is down are recovered by the server's reconciliation (the
// App's delivery log), as on GitHub.
//
//	go run ./examples/crashtest                                # SQLite, 5 kills, 300 jobs
//	go run ./examples/crashtest -db postgres                   # the local PostgreSQL
//	go run ./examples/crashtest -db postgres -replicas 2       # two servers, one of them killed
//	go run ./examples/crashtest -kills 10 -jobs 1000 -seed 7
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/ghbridge/ghbridge/examples/internal/testdb"
	_ "github.com/jackc/pgx/v5/stdlib"
)

func main() {
	var c Campaign
	flag.StringVar(&c.DB, "db", "sqlite", `"sqlite", "postgres" ($GHBRIDGE_TEST_POSTGRES_URL or the local server), or a postgres:// URL`)
	flag.IntVar(&c.Jobs, "jobs", 300, "jobs to create")
	flag.IntVar(&c.Kills, "kills", 5, "SIGKILLs during the load")
	flag.IntVar(&c.Replicas, "replicas", 1, "server processes on the database (2 needs PostgreSQL); the last one is the one killed")
	flag.IntVar(&c.Concurrency, "concurrency", 8, "job creations in flight")
	flag.Int64Var(&c.Seed, "seed", time.Now().UnixNano(), "random seed of the kill times")
	flag.DurationVar(&c.Settle, "settle", 2*time.Minute, "how long after the last restart every job must be final")
	flag.DurationVar(&c.Outage, "outage", 0, "GitHub answers 503 to dispatches for this long from the start of the load")
	flag.StringVar(&c.Bin, "bin", "", "a server binary to test instead of building this tree's")
	flag.BoolVar(&c.Unqualified, "unqualified", false, "the binary sends job ids to GitHub unqualified (builds before tenant-qualified ids)")
	flag.Parse()
	dir, err := os.MkdirTemp("", "ghbridge-crashtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	c.Dir = dir
	var drop func()
	if c.DB, drop, err = databaseURL(c.DB, dir); err != nil {
		fmt.Fprintln(os.Stderr, "crashtest:", err)
		os.Exit(1)
	}
	rep, err := c.Run(context.Background(), os.Stdout)
	drop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "crashtest:", err)
		os.Exit(1)
	}
	if !rep.OK() {
		os.Exit(1)
	}
}

// databaseURL turns the -db flag into a URL: a file in dir for SQLite, a
// fresh schema for PostgreSQL, which drop removes.
func databaseURL(db, dir string) (url string, drop func(), err error) {
	return testdb.Fresh(db, dir, "crash")
}
