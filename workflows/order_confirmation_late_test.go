package workflows_test

import (
	"context"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/workflows"
)

// runLate runs a paid-after-close run of o1, closed as closedAs, for the
// payment pi_1 of event evt_late.
func (s *orderSuite) runLate(closedAs string) (*contract.OrderConfirmationResult, []activities.LatePaymentInput) {
	closed := *pendingOrder
	closed.Status = closedAs
	var recorded []activities.LatePaymentInput
	s.env.OnActivity(orders.LoadOrder, mock.Anything, mock.Anything).Return(&closed, nil).Once()
	s.env.OnActivity(orders.RecordLatePayment, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.LatePaymentInput) (*activities.Order, error) {
			recorded = append(recorded, in)
			return &closed, nil
		}).Maybe()
	s.env.OnActivity(orders.ConfirmLatePayment, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.LatePaymentInput) (*activities.Order, error) {
			recorded = append(recorded, in)
			o := closed
			o.Status = "confirmed"
			return &o, nil
		}).Maybe()
	s.defaults()
	late := succeeded("evt_late")
	s.env.ExecuteWorkflow(workflows.OrderConfirmation,
		contract.OrderConfirmationInput{OrderID: "o1", PaymentTimeout: time.Hour, LatePayment: &late})
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var res contract.OrderConfirmationResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	return &res, recorded
}

// decideLate answers the paid-after-close dead letter once the run parks
// on it.
func (s *orderSuite) decideLate(action string) {
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.True(st.Parked, "run is parked")
		s.Equal("paid-after-close", st.Step)
		s.Equal("paid_after_close", st.State)
		s.env.UpdateWorkflow(contract.DeadLetterDecisionUpdate, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { s.Fail("decision rejected", err) }, OnComplete: func(any, error) {},
		}, contract.DeadLetterDecision{DeadLetterID: 7, Action: action, Operator: "ops"})
	}, time.Minute)
}

func (s *orderSuite) TestPaidAfterCloseRetryReopensAndConfirms() {
	var parked activities.RecordDeadLetterInput
	s.env.OnActivity(dl.RecordDeadLetter, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RecordDeadLetterInput) (*activities.RecordDeadLetterOutput, error) {
			parked = in
			return &activities.RecordDeadLetterOutput{DeadLetterID: 7}, nil
		}).Once()
	s.decideLate(contract.DecisionRetry)
	res, recorded := s.runLate("expired")
	s.Equal("confirmed", res.State)
	s.Equal([]activities.LatePaymentInput{{OrderID: "o1", PaymentIntentID: "pi_1"}, {OrderID: "o1", PaymentIntentID: "pi_1"}},
		recorded, "the payment is recorded, then confirmed")
	s.Equal("paid-after-close", parked.Step)
	s.Equal(workflows.ErrorTypePaidAfterClose, parked.ErrorType)
	s.Contains(parked.Error, "succeeded after the order was expired")
	s.Equal([]string{
		"order-paid-after-close order-confirmation/o1/notify-paid-after-close",
		"order-confirmation order-confirmation/o1/notify-confirmation",
	}, s.knockKeys(), "operators are alerted, then the customer is told the order is confirmed")
	s.Equal(workflows.OperatorsRecipient, s.notified[0].Recipients[0])
	s.Equal([]activities.DecideDeadLetterInput{
		{DeadLetterID: 7, Status: "retrying", Operator: "ops"},
		{DeadLetterID: 7, Status: "resolved"},
	}, s.decided)
}

func (s *orderSuite) TestPaidAfterCloseSkipLeavesTheOrderClosed() {
	s.decideLate(contract.DecisionSkip)
	res, recorded := s.runLate("payment_failed")
	s.Equal("payment_failed", res.State)
	s.Equal([]activities.LatePaymentInput{{OrderID: "o1", PaymentIntentID: "pi_1"}}, recorded, "recorded, never confirmed")
	s.Equal([]string{"order-paid-after-close order-confirmation/o1/notify-paid-after-close"}, s.knockKeys())
	s.Equal([]activities.DecideDeadLetterInput{{DeadLetterID: 7, Status: "skipped", Operator: "ops"}}, s.decided)
	s.Empty(s.outcomes)
}

func (s *orderSuite) TestPaidAfterCloseAlertsAnotherPaymentSignalledMeanwhile() {
	other := succeeded("evt_other")
	other.PaymentIntentID = "pi_2"
	s.signalAt(30*time.Second, other)
	s.signalAt(40*time.Second, succeeded("evt_late")) // a redelivery: nothing new
	s.decideLate(contract.DecisionSkip)
	res, _ := s.runLate("expired")
	s.Equal("expired", res.State)
	s.Equal([]string{
		"order-paid-after-close order-confirmation/o1/notify-paid-after-close",
		"order-paid-after-close order-confirmation/o1/notify-paid-after-close/evt_other",
	}, s.knockKeys())
}

func (s *orderSuite) TestLatePaymentForAConfirmedOrderChangesNothing() {
	res, recorded := s.runLate("confirmed")
	s.Equal("confirmed", res.State)
	s.Empty(recorded)
	s.Empty(s.notified)
	s.Empty(s.decided)
}
