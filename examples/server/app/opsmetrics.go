package app

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ghbridge/ghbridge/examples/server/sqlstore"
	"github.com/ghbridge/ghbridge/github"
)

// maxRateLimitSeries caps the installations the rate-limit gauges track:
// installation ids come only from tokens the resolver issued (the
// installations the server knows), and the cap bounds even that.
const maxRateLimitSeries = 1000

// opsMetrics are the metrics of GitHub's rate limit, retries and the
// dispatch queue.
type opsMetrics struct {
	retries   *prometheus.CounterVec
	remaining *prometheus.GaugeVec
	reset     *prometheus.GaugeVec

	mu     sync.Mutex
	series map[string]bool
}

func newOpsMetrics(reg prometheus.Registerer, jobs *sqlstore.Jobs) *opsMetrics {
	m := &opsMetrics{
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ghbridge_github_retries_total", Help: "Retried GitHub requests by cause (connection, timeout, 5xx, rate_limit, secondary_rate_limit).",
		}, []string{"cause"}),
		remaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ghbridge_github_rate_limit_remaining", Help: "GitHub API calls left in the current window, per credential (installation id, app, token) and resource.",
		}, []string{"credential", "installation", "resource"}),
		reset: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ghbridge_github_rate_limit_reset_timestamp_seconds", Help: "When GitHub's rate-limit window resets (Unix time), per credential and resource.",
		}, []string{"credential", "installation", "resource"}),
		series: map[string]bool{},
	}
	reg.MustRegister(m.retries, m.remaining, m.reset, &queueCollector{jobs: jobs})
	return m
}

func (m *opsMetrics) observeRetry(_ context.Context, r github.Retry) {
	m.retries.WithLabelValues(r.Cause).Inc()
}

func (m *opsMetrics) observeRateLimit(l github.RateLimit) {
	inst := ""
	if l.InstallationID != 0 {
		inst = strconv.FormatInt(l.InstallationID, 10)
	}
	switch l.Resource {
	case "core", "search", "graphql", "integration_manifest", "code_search":
	default:
		l.Resource = "other"
	}
	key := l.Credential + "/" + inst + "/" + l.Resource
	m.mu.Lock()
	if !m.series[key] {
		if len(m.series) >= maxRateLimitSeries {
			m.mu.Unlock()
			return
		}
		m.series[key] = true
	}
	m.mu.Unlock()
	m.remaining.WithLabelValues(l.Credential, inst, l.Resource).Set(float64(l.Remaining))
	m.reset.WithLabelValues(l.Credential, inst, l.Resource).Set(float64(l.Reset.Unix()))
}

// queueCollector reads the dispatch queue's depth and age at scrape time.
type queueCollector struct{ jobs *sqlstore.Jobs }

var (
	queueDepthDesc = prometheus.NewDesc("ghbridge_dispatch_queue_depth", "Jobs waiting to be dispatched (pending).", nil, nil)
	queueAgeDesc   = prometheus.NewDesc("ghbridge_dispatch_queue_oldest_age_seconds", "Age of the oldest job waiting to be dispatched; 0 when none.", nil, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepthDesc
	ch <- queueAgeDesc
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.jobs.PendingStats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueDepthDesc, err)
		return
	}
	age := 0.0
	if !st.Oldest.IsZero() {
		age = time.Since(st.Oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(st.Depth))
	ch <- prometheus.MustNewConstMetric(queueAgeDesc, prometheus.GaugeValue, age)
}
