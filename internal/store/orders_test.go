package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/store"
)

func seedOrder(t *testing.T, customerID string, amountCents int64) string {
	t.Helper()
	id := uniqueID(t, "ord")
	require.NoError(t, db.InsertOrder(t.Context(), store.Order{
		ID: id, CustomerID: customerID, AmountCents: amountCents, Currency: "usd",
	}))
	return id
}

func TestGetOrder(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	customer := seedCustomer(t)
	orderID := seedOrder(t, customer, 4250)

	o, err := db.GetOrder(ctx, orderID)
	require.NoError(t, err)
	require.Equal(t, store.Order{
		ID:            orderID,
		CustomerID:    customer,
		CustomerEmail: customer + "@example.com",
		AmountCents:   4250,
		Currency:      "usd",
		Status:        store.OrderPending,
	}, *o)

	// InsertOrder leaves an existing order alone.
	require.NoError(t, db.InsertOrder(ctx, store.Order{ID: orderID, CustomerID: customer, AmountCents: 1, Currency: "eur"}))
	again, err := db.GetOrder(ctx, orderID)
	require.NoError(t, err)
	require.Equal(t, o, again)

	_, err = db.GetOrder(ctx, uniqueID(t, "missing"))
	require.ErrorIs(t, err, store.ErrNotFound)
}

// TestExistingOrders: the look-up of many orders at once names exactly the
// ids that are orders; a missing id, a repeated id and an empty list are
// fine.
func TestExistingOrders(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	customer := seedCustomer(t)
	a, b := seedOrder(t, customer, 100), seedOrder(t, customer, 200)
	missing := uniqueID(t, "missing")

	found, err := db.ExistingOrders(ctx, []string{a, missing, b, a})
	require.NoError(t, err)
	require.Equal(t, map[string]bool{a: true, b: true}, found)
	require.False(t, found[missing])

	found, err = db.ExistingOrders(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, found)
}

// TestGetOrderCarriesTheCustomersStripeCustomer: the order confirmation
// checks a payment came from the order's customer at Stripe.
func TestGetOrderCarriesTheCustomersStripeCustomer(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	customer := uniqueID(t, "cus")
	require.NoError(t, db.UpsertCustomer(ctx, store.Customer{ID: customer, Email: customer + "@example.com", StripeCustomerID: "cus_stripe_" + customer}))
	o, err := db.GetOrder(ctx, seedOrder(t, customer, 4250))
	require.NoError(t, err)
	require.Equal(t, "cus_stripe_"+customer, o.CustomerStripeID)
}

func TestSetOrderOutcomeConfirm(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	orderID := seedOrder(t, seedCustomer(t), 1999)
	pi := uniqueID(t, "pi")

	before := time.Now()
	o, err := db.SetOrderOutcome(ctx, orderID, store.OrderConfirmed, pi)
	require.NoError(t, err)
	require.Equal(t, store.OrderConfirmed, o.Status)
	require.Equal(t, pi, o.PaymentIntentID)
	require.NotNil(t, o.ConfirmedAt)
	require.WithinDuration(t, before, *o.ConfirmedAt, time.Minute)

	stored, err := db.GetOrder(ctx, orderID)
	require.NoError(t, err)
	require.Equal(t, o, stored)

	// A retried activity sets the same outcome again: success, nothing moves.
	again, err := db.SetOrderOutcome(ctx, orderID, store.OrderConfirmed, pi)
	require.NoError(t, err)
	require.Equal(t, stored, again)
	require.True(t, stored.ConfirmedAt.Equal(*again.ConfirmedAt), "confirmed_at changed on a repeat")

	// A different final outcome afterwards is refused and changes nothing.
	conflicting, err := db.SetOrderOutcome(ctx, orderID, store.OrderPaymentFailed, uniqueID(t, "pi"))
	require.ErrorIs(t, err, store.ErrConflict)
	require.NotNil(t, conflicting)
	require.Equal(t, store.OrderConfirmed, conflicting.Status)
	after, err := db.GetOrder(ctx, orderID)
	require.NoError(t, err)
	require.Equal(t, stored, after)
}

