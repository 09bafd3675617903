package app_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ghbridge/ghbridge/doctor"
	"github.com/ghbridge/ghbridge/examples/server/app"
)

// The command reads the server's variables, names a broken one instead
// of stopping at it, and ends with the summary line.
func TestDoctorCommand(t *testing.T) {
	t.Parallel()
	fake, _ := fakeGitHub(t)
	fake.SetWebhook("https://deploy.example/api/github/webhook", secret)
	opts := app.DoctorOptions{Targets: []doctor.Target{{Owner: "acme", Repo: "deployer", Workflow: "deploy.yml"}}}
	var out bytes.Buffer
	ok := app.Doctor(context.Background(), lookup(baseVars(fake, "")), opts, &out)
	assert.True(t, ok, out.String())
	assert.Contains(t, out.String(), "0 failed")
	assert.Contains(t, out.String(), "cannot tell whether GITHUB_WEBHOOK_SECRET matches", "no delivery yet: said honestly")

	vars := baseVars(fake, "")
	vars["GITHUB_APP_ID"] = "abc"
	out.Reset()
	assert.False(t, app.Doctor(context.Background(), lookup(vars), opts, &out))
	assert.Contains(t, out.String(), "FAIL  app config: GITHUB_APP_ID")
	assert.Contains(t, out.String(), "some checks failed")
}
