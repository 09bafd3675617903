package credentials_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/credentials"
)

// render prints v every way a program might: fmt verbs, JSON, and slog
// with both handlers.
func render(t *testing.T, v any) string {
	t.Helper()
	var b strings.Builder
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		fmt.Fprintf(&b, verb+"\n", v)
	}
	fmt.Fprintln(&b, v)
	j, err := json.Marshal(v)
	require.NoError(t, err)
	b.Write(j)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "v", v)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "v", v)
	b.Write(logs.Bytes())
	// Values nested in exported fields of other structs.
	fmt.Fprintf(&b, "%+v\n", struct{ V any }{v})
	return b.String()
}

func TestSecretsNeverRender(t *testing.T) {
	const tok = "ghs_SUPERSECRET123"
	pemKey := pkcs1PEM()
	keyBody := strings.Split(pemKey, "\n")[1]
	for name, v := range map[string]any{
		"Secret":            credentials.NewSecret(tok),
		"Secret pointer":    ptr(credentials.NewSecret(tok)),
		"static credential": credentials.StaticToken(credentials.NewSecret(tok), "test"),
		"installation token": credentials.InstallationToken{
			Value: credentials.NewSecret(tok), Permissions: map[string]string{"actions": "write"},
		},
		"target":     credentials.Target{Owner: "a", Repo: "b", StaticToken: credentials.NewSecret(tok)},
		"app config": credentials.AppConfig{AppID: 1, PrivateKey: credentials.NewSecret(pemKey)},
	} {
		t.Run(name, func(t *testing.T) {
			out := render(t, v)
			assert.NotContains(t, out, tok)
			assert.NotContains(t, out, "SUPERSECRET")
			assert.NotContains(t, out, keyBody)
			assert.NotContains(t, out, "PRIVATE KEY-----\nMII")
		})
	}
	assert.Equal(t, "", credentials.Secret{}.String(), "an empty secret shows as empty, so that missing values stay visible")
}

func ptr[T any](v T) *T { return &v }
