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
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/examples/server/sqlstore"
	"github.com/ghbridge/ghbridge/github"
)

// installStateTTL bounds how long an install URL stays usable.
const installStateTTL = time.Hour

type installState struct {
	Tenant  string `json:"t"`
	Expires int64  `json:"e"`
	Nonce   string `json:"n"`
	// Installation is set by a recovery: the installation the person is
	// to prove access to.
	Installation int64 `json:"i,omitempty"`
}

func (s *Server) signState(st installState) string {
	payload, _ := json.Marshal(st)
	m := hmac.New(sha256.New, s.cfg.StateSecret)
	m.Write(payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

var errBadState = errors.New("invalid, used or expired install state: start again from the install URL")

// newState signs a state and records its nonce, which the callback
// consumes: a state works once, for its tenant, until it expires.
func (s *Server) newState(ctx context.Context, tenant string, installationID int64) (string, time.Time, error) {
	exp := s.now().Add(installStateTTL)
	st := installState{Tenant: tenant, Expires: exp.Unix(), Nonce: rand.Text(), Installation: installationID}
	err := s.db.PutInstallState(ctx, sqlstore.InstallState{Nonce: st.Nonce, Tenant: tenant, InstallationID: installationID, ExpiresAt: exp})
	return s.signState(st), exp, err
}

// consumeState checks a state's signature and expiry, then uses up its
// nonce.
func (s *Server) consumeState(ctx context.Context, raw string) (installState, error) {
	var st installState
	p, sig, ok := strings.Cut(raw, ".")
	if !ok || len(raw) > 1024 {
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
	if err := json.Unmarshal(payload, &st); err != nil || st.Tenant == "" || st.Nonce == "" || s.now().Unix() > st.Expires {
		return st, errBadState
	}
	stored, err := s.db.ConsumeInstallState(ctx, st.Nonce)
	switch {
	case errors.Is(err, sqlstore.ErrStateUsed):
		return st, errBadState
	case err != nil:
		return st, err
	case stored.Tenant != st.Tenant || stored.InstallationID != st.Installation:
		return st, errBadState
	}
	return st, nil
}

// claimUnavailable says why installations cannot be claimed, "" when
// they can: with proof of who installed (the App's OAuth client is
// configured), or without it when there is one tenant only (nobody else
// could be wronged).
func (s *Server) claimUnavailable() string {
	if s.cfg.canProveInstaller() {
		return ""
	}
	if _, ok := s.cfg.SingleTenant(); ok {
		return ""
	}
	return fmt.Sprintf("claiming installations with several tenants needs proof of who installed: set %s and %s (the App's OAuth client), and enable \"Request user authorization (OAuth) during installation\" in the App settings",
		credentials.EnvClientID, credentials.EnvClientSecret)
}

func (s *Server) installURL(w http.ResponseWriter, r *http.Request, tenant string) {
	if s.cfg.App.Slug == "" {
		writeError(w, http.StatusServiceUnavailable, "the App's slug is not configured: set "+credentials.EnvAppName)
		return
	}
	if why := s.claimUnavailable(); why != "" {
		writeError(w, http.StatusServiceUnavailable, why)
		return
	}
	state, exp, err := s.newState(r.Context(), tenant, 0)
	if err != nil {
		s.log.ErrorContext(r.Context(), "storing an install state failed", "error", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"url":       s.clients.InstallURL(s.cfg.App.Slug, state),
		"expiresAt": exp.UTC().Format(time.RFC3339),
	})
}

// installCallback is where GitHub sends the browser after an install or
// an authorization (the App's "Setup URL" and "Callback URL"). The state
// says for which tenant; the OAuth code proves that the person in the
// browser can access the installation, which the bare installation_id
// (GitHub documents) does not.
func (s *Server) installCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ctx := r.Context()
	st, err := s.consumeState(ctx, q.Get("state"))
	if err != nil {
		if !errors.Is(err, errBadState) {
			s.log.ErrorContext(ctx, "reading an install state failed", "error", err)
			writeError(w, http.StatusInternalServerError, "internal error")
			return
		}
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if q.Get("setup_action") == "request" {
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "requested", "message": "an owner of the account has to approve the installation; once they have, ask for a new install URL and claim it"})
		return
	}
	id := st.Installation
	if v := q.Get("installation_id"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || (id != 0 && n != id) {
			writeError(w, http.StatusBadRequest, "installation_id: not a number, or not the installation this state was issued for")
			return
		}
		id = n
	}
	if id == 0 {
		writeError(w, http.StatusBadRequest, "installation_id: missing")
		return
	}
	if why := s.claimUnavailable(); why != "" {
		writeError(w, http.StatusServiceUnavailable, why)
		return
	}
	if s.cfg.canProveInstaller() {
		err := s.clients.VerifyInstaller(ctx, s.cfg.App, q.Get("code"), id)
		switch {
		case errors.Is(err, github.ErrNotInstaller):
			writeError(w, http.StatusForbidden, "the GitHub user who authorized cannot access this installation")
			return
		case errors.Is(err, github.ErrAuthorizationCode):
			writeError(w, http.StatusBadRequest, err.Error()+"; start again from the install URL")
			return
		case err != nil:
			s.log.ErrorContext(ctx, "checking who installed failed", "installation_id", id, "error", err)
			writeError(w, http.StatusBadGateway, "could not check the authorization with GitHub; start again from the install URL")
			return
		}
	}
	in, err := s.claim(ctx, id, st.Tenant)
	if err != nil {
		s.installError(w, r, id, err)
		return
	}
	s.log.InfoContext(ctx, "installation claimed", "installation_id", id, "tenant", st.Tenant, "account", in.Account)
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

// recoverInstallations re-reads installations from GitHub, for a lost
// callback or webhook. With an installationId it claims that
// installation for the caller, after the same proof as an install: the
// answer is the URL where the person authorizes the App, and the claim
// happens in the callback. Without one it re-reads every installation of
// the App, claims untouched.
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
		if why := s.claimUnavailable(); why != "" {
			writeError(w, http.StatusServiceUnavailable, why)
			return
		}
		if s.cfg.canProveInstaller() {
			state, exp, err := s.newState(ctx, tenant, req.InstallationID)
			if err != nil {
				s.log.ErrorContext(ctx, "storing an install state failed", "error", err)
				writeError(w, http.StatusInternalServerError, "internal error")
				return
			}
			u, err := s.clients.AuthorizeURL(s.cfg.App, state)
			if err != nil {
				writeError(w, http.StatusServiceUnavailable, err.Error())
				return
			}
			writeJSON(w, http.StatusAccepted, map[string]any{
				"status":       "authorization required",
				"message":      "open authorizeUrl as a person who can access the installation on GitHub; the installation is claimed when GitHub sends them back",
				"authorizeUrl": u, "expiresAt": exp.UTC().Format(time.RFC3339),
			})
			return
		}
		// One tenant: nobody else could be wronged by the claim.
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

// deleteInstallation forgets one of the caller's installations: it is
// marked deleted and its cached tokens are revoked. The App stays
// installed on GitHub: uninstalling is the account owner's decision.
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
