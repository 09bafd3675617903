package app

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"

	"github.com/ghbridge/ghbridge/credentials"
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
