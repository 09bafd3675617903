package main

import (
	"testing"

	"github.com/ghbridge/ghbridge/internal/testmain"
)

func TestMain(m *testing.M) { testmain.Exit(m.Run()) }
