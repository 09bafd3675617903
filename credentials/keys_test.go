package credentials_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/credentials"
)

// testKey is generated once: RSA generation is slow.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func pkcs1PEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testKey())}))
}

func pkcs8PEM(t testing.TB) string {
	der, err := x509.MarshalPKCS8PrivateKey(testKey())
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func ecPEM(t testing.TB, pkcs8 bool) string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	if pkcs8 {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		require.NoError(t, err)
		return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	der, err := x509.MarshalECPrivateKey(k)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
}

func TestParsePrivateKeyForms(t *testing.T) {
	good := pkcs1PEM()
	oneLine := strings.ReplaceAll(strings.TrimSpace(good), "\n", `\n`)
	indented := "    " + strings.ReplaceAll(good, "\n", "\n    ")
	spaced := strings.ReplaceAll(strings.TrimSpace(good), "\n", " ")
	crlf := strings.ReplaceAll(good, "\n", "\r\n")
	literalCRLF := strings.ReplaceAll(strings.TrimSpace(good), "\n", `\r\n`)

	for name, raw := range map[string]string{
		"pkcs1":                good,
		"pkcs8":                pkcs8PEM(t),
		"literal backslash n":  oneLine,
		"literal CRLF escapes": literalCRLF,
		"quoted one line":      `"` + oneLine + `"`,
		"single quoted":        "'" + good + "'",
		"indented (YAML)":      indented,
		"folded with spaces":   spaced,
		"CRLF":                 crlf,
		"base64 of the file":   base64.StdEncoding.EncodeToString([]byte(good)),
		"surrounding blanks":   "\n\n  " + good + "\n\n",
	} {
		t.Run(name, func(t *testing.T) {
			k, err := credentials.ParsePrivateKey(raw)
			require.NoError(t, err)
			assert.True(t, k.Equal(testKey()), "parsed a different key")
			// LoadAppConfig keeps the repaired, canonical PEM.
			cfg, err := credentials.LoadAppConfig(credentials.MapLookup(map[string]string{credentials.EnvAppID: "1", credentials.EnvPrivateKey: raw}))
			require.NoError(t, err)
			fixed := cfg.PrivateKey.Reveal()
			assert.True(t, strings.HasPrefix(fixed, "-----BEGIN "))
			for _, line := range strings.Split(strings.TrimSpace(fixed), "\n") {
				assert.LessOrEqual(t, len(line), 64+len("-----BEGIN RSA PRIVATE KEY-----"))
				assert.Equal(t, strings.TrimSpace(line), line)
			}
		})
	}
}

func TestParsePrivateKeyRejects(t *testing.T) {
	good := pkcs1PEM()
	lines := strings.Split(strings.TrimSpace(good), "\n")
	pub, err := x509.MarshalPKIXPublicKey(&testKey().PublicKey)
	require.NoError(t, err)
	encrypted := strings.Replace(good, "-----BEGIN RSA PRIVATE KEY-----\n",
		"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00000000000000000000000000000000\n\n", 1)

	for _, tc := range []struct {
		name, raw, want string
	}{
		{"empty", "   ", "empty"},
		{"not PEM", "hello world", "no PEM block"},
		{"truncated", strings.Join(lines[:len(lines)-1], "\n"), "truncated"},
		{"bad base64", "-----BEGIN RSA PRIVATE KEY-----\n!!!!\n-----END RSA PRIVATE KEY-----\n", "not valid base64"},
		{"encrypted", encrypted, "encrypted"},
		{"EC key", ecPEM(t, false), "ec private key"},
		{"EC key in PKCS#8", ecPEM(t, true), "not RSA"},
		{"public key", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})), "not a private key"},
		{"garbage DER", "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n", "neither PKCS#1 nor PKCS#8"},
		{"unknown block", "-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n", "unexpected PEM block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := credentials.ParsePrivateKey(tc.raw)
			require.ErrorIs(t, err, credentials.ErrInvalidKey)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
