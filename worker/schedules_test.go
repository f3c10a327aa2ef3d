package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
	"github.com/crmflow/crmflow/worker"
)

// TestKeyRotationSchedulesStartTheTrigger: every rotation Schedule starts
// a KeyRotationTrigger (which starts the rotation at its documented ID),
// and one an earlier version made, starting KeyRotation at a
// time-suffixed ID, is brought to the trigger at the next worker start.
func TestKeyRotationSchedulesStartTheTrigger(t *testing.T) {
	c := testenv.TemporalClient(t)
	cfg, err := config.Load(config.LoadOptions{Dev: true})
	require.NoError(t, err)
	require.Contains(t, cfg.RotatedProviders(), contract.KeyRotationCrmflow)
	queue := testenv.TaskQueue(t)
	// The Schedules' IDs are the contract's: no other test of this binary
	// makes them, and this one removes them.
	t.Cleanup(func() {
		for _, provider := range cfg.RotatedProviders() {
			_ = c.ScheduleClient().GetHandle(context.Background(), contract.KeyRotationScheduleID(provider)).Delete(context.Background())
		}
	})

	// What earlier versions created.
	old := contract.KeyRotationScheduleID(contract.KeyRotationCrmflow)
	_, err = c.ScheduleClient().Create(context.Background(), client.ScheduleOptions{
		ID:   old,
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}}},
		Action: &client.ScheduleWorkflowAction{ID: contract.KeyRotationID(contract.KeyRotationCrmflow),
			Workflow: contract.KeyRotationType, TaskQueue: queue,
			Args: []any{contract.KeyRotationInput{Provider: contract.KeyRotationCrmflow, RequestedBy: "schedule"}}},
	})
	require.NoError(t, err)
	require.NoError(t, worker.EnsureKeyRotationSchedules(context.Background(), c, cfg, queue))

	for _, provider := range cfg.RotatedProviders() {
		desc, err := c.ScheduleClient().GetHandle(context.Background(), contract.KeyRotationScheduleID(provider)).Describe(context.Background())
		require.NoError(t, err, provider)
		action, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
		require.True(t, ok, "%s: %T", provider, desc.Schedule.Action)
		require.Equal(t, contract.KeyRotationTriggerType, action.Workflow, provider)
		require.Equal(t, contract.KeyRotationTriggerID(provider), action.ID, provider)
		require.Equal(t, queue, action.TaskQueue)
		require.Len(t, action.Args, 1)
		payload, ok := action.Args[0].(*commonpb.Payload)
		require.True(t, ok, "%T", action.Args[0])
		var in contract.KeyRotationTriggerInput
		require.NoError(t, converter.GetDefaultDataConverter().FromPayload(payload, &in))
		require.Equal(t, contract.KeyRotationTriggerInput{Provider: provider, RequestedBy: "schedule"}, in)
		require.Equal(t, cfg.Rotation.Interval, desc.Schedule.Spec.Intervals[0].Every, "the interval is config's, not the old one's")
	}
}
