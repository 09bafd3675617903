// Command server is ghbridge's reference server. See the README for its
// environment variables and HTTP API.
//
//	server            serve (the default)
//	server doctor -owner ACME -repo DEPLOYER -workflow deploy.yml [-ref main] [-installation ID]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ghbridge/ghbridge/examples/server/app"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) > 0 && args[0] == "doctor" {
		return doctor(args[1:])
	}
	if len(args) > 0 && args[0] != "serve" {
		fmt.Fprintf(os.Stderr, "usage: server [serve|doctor]\n")
		return 2
	}
	cfg, err := app.LoadConfig(os.LookupEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "configuration:", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := app.New(ctx, cfg, app.WithLogger(log))
	if err != nil {
		log.Error("starting the server failed", "error", err)
		return 1
	}
	if err := srv.Run(ctx); err != nil {
		log.Error("server stopped", "error", err)
		return 1
	}
	log.Info("server stopped")
	return 0
}

func doctor(args []string) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	var t app.DoctorTarget
	fs.StringVar(&t.Owner, "owner", "", "repository owner")
	fs.StringVar(&t.Repo, "repo", "", "repository name")
	fs.StringVar(&t.Workflow, "workflow", "", "workflow file name (deploy.yml) or numeric id")
	fs.StringVar(&t.Ref, "ref", "main", "branch the workflow runs on")
	fs.Int64Var(&t.InstallationID, "installation", 0, "installation id (default: the repository's)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if t.Owner == "" || t.Repo == "" || t.Workflow == "" {
		fmt.Fprintln(os.Stderr, "doctor needs -owner, -repo and -workflow")
		fs.Usage()
		return 2
	}
	if !app.Doctor(context.Background(), os.LookupEnv, t, os.Stdout) {
		return 1
	}
	return 0
}
