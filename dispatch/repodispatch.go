package dispatch

import (
	"context"
	"encoding/json"
	"fmt"

	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/template"
)

func (a *attempt) repositoryDispatch(ctx context.Context, res *Receipt) error {
	const op = "repository_dispatch"
	payload := withJobID(a.cfg.ClientPayload, any(a.jobID))
	raw, err := json.Marshal(payload)
	if err != nil {
		return &Error{Kind: ErrInvalidAgentConfig, Op: op, Repo: a.cfg.Repository(), Err: err}
	}
	if len(raw) > template.MaxClientPayloadBytes {
		// Refused before sending: GitHub would refuse it, or worse, a
		// proxy would cut it.
		return &Error{Kind: ErrInvalidAgentConfig, Op: op, Repo: a.cfg.Repository(), Target: a.cfg.EventType,
			Hint: fmt.Sprintf("client_payload is %d bytes of JSON; GitHub takes less than 64 KB (%d bytes); send a reference (a URL, an id) instead of the data", len(raw), template.MaxClientPayloadBytes)}
	}
	msg := json.RawMessage(raw)
	since := a.d.now().Add(-a.d.lookup.ClockSkew)
	err = a.retrying(ctx, op, a.cfg.EventType, func() error {
		_, _, err := a.client.Repositories.Dispatch(ctx, a.cfg.Owner, a.cfg.Repo, gh.DispatchRequestOptions{EventType: a.cfg.EventType, ClientPayload: &msg})
		return err
	}, func(e *Error) (bool, error) {
		err := a.resolveAmbiguous(ctx, e, since, res)
		return res.RunID != 0, err
	})
	if err != nil || res.RunID != 0 {
		return err
	}
	run, err := a.findRun(ctx, since, a.runTimeout())
	if err != nil {
		return err
	}
	if run == nil && a.step {
		return nil // accepted; the run is matched by its job id later
	}
	if run == nil {
		return &Error{Kind: ErrRunNotFound, Op: op, Repo: a.cfg.Repository(), Target: a.cfg.EventType,
			Hint: "no run with the job id appeared; the workflow needs \"on: repository_dispatch\" with this event type and \"run-name: ... ${{ github.event.client_payload.job_id }}\""}
	}
	setRun(res, run)
	return nil
}
