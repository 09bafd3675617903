package credentials

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Type says what kind of credential authenticates a request. Hosts see it
// in AuditEvent.CredentialType and dispatch.Receipt.
type Type string

// Credential types.
const (
	// TypeInstallation is a GitHub App installation token.
	TypeInstallation Type = "installation"
	// TypeStaticToken is a token given by the host: a personal access
	// token or another App's token.
	TypeStaticToken Type = "static_token"
)

// TokenSource issues installation tokens. github.TokenCache is the
// implementation hosts use; a host with a token service of its own, or a
// test, implements it instead (see TokenSourceFunc). A failure should be a
// *TokenError, so that callers classify it.
type TokenSource interface {
	Token(ctx context.Context, installationID int64) (InstallationToken, error)
}

// InstallationToken is an installation access token and what GitHub said
// about it: what a TokenSource returns. Its value is a Secret.
type InstallationToken struct {
	Value     Secret
	ExpiresAt time.Time
	// Permissions maps a permission name ("actions", "contents", ...) to
	// "read", "write" or "admin", as granted to the installation.
	Permissions map[string]string
}

// Credential is the outcome of credential resolution: how to authenticate
// GitHub requests for one target. Hosts get one from Resolver.Resolve, or
// build one (StaticToken, ForInstallation) for GitHub requests of their
// own, and hand it to package github for a client. Its token never
// appears in its String, Format, MarshalJSON or LogValue output.
type Credential struct {
	Type Type
	// InstallationID is set for TypeInstallation.
	InstallationID int64
	// Source says why this credential was chosen, for logs and errors,
	// e.g. "installationId in job config" or "secret DEPLOY_TOKEN".
	Source string

	static Secret
	tokens TokenSource
}

// StaticToken returns a credential that always sends token. Hosts use it
// for GitHub requests of their own with a token they hold
// (github.ClientFactory.Client).
func StaticToken(token Secret, source string) Credential {
	return Credential{Type: TypeStaticToken, Source: source, static: token}
}

// ForInstallation returns a credential that authenticates as an
// installation, with tokens from src. Hosts use it for requests of their
// own as an installation, outside a job's resolution (after an install
// callback, say).
func ForInstallation(src TokenSource, installationID int64, source string) Credential {
	return Credential{Type: TypeInstallation, InstallationID: installationID, Source: source, tokens: src}
}

// IsZero reports whether c is the zero Credential, which a failed
// resolution returns.
func (c Credential) IsZero() bool { return c.Type == "" }

// Token returns the token to send now: the static token, or a current
// installation token from the credential's TokenSource. Package github
// calls it for every request; hosts rarely need it.
func (c Credential) Token(ctx context.Context) (Secret, error) {
	switch c.Type {
	case TypeStaticToken:
		return c.static, nil
	case TypeInstallation:
		if c.tokens == nil {
			return Secret{}, fmt.Errorf("%w: installation credential without a token source", ErrNotConfigured)
		}
		tok, err := c.tokens.Token(ctx, c.InstallationID)
		if err != nil {
			return Secret{}, err
		}
		return tok.Value, nil
	}
	return Secret{}, fmt.Errorf("%w: empty credential", ErrNotConfigured)
}

// String describes the credential without its token.
func (c Credential) String() string {
	switch c.Type {
	case TypeInstallation:
		return fmt.Sprintf("installation %d (%s)", c.InstallationID, c.Source)
	case "":
		return "no credential"
	}
	return fmt.Sprintf("%s (%s)", c.Type, c.Source)
}

// Format implements fmt.Formatter so that no verb prints the token.
func (c Credential) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// MarshalJSON implements json.Marshaler without the token.
func (c Credential) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Type           Type   `json:"type"`
		InstallationID int64  `json:"installation_id,omitempty"`
		Source         string `json:"source,omitempty"`
	}{c.Type, c.InstallationID, c.Source})
}

// LogValue implements slog.LogValuer without the token.
func (c Credential) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("type", string(c.Type))}
	if c.InstallationID != 0 {
		attrs = append(attrs, slog.Int64("installation_id", c.InstallationID))
	}
	if c.Source != "" {
		attrs = append(attrs, slog.String("source", c.Source))
	}
	return slog.GroupValue(attrs...)
}

// String describes the token without its value.
func (t InstallationToken) String() string {
	return fmt.Sprintf("installation token %s expiring %s", t.Value, t.ExpiresAt.UTC().Format(time.RFC3339))
}

// Format implements fmt.Formatter so that no verb prints the token.
func (t InstallationToken) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, t.String()) }

// LogValue implements slog.LogValuer without the token.
func (t InstallationToken) LogValue() slog.Value {
	return slog.GroupValue(slog.Time("expires_at", t.ExpiresAt))
}

// TokenSourceFunc adapts a function to TokenSource, for tests and hosts
// with a token service of their own.
type TokenSourceFunc func(ctx context.Context, installationID int64) (InstallationToken, error)

// Token implements TokenSource.
func (f TokenSourceFunc) Token(ctx context.Context, installationID int64) (InstallationToken, error) {
	return f(ctx, installationID)
}
