package credentials

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// AuditOutcome is the result recorded in an AuditEvent. Hosts that store
// events keep it as text.
type AuditOutcome string

// The outcomes of an AuditEvent. A host's sink alerts on OutcomeFailure.
const (
	OutcomeSuccess AuditOutcome = "success"
	OutcomeFailure AuditOutcome = "failure"
)

// Names of audit events, in AuditEvent.Name. Hosts tell events apart by
// them (a metric of token exchanges, say). Other packages add their own
// (dispatch uses "dispatch.<kind>").
const (
	// EventTokenExchange is an installation token exchange, emitted by
	// package github's TokenCache.
	EventTokenExchange = "token.exchange"
	// EventResolve is a credential resolution by a Resolver.
	EventResolve = "credential.resolve"
)

// AuditEvent records one use of a credential. It never holds a token.
// Hosts receive it in their AuditSink, to store or count.
type AuditEvent struct {
	Time           time.Time
	Name           string
	CredentialType Type
	// Tenant is the job's tenant, when the event belongs to a job.
	Tenant string
	// Repo is "owner/name" when the event concerns one repository.
	Repo           string
	InstallationID int64
	// JobID is the host's job id, when the event belongs to a job.
	JobID string
	// Attempt counts attempts of one operation, from 1.
	Attempt int
	Outcome AuditOutcome
	// Error is the failure's text; empty on success.
	Error string
}

// LogValue implements slog.LogValuer: a logged event shows its non-empty
// fields.
func (e AuditEvent) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("event", e.Name),
		slog.String("outcome", string(e.Outcome)),
	}
	if e.CredentialType != "" {
		attrs = append(attrs, slog.String("credential_type", string(e.CredentialType)))
	}
	if e.Tenant != "" {
		attrs = append(attrs, slog.String("tenant", e.Tenant))
	}
	if e.Repo != "" {
		attrs = append(attrs, slog.String("repo", e.Repo))
	}
	if e.InstallationID != 0 {
		attrs = append(attrs, slog.Int64("installation_id", e.InstallationID))
	}
	if e.JobID != "" {
		attrs = append(attrs, slog.String("job_id", e.JobID))
	}
	if e.Attempt != 0 {
		attrs = append(attrs, slog.Int("attempt", e.Attempt))
	}
	if e.Error != "" {
		attrs = append(attrs, slog.String("error", e.Error))
	}
	return slog.GroupValue(attrs...)
}

// AuditSink receives audit events. Hosts that keep an audit trail
// implement it and pass it with WithAudit (of this package, github,
// dispatch or ghbridge). Audit must be safe for concurrent use and should
// not block for long: it runs on the caller's path. A sink that can fail
// handles its own errors; auditing never fails the operation.
type AuditSink interface {
	Audit(ctx context.Context, e AuditEvent)
}

// AuditFunc adapts a function to AuditSink, for a host's sink that needs
// no type of its own (a metric counter).
type AuditFunc func(ctx context.Context, e AuditEvent)

// Audit implements AuditSink.
func (f AuditFunc) Audit(ctx context.Context, e AuditEvent) { f(ctx, e) }

// SlogAuditSink writes each event to a logger at info level (failures at
// warn) under the message "audit". Hosts without an audit store of their
// own keep the trail in their logs with it.
func SlogAuditSink(l *slog.Logger) AuditSink {
	return AuditFunc(func(ctx context.Context, e AuditEvent) {
		lvl := slog.LevelInfo
		if e.Outcome == OutcomeFailure {
			lvl = slog.LevelWarn
		}
		l.LogAttrs(ctx, lvl, "audit", slog.Any("audit", e))
	})
}

// MultiAuditSink sends every event to each sink in turn, skipping nil
// ones. Hosts that both store and count (or log) events combine their
// sinks with it.
func MultiAuditSink(sinks ...AuditSink) AuditSink {
	sinks = slices.DeleteFunc(slices.Clone(sinks), func(s AuditSink) bool { return s == nil })
	return AuditFunc(func(ctx context.Context, e AuditEvent) {
		for _, s := range sinks {
			s.Audit(ctx, e)
		}
	})
}

// MemoryAuditLog keeps the most recent events in memory, for tests and
// small hosts. The zero value keeps up to 1000 events.
type MemoryAuditLog struct {
	// Max bounds the events kept; 0 means 1000.
	Max    int
	mu     sync.Mutex
	events []AuditEvent
}

// Audit implements AuditSink.
func (l *MemoryAuditLog) Audit(_ context.Context, e AuditEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	limit := l.Max
	if limit <= 0 {
		limit = 1000
	}
	if len(l.events) >= limit {
		l.events = slices.Delete(l.events, 0, len(l.events)-limit+1)
	}
	l.events = append(l.events, e)
}

// Events returns a copy of the kept events, oldest first. Tests assert on
// the trail with it.
func (l *MemoryAuditLog) Events() []AuditEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

func emit(ctx context.Context, sink AuditSink, now func() time.Time, e AuditEvent) {
	if sink == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = now()
	}
	sink.Audit(ctx, e)
}
