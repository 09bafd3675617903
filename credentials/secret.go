package credentials

import (
	"fmt"
	"io"
	"log/slog"
)

const redacted = "[redacted]"

// Secret holds a token or key so that it cannot be printed, marshalled or
// logged by accident: every fmt verb, encoding/json, encoding.TextMarshaler
// and slog show "[redacted]". Reveal returns the value for the one place
// that needs it, an Authorization header. Hosts wrap the tokens and keys
// they hand to ghbridge in one.
type Secret struct{ v string }

// NewSecret wraps s, as soon as a host has read it.
func NewSecret(s string) Secret { return Secret{v: s} }

// Reveal returns the secret value. Never log it.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// String implements fmt.Stringer: "[redacted]", or "" for an empty
// secret.
func (s Secret) String() string {
	if s.v == "" {
		return ""
	}
	return redacted
}

// Format implements fmt.Formatter for every verb, including %#v.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalText implements encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
