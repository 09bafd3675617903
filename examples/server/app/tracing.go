package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/internal/otelx"
)

// The standard OpenTelemetry variables that turn tracing on; the OTLP
// exporter reads these and the other OTEL_EXPORTER_OTLP_* ones itself.
var otelEndpointVars = []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"}

// SetupTracing installs an OTLP/HTTP trace exporter as the process's
// tracer provider when the standard OTEL_* variables ask for one
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set,
// and OTEL_TRACES_EXPORTER and OTEL_SDK_DISABLED not turning it off).
// Tracing is off otherwise. shutdown flushes the spans.
func SetupTracing(ctx context.Context, lookup credentials.LookupFunc) (shutdown func(), err error) {
	noop := func() {}
	if v, _ := lookup("OTEL_SDK_DISABLED"); v == "true" {
		return noop, nil
	}
	switch v, _ := lookup("OTEL_TRACES_EXPORTER"); v {
	case "", "otlp":
	case "none":
		return noop, nil
	default:
		return noop, fmt.Errorf("OTEL_TRACES_EXPORTER: %q is not supported: use otlp or none", v)
	}
	on := false
	for _, k := range otelEndpointVars {
		if v, ok := lookup(k); ok && v != "" {
			on = true
		}
	}
	if !on {
		return noop, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return noop, fmt.Errorf("OTEL_EXPORTER_OTLP_*: %w", err)
	}
	// resource.Default reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
	res, err := sdkresource.Merge(sdkresource.NewSchemaless(semconv.ServiceName("ghbridge")), sdkresource.Default())
	if err != nil && !errors.Is(err, sdkresource.ErrPartialResource) {
		return noop, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	// NewTracerProvider reads OTEL_TRACES_SAMPLER and OTEL_BSP_*.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5e9)
		defer cancel()
		_ = tp.Shutdown(ctx)
	}, nil
}

// traceKey is where a job's latest span context is kept (the database's
// key-value table): the create span, then the dispatch span.
func traceKey(jobKey string) string { return "trace:" + jobKey }

// spanned runs next under a span named name.
func (s *Server) spanned(name string, next tenantHandler) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, tenant string) {
		ctx, span := otelx.Tracer(s.tp).Start(r.Context(), name, trace.WithAttributes(otelx.Tenant.String(tenant)))
		defer span.End()
		next(w, r.WithContext(ctx), tenant)
	}
}

// rememberSpan keeps the span of ctx as the job's latest, after linking
// it to the one kept before (a dispatch span links to its job's create
// span). Tracing is best effort: failures are logged at debug.
func (s *Server) rememberSpan(ctx context.Context, jobKey string) {
	span := trace.SpanFromContext(ctx)
	sc := span.SpanContext()
	if !sc.IsValid() {
		return
	}
	if prev := s.jobSpan(ctx, jobKey); prev.IsValid() && !prev.Equal(sc) {
		span.AddLink(trace.Link{SpanContext: prev})
	}
	v := sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
	if err := s.db.Set(context.WithoutCancel(ctx), traceKey(jobKey), v); err != nil {
		s.log.DebugContext(ctx, "keeping the job's span failed", "job_id", jobKey, "error", err)
	}
}

// jobSpan returns the job's latest kept span context, for links.
func (s *Server) jobSpan(ctx context.Context, jobKey string) trace.SpanContext {
	v, err := s.db.Get(ctx, traceKey(jobKey))
	if err != nil || v == "" {
		return trace.SpanContext{}
	}
	parts := strings.Split(v, "-")
	if len(parts) != 3 {
		return trace.SpanContext{}
	}
	tid, err1 := trace.TraceIDFromHex(parts[0])
	sid, err2 := trace.SpanIDFromHex(parts[1])
	if err1 != nil || err2 != nil {
		return trace.SpanContext{}
	}
	var flags trace.TraceFlags
	if parts[2] == "01" {
		flags = trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: true})
}
