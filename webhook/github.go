package webhook

import (
	"sync"

	gh "github.com/google/go-github/v62/github"
)

func parseGitHubEvent(event string, payload []byte) (any, error) {
	return gh.ParseWebHook(event, payload)
}

// OtherEvent is the label of every event name that is not a known GitHub
// event.
const OtherEvent = "other"

// knownEvents are the webhook event names of GitHub's documentation, as
// go-github lists them: a fixed set.
var knownEvents = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for _, t := range gh.MessageTypes() {
		m[t] = true
	}
	return m
})

// EventLabel returns event if it is one of GitHub's webhook event names
// ("workflow_run", "ping", ...), else OtherEvent. The result comes from a
// fixed set, so it is safe as a metric label; the X-GitHub-Event header
// itself is chosen by whoever sends the request, signed or not.
func EventLabel(event string) string {
	if knownEvents()[event] {
		return event
	}
	return OtherEvent
}
