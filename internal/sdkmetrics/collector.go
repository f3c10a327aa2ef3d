package sdkmetrics

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// collector holds every family a Handler tree has created and exposes them.
// It describes nothing, which makes it an unchecked collector: the registry
// then accepts samples of one family with different label sets, where a
// checked collector must name each family's label keys up front.
type collector struct {
	namespace string
	buckets   []float64

	mu sync.RWMutex
	// requested caches the answer for each (kind, SDK name) asked for,
	// including nil for a rejected collision, so the SDK's habit of calling
	// Counter(name) per event stays one read-locked map lookup.
	requested map[familyKey]*family
	byName    map[string]*family // by Prometheus name
}

// familyKey is what the SDK asks for: a kind of instrument and a name.
type familyKey struct {
	kind kind
	name string
}

func newCollector(namespace string, buckets []float64) *collector {
	return &collector{
		namespace: namespace,
		buckets:   buckets,
		requested: map[familyKey]*family{},
		byName:    map[string]*family{},
	}
}

// Describe sends nothing on purpose; see collector.
func (c *collector) Describe(chan<- *prometheus.Desc) {}

// Collect sends one const metric per series seen so far.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	families := make([]*family, 0, len(c.byName))
	for _, f := range c.byName {
		families = append(families, f)
	}
	c.mu.RUnlock()
	for _, f := range families {
		f.collect(ch)
	}
}

// family returns the family for an SDK instrument, creating it on first use,
// or nil when its Prometheus name is already a family of another type or
// would collide with a histogram's _bucket/_count/_sum series. Either would
// make the registry fail every scrape, hiding all metrics to keep one.
func (c *collector) family(k kind, name string) *family {
	key := familyKey{k, name}
	c.mu.RLock()
	f, ok := c.requested[key]
	c.mu.RUnlock()
	if ok {
		return f
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.requested[key]; ok {
		return f
	}
	promName := metricName(c.namespace, name, k)
	f, exists := c.byName[promName]
	switch {
	case exists && f.kind != k:
		f = nil
	case !exists && c.collides(promName, k):
		f = nil
	case !exists:
		f = &family{
			name:   promName,
			help:   fmt.Sprintf("Temporal SDK %s %s.", k, name),
			kind:   k,
			series: map[string]series{},
		}
		if k == kindTimer {
			f.help = fmt.Sprintf("Temporal SDK %s %s, in seconds.", k, name)
		}
		c.byName[promName] = f
	}
	c.requested[key] = f
	return f
}

// collides mirrors the registry's suffix check so a colliding family is
// refused here instead of failing Gather. c.mu must be held.
func (c *collector) collides(name string, k kind) bool {
	for _, s := range []string{"_bucket", "_count", "_sum"} {
		if base, ok := strings.CutSuffix(name, s); ok {
			if f := c.byName[base]; f != nil && f.kind == kindTimer {
				return true
			}
		}
		if k == kindTimer && c.byName[name+s] != nil {
			return true
		}
	}
	return false
}

// family is one Prometheus metric family: one name, one type, a help text
// and a series per label set.
type family struct {
	name string
	help string
	kind kind

	mu     sync.RWMutex
	series map[string]series // by labelSet.key
}

// series is one labelled time series (or histogram) of a family.
type series interface {
	metric() prometheus.Metric
}

// seriesOf returns f's series for ls, creating it with mk on first use. The
// Desc is built once per series because NewDesc validates and hashes.
func seriesOf[S series](f *family, ls labelSet, mk func(*prometheus.Desc) S) S {
	f.mu.RLock()
	s, ok := f.series[ls.key]
	f.mu.RUnlock()
	if ok {
		return s.(S)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.series[ls.key]; ok {
		return s.(S)
	}
	created := mk(prometheus.NewDesc(f.name, f.help, nil, ls.labels))
	f.series[ls.key] = created
	return created
}

func (f *family) collect(ch chan<- prometheus.Metric) {
	f.mu.RLock()
	all := make([]series, 0, len(f.series))
	for _, s := range f.series {
		all = append(all, s)
	}
	f.mu.RUnlock()
	for _, s := range all {
		ch <- s.metric()
	}
}

// constMetric turns a construction error into a metric the registry reports
// at gather time, instead of panicking inside a scrape.
func constMetric(m prometheus.Metric, err error, d *prometheus.Desc) prometheus.Metric {
	if err != nil {
		return prometheus.NewInvalidMetric(d, err)
	}
	return m
}

// counterSeries implements client.MetricsCounter.
type counterSeries struct {
	desc  *prometheus.Desc
	value atomic.Int64
}

func newCounterSeries(d *prometheus.Desc) *counterSeries { return &counterSeries{desc: d} }

// Inc adds delta. A negative delta is ignored: a Prometheus counter only
// goes down on a process restart, and rate() would read a decrease as one.
func (s *counterSeries) Inc(delta int64) {
	if delta > 0 {
		s.value.Add(delta)
	}
}

func (s *counterSeries) metric() prometheus.Metric {
	m, err := prometheus.NewConstMetric(s.desc, prometheus.CounterValue, float64(s.value.Load()))
	return constMetric(m, err, s.desc)
}

// gaugeSeries implements client.MetricsGauge.
type gaugeSeries struct {
	desc *prometheus.Desc
	bits atomic.Uint64 // math.Float64bits of the value
}

func newGaugeSeries(d *prometheus.Desc) *gaugeSeries { return &gaugeSeries{desc: d} }

// Update sets the gauge to v.
func (s *gaugeSeries) Update(v float64) { s.bits.Store(math.Float64bits(v)) }

func (s *gaugeSeries) metric() prometheus.Metric {
	m, err := prometheus.NewConstMetric(s.desc, prometheus.GaugeValue, math.Float64frombits(s.bits.Load()))
	return constMetric(m, err, s.desc)
}

// timerSeries implements client.MetricsTimer as a histogram in seconds.
type timerSeries struct {
	desc   *prometheus.Desc
	bounds []float64 // shared, read-only

	mu     sync.Mutex
	counts []uint64 // per bucket, not cumulative; observations above the last bound only count
	count  uint64
	sum    float64
}

func newTimerSeries(d *prometheus.Desc, bounds []float64) *timerSeries {
	return &timerSeries{desc: d, bounds: bounds, counts: make([]uint64, len(bounds))}
}

// Record observes d. A negative duration (a clock step between two reads)
// counts as zero so the histogram's sum never decreases.
func (s *timerSeries) Record(d time.Duration) {
	v := max(d.Seconds(), 0)
	i := sort.SearchFloat64s(s.bounds, v) // first bound >= v: buckets are le
	s.mu.Lock()
	if i < len(s.counts) {
		s.counts[i]++
	}
	s.count++
	s.sum += v
	s.mu.Unlock()
}

func (s *timerSeries) metric() prometheus.Metric {
	buckets := make(map[float64]uint64, len(s.bounds))
	s.mu.Lock()
	var cum uint64
	for i, b := range s.bounds {
		cum += s.counts[i]
		buckets[b] = cum
	}
	count, sum := s.count, s.sum
	s.mu.Unlock()
	m, err := prometheus.NewConstHistogram(s.desc, count, sum, buckets)
	return constMetric(m, err, s.desc)
}

// nop stands in for an instrument whose name was refused.
type nop struct{}

func (nop) Inc(int64)            {}
func (nop) Update(float64)       {}
func (nop) Record(time.Duration) {}
