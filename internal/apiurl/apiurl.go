// Package apiurl normalises GitHub REST API base URLs. It does no I/O, so
// that package credentials can validate an App config without depending on
// the HTTP stack of package github.
package apiurl

import (
	"fmt"
	"net/url"
	"strings"
)

// DefaultBaseURL is the API root of github.com.
const DefaultBaseURL = "https://api.github.com/"

// ParseBaseURL normalises an API base URL the way go-github's
// WithEnterpriseURLs does: a trailing slash is added, and a GitHub
// Enterprise Server host given without its "/api/v3/" path gets it. An
// empty string means github.com.
func ParseBaseURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		raw = DefaultBaseURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("API base URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("API base URL %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("API base URL %q: no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("API base URL %q: must not hold credentials, a query or a fragment", raw)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	if !strings.HasSuffix(u.Path, "/api/v3/") && !strings.HasPrefix(u.Host, "api.") && !strings.Contains(u.Host, ".api.") {
		u.Path += "api/v3/"
	}
	u.RawPath = ""
	return u, nil
}

// UploadURL derives the uploads root from an API base URL.
func UploadURL(base *url.URL) *url.URL {
	u := *base
	if strings.HasSuffix(u.Path, "/api/v3/") {
		u.Path = strings.TrimSuffix(u.Path, "v3/") + "uploads/"
		return &u
	}
	if u.Host == "api.github.com" {
		u.Host = "uploads.github.com"
	}
	return &u
}
