package contract

import "time"

// StripeReconcileScheduleID is the Temporal Schedule that runs
// StripeReconcile: gap-fill of Stripe events whose webhook never arrived.
// Temporal appends the start time to each scheduled run's workflow ID.
const StripeReconcileScheduleID = "stripe-reconcile"

// StripeReconcileInput configures one reconciliation run; the zero value is
// what the Schedule starts and means every default.
type StripeReconcileInput struct {
	// Overlap is how far before the last checkpoint the listing starts
	// again, covering events Stripe made visible late or stamped by a clock
	// that differs from crmflow's; zero means the default (10 minutes).
	Overlap time.Duration `json:"overlap,omitempty"`
	// Settle leaves out events younger than this, whose webhook is most
	// likely still on its way; zero means the default (5 minutes).
	Settle time.Duration `json:"settle,omitempty"`
}

// StripeReconcileResult is what one reconciliation run found.
type StripeReconcileResult struct {
	// From and To bound the events listed: created in [From, To).
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Clamped is true when the checkpoint lay beyond Stripe's 30-day event
	// horizon: events between it and From could not be listed any more.
	Clamped bool `json:"clamped,omitempty"`
	// Pages and Listed count the list calls made and the events they
	// returned.
	Pages  int `json:"pages"`
	Listed int `json:"listed"`
	// Recovered counts events the inbox did not have: their webhook never
	// arrived. They are stored with recovered=true and handed off as any
	// webhook event.
	Recovered int `json:"recovered"`
	// Rejected lists events the inbox refused for good (not a usable
	// event); they are skipped, not retried.
	Rejected []string `json:"rejected,omitempty"`
	// Checkpoint is where the next run continues from (less the overlap).
	Checkpoint time.Time `json:"checkpoint"`
}
