package app

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/dispatch"
	"github.com/ghbridge/ghbridge/status"
	"github.com/ghbridge/ghbridge/webhook"
)

// repoHooksKey holds the repositories used through a static token, as
// JSON {"owner/repo": {"job": KEY, "hook": ID}}: the job whose config
// names the token, so that reconcile can resolve it again.
const repoHooksKey = "repo_webhooks"

type repoHookRef struct {
	Job  string `json:"job"`
	Hook int64  `json:"hook,omitempty"`
}

// afterDispatch ensures the repository webhook of a job dispatched with a
// static token (GitHub sends an App's events through the App's webhook;
// a token's repository needs its own).
func (s *Server) afterDispatch(ctx context.Context, key string, res dispatch.Receipt) {
	if !s.cfg.RepoWebhooks || res.CredentialType != credentials.TypeStaticToken || len(s.cfg.WebhookSecrets) == 0 {
		return
	}
	repo := res.Owner + "/" + res.Repo
	refs := s.repoHookRefs(ctx)
	if ref, ok := refs[repo]; ok && ref.Hook != 0 {
		return // known: reconcile re-checks it
	}
	refs[repo] = repoHookRef{Job: key}
	s.ensureRepoHook(ctx, repo, refs)
}

func (s *Server) repoHookRefs(ctx context.Context) map[string]repoHookRef {
	refs := map[string]repoHookRef{}
	if v, err := s.db.Get(ctx, repoHooksKey); err == nil && v != "" {
		_ = json.Unmarshal([]byte(v), &refs)
	}
	return refs
}

// ensureRepoHook creates or repairs repo's webhook with the token of the
// job that used it, recovers its failed deliveries, and stores refs.
func (s *Server) ensureRepoHook(ctx context.Context, repo string, refs map[string]repoHookRef) {
	ref := refs[repo]
	log := s.log.With("repo", repo, "job_id", ref.Job)
	job, err := s.dispatchJob(ctx, status.Job{ID: ref.Job})
	if err != nil {
		log.WarnContext(ctx, "repository webhook: the job that used the token is gone", "error", err)
		delete(refs, repo)
		s.saveRepoHookRefs(ctx, refs)
		return
	}
	cfg, err := s.renderer.Render(ctx, job.Agent, job.Context)
	if err != nil {
		log.WarnContext(ctx, "repository webhook: rendering the job's config failed", "error", err)
		return
	}
	client, cred, err := s.source.For(ctx, credentials.Target{Tenant: job.Tenant, Owner: cfg.Owner, Repo: cfg.Repo,
		StaticToken: credentials.NewSecret(cfg.Token), JobID: job.ID})
	if err != nil || cred.Type != credentials.TypeStaticToken {
		log.WarnContext(ctx, "repository webhook: the job's token no longer resolves", "error", err)
		return
	}
	id, outcome, err := webhook.EnsureRepoHook(ctx, client, cfg.Owner, cfg.Repo,
		webhook.RepoHook{URL: s.cfg.WebhookURL(), Secret: s.cfg.WebhookSecrets[0]})
	if err != nil {
		log.WarnContext(ctx, "repository webhook: ensuring it failed; grant the token Webhooks: write (admin:repo_hook) or create it by hand", "error", err)
		return
	}
	if outcome != webhook.HookUnchanged {
		log.InfoContext(ctx, "repository webhook "+string(outcome), "hook_id", id)
	}
	s.metrics.reconciles.WithLabelValues("repo_webhook_" + string(outcome)).Inc()
	ref.Hook = id
	refs[repo] = ref
	s.saveRepoHookRefs(ctx, refs)
	rep, err := webhook.RecoverRepoDeliveries(ctx, client, cfg.Owner, cfg.Repo, id, webhook.RecoverOptions{Since: s.now().Add(-24 * time.Hour)})
	if err != nil {
		log.WarnContext(ctx, "repository webhook: recovering deliveries failed", "error", err)
		return
	}
	s.metrics.reconciles.WithLabelValues("redelivered").Add(float64(rep.Redelivered))
}

func (s *Server) saveRepoHookRefs(ctx context.Context, refs map[string]repoHookRef) {
	b, _ := json.Marshal(refs)
	if err := s.db.Set(context.WithoutCancel(ctx), repoHooksKey, string(b)); err != nil {
		s.log.WarnContext(ctx, "repository webhooks: storing the list failed", "error", err)
	}
}

// reconcileRepoHooks re-checks every repository webhook the server made.
func (s *Server) reconcileRepoHooks(ctx context.Context) {
	if !s.cfg.RepoWebhooks || len(s.cfg.WebhookSecrets) == 0 {
		return
	}
	refs := s.repoHookRefs(ctx)
	for _, repo := range slices.Sorted(maps.Keys(refs)) {
		s.ensureRepoHook(ctx, repo, refs)
	}
}
