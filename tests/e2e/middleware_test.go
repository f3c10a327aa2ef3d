package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/api"
	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/httpserver"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/telemetry"
)

// sentryIngest stands in for Sentry's envelope endpoint of project 42 and
// records what it receives.
type sentryIngest struct {
	mu     sync.Mutex
	raw    bytes.Buffer
	events []map[string]any
	srv    *httptest.Server
}

func newSentryIngest(t *testing.T) *sentryIngest {
	s := &sentryIngest{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/api/42/envelope/" ||
			!strings.Contains(r.Header.Get("X-Sentry-Auth"), "sentry_key=publickey") {
			t.Errorf("unexpected Sentry request %s %s", r.Method, r.URL.Path)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		// An envelope is a header line, then a header and a payload line
		// per item.
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		sc.Scan()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.raw.Write(body)
		for sc.Scan() {
			var item struct{ Type string }
			require.NoError(t, json.Unmarshal(sc.Bytes(), &item))
			require.True(t, sc.Scan())
			if item.Type == "event" {
				var ev map[string]any
				require.NoError(t, json.Unmarshal(sc.Bytes(), &ev))
				s.events = append(s.events, ev)
			}
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sentryIngest) dsn() config.Secret {
	return config.Secret(strings.Replace(s.srv.URL, "http://", "http://publickey@", 1) + "/42")
}

// TestHandlerPanicReportedToSentry makes a real route panic (the server has
// no store) and checks the answer, the Sentry event and what it leaves out.
func TestHandlerPanicReportedToSentry(t *testing.T) {
	ingest := newSentryIngest(t)
	rep, err := telemetry.NewSentryReporter(config.SentryConfig{DSN: ingest.dsn(), Environment: "test", Release: "crmflow@1.0.0"})
	require.NoError(t, err)
	logger, reg := slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry()
	hs := httptest.NewServer(httpserver.Wrap(noStoreAPI(logger, "panic-token"), httpserver.Options{
		Logger: logger, Registry: reg, Panics: rep,
	}))
	defer hs.Close()

	req, err := http.NewRequest(http.MethodPost, hs.URL+"/v1/orders/o-1/confirmation", strings.NewReader(`{"card":"4242-body-secret"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer panic-token")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var body map[string]map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	resp.Body.Close()
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	assert.Equal(t, "internal", body["error"]["code"])
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))

	rep.Flush(5 * time.Second)
	ingest.mu.Lock()
	defer ingest.mu.Unlock()
	require.Len(t, ingest.events, 1)
	ev := ingest.events[0]
	assert.Equal(t, map[string]any{"route": "POST /v1/orders/{orderID}/confirmation"}, ev["tags"])
	assert.Equal(t, "fatal", ev["level"])
	assert.Equal(t, "test", ev["environment"])
	assert.Equal(t, "crmflow@1.0.0", ev["release"])
	assert.Contains(t, ev["message"], "nil pointer dereference")
	raw := ingest.raw.String()
	assert.Contains(t, raw, "startOrderConfirmation", "the stack names the handler that panicked")
	assert.NotContains(t, raw, "panic-token", "no request header is sent")
	assert.NotContains(t, raw, "4242-body-secret", "no request body is sent")
	assert.NotContains(t, raw, "/v1/orders/o-1", "the route, not the path with its ID")
}

// noStoreAPI is the API without a store or Temporal, so the first route
// that needs either panics.
func noStoreAPI(logger *slog.Logger, token string) http.Handler {
	mux := http.NewServeMux()
	api.New(api.Deps{Logger: logger, Auth: staticAuth{token: {Scope: credentials.ScopeService, Name: "api_token"}}}).Register(mux)
	return mux
}

// TestWebhookOutcomeMetrics sends real deliveries and scrapes /metrics.
func TestWebhookOutcomeMetrics(t *testing.T) {
	f := newFixture(t, fixtureOptions{maxBody: 4 << 10})
	f.seedOrder("o-metrics", "c-metrics")
	ev := stripeEvent("evt_metrics", "payment_intent.succeeded", "o-metrics")

	status, _ := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	status, _ = f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status, "a duplicate is acknowledged")
	status, _ = f.postStripe(ev, sign(ev, "whsec_wrong", time.Now()))
	require.Equal(t, http.StatusBadRequest, status)
	big := bytes.Repeat([]byte("x"), 8<<10)
	status, _ = f.postStripe(big, sign(big, stripeSecret, time.Now()))
	require.Equal(t, http.StatusRequestEntityTooLarge, status)
	status, _ = f.postClerk([]byte(`{}`), http.Header{})
	require.Equal(t, http.StatusBadRequest, status)

	_, err := f.store.RecordDeadLetter(context.Background(), store.DeadLetter{WorkflowID: "order-confirmation/o-metrics",
		RunID: "r1", WorkflowType: "OrderConfirmation", Step: "notify-confirmation", Error: "knock: 401", ErrorType: "KnockAuthFailed"})
	require.NoError(t, err)

	resp, err := http.Get(f.url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	metrics := string(raw)
	for _, want := range []string{
		`crmflow_webhooks_total{outcome="accepted",provider="stripe"} 1`,
		`crmflow_webhooks_total{outcome="duplicate",provider="stripe"} 1`,
		`crmflow_webhooks_total{outcome="rejected_bad_signature",provider="stripe"} 1`,
		`crmflow_webhooks_total{outcome="rejected_too_large",provider="stripe"} 1`,
		`crmflow_webhooks_total{outcome="rejected_bad_signature",provider="clerk"} 1`,
		`crmflow_parked_workflows{workflow_type="OrderConfirmation"} 1`,
		`crmflow_parked_workflows{workflow_type="ReferralReward"} 0`,
	} {
		assert.Contains(t, metrics, want)
	}
}
