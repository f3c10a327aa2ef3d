package e2e_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/providers"
	"github.com/crmflow/crmflow/webhooks"
)

// TestHumanInTheLoopKeyRotationThroughAPI: an operator starts a rotation,
// a malformed key is refused by the validator, a key the provider refuses is
// not stored, a good one is stored and activated, and the operator's
// confirmation that the old key is revoked ends the rotation.
func TestHumanInTheLoopKeyRotationThroughAPI(t *testing.T) {
	f := newFixture(t, fixtureOptions{worker: true})
	ctx := context.Background()
	_, err := f.creds.SeedFromConfig(ctx, "stripe_webhook", "api_key", "whsec_old_secret_value")
	require.NoError(t, err)

	status, body := f.api(http.MethodPost, "/v1/key-rotations/nope", apiToken, nil)
	assert.Equal(t, http.StatusBadRequest, status, body)
	status, body = f.api(http.MethodPost, "/v1/key-rotations/stripe_webhook", apiToken, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	assert.Equal(t, "key-rotation/stripe_webhook", body["workflow_id"])
	runID := body["run_id"]
	status, body = f.api(http.MethodPost, "/v1/key-rotations/stripe_webhook", apiToken, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	assert.Equal(t, runID, body["run_id"], "a rotation already running is joined, not duplicated")

	submit := func(key string) (int, map[string]any) {
		var st int
		var b map[string]any
		// The run asks the operators first; until it waits for a key the
		// validator refuses, so try for a little while.
		require.Eventually(t, func() bool {
			st, b = f.api(http.MethodPost, "/v1/key-rotations/stripe_webhook/key", apiToken,
				strings.NewReader(`{"key":"`+key+`","operator":"alice"}`))
			return st != http.StatusConflict || !strings.Contains(errorMessage(b), "not waiting")
		}, 20*time.Second, 100*time.Millisecond)
		return st, b
	}
	status, body = submit("not-a-webhook-secret")
	assert.Equal(t, http.StatusConflict, status, "the validator refuses a malformed key: %v", body)
	status, body = submit("whsec_bad_but_well_formed_0123")
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, false, body["valid"])
	active, err := f.creds.Active(ctx, "stripe_webhook", "api_key")
	require.NoError(t, err)
	assert.Equal(t, 1, active.Version, "a refused key is not stored")

	status, body = submit("whsec_good_new_secret_0123456")
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, true, body["valid"])
	require.Eventually(t, func() bool {
		c, err := f.creds.Active(ctx, "stripe_webhook", "api_key")
		return err == nil && c.Version > 1 && c.Secret.Reveal() == "whsec_good_new_secret_0123456"
	}, 20*time.Second, 100*time.Millisecond, "the new key is active")

	require.Eventually(t, func() bool {
		st, _ := f.api(http.MethodPost, "/v1/key-rotations/stripe_webhook/revoked", apiToken, nil)
		return st == http.StatusAccepted
	}, 20*time.Second, 100*time.Millisecond)
	var res contract.KeyRotationResult
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, f.temporal.GetWorkflow(waitCtx, contract.KeyRotationID("stripe_webhook"), "").Get(waitCtx, &res))
	assert.Equal(t, "rotated", res.State)
	assert.GreaterOrEqual(t, f.knock.countWorkflow("key-rotation-needed"), 1)
	assert.Equal(t, 1, f.knock.countWorkflow("key-rotated"))
	for _, tr := range f.knock.all() {
		assert.NotContains(t, tr.Body, "whsec_good_new_secret_0123456", "no secret in a notification")
	}
	saveHistory(t, f.temporal, contract.KeyRotationID("stripe_webhook"), "key_rotation_hitl_rotated.json")
}

