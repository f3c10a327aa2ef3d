package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"

	"github.com/crmflow/crmflow/config"
)

// Tracing is the process's OpenTelemetry tracing: a tracer provider and the
// Temporal SDK's tracing interceptor built on it. HTTP requests (webhooks
// Deps.Tracer), Temporal client calls, workflows and activities then share
// one trace: the SDK carries the span context in Temporal headers.
//
// A nil *Tracing is tracing off: no tracer provider exists, nothing is
// wrapped, and every method is safe to call.
type Tracing struct {
	provider trace.TracerProvider
	temporal interceptor.Interceptor
	shutdown func(context.Context) error
}

// NewTracing builds tracing from cfg, or returns nil when cfg.Exporter is
// empty. release names the service version in every span's resource.
func NewTracing(ctx context.Context, cfg config.TracingConfig, release string) (*Tracing, error) {
	var exp sdktrace.SpanExporter
	switch cfg.Exporter {
	case config.TracingOff:
		return nil, nil
	case config.TracingOTLP:
		// The URL's scheme decides TLS: http:// for a collector beside the
		// process, https:// across a network.
		e, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
		if err != nil {
			return nil, fmt.Errorf("otlp trace exporter for %s: %w", cfg.Endpoint, err)
		}
		exp = e
	case config.TracingStdout:
		exp = newLineExporter(os.Stdout)
	default:
		return nil, fmt.Errorf("tracing exporter %q is not otlp or stdout", cfg.Exporter)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", "crmflow")}
	if release != "" {
		attrs = append(attrs, attribute.String("service.version", release))
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
		// A caller's sampling decision (traceparent) is kept; new traces
		// are sampled at the configured ratio.
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	)
	t, err := NewTracingWithProvider(tp)
	if err != nil {
		return nil, errors.Join(err, tp.Shutdown(ctx))
	}
	t.shutdown = tp.Shutdown
	return t, nil
}

// NewTracingWithProvider traces through tp, e.g. a provider recording in
// memory (tests). Shutdown leaves tp to its owner.
func NewTracingWithProvider(tp trace.TracerProvider) (*Tracing, error) {
	ti, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
		Tracer: tp.Tracer("github.com/crmflow/crmflow/temporal"),
	})
	if err != nil {
		return nil, fmt.Errorf("temporal tracing interceptor: %w", err)
	}
	return &Tracing{provider: tp, temporal: ti}, nil
}

// ClientInterceptors go in client.Options.Interceptors. The SDK also runs
// them on every worker built from that client, so workflows and activities
// are traced without a worker option.
func (t *Tracing) ClientInterceptors() []interceptor.ClientInterceptor {
	if t == nil {
		return nil
	}
	return []interceptor.ClientInterceptor{t.temporal}
}

// TracerProvider is the provider for the HTTP server (webhooks
// Deps.Tracer); nil when tracing is off.
func (t *Tracing) TracerProvider() trace.TracerProvider {
	if t == nil {
		return nil
	}
	return t.provider
}

// Shutdown sends the spans still buffered and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	if err := t.shutdown(ctx); err != nil {
		return fmt.Errorf("tracing shutdown: %w", err)
	}
	return nil
}

// lineExporter writes one JSON object per span, for reading traces on a
// laptop without a collector.
type lineExporter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func newLineExporter(w io.Writer) *lineExporter { return &lineExporter{enc: json.NewEncoder(w)} }

// spanLine is what lineExporter writes of a span.
type spanLine struct {
	TraceID    string         `json:"trace_id"`
	SpanID     string         `json:"span_id"`
	ParentID   string         `json:"parent_id,omitempty"`
	Name       string         `json:"name"`
	Kind       string         `json:"kind"`
	Start      time.Time      `json:"start"`
	DurationMS float64        `json:"duration_ms"`
	Status     string         `json:"status"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

// ExportSpans implements sdktrace.SpanExporter.
func (e *lineExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range spans {
		line := spanLine{
			TraceID:    s.SpanContext().TraceID().String(),
			SpanID:     s.SpanContext().SpanID().String(),
			Name:       s.Name(),
			Kind:       s.SpanKind().String(),
			Start:      s.StartTime(),
			DurationMS: float64(s.EndTime().Sub(s.StartTime()).Microseconds()) / 1000,
			Status:     s.Status().Code.String(),
		}
		if s.Parent().IsValid() {
			line.ParentID = s.Parent().SpanID().String()
		}
		for _, kv := range s.Attributes() {
			if line.Attributes == nil {
				line.Attributes = map[string]any{}
			}
			line.Attributes[string(kv.Key)] = kv.Value.AsInterface()
		}
		if err := e.enc.Encode(line); err != nil {
			return fmt.Errorf("write span: %w", err)
		}
	}
	return nil
}

// Shutdown implements sdktrace.SpanExporter.
func (e *lineExporter) Shutdown(context.Context) error { return nil }
