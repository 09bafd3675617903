package credentials

import (
	"crypto/rsa"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/ghbridge/ghbridge/failure"
	"github.com/ghbridge/ghbridge/internal/apiurl"
)

// Environment variables read by LoadAppConfig. Where two names are listed
// for one setting, the first wins. Hosts name them in their own setup
// messages (the reference server's 503 answers do).
const (
	EnvAppID          = "GITHUB_APP_ID"
	EnvBotAppID       = "GITHUB_BOT_APP_ID"
	EnvPrivateKey     = "GITHUB_APP_PRIVATE_KEY"
	EnvBotPrivateKey  = "GITHUB_BOT_PRIVATE_KEY"
	EnvPrivateKeyFile = "GITHUB_APP_PRIVATE_KEY_FILE"
	EnvClientID       = "GITHUB_APP_CLIENT_ID"
	EnvBotClientID    = "GITHUB_BOT_CLIENT_ID"
	EnvClientSecret   = "GITHUB_APP_CLIENT_SECRET"
	EnvBotSecret      = "GITHUB_BOT_CLIENT_SECRET"
	EnvAppName        = "GITHUB_APP_NAME"
	EnvBotName        = "GITHUB_BOT_NAME"
	EnvAPIURL         = "GITHUB_API_URL"
)

// AppConfig identifies a GitHub App and where its API lives. Hosts load it
// with LoadAppConfig, or fill it from a configuration of their own, and
// pass it to ghbridge.New (Config.App) or github.ClientFactory.TokenCache.
type AppConfig struct {
	// AppID is the numeric App id from the App's settings page.
	AppID int64
	// ClientID is the App's client id ("Iv1..."). Optional; when set it is
	// used as the JWT issuer, as GitHub recommends.
	ClientID string
	// ClientSecret is the App's OAuth client secret. Optional; with
	// ClientID it lets a host prove who installed an installation (the
	// install callback's code exchange).
	ClientSecret Secret
	// Slug is the App's URL name, used to build its install URL. Optional.
	Slug string
	// PrivateKey is the App's PEM private key (PKCS#1 or PKCS#8).
	PrivateKey Secret
	// BaseURL is the REST API root: empty for github.com, or a GitHub
	// Enterprise Server URL such as https://ghe.example.com/api/v3/.
	BaseURL string
}

// IsZero reports whether no App is configured at all: a host then runs
// with static tokens only.
func (c AppConfig) IsZero() bool { return c.AppID == 0 && c.PrivateKey.IsZero() }

// Validate checks that the App id and key are set, the key parses and
// BaseURL is an API URL. LoadAppConfig has done so; hosts that fill an
// AppConfig themselves call it at startup.
func (c AppConfig) Validate() error {
	_, err := c.key()
	return err
}

func (c AppConfig) key() (*rsa.PrivateKey, error) {
	switch {
	case c.IsZero():
		return nil, fmt.Errorf("%w: no App id and no private key", ErrNotConfigured)
	case c.AppID <= 0:
		return nil, fmt.Errorf("%w: the App id is missing", ErrNotConfigured)
	case c.PrivateKey.IsZero():
		return nil, fmt.Errorf("%w: the App private key is missing", ErrNotConfigured)
	}
	if _, err := apiurl.ParseBaseURL(c.BaseURL); err != nil {
		return nil, failure.Mark(failure.ErrInvalidIntegration, err)
	}
	return ParsePrivateKey(c.PrivateKey.Reveal())
}

// String describes the config without its key.
func (c AppConfig) String() string {
	key := "no key"
	if !c.PrivateKey.IsZero() {
		key = "key " + redacted
	}
	base := c.BaseURL
	if base == "" {
		base = apiurl.DefaultBaseURL
	}
	return fmt.Sprintf("GitHub App %d (%s) at %s", c.AppID, key, base)
}

// Format implements fmt.Formatter so that no verb prints the key.
func (c AppConfig) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// LogValue implements slog.LogValuer without the key and client secret.
func (c AppConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int64("app_id", c.AppID),
		slog.String("client_id", c.ClientID),
		slog.String("base_url", c.BaseURL),
		slog.Bool("has_key", !c.PrivateKey.IsZero()),
		slog.Bool("has_client_secret", !c.ClientSecret.IsZero()),
	)
}

// LookupFunc reads an environment variable; os.LookupEnv is one. Hosts
// pass one to LoadAppConfig and EnvSecretStore.
type LookupFunc func(key string) (string, bool)

