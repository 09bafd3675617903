package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"

	gh "github.com/google/go-github/v62/github"
)

// RecoverOptions bound a RecoverDeliveries pass.
type RecoverOptions struct {
	// Since is the oldest delivery time looked at; GitHub keeps three
	// days of deliveries. Zero means 24 hours ago.
	Since time.Time
	// Max bounds the redeliveries requested in one pass (default 100).
	Max int
}

// RecoverReport counts what a RecoverDeliveries pass saw and did.
type RecoverReport struct {
	// Scanned counts delivery attempts listed, Failed the deliveries
	// (GUIDs) with no successful attempt, Redelivered those asked for again.
	Scanned, Failed, Redelivered int
}

// RecoverDeliveries asks GitHub to redeliver the App's webhook deliveries
// that failed: GitHub never retries a delivery on its own. client must be
// authenticated as the App (github.ClientFactory.AppClient). A delivery
// (GUID) with any successful attempt is left alone; for the others the
// latest attempt is redelivered. Redeliveries keep their GUID, so a
// delivery that was processed but whose answer was lost is recognised as
// a duplicate by the Handler.
func RecoverDeliveries(ctx context.Context, client *gh.Client, opts RecoverOptions) (RecoverReport, error) {
	var rep RecoverReport
	if opts.Since.IsZero() {
		opts.Since = time.Now().Add(-24 * time.Hour)
	}
	if opts.Max <= 0 {
		opts.Max = 100
	}
	type guid struct {
		ok     bool
		latest int64
	}
	seen := map[string]*guid{}
	var order []string
	list := &gh.ListCursorOptions{PerPage: 100}
	for pages := 0; pages < 100; pages++ {
		ds, resp, err := client.Apps.ListHookDeliveries(ctx, list)
		if err != nil {
			return rep, fmt.Errorf("listing webhook deliveries: %w", err)
		}
		older := false
		for _, d := range ds {
			if d.GetDeliveredAt().Before(opts.Since) {
				older = true
				continue
			}
			rep.Scanned++
			g := seen[d.GetGUID()]
			if g == nil {
				g = &guid{}
				seen[d.GetGUID()] = g
				order = append(order, d.GetGUID())
			}
			if code := d.GetStatusCode(); code >= 200 && code < 300 {
				g.ok = true
			} else if g.latest == 0 {
				g.latest = d.GetID() // newest first: the first failed one is the latest
			}
		}
		if older || resp.Cursor == "" {
			break
		}
		list.Cursor = resp.Cursor
	}
	for _, id := range order {
		g := seen[id]
		if g.ok {
			continue
		}
		rep.Failed++
		if rep.Redelivered >= opts.Max {
			continue
		}
		_, _, err := client.Apps.RedeliverHookDelivery(ctx, g.latest)
		var accepted *gh.AcceptedError
		if err != nil && !errors.As(err, &accepted) {
			return rep, fmt.Errorf("redelivering %s: %w", id, err)
		}
		rep.Redelivered++
	}
	return rep, nil
}
