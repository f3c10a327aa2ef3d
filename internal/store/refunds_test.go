package store_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/store"
)

func TestMarkOrderRefundedConverges(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	customer := seedCustomer(t)
	orderID := seedOrder(t, customer, 4000)

	_, err := db.MarkOrderRefunded(ctx, orderID, 1000, false)
	require.ErrorIs(t, err, store.ErrConflict, "a pending order has no payment to refund")
	_, err = db.MarkOrderRefunded(ctx, uniqueID(t, "missing"), 1000, false)
	require.ErrorIs(t, err, store.ErrNotFound)

	pi := uniqueID(t, "pi")
	_, err = db.SetOrderOutcome(ctx, orderID, store.OrderConfirmed, pi)
	require.NoError(t, err)
	r, err := db.MarkOrderRefunded(ctx, orderID, 1000, false)
	require.NoError(t, err)
	assert.Equal(t, store.Refund{OrderID: orderID, CustomerID: customer, AmountCents: 4000, Currency: "usd",
		Status: store.OrderPartiallyRefunded, RefundedCents: 1000}, *r)

	// A later refund's event, then the earlier one redelivered: amounts only
	// grow, and a full refund stays full.
	r, err = db.MarkOrderRefunded(ctx, orderID, 4000, true)
	require.NoError(t, err)
	assert.Equal(t, store.OrderRefunded, r.Status)
	r, err = db.MarkOrderRefunded(ctx, orderID, 1000, false)
	require.NoError(t, err)
	assert.Equal(t, store.OrderRefunded, r.Status)
	assert.EqualValues(t, 4000, r.RefundedCents)

	// Refunded orders still count as paid: the customer's first paid order
	// stays the one their referral was for.
	first, err := db.FirstPaidOrder(ctx, customer)
	require.NoError(t, err)
	assert.Equal(t, orderID, first)
	target, ok, err := db.OrderForPaymentIntent(ctx, pi)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, orderID, target.OrderID)
}

func TestLatePaymentIsRecordedThenConfirmed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	customer := seedCustomer(t)
	orderID := seedOrder(t, customer, 4000)
	pi := uniqueID(t, "pi")

	_, err := db.ConfirmLatePayment(ctx, orderID, pi)
	require.ErrorIs(t, err, store.ErrConflict, "a pending order is not closed")
	_, err = db.SetOrderOutcome(ctx, orderID, store.OrderExpired, "")
	require.NoError(t, err)

	o, err := db.RecordLatePayment(ctx, orderID, pi)
	require.NoError(t, err)
	assert.Equal(t, store.OrderExpired, o.Status, "recording changes no status")
	assert.Equal(t, pi, o.PaymentIntentID)
	_, ok, err := db.OrderForPaymentIntent(ctx, pi)
	require.NoError(t, err)
	assert.True(t, ok, "a refund of the late payment finds the order")

	o, err = db.RecordLatePayment(ctx, orderID, uniqueID(t, "pi-other"))
	require.NoError(t, err)
	assert.Equal(t, pi, o.PaymentIntentID, "the first late payment is kept")

	o, err = db.ConfirmLatePayment(ctx, orderID, pi)
	require.NoError(t, err)
	assert.Equal(t, store.OrderConfirmed, o.Status)
	assert.NotNil(t, o.ConfirmedAt)
	_, err = db.ConfirmLatePayment(ctx, orderID, pi)
	require.NoError(t, err, "confirming again is a no-op")
	_, err = db.ConfirmLatePayment(ctx, orderID, uniqueID(t, "pi-other"))
	require.ErrorIs(t, err, store.ErrConflict)
}
