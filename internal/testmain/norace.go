//go:build !race

package testmain

import "os"

const raceEnabled = false

func exitNow(code int) { os.Exit(code) }
