package credentials_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	gogithub "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
)

// render prints v every way a program might: fmt verbs, JSON, and slog
// with both handlers.
func render(t *testing.T, v any) string {
	t.Helper()
	var b strings.Builder
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		fmt.Fprintf(&b, verb+"\n", v)
	}
	fmt.Fprintln(&b, v)
	j, err := json.Marshal(v)
	require.NoError(t, err)
	b.Write(j)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "v", v)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "v", v)
	b.Write(logs.Bytes())
	// Values nested in exported fields of other structs.
	fmt.Fprintf(&b, "%+v\n", struct{ V any }{v})
	return b.String()
}

func TestSecretsNeverRender(t *testing.T) {
	const tok = "ghs_SUPERSECRET123"
	pemKey := pkcs1PEM()
	keyBody := strings.Split(pemKey, "\n")[1]
	for name, v := range map[string]any{
		"Secret":            credentials.NewSecret(tok),
		"Secret pointer":    ptr(credentials.NewSecret(tok)),
		"static credential": credentials.StaticToken(credentials.NewSecret(tok), "test"),
		"installation token": credentials.InstallationToken{
			Value: credentials.NewSecret(tok), Permissions: map[string]string{"actions": "write"},
		},
		"target":     credentials.Target{Owner: "a", Repo: "b", StaticToken: credentials.NewSecret(tok)},
		"app config": credentials.AppConfig{AppID: 1, PrivateKey: credentials.NewSecret(pemKey)},
	} {
		t.Run(name, func(t *testing.T) {
			out := render(t, v)
			assert.NotContains(t, out, tok)
			assert.NotContains(t, out, "SUPERSECRET")
			assert.NotContains(t, out, keyBody)
			assert.NotContains(t, out, "PRIVATE KEY-----\nMII")
		})
	}
	assert.Equal(t, "", credentials.Secret{}.String(), "an empty secret shows as empty, so that missing values stay visible")
}

func ptr[T any](v T) *T { return &v }

// TestTokensNeverReachLogsOrAudit drives every code path that handles a
// token, successful and failing, with debug logging everywhere, and then
// looks for every token the fake issued.
func TestTokensNeverReachLogsOrAudit(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	audit := &credentials.MemoryAuditLog{}
	sink := credentials.MultiAuditSink(audit, credentials.SlogAuditSink(logger))

	srv := githubtest.NewServer(githubtest.WithContract(t))
	defer srv.Close()
	srv.AddRepo(githubtest.Repo{Owner: "acme", Name: "api", Workflows: []githubtest.Workflow{{Name: "deploy"}}})
	inst := srv.AddInstallation(githubtest.Installation{Account: "acme", Repositories: []string{"acme/api"}})
	const pat = "ghp_STATICSECRET987"
	srv.AddStaticToken(pat)

	f, err := github.NewClientFactory(github.WithBaseURL(srv.URL), github.WithLogger(logger), github.WithRetryPolicy(fastRetries))
	require.NoError(t, err)
	cache, err := credentials.NewTokenCache(srv.AppConfig(), credentials.WithTransport(f.Transport()),
		credentials.WithAudit(sink), credentials.WithLogger(logger))
	require.NoError(t, err)
	store := credentials.NewMemoryInstallationStore()
	require.NoError(t, store.UpsertInstallation(context.Background(), credentials.Installation{
		ID: inst.ID, Account: "acme", Status: credentials.StatusActive,
		RepositorySelection: credentials.SelectionSelected, Repositories: []string{"acme/api"},
	}))
	r := credentials.NewResolver(credentials.WithTokenSource(cache), credentials.WithInstallationStore(store),
		credentials.WithSecretStore(credentials.NewMemorySecretStore(map[string]map[string]string{"": {"PAT": pat}})),
		credentials.WithResolverAudit(sink))
	ctx := context.Background()

	use := func(target credentials.Target) {
		cred, err := r.Resolve(ctx, target)
		if err != nil {
			logger.Error("resolve failed", "err", err, "target", target)
			return
		}
		logger.Info("resolved", "cred", cred)
		c, err := f.Client(cred)
		require.NoError(t, err)
		_, _, err = c.Repositories.Get(ctx, target.Owner, target.Repo)
		logger.Debug("get repo", "cred", cred, "err", err)
		_, err = c.Actions.CreateWorkflowDispatchEventByFileName(ctx, target.Owner, target.Repo, "deploy.yml", dispatchTo("nope"))
		logger.Debug("dispatch", "err", err)
	}
	use(credentials.Target{Owner: "acme", Repo: "api"})                                                         // installation
	use(credentials.Target{Owner: "other", Repo: "x", StaticToken: credentials.NewSecret("{{ secrets.PAT }}")}) // secret ref
	use(credentials.Target{Owner: "other", Repo: "x", StaticToken: credentials.NewSecret(pat)})                 // literal
	srv.InjectFault(githubtest.Fault{Route: "GET /repos/{owner}/{repo}", Status: 502, Times: 2})
	use(credentials.Target{Owner: "acme", Repo: "api"}) // retried requests log at debug
	cache.Revoke(inst.ID)
	srv.SetSuspended(inst.ID, true)
	use(credentials.Target{Owner: "acme", Repo: "api"}) // exchange failure

	all := logs.String()
	for _, ev := range audit.Events() {
		all += fmt.Sprintf("%+v", ev)
	}
	issued := srv.IssuedTokens()
	require.NotEmpty(t, issued)
	for _, tok := range append(issued, pat) {
		assert.NotContains(t, all, tok)
	}
	assert.Contains(t, all, "token.exchange", "the audit trail was written")
	assert.Contains(t, all, "failed to get installation token", "failures were logged")
}

func dispatchTo(ref string) gogithub.CreateWorkflowDispatchEventRequest {
	return gogithub.CreateWorkflowDispatchEventRequest{Ref: ref}
}
