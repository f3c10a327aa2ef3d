// Package sdkmetrics exposes the Temporal Go SDK's metrics through a
// Prometheus registry by implementing client.MetricsHandler on top of
// prometheus/client_golang.
//
// The SDK's own bridge, go.temporal.io/sdk/contrib/tally, is a separate
// module (tally and its reporters) that crmflow does without, and a registry
// of fixed-label vectors is a poor fit anyway: the SDK composes tags along
// its call paths (client root tags, then per worker, poller, workflow or
// activity type, failure reason, status code) and workflow code adds its own
// through workflow.GetMetricsHandler, so one metric name can arrive with
// several tag sets. Prometheus' data model allows that (a series is a name plus whatever
// labels it has), but a *Vec needs one key set per name. This package keeps
// one series per (name, label set) it has seen and exposes them from an
// unchecked collector, which the registry accepts with differing label sets
// under one family.
//
// Naming follows the Prometheus conventions, which are also the names
// Temporal's SDK Grafana dashboard queries, so it works unchanged:
//
//   - counters get a "_total" suffix: temporal_request → temporal_request_total;
//   - timers become histograms in seconds with a "_seconds" suffix:
//     temporal_request_latency → temporal_request_latency_seconds_bucket, …;
//   - gauges keep their name: temporal_num_pollers.
//
// A suffix already present is not doubled. Characters outside [a-zA-Z0-9_]
// in names and tag keys become "_"; a leading digit gets a "_" prefix. Tag
// keys that Prometheus reserves ("__…", "le", "quantile") get a "tag_"
// prefix. Tags with an empty value are dropped, since Prometheus treats an
// empty label as an absent one and keeping them would expose two samples for
// one series.
//
// Memory grows with the number of distinct (name, label set) pairs recorded
// and nothing more; series are never evicted, so counters stay monotonic for
// the life of the process. The SDK's tag values are bounded (namespaces, task
// queues, workflow and activity types, operations, status codes); callers
// adding tags from workflow code must keep them bounded too (never IDs).
//
// It is a library: it imports no crmflow package.
package sdkmetrics

import (
	"fmt"
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// DefaultBuckets are the timer histogram bounds in seconds when Options gives
// none. They span a fast RPC (1 ms) through a long poll (the server holds
// polls for about a minute) to ten minutes for schedule-to-start and
// end-to-end latencies; prometheus.DefBuckets stops at 10 s, which would put
// every long poll in the +Inf bucket.
var DefaultBuckets = []float64{
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5, 10, 30, 60, 120, 300, 600,
}

// Options configure New. The zero value is ready to use.
type Options struct {
	// Namespace, when set, is prepended to every metric name with an
	// underscore, as prometheus.BuildFQName does. The SDK's names already
	// start with "temporal_", so most callers leave it empty; constant labels
	// (say, the process role) belong in prometheus.WrapRegistererWith.
	Namespace string

	// Buckets are the timer histograms' upper bounds in seconds, strictly
	// increasing; nil means DefaultBuckets.
	Buckets []float64
}

// Handler implements client.MetricsHandler, recording into a collector
// registered by New. Handlers derived with WithTags share that collector and
// differ only in their tags. A Handler is safe for concurrent use.
type Handler struct {
	c    *collector
	tags map[string]string // as given, merged; never mutated once built
	ls   labelSet          // tags, sanitised; computed once per WithTags
}

// Handler must keep satisfying the SDK's interface as the SDK evolves.
var _ client.MetricsHandler = (*Handler)(nil)

// New returns a root Handler (no tags) whose metrics reg exposes. Like
// prometheus.NewHistogram it panics on invalid options (buckets not strictly
// increasing, a namespace that is not a valid metric name prefix), which are
// programming errors, not runtime conditions.
func New(reg prometheus.Registerer, opts Options) *Handler {
	buckets := opts.Buckets
	if buckets == nil {
		buckets = DefaultBuckets
	}
	for i := 1; i < len(buckets); i++ {
		if buckets[i] <= buckets[i-1] {
			panic(fmt.Sprintf("sdkmetrics: buckets must be strictly increasing, got %v", buckets))
		}
	}
	if opts.Namespace != "" && sanitizeName(opts.Namespace) != opts.Namespace {
		panic(fmt.Sprintf("sdkmetrics: namespace %q is not a valid metric name prefix", opts.Namespace))
	}
	c := newCollector(opts.Namespace, slices.Clone(buckets))
	reg.MustRegister(c)
	return &Handler{c: c, tags: map[string]string{}, ls: newLabelSet(nil)}
}

// WithTags returns a Handler whose metrics carry h's tags overlaid with tags;
// a key present in both takes the new value, and an empty value removes the
// label.
func (h *Handler) WithTags(tags map[string]string) client.MetricsHandler {
	if len(tags) == 0 {
		return h
	}
	merged := make(map[string]string, len(h.tags)+len(tags))
	maps.Copy(merged, h.tags)
	maps.Copy(merged, tags)
	return &Handler{c: h.c, tags: merged, ls: newLabelSet(merged)}
}

// Counter returns the counter for name with h's tags. If name collides with
// a metric of another kind (see the package doc for the naming rules), the
// counter discards what it is given rather than break every scrape.
func (h *Handler) Counter(name string) client.MetricsCounter {
	f := h.c.family(kindCounter, name)
	if f == nil {
		return nop{}
	}
	return seriesOf(f, h.ls, newCounterSeries)
}

// Gauge returns the gauge for name with h's tags; the last update wins. A
// name collision is handled as in Counter.
func (h *Handler) Gauge(name string) client.MetricsGauge {
	f := h.c.family(kindGauge, name)
	if f == nil {
		return nop{}
	}
	return seriesOf(f, h.ls, newGaugeSeries)
}

// Timer returns the histogram for name with h's tags, observed in seconds. A
// name collision is handled as in Counter.
func (h *Handler) Timer(name string) client.MetricsTimer {
	f := h.c.family(kindTimer, name)
	if f == nil {
		return nop{}
	}
	return seriesOf(f, h.ls, func(d *prometheus.Desc) *timerSeries {
		return newTimerSeries(d, h.c.buckets)
	})
}
