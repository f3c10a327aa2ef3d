package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/providers"
)

var rotationTrigger *activities.RotationTriggerActivities

// triggerOptions: starting a workflow is one call to Temporal, which the
// worker itself depends on; an outage is waited out for a while, then the
// trigger fails and the next scheduled run tries again.
var triggerOptions = activityPolicy{options: workflow.ActivityOptions{
	StartToCloseTimeout:    30 * time.Second,
	ScheduleToCloseTimeout: time.Hour,
	RetryPolicy:            backoff(0),
}}

// KeyRotationTrigger is what a key-rotation Schedule starts, instead of
// the rotation itself: Temporal appends the scheduled time to the ID of
// every run a Schedule starts, and a rotation must run at
// contract.KeyRotationID, where operators submit keys and confirm
// revocations, the edge signals it, and an on-demand start joins it. The
// trigger starts the rotation there, or joins the one running (an
// operator's, or an earlier Schedule's still waiting), and ends at once.
func KeyRotationTrigger(ctx workflow.Context, in contract.KeyRotationTriggerInput) (*contract.KeyRotationTriggerResult, error) {
	if err := contract.ValidateKey("provider", in.Provider); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", nil)
	}
	if p, ok := providers.Lookup(in.Provider); !ok || !p.Rotated() {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("provider %q has no key rotation", in.Provider), "InvalidInput", nil)
	}
	status := contract.Status{Step: "start-rotation", State: "starting"}
	if err := workflow.SetQueryHandler(ctx, contract.StatusQuery, func() (contract.Status, error) { return status, nil }); err != nil {
		return nil, fmt.Errorf("register %s: %w", contract.StatusQuery, err)
	}
	upsert(ctx, contract.ProviderKey.ValueSet(in.Provider))

	start := activities.StartKeyRotationInput{Provider: in.Provider, RequestedBy: in.RequestedBy}
	var out activities.StartKeyRotationOutput
	err := workflow.ExecuteActivity(triggerOptions.context(ctx), rotationTrigger.StartOrJoinKeyRotation, start).Get(ctx, &out)
	awaitHandlers(ctx)
	if err != nil {
		status.State, status.Detail = "failed", err.Error()
		return nil, err
	}
	status.Step, status.State = "done", "started"
	status.Detail = fmt.Sprintf("rotation %s runs as %s", out.WorkflowID, out.RunID)
	return &contract.KeyRotationTriggerResult{WorkflowID: out.WorkflowID, RunID: out.RunID}, nil
}