func TestSetOrderOutcomeFailureThenConfirm(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	orderID := seedOrder(t, seedCustomer(t), 500)

	o, err := db.SetOrderOutcome(ctx, orderID, store.OrderPaymentFailed, "")
	require.NoError(t, err)
	require.Equal(t, store.OrderPaymentFailed, o.Status)
	require.Empty(t, o.PaymentIntentID)
	require.Nil(t, o.ConfirmedAt, "only a confirmed order has confirmed_at")

	_, err = db.SetOrderOutcome(ctx, orderID, store.OrderConfirmed, uniqueID(t, "pi"))
	require.ErrorIs(t, err, store.ErrConflict)
	after, err := db.GetOrder(ctx, orderID)
	require.NoError(t, err)
	require.Equal(t, o, after)

	// Going back to pending is not a final outcome either.
	_, err = db.SetOrderOutcome(ctx, orderID, store.OrderPending, "")
	require.ErrorIs(t, err, store.ErrConflict)
}

func TestSetOrderOutcomeUnknownOrder(t *testing.T) {
	t.Parallel()
	_, err := db.SetOrderOutcome(t.Context(), uniqueID(t, "missing"), store.OrderConfirmed, uniqueID(t, "pi"))
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestReferralForFirstPaidOrder(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	referrer, referred, unreferred := seedCustomer(t), seedCustomer(t), seedCustomer(t)
	referralID := uniqueID(t, "ref")
	require.NoError(t, db.InsertReferral(ctx, referralID, referrer, referred))

	first := seedOrder(t, referred, 1000)
	second := seedOrder(t, referred, 2000)
	pending := seedOrder(t, referred, 3000)
	unreferredOrder := seedOrder(t, unreferred, 1000)
	referrerOrder := seedOrder(t, referrer, 1000)

	referralOf := func(orderID string) string {
		t.Helper()
		id, err := db.ReferralForFirstPaidOrder(ctx, orderID)
		require.NoError(t, err)
		return id
	}

	// Not paid yet: no referral.
	require.Empty(t, referralOf(first))

	for _, id := range []string{first, second, unreferredOrder, referrerOrder} {
		_, err := db.SetOrderOutcome(ctx, id, store.OrderConfirmed, uniqueID(t, "pi"))
		require.NoError(t, err)
	}

	require.Equal(t, referralID, referralOf(first))
	require.Empty(t, referralOf(second), "second paid order must not qualify the referral again")
	require.Empty(t, referralOf(pending))
	require.Empty(t, referralOf(unreferredOrder))
	require.Empty(t, referralOf(referrerOrder), "the referrer was not referred")
	require.Empty(t, referralOf(uniqueID(t, "missing")))
}

func TestReferralForFirstPaidOrderUsesPaymentOrder(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	referred := seedCustomer(t)
	referralID := uniqueID(t, "ref")
	require.NoError(t, db.InsertReferral(ctx, referralID, seedCustomer(t), referred))

	// Created first but paid second: the order paid first qualifies.
	createdFirst := seedOrder(t, referred, 1000)
	createdSecond := seedOrder(t, referred, 1000)
	_, err := db.SetOrderOutcome(ctx, createdSecond, store.OrderConfirmed, uniqueID(t, "pi"))
	require.NoError(t, err)
	// A failed payment in between does not count as paid.
	_, err = db.SetOrderOutcome(ctx, seedOrder(t, referred, 1000), store.OrderPaymentFailed, "")
	require.NoError(t, err)
	_, err = db.SetOrderOutcome(ctx, createdFirst, store.OrderConfirmed, uniqueID(t, "pi"))
	require.NoError(t, err)

	got, err := db.ReferralForFirstPaidOrder(ctx, createdSecond)
	require.NoError(t, err)
	require.Equal(t, referralID, got)
	got, err = db.ReferralForFirstPaidOrder(ctx, createdFirst)
	require.NoError(t, err)
	require.Empty(t, got)
}
