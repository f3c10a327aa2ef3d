package e2e_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/providers"
	"github.com/crmflow/crmflow/internal/store"
)

// TestRevokedStripeKeyParksInsteadOfConfirming: Stripe is configured
// (stripe-mock) and its active key is then revoked. A signed
// payment_intent.succeeded must not confirm the order from the webhook's
// own snapshot, as a fallback to console mode did: the payment check fails
// with StripeCredentialMissing and the run parks for an operator, the
// order still pending and nobody told it was confirmed.
func TestRevokedStripeKeyParksInsteadOfConfirming(t *testing.T) {
	stripe := newStripePeer(t)
	f := newFixture(t, fixtureOptions{worker: true, stripeURL: stripe.srv.URL, stripeConfigured: true})
	f.seedOrder("o-revoked", "cus_revoked")
	p, _ := providers.Lookup(contract.ProviderStripe)
	require.NoError(t, f.creds.Revoke(context.Background(), p.Key.Provider, p.Key.Name, 1))

	ev := stripeEvent("evt_revoked", "payment_intent.succeeded", "o-revoked")
	status, _ := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)

	parked := f.waitParked(func() bool { return f.orderStatus("o-revoked") != store.OrderPending })
	assert.Equal(t, store.OrderPending, f.orderStatus("o-revoked"), "a payment nobody could check confirms nothing")
	require.Len(t, parked, 1)
	assert.Equal(t, contract.OrderConfirmationID("o-revoked"), parked[0].WorkflowID)
	assert.Equal(t, "verify-payment", parked[0].Step)
	assert.Equal(t, "StripeCredentialMissing", parked[0].ErrorType)
	assert.Equal(t, 1, parked[0].Attempts, "no retry brings a key back; an operator must")

	desc, err := f.temporal.DescribeWorkflowExecution(context.Background(), contract.OrderConfirmationID("o-revoked"), "")
	require.NoError(t, err)
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.GetWorkflowExecutionInfo().GetStatus(), "parked, waiting for an operator")
	assert.Zero(t, stripe.count(http.MethodGet, "/v1/payment_intents/pi_o-revoked", ""), "nothing was sent without a key")
	assert.Zero(t, f.knock.countWorkflow("order-confirmation"), "nobody was told the order is confirmed")
}
