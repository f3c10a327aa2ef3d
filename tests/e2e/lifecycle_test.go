package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
	"github.com/crmflow/crmflow/starter"
)

// Event lifecycle scenarios (RELIABILITY.md): every accepted event ends
// somewhere an operator can see — delivered, unroutable, late or held as a
// dead letter — and never in silence.

// inboxRow is where one inbox event stands.
type inboxRow struct {
	Status, Note string
	Attempts     int
}

func (f *fixture) inboxEvent(eventID string) inboxRow {
	f.t.Helper()
	var r inboxRow
	err := f.store.Pool().QueryRow(context.Background(),
		`SELECT status, coalesce(last_error, ''), attempts FROM webhook_inbox WHERE event_id = $1`, eventID).
		Scan(&r.Status, &r.Note, &r.Attempts)
	require.NoError(f.t, err, "inbox row of %s", eventID)
	return r
}

// waitInboxEvent waits for the event's row to reach status.
func (f *fixture) waitInboxEvent(eventID, status string) inboxRow {
	f.t.Helper()
	var r inboxRow
	require.Eventually(f.t, func() bool { r = f.inboxEvent(eventID); return r.Status == status },
		30*time.Second, 50*time.Millisecond, "%s reaches %s", eventID, status)
	return r
}

// TestRefundBeforeTheOrderIsDecidedWaitsForIt: with Temporal down, a
// payment and then its refund arrive; the refund cannot know its order yet
// (the confirmation records the PaymentIntent when it marks the order), so
// it waits — never ignored. Once Temporal is back the order is confirmed,
// then the refund marks it refunded and voids the referral reward it
// qualified.
func TestRefundBeforeTheOrderIsDecidedWaitsForIt(t *testing.T) {
	opts := testenv.TemporalOptions{Port: testenv.FreePort(t), DatabaseFile: filepath.Join(t.TempDir(), "t.db")}
	srv := testenv.StartTemporal(t, opts)
	c, err := client.NewLazyClient(client.Options{HostPort: srv.FrontendAddr(), Logger: quiet{}})
	require.NoError(t, err)
	defer c.Close()
	stripe := newStripePeer(t)
	f := newFixture(t, fixtureOptions{temporal: c, worker: true, stripeURL: stripe.srv.URL,
		referrals: activities.ReferralDefaults{RewardCents: 1000, RefundWindow: time.Hour, MinimumOrderCents: 1000,
			ClawbackWindow: time.Second}})
	f.seedReferral("ref-early", "o-early")
	srv.Stop()

	paid := stripeEvent("evt_early_paid", "payment_intent.succeeded", "o-early")
	status, _ := f.postStripe(paid, sign(paid, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	refund := chargeRefunded("evt_early_refund", "o-early", 4200, true)
	status, _ = f.postStripe(refund, sign(refund, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	require.Eventually(t, func() bool {
		r := f.inboxEvent("evt_early_refund")
		return r.Status == "pending" && r.Attempts >= 2
	}, 30*time.Second, 50*time.Millisecond, "the refund is retried while its order is undecided")
	assert.Contains(t, f.inboxEvent("evt_early_refund").Note, "no order records payment intent pi_o-early yet")

	testenv.StartTemporal(t, opts)
	res := f.rewardResult("ref-early")
	assert.Equal(t, "voided", res.State, res.Reason)
	require.Eventually(t, func() bool { return f.orderStatus("o-early") == store.OrderRefunded }, time.Minute,
		100*time.Millisecond, "the order is confirmed, then refunded")
	assert.Equal(t, "delivered", f.waitInboxEvent("evt_early_refund", "delivered").Status)
	assert.Equal(t, "delivered", f.inboxEvent("evt_early_paid").Status)
	require.Eventually(t, func() bool { return f.knock.succeeded("order-refund/evt_early_refund/notify-refunded") == 1 },
		30*time.Second, 100*time.Millisecond, "the customer hears of the refund once")
	assert.Zero(t, stripe.count(http.MethodPost, "/v1/customers/cus_ref-early/balance_transactions", "referral-reward/ref-early/credit"),
		"the referrer is not paid for a refunded order")
}

// TestRefundOfAPaymentNoOrderRecordsEndsUnroutable: a refund whose
// PaymentIntent no order was ever paid with waits RefundWait, then ends
// unroutable with the reason; nothing starts.
func TestRefundOfAPaymentNoOrderRecordsEndsUnroutable(t *testing.T) {
	f := newFixture(t, fixtureOptions{refundWait: time.Second})
	refund := chargeRefunded("evt_refund_unknown", "o-nobody", 100, false)
	status, _ := f.postStripe(refund, sign(refund, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	r := f.waitInboxEvent("evt_refund_unknown", "unroutable")
	assert.Contains(t, r.Note, "no order was paid with payment intent pi_o-nobody")
	assert.Zero(t, f.workflowsOnQueue(), "nothing started")
}

// TestPaymentForAMissingOrderEndsUnroutable: a signed payment whose
// metadata.order_id names no order ends unroutable at once: no run is
// started, so nothing parks for ever.
func TestPaymentForAMissingOrderEndsUnroutable(t *testing.T) {
	f := newFixture(t, fixtureOptions{worker: true})
	ev := stripeEvent("evt_no_order", "payment_intent.succeeded", "o-missing")
	status, _ := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	r := f.waitInboxEvent("evt_no_order", "unroutable")
	assert.Contains(t, r.Note, "order o-missing does not exist")
	_, err := f.temporal.DescribeWorkflowExecution(context.Background(), contract.OrderConfirmationID("o-missing"), "")
	assert.Error(t, err, "no run was started")
	parked, err := f.store.ListDeadLetters(context.Background(), store.DeadLetterParked, 10)
	require.NoError(t, err)
	assert.Empty(t, parked)
}

// TestPaymentAfterExpiryIsHeldForOperators: the order's confirmation ends
// it expired; then the payment succeeds. The event ends late, the run it
// starts records the payment, alerts operators and parks one
// paid-after-close dead letter, whose retry reopens and confirms the order.
// A redelivery changes nothing.
func TestPaymentAfterExpiryIsHeldForOperators(t *testing.T) {
	f := newSealedFixture(t, fixtureOptions{paymentTimeout: 500 * time.Millisecond})
	f.seedOrder("o-paid-late", "cus_paid_late")
	// Under load the SDK may retry the start after the short run has
	// already ended, which it reports as ErrAlreadyDone with that run.
	run, err := f.starter.StartOrderConfirmation(context.Background(), "o-paid-late")
	if !errors.Is(err, starter.ErrAlreadyDone) {
		require.NoError(t, err)
	}
	var res contract.OrderConfirmationResult
	require.NoError(t, f.temporal.GetWorkflow(context.Background(), run.WorkflowID, run.RunID).Get(context.Background(), &res))
	require.Equal(t, "expired", res.State)

	late := stripeEvent("evt_paid_late", "payment_intent.succeeded", "o-paid-late")
	status, _ := f.postStripe(late, sign(late, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	r := f.waitInboxEvent("evt_paid_late", "late")
	assert.Contains(t, r.Note, "order is expired; paid after close")

	parked := f.waitParked(func() bool { return false })
	require.Len(t, parked, 1)
	assert.Equal(t, "paid-after-close", parked[0].Step)
	assert.Equal(t, "PaidAfterClose", parked[0].ErrorType)
	assert.Equal(t, 1, f.knock.succeeded("order-confirmation/o-paid-late/notify-paid-after-close"), "operators are alerted")
	o, err := f.store.GetOrder(context.Background(), "o-paid-late")
	require.NoError(t, err)
	assert.Equal(t, store.OrderExpired, o.Status, "nothing changes before an operator decides")
	assert.Equal(t, "pi_o-paid-late", o.PaymentIntentID, "the payment is recorded, so its refund finds the order")

	// The same event again is a duplicate at the edge; nothing new parks.
	status, body := f.postStripe(late, sign(late, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, true, body["duplicate"])

	status, body = f.api(http.MethodPost, fmt.Sprintf("/v1/dead-letters/%d/retry", parked[0].ID), operatorToken, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	require.Eventually(t, func() bool { return f.orderStatus("o-paid-late") == store.OrderConfirmed }, 30*time.Second,
		100*time.Millisecond, "the retry reopens and confirms the order")
	require.Eventually(t, func() bool { return f.knock.succeeded("order-confirmation/o-paid-late/notify-confirmation") == 1 },
		30*time.Second, 100*time.Millisecond, "the customer is told")
	all, err := f.store.ListDeadLetters(context.Background(), "", 10)
	require.NoError(t, err)
	require.Len(t, all, 1, "one paid-after-close dead letter, ever")
	require.Eventually(t, func() bool {
		d, err := f.store.GetDeadLetter(context.Background(), parked[0].ID)
		return err == nil && d.Status == store.DeadLetterResolved
	}, 30*time.Second, 100*time.Millisecond)
	var res2 contract.OrderConfirmationResult
	require.NoError(t, f.result(contract.OrderConfirmationID("o-paid-late"), &res2))
	assert.Equal(t, "confirmed", res2.State)
	saveHistory(t, f.temporal, contract.OrderConfirmationID("o-paid-late"), "order_confirmation_paid_after_close.json")
}
