package githubtest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	gh "github.com/google/go-github/v62/github"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/github/githubtest"
)

// exchange posts a code to the fake's OAuth token endpoint, as a server's
// install callback does.
func exchange(t *testing.T, srv *githubtest.Server, clientSecret, code string) map[string]string {
	t.Helper()
	web := strings.TrimSuffix(srv.URL, "/api/v3/")
	form := url.Values{"client_id": {srv.ClientID}, "client_secret": {clientSecret}, "code": {code}}
	req, err := http.NewRequest(http.MethodPost, web+"/login/oauth/access_token", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "GitHub answers 200 even to a bad code")
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	flat := map[string]string{}
	for k, v := range out {
		if s, ok := v.(string); ok {
			flat[k] = s
		}
	}
	return flat
}

func TestOAuthUserInstallations(t *testing.T) {
	t.Parallel()
	srv := githubtest.New(t)
	a := srv.AddInstallation(githubtest.AppInstallation{Account: "acme", AllRepositories: true})
	b := srv.AddInstallation(githubtest.AppInstallation{Account: "beta", AllRepositories: true})
	srv.AddUser("alice", a.ID)
	srv.AddUser("bob", b.ID)

	code := srv.AuthorizeUser("alice")
	got := exchange(t, srv, srv.ClientSecret, code)
	require.Empty(t, got["error"])
	require.True(t, strings.HasPrefix(got["access_token"], "ghu_"))

	client, err := gh.NewClient(srv.Client()).WithAuthToken(got["access_token"]).WithEnterpriseURLs(srv.URL, srv.URL)
	require.NoError(t, err)
	list, _, err := client.Apps.ListUserInstallations(context.Background(), nil)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, a.ID, list[0].GetID(), "a user sees only the installations they can access")
	assert.Equal(t, "acme", list[0].GetAccount().GetLogin())

	assert.Equal(t, "bad_verification_code", exchange(t, srv, srv.ClientSecret, code)["error"], "a code is single-use")
	assert.Equal(t, "bad_verification_code", exchange(t, srv, srv.ClientSecret, "forged")["error"])
	assert.Equal(t, "incorrect_client_credentials", exchange(t, srv, "wrong", srv.AuthorizeUser("bob"))["error"])
	assert.Equal(t, 1, srv.UserTokensIssued())

	bad, err := gh.NewClient(srv.Client()).WithAuthToken("ghu_forged").WithEnterpriseURLs(srv.URL, srv.URL)
	require.NoError(t, err)
	_, resp, err := bad.Apps.ListUserInstallations(context.Background(), nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestOAuthCodeExpires(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	srv := githubtest.New(t, githubtest.WithClock(func() time.Time { return now }))
	code := srv.AuthorizeUser("alice")
	now = now.Add(11 * time.Minute)
	assert.Equal(t, "bad_verification_code", exchange(t, srv, srv.ClientSecret, code)["error"])
}

func TestRequestsLogsEverything(t *testing.T) {
	t.Parallel()
	srv := githubtest.New(t)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"nowhere", nil)
	req.Header.Set("Authorization", "token abc")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	reqs := srv.Requests()
	require.Len(t, reqs, 1, "unrouted requests are logged too")
	assert.Equal(t, githubtest.RecordedRequest{Method: "GET", Path: "/nowhere", Scheme: "token"}, reqs[0])
}
