package github_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"testing"

	gogithub "github.com/google/go-github/v62/github"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
)

// TestTokensNeverReachLogsOrAudit drives every code path that handles a
// token, successful and failing, with debug logging everywhere, and then
// looks for every token the fake issued.
func TestTokensNeverReachLogsOrAudit(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	audit := &credentials.MemoryAuditLog{}
	sink := credentials.MultiAuditSink(audit, credentials.SlogAuditSink(logger))

	srv := githubtest.NewServer(githubtest.WithContract(t))
	defer srv.Close()
	srv.AddRepo(githubtest.Repo{Owner: "acme", Name: "api", Workflows: []githubtest.Workflow{{Name: "deploy"}}})
	inst := srv.AddInstallation(githubtest.AppInstallation{Account: "acme", Repositories: []string{"acme/api"}})
	const pat = "ghp_STATICSECRET987"
	srv.AddStaticToken(pat)

	f, err := github.NewClientFactory(github.WithBaseURL(srv.URL), github.WithLogger(logger), github.WithRetryPolicy(fastRetries),
		github.WithAudit(sink))
	require.NoError(t, err)
	cache, err := f.TokenCache(srv.AppConfig())
	require.NoError(t, err)
	store := credentials.NewMemoryInstallationStore()
	require.NoError(t, store.UpsertInstallation(context.Background(), credentials.Installation{
		ID: inst.ID, Account: "acme", Status: credentials.StatusActive,
		RepositorySelection: credentials.SelectionSelected, Repositories: []string{"acme/api"},
	}))
	r := credentials.NewResolver(credentials.WithTokenSource(cache), credentials.WithInstallationStore(store),
		credentials.WithSecretStore(credentials.NewMemorySecretStore(map[string]map[string]string{"": {"PAT": pat}})),
		credentials.WithAudit(sink))
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
