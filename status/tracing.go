package status

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ghbridge/ghbridge/internal/otelx"
)

type tracing struct {
	tracer trace.Tracer
	link   func(ctx context.Context, jobID string) trace.SpanContext
}

// WithTracerProvider traces each status update of a job with a
// span (job id, run id, installation id, the status before and after);
// default, and nil: the global provider. Hosts that trace set it.
func WithTracerProvider(tp trace.TracerProvider) TrackerOption {
	return func(t *Tracker) { t.tracing.tracer = otelx.Tracer(tp) }
}

// WithSpanLink links each status update's span to the span fn returns
// for the job (an invalid one for none): a host stores the span context
// of a job's dispatch (the context the dispatch package's Step passes to its
// SaveFunc holds it) and returns it here, so that a trace viewer goes
// from the webhook that finished a job to the dispatch that started it.
// nil: no links.
func WithSpanLink(fn func(ctx context.Context, jobID string) trace.SpanContext) TrackerOption {
	return func(t *Tracker) { t.tracing.link = fn }
}

// update is apply under a "ghbridge.status.apply" span.
func (t *Tracker) update(ctx context.Context, load func() (Job, error), decide func(Job) (*Update, Result)) (Result, error) {
	tracer := t.tracing.tracer
	if tracer == nil {
		tracer = otelx.Tracer(nil)
	}
	ctx, span := tracer.Start(ctx, "ghbridge.status.apply")
	linked := false
	traced := func() (Job, error) {
		j, err := load()
		if err == nil && !linked {
			linked = true
			span.SetAttributes(otelx.JobID.String(j.ID), otelx.Tenant.String(j.Tenant), attribute.String("ghbridge.job.status.before", string(j.Status)))
			if t.tracing.link != nil {
				if sc := t.tracing.link(ctx, j.ID); sc.IsValid() {
					span.AddLink(trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{attribute.String("ghbridge.link", "dispatch")}})
				}
			}
		}
		return j, err
	}
	res, err := t.apply(ctx, traced, decide)
	span.SetAttributes(attribute.String("ghbridge.status.outcome", string(res.Effect)))
	if res.Job.ID != "" {
		span.SetAttributes(otelx.Status.String(string(res.Job.Status)), otelx.RunID.Int64(res.Job.RunID), otelx.InstallationID.Int64(res.Job.InstallationID))
	}
	otelx.End(span, err)
	return res, err
}
