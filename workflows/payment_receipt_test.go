package workflows_test

import (
	"errors"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
)

// TestReceiptSentAfterConfirmation: once the order is confirmed the
// customer gets the receipt email (after Knock's in-app notice), with the
// order's lines and amount, under a key derived from the run and step.
func (s *orderSuite) TestReceiptSentAfterConfirmation() {
	s.signalAt(time.Minute, succeeded("evt_ok"))
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("confirmed", res.State)
	s.Require().Len(s.emailed, 1)
	sent := s.emailed[0]
	s.Equal(activities.ReceiptTemplate, sent.Template)
	s.Equal("ada@example.com", sent.To)
	s.Equal("order-confirmation/o1/send-receipt", sent.IdempotencyKey)
	s.Equal("o1", sent.BusinessKey)
	s.Equal("o1", sent.Data["order_id"])
	s.EqualValues(4200, sent.Data["amount_cents"])
	s.Equal("eur", sent.Data["currency"])
	s.Len(sent.Data["lines"], 1)
	s.Len(s.notified, 1, "Knock keeps the in-app notice; the email is Resend's")
}

// TestSuppressedReceiptStillConfirms: an address suppressed after a bounce
// gets no receipt, and the order is confirmed all the same.
func (s *orderSuite) TestSuppressedReceiptStillConfirms() {
	s.env.OnActivity(email.SendTemplatedEmail, mock.Anything, mock.Anything).
		Return(&activities.SendEmailOutput{Status: activities.EmailStatusSuppressed}, nil).Once()
	s.signalAt(time.Minute, succeeded("evt_ok"))
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("confirmed", res.State)
	s.Equal(contract.Status{Step: "done", State: "confirmed"}, s.status())
}

// TestReceiptFailureParksAndSkipConfirms: a send Resend refuses for good
// parks the run on send-receipt like any step; an operator's skip ends it
// confirmed without a receipt.
func (s *orderSuite) TestReceiptFailureParksAndSkipConfirms() {
	s.env.OnActivity(email.SendTemplatedEmail, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("resend: 403", "ResendAuthFailed", errors.New("domain not verified"))).Once()
	s.signalAt(time.Minute, succeeded("evt_ok"))
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.True(st.Parked)
		s.Equal("send-receipt", st.Step)
		s.env.UpdateWorkflow(contract.DeadLetterDecisionUpdate, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { s.Fail("rejected", "%v", err) }, OnComplete: func(any, error) {},
		}, contract.DeadLetterDecision{DeadLetterID: 7, Action: contract.DecisionSkip})
	}, 2*time.Minute)
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("confirmed", res.State)
	s.Empty(s.emailed)
	s.Equal([]activities.DecideDeadLetterInput{{DeadLetterID: 7, Status: "skipped"}}, s.decided)
}

// TestNoReceiptForAFailedPayment: only a confirmed order gets a receipt.
func (s *orderSuite) TestNoReceiptForAFailedPayment() {
	s.signalAt(time.Minute, failed("evt_fail"))
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("payment_failed", res.State)
	s.Empty(s.emailed)
}

// TestNoReceiptWithoutAnAddress: a customer with no email address left
// (scrubbed after user.deleted) gets no receipt, and nothing parks.
func (s *orderSuite) TestNoReceiptWithoutAnAddress() {
	noAddress := receipt
	noAddress.Email = ""
	s.env.OnActivity(receipts.LoadReceipt, mock.Anything, mock.Anything).Return(&noAddress, nil).Once()
	s.signalAt(time.Minute, succeeded("evt_ok"))
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("confirmed", res.State)
	s.Empty(s.emailed)
	s.Equal(contract.Status{Step: "done", State: "confirmed"}, s.status(), "nothing parked")
}
