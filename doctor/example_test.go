package doctor_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/ghbridge/ghbridge/doctor"
	"github.com/ghbridge/ghbridge/github/githubtest"
	"github.com/ghbridge/ghbridge/webhook"
)

// A host runs the doctor from a health endpoint or a command, with the
// App and webhook settings it serves with; each finding names what to fix.
func ExampleRun() {
	fake := githubtest.NewServer()
	defer fake.Close()
	fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "deployer", Workflows: []githubtest.Workflow{
		{Name: "deploy", Path: ".github/workflows/deploy.yml", RunName: "Deploy ${{ inputs.job_id }}", Inputs: []string{"job_id"}},
	}})
	fake.AddInstallation(githubtest.AppInstallation{Account: "acme", Repositories: []string{"acme/deployer"}})
	hooks, _ := webhook.New([]string{"hook-secret"})
	receiver := httptest.NewServer(hooks)
	defer receiver.Close()
	// The App's webhook signs with another secret than the server's; one
	// delivery gives the doctor a signature to check.
	fake.SetWebhook(receiver.URL, "stale-secret")
	_, _ = fake.Deliver("ping", map[string]any{"zen": "Design for failure.", "hook_id": 1})

	diag := doctor.Run(context.Background(), doctor.Config{
		App:               fake.AppConfig(),
		WebhookSecrets:    []string{"hook-secret"},
		WebhookSecretName: "GITHUB_WEBHOOK_SECRET",
		WebhookURL:        receiver.URL,
		Targets:           []doctor.Target{{Owner: "acme", Repo: "deployer", Workflow: "deploy.yml"}},
	}, nil)
	for _, f := range diag.Findings {
		if f.Grade != doctor.Pass {
			fmt.Printf("%s %s: %s\n", f.Grade, f.Check, f.Fix)
		}
	}
	fmt.Println(diag.Summary())
	// Output:
	// FAIL webhook secret: set the same value in App settings > General > Webhook secret and in GITHUB_WEBHOOK_SECRET (during a rotation list both, new first)
	// FAIL deliveries: make GITHUB_WEBHOOK_SECRET equal to the App's webhook secret; the server redelivers failed deliveries in its reconcile loop once fixed
	// 7 ok, 0 warn, 2 failed, 0 skipped: some checks failed: fix them and run the doctor again
}
