package workflows_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/workflows"
)

var rotationTrigger *activities.RotationTriggerActivities

func newTriggerEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(workflows.KeyRotationTrigger)
	env.RegisterActivity(rotationTrigger)
	t.Cleanup(func() { env.AssertExpectations(t) })
	return env
}

// TestTriggerStartsTheRotationAtItsID: the trigger asks for the rotation
// at key-rotation/<provider> and answers the run it started or joined.
func TestTriggerStartsTheRotationAtItsID(t *testing.T) {
	env := newTriggerEnv(t)
	env.OnActivity(rotationTrigger.StartOrJoinKeyRotation, mock.Anything,
		activities.StartKeyRotationInput{Provider: "stripe", RequestedBy: "schedule"}).Return(
		&activities.StartKeyRotationOutput{WorkflowID: "key-rotation/stripe", RunID: "run-1"}, nil).Once()
	env.ExecuteWorkflow(workflows.KeyRotationTrigger, contract.KeyRotationTriggerInput{Provider: "stripe", RequestedBy: "schedule"})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res contract.KeyRotationTriggerResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, contract.KeyRotationTriggerResult{WorkflowID: "key-rotation/stripe", RunID: "run-1"}, res)
	v, err := env.QueryWorkflow(contract.StatusQuery)
	require.NoError(t, err)
	var st contract.Status
	require.NoError(t, v.Get(&st))
	require.Equal(t, "started", st.State)
	require.Contains(t, st.Detail, "run-1")
}

// TestTriggerRefusesAProviderWithoutRotation: nothing is started for a
// provider no rotation mode covers.
func TestTriggerRefusesAProviderWithoutRotation(t *testing.T) {
	for _, provider := range []string{"nope", "a b"} {
		env := newTriggerEnv(t)
		env.ExecuteWorkflow(workflows.KeyRotationTrigger, contract.KeyRotationTriggerInput{Provider: provider})
		require.True(t, env.IsWorkflowCompleted())
		var appErr *temporal.ApplicationError
		require.True(t, errors.As(env.GetWorkflowError(), &appErr), provider)
		require.Equal(t, "InvalidInput", appErr.Type())
	}
}

// TestTriggerFailsWhenTheStartFails: a start that cannot be made fails the
// trigger, and the next scheduled run tries again.
func TestTriggerFailsWhenTheStartFails(t *testing.T) {
	env := newTriggerEnv(t)
	env.OnActivity(rotationTrigger.StartOrJoinKeyRotation, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("Temporal: down", "TemporalUnavailable", nil)).Once()
	env.ExecuteWorkflow(workflows.KeyRotationTrigger, contract.KeyRotationTriggerInput{Provider: "crmflow"})
	require.True(t, env.IsWorkflowCompleted())
	require.ErrorContains(t, env.GetWorkflowError(), "Temporal: down")
}
