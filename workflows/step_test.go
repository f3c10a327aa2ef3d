package workflows

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/contract"
)

// TestStepRecorderNamesEveryStep shows the recorder follows every step,
// passed through or shown, while the status follows it too; a context
// without a recorder reads "".
func TestStepRecorderNamesEveryStep(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.ExecuteWorkflow(func(ctx workflow.Context) ([]string, error) {
		seen := []string{CurrentStep(ctx)}
		ctx = WithStepRecorder(ctx)
		status := contract.Status{}
		st := steps{status: &status}
		st.enter(ctx, "load-order")
		// A context derived from the run's sees the same recorder.
		child := workflow.WithValue(ctx, struct{}{}, 1)
		seen = append(seen, CurrentStep(child), status.Step)
		st.show(ctx, "await-payment")
		seen = append(seen, CurrentStep(ctx), status.Step)
		st.parked(ctx, "notify")
		seen = append(seen, CurrentStep(ctx), status.Step)
		return seen, nil
	})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var seen []string
	require.NoError(t, env.GetWorkflowResult(&seen))
	require.Equal(t, []string{"", "load-order", "load-order", "await-payment", "await-payment", "notify", "notify"}, seen)
}
