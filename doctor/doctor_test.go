package doctor_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/doctor"
	"github.com/ghbridge/ghbridge/github/githubtest"
	"github.com/ghbridge/ghbridge/template"
	"github.com/ghbridge/ghbridge/webhook"
)

const secret = "webhook-secret"

type setup struct {
	fake *githubtest.Server
	inst githubtest.AppInstallation
	hook *httptest.Server
	cfg  doctor.Config
}

// newSetup is a healthy setup: an App installed on acme/deployer, whose
// webhook reaches a receiver verifying with secret, one delivery made.
func newSetup(t *testing.T) *setup {
	fake := githubtest.NewServer(githubtest.WithContract(t))
	t.Cleanup(fake.Close)
	fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "deployer", Workflows: []githubtest.Workflow{
		{Name: "deploy", Path: ".github/workflows/deploy.yml", RunName: "Deploy ${{ inputs.job_id }}", Inputs: []string{"job_id"}},
		{Name: "no-run-name", Path: ".github/workflows/plain.yml", Inputs: []string{"version"}},
		{Name: "push-only", Path: ".github/workflows/push.yml", NoDispatch: true},
	}})
	inst := fake.AddInstallation(githubtest.AppInstallation{Account: "acme", Repositories: []string{"acme/deployer"}})
	h, err := webhook.New([]string{secret})
	require.NoError(t, err)
	recv := httptest.NewServer(h)
	t.Cleanup(recv.Close)
	fake.SetWebhook(recv.URL+"/api/github/webhook", secret)
	_, err = fake.Deliver("ping", map[string]any{"zen": "Keep it logically awesome.", "hook_id": 1})
	require.NoError(t, err)
	return &setup{fake: fake, inst: inst, hook: recv, cfg: doctor.Config{
		App:            fake.AppConfig(),
		WebhookSecrets: []string{secret},
		WebhookURL:     recv.URL + "/api/github/webhook",
		Targets:        []doctor.Target{{Owner: "acme", Repo: "deployer", Workflow: "deploy.yml"}},
	}}
}

// run runs the doctor and returns its printed output.
func run(t *testing.T, cfg doctor.Config) (doctor.Diagnosis, string) {
	t.Helper()
	var out bytes.Buffer
	var streamed []string
	show := doctor.Printer(&out)
	rep := doctor.Run(context.Background(), cfg, func(r doctor.Finding) {
		streamed = append(streamed, r.Check)
		show(r)
	})
	out.WriteString(rep.Summary() + "\n")
	require.Len(t, streamed, len(rep.Findings), "every result is streamed as its check ends")
	t.Logf("doctor output:\n%s", out.String())
	return rep, out.String()
}

func result(t *testing.T, rep doctor.Diagnosis, check string) doctor.Finding {
	t.Helper()
	for _, r := range rep.Findings {
		if r.Check == check {
			return r
		}
	}
	t.Fatalf("no %q check in %+v", check, rep.Findings)
	return doctor.Finding{}
}

func TestHealthySetupPasses(t *testing.T) {
	s := newSetup(t)
	rep, out := run(t, s.cfg)
	assert.True(t, rep.OK(), out)
	assert.Zero(t, rep.Count(doctor.Fail))
	assert.Contains(t, out, "all checks passed")
	for _, check := range []string{"app config", "app", "webhook config", "webhook secret", "deliveries", "events", "permissions", "acme/deployer installation", "acme/deployer workflow"} {
		assert.Equal(t, doctor.Pass, result(t, rep, check).Grade, check)
	}
	assert.Contains(t, result(t, rep, "webhook secret").Detail, "verifies with the secret")
}

func otherKeyPEM(t *testing.T) string {
	key, err := rsa.GenerateKey(rand.Reader, 1024) // any key but the App's; 1024 bits generate faster
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
}