// MapLookup is a LookupFunc reading m instead of the environment, for
// configuration that comes from elsewhere (a file, a test, a demo).
func MapLookup(m map[string]string) LookupFunc {
	return func(key string) (string, bool) { v, ok := m[key]; return v, ok }
}

// LoadAppConfig reads the App config from environment variables through
// lookup (pass os.LookupEnv for the process environment):
//
//	GITHUB_APP_ID / GITHUB_BOT_APP_ID                 numeric App id
//	GITHUB_APP_PRIVATE_KEY / GITHUB_BOT_PRIVATE_KEY   PEM text
//	GITHUB_APP_PRIVATE_KEY_FILE                       path to the PEM file
//	GITHUB_APP_CLIENT_ID / GITHUB_BOT_CLIENT_ID       client id (optional)
//	GITHUB_APP_CLIENT_SECRET / GITHUB_BOT_CLIENT_SECRET  OAuth client secret (optional)
//	GITHUB_APP_NAME / GITHUB_BOT_NAME                 App slug (optional)
//	GITHUB_API_URL                                    API base URL (optional)
//
// The key is repaired (see ParsePrivateKey), kept in canonical PEM form
// and parsed, so that a bad key fails here rather than at the first token
// exchange. When neither an id nor a key is
// set the error matches ErrNotConfigured and the returned config still holds
// BaseURL, for a static-token setup. Every other error is an *EnvError
// naming the variable.
func LoadAppConfig(lookup LookupFunc) (AppConfig, error) {
	get := func(names ...string) (string, string) {
		for _, n := range names {
			if v, ok := lookup(n); ok && strings.TrimSpace(v) != "" {
				return n, v
			}
		}
		return "", ""
	}
	var cfg AppConfig
	if _, v := get(EnvAPIURL); v != "" {
		u, err := apiurl.ParseBaseURL(v)
		if err != nil {
			return cfg, &EnvError{Var: EnvAPIURL, Err: err}
		}
		cfg.BaseURL = u.String()
	}
	_, cfg.ClientID = get(EnvClientID, EnvBotClientID)
	if _, v := get(EnvClientSecret, EnvBotSecret); v != "" {
		cfg.ClientSecret = NewSecret(strings.TrimSpace(v))
	}
	_, cfg.Slug = get(EnvAppName, EnvBotName)
	cfg.ClientID, cfg.Slug = strings.TrimSpace(cfg.ClientID), strings.TrimSpace(cfg.Slug)

	idVar, idText := get(EnvAppID, EnvBotAppID)
	keyVar, keyText := get(EnvPrivateKey, EnvBotPrivateKey)
	if keyVar == "" {
		if fileVar, path := get(EnvPrivateKeyFile); fileVar != "" {
			b, err := os.ReadFile(strings.TrimSpace(path))
			if err != nil {
				return cfg, &EnvError{Var: fileVar, Err: fmt.Errorf("cannot read the private key file: %w", err)}
			}
			keyVar, keyText = fileVar, string(b)
		}
	}
	// A set id is checked first: "set but invalid" is an error of its
	// own, even while the key is missing.
	var id int64
	if idVar != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(idText), 10, 64)
		if err != nil || n <= 0 {
			return cfg, &EnvError{Var: idVar, Err: fmt.Errorf("%q is not a positive number; use the numeric App ID from the App's settings page", idText)}
		}
		id = n
	}
	switch {
	case idVar == "" && keyVar == "":
		return cfg, fmt.Errorf("%w: set %s and %s (or %s)", ErrNotConfigured, EnvAppID, EnvPrivateKey, EnvPrivateKeyFile)
	case idVar == "":
		return cfg, &EnvError{Var: EnvAppID, Err: fmt.Errorf("%w: not set, but %s is", ErrNotConfigured, keyVar)}
	case keyVar == "":
		return cfg, &EnvError{Var: EnvPrivateKey, Err: fmt.Errorf("%w: neither it nor %s is set, but %s is", ErrNotConfigured, EnvPrivateKeyFile, idVar)}
	}
	cfg.AppID = id
	fixed, err := repairPEM(keyText)
	if err == nil {
		_, err = ParsePrivateKey(fixed)
	}
	if err != nil {
		return cfg, &EnvError{Var: keyVar, Err: err}
	}
	cfg.PrivateKey = NewSecret(fixed)
	return cfg, nil
}
