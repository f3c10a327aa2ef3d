package workflows_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/workflows"
)

var referrals *activities.ReferralActivities

type referralSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env      *testsuite.TestWorkflowEnvironment
	credits  []activities.CreditCustomerBalanceInput
	debits   []activities.CreditCustomerBalanceInput
	rewards  []activities.RecordRewardInput
	statuses []string
	reversed int
	notified []activities.NotifyInput
	decided  []activities.DecideDeadLetterInput
}

func TestReferralReward(t *testing.T) { suite.Run(t, new(referralSuite)) }

const referralWorkflowID = "referral-reward/ref_1"

var eligible = activities.Eligibility{
	Eligible: true, ReferrerID: "cus_referrer", ReferrerStripeCustomerID: "cus_stripe_referrer",
	OrderAmountCents: 4200, Currency: "eur", RewardCents: 1000, MinimumOrderCents: 1000,
	RefundWindow: 14 * 24 * time.Hour, ClawbackWindow: 90 * 24 * time.Hour,
}

func (s *referralSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.SetStartWorkflowOptions(clientStartOptions(referralWorkflowID))
	s.env.RegisterWorkflow(workflows.ReferralReward)
	s.env.RegisterActivity(referrals)
	s.env.RegisterActivity(stripe)
	s.env.RegisterActivity(knock)
	s.env.RegisterActivity(dl)
	s.credits, s.debits, s.rewards, s.statuses, s.reversed, s.notified, s.decided = nil, nil, nil, nil, 0, nil, nil
}

func (s *referralSuite) AfterTest(_, _ string) { s.env.AssertExpectations(s.T()) }

// defaults registers the happy path after a test's own expectations.
func (s *referralSuite) defaults() {
	s.env.OnActivity(referrals.CheckEligibility, mock.Anything, activities.CheckEligibilityInput{ReferralID: "ref_1", OrderID: "o1"}).
		Return(&eligible, nil).Maybe()
	s.env.OnActivity(stripe.CreditCustomerBalance, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CreditCustomerBalanceInput) (*activities.CreditCustomerBalanceOutput, error) {
			s.credits = append(s.credits, in)
			return &activities.CreditCustomerBalanceOutput{BalanceTransactionID: "cbtxn_1"}, nil
		}).Maybe()
	s.env.OnActivity(stripe.DebitCustomerBalance, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CreditCustomerBalanceInput) (*activities.CreditCustomerBalanceOutput, error) {
			s.debits = append(s.debits, in)
			return &activities.CreditCustomerBalanceOutput{BalanceTransactionID: "cbtxn_2"}, nil
		}).Maybe()
	s.env.OnActivity(referrals.RecordReward, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RecordRewardInput) (*activities.RecordRewardOutput, error) {
			s.rewards = append(s.rewards, in)
			return &activities.RecordRewardOutput{BalanceTransactionID: in.BalanceTransactionID}, nil
		}).Maybe()
	s.env.OnActivity(referrals.SetReferralStatus, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SetReferralStatusInput) error {
			s.statuses = append(s.statuses, in.Status)
			return nil
		}).Maybe()
	s.env.OnActivity(referrals.ReverseReward, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.ReverseRewardInput) error { s.reversed++; return nil }).Maybe()
	s.env.OnActivity(knock.Notify, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.NotifyInput) (*activities.NotifyOutput, error) {
			s.notified = append(s.notified, in)
			return &activities.NotifyOutput{WorkflowRunID: "run"}, nil
		}).Maybe()
	s.env.OnActivity(dl.RecordDeadLetter, mock.Anything, mock.Anything).Return(&activities.RecordDeadLetterOutput{DeadLetterID: 9}, nil).Maybe()
	s.env.OnActivity(dl.DecideDeadLetter, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DecideDeadLetterInput) error {
			s.decided = append(s.decided, in)
			return nil
		}).Maybe()
}

func (s *referralSuite) run() (*contract.ReferralRewardResult, error) {
	s.defaults()
	s.env.ExecuteWorkflow(workflows.ReferralReward, contract.ReferralRewardInput{
		ReferralID: "ref_1", OrderID: "o1", ReferredCustomerID: "cus_referred"})
	s.Require().True(s.env.IsWorkflowCompleted())
	if err := s.env.GetWorkflowError(); err != nil {
		return nil, err
	}
	var res contract.ReferralRewardResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	return &res, nil
}

func (s *referralSuite) refundAt(d time.Duration, ev contract.RefundEvent) {
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(contract.RefundSignal, ev) }, d)
}

func (s *referralSuite) status() contract.Status {
	v, err := s.env.QueryWorkflow(contract.StatusQuery)
	s.Require().NoError(err)
	var st contract.Status
	s.Require().NoError(v.Get(&st))
	return st
}

func (s *referralSuite) TestEligibleIsPaidAfterTheRefundWindow() {
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.Equal("refund-window", st.Step)
		s.Equal("holding", st.State)
		s.Empty(s.credits, "nothing is paid inside the refund window")
	}, 13*24*time.Hour)
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("rewarded", res.State)
	s.Require().Len(s.credits, 1)
	c := s.credits[0]
	s.Equal("cus_stripe_referrer", c.CustomerID)
	s.Equal(int64(1000), c.AmountCents)
	s.Equal("eur", c.Currency)
	s.Equal(referralWorkflowID+"/credit/1", c.IdempotencyKey)
	s.Equal(map[string]string{"referral_id": "ref_1", "order_id": "o1"}, c.Metadata)
	s.Require().NotNil(c.LookFor, "the credit looks for one an earlier attempt made")
	s.Equal(map[string]string{"crmflow_referral": "ref_1", "crmflow_step": "credit"}, c.LookFor.Metadata)
	s.Equal(map[string]string{"referral_id": "ref_1"}, c.LookFor.Legacy)
	s.Contains(c.Description, "ref_1")
	s.Equal([]activities.RecordRewardInput{{ReferralID: "ref_1", ReferrerID: "cus_referrer", AmountCents: 1000,
		Currency: "eur", BalanceTransactionID: "cbtxn_1"}}, s.rewards)
	s.Require().Len(s.notified, 1)
	s.Equal("referral-reward", s.notified[0].Workflow)
	s.Equal([]string{"cus_referrer"}, s.notified[0].Recipients)
	s.Equal(referralWorkflowID+"/notify-referrer", s.notified[0].IdempotencyKey)
	s.Empty(s.debits)
}

