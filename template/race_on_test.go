//go:build race

package template_test

// raceEnabled is set when the race detector, which multiplies CPU time
// and allocation, is on.
const raceEnabled = true
