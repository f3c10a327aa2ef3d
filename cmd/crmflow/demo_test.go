package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
	svix "github.com/svix/svix-webhooks/go"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/inbox"
)

func TestDemoSignedStripeEventVerifies(t *testing.T) {
	for _, eventType := range []stripego.EventType{
		stripego.EventTypePaymentIntentSucceeded, stripego.EventTypePaymentIntentPaymentFailed,
	} {
		t.Run(string(eventType), func(t *testing.T) {
			pi := demoPaymentIntent("pi_demo_x_1", "demo-x-order-1", eventType)
			payload, sig, err := signedStripeEvent(config.DevStripeWebhookSecret, "evt_demo_x_1", eventType, pi, time.Now())
			require.NoError(t, err)

			// Strict options: the API version must match stripe-go's too.
			ev, err := webhook.ConstructEventWithOptions(payload, sig, config.DevStripeWebhookSecret,
				webhook.ConstructEventOptions{Tolerance: 5 * time.Minute})
			require.NoError(t, err)
			assert.Equal(t, "evt_demo_x_1", ev.ID)
			assert.Equal(t, eventType, ev.Type)

			var got stripego.PaymentIntent
			require.NoError(t, json.Unmarshal(ev.Data.Raw, &got))
			assert.Equal(t, "pi_demo_x_1", got.ID)
			assert.Equal(t, "demo-x-order-1", got.Metadata["order_id"])
			assert.EqualValues(t, 4200, got.Amount)
			assert.Equal(t, stripego.CurrencyEUR, got.Currency)
			if eventType == stripego.EventTypePaymentIntentSucceeded {
				assert.EqualValues(t, 4200, got.AmountReceived)
				assert.Equal(t, stripego.PaymentIntentStatusSucceeded, got.Status)
				assert.Nil(t, got.LastPaymentError)
			} else {
				assert.Equal(t, stripego.PaymentIntentStatusRequiresPaymentMethod, got.Status)
				require.NotNil(t, got.LastPaymentError)
				assert.Equal(t, "Your card was declined.", got.LastPaymentError.Msg)
			}

			_, err = webhook.ConstructEventWithOptions(payload, sig, "whsec_another_secret",
				webhook.ConstructEventOptions{Tolerance: 5 * time.Minute})
			assert.ErrorIs(t, err, webhook.ErrNoValidSignature)
		})
	}
}

// TestDemoSignedClerkEventVerifies: the demo's user.created passes Svix's
// verification with the dev secret (and no other) and reads, at the inbox,
// as a user event for the user's entity.
func TestDemoSignedClerkEventVerifies(t *testing.T) {
	now := time.Now()
	payload, h, err := signedClerkEvent(config.DevClerkWebhookSecret, "msg_demo_x_user",
		demoClerkUser("user_demo_x", "carol+x@example.com", now), now)
	require.NoError(t, err)
	wh, err := svix.NewWebhook(config.DevClerkWebhookSecret)
	require.NoError(t, err)
	require.NoError(t, wh.Verify(payload, h))
	other, err := svix.NewWebhook("whsec_" + base64.StdEncoding.EncodeToString([]byte("another secret of 32 bytes......")))
	require.NoError(t, err)
	assert.Error(t, other.Verify(payload, h))

	row, err := inbox.ClerkEvent(h.Get("svix-id"), payload)
	require.NoError(t, err)
	assert.Empty(t, row.Ignored)
	assert.Equal(t, contract.UserID("user_demo_x"), row.Target)
	require.NotNil(t, row.Route.Clerk)
	ev := row.Route.Clerk.Event
	require.NotNil(t, ev)
	assert.Equal(t, contract.UserEventCreated, ev.Type)
	assert.Equal(t, "Carol (demo)", ev.Name)
	assert.Equal(t, "carol+x@example.com", ev.PrimaryEmail)
	assert.Equal(t, []string{"carol+x@example.com"}, ev.VerifiedEmails)
}

func TestDemoWorkflowStatusPath(t *testing.T) {
	assert.Equal(t, "/v1/workflows/order-confirmation/demo-abc-order-1",
		workflowStatusPath(contract.OrderConfirmationID("demo-abc-order-1")))
	assert.Equal(t, "/v1/workflows/referral-reward/demo-abc-referral",
		workflowStatusPath(contract.ReferralRewardID("demo-abc-referral")))
	// Characters a path segment cannot hold are escaped; the "/" stays.
	assert.Equal(t, "/v1/workflows/low-stock/a%3Fb", workflowStatusPath("low-stock/a?b"))

	// The server's route takes the whole rest as the ID.
	mux := http.NewServeMux()
	var got string
	mux.HandleFunc("GET /v1/workflows/{workflowID...}", func(_ http.ResponseWriter, r *http.Request) {
		got = r.PathValue("workflowID")
	})
	mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet,
		workflowStatusPath("order-confirmation/demo-abc-order-1"), nil))
	assert.Equal(t, "order-confirmation/demo-abc-order-1", got)
}

func TestDemoTemporalUIURL(t *testing.T) {
	assert.Equal(t, "http://127.0.0.1:8233/namespaces/default/workflows/order-confirmation%2Fdemo-abc-order-1",
		temporalUIWorkflowURL("127.0.0.1:8233", "default", contract.OrderConfirmationID("demo-abc-order-1")))
}

func TestDemoHTTPBaseURL(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080",
		":8080":          "http://127.0.0.1:8080",
		"0.0.0.0:8080":   "http://127.0.0.1:8080",
		"[::]:8080":      "http://127.0.0.1:8080",
		"localhost:9000": "http://localhost:9000",
		"[::1]:8080":     "http://[::1]:8080",
	} {
		assert.Equal(t, want, httpBaseURL(addr), addr)
	}
}

func TestDemoIDsAreUniqueAndValidKeys(t *testing.T) {
	now := time.Now()
	a, b := newDemoIDs(demoSuffix(now)), newDemoIDs(demoSuffix(now))
	assert.NotEqual(t, a.order1, b.order1)
	for _, id := range []string{a.referrer, a.referred, a.referral, a.order1, a.order2, a.user} {
		assert.NoError(t, contract.ValidateKey("id", id))
	}
	assert.NotEqual(t, a.order1, a.order2)
}

func TestDemoNeedsRunningStack(t *testing.T) {
	// A port nothing listens on: start a server and close it.
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	err := checkReady(context.Background(), http.DefaultClient, base)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is `crmflow dev` running? GET "+base+"/readyz failed")

	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"not ready","checks":{"temporal":{"status":"error"}}}`))
	}))
	defer notReady.Close()
	err = checkReady(context.Background(), http.DefaultClient, notReady.URL)
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "503") && strings.Contains(err.Error(), "temporal"), err.Error())
}
