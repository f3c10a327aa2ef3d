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
//
// The Schedule starts the scan itself: its runs get the scheduled time
// appended to their ID, which is fine since nobody needs to reach a scan
// by ID (it takes no signals or Updates; operators find scans by type),
// and the overlap policy already keeps scans from running at once.
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
//
// Each Schedule starts a KeyRotationTrigger, which starts the rotation at
// its documented ID (key-rotation/<provider>) or joins the one running
// there: a Schedule's own runs get the scheduled time appended to their
// ID, where no operator, API call or signal would find them. Schedules
// made by earlier versions, which started the rotation directly, get the
// trigger as their action at the next worker start (ensureSchedule).
func EnsureKeyRotationSchedules(ctx context.Context, c client.Client, cfg *config.Config, taskQueue string) error {
	if taskQueue == "" {
		taskQueue = contract.TaskQueue
	}
	for _, provider := range cfg.RotatedProviders() {
		id := contract.KeyRotationScheduleID(provider)
		spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: cfg.Rotation.Interval}}}
		action := &client.ScheduleWorkflowAction{
			ID:        contract.KeyRotationTriggerID(provider),
			Workflow:  contract.KeyRotationTriggerType,
			Args:      []any{contract.KeyRotationTriggerInput{Provider: provider, RequestedBy: "schedule"}},
			TaskQueue: taskQueue,
		}
		if err := ensureSchedule(ctx, c, id, spec, action); err != nil {
			return err
		}
	}
	return nil
}

// ensureSchedule creates the schedule, or brings an existing one to spec and
// action, so every worker start converges on the configuration (an action
// changed by a new version included). A run still going when the next is
// due is not started twice (overlap SKIP); a rotation's trigger ends at
// once, and the next one joins a rotation still waiting instead.
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
