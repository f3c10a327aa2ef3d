package e2e_test

// End-to-end runs of the workflow branches no other end-to-end test reaches,
// each ending in saveHistory so that workflows/replay_test.go replays every
// branch (see there for how to record a new version of them). They assert the
// branch's real outcome like any other test, so they run in every `go test`.
// Branches that would take hours of workflow time run with the workflows'
// own knobs turned down (payment timeout, refund window, debounce, cooldown,
// escalation, shadow TTL, grace, reminders, history bound).
//
// They run through a client with production's payload codec, so their
// histories hold payloads sealed as production writes them, and replay
// exercises the codec too.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/api"
	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/codec"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
	"github.com/crmflow/crmflow/workflows"
)

// sealedClient is a client of the test Temporal server with the converters
// worker.Dial sets up in production, keyed with the dev master key (the one
// the replay test opens the histories with).
func sealedClient(t *testing.T) client.Client {
	t.Helper()
	keys, err := credentials.NewKeyring(config.DevMasterKey)
	require.NoError(t, err)
	dc := codec.NewDataConverter(keys)
	c, err := client.NewClientFromExisting(testenv.TemporalClient(t), client.Options{
		Namespace:        testenv.Temporal(t).Namespace(),
		DataConverter:    dc,
		FailureConverter: codec.NewFailureConverter(dc),
		Logger:           quiet{},
	})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// newSealedFixture is a fixture with a worker whose client seals payloads.
func newSealedFixture(t *testing.T, opts fixtureOptions) *fixture {
	t.Helper()
	opts.worker, opts.temporal = true, sealedClient(t)
	return newFixture(t, opts)
}

// result waits for the workflow to exist (the dispatcher hands events off
// asynchronously), then for its latest run to end, and decodes its result.
func (f *fixture) result(workflowID string, out any) error {
	f.t.Helper()
	require.Eventually(f.t, func() bool {
		_, err := f.temporal.DescribeWorkflowExecution(context.Background(), workflowID, "")
		return err == nil
	}, 60*time.Second, 100*time.Millisecond, "%s was never started", workflowID)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	return f.temporal.GetWorkflow(ctx, workflowID, "").Get(ctx, out)
}

// parkedDeadLetter waits for the one parked dead letter and returns its id
// after checking its step.
func (f *fixture) parkedDeadLetter(step string) int64 {
	f.t.Helper()
	var dead []any
	require.Eventually(f.t, func() bool {
		_, body := f.api(http.MethodGet, "/v1/dead-letters?status=parked", operatorToken, nil)
		dead, _ = body["dead_letters"].([]any)
		return len(dead) == 1
	}, 60*time.Second, 100*time.Millisecond, "a step parked")
	d := dead[0].(map[string]any)
	require.Equal(f.t, step, d["step"])
	return int64(d["id"].(float64))
}

// decide posts an operator's decision on a dead letter.
func (f *fixture) decide(id int64, action string) {
	f.t.Helper()
	status, body := f.api(http.MethodPost, fmt.Sprintf("/v1/dead-letters/%d/%s", id, action), operatorToken,
		strings.NewReader(`{"operator":"alice"}`))
	require.Equal(f.t, http.StatusAccepted, status, body)
}

// startOrder starts an order's confirmation with its own payment timeout, as
// the start API does with a configured one.
func (f *fixture) startOrder(orderID string, timeout time.Duration) {
	f.t.Helper()
	_, err := f.temporal.ExecuteWorkflow(context.Background(), clientOptions(f, contract.OrderConfirmationID(orderID)),
		contract.OrderConfirmationType, contract.OrderConfirmationInput{OrderID: orderID, PaymentTimeout: timeout})
	require.NoError(f.t, err)
}

// TestHistoryOrderPaymentFailedThenDeadline: a declined payment is notified
// at once; with no successful retry before the deadline the order is marked
// payment_failed and the customer told.
func TestHistoryOrderPaymentFailedThenDeadline(t *testing.T) {
	f := newSealedFixture(t, fixtureOptions{})
	f.seedOrder("o-declined", "cus_declined")
	f.startOrder("o-declined", 8*time.Second)
	ev := stripeEvent("evt_declined", "payment_intent.payment_failed", "o-declined")
	status, _ := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)

	var res contract.OrderConfirmationResult
	require.NoError(t, f.result(contract.OrderConfirmationID("o-declined"), &res))
	assert.Equal(t, "payment_failed", res.State)
	assert.Equal(t, "payment_failed", f.orderStatus("o-declined"))
	id := contract.OrderConfirmationID("o-declined")
	assert.Equal(t, 1, f.knock.succeeded(id+"/notify-payment-failed/evt_declined"), "the failed attempt was notified")
	assert.Equal(t, 1, f.knock.succeeded(id+"/notify-payment_failed"), "the final outcome was notified")
	saveHistory(t, f.temporal, id, "order_confirmation_payment_failed.json")
}

