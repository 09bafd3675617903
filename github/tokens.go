package github

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

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/internal/apiurl"
)

// Token cache defaults.
const (
	// defaultRefreshMargin is how long before expiry a token is refreshed.
	defaultRefreshMargin = 5 * time.Minute
	// defaultExchangeTimeout bounds one token exchange, retries included.
	defaultExchangeTimeout = 30 * time.Second
	// minUsableLife is the least lifetime a token must have left to be
	// handed out while a refresh runs in the background.
	minUsableLife = time.Minute
)

// TokenCache issues installation tokens for one GitHub App and caches
// them: it is the credentials.TokenSource of the App. It is safe for
// concurrent use and meant to be shared by everything in the process that
// talks to GitHub as the App: hosts make one per App with
// ClientFactory.TokenCache and give it to their credentials.Resolver
// (credentials.WithTokenSource), and call Revoke when an installation
// changes.
//
// However many goroutines ask for the same installation, there is one
// exchange per token lifetime: concurrent callers share one in-flight
// exchange. A token is refreshed a margin before it expires (see
// WithTokenRefreshMargin), in the background while it is still usable.
// The exchange runs on a context of its own (the first caller's values,
// no deadline of the caller's, bounded by WithTokenExchangeTimeout) so that
// one caller's short deadline cannot fail the refresh everyone is waiting
// for; a caller whose context ends stops waiting, and the exchange
// completes for the others.
type TokenCache struct {
	client  *gh.Client
	margin  time.Duration
	timeout time.Duration
	now     func() time.Time
	audit   credentials.AuditSink
	log     *slog.Logger

	// hookAfterMiss, when set by tests, runs between a cache miss and
	// joining the flight: the window in which a flight can end unseen.
	hookAfterMiss func(ctx context.Context)

	group singleflight.Group
	mu    sync.RWMutex
	cache map[int64]*cachedToken
	gen   map[int64]uint64 // bumped by Revoke; a stale exchange is not stored
}

var _ credentials.TokenSource = (*TokenCache)(nil)

type cachedToken struct {
	tok       credentials.InstallationToken
	refreshAt time.Time // start a background refresh from here
	staleAt   time.Time // stop handing it out from here
}

// TokenCache returns a token cache for the App. Its exchanges go through
// the factory's retrying transport to the App's BaseURL, authenticated by
// the App's JWT, and use the factory's clock, logger, audit sink, refresh
// margin and exchange timeout. It fails when the App config is incomplete
// (credentials.ErrNotConfigured) or its key does not parse. Hosts call it
// once per App and share the cache.
func (f *ClientFactory) TokenCache(app credentials.AppConfig) (*TokenCache, error) {
	at, err := f.appTransport(app)
	if err != nil {
		return nil, err
	}
	u, err := apiurl.ParseBaseURL(app.BaseURL)
	if err != nil {
		return nil, err
	}
	client := gh.NewClient(&http.Client{Transport: at})
	client.BaseURL, client.UploadURL = u, apiurl.UploadURL(u)
	return &TokenCache{
		client:  client,
		margin:  f.cfg.refreshMargin,
		timeout: f.cfg.exchangeTimeout,
		now:     f.cfg.now,
		audit:   f.cfg.audit,
		log:     f.cfg.logger,
		cache:   make(map[int64]*cachedToken),
		gen:     make(map[int64]uint64),
	}, nil
}

// Token returns a token for the installation, from the cache when it is
// fresh. Failures are a *credentials.TokenError (matching
// credentials.ErrInstallationToken). Hosts rarely call it: the clients of
// installation credentials do, per request.
func (c *TokenCache) Token(ctx context.Context, installationID int64) (credentials.InstallationToken, error) {
	if installationID <= 0 {
		return credentials.InstallationToken{}, fmt.Errorf("installation id must be positive, got %d", installationID)
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
			return credentials.InstallationToken{}, r.Err
		}
		return r.Val.(credentials.InstallationToken), nil
	case <-ctx.Done():
		return credentials.InstallationToken{}, fmt.Errorf("waiting for the installation %d token: %w", installationID, context.Cause(ctx))
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
	if c == nil {
		return // no App: nothing cached
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cache, installationID)
	c.gen[installationID]++
}

func (c *TokenCache) exchange(parent context.Context, id int64, gen uint64) (credentials.InstallationToken, error) {
	// The transport retries this POST like a GET (see idempotent).
	ctx, cancel := context.WithTimeout(parent, c.timeout)
	defer cancel()
	start := c.now()
	// An empty object, not go-github's "null" for nil options: the body,
	// when sent, is an object in GitHub's description.
	res, _, err := c.client.Apps.CreateInstallationToken(ctx, id, &gh.InstallationTokenOptions{})
	ev := credentials.AuditEvent{Name: credentials.EventTokenExchange, CredentialType: credentials.TypeInstallation, InstallationID: id, Attempt: 1}
	if err != nil {
		return credentials.InstallationToken{}, c.failed(parent, ev, tokenError(id, err))
	}
	tok := credentials.InstallationToken{
		Value:       credentials.NewSecret(res.GetToken()),
		ExpiresAt:   res.GetExpiresAt().Time,
		Permissions: permissionMap(res.Permissions),
	}
	if tok.Value.IsZero() || tok.ExpiresAt.IsZero() {
		return credentials.InstallationToken{}, c.failed(parent, ev, &credentials.TokenError{InstallationID: id, Err: errNoToken})
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
	ev.Outcome = credentials.OutcomeSuccess
	c.emit(parent, ev)
	return tok, nil
}

func (c *TokenCache) failed(ctx context.Context, ev credentials.AuditEvent, err error) error {
	ev.Outcome, ev.Error = credentials.OutcomeFailure, err.Error()
	c.emit(ctx, ev)
	c.log.WarnContext(ctx, "installation token exchange failed", "installation_id", ev.InstallationID, "error", err)
	return err
}

func (c *TokenCache) emit(ctx context.Context, ev credentials.AuditEvent) {
	if c.audit == nil {
		return
	}
	ev.Time = c.now()
	c.audit.Audit(ctx, ev)
}

// errNoToken is GitHub answering without a token: a fault, not a refusal
// (a *credentials.TokenError holding it is transient).
var errNoToken = errors.New("GitHub's answer held no token or no expiry")

func tokenError(id int64, err error) error {
	te := &credentials.TokenError{InstallationID: id, Err: err}
	var er *gh.ErrorResponse
	var rl *gh.RateLimitError
	var arl *gh.AbuseRateLimitError
	switch {
	case errors.As(err, &er) && er.Response != nil:
		te.StatusCode, te.Status, te.Message = er.Response.StatusCode, er.Response.Status, er.Message
	case errors.As(err, &rl) && rl.Response != nil:
		te.StatusCode, te.Status, te.Message, te.RateLimited = rl.Response.StatusCode, rl.Response.Status, rl.Message, true
	case errors.As(err, &arl) && arl.Response != nil:
		te.StatusCode, te.Status, te.Message, te.RateLimited = arl.Response.StatusCode, arl.Response.Status, arl.Message, true
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
