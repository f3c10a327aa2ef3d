package workflows_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/workflows"
)

var (
	orders *activities.OrderActivities
	stripe *activities.StripeActivities
	knock  *activities.KnockActivities
	dl     *activities.DeadLetterActivities
)

type orderSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env      *testsuite.TestWorkflowEnvironment
	notified []activities.NotifyInput
	outcomes []activities.SetOrderOutcomeInput
	// decided records DecideDeadLetter calls as "id:status".
	decided []activities.DecideDeadLetterInput
}

func TestOrderConfirmation(t *testing.T) { suite.Run(t, new(orderSuite)) }

const orderWorkflowID = "order-confirmation/o1"

var pendingOrder = &activities.Order{ID: "o1", CustomerID: "cus_1", AmountCents: 4200, Currency: "eur", Status: "pending"}

func (s *orderSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.SetStartWorkflowOptions(clientStartOptions(orderWorkflowID))
	s.env.RegisterWorkflow(workflows.OrderConfirmation)
	s.env.RegisterWorkflow(workflows.ReferralReward)
	s.env.RegisterActivity(orders)
	s.env.RegisterActivity(stripe)
	s.env.RegisterActivity(knock)
	s.env.RegisterActivity(dl)
	s.notified, s.outcomes, s.decided = nil, nil, nil
}

// defaults registers the happy-path activity mocks. It runs after a test's
// own expectations, because the first matching expectation wins.
func (s *orderSuite) defaults() {
	s.env.OnActivity(orders.LoadOrder, mock.Anything, activities.LoadOrderInput{OrderID: "o1"}).Return(pendingOrder, nil).Maybe()
	s.env.OnActivity(orders.SetOrderOutcome, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SetOrderOutcomeInput) (*activities.Order, error) {
			s.outcomes = append(s.outcomes, in)
			o := *pendingOrder
			o.Status = in.Status
			return &o, nil
		}).Maybe()
	s.env.OnActivity(orders.FindReferral, mock.Anything, mock.Anything).Return(&activities.FindReferralOutput{}, nil).Maybe()
	s.env.OnActivity(stripe.RetrievePaymentIntent, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RetrievePaymentIntentInput) (*activities.PaymentIntentSnapshot, error) {
			return &activities.PaymentIntentSnapshot{ID: in.PaymentIntentID, Amount: 4200, AmountReceived: 4200, Currency: "eur", Status: "succeeded",
				Metadata: map[string]string{"order_id": "o1"}}, nil
		}).Maybe()
	s.env.OnActivity(knock.Notify, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.NotifyInput) (*activities.NotifyOutput, error) {
			s.notified = append(s.notified, in)
			return &activities.NotifyOutput{WorkflowRunID: "run"}, nil
		}).Maybe()
	s.env.OnActivity(dl.RecordDeadLetter, mock.Anything, mock.Anything).Return(&activities.RecordDeadLetterOutput{DeadLetterID: 7}, nil).Maybe()
	s.env.OnActivity(dl.DecideDeadLetter, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DecideDeadLetterInput) error {
			s.decided = append(s.decided, in)
			return nil
		}).Maybe()
}

func (s *orderSuite) AfterTest(_, _ string) { s.env.AssertExpectations(s.T()) }

func succeeded(eventID string) contract.PaymentEvent {
	return contract.PaymentEvent{EventID: eventID, Succeeded: true, PaymentIntentID: "pi_1",
		AmountCents: 4200, AmountReceivedCents: 4200, Currency: "eur", CustomerID: "cus_stripe"}
}

func failed(eventID string) contract.PaymentEvent {
	return contract.PaymentEvent{EventID: eventID, PaymentIntentID: "pi_1", AmountCents: 4200,
		Currency: "eur", FailureMessage: "card declined"}
}

func (s *orderSuite) signalAt(d time.Duration, ev contract.PaymentEvent) {
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(contract.PaymentSignal, ev) }, d)
}

