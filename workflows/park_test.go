package workflows_test

import (
	"context"
	"errors"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
)

// decisionOutcome is what became of an Update: accepted or rejected, then
// its result.
type decisionOutcome struct {
	rejected error
	result   contract.DeadLetterDecisionResult
	err      error
}

// decideWhileRecording makes the dead letter's activity send a decision
// for dead letter sent, as an operator who saw the committed row would,
// and hold its answer until the run has accepted or rejected it. The
// outcome arrives on the channel once the Update completes.
func (s *referralSuite) decideWhileRecording(sent int64, action string) <-chan decisionOutcome {
	done := make(chan decisionOutcome, 1)
	s.env.OnActivity(dl.RecordDeadLetter, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.RecordDeadLetterInput) (*activities.RecordDeadLetterOutput, error) {
			answered := make(chan struct{})
			var out decisionOutcome
			s.env.UpdateWorkflow(contract.DeadLetterDecisionUpdate, "", &testsuite.TestUpdateCallback{
				OnAccept: func() { close(answered) },
				OnReject: func(err error) { out.rejected = err; close(answered); done <- out },
				OnComplete: func(res any, err error) {
					if r, ok := res.(contract.DeadLetterDecisionResult); ok {
						out.result = r
					}
					out.err = err
					done <- out
				},
			}, contract.DeadLetterDecision{DeadLetterID: sent, Action: action, Operator: "ops"})
			<-answered
			return &activities.RecordDeadLetterOutput{DeadLetterID: 9}, nil
		}).Once()
	return done
}

func (s *referralSuite) TestDecisionSentWhileTheDeadLetterIsRecordedIsAccepted() {
	s.env.OnActivity(stripe.CreditCustomerBalance, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("no such customer", "StripeInvalidRequest", errors.New("400"))).Once()
	outcome := s.decideWhileRecording(9, contract.DecisionRetry)
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("rewarded", res.State, "the early retry was acted on")
	o := <-outcome
	s.Require().NoError(o.rejected, "accepted though the run had not learnt the dead letter's id")
	s.Require().NoError(o.err)
	s.Equal(contract.DeadLetterDecisionResult{Step: "credit-referrer", Action: contract.DecisionRetry}, o.result)
	s.Equal([]activities.DecideDeadLetterInput{
		{DeadLetterID: 9, Status: "retrying", Operator: "ops"},
		{DeadLetterID: 9, Status: "resolved"},
	}, s.decided)
}

func (s *referralSuite) TestEarlyDecisionForAnotherDeadLetterFails() {
	s.env.OnActivity(stripe.CreditCustomerBalance, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("no such customer", "StripeInvalidRequest", errors.New("400"))).Once()
	outcome := s.decideWhileRecording(8, contract.DecisionAbort)
	s.decide(15*24*time.Hour, "credit-referrer", "retry")
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("rewarded", res.State, "the stale abort changed nothing")
	o := <-outcome
	s.Require().NoError(o.rejected)
	s.Require().Error(o.err, "a decision for dead letter 8 while the run parks on 9")
	s.Contains(o.err.Error(), "parked on dead letter 9, not 8")
}

// TestRunsFromBeforeEarlyDecisionsRejectThem: a run that parked first
// under the older code keeps rejecting a decision sent before it learnt the
// dead letter's id, as it did.
func (s *referralSuite) TestRunsFromBeforeEarlyDecisionsRejectThem() {
	s.env.OnGetVersion("dead-letter-early-decisions", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	s.env.OnActivity(stripe.CreditCustomerBalance, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("no such customer", "StripeInvalidRequest", errors.New("400"))).Once()
	outcome := s.decideWhileRecording(9, contract.DecisionRetry)
	s.decide(15*24*time.Hour, "credit-referrer", "retry")
	res, err := s.run()
	s.Require().NoError(err)
	s.Equal("rewarded", res.State)
	o := <-outcome
	var appErr *temporal.ApplicationError
	s.Require().ErrorAs(o.rejected, &appErr)
	s.Equal(contract.ErrorTypeNotParked, appErr.Type())
}
