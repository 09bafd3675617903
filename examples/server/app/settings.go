package app

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/webhook"
)

// Environment variables of operations.
const (
	// EnvWebhookSecretFile names a file with one webhook secret per line,
	// for secrets that contain commas.
	EnvWebhookSecretFile = "GITHUB_WEBHOOK_SECRET_FILE"
	// EnvAccessLog turns on one INFO line per HTTP request (true/false).
	EnvAccessLog = "GHBRIDGE_ACCESS_LOG"
	// EnvPublicURL is the server's URL as GitHub reaches it
	// (https://ghbridge.example.com); repository webhooks point at
	// PUBLIC_URL/api/github/webhook.
	EnvPublicURL = "GHBRIDGE_PUBLIC_URL"
	// EnvRepoWebhooks turns the repository webhooks of static-token
	// repositories on or off (default on when GHBRIDGE_PUBLIC_URL is set).
	EnvRepoWebhooks = "GHBRIDGE_REPO_WEBHOOKS"
)

// Operations are the settings of how the server is run and observed.
type Operations struct {
	// AccessLog logs every HTTP request at INFO.
	AccessLog bool
	// PublicURL is where GitHub reaches the server; empty when unknown.
	PublicURL string
	// RepoWebhooks makes the server create and repair the webhook of each
	// repository used through a static token (needs PublicURL and a
	// webhook secret).
	RepoWebhooks bool
}

// loadWebhookSecrets reads the webhook secrets: GITHUB_WEBHOOK_SECRET,
// else GITHUB_APP_WEBHOOK_SECRET (comma-separated during a rotation),
// else GITHUB_WEBHOOK_SECRET_FILE (one per line). None set is no error
// (the webhook route is off); one set that yields no secret is.
func loadWebhookSecrets(lookup credentials.LookupFunc) ([]string, error) {
	for _, name := range []string{EnvWebhookSecret, EnvAppWebhookSecret} {
		v, ok := lookup(name)
		if !ok || v == "" {
			continue
		}
		s := webhook.ParseSecrets(v)
		if len(s) == 0 {
			return nil, fmt.Errorf("%s: set but holds no secret; remove it or set the App's webhook secret", name)
		}
		return s, nil
	}
	path, ok := lookup(EnvWebhookSecretFile)
	if !ok || strings.TrimSpace(path) == "" {
		return nil, nil
	}
	b, err := os.ReadFile(strings.TrimSpace(path))
	if err != nil {
		return nil, fmt.Errorf("%s: cannot read the secrets file: %w", EnvWebhookSecretFile, err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %s holds no secret (one per line)", EnvWebhookSecretFile, path)
	}
	return out, nil
}

func loadOperations(lookup credentials.LookupFunc) (Operations, error) {
	var ops Operations
	get := func(k string) (string, bool) {
		v, ok := lookup(k)
		v = strings.TrimSpace(v)
		return v, ok && v != ""
	}
	boolean := func(k string, def bool) (bool, error) {
		v, ok := get(k)
		if !ok {
			return def, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return def, fmt.Errorf("%s: %q is not a boolean: use true or false", k, v)
		}
		return b, nil
	}
	var err error
	if ops.AccessLog, err = boolean(EnvAccessLog, false); err != nil {
		return ops, err
	}
	if v, ok := get(EnvPublicURL); ok {
		u, perr := url.Parse(v)
		if perr != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return ops, fmt.Errorf("%s: %q is not an http(s) URL such as https://ghbridge.example.com", EnvPublicURL, v)
		}
		ops.PublicURL = strings.TrimSuffix(u.String(), "/")
	}
	if ops.RepoWebhooks, err = boolean(EnvRepoWebhooks, ops.PublicURL != ""); err != nil {
		return ops, err
	}
	if ops.RepoWebhooks && ops.PublicURL == "" {
		return ops, fmt.Errorf("%s: repository webhooks need %s, the URL GitHub delivers to", EnvRepoWebhooks, EnvPublicURL)
	}
	return ops, nil
}

// WebhookURL is where GitHub delivers to this server; "" when the public
// URL is not configured.
func (o Operations) WebhookURL() string {
	if o.PublicURL == "" {
		return ""
	}
	return o.PublicURL + "/api/github/webhook"
}
