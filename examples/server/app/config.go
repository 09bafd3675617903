package app

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/examples/server/sqlstore"
)

// Environment variables of the reference server, besides the GITHUB_APP_*
// ones read by credentials.LoadAppConfig.
const (
	EnvAddr              = "GHBRIDGE_ADDR"
	EnvDatabaseURL       = "GHBRIDGE_DATABASE_URL"
	EnvDatabaseMaxConns  = "GHBRIDGE_DATABASE_MAX_CONNS"
	EnvAPIKeys           = "GHBRIDGE_API_KEYS"
	EnvWebhookSecret     = "GITHUB_WEBHOOK_SECRET"
	EnvAppWebhookSecret  = "GITHUB_APP_WEBHOOK_SECRET"
	EnvReconcileInterval = "GHBRIDGE_RECONCILE_INTERVAL"
	EnvQuietAfter        = "GHBRIDGE_QUIET_AFTER"
	EnvStateSecret       = "GHBRIDGE_STATE_SECRET"
	EnvSecretPrefix      = "GHBRIDGE_SECRET_PREFIX"
	EnvLogLevel          = "GHBRIDGE_LOG_LEVEL"
	EnvDispatchDeadline  = "GHBRIDGE_DISPATCH_DEADLINE"
	EnvDispatchSettle    = "GHBRIDGE_DISPATCH_SETTLE"

	EnvInstance            = "GHBRIDGE_INSTANCE"
	EnvRetentionDeliveries = "GHBRIDGE_RETENTION_DELIVERIES"
	EnvRetentionAudit      = "GHBRIDGE_RETENTION_AUDIT"
	EnvRetentionJobs       = "GHBRIDGE_RETENTION_JOBS"
	EnvForceCancelAfter    = "GHBRIDGE_FORCE_CANCEL_AFTER"
	// See settings.go for the variables added since.
)

// Config is the server's configuration.
type Config struct {
	Addr        string
	DatabaseURL string
	// DatabaseMaxConns is the most connections the store opens to
	// PostgreSQL (sqlstore.WithMaxConns).
	DatabaseMaxConns int
	// APIKeys maps a bearer key to its tenant.
	APIKeys map[string]string
	// Tenants are the distinct tenants of APIKeys, sorted.
	Tenants []string
	// App is the GitHub App; AppErr says why it is not usable (then
	// installation credentials and the install routes are off).
	App    credentials.AppConfig
	AppErr error
	// WebhookSecrets verify deliveries; empty turns the webhook route off.
	WebhookSecrets []string
	// StateSecret signs install states; derived from the App key when
	// not set.
	StateSecret []byte
	// ReconcileInterval is the period of delivery recovery and polling
	// of quiet jobs; QuietAfter how long a job must be quiet to be polled.
	ReconcileInterval time.Duration
	QuietAfter        time.Duration
	// DispatchDeadline bounds how long a job's dispatch is retried
	// through transient failures before it fails.
	DispatchDeadline time.Duration
	// ForceCancelAfter is how long a run may ignore its cancel before it
	// is force-cancelled.
	ForceCancelAfter time.Duration
	// DispatchSettle is how long a dispatch whose outcome is unknown is
	// looked for before it is sent again (dispatch.RunLookup.Settle).
	DispatchSettle time.Duration
	// SecretPrefix prefixes the environment variables that hold the
	// "{{ secrets.NAME }}" values of job configs; SecretLookup reads them
	// (the lookup LoadConfig was given).
	SecretPrefix string
	SecretLookup credentials.LookupFunc
	LogLevel     slog.Level
	// Instance names this process among those sharing the database, the
	// same across its restarts: a restarted process frees the delivery
	// claims it held when it died. Default: host name and listen port.
	Instance string
	// Retention bounds what the database keeps (sqlstore.DefaultRetention).
	Retention sqlstore.Retention
	// Operations holds the settings of operations: access log, public
	// URL and repository webhooks (settings.go).
	Operations
}

// loadAPIKeys reads GHBRIDGE_API_KEYS, comma-separated "tenant:key"
// entries, into APIKeys and Tenants.
func (cfg *Config) loadAPIKeys(v string) []error {
	var errs []error
	for _, entry := range strings.Split(v, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		tenant, key, ok := strings.Cut(entry, ":")
		if !ok {
			tenant, key = "default", entry
		}
		if !validTenant(tenant) {
			errs = append(errs, fmt.Errorf("%s: tenant %q: use 1 to 63 lower-case letters and digits, words joined by single hyphens (e.g. team-a)", EnvAPIKeys, tenant))
			continue
		}
		if len(key) < 16 {
			errs = append(errs, fmt.Errorf("%s: a key is shorter than 16 characters; use long random keys (openssl rand -hex 32)", EnvAPIKeys))
			continue
		}
		cfg.APIKeys[key] = tenant
		if !slices.Contains(cfg.Tenants, tenant) {
			cfg.Tenants = append(cfg.Tenants, tenant)
		}
	}
	slices.Sort(cfg.Tenants)
	return errs
}

