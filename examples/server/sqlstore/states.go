package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// maxInstallStates bounds the unused install states kept per tenant: a
// tenant asking for install URLs in a loop cannot grow the table.
const maxInstallStates = 100

// InstallState is an install-flow state as stored: its nonce is usable
// once, by its tenant, until it expires.
type InstallState struct {
	Nonce  string
	Tenant string
	// InstallationID is the installation a recovery asked to claim; 0
	// for a new installation.
	InstallationID int64
	ExpiresAt      time.Time
}

// PutInstallState records a new state. Expired states go, and a tenant
// keeps at most its 100 newest unused ones.
func (db *DB) PutInstallState(ctx context.Context, st InstallState) error {
	return db.txPrepared(ctx, putInstallStateQueries, func(_ *sql.Tx, q []*sql.Stmt) error {
		if _, err := q[0].ExecContext(ctx, micros(db.now())); err != nil {
			return err
		}
		if _, err := q[1].ExecContext(ctx, st.Nonce, st.Tenant, st.InstallationID, micros(st.ExpiresAt)); err != nil {
			return err
		}
		_, err := q[2].ExecContext(ctx, st.Tenant, db.installStates)
		return err
	})
}

// putInstallStateQueries are PutInstallState's: expired states go, the new
// one is added, and the tenant's oldest past the bound go.
var putInstallStateQueries = []string{
	`DELETE FROM install_states WHERE expires_at < $1`,
	`INSERT INTO install_states (nonce, tenant, installation_id, expires_at) VALUES ($1, $2, $3, $4)`,
	`DELETE FROM install_states WHERE tenant = $1 AND nonce NOT IN
			(SELECT nonce FROM install_states WHERE tenant = $1 ORDER BY expires_at DESC LIMIT $2)`,
}

// ErrStateUsed is returned by ConsumeInstallState for a nonce that is
// unknown, already used or expired.
var ErrStateUsed = errors.New("install state unknown, used or expired")

var consumeInstallStateQuery = []string{`DELETE FROM install_states WHERE nonce = $1 RETURNING tenant, installation_id, expires_at`}

// ConsumeInstallState deletes the state with the nonce and returns it, if
// it was there and unexpired. Of two callers racing with one nonce, one
// wins.
func (db *DB) ConsumeInstallState(ctx context.Context, nonce string) (InstallState, error) {
	st := InstallState{Nonce: nonce}
	err := db.txPrepared(ctx, consumeInstallStateQuery, func(_ *sql.Tx, q []*sql.Stmt) error {
		var exp int64
		err := q[0].QueryRowContext(ctx, nonce).Scan(&st.Tenant, &st.InstallationID, &exp)
		st.ExpiresAt = fromMicros(exp)
		return err
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return st, ErrStateUsed
	case err != nil:
		return st, err
	case db.now().After(st.ExpiresAt):
		return st, ErrStateUsed
	}
	return st, nil
}
