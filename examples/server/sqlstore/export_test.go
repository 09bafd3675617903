package sqlstore

// WithWALLimits sets the WAL size from which it is started over and the
// size it is then truncated to (default walRestartBytes and
// walSizeLimit), so that a test fills the WAL past them with fewer writes.
func WithWALLimits(restart, sizeLimit int64) Option {
	return func(db *DB) { db.wal = walLimits{restart: restart, sizeLimit: sizeLimit} }
}

// WithPruneBatch sets the rows one DELETE of Prune removes (default
// pruneBatch), so that a test spans several batches with few rows.
func WithPruneBatch(n int) Option { return func(db *DB) { db.pruneBatch = n } }
