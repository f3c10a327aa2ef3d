package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/crmflow/crmflow/workflows"
)

// EnsureInventoryScanSchedule creates the Temporal Schedule that runs the
// inventory scan every interval, or updates it to this spec if it exists, so
// every worker start converges on the configured interval.
func EnsureInventoryScanSchedule(ctx context.Context, c client.Client, taskQueue string, every time.Duration) error {
	if taskQueue == "" {
		taskQueue = workflows.TaskQueue
	}
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}
	action := &client.ScheduleWorkflowAction{
		ID:        workflows.InventoryScanScheduleID,
		Workflow:  workflows.InventoryScanType,
		Args:      []any{workflows.InventoryScanInput{}},
		TaskQueue: taskQueue,
	}
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:     workflows.InventoryScanScheduleID,
		Spec:   spec,
		Action: action,
		// A scan still running when the next is due makes the next one
		// redundant.
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
	})
	if err == nil {
		return nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("create inventory scan schedule: %w", err)
	}
	err = c.ScheduleClient().GetHandle(ctx, workflows.InventoryScanScheduleID).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			in.Description.Schedule.Spec = &spec
			in.Description.Schedule.Action = action
			return &client.ScheduleUpdate{Schedule: &in.Description.Schedule}, nil
		},
	})
	if err != nil {
		return fmt.Errorf("update inventory scan schedule: %w", err)
	}
	return nil
}
