package webhook

import (
	"context"
	"time"

	gh "github.com/google/go-github/v62/github"
)

// RecoverOptions bound a RecoverDeliveries or RecoverRepoDeliveries
// pass; the zero value looks one day back.
type RecoverOptions struct {
	// Since is the oldest delivery time looked at; GitHub keeps three
	// days of deliveries. Zero means 24 hours ago.
	Since time.Time
	// Max bounds the redeliveries requested in one pass (default 100).
	Max int
}

// RecoverReport counts what a RecoverDeliveries or RecoverRepoDeliveries
// pass saw and did, for hosts to log or count.
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
// a duplicate by the Handler. Hosts with an App run it periodically (every
// few minutes) and once at startup.
func RecoverDeliveries(ctx context.Context, client *gh.Client, opts RecoverOptions) (RecoverReport, error) {
	return recoverDeliveries(ctx, opts, client.Apps.ListHookDeliveries,
		func(ctx context.Context, id int64) error {
			_, _, err := client.Apps.RedeliverHookDelivery(ctx, id)
			return err
		})
}
