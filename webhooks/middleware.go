package webhooks

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"

	"github.com/crmflow/crmflow/internal/appmetrics"
)

// PanicReporter sends a handler's panic to error tracking (Sentry). It gets
// the route pattern and the panic value, never the request: its headers
// carry bearer tokens and signatures, its body customers' data.
type PanicReporter interface {
	ReportPanic(route string, value any)
}

// reportPanics reports a handler's panic, then lets it go on to
// recoverPanics, which logs it and answers 500. Without a reporter it adds
// nothing.
func (s *Server) reportPanics(next http.Handler) http.Handler {
	rep := s.deps.Panics
	if rep == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				// ErrAbortHandler is how a handler hangs up on purpose.
				if v != http.ErrAbortHandler {
					rep.ReportPanic(routeOf(r), v)
				}
				panic(v)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// routeOf is the request's route pattern (never the raw path, which holds
// IDs), as the mux matched it.
func routeOf(r *http.Request) string {
	if r.Pattern == "" {
		return "unmatched"
	}
	return r.Pattern
}

// traceRequests gives every request but the probes and scrapes a server
// span named by its route, continuing the caller's trace from a W3C
// traceparent header. The span's context reaches Temporal through the
// request's context (the SDK's tracing interceptor on the client), so a
// start-API call, its workflow and its activities share one trace. Without
// a tracer provider it adds nothing.
func (s *Server) traceRequests(next http.Handler) http.Handler {
	tp := s.deps.Tracer
	if tp == nil {
		return next
	}
	return otelhttp.NewHandler(next, "crmflow.http",
		otelhttp.WithTracerProvider(tp),
		// The process-wide OpenTelemetry globals stay untouched: the
		// propagator is explicit and no HTTP metrics are recorded through
		// OpenTelemetry (Prometheus has them).
		otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})),
		otelhttp.WithMeterProvider(noop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return routeOf(r) }),
		otelhttp.WithFilter(func(r *http.Request) bool {
			switch r.URL.Path {
			case "/healthz", "/readyz", "/metrics":
				return false
			}
			return true
		}),
	)
}

// registerAppMetrics adds the metrics of crmflow as a whole that the HTTP
// server exposes: the runs parked for an operator, counted in PostgreSQL at
// scrape time (a server with no store, a worker replica's, leaves it out).
func (s *Server) registerAppMetrics() {
	if s.deps.Store != nil {
		s.deps.Registry.MustRegister(appmetrics.NewParkedCollector(s.deps.Store.Pool()))
	}
}
