package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/workflows"
)

// parkAndDecide parks the run on notify-confirmation, has operator ops
// decide action, and returns the error the run ended with.
func (s *orderSuite) parkAndDecide(action string) error {
	s.failNotifyOnce()
	s.signalAt(time.Minute, succeeded("evt_ok"))
	s.decide(2*time.Minute, contract.DeadLetterDecision{DeadLetterID: 7, Action: action, Operator: "ops"}, false)
	_, err := s.run()
	return err
}

// An operator's abort ends the run; the status query of the closed run must
// say so, not show the state it had before it parked.
func (s *orderSuite) TestAbortedRunStatusSaysAborted() {
	s.Require().Error(s.parkAndDecide("abort"))
	s.Equal(contract.Status{Step: "notify-confirmation", State: "aborted",
		Detail: "step notify-confirmation aborted by operator ops"}, s.status())
}

// A retried step that works again leaves the status as the run made it:
// only an abort that ends the run says aborted.
func (s *orderSuite) TestRetriedRunStatusIsNotAborted() {
	s.Require().NoError(s.parkAndDecide("retry"))
	s.Equal("confirmed", s.status().State)
}

// The alias lifecycle works its state out in its own query handler; an
// abort must win there too.
func (s *aliasSuite) TestAbortedCreationStatusSaysAborted() {
	s.env.OnActivity(simpleLogin.CreateAlias, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("SimpleLogin: bad key", "SimpleLoginAuthFailed", errors.New("401"))).Once()
	s.decide(time.Hour, "create-alias", "abort")
	s.defaults()
	s.env.ExecuteWorkflow(workflows.AliasLifecycle, owned())
	s.Require().True(s.env.IsWorkflowCompleted())
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(s.env.GetWorkflowError(), &appErr))
	s.Equal(contract.ErrorTypeOperatorAborted, appErr.Type())
	s.Equal(contract.Status{Step: "create-alias", State: "aborted",
		Detail: "step create-alias aborted by operator ops"}, s.status())
}

// missingOrders is a database that has no orders.
type missingOrders struct{}

func (missingOrders) GetOrder(_ context.Context, id string) (*store.Order, error) {
	return nil, fmt.Errorf("order %s: %w", id, store.ErrNotFound)
}

func (missingOrders) SetOrderOutcome(context.Context, string, string, string) (*store.Order, error) {
	return nil, errors.New("not expected")
}

func (missingOrders) ReferralForFirstPaidOrder(context.Context, string) (string, error) {
	return "", errors.New("not expected")
}

func (missingOrders) RecordLatePayment(context.Context, string, string) (*store.Order, error) {
	return nil, errors.New("not expected")
}

func (missingOrders) ConfirmLatePayment(context.Context, string, string) (*store.Order, error) {
	return nil, errors.New("not expected")
}

func (missingOrders) MarkOrderRefunded(context.Context, string, int64, bool) (*store.Refund, error) {
	return nil, errors.New("not expected")
}

// TestDeadLetterNamesTheApplicationError: the real LoadOrder, against a
// database without the order, fails with a non-retryable StoreNotFound. The
// dead letter records that error's type, that it is not retryable and its
// message, not the text of the Go error wrapped inside it ("wrapError,
// retryable: true").
func TestDeadLetterNamesTheApplicationError(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.SetStartWorkflowOptions(clientStartOptions(orderWorkflowID))
	env.RegisterWorkflow(workflows.OrderConfirmation)
	env.RegisterActivity(&activities.OrderActivities{Store: missingOrders{}})
	env.RegisterActivity(dl)
	var recorded []activities.RecordDeadLetterInput
	env.OnActivity(dl.RecordDeadLetter, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RecordDeadLetterInput) (*activities.RecordDeadLetterOutput, error) {
			recorded = append(recorded, in)
			return &activities.RecordDeadLetterOutput{DeadLetterID: 7}, nil
		})
	env.OnActivity(dl.DecideDeadLetter, mock.Anything, mock.Anything).Return(nil)
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(contract.DeadLetterDecisionUpdate, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("decision rejected: %v", err) }, OnComplete: func(any, error) {},
		}, contract.DeadLetterDecision{DeadLetterID: 7, Action: "abort", Operator: "ops"})
	}, time.Minute)
	env.ExecuteWorkflow(workflows.OrderConfirmation, contract.OrderConfirmationInput{OrderID: "o1", PaymentTimeout: time.Hour})
	require.True(t, env.IsWorkflowCompleted())

	require.Len(t, recorded, 1)
	d := recorded[0]
	assert.Equal(t, "load-order", d.Step)
	assert.Equal(t, "StoreNotFound", d.ErrorType)
	assert.Equal(t, 1, d.Attempts)
	// load-order is a local activity (localStoreSteps): a worker names it
	// LoadOrder, its type, but the test environment names a local activity
	// after the function it runs, so only the error itself is compared.
	assert.True(t, strings.HasSuffix(d.Error, " failed: Store: order o1: not found (type: StoreNotFound, not retryable)"), d.Error)
}

// A key rotation can do without its last notification: an abort of that
// parked step does not end the run, which finishes rotated, and its status
// says rotated, not aborted.
func (s *keyRotationSuite) TestAbortedNotificationTheRunWentOnFromIsNotAborted() {
	s.env.OnActivity(knock.Notify, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("knock: 401", "KnockAuthFailed", errors.New("bad key"))).Once()
	s.update(2*time.Hour, contract.DeadLetterDecisionUpdate, "", nil,
		contract.DeadLetterDecision{DeadLetterID: 9, Action: "abort", Operator: "ops"})
	res := s.run(contract.KeyRotationInput{Provider: "resend", Grace: time.Hour, RequestedBy: "schedule"})
	s.Equal("rotated", res.State)
	st := s.status()
	s.Equal("rotated", st.State)
	s.Equal("done", st.Step)
}
