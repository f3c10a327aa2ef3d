package worker

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
)

// WithReconciliation gives the Stripe reconciliation where to store the
// events it finds (the inbox, adapted by the process's wiring: worker may
// not import it) and what counts them (crmflow_reconcile_recovered_total).
// Without it the reconciliation activity fails as not configured.
func WithReconciliation(sink activities.RecoveredEventSink, counter activities.RecoveredCounter) ActivityOption {
	return func(o *activityOptions) { o.recoveredSink, o.recovered = sink, counter }
}

// reconcileActivities builds the reconciliation with the Stripe activities'
// client, so it reads Stripe's key from the credential store at each call
// like every Stripe call; a console-mode Stripe has nothing to list.
func reconcileActivities(st *store.Store, stripe *activities.StripeActivities, o activityOptions) *activities.ReconcileActivities {
	r := &activities.ReconcileActivities{Checkpoints: st, Sink: o.recoveredSink, Counter: o.recovered}
	if stripe != nil && !stripe.Console {
		r.Stripe = activities.StripeEventsAPI{Stripe: stripe}
	}
	return r
}

// EnsureStripeReconcileSchedule creates (or updates) the stripe-reconcile
// Schedule when cfg reconciles Stripe: a Stripe secret key is configured
// and stripe.reconcile_every is not 0. Otherwise (console mode, or turned
// off) it deletes the Schedule if an earlier start created it: a paused
// Schedule would look like an operator's decision, and nothing is lost,
// since the progress lives in PostgreSQL (reconcile_checkpoints) and the
// next Schedule continues from it.
func EnsureStripeReconcileSchedule(ctx context.Context, c client.Client, cfg *config.Config, taskQueue string) error {
	if !cfg.ReconcilesStripe() {
		return deleteSchedule(ctx, c, contract.StripeReconcileScheduleID)
	}
	if taskQueue == "" {
		taskQueue = contract.TaskQueue
	}
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: cfg.Stripe.ReconcileEvery}}}
	action := &client.ScheduleWorkflowAction{
		ID:        contract.StripeReconcileScheduleID,
		Workflow:  contract.StripeReconcileType,
		Args:      []any{contract.StripeReconcileInput{}},
		TaskQueue: taskQueue,
	}
	return ensureSchedule(ctx, c, contract.StripeReconcileScheduleID, spec, action)
}

// deleteSchedule removes the Schedule id; one that does not exist is fine.
func deleteSchedule(ctx context.Context, c client.Client, id string) error {
	err := c.ScheduleClient().GetHandle(ctx, id).Delete(ctx)
	var missing *serviceerror.NotFound
	if err != nil && !errors.As(err, &missing) {
		return fmt.Errorf("delete schedule %s: %w", id, err)
	}
	return nil
}
