package app

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/status"
	"github.com/ghbridge/ghbridge/webhook"
)

// metrics are the server's Prometheus metrics, on a registry of its own.
type metrics struct {
	reg         *prometheus.Registry
	deliveries  *prometheus.CounterVec
	dispatches  *prometheus.CounterVec
	exchanges   *prometheus.CounterVec
	transitions *prometheus.CounterVec
	requests    *prometheus.HistogramVec
	reconciles  *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ghbridge_webhook_deliveries_total", Help: "GitHub webhook deliveries by event and outcome.",
		}, []string{"event", "outcome"}),
		dispatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ghbridge_dispatches_total", Help: "Job dispatches by kind and the job status they led to.",
		}, []string{"kind", "outcome"}),
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ghbridge_token_exchanges_total", Help: "Installation token exchanges by outcome.",
		}, []string{"outcome"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ghbridge_job_transitions_total", Help: "Job status transitions.",
		}, []string{"from", "to", "source"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ghbridge_http_request_duration_seconds", Help: "HTTP request latency by route and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "code"}),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ghbridge_reconcile_total", Help: "Reconciliation work: redelivered deliveries, polled and updated jobs.",
		}, []string{"what"}),
	}
	m.reg.MustRegister(m.deliveries, m.dispatches, m.exchanges, m.transitions, m.requests, m.reconciles,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Every label value comes from a fixed set, never from a request: a known
// event name or "other", the webhook outcomes, numeric status codes, and
// the patterns registered on the mux.

func (m *metrics) observeDelivery(o webhook.Observation) {
	m.deliveries.WithLabelValues(webhook.EventLabel(o.Event), string(o.Outcome)).Inc()
}

func (m *metrics) observeTransition(_ status.Job, t status.Transition) {
	m.transitions.WithLabelValues(string(t.From), string(t.To), t.Source).Inc()
}

// audit counts token exchanges from the audit trail.
func (m *metrics) audit() credentials.AuditSink {
	return credentials.AuditFunc(func(_ context.Context, e credentials.AuditEvent) {
		if e.Name == credentials.EventTokenExchange {
			m.exchanges.WithLabelValues(string(e.Outcome)).Inc()
		}
	})
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// instrument measures every request by its route pattern.
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		// The mux sets r.Pattern to a registered pattern, or for a
		// CONNECT it redirects to a path derived from the request's.
		route := r.Pattern
		if route == "" || r.Method == http.MethodConnect {
			route = "unmatched"
		}
		m.requests.WithLabelValues(route, strconv.Itoa(rec.code)).Observe(time.Since(start).Seconds())
	})
}
