package app

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/credentials"
)

// installStateTTL bounds how long an install URL stays usable.
const installStateTTL = time.Hour

type installState struct {
	Tenant  string `json:"t"`
	Expires int64  `json:"e"`
	Nonce   string `json:"n"`
}

func (s *Server) signState(st installState) string {
	payload, _ := json.Marshal(st)
	m := hmac.New(sha256.New, s.cfg.StateSecret)
	m.Write(payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

var errBadState = errors.New("invalid or expired install state: start again from the install URL")

func (s *Server) verifyState(raw string) (installState, error) {
	var st installState
	p, sig, ok := strings.Cut(raw, ".")
	if !ok {
		return st, errBadState
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil {
		return st, errBadState
	}
	m := hmac.New(sha256.New, s.cfg.StateSecret)
	m.Write(payload)
	if !hmac.Equal(m.Sum(nil), mac) {
		return st, errBadState
	}
	if err := json.Unmarshal(payload, &st); err != nil || st.Tenant == "" || s.now().Unix() > st.Expires {
		return st, errBadState
	}
	return st, nil
}

// webBase returns the web root for the API root: github.com for
// api.github.com, the host itself for GitHub Enterprise Server.
func webBase(api *url.URL) (root string, ghes bool) {
	if api.Host == "api.github.com" {
		return "https://github.com", false
	}
	return api.Scheme + "://" + api.Host, true
}

func (s *Server) installURL(w http.ResponseWriter, r *http.Request, tenant string) {
	if s.cfg.App.Slug == "" {
		writeError(w, http.StatusServiceUnavailable, "the App's slug is not configured: set "+credentials.EnvAppName)
		return
	}
	exp := s.now().Add(installStateTTL)
	state := s.signState(installState{Tenant: tenant, Expires: exp.Unix(), Nonce: rand.Text()[:12]})
	root, ghes := webBase(s.clients.BaseURL())
	path := "/apps/"
	if ghes {
		path = "/github-apps/"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"url":       root + path + url.PathEscape(s.cfg.App.Slug) + "/installations/new?state=" + url.QueryEscape(state),
		"expiresAt": exp.UTC().Format(time.RFC3339),
	})
}

// installCallback is where GitHub sends the browser after an install
// (the App's "Setup URL").
func (s *Server) installCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	st, err := s.verifyState(q.Get("state"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if q.Get("setup_action") == "request" {
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "requested", "message": "an owner of the account has to approve the installation; it is recorded when they do"})
		return
	}
	id, err := strconv.ParseInt(q.Get("installation_id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "installation_id: missing or not a number")
		return
	}
	in, err := s.claim(r.Context(), id, st.Tenant)
	if err != nil {
		s.installError(w, r, id, err)
		return
	}
	s.log.InfoContext(r.Context(), "installation claimed", "installation_id", id, "tenant", st.Tenant, "account", in.Account)
	writeJSON(w, http.StatusOK, map[string]any{"status": "installed", "installation": installationView(in)})
}

// claim syncs an installation from GitHub and claims it for tenant.
func (s *Server) claim(ctx context.Context, id int64, tenant string) (credentials.Installation, error) {
	// Check the claim before touching anything: another tenant's
	// installation is refused as it is.
	if in, err := s.db.Installations().GetInstallation(ctx, id); err == nil && in.Tenant != "" && in.Tenant != tenant {
		return in, credentials.ErrInstallationClaimed
	}
	in, err := s.syncInstallation(ctx, id)
	if err != nil {
		return in, err
	}
	if err := s.db.Installations().ClaimInstallation(ctx, id, tenant); err != nil {
		return in, err
	}
	in.Tenant = tenant
	return in, nil
}

var errNoSuchInstallation = errors.New("GitHub has no such installation of this App")

// syncInstallation reads an installation and its repositories from
// GitHub and stores them.
func (s *Server) syncInstallation(ctx context.Context, id int64) (credentials.Installation, error) {
	app, err := s.appClient()
	if err != nil {
		return credentials.Installation{}, err
	}
	gi, _, err := app.Apps.GetInstallation(ctx, id)
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusNotFound {
		return credentials.Installation{}, errNoSuchInstallation
	}
	if err != nil {
		return credentials.Installation{}, err
	}
	in := credentials.Installation{
		ID: id, Account: gi.GetAccount().GetLogin(), AccountType: gi.GetAccount().GetType(), Status: credentials.StatusActive,
		RepositorySelection: gi.GetRepositorySelection(),
	}
	if in.RepositorySelection == "" {
		in.RepositorySelection = credentials.SelectionSelected
	}
	if gi.SuspendedAt != nil {
		in.Status = credentials.StatusSuspended
	} else {
		s.tokens.Revoke(id) // permissions may have changed: start from a fresh token
		client, err := s.clients.Client(credentials.ForInstallation(s.tokens, id, "install sync"))
		if err != nil {
			return in, err
		}
		opts := &gh.ListOptions{PerPage: 100}
		for page := 0; page < 50; page++ {
			repos, resp, err := client.Apps.ListRepos(ctx, opts)
			if err != nil {
				return in, fmt.Errorf("listing the installation's repositories: %w", err)
			}
			for _, r := range repos.Repositories {
				in.Repositories = append(in.Repositories, r.GetFullName())
			}
			if resp.NextPage == 0 {
				break
			}
			opts.Page = resp.NextPage
		}
	}
	return in, s.db.Installations().UpsertInstallation(ctx, in)
}

func (s *Server) installError(w http.ResponseWriter, r *http.Request, id int64, err error) {
	switch {
	case errors.Is(err, credentials.ErrInstallationClaimed):
		// Which tenant holds it is not revealed.
		writeError(w, http.StatusConflict, "this installation is already claimed")
	case errors.Is(err, errNoSuchInstallation):
		writeError(w, http.StatusNotFound, err.Error())
	default:
		s.log.ErrorContext(r.Context(), "installation sync failed", "installation_id", id, "error", err)
		writeError(w, http.StatusBadGateway, "could not read the installation from GitHub; try again")
	}
}

type recoverRequest struct {
	InstallationID int64 `json:"installationId"`
}

// recoverInstallations re-reads installations from GitHub: one, claimed
// for the caller when unclaimed, or every installation of the App (claims
// untouched), for a lost callback or webhook.
func (s *Server) recoverInstallations(w http.ResponseWriter, r *http.Request, tenant string) {
	var req recoverRequest
	if r.ContentLength != 0 && !decodeBody(w, r, &req) {
		return
	}
	ctx := r.Context()
	if req.InstallationID < 0 {
		writeError(w, http.StatusBadRequest, "installationId: must be positive")
		return
	}
	if req.InstallationID > 0 {
		in, err := s.claim(ctx, req.InstallationID, tenant)
		if err != nil {
			s.installError(w, r, req.InstallationID, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"installations": []any{installationView(in)}})
		return
	}
	app, err := s.appClient()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	opts := &gh.ListOptions{PerPage: 100}
	for page := 0; page < 50; page++ {
		list, resp, err := app.Apps.ListInstallations(ctx, opts)
		if err != nil {
			s.installError(w, r, 0, err)
			return
		}
		for _, gi := range list {
			if _, err := s.syncInstallation(ctx, gi.GetID()); err != nil {
				s.installError(w, r, gi.GetID(), err)
				return
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	all, err := s.db.Installations().ListInstallations(ctx)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	mine := []any{}
	for _, in := range all {
		if in.Tenant == tenant {
			mine = append(mine, installationView(in))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"installations": mine})
}

// deleteInstallation uninstalls the App from one of the caller's
// installations and marks it deleted.
func (s *Server) deleteInstallation(w http.ResponseWriter, r *http.Request, tenant string) {
	ctx := r.Context()
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "installation id: not a number")
		return
	}
	in, err := s.db.Installations().GetInstallation(ctx, id)
	if err != nil || in.Tenant != tenant {
		writeError(w, http.StatusNotFound, "no such installation")
		return
	}
	app, err := s.appClient()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	_, err = app.Apps.DeleteInstallation(ctx, id)
	var er *gh.ErrorResponse
	if err != nil && !(errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusNotFound) {
		s.installError(w, r, id, err)
		return
	}
	if err := s.db.Installations().SetInstallationStatus(ctx, id, credentials.StatusDeleted); err != nil {
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	s.tokens.Revoke(id)
	w.WriteHeader(http.StatusNoContent)
}

func installationView(in credentials.Installation) map[string]any {
	repos := in.Repositories
	if repos == nil {
		repos = []string{}
	}
	return map[string]any{
		"id": in.ID, "account": in.Account, "accountType": in.AccountType, "status": in.Status,
		"repositorySelection": in.RepositorySelection, "repositories": repos,
	}
}
