package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/ghbridge/ghbridge/credentials"
)

// Installations is a credentials.InstallationStore.
type Installations struct{ db *DB }

// Installations returns the installation store.
func (db *DB) Installations() *Installations { return &Installations{db: db} }

var _ credentials.InstallationStore = (*Installations)(nil)

const installationColumns = `id, account, account_type, status, repository_selection, tenant, updated_at`

type rowScanner interface{ Scan(dest ...any) error }

func scanInstallation(row rowScanner) (credentials.Installation, error) {
	var in credentials.Installation
	var status string
	var updated int64
	err := row.Scan(&in.ID, &in.Account, &in.AccountType, &status, &in.RepositorySelection, &in.Tenant, &updated)
	in.Status, in.UpdatedAt = credentials.InstallationStatus(status), fromMicros(updated)
	return in, err
}

// The queries of the installation store, each prepared once (see stmt).
const (
	getInstallationQuery  = `SELECT ` + installationColumns + ` FROM installations WHERE id = $1`
	findInstallationQuery = `SELECT ` + installationColumns + ` FROM installations i
		WHERE (i.repository_selection = 'all' AND lower(i.account) = $1)
		   OR EXISTS (SELECT 1 FROM installation_repositories r WHERE r.installation_id = i.id AND r.name_key = $2)
		ORDER BY CASE WHEN i.status = 'active' THEN 0 ELSE 1 END, i.updated_at DESC, i.id DESC
		LIMIT 1`
	listInstallationsQuery  = `SELECT ` + installationColumns + ` FROM installations ORDER BY id`
	listRepositoriesQuery   = `SELECT installation_id, full_name FROM installation_repositories ORDER BY installation_id, name_key`
	repositoriesQuery       = `SELECT full_name FROM installation_repositories WHERE installation_id = $1 ORDER BY name_key`
	upsertInstallationQuery = `INSERT INTO installations (` + installationColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (id) DO UPDATE SET account = excluded.account, account_type = excluded.account_type, status = excluded.status,
				repository_selection = excluded.repository_selection, updated_at = excluded.updated_at`
	deleteRepositoriesQuery = `DELETE FROM installation_repositories WHERE installation_id = $1`
	deleteRepositoryQuery   = `DELETE FROM installation_repositories WHERE installation_id = $1 AND name_key = $2`
	addRepositoryQuery      = `INSERT INTO installation_repositories (installation_id, name_key, full_name) VALUES ($1, $2, $3)
			ON CONFLICT (installation_id, name_key) DO NOTHING`
	claimInstallationQuery     = `UPDATE installations SET tenant = $2, updated_at = $3 WHERE id = $1 AND (tenant = '' OR tenant = $2)`
	setInstallationStatusQuery = `UPDATE installations SET status = $2, updated_at = $3 WHERE id = $1`
	updateSelectionQuery       = `UPDATE installations SET
			repository_selection = CASE WHEN $2 = '' THEN repository_selection ELSE $2 END, updated_at = $3 WHERE id = $1`
)

// repositories loads the granted repositories of an installation.
func (s *Installations) repositories(ctx context.Context, in *credentials.Installation) error {
	st, err := s.db.stmt(ctx, nil, s.db.r, repositoriesQuery)
	if err != nil {
		return err
	}
	rows, err := st.QueryContext(ctx, in.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	in.Repositories = nil
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return err
		}
		in.Repositories = append(in.Repositories, r)
	}
	return rows.Err()
}

func notFound(id int64) error { return fmt.Errorf("%w: %d", credentials.ErrInstallationNotFound, id) }

// GetInstallation implements credentials.InstallationStore.
func (s *Installations) GetInstallation(ctx context.Context, id int64) (credentials.Installation, error) {
	st, err := s.db.stmt(ctx, nil, s.db.r, getInstallationQuery)
	if err != nil {
		return credentials.Installation{}, err
	}
	in, err := scanInstallation(st.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return in, notFound(id)
	}
	if err != nil {
		return in, err
	}
	return in, s.repositories(ctx, &in)
}

// FindInstallationByRepo implements credentials.InstallationStore.
func (s *Installations) FindInstallationByRepo(ctx context.Context, owner, repo string) (credentials.Installation, error) {
	st, err := s.db.stmt(ctx, nil, s.db.r, findInstallationQuery)
	if err != nil {
		return credentials.Installation{}, err
	}
	in, err := scanInstallation(st.QueryRowContext(ctx, strings.ToLower(owner), strings.ToLower(owner+"/"+repo)))
	if errors.Is(err, sql.ErrNoRows) {
		return in, fmt.Errorf("%w: none grants %s/%s", credentials.ErrInstallationNotFound, owner, repo)
	}
	if err != nil {
		return in, err
	}
	return in, s.repositories(ctx, &in)
}

// ListInstallations implements credentials.InstallationStore. The
// repositories of all installations come in one query, not one each.
func (s *Installations) ListInstallations(ctx context.Context) ([]credentials.Installation, error) {
	st, err := s.db.prepared(ctx, s.db.r, listInstallationsQuery, listRepositoriesQuery)
	if err != nil {
		return nil, err
	}
	rows, err := st[0].QueryContext(ctx)
	if err != nil {
		return nil, err
	}
	var out []credentials.Installation
	for rows.Next() {
		in, err := scanInstallation(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, in)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(out) == 0 {
		return out, err
	}
	at := make(map[int64]int, len(out))
	for i, in := range out {
		at[in.ID] = i
	}
	rows, err = st[1].QueryContext(ctx)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var r string
		if err := rows.Scan(&id, &r); err != nil {
			return nil, err
		}
		if i, ok := at[id]; ok { // not one added since the first query
			out[i].Repositories = append(out[i].Repositories, r)
		}
	}
	return out, rows.Err()
}

// UpsertInstallation implements credentials.InstallationStore.
func (s *Installations) UpsertInstallation(ctx context.Context, in credentials.Installation) error {
	if err := credentials.CheckInstallation(in); err != nil {
		return err
	}
	if in.UpdatedAt.IsZero() {
		in.UpdatedAt = s.db.now()
	}
	queries := []string{upsertInstallationQuery, deleteRepositoriesQuery, addRepositoryQuery}
	return s.db.txPrepared(ctx, queries, func(_ *sql.Tx, q []*sql.Stmt) error {
		if _, err := q[0].ExecContext(ctx, in.ID, in.Account, in.AccountType, string(in.Status), in.RepositorySelection, in.Tenant, micros(in.UpdatedAt)); err != nil {
			return err
		}
		if _, err := q[1].ExecContext(ctx, in.ID); err != nil {
			return err
		}
		return addRepos(ctx, q[2], in.ID, in.Repositories)
	})
}

// addRepos adds repos with add, addRepositoryQuery bound to a transaction.
func addRepos(ctx context.Context, add *sql.Stmt, id int64, repos []string) error {
	for _, r := range repos {
		if _, err := add.ExecContext(ctx, id, strings.ToLower(r), r); err != nil {
			return err
		}
	}
	return nil
}

// ClaimInstallation implements credentials.InstallationStore.
func (s *Installations) ClaimInstallation(ctx context.Context, id int64, tenant string) error {
	if tenant == "" {
		return fmt.Errorf("claiming installation %d: empty tenant", id)
	}
	st, err := s.db.stmt(ctx, nil, s.db.w, claimInstallationQuery)
	if err != nil {
		return err
	}
	res, err := st.ExecContext(ctx, id, tenant, micros(s.db.now()))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	if _, err := s.GetInstallation(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("%w: installation %d", credentials.ErrInstallationClaimed, id)
}

// SetInstallationStatus implements credentials.InstallationStore.
func (s *Installations) SetInstallationStatus(ctx context.Context, id int64, status credentials.InstallationStatus) error {
	if !status.Valid() {
		return fmt.Errorf("invalid installation status %q", status)
	}
	st, err := s.db.stmt(ctx, nil, s.db.w, setInstallationStatusQuery)
	if err != nil {
		return err
	}
	res, err := st.ExecContext(ctx, id, string(status), micros(s.db.now()))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound(id)
	}
	return nil
}

// UpdateRepositories implements credentials.InstallationStore.
func (s *Installations) UpdateRepositories(ctx context.Context, id int64, selection string, added, removed []string) error {
	if selection != "" && selection != credentials.SelectionAll && selection != credentials.SelectionSelected {
		return fmt.Errorf("repository selection must be %q or %q, got %q", credentials.SelectionAll, credentials.SelectionSelected, selection)
	}
	queries := []string{updateSelectionQuery, deleteRepositoryQuery, addRepositoryQuery}
	return s.db.txPrepared(ctx, queries, func(_ *sql.Tx, q []*sql.Stmt) error {
		res, err := q[0].ExecContext(ctx, id, selection, micros(s.db.now()))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound(id)
		}
		for _, r := range removed {
			if _, err := q[1].ExecContext(ctx, id, strings.ToLower(r)); err != nil {
				return err
			}
		}
		var keep []string
		for _, r := range added {
			if !containsFold(removed, r) {
				keep = append(keep, r)
			}
		}
		return addRepos(ctx, q[2], id, keep)
	})
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// tx runs fn in a write transaction.
func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
