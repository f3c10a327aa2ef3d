package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// stripePeer is stripe-mock (which validates every request against Stripe's
// OpenAPI spec) behind a proxy that adds what stripe-mock lacks: it counts
// requests per idempotency key, and answers PaymentIntent retrievals with
// the amounts of our test account (stripe-mock's fixtures are random) for
// the order its id names (pi_<orderID>).
type stripePeer struct {
	mu       sync.Mutex
	requests map[string]int // "METHOD path key" → count
	srv      *httptest.Server
}

// newStripePeer starts the peer; extra reshapes each PaymentIntent it
// answers after that, e.g. to make it another customer's.
func newStripePeer(t *testing.T, extra ...func(pi map[string]any)) *stripePeer {
	p := &stripePeer{requests: map[string]int{}}
	proxy := testenv.StripeMockPaymentIntents(t, func(pi map[string]any) {
		testenv.PaymentIntentSucceeded(pi, 4200, "eur")
		for _, shape := range extra {
			shape(pi)
		}
	})
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests[r.Method+" "+r.URL.Path+" "+r.Header.Get("Idempotency-Key")]++
		p.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *stripePeer) count(method, path, key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[method+" "+path+" "+key]
}

// countAny counts requests to path whatever their idempotency key: a money
// step's key carries a number that changes when a retry needs a fresh one.
func (p *stripePeer) countAny(method, path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for k, c := range p.requests {
		if strings.HasPrefix(k, method+" "+path+" ") {
			n += c
		}
	}
	return n
}

// seedReferral: alice referred bob; bob has a pending order.
func (f *fixture) seedReferral(referralID, orderID string) {
	ctx := context.Background()
	require.NoError(f.t, f.store.UpsertCustomer(ctx, store.Customer{ID: referralID + "-alice", Email: referralID + "-alice@example.com", StripeCustomerID: "cus_" + referralID}))
	require.NoError(f.t, f.store.UpsertCustomer(ctx, store.Customer{ID: referralID + "-bob", Email: referralID + "-bob@example.com"}))
	require.NoError(f.t, f.store.InsertReferral(ctx, referralID, referralID+"-alice", referralID+"-bob"))
	require.NoError(f.t, f.store.InsertOrder(ctx, store.Order{ID: orderID, CustomerID: referralID + "-bob", AmountCents: 4200, Currency: "eur"}))
}

