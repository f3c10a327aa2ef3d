package worker_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/internal/appmetrics"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
	"github.com/crmflow/crmflow/worker"
)

// TestProviderCallsAreMeasured builds the activities as the worker does,
// with provider metrics, and triggers Knock twice against a Knock-shaped
// peer that accepts the first trigger and fails the second with a 500.
func TestProviderCallsAreMeasured(t *testing.T) {
	var calls atomic.Int32
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Recipients []any `json:"recipients"`
		}
		raw, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/v1/workflows/order-confirmation/trigger" ||
			r.Header.Get("Authorization") != "Bearer sk_test_knock" || r.Header.Get("Idempotency-Key") == "" ||
			json.Unmarshal(raw, &body) != nil || len(body.Recipients) != 1 {
			http.Error(w, `{"code":"invalid_params","message":"bad request","status":400}`, http.StatusBadRequest)
			return
		}
		if calls.Add(1) > 1 {
			http.Error(w, `{"code":"internal","message":"oops","status":500}`, http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, `{"workflow_run_id":"run-1"}`)
	}))
	defer peer.Close()

	reg := prometheus.NewRegistry()
	acts, _ := workerActivities(t, []string{
		"CRMFLOW_KNOCK_API_KEY=sk_test_knock", "CRMFLOW_KNOCK_API_URL=" + peer.URL,
		"CRMFLOW_STRIPE_SECRET_KEY=sk_test_123", "CRMFLOW_STRIPE_API_URL=" + testenv.StripeMockURL(t),
	}, worker.WithProviderMetrics(appmetrics.NewProviderMetrics(reg)))

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(acts.Knock)
	in := activities.NotifyInput{Workflow: "order-confirmation", Recipients: []string{"c1"}, IdempotencyKey: "order-confirmation/o1/notify"}
	_, err := env.ExecuteActivity(acts.Knock.Notify, in)
	require.NoError(t, err)
	_, err = env.ExecuteActivity(acts.Knock.Notify, in)
	require.Error(t, err)
	// Stripe, through stripe-go against stripe-mock, is measured too.
	env.RegisterActivity(acts.Stripe)
	_, err = env.ExecuteActivity(acts.Stripe.RetrievePaymentIntent, activities.RetrievePaymentIntentInput{PaymentIntentID: "pi_123"})
	require.NoError(t, err)

	families, err := reg.Gather()
	require.NoError(t, err)
	counts := map[string]uint64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			counts[f.GetName()+"{"+strings.Join(labels, ",")+"}"] = m.GetHistogram().GetSampleCount()
		}
	}
	assert.Equal(t, map[string]uint64{
		"crmflow_provider_request_duration_seconds{class=2xx,provider=knock}":  1,
		"crmflow_provider_request_duration_seconds{class=5xx,provider=knock}":  1,
		"crmflow_provider_request_duration_seconds{class=2xx,provider=stripe}": 1,
	}, counts)
}
