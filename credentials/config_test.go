package credentials_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/failure"
)

func TestLoadAppConfig(t *testing.T) {
	good := pkcs1PEM()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "app.pem")
	require.NoError(t, os.WriteFile(keyFile, []byte(good), 0o600))
	badFile := filepath.Join(dir, "bad.pem")
	require.NoError(t, os.WriteFile(badFile, []byte(ecPEM(t, false)), 0o600))

	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantID  int64
		wantVar string // EnvError.Var expected
		wantIs  error
		wantMsg string
		check   func(t *testing.T, c credentials.AppConfig)
	}{
		{name: "nothing set", env: map[string]string{}, wantIs: credentials.ErrNotConfigured, wantMsg: "GITHUB_APP_ID"},
		{name: "blank values count as unset", env: map[string]string{"GITHUB_APP_ID": " ", "GITHUB_APP_PRIVATE_KEY": ""}, wantIs: credentials.ErrNotConfigured},
		{name: "primary names", env: map[string]string{"GITHUB_APP_ID": "123", "GITHUB_APP_PRIVATE_KEY": good}, wantID: 123},
		{name: "bot names", env: map[string]string{"GITHUB_BOT_APP_ID": "77", "GITHUB_BOT_PRIVATE_KEY": good}, wantID: 77},
		{name: "first name wins", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_BOT_APP_ID": "2", "GITHUB_APP_PRIVATE_KEY": good, "GITHUB_BOT_PRIVATE_KEY": "junk"}, wantID: 1},
		{name: "key from file", env: map[string]string{"GITHUB_APP_ID": "5", "GITHUB_APP_PRIVATE_KEY_FILE": keyFile}, wantID: 5},
		{name: "inline key wins over file", env: map[string]string{"GITHUB_APP_ID": "5", "GITHUB_APP_PRIVATE_KEY": good, "GITHUB_APP_PRIVATE_KEY_FILE": "/nonexistent"}, wantID: 5},
		{name: "key with literal newlines repaired", env: map[string]string{"GITHUB_APP_ID": "9", "GITHUB_APP_PRIVATE_KEY": strings.ReplaceAll(good, "\n", `\n`)}, wantID: 9,
			check: func(t *testing.T, c credentials.AppConfig) {
				assert.NotContains(t, c.PrivateKey.Reveal(), `\n`)
				require.NoError(t, c.Validate())
			}},
		{name: "id only", env: map[string]string{"GITHUB_APP_ID": "1"}, wantVar: "GITHUB_APP_PRIVATE_KEY", wantIs: credentials.ErrNotConfigured, wantMsg: "GITHUB_APP_ID is"},
		{name: "key only", env: map[string]string{"GITHUB_APP_PRIVATE_KEY": good}, wantVar: "GITHUB_APP_ID", wantIs: credentials.ErrNotConfigured},
		{name: "non-numeric id", env: map[string]string{"GITHUB_APP_ID": "my-app", "GITHUB_APP_PRIVATE_KEY": good}, wantVar: "GITHUB_APP_ID", wantMsg: "not a positive number"},
		{name: "negative id", env: map[string]string{"GITHUB_BOT_APP_ID": "-3", "GITHUB_APP_PRIVATE_KEY": good}, wantVar: "GITHUB_BOT_APP_ID"},
		{name: "unreadable key file", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY_FILE": filepath.Join(dir, "missing.pem")}, wantVar: "GITHUB_APP_PRIVATE_KEY_FILE", wantMsg: "cannot read"},
		{name: "key file not RSA", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY_FILE": badFile}, wantVar: "GITHUB_APP_PRIVATE_KEY_FILE", wantIs: credentials.ErrInvalidKey},
		{name: "inline key not PEM", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_BOT_PRIVATE_KEY": "hunter2"}, wantVar: "GITHUB_BOT_PRIVATE_KEY", wantIs: credentials.ErrInvalidKey},
		{name: "bad API URL", env: map[string]string{"GITHUB_API_URL": "ftp://x"}, wantVar: "GITHUB_API_URL"},
		{name: "GHES URL normalised", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": good, "GITHUB_API_URL": "https://ghe.example.com", "GITHUB_APP_NAME": " my-app ", "GITHUB_APP_CLIENT_ID": "Iv1.x"}, wantID: 1,
			check: func(t *testing.T, c credentials.AppConfig) {
				assert.Equal(t, "https://ghe.example.com/api/v3/", c.BaseURL)
				assert.Equal(t, "my-app", c.Slug)
				assert.Equal(t, "Iv1.x", c.ClientID)
			}},
		{name: "OAuth client by bot names", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": good, "GITHUB_BOT_CLIENT_ID": "Iv1.bot", "GITHUB_BOT_CLIENT_SECRET": " s3cret "}, wantID: 1,
			check: func(t *testing.T, c credentials.AppConfig) {
				assert.Equal(t, "Iv1.bot", c.ClientID)
				assert.Equal(t, "s3cret", c.ClientSecret.Reveal())
				assert.NotContains(t, fmt.Sprint(c), "s3cret")
			}},
		{name: "OAuth client: first name wins", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": good, "GITHUB_APP_CLIENT_ID": "Iv1.app", "GITHUB_BOT_CLIENT_ID": "Iv1.bot", "GITHUB_APP_CLIENT_SECRET": "a", "GITHUB_BOT_CLIENT_SECRET": "b"}, wantID: 1,
			check: func(t *testing.T, c credentials.AppConfig) {
				assert.Equal(t, "Iv1.app", c.ClientID)
				assert.Equal(t, "a", c.ClientSecret.Reveal())
			}},
		{name: "API URL kept without App", env: map[string]string{"GITHUB_API_URL": "https://api.github.com"}, wantIs: credentials.ErrNotConfigured,
			check: func(t *testing.T, c credentials.AppConfig) { assert.Equal(t, "https://api.github.com/", c.BaseURL) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := credentials.LoadAppConfig(credentials.MapLookup(tc.env))
			if tc.check != nil {
				defer tc.check(t, cfg)
			}
			if tc.wantVar == "" && tc.wantIs == nil && tc.wantMsg == "" {
				require.NoError(t, err)
				assert.Equal(t, tc.wantID, cfg.AppID)
				require.NoError(t, cfg.Validate())
				return
			}
			require.Error(t, err)
			assert.Equal(t, failure.ErrInvalidIntegration, failure.Class(err), "every error of the App config is the integration's: %v", err)
			if tc.wantVar != "" {
				var ee *credentials.EnvError
				require.True(t, errors.As(err, &ee), "want *EnvError, got %T: %v", err, err)
				assert.Equal(t, tc.wantVar, ee.Var)
				assert.True(t, strings.HasPrefix(err.Error(), tc.wantVar+": "), "error names the variable: %v", err)
			}
			if tc.wantIs != nil {
				assert.ErrorIs(t, err, tc.wantIs)
			}
			if tc.wantMsg != "" {
				assert.Contains(t, err.Error(), tc.wantMsg)
			}
		})
	}
}

func TestNotConfiguredMessage(t *testing.T) {
	_, err := credentials.LoadAppConfig(credentials.MapLookup(nil))
	require.ErrorIs(t, err, credentials.ErrNotConfigured)
	assert.Equal(t, "GitHub bot not configured: set GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY (or GITHUB_APP_PRIVATE_KEY_FILE)", err.Error())
}

func TestAppConfigValidate(t *testing.T) {
	assert.ErrorIs(t, credentials.AppConfig{}.Validate(), credentials.ErrNotConfigured)
	assert.ErrorIs(t, credentials.AppConfig{PrivateKey: credentials.NewSecret(pkcs1PEM())}.Validate(), credentials.ErrNotConfigured)
	assert.ErrorIs(t, credentials.AppConfig{AppID: 1}.Validate(), credentials.ErrNotConfigured)
	assert.ErrorIs(t, credentials.AppConfig{AppID: 1, PrivateKey: credentials.NewSecret("nope")}.Validate(), credentials.ErrInvalidKey)
	err := credentials.AppConfig{AppID: 1, PrivateKey: credentials.NewSecret(pkcs1PEM()), BaseURL: "::"}.Validate()
	assert.ErrorContains(t, err, "API base URL")
	assert.Equal(t, failure.ErrInvalidIntegration, failure.Class(err))
	assert.NoError(t, credentials.AppConfig{AppID: 1, PrivateKey: credentials.NewSecret(pkcs8PEM(t))}.Validate())
}
