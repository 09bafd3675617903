package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// WriteMigrated writes a SQLite database with the schema migrated to
// path. The external tests set it to testdb.WriteMigratedSQLite, a copy
// of a file migrated once per process, which this package's own tests
// cannot import (testdb imports sqlstore): so they do not migrate new
// files either. Nil: openSQLite migrates a new file.
var WriteMigrated func(path string) error

// WithWALLimits sets the WAL size from which it is started over and the
// size it is then truncated to (default walRestartBytes and
// walSizeLimit), so that a test fills the WAL past them with fewer writes.
func WithWALLimits(restart, sizeLimit int64) Option {
	return func(db *DB) { db.wal = walLimits{restart: restart, sizeLimit: sizeLimit} }
}

// WithMaxInstallStates sets the unused install states a tenant keeps
// (default maxInstallStates), so that a test floods past the bound with
// few states.
func WithMaxInstallStates(n int) Option { return func(db *DB) { db.installStates = n } }

// MaxInstallStates returns the unused install states a tenant keeps.
func (db *DB) MaxInstallStates() int { return db.installStates }

// WithPruneBatch sets the rows one DELETE of Prune removes (default
// pruneBatch), so that a test spans several batches with few rows.
func WithPruneBatch(n int) Option { return func(db *DB) { db.pruneBatch = n } }

// Empty deletes every row of a SQLite database but its applied
// migrations, and forgets the jobs it remembers, so that a test hands the
// open database to the next one as new (see reusedSQLite).
func (db *DB) Empty(ctx context.Context) error {
	if db.dialect != SQLite {
		return errors.New("Empty is for SQLite")
	}
	// Its statements are prepared once per database, which tests reuse.
	list, err := db.stmt(ctx, nil, db.w, `SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'ghbridge_migrations' AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		return err
	}
	rows, err := list.QueryContext(ctx)
	if err != nil {
		return err
	}
	var deletes []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		deletes = append(deletes, "DELETE FROM "+name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	err = db.txPrepared(ctx, deletes, func(_ *sql.Tx, del []*sql.Stmt) error {
		for _, st := range del {
			if _, err := st.ExecContext(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	db.jobs.Purge()
	return nil
}

// SetClock replaces the clock WithClock set (nil: time.Now), for a
// database that a test hands to the next.
func (db *DB) SetClock(now func() time.Time) {
	db.now = time.Now
	WithClock(now)(db)
}

// MaxOpenConns returns the most connections the writer's pool opens.
func (db *DB) MaxOpenConns() int { return db.w.Stats().MaxOpenConnections }
