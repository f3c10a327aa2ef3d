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
	"github.com/crmflow/crmflow/webhooks"
)

// TestHumanInTheLoopKeyRotationThroughAPI: an operator starts a rotation;
// a malformed key is refused before anything is stored; a key the provider
// refuses is stored pending, refused and revoked; a good one is stored
// pending and, being a webhook signing secret, activated only once a
// genuine delivery (signed with the old and the new secret, as Stripe does
// while it rolls a secret) proves it; the operator's confirmation that the
// old secret is revoked ends the rotation.
func TestHumanInTheLoopKeyRotationThroughAPI(t *testing.T) {
	f := newFixture(t, fixtureOptions{worker: true})
	ctx := context.Background()
	// The fixture seeded stripeSecret as the secret in use.
	const oldSecret, newSecret = stripeSecret, "whsec_good_new_secret_0123456"

	status, body := f.api(http.MethodPost, "/v1/key-rotations/nope", operatorToken, nil)
	assert.Equal(t, http.StatusBadRequest, status, body)
	status, body = f.api(http.MethodPost, "/v1/key-rotations/stripe_webhook", operatorToken, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	assert.Equal(t, "key-rotation/stripe_webhook", body["workflow_id"])
	runID := body["run_id"]
	status, body = f.api(http.MethodPost, "/v1/key-rotations/stripe_webhook", operatorToken, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	assert.Equal(t, runID, body["run_id"], "a rotation already running is joined, not duplicated")

	submit := func(key string) (int, map[string]any) {
		var st int
		var b map[string]any
		// The run asks the operators first; until it waits for a key the
		// validator refuses, so try for a little while.
		require.Eventually(t, func() bool {
			st, b = f.api(http.MethodPost, "/v1/key-rotations/stripe_webhook/key", operatorToken,
				strings.NewReader(`{"key":"`+key+`"}`))
			return st != http.StatusConflict || !strings.Contains(errorMessage(b), "not waiting")
		}, 20*time.Second, 100*time.Millisecond)
		return st, b
	}
	status, body = submit("not-a-webhook-secret")
	assert.Equal(t, http.StatusUnprocessableEntity, status, "a malformed key is refused before it is stored: %v", body)
	status, body = submit("whsec_bad_but_well_formed_0123")
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, false, body["valid"])
	versions, err := f.creds.Versions(ctx, "stripe_webhook", "api_key")
	require.NoError(t, err)
	require.Len(t, versions, 2)
	assert.Equal(t, "revoked", versions[1].Status, "a refused key is revoked at once")

	status, body = submit(newSecret)
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, true, body["valid"])
	f.waitStatus(contract.KeyRotationID("stripe_webhook"), "awaiting-proof")
	active, err := f.creds.Active(ctx, "stripe_webhook", "api_key")
	require.NoError(t, err)
	assert.Equal(t, 1, active.Version, "a submitted secret waits for proof")

	// A delivery signed only with the submitted secret proves nothing and
	// is refused: an attacker's own secret can never verify their events.
	f.seedOrder("o-proof", "c-proof")
	forged := stripeEvent("evt_forged_new_only", "payment_intent.succeeded", "o-proof")
	status, _ = f.postStripe(forged, sign(forged, newSecret, time.Now()))
	assert.Equal(t, http.StatusBadRequest, status)
	f.waitStatus(contract.KeyRotationID("stripe_webhook"), "awaiting-proof")

	// Stripe signs with both secrets while it rolls one.
	genuine := stripeEvent("evt_genuine_both", "payment_intent.succeeded", "o-proof")
	status, _ = f.postStripe(genuine, signBoth(genuine, oldSecret, newSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	require.Eventually(t, func() bool {
		c, err := f.creds.Active(ctx, "stripe_webhook", "api_key")
		return err == nil && c.Version == 3 && c.Secret.Reveal() == newSecret
	}, 20*time.Second, 100*time.Millisecond, "the proven secret is active")

	require.Eventually(t, func() bool {
		st, _ := f.api(http.MethodPost, "/v1/key-rotations/stripe_webhook/revoked", operatorToken, nil)
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
		assert.NotContains(t, tr.Body, newSecret, "no secret in a notification")
	}
	f.requireAudited(operatorName, "key_rotation.submit_key", "key-rotation/stripe_webhook")
	f.requireAudited(operatorName, "key_rotation.old_key_revoked", "key-rotation/stripe_webhook")
	requireNoKeyMaterial(t, f.temporal, contract.KeyRotationID("stripe_webhook"), newSecret, "whsec_bad_but_well_formed_0123")
}

func errorMessage(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

// TestStartAPITokenRotationEndToEnd: an operator rotates the start-API
// token; the new token, read from the credential store, can be fetched
// again until it is first used; its first use starts the old token's grace
// period, after which the old token fails. The token never enters the
// rotation's history.
func TestStartAPITokenRotationEndToEnd(t *testing.T) {
	f := newFixture(t, fixtureOptions{worker: true, credentialGrace: 3 * time.Second})
	const old = apiToken
	orderStatus := "/v1/workflows/order-confirmation/o-none"
	status, _ := f.api(http.MethodGet, orderStatus, old, nil)
	require.Equal(t, http.StatusNotFound, status, "the seeded token works")

	status, body := f.api(http.MethodPost, "/v1/key-rotations/crmflow", old, nil)
	require.Equal(t, http.StatusForbidden, status, "a service token cannot rotate tokens: %v", body)
	status, body = f.api(http.MethodPost, "/v1/key-rotations/crmflow", operatorToken, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	fetch := func() string {
		var tok string
		require.Eventually(t, func() bool {
			st, b := f.api(http.MethodPost, "/v1/key-rotations/crmflow/token", operatorToken, nil)
			tok, _ = b["token"].(string)
			return st == http.StatusOK
		}, 20*time.Second, 100*time.Millisecond)
		return tok
	}
	newToken := fetch()
	require.NotEmpty(t, newToken)
	assert.Equal(t, newToken, fetch(), "a lost answer is no lock-out: the token can be fetched again")
	status, _ = f.api(http.MethodPost, "/v1/key-rotations/crmflow/token", old, nil)
	assert.Equal(t, http.StatusForbidden, status, "only operators fetch tokens")

	status, _ = f.api(http.MethodGet, orderStatus, old, nil)
	assert.Equal(t, http.StatusNotFound, status, "the old token works until the new one is used")
	status, _ = f.api(http.MethodGet, orderStatus, newToken, nil)
	assert.Equal(t, http.StatusNotFound, status, "the new token works at once")
	f.waitStatus(contract.KeyRotationID("crmflow"), "grace")
	status, _ = f.api(http.MethodPost, "/v1/key-rotations/crmflow/token", operatorToken, nil)
	assert.Equal(t, http.StatusConflict, status, "once used, the token is no longer handed out")
	require.Eventually(t, func() bool {
		st, _ := f.api(http.MethodGet, orderStatus, old, nil)
		return st == http.StatusUnauthorized
	}, 20*time.Second, 200*time.Millisecond, "the old token fails after the grace period")
	status, _ = f.api(http.MethodGet, orderStatus, newToken, nil)
	assert.Equal(t, http.StatusNotFound, status)
	f.requireAudited(operatorName, "key_rotation.token_handout", "key-rotation/crmflow")
	requireNoKeyMaterial(t, f.temporal, contract.KeyRotationID("crmflow"), newToken)
}

// TestWebhookSecretsDuringRotation: while a signing secret rotates, events
// signed with the new or the retiring secret verify; others do not.
func TestWebhookSecretsDuringRotation(t *testing.T) {
	f := newFixture(t, fixtureOptions{credentialGrace: time.Hour})
	ctx := context.Background()
	// The fixture seeded stripeSecret as version 1, the old secret here.
	const oldRotating = stripeSecret
	v, err := f.creds.Put(ctx, "stripe_webhook", "api_key", "whsec_new_rotating", "pending")
	require.NoError(t, err)
	require.NoError(t, f.creds.Activate(ctx, "stripe_webhook", "api_key", v))
	mux := http.NewServeMux()
	webhooks.New(webhooks.Deps{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: prometheus.NewRegistry(),
		Inbox:   inbox.NewStore(f.store.Pool()),
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
	assert.Equal(t, http.StatusOK, post("evt_rot_old", oldRotating))
	assert.Equal(t, http.StatusBadRequest, post("evt_rot_static", "whsec_static_ignored"), "the store, not config, decides")
	require.NoError(t, f.creds.Revoke(ctx, "stripe_webhook", "api_key", 1))
	assert.Equal(t, http.StatusBadRequest, post("evt_rot_revoked", oldRotating), "a revoked secret no longer verifies")
}
