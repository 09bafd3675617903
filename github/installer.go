package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	gh "github.com/google/go-github/v62/github"
	"golang.org/x/oauth2"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/failure"
)

// Errors of VerifyInstaller, matched with errors.Is. Hosts tell them
// apart to answer an install callback: a person to turn away, a code to
// ask for again, a setup to fix.
var (
	// ErrNotInstaller means the person who authorized the App cannot
	// access the installation: the installation_id of an install callback
	// was not theirs (GitHub documents that it can be spoofed).
	ErrNotInstaller = failure.New(failure.ErrInvalidIntegration, "the authorizing user has no access to this installation")
	// ErrAuthorizationCode means GitHub refused the OAuth code of a
	// callback: it was used already, expired or forged, or the App's
	// client id and secret are wrong.
	ErrAuthorizationCode = failure.New(failure.ErrFailed, "GitHub refused the authorization code")
	// ErrNoOAuthClient means the App's client id or client secret is not
	// configured, so nobody's authorization can be checked.
	ErrNoOAuthClient = failure.New(failure.ErrInvalidIntegration, "the App's OAuth client id and secret are not configured")
)

// maxUserInstallationPages bounds the listing of a user's installations
// (100 a page).
const maxUserInstallationPages = 20

// WebURL returns the web root that goes with the API root: https://github.com
// for api.github.com, the host itself for GitHub Enterprise Server (and
// for the fake GitHub of package githubtest). Hosts use it to link to
// GitHub's pages (an App's settings, a repository) on either.
func (f *ClientFactory) WebURL() string {
	if f.baseURL.Host == "api.github.com" {
		return "https://github.com"
	}
	return f.baseURL.Scheme + "://" + f.baseURL.Host
}

// InstallURL returns the page where a person installs the App with the
// given slug; state comes back on the App's setup (callback) URL. Hosts
// send a tenant there to install the App.
func (f *ClientFactory) InstallURL(slug, state string) string {
	path := "/apps/"
	if f.baseURL.Host != "api.github.com" {
		path = "/github-apps/"
	}
	return f.WebURL() + path + url.PathEscape(slug) + "/installations/new?state=" + url.QueryEscape(state)
}

func (f *ClientFactory) oauth(app credentials.AppConfig) (*oauth2.Config, error) {
	if app.ClientID == "" || app.ClientSecret.IsZero() {
		return nil, ErrNoOAuthClient
	}
	web := f.WebURL()
	return &oauth2.Config{
		ClientID:     app.ClientID,
		ClientSecret: app.ClientSecret.Reveal(),
		Endpoint: oauth2.Endpoint{
			AuthURL:   web + "/login/oauth/authorize",
			TokenURL:  web + "/login/oauth/access_token",
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}, nil
}

// AuthorizeURL returns the page where a person authorizes the App
// (OAuth); GitHub then sends the browser to the App's callback URL with a
// code and state. Hosts use it to let a person prove access to an
// installation that was installed earlier.
func (f *ClientFactory) AuthorizeURL(app credentials.AppConfig, state string) (string, error) {
	cfg, err := f.oauth(app)
	if err != nil {
		return "", err
	}
	return cfg.AuthCodeURL(state), nil
}

// VerifyInstaller proves that the person behind an OAuth code (the code
// GitHub adds to the install callback when the App requests user
// authorization during installation) can access installationID: the code
// is exchanged for a user token, and GET /user/installations must list
// the installation. This is GitHub's documented check before trusting
// installation_id: hosts make it in their install callback before
// recording the installation as the person's. The user token is used for
// this check only: it is not returned, kept or logged.
//
// It returns nil when the installation is listed, an error matching
// ErrNotInstaller when it is not, ErrAuthorizationCode when GitHub refuses
// the code, and ErrNoOAuthClient without a client id and secret.
func (f *ClientFactory) VerifyInstaller(ctx context.Context, app credentials.AppConfig, code string, installationID int64) error {
	cfg, err := f.oauth(app)
	if err != nil {
		return err
	}
	if strings.TrimSpace(code) == "" {
		return fmt.Errorf("%w: the callback has no code (enable \"Request user authorization (OAuth) during installation\" in the App settings)", ErrAuthorizationCode)
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: f.transport})
	tok, err := cfg.Exchange(ctx, code)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode != "" {
			return fmt.Errorf("%w (%s)", ErrAuthorizationCode, re.ErrorCode)
		}
		return fmt.Errorf("exchanging the authorization code: %w", err)
	}
	user := f.newClient(&tokenTransport{cred: credentials.StaticToken(credentials.NewSecret(tok.AccessToken), "user authorization"), base: f.transport})
	opts := &gh.ListOptions{PerPage: 100}
	for range maxUserInstallationPages {
		list, resp, err := user.Apps.ListUserInstallations(ctx, opts)
		if err != nil {
			return fmt.Errorf("listing the user's installations: %w", err)
		}
		for _, in := range list {
			if in.GetID() == installationID {
				return nil
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return fmt.Errorf("%w: installation %d", ErrNotInstaller, installationID)
}