func chargeRefunded(eventID, orderID string, refunded int64, full bool) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","type":"charge.refunded","created":%d,
"data":{"object":{"id":"ch_%s","object":"charge","amount":4200,"amount_refunded":%d,"refunded":%t,
"currency":"eur","payment_intent":"pi_%s"}}}`, eventID, time.Now().Unix(), orderID, refunded, full, orderID))
}

func (f *fixture) rewardResult(referralID string) contract.ReferralRewardResult {
	f.t.Helper()
	id := contract.ReferralRewardID(referralID)
	// The order confirmation starts the reward as a child a moment later.
	f.waitStarted(id)
	var res contract.ReferralRewardResult
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(f.t, f.temporal.GetWorkflow(ctx, id, "").Get(ctx, &res))
	return res
}

// TestReferralRewardEndToEnd: a paid order with a referral → (shortened)
// refund window → one balance transaction at Stripe → one ledger row → one
// Knock notice to the referrer.
func TestReferralRewardEndToEnd(t *testing.T) {
	stripe := newStripePeer(t)
	f := newFixture(t, fixtureOptions{worker: true, stripeURL: stripe.srv.URL, referrals: activities.ReferralDefaults{
		RewardCents: 1000, RefundWindow: 2 * time.Second, MinimumOrderCents: 1000, ClawbackWindow: time.Second}})
	f.seedReferral("ref-e2e", "o-ref")
	ev := stripeEvent("evt_ref", "payment_intent.succeeded", "o-ref")
	status, _ := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)

	res := f.rewardResult("ref-e2e")
	assert.Equal(t, "rewarded", res.State, res.Reason)
	assert.Equal(t, 1, stripe.count(http.MethodGet, "/v1/payment_intents/pi_o-ref", ""), "the payment was checked at Stripe")
	assert.Equal(t, 1, stripe.count(http.MethodPost, "/v1/customers/cus_ref-e2e/balance_transactions", "referral-reward/ref-e2e/credit/1"))
	assert.Equal(t, 1, stripe.countAny(http.MethodPost, "/v1/customers/cus_ref-e2e/balance_transactions"))
	assert.Equal(t, 1, stripe.countAny(http.MethodGet, "/v1/customers/cus_ref-e2e/balance_transactions"), "it looked before it credited")
	var rows int
	var txn string
	require.NoError(t, f.store.Pool().QueryRow(context.Background(),
		`SELECT count(*), max(stripe_balance_transaction_id) FROM reward_ledger WHERE referral_id = 'ref-e2e'`).Scan(&rows, &txn))
	assert.Equal(t, 1, rows)
	assert.True(t, strings.HasPrefix(txn, "cbtxn_"), txn)
	assert.Equal(t, 1, f.knock.succeeded("referral-reward/ref-e2e/notify-referrer"))
	r, err := f.store.GetReferral(context.Background(), "ref-e2e")
	require.NoError(t, err)
	assert.Equal(t, store.ReferralRewarded, r.Status)
	saveHistory(t, f.temporal, contract.ReferralRewardID("ref-e2e"), "referral_reward_rewarded.json")
}

// TestReferralRefundInsideWindowVoidsEndToEnd: a charge.refunded webhook
// inside the window → no credit at Stripe, no ledger row, referral voided.
func TestReferralRefundInsideWindowVoidsEndToEnd(t *testing.T) {
	stripe := newStripePeer(t)
	f := newFixture(t, fixtureOptions{worker: true, stripeURL: stripe.srv.URL, referrals: activities.ReferralDefaults{
		RewardCents: 1000, RefundWindow: time.Hour, MinimumOrderCents: 1000, ClawbackWindow: time.Second}})
	f.seedReferral("ref-void", "o-void")
	ev := stripeEvent("evt_void_paid", "payment_intent.succeeded", "o-void")
	status, _ := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	require.Eventually(t, func() bool {
		r, err := f.store.GetReferral(context.Background(), "ref-void")
		return err == nil && r.Status == store.ReferralHolding
	}, 30*time.Second, 100*time.Millisecond, "the reward is held in its refund window")

	refund := chargeRefunded("evt_void_refund", "o-void", 4200, true)
	status, _ = f.postStripe(refund, sign(refund, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	res := f.rewardResult("ref-void")
	assert.Equal(t, "voided", res.State)
	assert.Zero(t, stripe.countAny(http.MethodPost, "/v1/customers/cus_ref-void/balance_transactions"))
	var rows int
	require.NoError(t, f.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM reward_ledger WHERE referral_id = 'ref-void'`).Scan(&rows))
	assert.Zero(t, rows)
	r, err := f.store.GetReferral(context.Background(), "ref-void")
	require.NoError(t, err)
	assert.Equal(t, store.ReferralVoided, r.Status)

	require.Eventually(t, func() bool { return f.orderStatus("o-void") == store.OrderRefunded }, 30*time.Second,
		100*time.Millisecond, "the order learns it was refunded too")
	// The notice is the refund run's step after marking the order.
	require.Eventually(t, func() bool { return f.knock.succeeded("order-refund/evt_void_refund/notify-refunded") == 1 },
		30*time.Second, 100*time.Millisecond, "the customer hears of the refund once")

	// A partial refund of an order that qualified no referral marks the
	// order, and tells the customer once per refund.
	f.seedOrder("o-plain", "cus_plain")
	_, err = f.store.SetOrderOutcome(context.Background(), "o-plain", store.OrderConfirmed, "pi_o-plain")
	require.NoError(t, err)
	other := chargeRefunded("evt_other_refund", "o-plain", 100, false)
	status, _ = f.postStripe(other, sign(other, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	require.Eventually(t, func() bool { return f.orderStatus("o-plain") == store.OrderPartiallyRefunded }, 30*time.Second,
		100*time.Millisecond)
	o, err := f.store.GetOrder(context.Background(), "o-plain")
	require.NoError(t, err)
	var refunded int64
	require.NoError(t, f.store.Pool().QueryRow(context.Background(), `SELECT refunded_cents FROM orders WHERE id = $1`, o.ID).Scan(&refunded))
	assert.EqualValues(t, 100, refunded)
	require.Eventually(t, func() bool { return f.knock.succeeded("order-refund/evt_other_refund/notify-refunded") == 1 },
		30*time.Second, 100*time.Millisecond)
	saveHistory(t, f.temporal, contract.ReferralRewardID("ref-void"), "referral_reward_voided.json")
	saveFinishedHistory(t, f.temporal, contract.OrderRefundID("evt_void_refund"), "order_refund_refunded.json")
	saveFinishedHistory(t, f.temporal, contract.OrderRefundID("evt_other_refund"), "order_refund_partially_refunded.json")
}

func TestReferralBackfillAPI(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.seedReferral("ref-api", "o-refapi")
	status, body := f.api(http.MethodPost, "/v1/referrals/nope/reward", apiToken, nil)
	assert.Equal(t, http.StatusNotFound, status, body)
	status, body = f.api(http.MethodPost, "/v1/referrals/ref-api/reward", apiToken, nil)
	assert.Equal(t, http.StatusConflict, status, "no paid order yet")
	assert.Equal(t, "no_paid_order", errorCode(body))
	_, err := f.store.SetOrderOutcome(context.Background(), "o-refapi", store.OrderConfirmed, "pi_x")
	require.NoError(t, err)
	status, body = f.api(http.MethodPost, "/v1/referrals/ref-api/reward", apiToken, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	assert.Equal(t, "referral-reward/ref-api", body["workflow_id"])
}
