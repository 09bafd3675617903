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
	return db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM install_states WHERE expires_at < $1`), micros(db.now())); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO install_states (nonce, tenant, installation_id, expires_at) VALUES ($1, $2, $3, $4)`),
			st.Nonce, st.Tenant, st.InstallationID, micros(st.ExpiresAt)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, db.q(`DELETE FROM install_states WHERE tenant = $1 AND nonce NOT IN
			(SELECT nonce FROM install_states WHERE tenant = $1 ORDER BY expires_at DESC LIMIT $2)`), st.Tenant, maxInstallStates)
		return err
	})
}

// ErrStateUsed is returned by ConsumeInstallState for a nonce that is
// unknown, already used or expired.
var ErrStateUsed = errors.New("install state unknown, used or expired")

// ConsumeInstallState deletes the state with the nonce and returns it, if
// it was there and unexpired. Of two callers racing with one nonce, one
// wins.
func (db *DB) ConsumeInstallState(ctx context.Context, nonce string) (InstallState, error) {
	st := InstallState{Nonce: nonce}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var exp int64
		err := tx.QueryRowContext(ctx, db.q(`DELETE FROM install_states WHERE nonce = $1 RETURNING tenant, installation_id, expires_at`), nonce).
			Scan(&st.Tenant, &st.InstallationID, &exp)
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