func (s *orderSuite) run() (*contract.OrderConfirmationResult, error) {
	s.defaults()
	s.env.ExecuteWorkflow(workflows.OrderConfirmation, contract.OrderConfirmationInput{OrderID: "o1", PaymentTimeout: time.Hour})
	s.Require().True(s.env.IsWorkflowCompleted())
	if err := s.env.GetWorkflowError(); err != nil {
		return nil, err
	}
	var res contract.OrderConfirmationResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	return &res, nil
}

func (s *orderSuite) status() contract.Status {
	v, err := s.env.QueryWorkflow(contract.StatusQuery)
	s.Require().NoError(err)
	var st contract.Status
	s.Require().NoError(v.Get(&st))
	return st
}

func (s *orderSuite) knockKeys() []string {
	var keys []string
	for _, n := range s.notified {
		keys = append(keys, n.Workflow+" "+n.IdempotencyKey)
	}
	return keys
}

func (s *orderSuite) TestSuccess() {
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.Equal("await-payment", st.Step)
		s.Equal("pending", st.State)
	}, time.Minute)
	s.signalAt(2*time.Minute, succeeded("evt_ok"))
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("confirmed", res.State)
	s.Empty(res.ReferralID)
	s.Equal([]activities.SetOrderOutcomeInput{{OrderID: "o1", Status: "confirmed", PaymentIntentID: "pi_1"}}, s.outcomes)
	s.Equal([]string{"order-confirmation order-confirmation/o1/notify-confirmation"}, s.knockKeys())
	s.Equal([]string{"cus_1"}, s.notified[0].Recipients)
	s.Equal("o1", s.notified[0].Data["order_id"])
	s.Equal(contract.Status{Step: "done", State: "confirmed"}, s.status())
}

func (s *orderSuite) TestReferralChildStarted() {
	s.env.OnActivity(orders.FindReferral, mock.Anything, activities.FindReferralInput{OrderID: "o1"}).
		Return(&activities.FindReferralOutput{ReferralID: "ref_1"}, nil).Once()
	s.env.OnWorkflow(workflows.ReferralReward, mock.Anything, contract.ReferralRewardInput{
		ReferralID: "ref_1", OrderID: "o1", ReferredCustomerID: "cus_1",
	}).Return(&contract.ReferralRewardResult{State: "requested"}, nil).Once()
	s.signalAt(time.Minute, succeeded("evt_ok"))
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("confirmed", res.State)
	s.Equal("ref_1", res.ReferralID)
}

func (s *orderSuite) TestNoReferralChildWhenNotReferred() {
	s.signalAt(time.Minute, succeeded("evt_ok"))
	_, err := s.run()
	s.Require().NoError(err)
	s.env.AssertWorkflowNumberOfCalls(s.T(), "ReferralReward", 0)
}

func (s *orderSuite) TestTimeoutExpires() {
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("expired", res.State)
	s.Equal([]activities.SetOrderOutcomeInput{{OrderID: "o1", Status: "expired"}}, s.outcomes)
	s.Equal([]string{"order-payment-failed order-confirmation/o1/notify-expired"}, s.knockKeys())
	s.Equal("expired", s.notified[0].Data["reason"])
}

func (s *orderSuite) TestFailureThenDeadlineMarksPaymentFailed() {
	s.signalAt(time.Minute, failed("evt_fail"))
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.Equal("payment_failed_awaiting_retry", st.State)
		s.Equal("card declined", st.Detail)
	}, 2*time.Minute)
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("payment_failed", res.State)
	s.Equal([]activities.SetOrderOutcomeInput{{OrderID: "o1", Status: "payment_failed"}}, s.outcomes)
	s.Equal([]string{
		"order-payment-failed order-confirmation/o1/notify-payment-failed/evt_fail",
		"order-payment-failed order-confirmation/o1/notify-payment_failed",
	}, s.knockKeys())
}

func (s *orderSuite) TestFailureThenSuccessConfirms() {
	s.signalAt(time.Minute, failed("evt_fail"))
	s.signalAt(2*time.Minute, succeeded("evt_ok"))
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("confirmed", res.State)
	s.Len(s.outcomes, 1)
}

