// Package otelx holds the span names and attribute keys ghbridge's
// packages share, so that a trace reads the same whichever package wrote
// a span. Attributes never carry secrets: no tokens, keys or configs.
package otelx

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of ghbridge's spans.
const ScopeName = "github.com/ghbridge/ghbridge"

// Attribute keys.
const (
	JobID          = attribute.Key("ghbridge.job.id")
	Tenant         = attribute.Key("ghbridge.tenant")
	RunID          = attribute.Key("ghbridge.run.id")
	InstallationID = attribute.Key("ghbridge.installation.id")
	Credential     = attribute.Key("ghbridge.credential.type")
	Repository     = attribute.Key("ghbridge.repository")
	Kind           = attribute.Key("ghbridge.job.kind")
	Status         = attribute.Key("ghbridge.job.status")
	Event          = attribute.Key("github.event")
	Action         = attribute.Key("github.action")
	DeliveryID     = attribute.Key("github.delivery.id")
)

// Tracer returns ghbridge's tracer from tp, or from the global provider
// when tp is nil (a no-op unless the host set one).
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(ScopeName)
}

// End records err on span (status Error) and ends it.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
