package github

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/credentials"
)

type markerKey struct{}

// A caller that missed the cache just as another caller's flight ended must
// reuse that flight's token, not start a second exchange.
func TestLateJoinerReusesFinishedFlight(t *testing.T) {
	t.Parallel()
	var exchanges atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := exchanges.Add(1)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"token": "ghs_" + string(rune('a'+n)), "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		})
	}))
	defer srv.Close()
	key, err := rsa.GenerateKey(rand.Reader, 1024) // the server does not verify it; 1024 bits generate faster
	require.NoError(t, err)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	f, err := NewClientFactory(WithBaseURL(srv.URL))
	require.NoError(t, err)
	c, err := f.TokenCache(credentials.AppConfig{AppID: 1, PrivateKey: credentials.NewSecret(string(pemKey)), BaseURL: srv.URL + "/api/v3/"})
	require.NoError(t, err)

	missed, firstDone := make(chan struct{}), make(chan struct{})
	c.hookAfterMiss = func(ctx context.Context) {
		if ctx.Value(markerKey{}) != nil {
			close(missed)
			<-firstDone // hold the late caller until the first flight has ended
		}
	}
	late := make(chan credentials.InstallationToken)
	go func() {
		tok, err := c.Token(context.WithValue(context.Background(), markerKey{}, true), 7)
		assert.NoError(t, err)
		late <- tok
	}()
	<-missed
	first, err := c.Token(context.Background(), 7)
	require.NoError(t, err)
	close(firstDone)
	second := <-late
	assert.Equal(t, first.Value.Reveal(), second.Value.Reveal())
	assert.EqualValues(t, 1, exchanges.Load())
}
