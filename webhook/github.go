package webhook

import gh "github.com/google/go-github/v62/github"

func parseGitHubEvent(event string, payload []byte) (any, error) {
	return gh.ParseWebHook(event, payload)
}
