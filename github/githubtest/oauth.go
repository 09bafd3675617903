package githubtest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A user of the fake: a person who can authorize the App (OAuth) and who
// can see some of its installations, as GET /user/installations lists
// them. A user token sees exactly the installations the user was given.

// oauthCodeLifetime is how long an authorization code is valid on GitHub.
const oauthCodeLifetime = 10 * time.Minute

type oauthCode struct {
	login   string
	expires time.Time
}

// AddUser adds (or extends) a user who has access to the installations
// given: GET /user/installations lists them for the user's tokens. Hosts
// test their install callback (github.ClientFactory.VerifyInstaller) with it
// and AuthorizeUser.
func (s *Server) AddUser(login string, installationIDs ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users == nil {
		s.users = map[string][]int64{}
	}
	s.users[login] = append(s.users[login], installationIDs...)
}

// AuthorizeUser is what GitHub does when login authorizes the App in the
// browser (during installation, or through the authorize URL): it returns
// the single-use code that GitHub appends to the callback URL.
func (s *Server) AuthorizeUser(login string) string {
	code := randomHex(10)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.oauthCodes == nil {
		s.oauthCodes = map[string]oauthCode{}
	}
	s.oauthCodes[code] = oauthCode{login: login, expires: s.now().Add(oauthCodeLifetime)}
	return code
}

// UserTokensIssued returns how many user access tokens the fake issued.
// Tests check with it that a callback's code was exchanged once.
func (s *Server) UserTokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.userTokens)
}

// webRoutes are served outside the API prefix, on the web host, as
// GitHub serves them on github.com (and GitHub Enterprise Server on its
// host).
func (s *Server) webRoutes(mux router) {
	mux.HandleFunc("POST /login/oauth/access_token", s.oauthAccessToken)
}

// oauthAccessToken exchanges a code for a user token. Like GitHub, it
// answers 200 with an "error" field for a bad code or client credentials.
func (s *Server) oauthAccessToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	var in struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		Code         string `json:"code"`
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			writeError(w, http.StatusBadRequest, "Problems parsing JSON")
			return
		}
	} else {
		if err := r.ParseForm(); err != nil {
			writeError(w, http.StatusBadRequest, "Problems parsing the form")
			return
		}
		in.ClientID, in.ClientSecret, in.Code = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"), r.PostForm.Get("code")
	}
	// A client authenticating with HTTP basic auth, as golang.org/x/oauth2
	// may, is accepted too.
	if id, secret, ok := r.BasicAuth(); ok {
		in.ClientID, in.ClientSecret = id, secret
	}
	oauthError := func(code, desc string) {
		writeJSON(w, http.StatusOK, map[string]string{
			"error": code, "error_description": desc,
			"error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#" + strings.ReplaceAll(code, "_", "-"),
		})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.ClientID != s.ClientID || in.ClientSecret == "" || in.ClientSecret != s.ClientSecret {
		oauthError("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.")
		return
	}
	c, ok := s.oauthCodes[in.Code]
	delete(s.oauthCodes, in.Code) // single use, as on GitHub
	if !ok || s.now().After(c.expires) {
		oauthError("bad_verification_code", "The code passed is incorrect or expired.")
		return
	}
	tok := "ghu_" + randomHex(18)
	if s.userTokens == nil {
		s.userTokens = map[string]string{}
	}
	s.userTokens[tok] = c.login
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "token_type": "bearer", "scope": "",
		"expires_in": 28800, "refresh_token": "ghr_" + randomHex(18), "refresh_token_expires_in": 15897600,
	})
}

func (s *Server) userRoutes(mux router) {
	// The user token is checked here rather than by handle's auth kinds:
	// only this route accepts it.
	s.handle(mux, "GET /user/installations", authNone, func(w http.ResponseWriter, r *http.Request, _ caller) {
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		s.mu.Lock()
		login, ok := s.userTokens[tok]
		var list []map[string]any
		if ok {
			for _, id := range s.users[login] {
				if in := s.installations[id]; in != nil && !in.deleted && !slices.ContainsFunc(list, func(m map[string]any) bool { return m["id"] == id }) {
					list = append(list, s.installationJSON(in))
				}
			}
		}
		s.mu.Unlock()
		if !ok || (!strings.EqualFold(scheme, "bearer") && !strings.EqualFold(scheme, "token")) {
			writeError(w, http.StatusUnauthorized, "Bad credentials")
			return
		}
		slices.SortFunc(list, func(a, b map[string]any) int { return int(a["id"].(int64) - b["id"].(int64)) })
		page, perPage := paging(r.URL.Query())
		start := min((page-1)*perPage, len(list))
		end := min(start+perPage, len(list))
		if end < len(list) {
			s.linkNext(w, r, "page", strconv.Itoa(page+1), "per_page", strconv.Itoa(perPage))
		}
		items := list[start:end]
		if items == nil {
			items = []map[string]any{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"total_count": len(list), "installations": items})
	})
}