func errorMessage(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

// TestStartAPITokenRotationEndToEnd: the start-API token in the credential
// store is rotated through the API; the new token is handed out once; the
// old one keeps working during the grace period and fails after it.
func TestStartAPITokenRotationEndToEnd(t *testing.T) {
	f := newFixture(t, fixtureOptions{worker: true, credentialGrace: 3 * time.Second})
	ctx := context.Background()
	_, err := f.creds.SeedFromConfig(ctx, providers.CrmflowToken().Key.Provider, providers.CrmflowToken().Key.Name, "tok-old-0123456789")
	require.NoError(t, err)
	const old = "tok-old-0123456789"
	status, _ := f.api(http.MethodGet, "/v1/dead-letters", old, nil)
	require.Equal(t, http.StatusOK, status, "the seeded token works")

	status, body := f.api(http.MethodPost, "/v1/key-rotations/crmflow", old, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	var newToken string
	require.Eventually(t, func() bool {
		st, b := f.api(http.MethodPost, "/v1/key-rotations/crmflow/token", old, nil)
		if st == http.StatusOK {
			newToken, _ = b["token"].(string)
		}
		return st == http.StatusOK
	}, 20*time.Second, 100*time.Millisecond)
	require.NotEmpty(t, newToken)
	status, body = f.api(http.MethodPost, "/v1/key-rotations/crmflow/token", old, nil)
	assert.Equal(t, http.StatusConflict, status, "the token is handed out once: %v", body)

	status, _ = f.api(http.MethodGet, "/v1/dead-letters", newToken, nil)
	assert.Equal(t, http.StatusOK, status, "the new token works at once")
	status, _ = f.api(http.MethodGet, "/v1/dead-letters", old, nil)
	assert.Equal(t, http.StatusOK, status, "the old token works during the grace period")
	require.Eventually(t, func() bool {
		st, _ := f.api(http.MethodGet, "/v1/dead-letters", old, nil)
		return st == http.StatusUnauthorized
	}, 20*time.Second, 200*time.Millisecond, "the old token fails after the grace period")
	status, _ = f.api(http.MethodGet, "/v1/dead-letters", newToken, nil)
	assert.Equal(t, http.StatusOK, status)
}

// TestWebhookSecretsDuringRotation: while a signing secret rotates, events
// signed with the new or the retiring secret verify; others do not.
func TestWebhookSecretsDuringRotation(t *testing.T) {
	f := newFixture(t, fixtureOptions{credentialGrace: time.Hour})
	ctx := context.Background()
	_, err := f.creds.SeedFromConfig(ctx, "stripe_webhook", "api_key", "whsec_old_rotating")
	require.NoError(t, err)
	v, err := f.creds.Put(ctx, "stripe_webhook", "api_key", "whsec_new_rotating", "pending")
	require.NoError(t, err)
	require.NoError(t, f.creds.Activate(ctx, "stripe_webhook", "api_key", v))
	mux := http.NewServeMux()
	webhooks.New(webhooks.Deps{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: prometheus.NewRegistry(),
		Inbox: inbox.NewStore(f.store.Pool()), Referrals: f.store,
		Secrets: f.creds.WebhookSecrets,
		Options: webhooks.Options{StripeSecret: "whsec_static_ignored", Tolerance: 5 * time.Minute, MaxBodyBytes: 1 << 20},
	}).Register(mux)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	post := func(id, secret string) int {
		ev := stripeEvent(id, "payment_intent.succeeded", "o-rot")
		req, _ := http.NewRequest(http.MethodPost, hs.URL+"/webhooks/stripe", bytes.NewReader(ev))
		req.Header.Set("Stripe-Signature", sign(ev, secret, time.Now()))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, post("evt_rot_new", "whsec_new_rotating"))
	assert.Equal(t, http.StatusOK, post("evt_rot_old", "whsec_old_rotating"))
	assert.Equal(t, http.StatusBadRequest, post("evt_rot_static", "whsec_static_ignored"), "the store, not config, decides")
	require.NoError(t, f.creds.Revoke(ctx, "stripe_webhook", "api_key", 1))
	assert.Equal(t, http.StatusBadRequest, post("evt_rot_revoked", "whsec_old_rotating"), "a revoked secret no longer verifies")
}