// LoadConfig reads the configuration from the environment. GitHub
// settings that are not set are kept in AppErr, never fatal: the server
// starts and its GitHub routes say what is missing. A setting that is set
// but invalid (GitHub's or the server's own) is an error naming the
// variable, so that the server stops at start.
func LoadConfig(lookup credentials.LookupFunc) (Config, error) {
	get := func(k, def string) string {
		if v, ok := lookup(k); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	cfg := Config{
		Addr:         get(EnvAddr, ":8080"),
		DatabaseURL:  get(EnvDatabaseURL, "sqlite:ghbridge.db"),
		APIKeys:      map[string]string{},
		SecretPrefix: get(EnvSecretPrefix, "GHBRIDGE_SECRET_"),
		SecretLookup: lookup,
	}
	errs := cfg.loadAPIKeys(get(EnvAPIKeys, ""))
	cfg.App, cfg.AppErr = credentials.LoadAppConfig(lookup)
	if cfg.AppErr != nil && !errors.Is(cfg.AppErr, credentials.ErrNotConfigured) {
		errs = append(errs, cfg.AppErr) // set but invalid
	}
	var err error
	if cfg.WebhookSecrets, err = loadWebhookSecrets(lookup); err != nil {
		errs = append(errs, err)
	}
	if cfg.Operations, err = loadOperations(lookup); err != nil {
		errs = append(errs, err)
	}
	if s := get(EnvStateSecret, ""); s != "" {
		cfg.StateSecret = []byte(s)
	} else if cfg.AppErr == nil {
		sum := sha256.Sum256([]byte("ghbridge install state\x00" + cfg.App.PrivateKey.Reveal()))
		cfg.StateSecret = sum[:]
	}
	for _, d := range []struct {
		env string
		def time.Duration
		dst *time.Duration
	}{
		{EnvReconcileInterval, 10 * time.Minute, &cfg.ReconcileInterval},
		{EnvQuietAfter, 15 * time.Minute, &cfg.QuietAfter},
		{EnvDispatchDeadline, time.Hour, &cfg.DispatchDeadline},
		{EnvDispatchSettle, 2 * time.Minute, &cfg.DispatchSettle},
		{EnvForceCancelAfter, 2 * time.Minute, &cfg.ForceCancelAfter},
	} {
		v, err := time.ParseDuration(get(d.env, d.def.String()))
		if err != nil || v <= 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a positive duration such as 10m", d.env, get(d.env, "")))
			continue
		}
		*d.dst = v
	}
	if n, err := strconv.Atoi(get(EnvDatabaseMaxConns, "32")); err != nil || n <= 0 {
		errs = append(errs, fmt.Errorf("%s: %q is not a positive number of connections such as 32", EnvDatabaseMaxConns, get(EnvDatabaseMaxConns, "")))
	} else {
		cfg.DatabaseMaxConns = n
	}
	cfg.Instance = get(EnvInstance, defaultInstance(cfg.Addr))
	def := sqlstore.DefaultRetention
	for _, r := range []struct {
		env string
		def time.Duration
		dst *time.Duration
	}{
		{EnvRetentionDeliveries, def.Deliveries, &cfg.Retention.Deliveries},
		{EnvRetentionAudit, def.AuditEvents, &cfg.Retention.AuditEvents},
		{EnvRetentionJobs, def.Jobs, &cfg.Retention.Jobs},
	} {
		v, err := parseRetention(get(r.env, ""), r.def)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.env, err))
			continue
		}
		*r.dst = v
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(get(EnvLogLevel, "info"))); err != nil {
		errs = append(errs, fmt.Errorf("%s: %q is not a log level: use debug, info, warn or error", EnvLogLevel, get(EnvLogLevel, "")))
	}
	return cfg, errors.Join(errs...)
}

// validTenant is what the server accepts as a tenant: a name with one
// environment namespace of secrets (credentials.EnvTenantName), which
// also holds no '.', the separator of a tenant and its job ids.
func validTenant(t string) bool { return len(t) <= 63 && credentials.EnvTenantName(t) }

// SingleTenant returns the only tenant, when there is exactly one.
func (c Config) SingleTenant() (string, bool) {
	if len(c.Tenants) == 1 {
		return c.Tenants[0], true
	}
	return "", false
}

// canProveInstaller reports whether the install flow can prove who
// installed an installation: the App's OAuth client is configured.
func (c Config) canProveInstaller() bool {
	return c.App.ClientID != "" && !c.App.ClientSecret.IsZero()
}

// defaultInstance is the host name, with the listen port when there is
// one: two servers on one host listen on different ports.
func defaultInstance(addr string) string {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	if _, port, err := net.SplitHostPort(addr); err == nil && port != "" && port != "0" {
		host += ":" + port
	}
	return host
}

// parseRetention reads a retention period: days ("7d"), a Go duration
// ("36h"), or "0" to keep forever; "" is def.
func parseRetention(v string, def time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("%q is not a number of days such as 7d", v)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a period such as 7d or 36h, or 0 to keep forever", v)
	}
	return d, nil
}

// githubUnavailable says why GitHub App routes cannot work, naming the
// variables to set; "" when they can.
func (c Config) githubUnavailable() string {
	if c.AppErr == nil {
		return ""
	}
	// credentials.ErrNotConfigured keeps the seed's words ("GitHub bot
	// not configured"), which DESIGN.md fixes for errors.Is users; the
	// server's own messages say "App".
	return strings.Replace(c.AppErr.Error(), "GitHub bot not configured", "GitHub App not configured", 1)
}
