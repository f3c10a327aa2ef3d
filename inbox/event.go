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
	// Payload is the body as it was received.
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
}

// Route is where an event goes and what it carries there, decided once at
// the edge and stored with the row (route column). Exactly one field is set
// for a routed event.
type Route struct {
	// Payment is a PaymentIntent's outcome for an order's confirmation.
	Payment *PaymentRoute `json:"payment,omitempty"`
	// Refund is a refunded charge for a referral's reward.
	Refund *RefundRoute `json:"refund,omitempty"`
	// Clerk is a Clerk user event for the user's alias workflows.
	Clerk *ClerkRoute `json:"clerk,omitempty"`
	// Stock is a stock level for a SKU's low-stock entity.
	Stock *StockRoute `json:"stock,omitempty"`
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
