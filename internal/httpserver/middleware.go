package httpserver

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// PanicReporter sends a handler's panic to error tracking (Sentry). It gets
// the route pattern and the panic value, never the request: its headers
// carry bearer tokens and signatures, its body customers' data.
type PanicReporter interface {
	ReportPanic(route string, value any)
}

// Options are the cross-cutting concerns Wrap adds around every route.
type Options struct {
	Logger *slog.Logger
	// Registry receives the per-route HTTP metrics.
	Registry prometheus.Registerer
	// Tracer, when set, traces every request but the probes (OpenTelemetry).
	// Nil adds nothing to a request.
	Tracer trace.TracerProvider
	// Panics, when set, reports handler panics (Sentry).
	Panics PanicReporter
}

// Wrap returns mux with tracing, metrics, panic recovery and panic reports,
// outermost first.
func Wrap(mux http.Handler, opts Options) http.Handler {
	m := newMetrics(opts.Registry)
	return traced(opts.Tracer, m.wrap(recoverPanics(opts.Logger, reportPanics(opts.Panics, mux))))
}

// reportPanics reports a handler's panic, then lets it go on to
// recoverPanics, which logs it and answers 500. Without a reporter it adds
// nothing.
func reportPanics(rep PanicReporter, next http.Handler) http.Handler {
	if rep == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				// ErrAbortHandler is how a handler hangs up on purpose.
				if v != http.ErrAbortHandler {
					rep.ReportPanic(RouteOf(r), v)
				}
				panic(v)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func recoverPanics(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				logger.Error("Handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v)
				WriteError(w, http.StatusInternalServerError, "internal", "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// RouteOf is the request's route pattern (never the raw path, which holds
// IDs), as the mux matched it.
func RouteOf(r *http.Request) string {
	if r.Pattern == "" {
		return "unmatched"
	}
	return r.Pattern
}

// traced gives every request but the probes and scrapes a server span
// named by its route, continuing the caller's trace from a W3C traceparent
// header. The span's context reaches Temporal through the request's context
// (the SDK's tracing interceptor on the client), so a start-API call, its
// workflow and its activities share one trace.
func traced(tp trace.TracerProvider, next http.Handler) http.Handler {
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
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return RouteOf(r) }),
		otelhttp.WithFilter(func(r *http.Request) bool {
			switch r.URL.Path {
			case "/healthz", "/readyz", "/metrics":
				return false
			}
			return true
		}),
	)
}

// metrics counts requests by route pattern (never the raw path, which
// would make a label per order ID) and status code.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmflow_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crmflow_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

func (m *metrics) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		m.requests.WithLabelValues(RouteOf(r), r.Method, strconv.Itoa(sw.status)).Inc()
		m.duration.WithLabelValues(RouteOf(r)).Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Bounded runs h with timeout on the request's context. A database or
// Temporal that hangs, rather than refusing connections, would otherwise
// hold the request until the caller gives up; with the bound the call fails
// and the handler answers 503, so the caller retries.
func Bounded(timeout time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}
