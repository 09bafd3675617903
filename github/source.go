package github

import (
	"context"

	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/credentials"
)

// ClientSource turns a job's target into a client: it resolves the
// target's credential and builds a client authenticated with it. It is
// the one way packages dispatch, status and control get their clients,
// each through a one-method interface of its own: hosts make one and
// pass it to each. It is safe for concurrent use.
type ClientSource struct {
	resolver *credentials.Resolver
	clients  *ClientFactory
}

// NewClientSource returns a ClientSource resolving with r and building
// clients with f.
func NewClientSource(r *credentials.Resolver, f *ClientFactory) *ClientSource {
	return &ClientSource{resolver: r, clients: f}
}

// For returns a client authenticated for t and the credential it uses.
// When resolution fails the error is the Resolver's and nothing was sent
// to GitHub; the credential is returned whenever resolution succeeded.
// Hosts rarely call it: dispatch, status and control do.
func (s *ClientSource) For(ctx context.Context, t credentials.Target) (*gh.Client, credentials.Credential, error) {
	cred, err := s.resolver.Resolve(ctx, t)
	if err != nil {
		return nil, cred, err
	}
	client, err := s.clients.Client(cred)
	if err != nil {
		return nil, cred, err
	}
	return client, cred, nil
}

// APIVersion returns the REST API version of the clients, which tells
// package dispatch how GitHub answers a workflow dispatch. Hosts do not
// need to call it.
func (s *ClientSource) APIVersion() string { return s.clients.APIVersion() }
