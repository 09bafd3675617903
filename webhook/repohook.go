package webhook

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/failure"
)

// RepoHook is the repository webhook a token-only setup needs, for
// EnsureRepoHook: GitHub Apps get their deliveries through the App's
// webhook, a static token's repositories through a webhook of their own.
type RepoHook struct {
	// URL receives the deliveries (https://HOST/api/github/webhook).
	URL string
	// Secret signs them; the Handler's first secret.
	Secret string
	// Events to subscribe to; by default workflow_run, workflow_job,
	// deployment_status and pull_request, the events ghbridge follows
	// jobs by.
	Events []string
	// RotateSecret sets the secret even on a hook that otherwise matches:
	// GitHub never shows a hook's secret, so a change cannot be seen.
	RotateSecret bool
}

// defaultRepoHookEvents are the events ghbridge follows jobs by.
var defaultRepoHookEvents = []string{"workflow_run", "workflow_job", "deployment_status", "pull_request"}

// EnsureOutcome says what EnsureRepoHook did, for hosts to log.
type EnsureOutcome string

// Outcomes of EnsureRepoHook.
const (
	HookCreated   EnsureOutcome = "created"
	HookRepaired  EnsureOutcome = "repaired"
	HookUnchanged EnsureOutcome = "unchanged"
)

// EnsureRepoHook makes owner/repo have a webhook as h says, idempotently:
// it creates one when no webhook has h.URL, repairs the one that has it
// when it differs (inactive, form content type, SSL verification off,
// other events, no secret), and leaves it alone when it matches. client
// needs the repository's "Webhooks: write" permission (admin:repo_hook
// for a classic token). It returns the hook's id. Hosts that use static
// tokens call it at startup for each repository.
func EnsureRepoHook(ctx context.Context, client *gh.Client, owner, repo string, h RepoHook) (int64, EnsureOutcome, error) {
	if h.URL == "" || h.Secret == "" {
		return 0, "", failure.Mark(failure.ErrInvalidIntegration, errors.New("webhook: a repository webhook needs a URL and a secret"))
	}
	events := slices.Clone(h.Events)
	if len(events) == 0 {
		events = slices.Clone(defaultRepoHookEvents)
	}
	slices.Sort(events)
	want := &gh.Hook{
		Config: &gh.HookConfig{URL: gh.String(h.URL), ContentType: gh.String("json"), InsecureSSL: gh.String("0"), Secret: gh.String(h.Secret)},
		Events: events,
		Active: gh.Bool(true),
	}
	var found *gh.Hook
	opts := &gh.ListOptions{PerPage: 100}
	for {
		hooks, resp, err := client.Repositories.ListHooks(ctx, owner, repo, opts)
		if err != nil {
			return 0, "", fmt.Errorf("listing the webhooks of %s/%s: %w", owner, repo, err)
		}
		for _, x := range hooks {
			if x.GetConfig().GetURL() == h.URL {
				found = x
				break
			}
		}
		if found != nil || resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if found == nil {
		want.Name = gh.String("web")
		made, _, err := client.Repositories.CreateHook(ctx, owner, repo, want)
		if err != nil {
			return 0, "", fmt.Errorf("creating the webhook of %s/%s: %w", owner, repo, err)
		}
		return made.GetID(), HookCreated, nil
	}
	have := slices.Clone(found.Events)
	slices.Sort(have)
	cfg := found.GetConfig()
	if found.GetActive() && cfg.GetContentType() == "json" && cfg.GetInsecureSSL() == "0" && cfg.GetSecret() != "" &&
		slices.Equal(have, events) && !h.RotateSecret {
		return found.GetID(), HookUnchanged, nil
	}
	if _, _, err := client.Repositories.EditHook(ctx, owner, repo, found.GetID(), want); err != nil {
		return 0, "", fmt.Errorf("repairing webhook %d of %s/%s: %w", found.GetID(), owner, repo, err)
	}
	return found.GetID(), HookRepaired, nil
}

// RecoverRepoDeliveries is RecoverDeliveries for a repository webhook:
// it asks GitHub to redeliver the hook's failed deliveries. client is
// the repository's (a token with Webhooks: write). Hosts run it
// periodically for each hook EnsureRepoHook set up.
func RecoverRepoDeliveries(ctx context.Context, client *gh.Client, owner, repo string, hookID int64, opts RecoverOptions) (RecoverReport, error) {
	return recoverDeliveries(ctx, opts,
		func(ctx context.Context, o *gh.ListCursorOptions) ([]*gh.HookDelivery, *gh.Response, error) {
			return client.Repositories.ListHookDeliveries(ctx, owner, repo, hookID, o)
		},
		func(ctx context.Context, id int64) error {
			_, _, err := client.Repositories.RedeliverHookDelivery(ctx, owner, repo, hookID, id)
			return err
		})
}

func recoverDeliveries(ctx context.Context, opts RecoverOptions,
	list func(context.Context, *gh.ListCursorOptions) ([]*gh.HookDelivery, *gh.Response, error),
	redeliver func(context.Context, int64) error,
) (RecoverReport, error) {
	var rep RecoverReport
	if opts.Since.IsZero() {
		opts.Since = time.Now().Add(-24 * time.Hour)
	}
	if opts.Max <= 0 {
		opts.Max = 100
	}
	type guid struct {
		ok     bool
		latest int64
	}
	seen := map[string]*guid{}
	var order []string
	lo := &gh.ListCursorOptions{PerPage: 100}
	for pages := 0; pages < 100; pages++ {
		ds, resp, err := list(ctx, lo)
		if err != nil {
			return rep, fmt.Errorf("listing webhook deliveries: %w", err)
		}
		older := false
		for _, d := range ds {
			if d.GetDeliveredAt().Before(opts.Since) {
				older = true
				continue
			}
			rep.Scanned++
			g := seen[d.GetGUID()]
			if g == nil {
				g = &guid{}
				seen[d.GetGUID()] = g
				order = append(order, d.GetGUID())
			}
			if code := d.GetStatusCode(); code >= 200 && code < 300 {
				g.ok = true
			} else if g.latest == 0 {
				g.latest = d.GetID() // newest first: the first failed one is the latest
			}
		}
		if older || resp.Cursor == "" {
			break
		}
		lo.Cursor = resp.Cursor
	}
	for _, id := range order {
		g := seen[id]
		if g.ok {
			continue
		}
		rep.Failed++
		if rep.Redelivered >= opts.Max {
			continue
		}
		err := redeliver(ctx, g.latest)
		var accepted *gh.AcceptedError
		if err != nil && !errors.As(err, &accepted) {
			return rep, fmt.Errorf("redelivering %s: %w", id, err)
		}
		rep.Redelivered++
	}
	return rep, nil
}