func (s *orderSuite) TestDuplicateSignalsIgnored() {
	s.signalAt(time.Minute, failed("evt_fail"))
	s.signalAt(2*time.Minute, failed("evt_fail"))
	s.signalAt(3*time.Minute, succeeded("evt_ok"))
	s.signalAt(4*time.Minute, succeeded("evt_ok"))
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("confirmed", res.State)
	s.Equal([]string{
		"order-payment-failed order-confirmation/o1/notify-payment-failed/evt_fail",
		"order-confirmation order-confirmation/o1/notify-confirmation",
	}, s.knockKeys())
}

func (s *orderSuite) TestAmountMismatch() {
	s.env.OnActivity(stripe.RetrievePaymentIntent, mock.Anything, mock.Anything).Return(
		&activities.PaymentIntentSnapshot{ID: "pi_1", Amount: 100, AmountReceived: 100, Currency: "eur", Status: "succeeded"}, nil).Once()
	s.signalAt(time.Minute, succeeded("evt_ok"))
	s.requireMismatch("received 100, order is 4200")
}

func (s *orderSuite) TestCurrencyMismatch() {
	s.env.OnActivity(stripe.RetrievePaymentIntent, mock.Anything, mock.Anything).Return(
		&activities.PaymentIntentSnapshot{ID: "pi_1", Amount: 4200, AmountReceived: 4200, Currency: "usd", Status: "succeeded"}, nil).Once()
	s.signalAt(time.Minute, succeeded("evt_ok"))
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("mismatch", res.State)
}

// paidBy answers the payment check with a succeeded PaymentIntent of the
// order's amount, for the order named in its metadata and the customer.
func (s *orderSuite) paidBy(orderID, customerID string) {
	pi := &activities.PaymentIntentSnapshot{ID: "pi_1", Amount: 4200, AmountReceived: 4200, Currency: "eur",
		Status: "succeeded", CustomerID: customerID}
	if orderID != "" {
		pi.Metadata = map[string]string{"order_id": orderID}
	}
	s.env.OnActivity(stripe.RetrievePaymentIntent, mock.Anything, mock.Anything).Return(pi, nil).Once()
}

// requireMismatch checks the run ended as a mismatch that operators were
// told about, for the reason given.
func (s *orderSuite) requireMismatch(reason string) {
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("mismatch", res.State)
	s.Equal([]activities.SetOrderOutcomeInput{{OrderID: "o1", Status: "mismatch", PaymentIntentID: "pi_1"}}, s.outcomes)
	s.Equal([]string{"order-payment-mismatch order-confirmation/o1/notify-mismatch"}, s.knockKeys())
	s.Equal([]string{workflows.OperatorsRecipient}, s.notified[0].Recipients)
	s.Contains(s.status().Detail, reason)
}

// TestPaymentIntentOfAnotherOrderIsMismatch: a succeeded PaymentIntent of
// the right amount, but Stripe says it pays order o2, confirms nothing.
func (s *orderSuite) TestPaymentIntentOfAnotherOrderIsMismatch() {
	s.paidBy("o2", "")
	s.signalAt(time.Minute, succeeded("evt_ok"))
	s.requireMismatch(`order "o2"`)
}

// TestPaymentIntentOfNoOrderIsMismatch: a PaymentIntent that names no order
// in its metadata belongs to none.
func (s *orderSuite) TestPaymentIntentOfNoOrderIsMismatch() {
	s.paidBy("", "")
	s.signalAt(time.Minute, succeeded("evt_ok"))
	s.requireMismatch(`order ""`)
}

// ownedOrder is the pending order of a customer who has a Stripe customer.
func (s *orderSuite) ownedOrder() {
	o := *pendingOrder
	o.StripeCustomerID = "cus_owner"
	s.env.OnActivity(orders.LoadOrder, mock.Anything, mock.Anything).Return(&o, nil).Once()
}

// TestPaymentIntentOfAnotherCustomerIsMismatch: the PaymentIntent names the
// order, but another Stripe customer paid it.
func (s *orderSuite) TestPaymentIntentOfAnotherCustomerIsMismatch() {
	s.ownedOrder()
	s.paidBy("o1", "cus_other")
	s.signalAt(time.Minute, succeeded("evt_ok"))
	s.requireMismatch(`customer "cus_other"`)
}

