package webhook

import (
	"encoding/json"
	"regexp"
	"sync"
	"time"

	gh "github.com/google/go-github/v62/github"
)

func parseGitHubEvent(event string, payload []byte) (any, error) {
	ev, err := gh.ParseWebHook(event, payload)
	if err == nil {
		return ev, nil
	}
	// Older payloads carry timestamps go-github does not read, such as
	// an App's created_at "2018-04-25 20:42:10"; retry with them in
	// RFC 3339.
	if fixed, ok := normalizeTimestamps(payload); ok {
		if ev, err2 := gh.ParseWebHook(event, fixed); err2 == nil {
			return ev, nil
		}
	}
	return nil, err
}

// oldTimestamp matches GitHub's older timestamp spellings: a space
// instead of the T, with an optional numeric zone or UTC.
var oldTimestamp = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}( ?(?:[+-]\d{2}:?\d{2}|UTC|Z))?$`)

var oldLayouts = []string{
	"2006-01-02 15:04:05 -0700", "2006-01-02 15:04:05 -07:00", "2006-01-02 15:04:05-07:00",
	"2006-01-02 15:04:05-0700", "2006-01-02 15:04:05 MST", "2006-01-02 15:04:05Z", "2006-01-02 15:04:05",
}

// normalizeTimestamps rewrites every string value in an old timestamp
// format to RFC 3339; ok is false when there was none.
func normalizeTimestamps(payload []byte) ([]byte, bool) {
	var v any
	if json.Unmarshal(payload, &v) != nil {
		return nil, false
	}
	changed := false
	var walk func(any) any
	walk = func(x any) any {
		switch x := x.(type) {
		case map[string]any:
			for k, e := range x {
				x[k] = walk(e)
			}
		case []any:
			for i, e := range x {
				x[i] = walk(e)
			}
		case string:
			if !oldTimestamp.MatchString(x) {
				return x
			}
			for _, l := range oldLayouts {
				if t, err := time.Parse(l, x); err == nil {
					changed = true
					return t.UTC().Format(time.RFC3339)
				}
			}
		}
		return x
	}
	v = walk(v)
	if !changed {
		return nil, false
	}
	out, err := json.Marshal(v)
	return out, err == nil
}

// OtherEvent is the label (EventLabel, Observation.Event) of every event
// name that is not a known GitHub event.
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
// itself is chosen by whoever sends the request, signed or not. Hosts
// label what they count outside an Observation with it.
func EventLabel(event string) string {
	if knownEvents()[event] {
		return event
	}
	return OtherEvent
}
