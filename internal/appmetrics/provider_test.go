package appmetrics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/appmetrics"
)

// TestProviderCallsByStatusClass sends real requests through the measured
// client to a server answering the status in the path, and to a closed port.
func TestProviderCallsByStatusClass(t *testing.T) {
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Path[1:])
		w.WriteHeader(code)
	}))
	defer peer.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	reg := prometheus.NewRegistry()
	m := appmetrics.NewProviderMetrics(reg)
	base := &http.Client{Timeout: 5 * time.Second}
	knock := m.Client("knock", base)
	assert.Nil(t, base.Transport, "the given client is copied, not changed")
	assert.Equal(t, base.Timeout, knock.Timeout)

	get := func(c *http.Client, url string) {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
		}
	}
	for _, path := range []string{"/200", "/201", "/404", "/429", "/503"} {
		get(knock, peer.URL+path)
	}
	get(m.Client("stripe", nil), peer.URL+"/500")
	get(knock, closed.URL+"/200")

	// A request our side cancels says nothing about the provider.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peer.URL+"/200", nil)
	require.NoError(t, err)
	_, err = knock.Do(req)
	require.Error(t, err)

	for _, c := range []struct {
		provider, class string
		want            float64
	}{
		{"knock", "2xx", 2}, {"knock", "4xx", 2}, {"knock", "5xx", 1}, {"knock", "network", 1}, {"stripe", "5xx", 1},
	} {
		got, ok := sample(t, reg, "crmflow_provider_request_duration_seconds", map[string]string{"provider": c.provider, "class": c.class})
		assert.True(t, ok, "%s %s", c.provider, c.class)
		assert.Equal(t, c.want, got, "%s %s", c.provider, c.class)
	}
	_, ok := sample(t, reg, "crmflow_provider_request_duration_seconds", map[string]string{"provider": "stripe", "class": "2xx"})
	assert.False(t, ok)
}

func TestNilProviderMetricsMeasuresNothing(t *testing.T) {
	var m *appmetrics.ProviderMetrics
	hc := &http.Client{Timeout: time.Second}
	assert.Same(t, hc, m.Client("knock", hc))
	assert.Equal(t, http.DefaultTransport, m.Transport("knock", nil))
}

func TestStatusClass(t *testing.T) {
	for status, class := range map[int]string{200: "2xx", 204: "2xx", 302: "3xx", 400: "4xx", 429: "4xx", 500: "5xx", 599: "5xx", 0: "network"} {
		assert.Equal(t, class, appmetrics.StatusClass(status), status)
	}
}
