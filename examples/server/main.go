// Command server is ghbridge's reference server. See the README for its
// environment variables and HTTP API.
//
//	server            serve (the default)
//	server doctor [-owner ACME -repo DEPLOYER -workflow deploy.yml] [-ref main] [-installation ID] [-kinds workflow_dispatch,deployment] [-timeout 5s]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ghbridge/ghbridge/doctor"
	"github.com/ghbridge/ghbridge/examples/server/app"
	"github.com/ghbridge/ghbridge/template"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) > 0 && args[0] == "doctor" {
		return runDoctor(args[1:])
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
	// Listen first: a busy port is reported as the only problem, before
	// anything else is logged or opened.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		log.Error("the server did not start", "error", fmt.Errorf("%s: %w", app.EnvAddr, err))
		return 1
	}
	shutdownTracing, err := app.SetupTracing(ctx, os.LookupEnv)
	if err != nil {
		_ = ln.Close()
		log.Error("the server did not start", "error", err)
		return 2
	}
	defer shutdownTracing()
	srv, err := app.New(ctx, cfg, app.WithLogger(log))
	if err != nil {
		_ = ln.Close()
		log.Error("the server did not start", "error", err)
		return 1
	}
	if err := srv.Serve(ctx, ln); err != nil {
		log.Error("server stopped", "error", err)
		return 1
	}
	log.Info("server stopped")
	return 0
}

func runDoctor(args []string) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	var t doctor.Target
	var opts app.DoctorOptions
	var kinds string
	fs.StringVar(&t.Owner, "owner", "", "repository owner (with -repo: check that repository)")
	fs.StringVar(&t.Repo, "repo", "", "repository name")
	fs.StringVar(&t.Workflow, "workflow", "", "workflow file name (deploy.yml) or numeric id")
	fs.StringVar(&t.Ref, "ref", "main", "branch the workflow runs on")
	fs.Int64Var(&t.InstallationID, "installation", 0, "installation id (default: the repository's)")
	fs.StringVar(&kinds, "kinds", string(template.KindWorkflowDispatch), "job kinds in use, comma-separated: workflow_dispatch, repository_dispatch, deployment, pull_request")
	fs.DurationVar(&opts.Timeout, "timeout", 5*time.Second, "timeout of each check")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if (t.Owner == "") != (t.Repo == "") {
		fmt.Fprintln(os.Stderr, "doctor: -owner and -repo go together")
		fs.Usage()
		return 2
	}
	if t.Owner != "" {
		opts.Targets = append(opts.Targets, t)
	}
	for _, k := range strings.Split(kinds, ",") {
		if k = strings.TrimSpace(k); k != "" {
			opts.Kinds = append(opts.Kinds, template.Kind(k))
		}
	}
	if !app.Doctor(context.Background(), os.LookupEnv, opts, os.Stdout) {
		return 1
	}
	return 0
}