// TestPaymentIntentOfNoCustomerIsMismatch: the order's customer has a
// Stripe customer, the PaymentIntent has none.
func (s *orderSuite) TestPaymentIntentOfNoCustomerIsMismatch() {
	s.ownedOrder()
	s.paidBy("o1", "")
	s.signalAt(time.Minute, succeeded("evt_ok"))
	s.requireMismatch(`customer ""`)
}

// TestPaymentIntentOfTheOrdersCustomerConfirms: order and customer match.
func (s *orderSuite) TestPaymentIntentOfTheOrdersCustomerConfirms() {
	s.ownedOrder()
	s.paidBy("o1", "cus_owner")
	s.signalAt(time.Minute, succeeded("evt_ok"))
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("confirmed", res.State)
}

// TestConsoleSnapshotNamesTheOrder: the webhook's snapshot, which console
// mode answers with and a skipped check trusts, names the order the signed
// event was routed to (by its metadata.order_id), so it passes the check.
func (s *orderSuite) TestConsoleSnapshotNamesTheOrder() {
	s.env.OnActivity(stripe.RetrievePaymentIntent, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RetrievePaymentIntentInput) (*activities.PaymentIntentSnapshot, error) {
			s.Equal(map[string]string{"order_id": "o1"}, in.Snapshot.Metadata)
			s.Equal("cus_stripe", in.Snapshot.CustomerID)
			snap := *in.Snapshot
			return &snap, nil
		}).Once()
	s.signalAt(time.Minute, succeeded("evt_ok"))
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("confirmed", res.State)
}

func (s *orderSuite) TestAlreadyDecidedOrderChangesNothing() {
	done := *pendingOrder
	done.Status = "confirmed"
	s.env.OnActivity(orders.LoadOrder, mock.Anything, mock.Anything).Return(&done, nil).Once()
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("confirmed", res.State)
	s.Empty(s.outcomes)
	s.Empty(s.notified)
}

// failNotifyOnce makes the first Knock call fail for good.
func (s *orderSuite) failNotifyOnce() {
	s.env.OnActivity(knock.Notify, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("knock: 401", "KnockAuthFailed", errors.New("bad key"))).Once()
}

// decide sends the operator's decision once the run is parked.
func (s *orderSuite) decide(at time.Duration, d contract.DeadLetterDecision, wantErr bool) {
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.True(st.Parked, "run is parked")
		s.Equal("notify-confirmation", st.Step)
		s.env.UpdateWorkflow(contract.DeadLetterDecisionUpdate, "", &testsuite.TestUpdateCallback{
			OnAccept:   func() { s.False(wantErr, "decision accepted") },
			OnReject:   func(err error) { s.True(wantErr, "decision rejected: %v", err) },
			OnComplete: func(any, error) {},
		}, d)
	}, at)
}

func (s *orderSuite) TestParkedThenRetried() {
	s.failNotifyOnce()
	s.signalAt(time.Minute, succeeded("evt_ok"))
	s.decide(2*time.Minute, contract.DeadLetterDecision{DeadLetterID: 99, Action: "retry"}, true)
	s.decide(3*time.Minute, contract.DeadLetterDecision{DeadLetterID: 7, Action: "explode"}, true)
	s.decide(4*time.Minute, contract.DeadLetterDecision{DeadLetterID: 7, Action: "retry", Operator: "ops@x"}, false)
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("confirmed", res.State)
	s.Equal([]activities.DecideDeadLetterInput{
		{DeadLetterID: 7, Status: "retrying", Operator: "ops@x"},
		{DeadLetterID: 7, Status: "resolved"},
	}, s.decided)
	s.Equal([]string{"order-confirmation order-confirmation/o1/notify-confirmation"}, s.knockKeys(),
		"the retry used the same idempotency key")
	s.False(s.status().Parked)
}

func (s *orderSuite) TestParkedThenSkipped() {
	s.failNotifyOnce()
	s.signalAt(time.Minute, succeeded("evt_ok"))
	s.decide(2*time.Minute, contract.DeadLetterDecision{DeadLetterID: 7, Action: "skip"}, false)
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("confirmed", res.State)
	s.Empty(s.notified)
	s.Equal([]activities.DecideDeadLetterInput{{DeadLetterID: 7, Status: "skipped"}}, s.decided)
}

