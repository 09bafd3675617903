// Package testmain ends a package's test binary as soon as its tests are
// done. Every test package's TestMain is
//
//	func TestMain(m *testing.M) { testmain.Exit(m.Run()) }
package testmain

import (
	"os"
	"strings"
)

// Exit ends the test binary with code, the result of m.Run.
//
// A race-enabled binary that exits with status 0 first sleeps for a second
// (ThreadSanitizer's atexit_sleep_ms), so that other threads' late reports
// get out. A test binary does not need the wait: m.Run has already failed
// on every race seen while it ran, "race detected outside of test
// execution" included. With twenty-odd packages that second per binary was
// a quarter of `go test -race ./...`. Setting atexit_sleep_ms in GORACE
// brings the wait back.
func Exit(code int) {
	if raceEnabled && !strings.Contains(os.Getenv("GORACE"), "atexit_sleep_ms") {
		exitNow(code)
	}
	os.Exit(code)
}