func TestBrokenSetups(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(t *testing.T, s *setup)
		check  string
		want   []string
	}{
		{"wrong key", func(t *testing.T, s *setup) {
			s.cfg.App.PrivateKey = credentials.NewSecret(otherKeyPEM(t))
		}, "app", []string{"401", "the private key is not the App's", "Private keys"}},
		{"wrong id", func(t *testing.T, s *setup) {
			s.cfg.App.AppID, s.cfg.App.ClientID = 999, ""
		}, "app", []string{"401", "Integration not found", "no App has the id 999", "set GITHUB_APP_ID"}},
		{"wrong secret", func(t *testing.T, s *setup) {
			s.fake.SetWebhook(s.hook.URL+"/api/github/webhook", "another-secret")
			_, _ = s.fake.Deliver("ping", map[string]any{"zen": "x", "hook_id": 1})
		}, "webhook secret", []string{"verifies with none of the configured secrets", "rejected it with 401", "differs from the webhook secret"}},
		{"failed deliveries", func(t *testing.T, s *setup) {
			s.fake.SetWebhook(s.hook.URL+"/api/github/webhook", "another-secret")
			_, _ = s.fake.Deliver("ping", map[string]any{"zen": "x", "hook_id": 1})
		}, "deliveries", []string{"1 of 2 deliveries in the last 24 h failed", "401 (signature rejected)"}},
		{"webhook URL elsewhere", func(t *testing.T, s *setup) {
			s.cfg.WebhookURL = "https://ghbridge.example.com/api/github/webhook"
		}, "webhook config", []string{"but this server is https://ghbridge.example.com/api/github/webhook"}},
		{"no webhook secret configured", func(t *testing.T, s *setup) {
			s.cfg.WebhookSecrets, s.cfg.WebhookSecretName = nil, "HOOK_SECRET"
		}, "webhook secret", []string{"HOOK_SECRET is not set"}},
		{"missing event", func(t *testing.T, s *setup) {
			s.fake.SetAppEvents("deployment_status", "workflow_job")
		}, "events", []string{"does not subscribe to workflow_run", "tick Workflow run"}},
		{"missing event of a kind", func(t *testing.T, s *setup) {
			s.cfg.Kinds = []template.Kind{template.KindWorkflowDispatch, template.KindDeployment}
			s.fake.SetAppEvents("workflow_run", "workflow_job")
		}, "events", []string{"does not subscribe to deployment_status"}},
		{"missing permission", func(t *testing.T, s *setup) {
			s.fake.SetPermissions(s.inst.ID, map[string]string{"actions": "read", "contents": "read", "metadata": "read"})
		}, "permissions", []string{"lacks actions: write (has read)", "accepts the new permissions"}},
		{"missing permission of a kind", func(t *testing.T, s *setup) {
			s.cfg.Kinds, s.cfg.ReportChecks = []template.Kind{template.KindDeployment}, true
			s.fake.SetPermissions(s.inst.ID, map[string]string{"deployments": "write", "metadata": "read"})
		}, "permissions", []string{"lacks checks: write (has none)"}},
		{"not installed", func(t *testing.T, s *setup) {
			s.cfg.Targets = []doctor.Target{{Owner: "globex", Repo: "x", Workflow: "deploy.yml"}}
		}, "globex/x installation", []string{"no installation of the App reaches globex/x", "404"}},
		{"no workflow_dispatch", func(t *testing.T, s *setup) {
			s.cfg.Targets[0].Workflow = "push.yml"
		}, "acme/deployer workflow", []string{"has no workflow_dispatch trigger"}},
		{"no job_id, no run-name", func(t *testing.T, s *setup) {
			s.cfg.Targets[0].Workflow = "plain.yml"
		}, "acme/deployer workflow", []string{"declares no job_id input", "has no run-name with the job id"}},
		{"no such workflow", func(t *testing.T, s *setup) {
			s.cfg.Targets[0].Workflow = "nope.yml"
		}, "acme/deployer workflow", []string{`workflow "nope.yml"`, "404"}},
		{"no such ref", func(t *testing.T, s *setup) {
			s.cfg.Targets[0].Ref = "nope"
		}, "acme/deployer workflow", []string{`ref "nope"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t)
			tc.break_(t, s)
			rep, out := run(t, s.cfg)
			assert.False(t, rep.OK())
			r := result(t, rep, tc.check)
			assert.Equal(t, doctor.Fail, r.Grade, out)
			for _, w := range tc.want {
				assert.Contains(t, r.Detail+" fix: "+r.Fix, w)
			}
			assert.NotEmpty(t, r.Fix)
			assert.Contains(t, out, "some checks failed")
		})
	}
}

// A host that cannot be reached is a network failure naming the host,
// never GitHub rejecting the JWT; a host that never answers fails
// within the check's timeout.
func TestUnreachableHost(t *testing.T) {
	s := newSetup(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := ln.Addr().String()
	require.NoError(t, ln.Close())
	cfg := s.cfg
	cfg.App.BaseURL = "http://" + refused + "/api/v3/"
	rep, out := run(t, cfg)
	r := result(t, rep, "app")
	assert.Equal(t, doctor.Fail, r.Grade)
	var ex *doctor.Explained
	require.True(t, errors.As(r.Err, &ex))
	assert.Equal(t, doctor.CauseRefused, ex.Cause)
	assert.Contains(t, r.Detail, "connection to "+refused+" refused")
	assert.NotContains(t, out, "JWT:")
	assert.Equal(t, doctor.Skip, result(t, rep, "events").Grade)
	assert.Contains(t, result(t, rep, "events").Detail, "needs "+refused+" to be reachable")

	// A listener that accepts and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	cfg.App.BaseURL = "http://" + silent.Addr().String() + "/api/v3/"
	cfg.Timeout = 50 * time.Millisecond
	// The server never answers: without the check's own timeout the
	// doctor would not return.
	rep, _ = run(t, cfg)
	r = result(t, rep, "app")
	require.True(t, errors.As(r.Err, &ex))
	assert.Equal(t, doctor.CauseTimeout, ex.Cause, r.Detail)
	assert.Contains(t, r.Detail, "no answer from "+silent.Addr().String())
}

// The secret check proves a match only by a signature that verifies.
func TestSecretCheckWithoutDeliveries(t *testing.T) {
	fake := githubtest.NewServer(githubtest.WithContract(t))
	t.Cleanup(fake.Close)
	fake.AddInstallation(githubtest.AppInstallation{Account: "acme", AllRepositories: true})
	fake.SetWebhook("https://ghbridge.example.com/api/github/webhook", secret)
	rep, _ := run(t, doctor.Config{App: fake.AppConfig(), WebhookSecrets: []string{"other", secret}})
	r := result(t, rep, "webhook secret")
	assert.Equal(t, doctor.Warn, r.Grade)
	assert.Contains(t, r.Detail, "GitHub never returns the secret")
	assert.True(t, rep.OK(), "a warning is not a failure")
}

func TestRequirementsCoverEveryKind(t *testing.T) {
	var kinds []template.Kind
	for _, r := range doctor.Requirements() {
		kinds = append(kinds, r.Kind)
		assert.NotEmpty(t, r.Events, r.Kind)
		assert.Equal(t, "read", r.Permissions["metadata"], r.Kind)
	}
	assert.ElementsMatch(t, []template.Kind{template.KindWorkflowDispatch, template.KindRepositoryDispatch, template.KindDeployment, template.KindPullRequest}, kinds)
}

var _ http.Handler = (*webhook.Handler)(nil)
