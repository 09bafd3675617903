package webhook

import (
	"context"
	"errors"
	"fmt"

	"github.com/ghbridge/ghbridge/credentials"
)

// Revoker drops cached installation tokens; SyncInstallations calls it
// when an installation changes. *github.TokenCache is one (a nil one too:
// without an App nothing is cached).
type Revoker interface {
	Revoke(installationID int64)
}

// InstallationWriter is what SyncInstallations records installations
// with: the writing half of a credentials.InstallationStore, which hosts
// pass.
type InstallationWriter interface {
	UpsertInstallation(ctx context.Context, in credentials.Installation) error
	SetInstallationStatus(ctx context.Context, id int64, status credentials.InstallationStatus) error
	UpdateRepositories(ctx context.Context, id int64, selection string, added, removed []string) error
}

// SyncInstallations registers handlers that keep an InstallationStore in
// step with GitHub: installation created, deleted, suspend, unsuspend and
// new_permissions_accepted, and installation_repositories added and
// removed. Every change also revokes the installation's cached token,
// whose permissions or repositories no longer hold. tokens may be nil.
// Hosts with a GitHub App call it once, with the store their credential
// resolver reads.
func SyncInstallations(h *Handler, store InstallationWriter, tokens Revoker) {
	log := h.log
	revoke := func(id int64) {
		if tokens != nil {
			tokens.Revoke(id)
		}
	}
	Handle(h, "installation", func(ctx context.Context, d *Delivery, e *InstallationEvent) error {
		in := e.Installation
		if in.ID <= 0 {
			return fmt.Errorf("installation event without an installation id")
		}
		defer revoke(in.ID)
		switch e.Action {
		case "created":
			return store.UpsertInstallation(ctx, fromEvent(in, credentials.StatusActive, e.Repositories))
		case "deleted":
			return setStatus(ctx, store, in, credentials.StatusDeleted, e.Repositories)
		case "suspend":
			return setStatus(ctx, store, in, credentials.StatusSuspended, nil)
		case "unsuspend":
			return setStatus(ctx, store, in, credentials.StatusActive, nil)
		case "new_permissions_accepted":
			return nil // the revocation is the point
		}
		log.DebugContext(ctx, "installation action ignored", "action", e.Action, "installation_id", in.ID)
		return nil
	})
	Handle(h, "installation_repositories", func(ctx context.Context, d *Delivery, e *InstallationRepositoriesEvent) error {
		in := e.Installation
		defer revoke(in.ID)
		var added, removed []string
		for _, r := range e.RepositoriesAdded {
			added = append(added, r.FullName)
		}
		for _, r := range e.RepositoriesRemoved {
			removed = append(removed, r.FullName)
		}
		selection := e.RepositorySelection
		if selection == "" {
			selection = in.RepositorySelection
		}
		err := store.UpdateRepositories(ctx, in.ID, selection, added, removed)
		if errors.Is(err, credentials.ErrInstallationNotFound) {
			// Missed the created event: record what this one says.
			return store.UpsertInstallation(ctx, fromEvent(in, credentials.StatusActive, e.RepositoriesAdded))
		}
		return err
	})
}

// setStatus changes a known installation's status, or records it when
// the created event was missed.
func setStatus(ctx context.Context, store InstallationWriter, in InstallationInfo, st credentials.InstallationStatus, repos []Repository) error {
	err := store.SetInstallationStatus(ctx, in.ID, st)
	if errors.Is(err, credentials.ErrInstallationNotFound) {
		return store.UpsertInstallation(ctx, fromEvent(in, st, repos))
	}
	return err
}

func fromEvent(in InstallationInfo, st credentials.InstallationStatus, repos []Repository) credentials.Installation {
	out := credentials.Installation{
		ID: in.ID, Account: in.Account.Login, AccountType: in.Account.Type, Status: st,
		RepositorySelection: in.RepositorySelection,
	}
	if out.RepositorySelection == "" {
		out.RepositorySelection = credentials.SelectionSelected
	}
	if st == credentials.StatusActive && in.SuspendedAt != nil {
		out.Status = credentials.StatusSuspended
	}
	for _, r := range repos {
		out.Repositories = append(out.Repositories, r.FullName)
	}
	return out
}
