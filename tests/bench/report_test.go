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
			{Name: generatorLateFigure + ", commits, p99", Unit: "ms", Stats: Stats{Median: 3}},
			{Name: generatorLateFigure + ", raw calls, p99", Unit: "ms", Stats: Stats{Median: 45}},
		}},
	}}
	var b strings.Builder
	r.findings(func(format string, args ...any) { fmt.Fprintf(&b, format, args...) })
	assert.Contains(t, b.String(), "The offered rate, 150 events/s (the median over rounds, each half the SignalWithStart capacity measured just before it), was 0.75× the rate the dispatcher drained a committed backlog at in M4 (200/s")
	assert.Contains(t, b.String(), "took longer than 240 ms from commit to history, against 11.0 ms for the raw calls")
	assert.Contains(t, b.String(), "The load generator made its commits 3.00 ms and its raw calls 45.0 ms after their slots in the schedule at p99, a delay neither clock counts.")

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

// TestFigureShowsWhichSideOfItsBound: a value that rounds onto its target
// (or across it) is printed with the digits that tell the two apart, in the
// summary and in the measurement's table; one clear of it keeps three
// significant digits.
func TestFigureShowsWhichSideOfItsBound(t *testing.T) {
	f := Figure{Bound: 0.85}
	for v, want := range map[float64]string{
		0.8496: "0.8496", 0.8504: "0.8504", 0.85: "0.85", 0.84: "0.84", 0.8449: "0.84", 1.18: "1.18",
	} {
		assert.Equal(t, want, f.format(v), "%v against 0.85", v)
	}
	assert.Equal(t, "199.6", Figure{Bound: 200}.format(199.6))
	assert.Equal(t, "2.004", Figure{Bound: 2}.format(2.004))
	assert.Equal(t, "0.85", Figure{}.format(0.8496), "without a bound, as num prints it")

	ratio := Stats{Median: 0.8496, Min: 0.6, Max: 0.8504, Values: []float64{0.6, 0.8496, 0.8504}}
	r := &Report{Results: []Result{{
		ID: "M1", What: "inbox write", Target: insertTarget.String(), Pass: insertTarget.met(ratio),
		Subject: Figure{Name: "InsertInboxEvent", Unit: "rows/s", Stats: Stats{Median: 100}},
		Ratios:  []Figure{{Name: "inbox/best raw", Unit: "×", Stats: ratio, Bound: float64(insertTarget)}},
	}}}
	md := r.Markdown()
	assert.Contains(t, md, "| inbox/best raw 0.8496 (0.60–0.8504; met in 1 of 3 rounds) | >= 0.85 | **MISS** |")
	assert.Contains(t, md, "| inbox/best raw | × | 0.8496 | 0.60 | 0.8504 | 0.60, 0.8496, 0.8504 |")
	assert.Contains(t, r.Results[0].SummaryLine(), "inbox/best raw 0.8496 (min 0.60, max 0.8504; met in 1 of 3 rounds)")
}

// TestRoundsMetCountsEachRoundAgainstItsBound: a floor is met at or above
// its bound, a ceiling at or below it; a pooled figure (one value) and a
// figure with no bound get no count.
func TestRoundsMetCountsEachRoundAgainstItsBound(t *testing.T) {
	values := Stats{Values: []float64{0.84, 0.85, 0.9, 2, 2.1}}
	assert.Equal(t, "met in 4 of 5 rounds", Figure{Stats: values, Bound: 0.85}.roundsMet(), "0.85 meets a floor of 0.85")
	assert.Equal(t, "met in 2 of 5 rounds", Figure{Stats: values, Bound: 0.85, Ceiling: true}.roundsMet(), "0.85 meets a ceiling of 0.85")
	assert.Equal(t, "met in 0 of 5 rounds", Figure{Stats: values, Bound: 3}.roundsMet())
	assert.Empty(t, Figure{Stats: values}.roundsMet(), "no bound")
	assert.Empty(t, Figure{Stats: summarise([]float64{2.48}), Bound: 2, Ceiling: true}.roundsMet(), "one pooled value")
}

// TestLatencySentenceSaysHowLateTheGeneratorSent: the M3 finding quotes the
// load generator's own delay, which the latencies include.
func TestLatencySentenceSaysHowLateTheGeneratorSent(t *testing.T) {
	r := &Report{Results: []Result{
		{ID: "M2", Subject: Figure{Name: "webhooks acknowledged", Unit: "webhooks/s", Stats: Stats{Median: 10000}}},
		{ID: "M3", Subject: Figure{Name: "p99 latency over every request of every round", Unit: "ms", Stats: Stats{Median: 53.9}},
			Baselines: []Figure{{Name: "p99 latency with the dispatcher stopped, every request of every round", Unit: "ms", Stats: Stats{Median: 12.4}}},
			Extra: []Figure{
				{Name: "offered rate (5× SignalWithStart capacity)", Unit: "webhooks/s", Stats: Stats{Median: 2500}},
				{Name: sentLateFigure, Unit: "ms", Stats: Stats{Median: 8.38}},
			}},
	}}
	var b strings.Builder
	r.findings(func(format string, args ...any) { fmt.Fprintf(&b, format, args...) })
	assert.Contains(t, b.String(), "p99 was 53.9 ms")
	assert.Contains(t, b.String(), "the load generator itself sent 99% of its requests within 8.38 ms of their slots, and a request's latency counts from its slot.")
	assert.NotContains(t, b.String(), "%!", "no broken format verbs")
}