func (s *orderSuite) TestParkedThenAborted() {
	s.failNotifyOnce()
	s.signalAt(time.Minute, succeeded("evt_ok"))
	s.decide(2*time.Minute, contract.DeadLetterDecision{DeadLetterID: 7, Action: "abort", Operator: "ops"}, false)
	_, err := s.run()
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr), "got %v", err)
	s.Equal(contract.ErrorTypeOperatorAborted, appErr.Type())
	s.Equal([]activities.DecideDeadLetterInput{{DeadLetterID: 7, Status: "aborted", Operator: "ops"}}, s.decided)
}

func (s *orderSuite) TestDecisionRejectedWhenNotParked() {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(contract.DeadLetterDecisionUpdate, "", &testsuite.TestUpdateCallback{
			OnAccept: func() { s.Fail("accepted while not parked") },
			OnReject: func(err error) {
				s.ErrorContains(err, "not parked")
				var appErr *temporal.ApplicationError
				s.Require().True(errors.As(err, &appErr), "got %v", err)
				s.Equal(contract.ErrorTypeNotParked, appErr.Type(), "callers retry on this type")
			},
			OnComplete: func(any, error) {},
		}, contract.DeadLetterDecision{DeadLetterID: 7, Action: "retry"})
	}, time.Minute)
	s.signalAt(2*time.Minute, succeeded("evt_ok"))
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("confirmed", res.State)
}

func (s *orderSuite) TestDeadLetterRecordsStepAndInput() {
	var recorded activities.RecordDeadLetterInput
	s.env.OnActivity(dl.RecordDeadLetter, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RecordDeadLetterInput) (*activities.RecordDeadLetterOutput, error) {
			recorded = in
			return &activities.RecordDeadLetterOutput{DeadLetterID: 7}, nil
		}).Once()
	s.failNotifyOnce()
	s.signalAt(time.Minute, succeeded("evt_ok"))
	s.decide(2*time.Minute, contract.DeadLetterDecision{DeadLetterID: 7, Action: "skip"}, false)
	_, err := s.run()
	s.Require().NoError(err)
	s.Equal(orderWorkflowID, recorded.WorkflowID)
	s.Equal("OrderConfirmation", recorded.WorkflowType)
	s.Equal("notify-confirmation", recorded.Step)
	s.Equal("KnockAuthFailed", recorded.ErrorType)
	input, err := json.Marshal(recorded.Input)
	s.Require().NoError(err)
	s.Contains(string(input), `"IdempotencyKey":"order-confirmation/o1/notify-confirmation"`)
}

func TestInvalidOrderIDFails(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.ExecuteWorkflow(workflows.OrderConfirmation, contract.OrderConfirmationInput{OrderID: "a/b"})
	require.True(t, env.IsWorkflowCompleted())
	assert.ErrorContains(t, env.GetWorkflowError(), "must not contain a slash")
}

// TestPaymentTimeoutAsText: an input written by a client in another
// language, with the payment timeout as an ISO 8601 string, waits that long.
func (s *orderSuite) TestPaymentTimeoutAsText() {
	s.defaults()
	start := s.env.Now()
	s.env.ExecuteWorkflow(contract.OrderConfirmationType, json.RawMessage(`{"order_id":"o1","payment_timeout":"PT2H"}`))
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var res contract.OrderConfirmationResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal("expired", res.State)
	s.Equal(2*time.Hour, s.env.Now().Sub(start).Round(time.Minute), "the run waited the two hours it was given")
	s.Equal("no payment within 2h0m0s", s.status().Detail)
}

// TestPaymentTimeoutBadText: a duration no form reads fails the run with
// an error naming the field, before any step runs.
func (s *orderSuite) TestPaymentTimeoutBadText() {
	s.env.ExecuteWorkflow(contract.OrderConfirmationType, json.RawMessage(`{"order_id":"o1","payment_timeout":"24 hours"}`))
	s.Require().True(s.env.IsWorkflowCompleted())
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	s.Contains(err.Error(), `payment_timeout: "24 hours" is not a duration`)
	s.Empty(s.outcomes, "no step ran")
}
