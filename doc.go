// Package ghbridge runs a control plane's jobs on GitHub Actions through a
// GitHub App, and turns the runs' progress back into job statuses.
//
//	job --> credentials --> template --> dispatch --> GitHub Actions run
//	                                                        |
//	job status <-- status <-- webhook <-- workflow_run / deployment_status / ...
//
// New wires the pipeline from a Config (the App and the host's stores)
// into a Bridge: Accept stores a job, Dispatch or Step (from the host's
// queue) sends it, and Webhooks is the http.Handler whose deliveries move
// it. The package holds no logic of its own: it composes the packages
// below, which hosts may also use one by one.
//
// The module is a set of small packages that compose around storage
// interfaces the host implements (each with an in-memory implementation and
// an exported conformance suite):
//
//   - credentials: GitHub App configuration, installation token cache,
//     credential resolution (installation, static token, secret reference),
//     audit events. Tokens never reach logs.
//   - github: go-github clients for a credential, over a retrying transport
//     that honours GitHub's rate limits and never blindly repeats a POST;
//     github/githubtest is a fake GitHub API for tests and demos.
//   - template: renders a job agent's config (Go templates) against the job.
//   - dispatch: turns a job into a workflow_dispatch, repository_dispatch,
//     deployment or pull request, and finds the run it created.
//   - webhook: verifies, de-duplicates and routes GitHub deliveries.
//   - status: maps runs to job statuses without ever regressing a finished
//     job, and reports back to GitHub.
//   - control: cancel, re-run, approve and reject jobs on GitHub.
//   - failure: the classes every error falls in (retry, or which fix).
//   - doctor: checks a GitHub setup and names the cause of what fails.
//
// examples/server is a reference server wiring everything together;
// examples/demo runs the whole pipeline against the fake GitHub.
package ghbridge
