// Package promhist reads a Prometheus histogram out of a registry as a
// snapshot that tests and benchmarks can pool across registries, take an
// earlier snapshot from, and read a mean or a percentile of, the way
// Prometheus's histogram_quantile reads one.
//
// It is test support: it imports no crmflow package.
package promhist

import (
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Histogram is a snapshot of an unlabelled histogram observed in seconds.
type Histogram struct {
	// Count is how many observations it holds, Sum their total in seconds.
	Count uint64
	Sum   float64
	// Bounds are the buckets' upper bounds in seconds; Counts the
	// cumulative observations at each.
	Bounds []float64
	Counts []uint64
}

// Read gathers g and returns the histogram name.
func Read(g prometheus.Gatherer, name string) (Histogram, error) {
	families, err := g.Gather()
	if err != nil {
		return Histogram{}, fmt.Errorf("gather metrics: %w", err)
	}
	for _, mf := range families {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		m := mf.GetMetric()[0].GetHistogram()
		h := Histogram{Count: m.GetSampleCount(), Sum: m.GetSampleSum()}
		for _, b := range m.GetBucket() {
			h.Bounds = append(h.Bounds, b.GetUpperBound())
			h.Counts = append(h.Counts, b.GetCumulativeCount())
		}
		return h, nil
	}
	return Histogram{}, fmt.Errorf("no histogram %s", name)
}

// Minus is h without the observations of an earlier snapshot of the same
// histogram.
func (h Histogram) Minus(earlier Histogram) Histogram {
	out := Histogram{Count: h.Count - earlier.Count, Sum: h.Sum - earlier.Sum, Bounds: h.Bounds, Counts: slices.Clone(h.Counts)}
	for i, c := range earlier.Counts {
		out.Counts[i] -= c
	}
	return out
}

// Plus pools two histograms with the same buckets; either may be empty.
func (h Histogram) Plus(o Histogram) Histogram {
	if len(h.Counts) == 0 {
		return o
	}
	out := Histogram{Count: h.Count + o.Count, Sum: h.Sum + o.Sum, Bounds: h.Bounds, Counts: slices.Clone(h.Counts)}
	for i, c := range o.Counts {
		out.Counts[i] += c
	}
	return out
}

// Mean is the mean observation.
func (h Histogram) Mean() time.Duration { return seconds(h.Sum / float64(max(h.Count, 1))) }

// Quantile estimates the q-th quantile (0–1) as Prometheus's
// histogram_quantile does: linearly within the bucket it falls in. Past
// the last bound it is that bound; with no observations it is 0.
func (h Histogram) Quantile(q float64) time.Duration {
	if h.Count == 0 {
		return 0
	}
	rank := q * float64(h.Count)
	lower, below := 0.0, uint64(0)
	for i, b := range h.Bounds {
		if float64(h.Counts[i]) >= rank {
			in := h.Counts[i] - below
			if in == 0 {
				return seconds(b)
			}
			return seconds(lower + (b-lower)*(rank-float64(below))/float64(in))
		}
		lower, below = b, h.Counts[i]
	}
	return seconds(lower)
}

// AtMost is how many observations fell in buckets whose upper bound is at
// most d: a lower bound of those that took at most d.
func (h Histogram) AtMost(d time.Duration) uint64 {
	n := uint64(0)
	for i, b := range h.Bounds {
		if b <= d.Seconds() {
			n = h.Counts[i]
		}
	}
	return n
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