// TestHistoryOrderExpired: no payment event before the deadline.
func TestHistoryOrderExpired(t *testing.T) {
	f := newSealedFixture(t, fixtureOptions{})
	f.seedOrder("o-expired", "cus_expired")
	f.startOrder("o-expired", 2*time.Second)

	var res contract.OrderConfirmationResult
	require.NoError(t, f.result(contract.OrderConfirmationID("o-expired"), &res))
	assert.Equal(t, "expired", res.State)
	assert.Equal(t, "expired", f.orderStatus("o-expired"))
	assert.Equal(t, 1, f.knock.succeeded(contract.OrderConfirmationID("o-expired")+"/notify-expired"))
	saveHistory(t, f.temporal, contract.OrderConfirmationID("o-expired"), "order_confirmation_expired.json")
}

// TestHistoryOrderFailedThenConfirmed: a declined attempt, then the
// customer pays: confirmed, with one failure notice and one confirmation.
func TestHistoryOrderFailedThenConfirmed(t *testing.T) {
	f := newSealedFixture(t, fixtureOptions{})
	f.seedOrder("o-second-try", "cus_second_try")
	id := contract.OrderConfirmationID("o-second-try")
	failed := stripeEvent("evt_try_1", "payment_intent.payment_failed", "o-second-try")
	status, _ := f.postStripe(failed, sign(failed, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	require.Eventually(t, func() bool { return f.knock.succeeded(id+"/notify-payment-failed/evt_try_1") == 1 },
		60*time.Second, 100*time.Millisecond, "the failed attempt was notified")
	paid := stripeEvent("evt_try_2", "payment_intent.succeeded", "o-second-try")
	status, _ = f.postStripe(paid, sign(paid, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)

	var res contract.OrderConfirmationResult
	require.NoError(t, f.result(id, &res))
	assert.Equal(t, "confirmed", res.State)
	assert.Equal(t, "confirmed", f.orderStatus("o-second-try"))
	assert.Equal(t, 1, f.knock.succeeded(id+"/notify-confirmation"))
	saveHistory(t, f.temporal, id, "order_confirmation_failed_then_confirmed.json")
}

// TestHistoryOrderAmountMismatch: Stripe (stripe-mock behind the test
// proxy) says 42.00 EUR was received for an order of 50.00 EUR: the order is
// marked mismatch and the operators told, the customer not.
func TestHistoryOrderAmountMismatch(t *testing.T) {
	stripe := newStripePeer(t)
	f := newSealedFixture(t, fixtureOptions{stripeURL: stripe.srv.URL})
	ctx := context.Background()
	require.NoError(t, f.store.UpsertCustomer(ctx, store.Customer{ID: "cus_short", Email: "short@example.com"}))
	require.NoError(t, f.store.InsertOrder(ctx, store.Order{ID: "o-short", CustomerID: "cus_short", AmountCents: 5000, Currency: "eur"}))
	ev := stripeEvent("evt_short", "payment_intent.succeeded", "o-short")
	status, _ := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)

	id := contract.OrderConfirmationID("o-short")
	var res contract.OrderConfirmationResult
	require.NoError(t, f.result(id, &res))
	assert.Equal(t, "mismatch", res.State)
	assert.Equal(t, "mismatch", f.orderStatus("o-short"))
	assert.Equal(t, 1, stripe.count(http.MethodGet, "/v1/payment_intents/pi_o-short", ""), "the amount was checked at Stripe")
	assert.Equal(t, 1, f.knock.succeeded(id+"/notify-mismatch"))
	for _, tr := range f.knock.all() {
		assert.Equal(t, workflows.KnockOrderMismatch, tr.Workflow, "only the operators hear of a mismatch")
	}
	saveHistory(t, f.temporal, id, "order_confirmation_mismatch.json")
}

// TestHistoryOrderParkedSkipped: Knock refuses the key, the notification
// parks, an operator skips it: the order stays confirmed, nobody notified.
func TestHistoryOrderParkedSkipped(t *testing.T) {
	f := newSealedFixture(t, fixtureOptions{})
	f.knock.failFirst = 1
	f.seedOrder("o-skip", "cus_skip")
	ev := stripeEvent("evt_skip", "payment_intent.succeeded", "o-skip")
	status, _ := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	f.decide(f.parkedDeadLetter("notify-confirmation"), "skip")

	id := contract.OrderConfirmationID("o-skip")
	var res contract.OrderConfirmationResult
	require.NoError(t, f.result(id, &res))
	assert.Equal(t, "confirmed", res.State)
	assert.Equal(t, "confirmed", f.orderStatus("o-skip"))
	assert.Zero(t, f.knock.succeeded(id+"/notify-confirmation"), "the skipped notification was not sent")
	saveHistory(t, f.temporal, id, "order_confirmation_parked_skipped.json")
}

// TestHistoryOrderParkedAborted: the parked notification is aborted, which
// fails the run with OperatorAborted.
func TestHistoryOrderParkedAborted(t *testing.T) {
	f := newSealedFixture(t, fixtureOptions{})
	f.knock.failFirst = 1
	f.seedOrder("o-abort", "cus_abort")
	ev := stripeEvent("evt_abort", "payment_intent.succeeded", "o-abort")
	status, _ := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	dl := f.parkedDeadLetter("notify-confirmation")
	f.decide(dl, "abort")

	id := contract.OrderConfirmationID("o-abort")
	err := f.result(id, nil)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "the run failed: %v", err)
	assert.Equal(t, contract.ErrorTypeOperatorAborted, appErr.Type())
	got, err := f.store.GetDeadLetter(context.Background(), dl)
	require.NoError(t, err)
	assert.Equal(t, store.DeadLetterAborted, got.Status)
	saveHistory(t, f.temporal, id, "order_confirmation_parked_aborted.json")
}

// TestHistoryReferralIneligible: a referral between two accounts of the same
// email is a self-referral. The paid order starts the reward as a child,
// which ends ineligible without crediting anyone.
func TestHistoryReferralIneligible(t *testing.T) {
	stripe := newStripePeer(t)
	f := newSealedFixture(t, fixtureOptions{stripeURL: stripe.srv.URL})
	ctx := context.Background()
	require.NoError(t, f.store.UpsertCustomer(ctx, store.Customer{ID: "cus_self_a", Email: "Self@example.com", StripeCustomerID: "cus_self_a"}))
	require.NoError(t, f.store.UpsertCustomer(ctx, store.Customer{ID: "cus_self_b", Email: "self@example.com"}))
	require.NoError(t, f.store.InsertReferral(ctx, "ref-self", "cus_self_a", "cus_self_b"))
	require.NoError(t, f.store.InsertOrder(ctx, store.Order{ID: "o-self", CustomerID: "cus_self_b", AmountCents: 4200, Currency: "eur"}))
	ev := stripeEvent("evt_self", "payment_intent.succeeded", "o-self")
	status, _ := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)

	var order contract.OrderConfirmationResult
	require.NoError(t, f.result(contract.OrderConfirmationID("o-self"), &order))
	assert.Equal(t, "confirmed", order.State)
	res := f.rewardResult("ref-self")
	assert.Equal(t, "ineligible", res.State)
	assert.Equal(t, "self-referral", res.Reason)
	r, err := f.store.GetReferral(ctx, "ref-self")
	require.NoError(t, err)
	assert.Equal(t, store.ReferralIneligible, r.Status)
	assert.Zero(t, stripe.count(http.MethodPost, "/v1/customers/cus_self_a/balance_transactions", "referral-reward/ref-self/credit"))
	saveHistory(t, f.temporal, contract.OrderConfirmationID("o-self"), "order_confirmation_referral_started.json")
	saveHistory(t, f.temporal, contract.ReferralRewardID("ref-self"), "referral_reward_ineligible.json")
}

