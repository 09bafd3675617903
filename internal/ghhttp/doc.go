// Package ghhttp holds the HTTP plumbing shared by the credentials and github
// packages: a go-retryablehttp transport with a GitHub-aware retry policy and
// API base URL handling. It is internal so that hosts configure it through
// github.ClientFactory options rather than depend on its shape.
package ghhttp
