package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
	"github.com/crmflow/crmflow/worker"
)

func reconcileConfig(t *testing.T, env ...string) *config.Config {
	t.Helper()
	cfg, err := config.Load(config.LoadOptions{Dev: true, Environ: env})
	require.NoError(t, err)
	return cfg
}

// TestStripeReconcileScheduleFollowsConfig: the worker start creates the
// stripe-reconcile Schedule only with a Stripe key, brings it to the
// configured interval at each start, and deletes it when turned off.
func TestStripeReconcileScheduleFollowsConfig(t *testing.T) {
	ctx := context.Background()
	c := testenv.TemporalClient(t)
	queue := testenv.TaskQueue(t)
	handle := c.ScheduleClient().GetHandle(ctx, contract.StripeReconcileScheduleID)
	t.Cleanup(func() {
		// EnsureSchedules made the others too.
		ids := []string{contract.StripeReconcileScheduleID, contract.InventoryScanScheduleID}
		for _, p := range reconcileConfig(t).RotatedProviders() {
			ids = append(ids, contract.KeyRotationScheduleID(p))
		}
		for _, id := range ids {
			_ = c.ScheduleClient().GetHandle(context.Background(), id).Delete(context.Background())
		}
	})
	gone := func() bool {
		_, err := handle.Describe(ctx)
		var nf *serviceerror.NotFound
		return errors.As(err, &nf)
	}

	// Console mode (no Stripe key): no Schedule, whatever the interval.
	require.NoError(t, worker.EnsureSchedules(ctx, c, reconcileConfig(t), queue))
	assert.True(t, gone(), "never in console mode")

	keyed := "CRMFLOW_STRIPE_SECRET_KEY=sk_test_123"
	require.NoError(t, worker.EnsureSchedules(ctx, c, reconcileConfig(t, keyed), queue))
	desc, err := handle.Describe(ctx)
	require.NoError(t, err)
	action, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.True(t, ok)
	assert.Equal(t, contract.StripeReconcileType, workflowName(action.Workflow))
	assert.Equal(t, queue, action.TaskQueue)
	assert.Equal(t, "stripe-reconcile", action.ID)
	require.Len(t, desc.Schedule.Spec.Intervals, 1)
	assert.Equal(t, 15*time.Minute, desc.Schedule.Spec.Intervals[0].Every, "every 15 minutes by default")

	require.NoError(t, worker.EnsureStripeReconcileSchedule(ctx, c, reconcileConfig(t, keyed, "CRMFLOW_STRIPE_RECONCILE_EVERY=1h"), queue))
	desc, err = handle.Describe(ctx)
	require.NoError(t, err)
	assert.Equal(t, time.Hour, desc.Schedule.Spec.Intervals[0].Every, "a restart brings it to the configured interval")

	off := reconcileConfig(t, keyed, "CRMFLOW_STRIPE_RECONCILE_EVERY=0")
	require.NoError(t, worker.EnsureStripeReconcileSchedule(ctx, c, off, queue))
	assert.True(t, gone(), "0 deletes it")
	require.NoError(t, worker.EnsureStripeReconcileSchedule(ctx, c, off, queue), "and deleting what is gone is fine")
}

// workflowName is the type name a Schedule action names.
func workflowName(w any) string {
	if s, ok := w.(string); ok {
		return s
	}
	return ""
}
