// Package github builds go-github clients for ghbridge credentials.
//
// A ClientFactory holds one retrying transport (go-retryablehttp with a
// GitHub-aware policy, see Transport) and hands out *github.Client values
// from github.com/google/go-github/v62 authenticated for a
// credentials.Credential, or as the App itself. Errors from GitHub reach
// the caller as go-github's typed errors (*github.ErrorResponse,
// *github.RateLimitError, *github.AbuseRateLimitError).
//
// Package githubtest is an in-process fake of the GitHub API for tests and
// demos.
package github
