package credentials_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/failure"
)

// TokenError is what every TokenSource reports; its text and class come
// from its fields alone.
func TestTokenError(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       *credentials.TokenError
		text      string
		transient bool
	}{
		{"refused with status line", &credentials.TokenError{InstallationID: 7, StatusCode: 404, Status: "404 Not Found", Message: "Not Found"},
			`failed to get installation token for installation 7: GitHub answered 404 Not Found ("Not Found"); this App has no such installation`, false},
		{"status code alone", &credentials.TokenError{InstallationID: 7, StatusCode: 503},
			"failed to get installation token for installation 7: GitHub answered 503; GitHub could not be reached", true},
		{"bad JWT", &credentials.TokenError{InstallationID: 7, StatusCode: 401, Status: "401 Unauthorized"},
			"GitHub answered 401 Unauthorized; GitHub rejected the App's JWT", false},
		{"forbidden", &credentials.TokenError{InstallationID: 7, StatusCode: 403, Status: "403 Forbidden"},
			"the installation may be suspended", false},
		{"rate limited", &credentials.TokenError{InstallationID: 7, StatusCode: 403, Status: "403 Forbidden", RateLimited: true},
			"GitHub answered 403 Forbidden", true},
		{"too many requests", &credentials.TokenError{InstallationID: 7, StatusCode: 429}, "it is retried", true},
		{"not reached", &credentials.TokenError{InstallationID: 7, Err: errors.New("dial tcp: connection refused")},
			"installation 7: dial tcp: connection refused; GitHub could not be reached", true},
		{"key cannot sign", &credentials.TokenError{InstallationID: 7, Err: credentials.ErrInvalidKey}, "invalid GitHub App private key", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Contains(t, tc.err.Error(), tc.text)
			assert.ErrorIs(t, tc.err, credentials.ErrInstallationToken)
			assert.Equal(t, tc.transient, failure.IsTransient(tc.err))
			want := failure.ErrInvalidIntegration
			if tc.transient {
				want = failure.ErrTransient
			}
			assert.Equal(t, want, failure.Class(tc.err))
		})
	}
}
