package workflows_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/testsupport/stripebalance"
	"github.com/crmflow/crmflow/workflows"
)

// failCreditOnce makes the first credit attempt fail with err, recording
// its input; later ones succeed through defaults.
func (s *referralSuite) failCreditOnce(err error) *[]activities.CreditCustomerBalanceInput {
	var failed []activities.CreditCustomerBalanceInput
	s.env.OnActivity(stripe.CreditCustomerBalance, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CreditCustomerBalanceInput) (*activities.CreditCustomerBalanceOutput, error) {
			failed = append(failed, in)
			return nil, err
		}).Once()
	return &failed
}

// keyAnswerError is a Stripe 5xx as the activity reports it.
func keyAnswerError(errType string, nonRetryable bool, ans activities.StripeKeyAnswer) error {
	return temporal.NewApplicationErrorWithOptions("stripe: 500", errType,
		temporal.ApplicationErrorOptions{NonRetryable: nonRetryable, Details: []any{ans}})
}

func (s *referralSuite) TestCreditRetryInsideTheWindowReusesTheKey() {
	failed := s.failCreditOnce(temporal.NewNonRetryableApplicationError("no such customer", "StripeInvalidRequest", nil))
	s.decide(14*24*time.Hour+2*time.Hour, "credit-referrer", "retry")
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("rewarded", res.State)
	s.Require().Len(*failed, 1)
	s.Require().Len(s.credits, 1)
	s.Equal(referralWorkflowID+"/credit/1", (*failed)[0].IdempotencyKey)
	s.Equal(referralWorkflowID+"/credit/1", s.credits[0].IdempotencyKey, "two hours later Stripe still knows the key")
	s.Equal((*failed)[0].LookFor.Since, s.credits[0].LookFor.Since, "the look-up goes back to the first attempt")
}

func (s *referralSuite) TestCreditReplayingAStoredFailureTakesAFreshKeyAtOnce() {
	failed := s.failCreditOnce(keyAnswerError("StripeStoredFailure", true,
		activities.StripeKeyAnswer{IdempotencyKey: referralWorkflowID + "/credit/1", Status: 500, Replayed: true}))
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("rewarded", res.State)
	s.Require().Len(*failed, 1)
	s.Require().Len(s.credits, 1)
	s.Equal(referralWorkflowID+"/credit/2", s.credits[0].IdempotencyKey)
	s.Empty(s.decided, "nothing parked")
}

func (s *referralSuite) TestCreditParkedOnA5xxRetriesWithAFreshKey() {
	// Stripe-Should-Retry: false on a 500: the step parks at once.
	failed := s.failCreditOnce(keyAnswerError("StripeUnavailable", true,
		activities.StripeKeyAnswer{IdempotencyKey: referralWorkflowID + "/credit/1", Status: 500}))
	s.decide(14*24*time.Hour+time.Hour, "credit-referrer", "retry")
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("rewarded", res.State)
	s.Require().Len(*failed, 1)
	s.Require().Len(s.credits, 1)
	s.Equal(referralWorkflowID+"/credit/2", s.credits[0].IdempotencyKey, "Stripe stored the 500 under /1")
}

func (s *referralSuite) TestStoredFailuresStopAfterThreeFreshKeys() {
	var keys []string
	s.env.OnActivity(stripe.CreditCustomerBalance, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CreditCustomerBalanceInput) (*activities.CreditCustomerBalanceOutput, error) {
			keys = append(keys, in.IdempotencyKey)
			return nil, keyAnswerError("StripeStoredFailure", true,
				activities.StripeKeyAnswer{IdempotencyKey: in.IdempotencyKey, Status: 500, Replayed: true})
		}).Times(3)
	s.decide(15*24*time.Hour, "credit-referrer", "skip")
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("skipped", res.State)
	s.Equal([]string{referralWorkflowID + "/credit/1", referralWorkflowID + "/credit/2", referralWorkflowID + "/credit/3"}, keys)
}

// moneyRun is a referral reward whose Stripe activities are real, against a
// stand-in Stripe on the test environment's clock; the other activities are
// mocked.
type moneyRun struct {
	t      *testing.T
	env    *testsuite.TestWorkflowEnvironment
	stripe *stripebalance.Server
	// stripeActs are the real Stripe activities, against the stand-in.
	stripeActs *activities.StripeActivities
	rewards    []activities.RecordRewardInput
	parked     int
	// elig is what CheckEligibility answers (eligible unless a test says
	// otherwise).
	elig activities.Eligibility
}

