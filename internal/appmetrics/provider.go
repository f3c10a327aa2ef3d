// Package appmetrics holds crmflow's own Prometheus metrics that no single
// top-level package owns: provider calls measured at the HTTP transport, and
// parked workflows counted in PostgreSQL at scrape time. The Temporal SDK's
// metrics are in internal/sdkmetrics; the HTTP server's, the webhooks' and
// the inbox's are in webhooks.
//
// It is a library: it imports contract only.
package appmetrics

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Status classes of a provider call: the answer's status class, or
// ClassNetwork when no answer came (connection error, timeout).
const (
	Class2xx     = "2xx"
	Class3xx     = "3xx"
	Class4xx     = "4xx"
	Class5xx     = "5xx"
	ClassNetwork = "network"
)

// ProviderMetrics measures every HTTP request crmflow sends to a provider,
// by provider and status class. A nil *ProviderMetrics measures nothing.
type ProviderMetrics struct {
	duration  *prometheus.HistogramVec
	observers []Observer
}

// Observer is told of every measured request: the provider, the answer's
// status (0 when no answer came) and how long it took. The operator
// console's per-minute statistics (internal/callstats) are fed this way.
type Observer func(provider string, status int, d time.Duration)

// Observe adds o to the observers of every request measured from now on.
// Call it while wiring, before requests are sent.
func (m *ProviderMetrics) Observe(o Observer) {
	if m != nil {
		m.observers = append(m.observers, o)
	}
}

// NewProviderMetrics registers crmflow_provider_request_duration_seconds on
// reg. Its _count, by class, is the call and error count: alert on the rate
// of class="5xx" or "network" per provider.
func NewProviderMetrics(reg prometheus.Registerer) *ProviderMetrics {
	m := &ProviderMetrics{duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "crmflow_provider_request_duration_seconds",
		Help: "HTTP requests to providers (Stripe, Knock, SimpleLogin, Resend) until the response headers, " +
			"by provider and status class (2xx, 3xx, 4xx, 5xx, network).",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"provider", "class"})}
	reg.MustRegister(m.duration)
	return m
}

// Client returns a copy of hc whose transport measures each request as
// provider's; hc itself, which others may share, is not changed. A nil
// receiver returns hc as it is.
func (m *ProviderMetrics) Client(provider string, hc *http.Client) *http.Client {
	if m == nil {
		return hc
	}
	c := http.Client{}
	if hc != nil {
		c = *hc
	}
	c.Transport = m.Transport(provider, c.Transport)
	return &c
}

// Transport wraps next (nil: http.DefaultTransport) to measure each request
// as provider's.
func (m *ProviderMetrics) Transport(provider string, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	if m == nil {
		return next
	}
	return &measuredTransport{next: next, provider: provider, m: m}
}

type measuredTransport struct {
	next     http.RoundTripper
	provider string
	m        *ProviderMetrics
}

func (t *measuredTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	if err != nil && errors.Is(req.Context().Err(), context.Canceled) {
		// Our side gave up (the activity was cancelled): nothing about
		// the provider to measure.
		return resp, err
	}
	took := time.Since(start)
	class, status := ClassNetwork, 0
	if err == nil {
		class, status = StatusClass(resp.StatusCode), resp.StatusCode
	}
	t.m.duration.WithLabelValues(t.provider, class).Observe(took.Seconds())
	for _, o := range t.m.observers {
		o(t.provider, status, took)
	}
	return resp, err
}

// StatusClass is "2xx" for 200..299 and so on. The client only hands back
// final answers (200..599); anything else is no usable answer, ClassNetwork.
func StatusClass(status int) string {
	switch status / 100 {
	case 2:
		return Class2xx
	case 3:
		return Class3xx
	case 4:
		return Class4xx
	case 5:
		return Class5xx
	}
	return ClassNetwork
}
