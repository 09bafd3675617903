//go:build race

package sqlstore_test

// raceEnabled says that the tests run with the race detector, which
// slows SQLite's writes some thirty times.
const raceEnabled = true
