package inbox

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/propagation"
)

// Sources of inbox rows, as the provider column names them.
const (
	SourceStripe = "stripe"
	SourceClerk  = "clerk"
	// SourceStock is a stock level posted to the start API.
	SourceStock = "inventory"
)

// Statuses of an inbox row: where its event ended, or pending while it
// waits for hand-off (the webhook_inbox.status column).
const (
	StatusPending = "pending"
	// StatusDelivered means Temporal has the event.
	StatusDelivered = "delivered"
	// StatusIgnored is an event type or target crmflow does not act on.
	StatusIgnored = "ignored"
	// StatusUnroutable is an event whose target does not exist (a payment
	// for an unknown order); replaying it once the target exists delivers it.
	StatusUnroutable = "unroutable"
	// StatusLate is an event that reached a run which had finished; the
	// note holds the run's outcome.
	StatusLate = "late"
	// StatusCoalesced is a stock level folded into a later one.
	StatusCoalesced = "coalesced"
	// StatusDropped is an event no retry can hand off; the note says why.
	StatusDropped = "dropped"
)

// Statuses lists every status, pending first.
var Statuses = []string{StatusPending, StatusDelivered, StatusIgnored, StatusUnroutable, StatusLate, StatusCoalesced,
	StatusDropped}

// Event is one inbox row: an accepted event waiting for, or past, its
// hand-off to Temporal.
type Event struct {
	ID        int64
	Source    string
	EventID   string
	EventType string
	// Target orders hand-off: rows of one target go in commit order, one
	// at a time. It is the workflow ID the event is for (or a key standing
	// for several, such as a Clerk user's); "" for an ignored event.
	Target string
	// Route is what the edge worked out about the event; the dispatcher
	// delivers from it without parsing Payload again.
	Route Route
	// Ignored, when set, stores the event already done with this reason.
	Ignored string
	// Payload is the body as it was received: the bytes its signature
	// covered.
	Payload    []byte
	ReceivedAt time.Time
	// Attempts counts hand-off attempts, including the current one.
	Attempts int
	// DueIn holds a new row back from hand-off for a while, so that more
	// updates of the same target can gather and coalesce (stock levels).
	DueIn time.Duration
	// TraceParent is the W3C traceparent of the delivering request, so the
	// hand-off joins its trace; "" when it was not traced.
	TraceParent string
	// Recovered marks an event the gap-fill reconciliation fetched from
	// the provider because its webhook never delivered it.
	Recovered bool

	// Read back from the row, never written by Insert.

	// Status is where the event ended (Status* constants).
	Status string
	// Note is why the last hand-off failed (pending) or how the event
	// ended (ignored, unroutable, late, dropped, coalesced).
	Note string
	// DoneAt is when the row left pending; nil while pending.
	DoneAt *time.Time

	// orderFound is set by the dispatcher when the claim's look-up found
	// the order a payment is for, so its hand-off need not look again.
	orderFound bool
	// claimedAt is when the dispatcher claimed the row, on its own clock.
	claimedAt time.Time
	// followed is set by Claim when a later row of the same target was
	// waiting: it becomes claimable once this row is done, so finishing
	// this row must wake the claimer.
	followed bool
}

// Route is where an event goes and what it carries there, decided once at
// the edge and stored with the row (route column). Exactly one field is set
// for a routed event.
type Route struct {
	// Payment is a PaymentIntent's outcome for an order's confirmation.
	Payment *PaymentRoute `json:"payment,omitempty"`
	// Refund is a refunded charge for its order and the order's referral.
	Refund *RefundRoute `json:"refund,omitempty"`
	// Clerk is a Clerk user event for the user's alias workflows.
	Clerk *ClerkRoute `json:"clerk,omitempty"`
	// Stock is a stock level for a SKU's low-stock entity.
	Stock *StockRoute `json:"stock,omitempty"`
	// Email is a Resend event about one email crmflow sent.
	Email *EmailRoute `json:"email,omitempty"`
}

// traceContext carries a trace across the inbox: the edge stores the
// delivering request's W3C traceparent with the event, and the dispatcher,
// later and perhaps on another replica, hands the event to Temporal within
// that trace. Without tracing both ends are no-ops.
var traceContext propagation.TraceContext

// TraceParentOf is ctx's traceparent, "" when ctx carries no span.
func TraceParentOf(ctx context.Context) string {
	carrier := propagation.MapCarrier{}
	traceContext.Inject(ctx, carrier)
	return carrier.Get("traceparent")
}

// withTraceParent continues the trace of traceParent in ctx.
func withTraceParent(ctx context.Context, traceParent string) context.Context {
	if traceParent == "" {
		return ctx
	}
	return traceContext.Extract(ctx, propagation.MapCarrier{"traceparent": traceParent})
}
