package activities_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// referralWorld seeds a referrer, a referred customer with one confirmed and
// one pending order, and the referral between them.
func referralWorld(t *testing.T, referrerEmail string) (*store.Store, *activities.ReferralActivities) {
	t.Helper()
	ctx := context.Background()
	st := testenv.Store(t)
	require.NoError(t, st.UpsertCustomer(ctx, store.Customer{ID: "alice", Email: referrerEmail, StripeCustomerID: "cus_alice"}))
	require.NoError(t, st.UpsertCustomer(ctx, store.Customer{ID: "bob", Email: "bob@example.com"}))
	require.NoError(t, st.InsertReferral(ctx, "ref-1", "alice", "bob"))
	for _, id := range []string{"o1", "o2"} {
		require.NoError(t, st.InsertOrder(ctx, store.Order{ID: id, CustomerID: "bob", AmountCents: 4200, Currency: "eur"}))
	}
	_, err := st.SetOrderOutcome(ctx, "o1", store.OrderConfirmed, "pi_1")
	require.NoError(t, err)
	return st, &activities.ReferralActivities{Store: st, Defaults: activities.ReferralDefaults{
		RewardCents: 1000, RefundWindow: time.Hour, MinimumOrderCents: 1000, ClawbackWindow: time.Hour,
	}}
}

func checkEligibility(t *testing.T, a *activities.ReferralActivities, orderID string) (*activities.Eligibility, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	val, err := env.ExecuteActivity(a.CheckEligibility, activities.CheckEligibilityInput{ReferralID: "ref-1", OrderID: orderID})
	if err != nil {
		return nil, err
	}
	var e activities.Eligibility
	require.NoError(t, val.Get(&e))
	return &e, nil
}

func TestCheckEligibilityEligibleMarksHolding(t *testing.T) {
	st, a := referralWorld(t, "alice@example.com")
	e, err := checkEligibility(t, a, "o1")
	require.NoError(t, err)
	assert.True(t, e.Eligible, e.Reason)
	assert.Equal(t, "cus_alice", e.ReferrerStripeCustomerID)
	assert.Equal(t, int64(4200), e.OrderAmountCents)
	assert.Equal(t, "eur", e.Currency)
	assert.Equal(t, int64(1000), e.RewardCents)
	r, err := st.GetReferral(context.Background(), "ref-1")
	require.NoError(t, err)
	assert.Equal(t, store.ReferralHolding, r.Status)
	assert.Equal(t, "o1", r.OrderID)
	// The money steps look back to it (workflows/referral_money.go).
	assert.WithinDuration(t, time.Now(), r.CreatedAt, time.Minute, "the row's created_at, just written")
	assert.True(t, e.ReferralCreatedAt.Equal(r.CreatedAt), "eligibility carries the referral's creation: %s, row %s", e.ReferralCreatedAt, r.CreatedAt)
}

func TestCheckEligibilitySameEmailIsSelfReferral(t *testing.T) {
	st, a := referralWorld(t, " BOB@example.com")
	e, err := checkEligibility(t, a, "o1")
	require.NoError(t, err)
	assert.False(t, e.Eligible)
	assert.Equal(t, "self-referral", e.Reason)
	r, err := st.GetReferral(context.Background(), "ref-1")
	require.NoError(t, err)
	assert.Equal(t, store.ReferralIneligible, r.Status)
}

func TestCheckEligibilityNotFirstPaidOrder(t *testing.T) {
	_, a := referralWorld(t, "alice@example.com")
	e, err := checkEligibility(t, a, "o2")
	require.NoError(t, err)
	assert.False(t, e.Eligible)
	assert.Contains(t, e.Reason, "not the referred customer's first paid order")
}

func TestCheckEligibilityAlreadyRewarded(t *testing.T) {
	st, a := referralWorld(t, "alice@example.com")
	_, err := st.RecordReward(context.Background(), store.Reward{ReferralID: "ref-1", ReferrerID: "alice", AmountCents: 1000, Currency: "eur", BalanceTransactionID: "cbtxn_1"})
	require.NoError(t, err)
	e, err := checkEligibility(t, a, "o1")
	require.NoError(t, err)
	assert.False(t, e.Eligible)
	assert.Equal(t, "already rewarded", e.Reason)
}

func TestCheckEligibilityReferrerWithoutStripeCustomerParks(t *testing.T) {
	st, a := referralWorld(t, "alice@example.com")
	require.NoError(t, st.UpsertCustomer(context.Background(), store.Customer{ID: "alice", Email: "alice@example.com"}))
	_, err := checkEligibility(t, a, "o1")
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	assert.Equal(t, "StoreInvalidRequest", appErr.Type())
	assert.True(t, appErr.NonRetryable())
}

// TestRecordRewardIsOncePerReferral: the ledger's unique referral id makes a
// second reward impossible, whatever reruns.
func TestRecordRewardIsOncePerReferral(t *testing.T) {
	st, a := referralWorld(t, "alice@example.com")
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	in := activities.RecordRewardInput{ReferralID: "ref-1", ReferrerID: "alice", AmountCents: 1000, Currency: "eur", BalanceTransactionID: "cbtxn_1"}
	_, err := env.ExecuteActivity(a.RecordReward, in)
	require.NoError(t, err)
	in.BalanceTransactionID = "cbtxn_2" // a second payout attempt
	val, err := env.ExecuteActivity(a.RecordReward, in)
	require.NoError(t, err)
	var out activities.RecordRewardOutput
	require.NoError(t, val.Get(&out))
	assert.True(t, out.AlreadyRecorded)
	assert.Equal(t, "cbtxn_1", out.BalanceTransactionID)
	var rows int
	require.NoError(t, st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM reward_ledger WHERE referral_id = 'ref-1'`).Scan(&rows))
	assert.Equal(t, 1, rows)
	r, err := st.GetReferral(context.Background(), "ref-1")
	require.NoError(t, err)
	assert.Equal(t, store.ReferralRewarded, r.Status)

	_, err = env.ExecuteActivity(a.ReverseReward, activities.ReverseRewardInput{ReferralID: "ref-1"})
	require.NoError(t, err)
	var status string
	require.NoError(t, st.Pool().QueryRow(context.Background(), `SELECT status FROM reward_ledger WHERE referral_id = 'ref-1'`).Scan(&status))
	assert.Equal(t, "reversed", status)
}

// TestRecordRewardRefusesConsoleIDsWhileStripeIsConfigured: a console: id
// means nothing was credited at Stripe. While Stripe is configured (not in
// console mode) such an id must never reach the ledger, where it would
// mark the referral rewarded for a credit that was never made; the step
// fails for an operator instead and the ledger stays empty.
func TestRecordRewardRefusesConsoleIDsWhileStripeIsConfigured(t *testing.T) {
	st, a := referralWorld(t, "alice@example.com")
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	in := activities.RecordRewardInput{ReferralID: "ref-1", ReferrerID: "alice", AmountCents: 1000, Currency: "eur",
		BalanceTransactionID: "console:referral-reward/ref-1/credit"}
	_, err := env.ExecuteActivity(a.RecordReward, in)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr, "a console id while Stripe is configured must not be recorded")
	assert.Equal(t, "StoreInvalidRequest", appErr.Type())
	assert.True(t, appErr.NonRetryable())
	var rows int
	require.NoError(t, st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM reward_ledger WHERE referral_id = 'ref-1'`).Scan(&rows))
	assert.Zero(t, rows)
}
