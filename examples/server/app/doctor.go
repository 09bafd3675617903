package app

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/doctor"
	"github.com/ghbridge/ghbridge/template"
)

// DoctorOptions tune the doctor command.
type DoctorOptions struct {
	Targets []doctor.Target
	Kinds   []template.Kind
	// Timeout bounds each check (default doctor.DefaultTimeout).
	Timeout time.Duration
}

// Doctor runs package doctor's checks on the server's configuration read
// through lookup, printing each result as its check ends and a summary
// line at the end. It reports whether no check failed. Unlike
// LoadConfig it does not stop at a broken setting: finding it is its job.
func Doctor(ctx context.Context, lookup credentials.LookupFunc, opts DoctorOptions, out io.Writer) bool {
	cfg := doctor.Config{Kinds: opts.Kinds, Targets: opts.Targets, Timeout: opts.Timeout, WebhookSecretName: EnvWebhookSecret}
	cfg.App, cfg.AppErr = credentials.LoadAppConfig(lookup)
	secrets, err := loadWebhookSecrets(lookup)
	if err != nil {
		fmt.Fprintf(out, "  warn  %v\n", err)
	}
	cfg.WebhookSecrets = secrets
	if ops, err := loadOperations(lookup); err == nil {
		cfg.WebhookURL = ops.WebhookURL()
	}
	fmt.Fprintf(out, "ghbridge doctor: %s, each check within %s\n", cfg.App, cmpDuration(cfg.Timeout, doctor.DefaultTimeout))
	rep := doctor.Run(ctx, cfg, doctor.Printer(out))
	fmt.Fprintln(out, rep.Summary())
	return rep.OK()
}

func cmpDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
