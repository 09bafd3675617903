package github

import (
	"crypto/rsa"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	jwt "github.com/golang-jwt/jwt/v4"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/internal/apiurl"
)

// JWT timing. GitHub rejects an App JWT whose exp is more than ten minutes
// after now; iat is backdated so that a server clock a little ahead of
// ours does not see it as issued in the future. A JWT is reused for a
// minute after it is signed: GitHub takes it until its exp, and an App
// that exchanges tokens for many installations at once signs once rather
// than per exchange.
const (
	jwtBackdate = 60 * time.Second
	jwtLifetime = 9 * time.Minute
	jwtReuse    = time.Minute
)

// appTransport returns ghinstallation's AppsTransport over the factory's
// transport: every request authenticated as the App itself with an RS256
// JWT (reused for up to jwtReuse), for the /app endpoints, signed by
// appSigner for the timing ghbridge wants. It fails when the App config
// is incomplete or its key does not parse.
func (f *ClientFactory) appTransport(app credentials.AppConfig) (*ghinstallation.AppsTransport, error) {
	if err := app.Validate(); err != nil {
		return nil, err
	}
	key, err := credentials.ParsePrivateKey(app.PrivateKey.Reveal())
	if err != nil {
		return nil, err
	}
	u, err := apiurl.ParseBaseURL(app.BaseURL)
	if err != nil {
		return nil, err
	}
	issuer := strconv.FormatInt(app.AppID, 10)
	if app.ClientID != "" {
		issuer = app.ClientID
	}
	t, err := ghinstallation.NewAppsTransportWithOptions(f.transport, app.AppID,
		ghinstallation.WithSigner(&appSigner{key: key, issuer: issuer, now: f.cfg.now}))
	if err != nil {
		return nil, err
	}
	t.BaseURL = strings.TrimSuffix(u.String(), "/")
	return t, nil
}

// appSigner implements ghinstallation.Signer. It replaces the claims
// ghinstallation proposes with ghbridge's timing, and hands out the last
// JWT again while it is less than jwtReuse old: its iat is then still in
// the past and its exp less than ten minutes ahead, as GitHub requires.
type appSigner struct {
	key    *rsa.PrivateKey
	issuer string
	now    func() time.Time

	mu       sync.Mutex
	last     string    // the last JWT signed, "" before the first
	signedAt time.Time // its time (iat + jwtBackdate)
}

func (s *appSigner) Sign(jwt.Claims) (string, error) {
	// GitHub rejects fractional timestamps, hence the truncation.
	now := s.now().Truncate(time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last != "" && !now.Before(s.signedAt) && now.Sub(s.signedAt) < jwtReuse {
		return s.last, nil
	}
	claims := jwt.RegisteredClaims{
		Issuer:    s.issuer,
		IssuedAt:  jwt.NewNumericDate(now.Add(-jwtBackdate)),
		ExpiresAt: jwt.NewNumericDate(now.Add(jwtLifetime)),
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(s.key)
	if err != nil {
		return "", err
	}
	s.last, s.signedAt = signed, now
	return signed, nil
}
