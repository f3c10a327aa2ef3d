package workflows_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/workflows"
)

func refundEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *[]activities.NotifyInput) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.SetStartWorkflowOptions(clientStartOptions(contract.OrderRefundID("evt_refund")))
	env.RegisterWorkflow(workflows.OrderRefund)
	env.RegisterActivity(orders)
	env.RegisterActivity(knock)
	env.RegisterActivity(dl)
	var notified []activities.NotifyInput
	env.OnActivity(knock.Notify, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.NotifyInput) (*activities.NotifyOutput, error) {
			notified = append(notified, in)
			return &activities.NotifyOutput{WorkflowRunID: "run"}, nil
		}).Maybe()
	t.Cleanup(func() { env.AssertExpectations(t) })
	return env, &notified
}

var refundInput = contract.OrderRefundInput{OrderID: "o1", Refund: contract.RefundEvent{
	EventID: "evt_refund", ChargeID: "ch_1", AmountRefundedCents: 1000, Currency: "eur"}}

func TestOrderRefundMarksTheOrderAndTellsTheCustomer(t *testing.T) {
	env, notified := refundEnv(t)
	env.OnActivity(orders.MarkRefunded, mock.Anything, activities.MarkRefundedInput{OrderID: "o1", AmountRefundedCents: 1000}).
		Return(&activities.MarkRefundedOutput{CustomerID: "cus_1", AmountCents: 4200, Currency: "eur",
			Status: "partially_refunded", RefundedCents: 1000}, nil).Once()
	env.ExecuteWorkflow(workflows.OrderRefund, refundInput)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res contract.OrderRefundResult
	require.NoError(t, env.GetWorkflowResult(&res))
	assert.Equal(t, contract.OrderRefundResult{Status: "partially_refunded", RefundedCents: 1000}, res)
	require.Len(t, *notified, 1)
	n := (*notified)[0]
	assert.Equal(t, workflows.KnockOrderRefunded, n.Workflow)
	assert.Equal(t, []string{"cus_1"}, n.Recipients)
	assert.Equal(t, "order-refund/evt_refund/notify-refunded", n.IdempotencyKey, "one notice per refund event")
	assert.EqualValues(t, 1000, n.Data["refunded_cents"])
}

func TestOrderRefundOfAPendingOrderParks(t *testing.T) {
	env, notified := refundEnv(t)
	env.OnActivity(orders.MarkRefunded, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("order o1 is still pending", "StoreConflict", errors.New("conflict"))).Once()
	env.OnActivity(dl.RecordDeadLetter, mock.Anything, mock.Anything).Return(&activities.RecordDeadLetterOutput{DeadLetterID: 3}, nil).Once()
	env.OnActivity(dl.DecideDeadLetter, mock.Anything, mock.Anything).Return(nil).Once()
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(contract.DeadLetterDecisionUpdate, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("rejected: %v", err) }, OnComplete: func(any, error) {},
		}, contract.DeadLetterDecision{DeadLetterID: 3, Action: contract.DecisionSkip})
	}, time.Minute)
	env.ExecuteWorkflow(workflows.OrderRefund, refundInput)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res contract.OrderRefundResult
	require.NoError(t, env.GetWorkflowResult(&res))
	assert.Equal(t, "skipped", res.Status)
	assert.Empty(t, *notified)
}
