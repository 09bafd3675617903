package credentials

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	gh "github.com/google/go-github/v62/github"
	"golang.org/x/sync/singleflight"

	"github.com/ghbridge/ghbridge/internal/ghhttp"
)

// Token cache defaults.
const (
	// DefaultRefreshMargin is how long before expiry a token is refreshed.
	DefaultRefreshMargin = 5 * time.Minute
	// DefaultExchangeTimeout bounds one token exchange, retries included.
	DefaultExchangeTimeout = 30 * time.Second
	// minUsableLife is the least lifetime a token must have left to be
	// handed out while a refresh runs in the background.
	minUsableLife = time.Minute
)

// TokenCache issues installation tokens for one GitHub App and caches
// them. It is safe for concurrent use and meant to be shared by everything
// in the process that talks to GitHub as the App.
//
// However many goroutines ask for the same installation, there is one
// exchange per token lifetime: concurrent callers share one in-flight
// exchange. A token is refreshed RefreshMargin before it expires, in the
// background while it is still usable. The exchange runs on a context of
// its own (the first caller's values, no deadline of the caller's, bounded
// by ExchangeTimeout) so that one caller's short deadline cannot fail the
// refresh everyone is waiting for; a caller whose context ends stops
// waiting, and the exchange completes for the others.
type TokenCache struct {
	app     AppConfig
	client  *gh.Client
	base    http.RoundTripper
	margin  time.Duration
	timeout time.Duration
	now     func() time.Time
	audit   AuditSink
	log     *slog.Logger

	// hookAfterMiss, when set by tests, runs between a cache miss and
	// joining the flight: the window in which a flight can end unseen.
	hookAfterMiss func(ctx context.Context)

	group singleflight.Group
	mu    sync.RWMutex
	cache map[int64]*cachedToken
	gen   map[int64]uint64 // bumped by Revoke; a stale exchange is not stored
}

type cachedToken struct {
	tok       InstallationToken
	refreshAt time.Time // start a background refresh from here
	staleAt   time.Time // stop handing it out from here
}

// TokenCacheOption configures a TokenCache.
type TokenCacheOption func(*TokenCache)

// WithTransport sets the transport for token exchanges, below the App JWT
// authentication; by default a retrying transport. Share one with
// github.ClientFactory (its Transport method) to pool connections.
func WithTransport(rt http.RoundTripper) TokenCacheOption {
	return func(c *TokenCache) { c.base = rt }
}

// WithRefreshMargin sets how long before expiry a token is refreshed
// (default 5 minutes). For short-lived tokens at most half the lifetime is
// used.
func WithRefreshMargin(d time.Duration) TokenCacheOption {
	return func(c *TokenCache) {
		if d > 0 {
			c.margin = d
		}
	}
}

// WithExchangeTimeout bounds one exchange, retries included (default 30 s).
func WithExchangeTimeout(d time.Duration) TokenCacheOption {
	return func(c *TokenCache) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithAudit sends an EventTokenExchange event for every exchange.
func WithAudit(sink AuditSink) TokenCacheOption {
	return func(c *TokenCache) { c.audit = sink }
}

// WithLogger sets the logger for background refresh failures.
func WithLogger(l *slog.Logger) TokenCacheOption {
	return func(c *TokenCache) {
		if l != nil {
			c.log = l
		}
	}
}

// WithClock sets the clock used for expiry decisions and JWTs, for tests.
func WithClock(now func() time.Time) TokenCacheOption {
	return func(c *TokenCache) {
		if now != nil {
			c.now = now
		}
	}
}

// NewTokenCache returns a cache for the App. It fails when the App config
// is incomplete (ErrNotConfigured) or its key does not parse.
func NewTokenCache(app AppConfig, opts ...TokenCacheOption) (*TokenCache, error) {
	if _, err := app.key(); err != nil {
		return nil, err
	}
	c := &TokenCache{
		app:     app,
		margin:  DefaultRefreshMargin,
		timeout: DefaultExchangeTimeout,
		now:     time.Now,
		log:     slog.New(slog.DiscardHandler),
		cache:   make(map[int64]*cachedToken),
		gen:     make(map[int64]uint64),
	}
	for _, o := range opts {
		o(c)
	}
	base := c.base
	if base == nil {
		base = ghhttp.NewTransport(ghhttp.Config{})
	}
	key, err := app.key()
	if err != nil {
		return nil, err
	}
	at, err := app.appTransport(base, key, c.now)
	if err != nil {
		return nil, err
	}
	u, err := ghhttp.ParseBaseURL(app.BaseURL)
	if err != nil {
		return nil, err
	}
	c.client = gh.NewClient(&http.Client{Transport: at})
	c.client.BaseURL, c.client.UploadURL = u, ghhttp.UploadURL(u)
	return c, nil
}

// Token returns a token for the installation, from the cache when it is
// fresh. Failures wrap ErrInstallationToken in a *TokenError.
func (c *TokenCache) Token(ctx context.Context, installationID int64) (InstallationToken, error) {
	if installationID <= 0 {
		return InstallationToken{}, fmt.Errorf("installation id must be positive, got %d", installationID)
	}
	now := c.now()
	c.mu.RLock()
	ct, gen := c.cache[installationID], c.gen[installationID]
	c.mu.RUnlock()
	if ct != nil && now.Before(ct.refreshAt) {
		return ct.tok, nil
	}
	if c.hookAfterMiss != nil {
		c.hookAfterMiss(ctx)
	}
	ch := c.group.DoChan(flightKey(installationID, gen), func() (any, error) {
		// A flight that ended between our cache read and DoChan may have
		// stored a fresh token already: reuse it rather than exchange twice.
		c.mu.RLock()
		ct, same := c.cache[installationID], c.gen[installationID] == gen
		c.mu.RUnlock()
		if same && ct != nil && c.now().Before(ct.refreshAt) {
			return ct.tok, nil
		}
		return c.exchange(context.WithoutCancel(ctx), installationID, gen)
	})
	if ct != nil && now.Before(ct.staleAt) {
		// Still usable: the refresh finishes in the background (DoChan's
		// channel is buffered, so nobody has to read it).
		return ct.tok, nil
	}
	select {
	case r := <-ch:
		if r.Err != nil {
			return InstallationToken{}, r.Err
		}
		return r.Val.(InstallationToken), nil
	case <-ctx.Done():
		return InstallationToken{}, fmt.Errorf("waiting for the installation %d token: %w", installationID, context.Cause(ctx))
	}
}

func flightKey(id int64, gen uint64) string {
	return strconv.FormatInt(id, 10) + "/" + strconv.FormatUint(gen, 10)
}

// Revoke forgets the cached token of an installation, so that the next
// Token call exchanges again; an exchange in flight when Revoke is called
// is not cached. Call it when an installation is deleted, suspended or its
// permissions change.
func (c *TokenCache) Revoke(installationID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cache, installationID)
	c.gen[installationID]++
}

