package webhooks

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
)

// traceContext carries a trace across the inbox: the webhook handler stores
// the delivering request's W3C traceparent with the event, and the
// dispatcher, later and perhaps on another replica, hands the event to
// Temporal within that trace. Without tracing both ends are no-ops.
var traceContext propagation.TraceContext

// traceParentOf is ctx's traceparent, "" when ctx carries no span.
func traceParentOf(ctx context.Context) string {
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
