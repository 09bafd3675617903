package testmain_test

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ghbridge/ghbridge/internal/testmain"
)

func TestMain(m *testing.M) {
	if code := os.Getenv("TESTMAIN_EXIT_CODE"); code != "" {
		// The child: exit with the code asked for, through Exit.
		n, _ := strconv.Atoi(code)
		testmain.Exit(n)
	}
	testmain.Exit(m.Run())
}

// TestExitKeepsTheCode runs this binary again as a child that exits through
// Exit, and checks that the status reaches the parent unchanged.
func TestExitKeepsTheCode(t *testing.T) {
	t.Parallel()
	for _, code := range []int{0, 1, 3} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "TESTMAIN_EXIT_CODE="+strconv.Itoa(code))
		err := cmd.Run()
		got := 0
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			got = exitErr.ExitCode()
		} else if err != nil {
			t.Fatalf("running the child: %v", err)
		}
		if got != code {
			t.Errorf("child exited with %d, want %d", got, code)
		}
	}
}

// TestEveryPackageExitsThroughExit: each test package of the module ends
// through Exit, or it pays the race runtime's second at exit again.
func TestEveryPackageExitsThroughExit(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	withTests := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), "_test.go") {
			return nil
		}
		dir := filepath.Dir(path)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		withTests[dir] = withTests[dir] || strings.Contains(string(b), "testmain.Exit(")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(withTests) < 20 {
		t.Fatalf("found %d test packages; is the module root %s?", len(withTests), root)
	}
	for dir, ok := range withTests {
		if !ok {
			t.Errorf("%s: no TestMain calling testmain.Exit (see CONTRIBUTING.md)", dir)
		}
	}
}