func newMoneyRun(t *testing.T) *moneyRun {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	m := &moneyRun{t: t, env: env, elig: eligible}
	m.stripe = stripebalance.New(t, env.Now)
	m.stripeActs = &activities.StripeActivities{Stripe: activities.NewStripeClientWithHTTPClient("sk_test_standin", m.stripe.URL, m.stripe.Client())}
	env.SetStartWorkflowOptions(clientStartOptions(referralWorkflowID))
	env.RegisterWorkflow(workflows.ReferralReward)
	env.RegisterActivity(referrals)
	env.RegisterActivity(m.stripeActs)
	env.RegisterActivity(knock)
	env.RegisterActivity(dl)
	env.OnActivity(referrals.CheckEligibility, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.CheckEligibilityInput) (*activities.Eligibility, error) {
			e := m.elig
			return &e, nil
		})
	env.OnActivity(referrals.RecordReward, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RecordRewardInput) (*activities.RecordRewardOutput, error) {
			m.rewards = append(m.rewards, in)
			return &activities.RecordRewardOutput{BalanceTransactionID: in.BalanceTransactionID}, nil
		})
	env.OnActivity(knock.Notify, mock.Anything, mock.Anything).Return(&activities.NotifyOutput{WorkflowRunID: "run"}, nil)
	env.OnActivity(dl.RecordDeadLetter, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.RecordDeadLetterInput) (*activities.RecordDeadLetterOutput, error) {
			m.parked++
			return &activities.RecordDeadLetterOutput{DeadLetterID: 9}, nil
		})
	env.OnActivity(dl.DecideDeadLetter, mock.Anything, mock.Anything).Return(nil)
	return m
}

// retryAt sends the operator's retry at d, first running before.
func (m *moneyRun) retryAt(d time.Duration, before func()) {
	m.env.RegisterDelayedCallback(func() {
		before()
		m.env.UpdateWorkflow(contract.DeadLetterDecisionUpdate, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { m.t.Errorf("decision rejected: %v", err) }, OnComplete: func(any, error) {},
		}, contract.DeadLetterDecision{DeadLetterID: 9, Action: contract.DecisionRetry, Operator: "ops"})
	}, d)
}

func (m *moneyRun) run() *contract.ReferralRewardResult {
	m.env.ExecuteWorkflow(workflows.ReferralReward, contract.ReferralRewardInput{
		ReferralID: "ref_1", OrderID: "o1", ReferredCustomerID: "cus_referred"})
	require.True(m.t, m.env.IsWorkflowCompleted())
	require.NoError(m.t, m.env.GetWorkflowError())
	var res contract.ReferralRewardResult
	require.NoError(m.t, m.env.GetWorkflowResult(&res))
	return &res
}

// TestLandedCreditRetriedAfterADayIsNotPaidAgain: the credit lands but its
// answer is lost, then Stripe is down until the step parks. The operator's
// retry 25 hours later, when Stripe has forgotten the key (a request with it
// would credit again), finds the credit and records it: one credit.
func TestLandedCreditRetriedAfterADayIsNotPaidAgain(t *testing.T) {
	m := newMoneyRun(t)
	m.stripe.FailNext(stripebalance.LandedLost)
	// The first attempt runs when the refund window ends; Temporal's first
	// retry is a second later, and by then Stripe is down.
	m.env.RegisterDelayedCallback(func() { m.stripe.SetDown(true) }, eligible.RefundWindow+500*time.Millisecond)
	m.retryAt(eligible.RefundWindow+25*time.Hour, func() {
		require.Len(t, m.stripe.Transactions(), 1, "the first attempt landed")
		m.stripe.SetDown(false)
	})
	res := m.run()
	assert.Equal(t, "rewarded", res.State)
	assert.Equal(t, 1, m.parked, "the outage parked the step")

	txns := m.stripe.Transactions()
	require.Len(t, txns, 1, "credited once")
	assert.Equal(t, int64(-eligible.RewardCents), txns[0].Amount)
	assert.Equal(t, map[string]string{"referral_id": "ref_1", "order_id": "o1", "crmflow_referral": "ref_1", "crmflow_step": "credit"}, txns[0].Metadata)
	require.Len(t, m.rewards, 1)
	assert.Equal(t, txns[0].ID, m.rewards[0].BalanceTransactionID, "the ledger records the credit that landed")
	creates := m.stripe.Creates()
	require.Len(t, creates, 1, "the retry created nothing")
	assert.Equal(t, referralWorkflowID+"/credit/1", creates[0].Key)
}

