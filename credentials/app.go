package credentials

import (
	"crypto/rsa"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	jwt "github.com/golang-jwt/jwt/v4"

	"github.com/ghbridge/ghbridge/internal/ghhttp"
)

// JWT timing. GitHub rejects an App JWT whose exp is more than ten minutes
// after now; iat is backdated so that a server clock a little ahead of
// ours does not see it as issued in the future.
const (
	jwtBackdate = 60 * time.Second
	jwtLifetime = 9 * time.Minute
)

// AppTransport returns an http.RoundTripper that authenticates every
// request as the App itself with a fresh RS256 JWT (iat backdated 60 s),
// for the /app endpoints. It is ghinstallation's AppsTransport with a
// signer that sets the timing ghbridge wants. base performs the requests;
// nil means a retrying transport with default settings.
func (c AppConfig) AppTransport(base http.RoundTripper) (http.RoundTripper, error) {
	key, err := c.key()
	if err != nil {
		return nil, err
	}
	return c.appTransport(base, key, time.Now)
}

func (c AppConfig) appTransport(base http.RoundTripper, key *rsa.PrivateKey, now func() time.Time) (*ghinstallation.AppsTransport, error) {
	if base == nil {
		base = ghhttp.NewTransport(ghhttp.Config{})
	}
	u, err := ghhttp.ParseBaseURL(c.BaseURL)
	if err != nil {
		return nil, err
	}
	issuer := strconv.FormatInt(c.AppID, 10)
	if c.ClientID != "" {
		issuer = c.ClientID
	}
	t, err := ghinstallation.NewAppsTransportWithOptions(base, c.AppID,
		ghinstallation.WithSigner(appSigner{key: key, issuer: issuer, now: now}))
	if err != nil {
		return nil, err
	}
	t.BaseURL = strings.TrimSuffix(u.String(), "/")
	return t, nil
}

// appSigner implements ghinstallation.Signer. It replaces the claims
// ghinstallation proposes with ghbridge's timing.
type appSigner struct {
	key    *rsa.PrivateKey
	issuer string
	now    func() time.Time
}

func (s appSigner) Sign(jwt.Claims) (string, error) {
	// GitHub rejects fractional timestamps, hence the truncation.
	now := s.now().Truncate(time.Second)
	claims := jwt.RegisteredClaims{
		Issuer:    s.issuer,
		IssuedAt:  jwt.NewNumericDate(now.Add(-jwtBackdate)),
		ExpiresAt: jwt.NewNumericDate(now.Add(jwtLifetime)),
	}
	return jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(s.key)
}
