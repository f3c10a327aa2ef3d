package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
)

func TestAPIRequiresToken(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, tok := range []string{"", "wrong", apiToken + "x", "test-toke"} {
		status, body := f.api(http.MethodPost, "/v1/orders/o1/confirmation", tok, nil)
		assert.Equal(t, http.StatusUnauthorized, status, "token %q", tok)
		assert.Equal(t, "unauthorized", errorCode(body))
	}
	status, _ := f.api(http.MethodGet, "/v1/nothing-here", "", nil)
	assert.Equal(t, http.StatusUnauthorized, status, "unknown /v1 paths need a token too")
	status, body := f.api(http.MethodGet, "/v1/nothing-here", apiToken, nil)
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "not_found", errorCode(body))
}

func TestStartOrderConfirmationAPI(t *testing.T) {
	f := newFixture(t, fixtureOptions{worker: true})
	f.seedOrder("o-api", "cus_api")

	status, body := f.api(http.MethodPost, "/v1/orders/unknown-order/confirmation", apiToken, nil)
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "not_found", errorCode(body))
	status, body = f.api(http.MethodPost, "/v1/orders/bad%20id/confirmation", apiToken, nil)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "invalid_order_id", errorCode(body))

	status, body = f.api(http.MethodPost, "/v1/orders/o-api/confirmation", apiToken, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	assert.Equal(t, "order-confirmation/o-api", body["workflow_id"])
	runID := body["run_id"]
	require.NotEmpty(t, runID)
	status, body = f.api(http.MethodPost, "/v1/orders/o-api/confirmation", apiToken, nil)
	require.Equal(t, http.StatusAccepted, status)
	assert.Equal(t, runID, body["run_id"], "a second start joins the first run")

	require.Eventually(t, func() bool {
		status, body = f.api(http.MethodGet, "/v1/workflows/order-confirmation/o-api", apiToken, nil)
		st, _ := body["status"].(map[string]any)
		return status == http.StatusOK && st["step"] == "await-payment"
	}, 20*time.Second, 100*time.Millisecond, "status: %v", body)
	assert.Equal(t, "pending", body["status"].(map[string]any)["state"])

	status, body = f.api(http.MethodGet, "/v1/workflows/order-confirmation/nope", apiToken, nil)
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "not_found", errorCode(body))
}

// TestParkedStepRetriedThroughAPI: Knock refuses the key, the step parks with
// a dead letter; an operator retries through the API once the key works, and
// the order completes with exactly one notification.
func TestParkedStepRetriedThroughAPI(t *testing.T) {
	f := newFixture(t, fixtureOptions{worker: true})
	f.knock.failFirst = 1
	f.seedOrder("o-park", "cus_park")
	ev := stripeEvent("evt_park", "payment_intent.succeeded", "o-park")
	status, _ := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)

	var dead []any
	require.Eventually(t, func() bool {
		_, body := f.api(http.MethodGet, "/v1/dead-letters?status=parked", operatorToken, nil)
		dead, _ = body["dead_letters"].([]any)
		return len(dead) == 1
	}, 30*time.Second, 100*time.Millisecond)
	d := dead[0].(map[string]any)
	assert.Equal(t, "notify-confirmation", d["step"])
	assert.Equal(t, "KnockAuthFailed", d["error_type"])
	id := int64(d["id"].(float64))
	assert.Equal(t, "confirmed", f.orderStatus("o-park"), "the order was marked before the failing step")

	_, body := f.api(http.MethodGet, "/v1/workflows/order-confirmation/o-park", apiToken, nil)
	assert.Equal(t, true, body["status"].(map[string]any)["parked"])

	status, body = f.api(http.MethodPost, "/v1/dead-letters/999999/retry", operatorToken, nil)
	assert.Equal(t, http.StatusNotFound, status, body)
	status, _ = f.api(http.MethodPost, fmt.Sprintf("/v1/dead-letters/%d/explode", id), operatorToken, nil)
	assert.Equal(t, http.StatusNotFound, status)
	status, body = f.api(http.MethodPost, fmt.Sprintf("/v1/dead-letters/%d/retry", id), operatorToken,
		strings.NewReader(`{"operator":"alice"}`))
	require.Equal(t, http.StatusAccepted, status, body)
	assert.Equal(t, "notify-confirmation", body["step"])

	run := f.temporal.GetWorkflow(context.Background(), contract.OrderConfirmationID("o-park"), "")
	var res contract.OrderConfirmationResult
	require.NoError(t, run.Get(context.Background(), &res))
	assert.Equal(t, "confirmed", res.State)
	saveHistory(t, f.temporal, contract.OrderConfirmationID("o-park"), "order_confirmation_parked_retried.json")
	assert.Equal(t, 1, f.knock.succeeded(contract.OrderConfirmationID("o-park")+"/notify-confirmation"))

	got, err := f.store.GetDeadLetter(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, store.DeadLetterResolved, got.Status)
	assert.Equal(t, "alice", got.DecidedBy)
	status, body = f.api(http.MethodPost, fmt.Sprintf("/v1/dead-letters/%d/retry", id), operatorToken, nil)
	assert.Equal(t, http.StatusConflict, status, "a closed dead letter cannot be decided again")
	assert.Equal(t, "not_parked", errorCode(body))
}
