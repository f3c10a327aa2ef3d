package bench

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestCoresSentenceNamesTwoProcesses: the line under a missed target names
// the busiest process and one other; when the benchmark process is the
// busiest, the other is the next busiest rather than itself again.
func TestCoresSentenceNamesTwoProcesses(t *testing.T) {
	side := func(bench, temporal, pg float64) PhaseProfile {
		return PhaseProfile{Wall: time.Second, Processes: []CPUShare{
			{Name: groupTemporal, Seconds: temporal}, {Name: groupBench, Seconds: bench}, {Name: groupPostgres, Seconds: pg},
		}}
	}
	benchTop := coresSentence("M2", &Profile{Subject: "webhooks", Baseline: "raw", Sides: [2]PhaseProfile{side(1.0, 0.2, 0.5), side(0.4, 0.1, 0.9)}}, 2)
	assert.Contains(t, benchTop, "the "+groupBench+" kept 1.00 of the machine's 2 cores")
	assert.Contains(t, benchTop, "the "+groupPostgres+" 0.50 (0.90)")
	assert.Equal(t, 1, strings.Count(benchTop, groupBench), benchTop)

	temporalTop := coresSentence("M4", &Profile{Subject: "dispatcher", Baseline: "raw", Sides: [2]PhaseProfile{side(0.2, 1.1, 0.1), side(0.1, 1.4, 0)}}, 2)
	assert.Contains(t, temporalTop, "the "+groupTemporal+" kept 1.10 of the machine's 2 cores busy per second of wall time (1.40 during raw)")
	assert.Contains(t, temporalTop, "the "+groupBench+" 0.20 (0.10), and all processes together 1.40 (1.50)")
}

// TestPoolSentenceComparesWithThePoolUsed: the pool-size finding compares
// each fastest size with the size the measurements ran on, never a size
// with itself.
func TestPoolSentenceComparesWithThePoolUsed(t *testing.T) {
	r := &Report{PoolSize: 16, Pool: []PoolTuning{
		{PoolSize: 4, RawInsert: Stats{Median: 4500}, Webhooks: Stats{Median: 5000}},
		{PoolSize: 16, RawInsert: Stats{Median: 4400}, Webhooks: Stats{Median: 5500}},
		{PoolSize: 32, RawInsert: Stats{Median: 3500}, Webhooks: Stats{Median: 5200}},
	}}
	var b strings.Builder
	r.findings(func(format string, args ...any) { fmt.Fprintf(&b, format, args...) })
	assert.Contains(t, b.String(), "The measurements ran on 16 connections. With durable commits the one-row raw insert was fastest at 4 connections (4500 rows/s, 1.02× its figure at 16) and webhooks at 16 (5500/s, 1.00×)")
}

// TestHandoffSentenceRelatesTheOfferedRateToTheDrain: the M8 finding puts
// its offered rate beside the dispatcher's drain rate from M4.
func TestHandoffSentenceRelatesTheOfferedRateToTheDrain(t *testing.T) {
	r := &Report{Results: []Result{
		{ID: "M4", Subject: Figure{Name: "dispatcher hand-offs", Unit: "events/s", Stats: Stats{Median: 200}}},
		{ID: "M8", Extra: []Figure{
			{Name: "offered rate (half the SignalWithStart capacity)", Unit: "events/s", Stats: Stats{Median: 150}},
			{Name: "p50 commit to signal in history, every event of every round", Unit: "ms", Stats: Stats{Median: 240}},
			{Name: "p50 raw SignalWithStart, every call of every round", Unit: "ms", Stats: Stats{Median: 11}},
		}},
	}}
	var b strings.Builder
	r.findings(func(format string, args ...any) { fmt.Fprintf(&b, format, args...) })
	assert.Contains(t, b.String(), "The offered rate, 150 events/s (the median over rounds, each half the SignalWithStart capacity measured just before it), was 0.75× the rate the dispatcher drained a committed backlog at in M4 (200/s")
	assert.Contains(t, b.String(), "took longer than 240 ms from commit to history, against 11.0 ms for the raw calls")

	b.Reset()
	r.Results = r.Results[1:]
	r.findings(func(format string, args ...any) { fmt.Fprintf(&b, format, args...) })
	assert.NotContains(t, b.String(), "Hand-off latency (M8)", "without M4 there is nothing to relate the rate to")
}

// TestTailCauseFollowsTheFigures: the M8 finding blames whichever part of
// the hand-off had the longer tail.
func TestTailCauseFollowsTheFigures(t *testing.T) {
	assert.Contains(t, tailCause(90, 20), "longer tail is rows waiting behind calls in flight")
	assert.Contains(t, tailCause(2, 40), "rows hardly waited")
	assert.Contains(t, tailCause(85, 179), "the rows behind them waited for a slot")
}
