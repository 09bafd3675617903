// Package github is ghbridge's HTTP side: it talks to GitHub for the
// credentials of package credentials.
//
// A ClientFactory holds one retrying transport (go-retryablehttp with a
// GitHub-aware policy, see RetryPolicy) and hands out *github.Client
// values from github.com/google/go-github/v62 authenticated for a
// credentials.Credential, or as the App itself (a JWT, through
// ghinstallation). Its TokenCache exchanges the App's JWT for installation
// tokens: it is the credentials.TokenSource of the App. A ClientSource
// resolves a job's credential and builds its client in one call; dispatch,
// status and control take one. Errors from GitHub reach the caller as
// go-github's typed errors (*github.ErrorResponse, *github.RateLimitError,
// *github.AbuseRateLimitError).
//
// Package githubtest is an in-process fake of the GitHub API for tests and
// demos.
package github
