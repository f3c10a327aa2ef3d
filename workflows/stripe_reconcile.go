package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
)

var reconcile *activities.ReconcileActivities

// reconcileOptions run the listing on Stripe's queue, under its rate limit
// and breaker. It heartbeats per page, so a retried attempt resumes after
// the last page stored. Retries back off as for any Stripe call (a 429 is
// retryable); after an hour the run fails and the next scheduled run starts
// over from the checkpoint, which only moved if a run succeeded.
var reconcileOptions = activityPolicy{provider: contract.ProviderStripe, options: workflow.ActivityOptions{
	StartToCloseTimeout:    10 * time.Minute,
	HeartbeatTimeout:       time.Minute,
	ScheduleToCloseTimeout: time.Hour,
	RetryPolicy:            backoff(0),
}}

// StripeReconcile fills the gaps Stripe's webhooks leave: run by the
// stripe-reconcile Schedule, it lists the handled Stripe events created
// since the last checkpoint and stores in the inbox those whose webhook
// never arrived (an endpoint down, disabled or misconfigured for longer than
// Stripe retries, three days), which the dispatcher then hands off like any
// webhook event.
//
// A failed step fails the run instead of parking it, as InventoryScan does:
// nothing is lost, since the checkpoint moves only after a run stored every
// event it listed, and the next scheduled run lists the same window again;
// a parked run would hold up every later one behind the Schedule's overlap
// policy.
func StripeReconcile(ctx workflow.Context, in contract.StripeReconcileInput) (*contract.StripeReconcileResult, error) {
	status := contract.Status{Step: "list-events", State: "reconciling"}
	if err := workflow.SetQueryHandler(ctx, contract.StatusQuery, func() (contract.Status, error) { return status, nil }); err != nil {
		return nil, err
	}
	RecordStep(ctx, status.Step)
	upsert(ctx, contract.StepKey.ValueSet(status.Step), contract.ProviderKey.ValueSet(contract.ProviderStripe))
	var out activities.ReconcileStripeEventsOutput
	err := workflow.ExecuteActivity(reconcileOptions.context(ctx), reconcile.ReconcileStripeEvents,
		activities.ReconcileStripeEventsInput{Overlap: in.Overlap, Settle: in.Settle}).Get(ctx, &out)
	if err != nil {
		status.State, status.Detail = "failed", err.Error()
		return nil, err
	}
	status.Step, status.State = "done", "done"
	status.Detail = fmt.Sprintf("listed %d events in %d pages, recovered %d", out.Listed, out.Pages, out.Recovered)
	RecordStep(ctx, status.Step)
	upsert(ctx, contract.StepKey.ValueSet(status.Step))
	return &contract.StripeReconcileResult{
		From: out.From, To: out.To, Clamped: out.Clamped, Pages: out.Pages, Listed: out.Listed,
		Recovered: out.Recovered, Rejected: out.Rejected, Checkpoint: out.Checkpoint,
	}, nil
}
