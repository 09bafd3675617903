package app_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"

	"github.com/ghbridge/ghbridge/examples/server/app"
)

func TestTracingOffUnlessAsked(t *testing.T) {
	before := otel.GetTracerProvider()
	for _, vars := range []map[string]string{
		{},
		{"OTEL_SERVICE_NAME": "ghbridge"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
	} {
		shutdown, err := app.SetupTracing(context.Background(), lookup(vars))
		require.NoError(t, err, vars)
		shutdown()
		assert.Equal(t, before, otel.GetTracerProvider(), "no provider installed for %v", vars)
	}
	_, err := app.SetupTracing(context.Background(), lookup(map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}))
	assert.ErrorContains(t, err, "OTEL_TRACES_EXPORTER")
}
