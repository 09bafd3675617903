package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ghbridge/ghbridge/examples/internal/testdb"
)

// TestCrashCampaign is the short campaign CI runs: a few kills on SQLite,
// on PostgreSQL, and on two PostgreSQL replicas with one of them killed,
// the three at once on one server build (cached: see cachedServer). The
// full campaign is `go run ./examples/crashtest` (see the README).
//
// The campaigns spend most of their time waiting for servers, so they run
// together whatever -test.parallel says; a subtest per campaign reports
// its result.
func TestCrashCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills server processes")
	}
	bin := cachedServer(t)
	pgErr := pingPostgres()
	type result struct {
		c   Campaign
		rep Report
		out bytes.Buffer
		err error
	}
	cases := []struct {
		name     string
		db       string
		replicas int
		res      result
	}{
		{name: "sqlite", db: "sqlite", replicas: 1},
		{name: "postgres", db: "postgres", replicas: 1},
		{name: "postgres-2-replicas", db: "postgres", replicas: 2},
	}
	var wg sync.WaitGroup
	for i := range cases {
		tc := &cases[i]
		if tc.db == "postgres" && pgErr != nil {
			continue
		}
		dir := t.TempDir()
		wg.Go(func() {
			url, drop, err := databaseURL(tc.db, dir)
			if err != nil {
				tc.res.err = err
				return
			}
			defer drop()
			tc.res.c = Campaign{DB: url, Dir: dir, Bin: bin, Jobs: 24, Kills: 3, Replicas: tc.replicas, Concurrency: 8,
				Seed: time.Now().UnixNano() + int64(i), Settle: 150 * time.Second}
			tc.res.rep, tc.res.err = tc.res.c.Run(context.Background(), &tc.res.out)
		})
	}
	wg.Wait()
	for i := range cases {
		tc := &cases[i]
		t.Run(tc.name, func(t *testing.T) {
			if tc.db == "postgres" && pgErr != nil {
				if os.Getenv("GHBRIDGE_TEST_POSTGRES") == "required" {
					t.Fatalf("PostgreSQL is required but unreachable: %v", pgErr)
				}
				t.Skipf("PostgreSQL not reachable: %v", pgErr)
			}
			c, rep := tc.res.c, tc.res.rep
			if tc.res.err != nil {
				t.Fatalf("%v\n%s", tc.res.err, tc.res.out.String())
			}
			t.Logf("seed %d: %s", c.Seed, rep)
			if !rep.OK() {
				t.Errorf("promises broken (seed %d):\n%s", c.Seed, tc.res.out.String())
			}
			if rep.Kills != c.Kills || rep.Acked != c.Jobs {
				t.Errorf("campaign incomplete: %s", rep)
			}
		})
	}
}

// pingPostgres reports whether the test PostgreSQL server answers.
func pingPostgres() error {
	db, err := sql.Open("pgx", testdb.PostgresURL())
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// cachedServer returns this tree's server binary, built once per content
// of the module: linking it costs seconds, more than the campaigns. The
// binary lives in the user's cache directory under a hash of every file
// of the module but tests, of the Go version and of the environment that
// changes a build; a tree that differs in any of them gets a binary of
// its own (see pruneCache for how many are kept).
func cachedServer(t *testing.T) string {
	t.Helper()
	key, err := moduleKey()
	if err != nil {
		t.Fatalf("hashing the module: %v", err)
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "ghbridge-crashtest")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "server-"+key)
	if _, err := os.Stat(bin); err == nil {
		now := time.Now()
		_ = os.Chtimes(bin, now, now) // used: kept by pruneCache
		return bin
	}
	// Built into a directory of its own and renamed into place, so that
	// a test running at the same time never sees half a binary.
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	var out bytes.Buffer
	built, err := buildServer(context.Background(), tmp, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if err := os.Rename(built, bin); err != nil {
		t.Fatal(err)
	}
	pruneCache(dir)
	return bin
}

// moduleKey returns a hash of what the server's build depends on: the
// files of the module (go.mod and go.sum name the dependencies) but tests
// and version control, the Go version, and the environment variables that
// change a build.
func moduleKey() (string, error) {
	root, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			return "", errors.New("no go.mod above the working directory")
		}
		root = parent
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	for _, env := range []string{"GOFLAGS", "CGO_ENABLED", "GOEXPERIMENT", "GOAMD64", "GOARM64", "GOWORK", "GOTOOLCHAIN", "CC"} {
		fmt.Fprintf(h, "%s=%s\n", env, os.Getenv(env))
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == ".git" || strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		rel, _ := filepath.Rel(root, path)
		fmt.Fprintf(h, "%s\x00", filepath.ToSlash(rel))
		n, err := io.Copy(h, f)
		fmt.Fprintf(h, "\x00%d\n", n)
		return err
	})
	return hex.EncodeToString(h.Sum(nil))[:32], err
}

// pruneCache removes the binaries of dir but the three used last and
// those used in the last ten minutes (a campaign running elsewhere
// starts its binary again at each kill; cachedServer touches the binary
// it uses), and builds left behind by killed tests.
func pruneCache(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type entry struct {
		path string
		used time.Time
	}
	var bins []entry
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			continue
		}
		path := filepath.Join(dir, e.Name())
		switch {
		case strings.HasPrefix(e.Name(), "server-"):
			bins = append(bins, entry{path, info.ModTime()})
		case strings.HasPrefix(e.Name(), "build-") && time.Since(info.ModTime()) > time.Hour:
			_ = os.RemoveAll(path)
		}
	}
	slices.SortFunc(bins, func(a, b entry) int { return b.used.Compare(a.used) })
	for i, b := range bins {
		if i >= 3 && time.Since(b.used) > 10*time.Minute {
			_ = os.Remove(b.path)
		}
	}
}
