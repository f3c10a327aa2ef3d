package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
)

// EnsureSchedules creates (or updates) every Schedule a worker runs under
// cfg: the inventory scan, the data retention, the Stripe reconciliation
// (when Stripe reconciles) and one key rotation per rotated key.
func EnsureSchedules(ctx context.Context, c client.Client, cfg *config.Config, taskQueue string) error {
	if err := EnsureInventoryScanSchedule(ctx, c, taskQueue, cfg.Inventory.ScanInterval); err != nil {
		return err
	}
	if err := EnsureDataRetentionSchedule(ctx, c, taskQueue, cfg.Retention); err != nil {
		return err
	}
	if err := EnsureStripeReconcileSchedule(ctx, c, cfg, taskQueue); err != nil {
		return err
	}
	return EnsureKeyRotationSchedules(ctx, c, cfg, taskQueue)
}

// EnsureInventoryScanSchedule creates the Temporal Schedule that runs the
// inventory scan every interval, or updates it to this spec if it exists, so
// every worker start converges on the configured interval.
func EnsureInventoryScanSchedule(ctx context.Context, c client.Client, taskQueue string, every time.Duration) error {
	if taskQueue == "" {
		taskQueue = contract.TaskQueue
	}
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}
	action := &client.ScheduleWorkflowAction{
		ID:        contract.InventoryScanScheduleID,
		Workflow:  contract.InventoryScanType,
		Args:      []any{contract.InventoryScanInput{}},
		TaskQueue: taskQueue,
	}
	return ensureSchedule(ctx, c, contract.InventoryScanScheduleID, spec, action)
}

// EnsureKeyRotationSchedules creates (or updates) one Schedule per provider
// that has a key: crmflow's own start-API token always, the others when
// configured. Providers without a key API get their operators asked.
func EnsureKeyRotationSchedules(ctx context.Context, c client.Client, cfg *config.Config, taskQueue string) error {
	if taskQueue == "" {
		taskQueue = contract.TaskQueue
	}
	for _, provider := range cfg.RotatedProviders() {
		id := contract.KeyRotationScheduleID(provider)
		spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: cfg.Rotation.Interval}}}
		action := &client.ScheduleWorkflowAction{
			ID:        contract.KeyRotationID(provider),
			Workflow:  contract.KeyRotationType,
			Args:      []any{contract.KeyRotationInput{Provider: provider, RequestedBy: "schedule"}},
			TaskQueue: taskQueue,
		}
		if err := ensureSchedule(ctx, c, id, spec, action); err != nil {
			return err
		}
	}
	return nil
}

// ensureSchedule creates the schedule, or brings an existing one to spec and
// action, so every worker start converges on the configuration. A rotation
// still running when the next is due is not started twice (overlap SKIP).
func ensureSchedule(ctx context.Context, c client.Client, id string, spec client.ScheduleSpec, action *client.ScheduleWorkflowAction) error {
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID: id, Spec: spec, Action: action, Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
	})
	if err == nil {
		return nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("create schedule %s: %w", id, err)
	}
	err = c.ScheduleClient().GetHandle(ctx, id).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			in.Description.Schedule.Spec = &spec
			in.Description.Schedule.Action = action
			return &client.ScheduleUpdate{Schedule: &in.Description.Schedule}, nil
		},
	})
	if err != nil {
		return fmt.Errorf("update schedule %s: %w", id, err)
	}
	return nil
}
