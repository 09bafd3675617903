package app_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/examples/server/app"
	"github.com/ghbridge/ghbridge/github/githubtest"
)

// A GitHub setting that is set but invalid stops the server at start,
// naming the variable; only unset settings turn the GitHub routes off.
func TestConfigFailsFastOnBrokenGitHubSettings(t *testing.T) {
	t.Parallel()
	fake := githubtest.NewServer(githubtest.WithContract(t))
	t.Cleanup(fake.Close)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	require.NoError(t, os.WriteFile(garbage, []byte("not a key"), 0o600))
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\n\n"), 0o600))
	for _, tc := range []struct {
		name string
		vars map[string]string
		want []string
	}{
		{"app id not a number", map[string]string{"GITHUB_APP_ID": "abc"}, []string{"GITHUB_APP_ID", `"abc" is not a positive number`}},
		{"app id not a number, no key", map[string]string{"GITHUB_APP_ID": "abc", "GITHUB_APP_PRIVATE_KEY": ""}, []string{"GITHUB_APP_ID", `"abc" is not a positive number`}},
		{"key file missing", map[string]string{"GITHUB_APP_PRIVATE_KEY": "", "GITHUB_APP_PRIVATE_KEY_FILE": filepath.Join(dir, "nope.pem")}, []string{"GITHUB_APP_PRIVATE_KEY_FILE", "cannot read"}},
		{"garbage PEM", map[string]string{"GITHUB_APP_PRIVATE_KEY": "", "GITHUB_APP_PRIVATE_KEY_FILE": garbage}, []string{"GITHUB_APP_PRIVATE_KEY_FILE"}},
		{"garbage PEM text", map[string]string{"GITHUB_APP_PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----"}, []string{"GITHUB_APP_PRIVATE_KEY"}},
		{"API URL", map[string]string{"GITHUB_API_URL": "ftp://x"}, []string{"GITHUB_API_URL"}},
		{"webhook secret of commas", map[string]string{"GITHUB_WEBHOOK_SECRET": " , "}, []string{"GITHUB_WEBHOOK_SECRET", "no secret"}},
		{"webhook secret file missing", map[string]string{"GITHUB_WEBHOOK_SECRET": "", "GITHUB_WEBHOOK_SECRET_FILE": filepath.Join(dir, "nope")}, []string{"GITHUB_WEBHOOK_SECRET_FILE", "cannot read"}},
		{"webhook secret file empty", map[string]string{"GITHUB_WEBHOOK_SECRET": "", "GITHUB_WEBHOOK_SECRET_FILE": empty}, []string{"GITHUB_WEBHOOK_SECRET_FILE", "no secret"}},
		{"log level", map[string]string{"GHBRIDGE_LOG_LEVEL": "loud"}, []string{"GHBRIDGE_LOG_LEVEL", "debug, info, warn or error"}},
		{"access log", map[string]string{"GHBRIDGE_ACCESS_LOG": "sometimes"}, []string{"GHBRIDGE_ACCESS_LOG", "true or false"}},
		{"public URL", map[string]string{"GHBRIDGE_PUBLIC_URL": "ghbridge.example.com"}, []string{"GHBRIDGE_PUBLIC_URL"}},
		{"repo hooks without URL", map[string]string{"GHBRIDGE_REPO_WEBHOOKS": "true"}, []string{"GHBRIDGE_REPO_WEBHOOKS", "GHBRIDGE_PUBLIC_URL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vars := baseVars(fake, "sqlite:"+filepath.Join(t.TempDir(), "db"))
			for k, v := range tc.vars {
				vars[k] = v
			}
			_, err := app.LoadConfig(lookup(vars))
			require.Error(t, err)
			for _, w := range tc.want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}

func TestConfigUnsetGitHubSettingsTurnRoutesOff(t *testing.T) {
	t.Parallel()
	cfg, err := app.LoadConfig(lookup(map[string]string{}))
	require.NoError(t, err)
	require.Error(t, cfg.AppErr)
	assert.Empty(t, cfg.WebhookSecrets)

	cfg, err = app.LoadConfig(lookup(map[string]string{"GITHUB_APP_WEBHOOK_SECRET": "s1"}))
	require.NoError(t, err)
	assert.Equal(t, []string{"s1"}, cfg.WebhookSecrets, "the seed's name is accepted")

	file := filepath.Join(t.TempDir(), "secrets")
	require.NoError(t, os.WriteFile(file, []byte("new,with,commas\nold\n"), 0o600))
	cfg, err = app.LoadConfig(lookup(map[string]string{"GITHUB_WEBHOOK_SECRET_FILE": file}))
	require.NoError(t, err)
	assert.Equal(t, []string{"new,with,commas", "old"}, cfg.WebhookSecrets)

	cfg, err = app.LoadConfig(lookup(map[string]string{"GHBRIDGE_PUBLIC_URL": "https://ghbridge.example.com/"}))
	require.NoError(t, err)
	assert.True(t, cfg.RepoWebhooks, "on by default with a public URL")
	assert.Equal(t, "https://ghbridge.example.com/api/github/webhook", cfg.WebhookURL())
}
