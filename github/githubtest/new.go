package githubtest

import "testing"

// New starts a fake GitHub for the test t: NewServer with GitHub's
// contract checked against t (WithContract), closed when the test and its
// subtests end. opts come after the contract option.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := NewServer(append([]Option{WithContract(t)}, opts...)...)
	t.Cleanup(s.Close)
	return s
}