// TestRunStartedAgainAfterAnAbortIsNotPaidAgain: an earlier run of the
// referral's reward credited the referrer, then an operator aborted it
// before the ledger recorded the credit, and started the reward again (the
// referral is still holding, so it is eligible again). The new run's credit
// step comes a refund window later, when Stripe has long forgotten the old
// run's key. It looks back to the referral's creation, finds the old run's
// credit and creates nothing. An eligibility recorded before it carried the
// referral's creation leaves the look-up at the step's own first attempt,
// which that credit predates: the new run credits again, as the note in
// RELIABILITY.md says such runs can.
func TestRunStartedAgainAfterAnAbortIsNotPaidAgain(t *testing.T) {
	for _, tc := range []struct {
		name            string
		referralCreated time.Duration // before the old run's credit; 0: unknown
		// credits is how many balance transactions Stripe ends with, each
		// from its own creating request.
		credits int
	}{
		{name: "the referral's creation known", referralCreated: 30 * 24 * time.Hour, credits: 1},
		{name: "an eligibility recorded before it carried the creation", credits: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMoneyRun(t)
			aborted := m.env.Now()
			old := m.creditAsTheAbortedRunDid(aborted)
			if tc.referralCreated != 0 {
				m.elig.ReferralCreatedAt = aborted.Add(-tc.referralCreated)
			}
			res := m.run()
			assert.Equal(t, "rewarded", res.State)
			assert.Zero(t, m.parked)
			require.Len(t, m.stripe.Transactions(), tc.credits)
			require.Len(t, m.stripe.Creates(), tc.credits, "the aborted run's creation, and the new run's if it made one")
			require.Len(t, m.rewards, 1)
			if tc.credits == 1 {
				assert.Equal(t, old, m.rewards[0].BalanceTransactionID, "the ledger records the aborted run's credit")
			} else {
				assert.NotEqual(t, old, m.rewards[0].BalanceTransactionID)
			}
		})
	}
}

// creditAsTheAbortedRunDid credits the referrer as the reward's credit step
// does (its key, metadata and look-up), through the stand-in at at, and
// returns the balance transaction's id.
func (m *moneyRun) creditAsTheAbortedRunDid(at time.Time) string {
	m.t.Helper()
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	env.RegisterActivity(m.stripeActs)
	val, err := env.ExecuteActivity(m.stripeActs.CreditCustomerBalance, activities.CreditCustomerBalanceInput{
		CustomerID: m.elig.ReferrerStripeCustomerID, AmountCents: m.elig.RewardCents, Currency: m.elig.Currency,
		Description: "Referral reward for referral ref_1", Metadata: map[string]string{"referral_id": "ref_1", "order_id": "o1"},
		IdempotencyKey: referralWorkflowID + "/credit/1",
		LookFor: &activities.BalanceMatch{
			Metadata: map[string]string{"crmflow_referral": "ref_1", "crmflow_step": "credit"},
			Legacy:   map[string]string{"referral_id": "ref_1"}, Since: at,
		},
	})
	require.NoError(m.t, err)
	var out activities.CreditCustomerBalanceOutput
	require.NoError(m.t, val.Get(&out))
	require.False(m.t, out.Found)
	return out.BalanceTransactionID
}

// TestCreditAfterAStored500SucceedsWithAFreshKey: Stripe stores a 500 under
// the first key. Temporal's retry looks (nothing landed), gets the stored
// 500 replayed, and the workflow tries a fresh key at once: one credit, no
// operator needed.
func TestCreditAfterAStored500SucceedsWithAFreshKey(t *testing.T) {
	m := newMoneyRun(t)
	m.stripe.FailNext(stripebalance.Stored500)
	res := m.run()
	assert.Equal(t, "rewarded", res.State)
	require.Len(t, m.stripe.Transactions(), 1, "credited once")
	var got []string
	for _, c := range m.stripe.Creates() {
		got = append(got, c.Key)
	}
	assert.Equal(t, []string{referralWorkflowID + "/credit/1", referralWorkflowID + "/credit/1", referralWorkflowID + "/credit/2"}, got,
		"the stored 500, its replay, then a fresh key")
	require.Len(t, m.rewards, 1)
	assert.Equal(t, m.stripe.Transactions()[0].ID, m.rewards[0].BalanceTransactionID)
}

// TestRunParkedBeforeTheChangeIsNotPaidAgain: a run whose credit attempt
// was made the old way (no look-up, the key without a number, the
// referral's id alone in the metadata), parked by an outage after the
// credit landed; the operator retries after the upgrade and a day later.
// The retry runs the new way and finds the old credit by its referral id.
func TestRunParkedBeforeTheChangeIsNotPaidAgain(t *testing.T) {
	m := newMoneyRun(t)
	m.env.OnGetVersion("stripe-money-once/credit/1", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	m.stripe.FailNext(stripebalance.LandedLost)
	m.env.RegisterDelayedCallback(func() { m.stripe.SetDown(true) }, eligible.RefundWindow+500*time.Millisecond)
	m.retryAt(eligible.RefundWindow+25*time.Hour, func() { m.stripe.SetDown(false) })
	res := m.run()
	assert.Equal(t, "rewarded", res.State)
	assert.Equal(t, 1, m.parked)

	txns := m.stripe.Transactions()
	require.Len(t, txns, 1, "credited once")
	assert.Equal(t, map[string]string{"referral_id": "ref_1", "order_id": "o1"}, txns[0].Metadata, "made the old way")
	creates := m.stripe.Creates()
	require.Len(t, creates, 8, "the old way's attempts: the one that landed, then seven through the outage")
	for _, c := range creates {
		assert.Equal(t, referralWorkflowID+"/credit", c.Key, "the old key")
	}
	require.Len(t, m.rewards, 1)
	assert.Equal(t, txns[0].ID, m.rewards[0].BalanceTransactionID)
}
