package e2e_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
)

// requireMismatch waits for the order's run to end and checks it ended as
// a mismatch operators were told about, with the order not confirmed.
func (f *fixture) requireMismatch(orderID string) {
	f.t.Helper()
	id := contract.OrderConfirmationID(orderID)
	f.waitStarted(id)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var res contract.OrderConfirmationResult
	require.NoError(f.t, f.temporal.GetWorkflow(ctx, id, "").Get(ctx, &res))
	assert.Equal(f.t, store.OrderMismatch, res.State)
	assert.Equal(f.t, store.OrderMismatch, f.orderStatus(orderID))
	assert.Equal(f.t, 1, f.knock.succeeded(id+"/notify-mismatch"), "operators are alerted")
	assert.Zero(f.t, f.knock.countWorkflow("order-confirmation"), "the customer is not told the order is confirmed")
}

// TestPaymentIntentOfAnotherOrderDoesNotConfirm: a signed
// payment_intent.succeeded routed to order o-victim (its metadata says so)
// but naming a PaymentIntent that, at Stripe, pays order o-paid: amount,
// currency and status all match, yet the order is a mismatch.
func TestPaymentIntentOfAnotherOrderDoesNotConfirm(t *testing.T) {
	stripe := newStripePeer(t)
	f := newFixture(t, fixtureOptions{worker: true, stripeURL: stripe.srv.URL})
	f.seedOrder("o-victim", "cus_victim")
	ev := paymentIntentEvent("evt_other_order", "payment_intent.succeeded", "o-victim", "pi_o-paid")
	status, _ := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	f.requireMismatch("o-victim")
	assert.Equal(t, 1, stripe.count(http.MethodGet, "/v1/payment_intents/pi_o-paid", ""), "the payment was checked at Stripe")
}

// TestPaymentIntentOfAnotherCustomerDoesNotConfirm: the PaymentIntent pays
// the order, but at Stripe it belongs to another customer than the order's
// (customers.stripe_customer_id).
func TestPaymentIntentOfAnotherCustomerDoesNotConfirm(t *testing.T) {
	stripe := newStripePeer(t, func(pi map[string]any) { pi["customer"] = "cus_thief" })
	f := newFixture(t, fixtureOptions{worker: true, stripeURL: stripe.srv.URL})
	ctx := context.Background()
	require.NoError(t, f.store.UpsertCustomer(ctx, store.Customer{ID: "c-owner", Email: "owner@example.com", StripeCustomerID: "cus_owner"}))
	require.NoError(t, f.store.InsertOrder(ctx, store.Order{ID: "o-owned", CustomerID: "c-owner", AmountCents: 4200, Currency: "eur"}))
	ev := stripeEvent("evt_other_customer", "payment_intent.succeeded", "o-owned")
	status, _ := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	f.requireMismatch("o-owned")
}
