package testmain_test

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
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