// TestHistoryReferralClawedBack: a full refund after the reward was paid
// parks the run with the clawback question; the operator's retry debits
// the referrer at Stripe and reverses the ledger row.
func TestHistoryReferralClawedBack(t *testing.T) {
	stripe := newStripePeer(t)
	f := newSealedFixture(t, fixtureOptions{stripeURL: stripe.srv.URL, referrals: activities.ReferralDefaults{
		RewardCents: 1000, RefundWindow: time.Second, MinimumOrderCents: 1000, ClawbackWindow: time.Hour}})
	f.seedReferral("ref-claw", "o-claw")
	ctx := context.Background()
	ev := stripeEvent("evt_claw_paid", "payment_intent.succeeded", "o-claw")
	status, _ := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	require.Eventually(t, func() bool { return f.knock.succeeded("referral-reward/ref-claw/notify-referrer") == 1 },
		60*time.Second, 100*time.Millisecond, "the reward was paid and the referrer told")

	refund := chargeRefunded("evt_claw_refund", "o-claw", 4200, true)
	status, _ = f.postStripe(refund, sign(refund, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	f.decide(f.parkedDeadLetter("clawback-decision"), "retry")

	res := f.rewardResult("ref-claw")
	assert.Equal(t, "clawed_back", res.State)
	assert.Equal(t, 1, stripe.count(http.MethodPost, "/v1/customers/cus_ref-claw/balance_transactions", "referral-reward/ref-claw/credit"))
	assert.Equal(t, 1, stripe.count(http.MethodPost, "/v1/customers/cus_ref-claw/balance_transactions", "referral-reward/ref-claw/clawback"))
	r, err := f.store.GetReferral(ctx, "ref-claw")
	require.NoError(t, err)
	assert.Equal(t, store.ReferralVoided, r.Status, "the reward was reversed")
	var ledger string
	require.NoError(t, f.store.Pool().QueryRow(ctx, `SELECT status FROM reward_ledger WHERE referral_id = 'ref-claw'`).Scan(&ledger))
	assert.Equal(t, "reversed", ledger)
	saveHistory(t, f.temporal, contract.ReferralRewardID("ref-claw"), "referral_reward_clawed_back.json")
}

// postStock posts a stock level through the start API (inbox, dispatcher,
// SignalWithStart), as the CRM does.
func (f *fixture) postStock(sku string, level int) {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.url+"/v1/inventory/"+sku+"/stock-level", strings.NewReader(fmt.Sprintf(`{"level":%d}`, level)))
	require.NoError(f.t, err)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	req.Header.Set("Content-Type", "application/json")
	status, body := f.do(req)
	require.Equal(f.t, http.StatusAccepted, status, body)
}

// TestHistoryLowStockEscalatedRestockedCooldown walks one SKU through every
// alert state: low → alert (after the debounce) → escalation → restocked →
// low again inside the cooldown, which holds the second alert until the
// cooldown ends → escalation again.
func TestHistoryLowStockEscalatedRestockedCooldown(t *testing.T) {
	f := newSealedFixture(t, fixtureOptions{stock: activities.StockDefaults{
		Debounce: 300 * time.Millisecond, Cooldown: 4 * time.Second, EscalateAfter: time.Second,
		Audience: []string{"ops-1"}, EscalationAudience: []string{"ops-lead"}}})
	require.NoError(t, f.store.UpsertProduct(context.Background(), store.Product{SKU: "sku-cycle", Name: "Mug", PriceCents: 900,
		StockLevel: 50, Settings: store.StockSettings{Threshold: 10, Hysteresis: 5}}))
	count := func(knockWorkflow string, n int, what string) {
		t.Helper()
		require.Eventually(t, func() bool { return f.knock.countWorkflow(knockWorkflow) == n }, 60*time.Second, 100*time.Millisecond, what)
	}

	f.postStock("sku-cycle", 3)
	count(workflows.KnockLowStock, 1, "alerted after the debounce")
	count(workflows.KnockLowStockEscalation, 1, "escalated while still low")
	f.postStock("sku-cycle", 20)
	count(workflows.KnockRestocked, 1, "restocked above threshold + hysteresis")
	alertedAt := time.Now()
	f.postStock("sku-cycle", 2)
	count(workflows.KnockLowStock, 2, "alerted again once the cooldown ended")
	assert.GreaterOrEqual(t, time.Since(alertedAt), 2*time.Second, "the second alert waited for the cooldown")
	count(workflows.KnockLowStockEscalation, 2, "escalated again")
	assert.Equal(t, 2, f.knock.countWorkflow(workflows.KnockLowStock))

	var st map[string]any
	require.Eventually(t, func() bool {
		_, body := f.api(http.MethodGet, "/v1/workflows/"+contract.LowStockID("sku-cycle"), apiToken, nil)
		st, _ = body["status"].(map[string]any)
		return st["step"] == "await-stock-level" && st["state"] == contract.StockEscalated
	}, 30*time.Second, 100*time.Millisecond, "the entity waits, escalated")
	saveHistory(t, f.temporal, contract.LowStockID("sku-cycle"), "low_stock_alert_escalated_restocked_cooldown.json")
}

// TestHistoryLowStockContinuedAsNew: a low-stock entity with a small history
// bound continues as new, carrying its state; the new run goes on from it.
func TestHistoryLowStockContinuedAsNew(t *testing.T) {
	f := newSealedFixture(t, fixtureOptions{stock: activities.StockDefaults{
		Debounce: 200 * time.Millisecond, Cooldown: time.Hour, EscalateAfter: time.Hour, Audience: []string{"ops-1"}}})
	ctx := context.Background()
	require.NoError(t, f.store.UpsertProduct(ctx, store.Product{SKU: "sku-long", Name: "Mug", PriceCents: 900,
		StockLevel: 50, Settings: store.StockSettings{Threshold: 10, Hysteresis: 5}}))
	id := contract.LowStockID("sku-long")
	signal := func(i, level int) client.WorkflowRun {
		run, err := f.temporal.SignalWithStartWorkflow(ctx, id, contract.StockLevelSignal,
			contract.StockLevel{Level: level, EventID: fmt.Sprintf("evt-long-%d", i)},
			clientOptions(f, id), contract.LowStockAlertType, contract.LowStockInput{SKU: "sku-long", MaxHistoryEvents: 40})
		require.NoError(t, err)
		return run
	}
	first := signal(0, 4)
	require.Eventually(t, func() bool { return f.knock.countWorkflow(workflows.KnockLowStock) == 1 }, 60*time.Second, 100*time.Millisecond)
	var latest string
	for i := 1; ; i++ {
		require.Less(t, i, 60, "the run never continued as new")
		signal(i, 4+i%3)
		time.Sleep(50 * time.Millisecond)
		desc, err := f.temporal.DescribeWorkflowExecution(ctx, id, "")
		require.NoError(t, err)
		if latest = desc.GetWorkflowExecutionInfo().GetExecution().GetRunId(); latest != first.GetRunID() {
			break
		}
	}
	// The new run carries the alert: a recovery is told as restocked.
	signal(100, 30)
	require.Eventually(t, func() bool { return f.knock.countWorkflow(workflows.KnockRestocked) == 1 }, 60*time.Second, 100*time.Millisecond)
	assert.Equal(t, 1, f.knock.countWorkflow(workflows.KnockLowStock), "one alert across the runs")
	saveRunHistory(t, f.temporal, id, first.GetRunID(), "low_stock_alert_continued_as_new.json")
	saveRunHistory(t, f.temporal, id, latest, "low_stock_alert_continued.json")
}

// TestHistoryInventoryScan: a scan in batches of two signals every SKU whose
// level changed and marks it; a second scan finds nothing.
func TestHistoryInventoryScan(t *testing.T) {
	f := newSealedFixture(t, fixtureOptions{stock: activities.StockDefaults{
		Debounce: time.Hour, Cooldown: time.Hour, EscalateAfter: time.Hour, Audience: []string{"ops-1"}}})
	ctx := context.Background()
	for i, level := range []int{40, 3, 25} {
		require.NoError(t, f.store.UpsertProduct(ctx, store.Product{SKU: fmt.Sprintf("sku-scan-%d", i), Name: "Mug", PriceCents: 900,
			StockLevel: level, Settings: store.StockSettings{Threshold: 10, Hysteresis: 5}}))
	}
	scan := func(id string) contract.InventoryScanResult {
		run, err := f.temporal.ExecuteWorkflow(ctx, clientOptions(f, id), contract.InventoryScanType, contract.InventoryScanInput{BatchSize: 2})
		require.NoError(t, err)
		var res contract.InventoryScanResult
		require.NoError(t, run.Get(ctx, &res))
		return res
	}
	res := scan("inventory-scan-test-1")
	assert.Equal(t, 3, res.Signalled)
	assert.Empty(t, res.Rejected)
	for i := range 3 {
		_, err := f.temporal.DescribeWorkflowExecution(ctx, contract.LowStockID(fmt.Sprintf("sku-scan-%d", i)), "")
		assert.NoError(t, err, "the scan started the SKU's entity")
	}
	assert.Equal(t, 0, scan("inventory-scan-test-2").Signalled, "nothing changed since")
	saveHistory(t, f.temporal, "inventory-scan-test-1", "inventory_scan_signalled.json")
}

// aliasState waits for the alias row to reach state.
func (f *fixture) aliasState(aliasID, state string) {
	f.t.Helper()
	require.Eventually(f.t, func() bool {
		a, err := f.store.GetAlias(context.Background(), aliasID)
		return err == nil && a.State == state
	}, 60*time.Second, 100*time.Millisecond, "alias %s never became %s", aliasID, state)
}

// TestHistoryAliasDisabledEnabledDeleted: disable, enable and delete through
// the API, each reaching the SimpleLogin peer.
func TestHistoryAliasDisabledEnabledDeleted(t *testing.T) {
	sl := newSimpleLoginPeer(t)
	f := newSealedFixture(t, fixtureOptions{simpleLoginURL: sl.srv.URL})
	require.NoError(t, f.store.UpsertCustomer(context.Background(), store.Customer{ID: "cus_toggle", Email: "toggle@example.com"}))
	post := func(path string) {
		status, body := f.api(http.MethodPost, path, apiToken, strings.NewReader(`{"alias_id":"al-toggle","customer_id":"cus_toggle"}`))
		require.Equal(t, http.StatusAccepted, status, body)
	}
	post("/v1/aliases")
	f.aliasState("al-toggle", store.AliasActive)
	post("/v1/aliases/al-toggle/disable")
	f.aliasState("al-toggle", store.AliasDisabled)
	post("/v1/aliases/al-toggle/enable")
	f.aliasState("al-toggle", store.AliasActive)
	post("/v1/aliases/al-toggle/delete")

	var res contract.AliasLifecycleResult
	require.NoError(t, f.result(contract.AliasID("al-toggle"), &res))
	assert.Equal(t, contract.AliasDeleted, res.State)
	assert.Len(t, sl.deletions(), 1)
	saveHistory(t, f.temporal, contract.AliasID("al-toggle"), "alias_lifecycle_disabled_enabled_deleted.json")
}

// TestHistoryAliasShadowExpired: a shadow alias nobody claims within its TTL
// is deleted at SimpleLogin and ends expired.
func TestHistoryAliasShadowExpired(t *testing.T) {
	sl := newSimpleLoginPeer(t)
	f := newSealedFixture(t, fixtureOptions{simpleLoginURL: sl.srv.URL})
	_, err := f.starter.CreateAlias(context.Background(), contract.AliasLifecycleInput{
		AliasID: "al-unclaimed", Email: "later@example.com", ShadowTTL: 3 * time.Second})
	require.NoError(t, err)

	var res contract.AliasLifecycleResult
	require.NoError(t, f.result(contract.AliasID("al-unclaimed"), &res))
	assert.Equal(t, contract.AliasExpired, res.State)
	a, err := f.store.GetAlias(context.Background(), "al-unclaimed")
	require.NoError(t, err)
	assert.Equal(t, store.AliasExpired, a.State)
	assert.Len(t, sl.deletions(), 1, "the expired alias was deleted at SimpleLogin")
	saveHistory(t, f.temporal, contract.AliasID("al-unclaimed"), "alias_lifecycle_shadow_expired.json")
}

// TestHistoryAliasContinuedAsNew: an alias with a small history bound
// continues as new while it is toggled, carrying its state; the new run
// still deletes the alias it never created.
func TestHistoryAliasContinuedAsNew(t *testing.T) {
	sl := newSimpleLoginPeer(t)
	f := newSealedFixture(t, fixtureOptions{simpleLoginURL: sl.srv.URL})
	ctx := context.Background()
	require.NoError(t, f.store.UpsertCustomer(ctx, store.Customer{ID: "cus_long", Email: "long@example.com"}))
	first, err := f.starter.CreateAlias(ctx, contract.AliasLifecycleInput{AliasID: "al-long", CustomerID: "cus_long", MaxHistoryEvents: 40})
	require.NoError(t, err)
	f.aliasState("al-long", store.AliasActive)
	id := contract.AliasID("al-long")
	var latest string
	for i := 0; ; i++ {
		require.Less(t, i, 20, "the run never continued as new")
		signal, state := contract.AliasDisableSignal, store.AliasDisabled
		if i%2 == 1 {
			signal, state = contract.AliasEnableSignal, store.AliasActive
		}
		require.NoError(t, f.starter.SignalAlias(ctx, "al-long", signal, contract.AliasCommand{EventID: fmt.Sprintf("cmd-long-%d", i)}))
		f.aliasState("al-long", state)
		desc, err := f.temporal.DescribeWorkflowExecution(ctx, id, "")
		require.NoError(t, err)
		if latest = desc.GetWorkflowExecutionInfo().GetExecution().GetRunId(); latest != first.RunID {
			break
		}
	}
	require.NoError(t, f.starter.SignalAlias(ctx, "al-long", contract.AliasDeleteSignal, contract.AliasCommand{EventID: "cmd-long-delete"}))
	var res contract.AliasLifecycleResult
	require.NoError(t, f.result(id, &res))
	assert.Equal(t, contract.AliasDeleted, res.State)
	assert.Len(t, sl.deletions(), 1)
	saveRunHistory(t, f.temporal, id, first.RunID, "alias_lifecycle_continued_as_new.json")
	saveRunHistory(t, f.temporal, id, latest, "alias_lifecycle_continued_deleted.json")
}

// TestHistoryKeyRotationCrmflowToken: the start-API token rotation runs to
// its end: new token stored, fetched by an operator, acknowledged, active,
// grace, old token revoked, operators told.
func TestHistoryKeyRotationCrmflowToken(t *testing.T) {
	f := newSealedFixture(t, fixtureOptions{})
	ctx := context.Background()
	id := contract.KeyRotationID(contract.KeyRotationCrmflow)
	_, err := f.temporal.ExecuteWorkflow(ctx, clientOptions(f, id), contract.KeyRotationType,
		contract.KeyRotationInput{Provider: contract.KeyRotationCrmflow, Grace: time.Second, RequestedBy: "test"})
	require.NoError(t, err)
	rotations := &api.Rotations{Starter: f.starter, Keys: f.creds}
	var tok *contract.KeyRotationToken
	require.Eventually(t, func() bool {
		tok, err = rotations.FetchToken(ctx, "alice")
		return err == nil
	}, 60*time.Second, 100*time.Millisecond, "the token is handed out")
	require.NoError(t, rotations.Acknowledge(ctx, "alice"))

	var res contract.KeyRotationResult
	require.NoError(t, f.result(id, &res))
	assert.Equal(t, "rotated", res.State)
	assert.Equal(t, tok.Version, res.NewVersion)
	active, err := f.creds.Active(ctx, "crmflow", "api_token")
	require.NoError(t, err)
	assert.Equal(t, tok.Token, active.Secret.Reveal())
	assert.Equal(t, 1, f.knock.countWorkflow(workflows.KnockKeyRotated))
	saveHistory(t, f.temporal, id, "key_rotation_crmflow_token.json")
}

// TestHistoryKeyRotationReminded: operators who take their time are
// reminded; the rotation still completes on their key and confirmation.
func TestHistoryKeyRotationReminded(t *testing.T) {
	f := newSealedFixture(t, fixtureOptions{})
	ctx := context.Background()
	// A Svix secret (whsec_ and base64) the fixture's verifier accepts.
	const newSecret = "whsec_goodc2VjcmV0MDEyMzQ1Njc4OQ=="
	id := contract.KeyRotationID("clerk_webhook")
	_, err := f.temporal.ExecuteWorkflow(ctx, clientOptions(f, id), contract.KeyRotationType,
		contract.KeyRotationInput{Provider: "clerk_webhook", ReminderEvery: time.Second, RequestedBy: "test"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return f.knock.countWorkflow(workflows.KnockKeyRotationReminder) >= 1 },
		60*time.Second, 100*time.Millisecond, "a reminder went out")
	rotations := &api.Rotations{Starter: f.starter, Keys: f.creds}
	res, err := rotations.SubmitKey(ctx, "alice", "clerk_webhook", newSecret)
	require.NoError(t, err)
	require.True(t, res.Valid, res.Reason)
	// Svix signs with the old and the new secret while it rolls one: that
	// delivery proves the new secret.
	f.waitStatus(id, "awaiting-proof")
	payload := clerkUserEvent("user.updated", "user_history", "h@example.com")
	h := signClerk(t, "msg_proof", payload, time.Now(), clerkSecret)
	both := signClerk(t, "msg_proof", payload, time.Now(), newSecret)
	h.Set("svix-signature", h.Get("svix-signature")+" "+both.Get("svix-signature"))
	status, body := f.postClerk(payload, h)
	require.Equal(t, http.StatusOK, status, body)
	require.Eventually(t, func() bool {
		return f.starter.ConfirmOldKeyRevoked(ctx, "clerk_webhook", "alice") == nil
	}, 60*time.Second, 100*time.Millisecond, "the revocation is accepted once the key is active")

	var out contract.KeyRotationResult
	require.NoError(t, f.result(id, &out))
	assert.Equal(t, "rotated", out.State)
	active, err := f.creds.Active(ctx, "clerk_webhook", "api_key")
	require.NoError(t, err)
	assert.Equal(t, newSecret, active.Secret.Reveal())
	saveHistory(t, f.temporal, id, "key_rotation_reminded.json")
}

// TestHistoryOrderPartiallyRefunded: a confirmed order without a referral
// is refunded in part: its own refund run marks it partially refunded and
// tells the customer once.
func TestHistoryOrderPartiallyRefunded(t *testing.T) {
	f := newSealedFixture(t, fixtureOptions{})
	f.seedOrder("o-part-refund", "cus_part_refund")
	paid := stripeEvent("evt_part_paid", "payment_intent.succeeded", "o-part-refund")
	status, _ := f.postStripe(paid, sign(paid, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	var confirmed contract.OrderConfirmationResult
	require.NoError(t, f.result(contract.OrderConfirmationID("o-part-refund"), &confirmed))
	require.Equal(t, "confirmed", confirmed.State)

	refund := chargeRefunded("evt_part_refund", "o-part-refund", 1200, false)
	status, _ = f.postStripe(refund, sign(refund, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	id := contract.OrderRefundID("evt_part_refund")
	var res contract.OrderRefundResult
	require.NoError(t, f.result(id, &res))
	assert.Equal(t, store.OrderPartiallyRefunded, res.Status)
	assert.EqualValues(t, 1200, res.RefundedCents)
	assert.Equal(t, store.OrderPartiallyRefunded, f.orderStatus("o-part-refund"))
	assert.Equal(t, 1, f.knock.succeeded(id+"/notify-refunded"))
	saveHistory(t, f.temporal, id, "order_refund_partial.json")
}
