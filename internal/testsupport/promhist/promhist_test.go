package promhist_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/testsupport/promhist"
)

// TestQuantile: a percentile read from the buckets falls inside the bucket
// that holds it, interpolated as Prometheus does, and a snapshot taken
// earlier is taken away before reading.
func TestQuantile(t *testing.T) {
	bounds := []float64{0.001, 0.002, 0.004}
	earlier := promhist.Histogram{Count: 10, Sum: 0.005, Bounds: bounds, Counts: []uint64{10, 10, 10}}
	// Since then: 90 observations up to 1 ms, 10 between 2 and 4 ms.
	now := promhist.Histogram{Count: 110, Sum: 0.005 + 0.045 + 0.03, Bounds: bounds, Counts: []uint64{100, 100, 110}}
	h := earlier.Plus(promhist.Histogram{}).Plus(now.Minus(earlier)).Minus(earlier)
	assert.EqualValues(t, 100, h.Count)
	assert.InDelta(t, float64(750*time.Microsecond), float64(h.Mean()), 10)
	assert.InDelta(t, float64(500*time.Microsecond), float64(h.Quantile(0.45)), 10, "the 45th of 90 in the first bucket is halfway up it")
	assert.InDelta(t, float64(3800*time.Microsecond), float64(h.Quantile(0.99)), 10, "the 99th is the 9th of 10 between 2 and 4 ms")
	assert.Zero(t, promhist.Histogram{}.Quantile(0.99), "no observations, no figure")
	assert.EqualValues(t, 90, h.AtMost(1500*time.Microsecond), "only whole buckets under the bound count")
}

// TestRead: a histogram is read from a registry by name, pooled across
// registries, and a name the registry lacks is an error.
func TestRead(t *testing.T) {
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	var pooled promhist.Histogram
	for i, reg := range regs {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "wait_seconds", Help: "waits", Buckets: []float64{0.1, 1}})
		reg.MustRegister(h)
		for range i + 1 {
			h.Observe(0.5)
		}
		got, err := promhist.Read(reg, "wait_seconds")
		require.NoError(t, err)
		pooled = pooled.Plus(got)
	}
	assert.EqualValues(t, 3, pooled.Count)
	assert.Equal(t, []uint64{0, 3}, pooled.Counts, "none up to 0.1 s, all three up to 1 s")
	assert.Equal(t, 500*time.Millisecond, pooled.Mean())
	_, err := promhist.Read(regs[0], "no_such_seconds")
	assert.ErrorContains(t, err, "no histogram no_such_seconds")
}
