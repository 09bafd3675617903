package githubtest

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The objects below carry every field GitHub's OpenAPI description marks
// as required, with values shaped like GitHub's, so that clients reading
// a field the fake would otherwise leave out are tested against it.

// nodeID returns a GitHub-style global node id.
func nodeID(kind string, id int64) string {
	return kind + "_" + base64.RawURLEncoding.EncodeToString([]byte(kind+strconv.FormatInt(id, 10)))
}

// userJSON is a simple-user: an account, an organization or a bot.
func (s *Server) userJSON(login string, id int64, typ string) map[string]any {
	api := func(p string) string { return s.apiURL("/users/%s%s", login, p) }
	return map[string]any{
		"login": login, "id": id, "node_id": nodeID("U", id), "type": typ, "site_admin": false,
		"avatar_url":          s.webURL(fmt.Sprintf("avatars/u/%d?v=4", id)),
		"gravatar_id":         "",
		"url":                 api(""),
		"html_url":            s.webURL(login),
		"followers_url":       api("/followers"),
		"following_url":       api("/following{/other_user}"),
		"gists_url":           api("/gists{/gist_id}"),
		"starred_url":         api("/starred{/owner}{/repo}"),
		"subscriptions_url":   api("/subscriptions"),
		"organizations_url":   api("/orgs"),
		"repos_url":           api("/repos"),
		"events_url":          api("/events{/privacy}"),
		"received_events_url": api("/received_events"),
	}
}

// accountJSON is the owner of an installation or repository.
func (s *Server) accountJSON(login, typ string) map[string]any {
	if typ == "" {
		typ = "Organization"
	}
	return s.userJSON(login, accountID(login), typ)
}

// botJSON is the App's bot user, the creator of what the App makes.
func (s *Server) botJSON() map[string]any {
	return s.userJSON(s.AppSlug+"[bot]", 41898282+s.AppID, "Bot")
}

// appJSON is the App (an integration).
func (s *Server) appJSON() map[string]any {
	created := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC).Format(time.RFC3339)
	return map[string]any{
		"id": s.AppID, "slug": s.AppSlug, "node_id": nodeID("A", s.AppID), "client_id": s.ClientID,
		"name": "ghbridge test App", "description": "ghbridge's fake App",
		"owner":        s.accountJSON("ghbridge", "Organization"),
		"external_url": s.webURL(""),
		"html_url":     s.webURL("apps/" + s.AppSlug),
		"created_at":   created, "updated_at": created,
		"permissions": defaultPermissions,
		"events":      s.events(),
	}
}

// fullRepoJSON fills a repository object with the URLs and counters
// GitHub sends; the result serves as repository, minimal-repository and
// full-repository.
func (s *Server) fullRepoJSON(m map[string]any, rp *repo) map[string]any {
	full := rp.Owner + "/" + rp.Name
	api := func(p string) string { return s.apiURL("/repos/%s%s", full, p) }
	created := rp.createdAt.UTC().Format(time.RFC3339)
	urls := map[string]string{
		"archive_url": "/{archive_format}{/ref}", "assignees_url": "/assignees{/user}", "blobs_url": "/git/blobs{/sha}",
		"branches_url": "/branches{/branch}", "collaborators_url": "/collaborators{/collaborator}",
		"comments_url": "/comments{/number}", "commits_url": "/commits{/sha}", "compare_url": "/compare/{base}...{head}",
		"contents_url": "/contents/{+path}", "contributors_url": "/contributors", "deployments_url": "/deployments",
		"downloads_url": "/downloads", "events_url": "/events", "forks_url": "/forks",
		"git_commits_url": "/git/commits{/sha}", "git_refs_url": "/git/refs{/sha}", "git_tags_url": "/git/tags{/sha}",
		"hooks_url": "/hooks", "issue_comment_url": "/issues/comments{/number}", "issue_events_url": "/issues/events{/number}",
		"issues_url": "/issues{/number}", "keys_url": "/keys{/key_id}", "labels_url": "/labels{/name}",
		"languages_url": "/languages", "merges_url": "/merges", "milestones_url": "/milestones{/number}",
		"notifications_url": "/notifications{?since,all,participating}", "pulls_url": "/pulls{/number}",
		"releases_url": "/releases{/id}", "stargazers_url": "/stargazers", "statuses_url": "/statuses/{sha}",
		"subscribers_url": "/subscribers", "subscription_url": "/subscription", "tags_url": "/tags",
		"teams_url": "/teams", "trees_url": "/git/trees{/sha}",
	}
	for k, p := range urls {
		m[k] = api(p)
	}
	host := strings.TrimPrefix(strings.TrimPrefix(s.webURL(""), "http://"), "https://")
	for k, v := range map[string]any{
		"description": nil, "fork": false, "homepage": nil, "language": nil, "mirror_url": nil, "license": nil,
		"clone_url": s.webURL(full + ".git"), "git_url": "git://" + host + full + ".git",
		"ssh_url": "git@" + strings.TrimSuffix(host, "/") + ":" + full + ".git", "svn_url": s.webURL(full),
		"forks": 0, "forks_count": 0, "open_issues": 0, "open_issues_count": 0, "size": 1,
		"stargazers_count": 0, "watchers": 0, "watchers_count": 0, "network_count": 0, "subscribers_count": 0,
		"has_issues": true, "has_projects": true, "has_wiki": true, "has_pages": false, "has_downloads": true,
		"has_discussions": false, "archived": false, "disabled": false, "visibility": visibility(rp.Private),
		"pushed_at": created, "updated_at": created,
	} {
		m[k] = v
	}
	return m
}

func visibility(private bool) string {
	if private {
		return "private"
	}
	return "public"
}

// gitUserJSON is the author or committer of a git commit.
func gitUserJSON(at string) map[string]any {
	return map[string]any{"name": "ghbridge", "email": "ghbridge@users.noreply.github.com", "date": at}
}

// unverified is the verification of an unsigned commit.
var unverified = map[string]any{"verified": false, "reason": "unsigned", "signature": nil, "payload": nil, "verified_at": nil}

// refJSON is a git reference.
func (s *Server) refJSON(rp *repo, ref, sha string) map[string]any {
	full := rp.Owner + "/" + rp.Name
	return map[string]any{
		"ref": ref, "node_id": nodeID("REF", int64(len(ref))) + sha[:min(8, len(sha))],
		"url":    s.apiURL("/repos/%s/git/%s", full, ref),
		"object": map[string]any{"sha": sha, "type": "commit", "url": s.apiURL("/repos/%s/git/commits/%s", full, sha)},
	}
}
