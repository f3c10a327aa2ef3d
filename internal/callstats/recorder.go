// Package callstats keeps crmflow's own per-minute statistics of its
// integrations for the operator console: for each provider API, for
// PostgreSQL and for Temporal, the calls crmflow made (for Clerk, which
// crmflow never calls, the deliveries Clerk made to it), how many failed,
// their latency and the last error — no Prometheus server needed.
//
// Every process records into its own Recorder, which holds the minutes not
// yet published; a Publisher adds them to the provider_call_minutes table
// every few seconds, together with the state of the process's provider
// queues (the breaker). The console reads the table (Read). Going through
// PostgreSQL is what makes the numbers right when `crmflow serve` and
// `crmflow worker` are separate processes, or several replicas: each adds
// its own counts to the same minute, so the console sees the sum whichever
// process serves it, and a restart loses at most the last few seconds.
//
// The hooks feed a Recorder where calls are measured: provider HTTP
// requests (appmetrics' transport observer, HTTPClass), PostgreSQL queries
// (PostgresTracer), Temporal requests (TemporalMetrics), Clerk's deliveries
// (Inbound) and activity failures (ActivityErrors, the last error's class).
//
// It is a library: it imports no crmflow package.
package callstats

import (
	"strconv"
	"sync"
	"time"
)

// Integration names that are not providers of the registry.
const (
	// Postgres is crmflow's PostgreSQL.
	Postgres = "postgres"
	// Temporal is the Temporal frontend.
	Temporal = "temporal"
	// Clerk is the Clerk webhook endpoint (deliveries to crmflow).
	Clerk = "clerk"
)

// LatencyBounds are the upper bounds of the latency buckets, in seconds;
// one more bucket above the last holds everything slower. PostgreSQL
// answers in under a millisecond, providers in hundreds, hence the range.
var LatencyBounds = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// numBuckets is len(LatencyBounds) plus the unbounded bucket.
const numBuckets = 14

// Bucket is what was measured of one integration over some time.
type Bucket struct {
	// Requests counts calls, failed ones included.
	Requests int64
	// Errors counts failed calls: any answer that is not a success, or
	// none at all.
	Errors int64
	// Latency counts calls per latency bucket (LatencyBounds).
	Latency [numBuckets]int64
	// LastErrorClass says what the last failure was ("HTTP 503", "no
	// answer", "KnockUnauthorized", "23505"); empty when none failed.
	LastErrorClass string
	// LastErrorAt is when it happened.
	LastErrorAt time.Time
}

// Add adds o's counts to b and keeps the later of the two last errors.
func (b *Bucket) Add(o Bucket) {
	b.Requests += o.Requests
	b.Errors += o.Errors
	for i := range b.Latency {
		b.Latency[i] += o.Latency[i]
	}
	if o.LastErrorAt.After(b.LastErrorAt) {
		b.LastErrorClass, b.LastErrorAt = o.LastErrorClass, o.LastErrorAt
	}
}

// observe counts one call of duration d in b's histogram.
func (b *Bucket) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(LatencyBounds) && s > LatencyBounds[i] {
		i++
	}
	b.Latency[i]++
}

// Quantile is the q-quantile (0 < q < 1) of b's latency, interpolated
// linearly inside its bucket as Prometheus' histogram_quantile does; a
// quantile in the unbounded bucket is the last bound. Zero without calls.
func (b *Bucket) Quantile(q float64) time.Duration {
	var total int64
	for _, n := range b.Latency {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var seen int64
	for i, n := range b.Latency {
		if n == 0 || float64(seen+n) < rank {
			seen += n
			continue
		}
		if i == len(LatencyBounds) {
			return seconds(LatencyBounds[i-1])
		}
		lower := 0.0
		if i > 0 {
			lower = LatencyBounds[i-1]
		}
		upper := LatencyBounds[i]
		return seconds(lower + (upper-lower)*(rank-float64(seen))/float64(n))
	}
	return seconds(LatencyBounds[len(LatencyBounds)-1])
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// key is one integration's minute.
type key struct {
	provider string
	minute   time.Time
}

// Recorder holds what this process measured and has not published yet,
// per integration and minute. A nil *Recorder records nothing, so a hook
// can be wired whether or not anything publishes.
type Recorder struct {
	now     func() time.Time
	mu      sync.Mutex
	pending map[key]*Bucket
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{now: time.Now, pending: map[key]*Bucket{}}
}

// bucket is the pending bucket of provider's current minute; r.mu is held.
func (r *Recorder) bucket(provider string, at time.Time) *Bucket {
	k := key{provider, at.UTC().Truncate(time.Minute)}
	b := r.pending[k]
	if b == nil {
		b = &Bucket{}
		r.pending[k] = b
	}
	return b
}

// Record counts one call to provider that took d; errClass, when not
// empty, says it failed and how.
func (r *Recorder) Record(provider string, d time.Duration, errClass string) {
	if r == nil {
		return
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.bucket(provider, now)
	b.Requests++
	b.observe(d)
	if errClass != "" {
		b.Errors++
		b.LastErrorClass, b.LastErrorAt = errClass, now
	}
}

// Fail counts a failure of a call already counted by Record as a success:
// some callers learn the outcome after the latency (Temporal's metrics).
func (r *Recorder) Fail(provider, errClass string) {
	if r == nil {
		return
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.bucket(provider, now)
	b.Errors++
	b.LastErrorClass, b.LastErrorAt = errClass, now
}

// Note records errClass as provider's last error without counting a call:
// a failed activity, whose request (if any) was counted where it was sent,
// names its failure better than the HTTP status did.
func (r *Recorder) Note(provider, errClass string) {
	if r == nil {
		return
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.bucket(provider, now)
	b.LastErrorClass, b.LastErrorAt = errClass, now
}

// take hands over everything pending and starts afresh.
func (r *Recorder) take() map[key]*Bucket {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.pending
	r.pending = map[key]*Bucket{}
	return out
}

// giveBack returns buckets a publish could not write, to be tried again.
func (r *Recorder) giveBack(m map[key]*Bucket) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, b := range m {
		if cur := r.pending[k]; cur != nil {
			cur.Add(*b)
		} else {
			r.pending[k] = b
		}
	}
}

// HTTPClass is the error class of an HTTP answer with status: "" for a
// success (2xx, 3xx), "HTTP <status>" otherwise, and "no answer" for 0
// (connection error or timeout).
func HTTPClass(status int) string {
	switch {
	case status == 0:
		return "no answer"
	case status < 400:
		return ""
	}
	return "HTTP " + strconv.Itoa(status)
}
