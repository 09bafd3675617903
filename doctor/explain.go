package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"syscall"

	gh "github.com/google/go-github/v62/github"
)

// Cause is what kind of failure an error of a GitHub call is. Hosts that
// react to a failed check by its kind read it from Explained.Cause.
type Cause string

// Causes told apart by the checks.
const (
	CauseDNS          Cause = "dns"
	CauseRefused      Cause = "connection refused"
	CauseTLS          Cause = "tls"
	CauseTimeout      Cause = "timeout"
	CauseNetwork      Cause = "network"
	CauseUnauthorized Cause = "401"
	CauseForbidden    Cause = "403"
	CauseNotFound     Cause = "404"
	CauseRateLimited  Cause = "rate limited"
	CauseGitHub       Cause = "github"
)

// Explained is an error of a GitHub call with what it means for a person:
// the Err of a Finding whose check called GitHub. Hosts get it with
// errors.As to tell an unreachable GitHub (Network) from a refusal.
type Explained struct {
	Cause Cause
	// Host is the host the call went to.
	Host string
	// Text says what happened, Meaning what it usually means.
	Text, Meaning string
	Err           error
}

// Error says what happened and what it usually means.
func (e *Explained) Error() string {
	if e.Meaning == "" {
		return e.Text
	}
	return e.Text + " (" + e.Meaning + ")"
}

// Unwrap returns the underlying error.
func (e *Explained) Unwrap() error { return e.Err }

// Network reports whether GitHub was not reached at all.
func (e *Explained) Network() bool {
	switch e.Cause {
	case CauseDNS, CauseRefused, CauseTLS, CauseTimeout, CauseNetwork:
		return true
	}
	return false
}

// explain classifies err, the error of a call to host: a network failure
// (DNS, refused, TLS, timeout) is told apart from GitHub's answers (401,
// 403, 404, rate limits), each with what it usually means. authAs names
// the credential used ("the App's JWT", "the installation token").
func explain(err error, host, authAs string) *Explained {
	if err == nil {
		return nil
	}
	var ex *Explained
	if errors.As(err, &ex) {
		return ex
	}
	e := &Explained{Host: host, Err: err}
	var er *gh.ErrorResponse
	var rl *gh.RateLimitError
	var arl *gh.AbuseRateLimitError
	var dns *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostnameErr x509.HostnameError
	var recordErr tls.RecordHeaderError
	var netErr net.Error
	var urlErr *url.Error
	switch {
	case errors.As(err, &rl), errors.As(err, &arl):
		e.Cause, e.Text = CauseRateLimited, "GitHub rate-limits the calls: "+err.Error()
		e.Meaning = "wait for the reset; the server's metrics show the rate limit left per installation"
	case errors.As(err, &er) && er.Response != nil:
		code := er.Response.StatusCode
		e.Text = fmt.Sprintf("GitHub answered %d %s: %s", code, http.StatusText(code), er.Message)
		switch code {
		case http.StatusUnauthorized:
			e.Cause = CauseUnauthorized
			e.Meaning = "GitHub does not accept " + authAs
		case http.StatusForbidden:
			e.Cause = CauseForbidden
			e.Meaning = authAs + " is valid but lacks a permission, or an IP allow list or suspension blocks it"
		case http.StatusNotFound:
			e.Cause = CauseNotFound
			e.Meaning = "it does not exist, or " + authAs + " may not see it (GitHub answers 404 for both)"
		default:
			e.Cause = CauseGitHub
		}
	case errors.As(err, &dns):
		e.Cause = CauseDNS
		e.Text = fmt.Sprintf("cannot resolve %s: %v", host, dns.Err)
		e.Meaning = "check GITHUB_API_URL and this machine's DNS"
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Cause = CauseRefused
		e.Text = fmt.Sprintf("connection to %s refused", host)
		e.Meaning = "nothing listens there: check GITHUB_API_URL, the port, and any proxy"
	case errors.As(err, &certErr), errors.As(err, &unknownAuthority), errors.As(err, &hostnameErr), errors.As(err, &recordErr):
		e.Cause = CauseTLS
		e.Text = fmt.Sprintf("TLS with %s failed: %v", host, err)
		e.Meaning = "a proxy intercepting TLS, a plain-HTTP port, or a GitHub Enterprise Server certificate this machine does not trust"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		e.Cause = CauseTimeout
		e.Text = fmt.Sprintf("no answer from %s in time", host)
		e.Meaning = "a firewall or proxy drops the traffic, or the host is down"
	case errors.As(err, &urlErr):
		e.Cause = CauseNetwork
		e.Text = fmt.Sprintf("cannot reach %s: %v", host, urlErr.Err)
	default:
		e.Cause, e.Text = CauseGitHub, err.Error()
	}
	return e
}