func (s *referralSuite) ineligible(reason string) {
	s.env.OnActivity(referrals.CheckEligibility, mock.Anything, mock.Anything).
		Return(&activities.Eligibility{Reason: reason, ReferrerID: "cus_referrer"}, nil).Once()
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("ineligible", res.State)
	s.Equal(reason, res.Reason)
	s.Equal(reason, s.status().Detail, "the reason is in the status query")
	s.Empty(s.credits)
	s.Empty(s.rewards)
	s.Empty(s.notified)
}

func (s *referralSuite) TestSelfReferralIsIneligible() { s.ineligible("self-referral") }
func (s *referralSuite) TestNotFirstOrderIsIneligible() {
	s.ineligible("order o1 is not the referred customer's first paid order")
}
func (s *referralSuite) TestAlreadyRewardedIsIneligible() {
	s.ineligible("already rewarded")
}

func (s *referralSuite) TestFullRefundInsideWindowVoids() {
	s.refundAt(3*24*time.Hour, contract.RefundEvent{EventID: "evt_r", ChargeID: "ch_1", AmountRefundedCents: 4200, FullyRefunded: true})
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("voided", res.State)
	s.Contains(res.Reason, "refunded in full")
	s.Equal([]string{"voided"}, s.statuses)
	s.Empty(s.credits, "no credit for a voided reward")
	s.Empty(s.notified)
}

func (s *referralSuite) TestPartialRefundBelowMinimumVoids() {
	// 4200 - 3500 leaves 700, below the 1000 minimum.
	s.refundAt(time.Hour, contract.RefundEvent{EventID: "evt_p", ChargeID: "ch_1", AmountRefundedCents: 3500})
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("voided", res.State)
	s.Contains(res.Reason, "below the minimum of 1000")
	s.Empty(s.credits)
}

func (s *referralSuite) TestSmallPartialRefundKeepsReward() {
	s.refundAt(time.Hour, contract.RefundEvent{EventID: "evt_p", ChargeID: "ch_1", AmountRefundedCents: 200})
	s.refundAt(2*time.Hour, contract.RefundEvent{EventID: "evt_p", ChargeID: "ch_1", AmountRefundedCents: 200})
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("rewarded", res.State)
	s.Len(s.credits, 1)
}

// decide sends an operator decision once the run is parked on step.
func (s *referralSuite) decide(at time.Duration, step, action string) {
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.True(st.Parked, "parked")
		s.Equal(step, st.Step)
		s.env.UpdateWorkflow(contract.DeadLetterDecisionUpdate, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { s.Fail("rejected", err.Error()) }, OnComplete: func(any, error) {},
		}, contract.DeadLetterDecision{DeadLetterID: 9, Action: action, Operator: "ops"})
	}, at)
}

func (s *referralSuite) TestRefundAfterPayoutAsksAndClawsBack() {
	// Paid at 14 days; refunded at 20 days; the operator claws back.
	s.refundAt(20*24*time.Hour, contract.RefundEvent{EventID: "evt_late", ChargeID: "ch_1", AmountRefundedCents: 4200, FullyRefunded: true})
	s.decide(21*24*time.Hour, "clawback-decision", "retry")
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("clawed_back", res.State)
	s.Len(s.credits, 1)
	s.Require().Len(s.debits, 1)
	s.Equal(int64(1000), s.debits[0].AmountCents)
	s.Equal(referralWorkflowID+"/clawback/1", s.debits[0].IdempotencyKey)
	s.Equal(map[string]string{"crmflow_referral": "ref_1", "crmflow_step": "clawback"}, s.debits[0].LookFor.Metadata)
	s.Equal(1, s.reversed)
	s.Equal([]activities.DecideDeadLetterInput{
		{DeadLetterID: 9, Status: "retrying", Operator: "ops"},
		{DeadLetterID: 9, Status: "resolved"},
	}, s.decided)
}

func (s *referralSuite) TestRefundAfterPayoutKeptBySkip() {
	s.refundAt(20*24*time.Hour, contract.RefundEvent{EventID: "evt_late", ChargeID: "ch_1", AmountRefundedCents: 4200, FullyRefunded: true})
	s.decide(21*24*time.Hour, "clawback-decision", "skip")
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("rewarded", res.State)
	s.Contains(res.Reason, "kept the reward")
	s.Empty(s.debits)
	s.Zero(s.reversed)
}

func (s *referralSuite) TestStripeRejectionParksThenRetryPays() {
	s.env.OnActivity(stripe.CreditCustomerBalance, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("stripe: no such customer", "StripeInvalidRequest", errors.New("400"))).Once()
	s.decide(15*24*time.Hour, "credit-referrer", "retry")
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("rewarded", res.State)
	s.Require().Len(s.credits, 1, "the retried credit succeeded once")
	s.Equal(referralWorkflowID+"/credit/2", s.credits[0].IdempotencyKey,
		"a retry a day after the first attempt sends a fresh key: Stripe may have forgotten the first")
	s.Len(s.rewards, 1)
}
