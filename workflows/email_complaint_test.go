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

var complaint = contract.EmailComplaintInput{EmailID: "em_1", Addresses: []string{"ada@example.com"}, EventID: "msg_1",
	Template: "payment-receipt", BusinessKey: "o1", ComplainedAt: "2026-08-21T10:00:00Z"}

// complaintEnv is a test environment for EmailComplaint; first runs before
// the default Knock answer is registered, since the first matching
// expectation wins.
func complaintEnv(t *testing.T, first func(env *testsuite.TestWorkflowEnvironment)) (*testsuite.TestWorkflowEnvironment, *[]activities.NotifyInput) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.SetStartWorkflowOptions(clientStartOptions(contract.EmailComplaintID("em_1")))
	env.RegisterWorkflow(workflows.EmailComplaint)
	env.RegisterActivity(knock)
	env.RegisterActivity(dl)
	if first != nil {
		first(env)
	}
	var notified []activities.NotifyInput
	env.OnActivity(knock.Notify, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.NotifyInput) (*activities.NotifyOutput, error) {
			notified = append(notified, in)
			return &activities.NotifyOutput{WorkflowRunID: "run"}, nil
		}).Maybe()
	t.Cleanup(func() { env.AssertExpectations(t) })
	return env, &notified
}

func TestEmailComplaintAlertsOperatorsOnce(t *testing.T) {
	env, notified := complaintEnv(t, nil)
	env.ExecuteWorkflow(workflows.EmailComplaint, complaint)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res contract.EmailComplaintResult
	require.NoError(t, env.GetWorkflowResult(&res))
	assert.Equal(t, "alerted", res.Status)
	require.Len(t, *notified, 1)
	n := (*notified)[0]
	assert.Equal(t, workflows.KnockEmailComplaint, n.Workflow)
	assert.Equal(t, []string{workflows.OperatorsRecipient}, n.Recipients)
	assert.Equal(t, "email-complaint/em_1/notify-operators", n.IdempotencyKey, "one alert per complained-about email")
	assert.Equal(t, "o1", n.Data["business_key"])
	assert.Equal(t, []any{"ada@example.com"}, n.Data["addresses"])
}

func TestEmailComplaintAlertParksWhenKnockRefuses(t *testing.T) {
	env, notified := complaintEnv(t, func(env *testsuite.TestWorkflowEnvironment) {
		env.OnActivity(knock.Notify, mock.Anything, mock.Anything).Return(nil,
			temporal.NewNonRetryableApplicationError("knock: 401", "KnockAuthFailed", errors.New("bad key"))).Once()
		env.OnActivity(dl.RecordDeadLetter, mock.Anything, mock.Anything).Return(&activities.RecordDeadLetterOutput{DeadLetterID: 4}, nil).Once()
		env.OnActivity(dl.DecideDeadLetter, mock.Anything, mock.Anything).Return(nil).Once()
	})
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(contract.DeadLetterDecisionUpdate, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("rejected: %v", err) }, OnComplete: func(any, error) {},
		}, contract.DeadLetterDecision{DeadLetterID: 4, Action: contract.DecisionSkip})
	}, time.Minute)
	env.ExecuteWorkflow(workflows.EmailComplaint, complaint)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res contract.EmailComplaintResult
	require.NoError(t, env.GetWorkflowResult(&res))
	assert.Equal(t, "skipped", res.Status)
	assert.Empty(t, *notified)
}

func TestEmailComplaintRefusesABadEmailID(t *testing.T) {
	env, _ := complaintEnv(t, nil)
	in := complaint
	in.EmailID = "a/b"
	env.ExecuteWorkflow(workflows.EmailComplaint, in)
	require.True(t, env.IsWorkflowCompleted())
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, env.GetWorkflowError(), &appErr)
	assert.Equal(t, "InvalidInput", appErr.Type())
}
