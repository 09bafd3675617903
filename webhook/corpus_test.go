package webhook_test

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	gh "github.com/google/go-github/v62/github"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/webhook"
	"github.com/ghbridge/ghbridge/webhook/webhooktest"
)

// corpusFile holds GitHub's recorded payloads of every event ghbridge
// decodes or routes, from @octokit/webhooks-examples (see its source
// field; refreshed by github/githubtest/internal/contract/gen).
var corpusFile = filepath.Join("testdata", "corpus", "webhooks-examples.json")

type corpus struct {
	Source struct{ Package, Version, License string }
	Events map[string][]json.RawMessage
}

// readCorpus reads the corpus once for all the tests that use it (it is
// a megabyte of JSON); they only read it.
var readCorpus = sync.OnceValues(func() (corpus, error) {
	var c corpus
	raw, err := os.ReadFile(corpusFile)
	if err == nil {
		err = json.Unmarshal(raw, &c)
	}
	return c, err
})

func loadCorpus(t testing.TB) corpus {
	t.Helper()
	c, err := readCorpus()
	require.NoError(t, err)
	require.Equal(t, "@octokit/webhooks-examples", c.Source.Package)
	require.NotEmpty(t, c.Source.Version)
	return c
}

// TestCorpus sends every recorded payload through the handler, signed,
// as JSON (and the first of each event form-encoded too): each is
// answered 2xx, decodes into ghbridge's event types as encoding/json
// decodes it and with the values go-github reads, and GitHubEvent works.
func TestCorpus(t *testing.T) {
	t.Parallel()
	c := loadCorpus(t)
	h := newHandler(t)
	var (
		mu   sync.Mutex
		seen = map[string]int{}
	)
	check := func(d *webhook.Delivery, id int64, action, repo string, installation int64) {
		mu.Lock()
		seen[d.Event]++
		mu.Unlock()
		ev, err := d.GitHubEvent()
		if !assert.NoError(t, err, "GitHubEvent of %s.%s", d.Event, d.Action) {
			return
		}
		// What go-github read, through its getters; an event type
		// without one (no repository in installation events) reads as
		// empty.
		var (
			gAction, gRepo string
			gInstallation  int64
		)
		if e, ok := ev.(interface{ GetAction() string }); ok {
			gAction = e.GetAction()
		}
		if e, ok := ev.(interface{ GetRepo() *gh.Repository }); ok {
			gRepo = e.GetRepo().GetFullName()
		}
		if e, ok := ev.(interface{ GetInstallation() *gh.Installation }); ok {
			gInstallation = e.GetInstallation().GetID()
		} else {
			t.Errorf("%T has no installation", ev)
		}
		assert.Equal(t, gAction, action, d.Event)
		assert.Equal(t, gRepo, repo, d.Event)
		assert.Equal(t, gInstallation, installation, d.Event)
		assert.NotZero(t, id, "%s.%s: the object ghbridge reads has an id", d.Event, d.Action)
	}
	webhook.Handle(h, "workflow_run", func(_ context.Context, d *webhook.Delivery, e *webhook.WorkflowRunEvent) error {
		sameAsEncodingJSON(t, d, e)
		check(d, e.WorkflowRun.ID, e.Action, e.Repository.FullName, e.Installation.ID)
		ev, _ := d.GitHubEvent()
		if g, ok := ev.(*gh.WorkflowRunEvent); ok {
			r := g.GetWorkflowRun()
			assert.Equal(t, r.GetStatus(), e.WorkflowRun.Status)
			assert.Equal(t, r.GetConclusion(), e.WorkflowRun.Conclusion)
			assert.Equal(t, r.GetRunAttempt(), e.WorkflowRun.RunAttempt)
			assert.Equal(t, r.GetUpdatedAt().Time, e.WorkflowRun.UpdatedAt)
			assert.Equal(t, r.GetHTMLURL(), e.WorkflowRun.HTMLURL)
		}
		return nil
	})
	webhook.Handle(h, "workflow_job", func(_ context.Context, d *webhook.Delivery, e *webhook.WorkflowJobEvent) error {
		sameAsEncodingJSON(t, d, e)
		check(d, e.WorkflowJob.ID, e.Action, e.Repository.FullName, e.Installation.ID)
		assert.NotZero(t, e.WorkflowJob.RunID)
		return nil
	})
	webhook.Handle(h, "installation", func(_ context.Context, d *webhook.Delivery, e *webhook.InstallationEvent) error {
		sameAsEncodingJSON(t, d, e)
		check(d, e.Installation.ID, e.Action, "", e.Installation.ID)
		assert.NotEmpty(t, e.Installation.Account.Login)
		return nil
	})
	webhook.Handle(h, "installation_repositories", func(_ context.Context, d *webhook.Delivery, e *webhook.InstallationRepositoriesEvent) error {
		sameAsEncodingJSON(t, d, e)
		check(d, e.Installation.ID, e.Action, "", e.Installation.ID)
		assert.NotEmpty(t, append(e.RepositoriesAdded, e.RepositoriesRemoved...))
		return nil
	})
	webhook.Handle(h, "deployment_status", func(_ context.Context, d *webhook.Delivery, e *webhook.DeploymentStatusEvent) error {
		sameAsEncodingJSON(t, d, e)
		check(d, e.DeploymentStatus.ID, e.Action, e.Repository.FullName, e.Installation.ID)
		assert.NotZero(t, e.Deployment.ID)
		assert.NotEmpty(t, e.DeploymentStatus.State)
		assert.NotEmpty(t, e.DeploymentStatus.Creator.Login)
		return nil
	})
	webhook.Handle(h, "check_run", func(_ context.Context, d *webhook.Delivery, e *webhook.CheckRunEvent) error {
		sameAsEncodingJSON(t, d, e)
		check(d, e.CheckRun.ID, e.Action, e.Repository.FullName, e.Installation.ID)
		assert.NotZero(t, e.CheckRun.App.ID)
		return nil
	})
	webhook.Handle(h, "pull_request", func(_ context.Context, d *webhook.Delivery, e *webhook.PullRequestEvent) error {
		sameAsEncodingJSON(t, d, e)
		check(d, e.PullRequest.ID, e.Action, e.Repository.FullName, e.Installation.ID)
		assert.Equal(t, e.Number, e.PullRequest.Number)
		assert.NotEmpty(t, e.PullRequest.Head.Ref)
		return nil
	})

	events := make([]string, 0, len(c.Events))
	for ev := range c.Events {
		events = append(events, ev)
	}
	sort.Strings(events)
	total := 0
	for _, event := range events {
		for i, p := range c.Events[event] {
			total++
			// Form-encoded, the same payload is unwrapped before it is
			// decoded: once for each event is enough.
			forms := []bool{false}
			if i == 0 {
				forms = append(forms, true)
			}
			for _, form := range forms {
				r := webhooktest.NewRequest(event, p, secret)
				if form {
					body := "payload=" + url.QueryEscape(string(p))
					r = webhooktest.NewRequest(event, []byte(body), secret)
					r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				w := serve(h, r)
				assert.True(t, w.Code/100 == 2, "%s #%d (form %v): %d %s", event, i, form, w.Code, strings.TrimSpace(w.Body.String()))
			}
		}
	}
	t.Logf("%s@%s: %d payloads, handled %v", c.Source.Package, c.Source.Version, total, seen)
	for _, event := range events {
		if event != "ping" {
			assert.Equal(t, len(c.Events[event])+1, seen[event], "every %s payload reached its handler, and the first again form-encoded", event)
		}
	}
}

// sameAsEncodingJSON asserts that the event a handler got is what
// encoding/json decodes from the same payload. FuzzDecode checks this
// for every event type and one payload of each event; this checks every
// recorded payload against its own event type.
func sameAsEncodingJSON[T any](t *testing.T, d *webhook.Delivery, e *T) {
	t.Helper()
	std := new(T)
	if assert.NoError(t, json.Unmarshal(d.Payload, std), "%s.%s", d.Event, d.Action) {
		assert.Equal(t, std, e, "%s.%s: decoded unlike encoding/json", d.Event, d.Action)
	}
}
