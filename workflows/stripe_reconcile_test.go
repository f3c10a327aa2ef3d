package workflows_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/workflows"
)

var reconcile *activities.ReconcileActivities

func runReconcile(t *testing.T, in contract.StripeReconcileInput, answer ...any) (*testsuite.TestWorkflowEnvironment, []string) {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(workflows.StripeReconcile)
	env.RegisterActivity(reconcile)
	var queues []string
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		queues = append(queues, info.TaskQueue)
	})
	env.OnActivity(reconcile.ReconcileStripeEvents, mock.Anything,
		activities.ReconcileStripeEventsInput{Overlap: in.Overlap, Settle: in.Settle}).Return(answer...).Once()
	env.ExecuteWorkflow(workflows.StripeReconcile, in)
	require.True(t, env.IsWorkflowCompleted())
	return env, queues
}

func TestStripeReconcileReportsWhatTheListingStored(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	out := &activities.ReconcileStripeEventsOutput{From: t0.Add(-time.Hour), To: t0, Pages: 2, Listed: 150, Recovered: 3,
		Rejected: []string{"evt_bad"}, Checkpoint: t0}
	env, queues := runReconcile(t, contract.StripeReconcileInput{Overlap: time.Minute}, out, nil)
	require.NoError(t, env.GetWorkflowError())
	var res contract.StripeReconcileResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, contract.StripeReconcileResult{From: out.From, To: t0, Pages: 2, Listed: 150, Recovered: 3,
		Rejected: []string{"evt_bad"}, Checkpoint: t0}, res)
	require.Equal(t, []string{"default-test-taskqueue-stripe"}, queues, "the listing runs on Stripe's queue, under its limit and breaker")

	v, err := env.QueryWorkflow(contract.StatusQuery)
	require.NoError(t, err)
	var st contract.Status
	require.NoError(t, v.Get(&st))
	require.Equal(t, contract.Status{Step: "done", State: "done", Detail: "listed 150 events in 2 pages, recovered 3"}, st)
}

func TestStripeReconcileFailsRatherThanParks(t *testing.T) {
	env, _ := runReconcile(t, contract.StripeReconcileInput{}, func(context.Context, activities.ReconcileStripeEventsInput) (*activities.ReconcileStripeEventsOutput, error) {
		return nil, temporal.NewNonRetryableApplicationError("revoked", "StripeAuthFailed", nil)
	})
	err := env.GetWorkflowError()
	require.Error(t, err, "the next scheduled run starts over from the checkpoint")
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, "StripeAuthFailed", appErr.Type())
}
