package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// SQLite commits one transaction at a time, and each commit appends the
// pages it touched to the WAL. The hot writes (claiming and completing
// deliveries, job updates and inserts) therefore go through a group
// commit: while one batch commits, the writes that arrive queue, and the
// next batch runs them in a single transaction, each inside a savepoint so
// that one failing write is rolled back alone. A write that arrives when
// nothing is queued runs on its own, as before; batching only happens
// under load, where it saves a commit and shared pages per write.
//
// PostgreSQL runs writes directly: it has many writers.

// maxBatch bounds the writes in one transaction, and so the latency the
// first of them waits for the last.
const maxBatch = 64

// writeFunc does one write. tx is nil when the write runs on its own;
// statements must use ctx, which for a batched write is the batch's own:
// interrupting a statement would roll back every write in the batch.
type writeFunc func(ctx context.Context, tx *sql.Tx) error

type writeReq struct {
	ctx  context.Context
	fn   writeFunc
	done chan error
}

type batcher struct {
	db   *DB
	reqs chan *writeReq
	stop chan struct{}
	done chan struct{}
}

func (db *DB) startBatcher() {
	b := &batcher{db: db, reqs: make(chan *writeReq, maxBatch), stop: make(chan struct{}), done: make(chan struct{})}
	db.batch = b
	go b.run()
}

// write runs fn, batched with concurrent writes on SQLite.
func (db *DB) write(ctx context.Context, fn writeFunc) error {
	b := db.batch
	if b == nil {
		return fn(ctx, nil)
	}
	select {
	case <-b.stop:
		return errClosed
	default:
	}
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case b.reqs <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.stop:
		return errClosed
	}
	// Once queued the write is answered even if ctx ends, so that the
	// caller knows whether it happened. A write queued as the batcher
	// stopped may never run.
	select {
	case err := <-req.done:
		return err
	case <-b.done:
		select {
		case err := <-req.done:
			return err
		default:
			return errClosed
		}
	}
}

var errClosed = errors.New("sqlstore: database is closed")

func (b *batcher) close() {
	close(b.stop)
	<-b.done
}

func (b *batcher) run() {
	defer close(b.done)
	batch := make([]*writeReq, 0, maxBatch)
	for {
		select {
		case <-b.stop:
			// Answer what is still queued.
			for {
				select {
				case req := <-b.reqs:
					req.done <- errClosed
				default:
					return
				}
			}
		case req := <-b.reqs:
			batch = append(batch[:0], req)
		drain:
			for len(batch) < maxBatch {
				select {
				case req := <-b.reqs:
					batch = append(batch, req)
				default:
					break drain
				}
			}
			b.commit(batch)
		}
	}
}

// commit runs a batch and answers each of its writes.
func (b *batcher) commit(batch []*writeReq) {
	live := make([]*writeReq, 0, len(batch))
	for _, req := range batch {
		if err := req.ctx.Err(); err != nil {
			req.done <- err // never started
			continue
		}
		live = append(live, req)
	}
	switch len(live) {
	case 0:
		return
	case 1:
		live[0].done <- live[0].fn(live[0].ctx, nil)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	errs := make([]error, len(live))
	err := b.db.tx(ctx, func(tx *sql.Tx) error {
		for i, req := range live {
			if _, err := tx.ExecContext(ctx, "SAVEPOINT w"); err != nil {
				return err
			}
			if errs[i] = req.fn(ctx, tx); errs[i] != nil {
				if _, err := tx.ExecContext(ctx, "ROLLBACK TO w"); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, "RELEASE w"); err != nil {
				return err
			}
		}
		return nil
	})
	for i, req := range live {
		if err != nil && errs[i] == nil {
			errs[i] = err // the batch did not commit
		}
		req.done <- errs[i]
	}
}

// batchTimeout bounds one batch's transaction.
const batchTimeout = 30 * time.Second
