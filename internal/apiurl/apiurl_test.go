package apiurl

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseBaseURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "https://api.github.com/"},
		{"   ", "https://api.github.com/"},
		{"https://api.github.com", "https://api.github.com/"},
		{"https://api.github.com/", "https://api.github.com/"},
		// GitHub Enterprise Server: /api/v3/ is added when missing.
		{"https://ghe.example.com", "https://ghe.example.com/api/v3/"},
		{"https://ghe.example.com/", "https://ghe.example.com/api/v3/"},
		{"https://ghe.example.com/api/v3", "https://ghe.example.com/api/v3/"},
		{"https://ghe.example.com/api/v3/", "https://ghe.example.com/api/v3/"},
		{" https://ghe.example.com ", "https://ghe.example.com/api/v3/"},
		{"https://ghe.example.com:8443", "https://ghe.example.com:8443/api/v3/"},
		{"https://proxy.example.com/github", "https://proxy.example.com/github/api/v3/"},
		{"https://proxy.example.com/github/api/v3/", "https://proxy.example.com/github/api/v3/"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/api/v3/"},
		{"http://127.0.0.1:8080/api/v3/", "http://127.0.0.1:8080/api/v3/"},
		{"http://[::1]:8080", "http://[::1]:8080/api/v3/"},
		// API hosts (api.*, *.api.*) keep their path as it is.
		{"https://api.acme.ghe.com", "https://api.acme.ghe.com/"},
		{"https://foo.api.example.com/custom", "https://foo.api.example.com/custom/"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			u, err := ParseBaseURL(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, u.String())
			// Normalising is idempotent.
			again, err := ParseBaseURL(u.String())
			require.NoError(t, err)
			assert.Equal(t, tc.want, again.String())
		})
	}
}

func TestParseBaseURLRejects(t *testing.T) {
	for _, bad := range []string{
		"ftp://ghe.example.com",
		"ghe.example.com",
		"api.github.com",
		"/api/v3/",
		"://",
		"https://",
		"https:///api/v3",
		"https://user:pw@ghe.example.com",
		"https://token@ghe.example.com",
		"https://ghe.example.com/?x=1",
		"https://ghe.example.com/#frag",
		"https://ghe.example.com/%zz",
		"http://[::1",
	} {
		t.Run(bad, func(t *testing.T) {
			u, err := ParseBaseURL(bad)
			require.Error(t, err)
			assert.Nil(t, u)
			assert.Contains(t, err.Error(), "API base URL")
		})
	}
}

func TestUploadURL(t *testing.T) {
	for _, tc := range []struct{ base, want string }{
		{"", "https://uploads.github.com/"},
		{"https://ghe.example.com", "https://ghe.example.com/api/uploads/"},
		{"https://proxy.example.com/github", "https://proxy.example.com/github/api/uploads/"},
		{"http://127.0.0.1:8080/api/v3/", "http://127.0.0.1:8080/api/uploads/"},
	} {
		t.Run(tc.base, func(t *testing.T) {
			base, err := ParseBaseURL(tc.base)
			require.NoError(t, err)
			before := base.String()
			assert.Equal(t, tc.want, UploadURL(base).String())
			assert.Equal(t, before, base.String(), "the base URL is not modified")
		})
	}
}