func (c *TokenCache) exchange(parent context.Context, id int64, gen uint64) (InstallationToken, error) {
	ctx, cancel := context.WithTimeout(ghhttp.MarkIdempotent(parent), c.timeout)
	defer cancel()
	start := c.now()
	// An empty object, not go-github's "null" for nil options: the body,
	// when sent, is an object in GitHub's description.
	res, _, err := c.client.Apps.CreateInstallationToken(ctx, id, &gh.InstallationTokenOptions{})
	ev := AuditEvent{Name: EventTokenExchange, CredentialType: TypeInstallation, InstallationID: id, Attempt: 1}
	if err != nil {
		return InstallationToken{}, c.failed(parent, ev, tokenError(id, err))
	}
	tok := InstallationToken{
		Value:       NewSecret(res.GetToken()),
		ExpiresAt:   res.GetExpiresAt().Time,
		Permissions: permissionMap(res.Permissions),
	}
	if tok.Value.IsZero() || tok.ExpiresAt.IsZero() {
		return InstallationToken{}, c.failed(parent, ev, &TokenError{InstallationID: id, Err: errNoToken})
	}
	life := tok.ExpiresAt.Sub(start)
	ct := &cachedToken{
		tok:       tok,
		refreshAt: tok.ExpiresAt.Add(-min(c.margin, life/2)),
		staleAt:   tok.ExpiresAt.Add(-min(minUsableLife, life/4)),
	}
	c.mu.Lock()
	if c.gen[id] == gen {
		c.cache[id] = ct
	}
	c.mu.Unlock()
	ev.Outcome = OutcomeSuccess
	emit(parent, c.audit, c.now, ev)
	return tok, nil
}

func (c *TokenCache) failed(ctx context.Context, ev AuditEvent, err error) error {
	ev.Outcome, ev.Error = OutcomeFailure, err.Error()
	emit(ctx, c.audit, c.now, ev)
	c.log.WarnContext(ctx, "installation token exchange failed", "installation_id", ev.InstallationID, "error", err)
	return err
}

func tokenError(id int64, err error) error {
	te := &TokenError{InstallationID: id, Err: err}
	var er *gh.ErrorResponse
	var rl *gh.RateLimitError
	var arl *gh.AbuseRateLimitError
	switch {
	case errors.As(err, &er) && er.Response != nil:
		te.StatusCode, te.Message = er.Response.StatusCode, er.Message
	case errors.As(err, &rl) && rl.Response != nil:
		te.StatusCode, te.Message, te.rateLimited = rl.Response.StatusCode, rl.Message, true
	case errors.As(err, &arl) && arl.Response != nil:
		te.StatusCode, te.Message, te.rateLimited = arl.Response.StatusCode, arl.Message, true
	}
	return te
}

func permissionMap(p *gh.InstallationPermissions) map[string]string {
	if p == nil {
		return nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil
	}
	var m map[string]string
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}
