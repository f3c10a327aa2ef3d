// Package bench measures crmflow against the engines it delegates to:
// PostgreSQL for the webhook inbox and Temporal for everything after it.
// Every figure is a ratio to a baseline measured in the same run on the same
// machine, with baseline and subject rounds interleaved so that drift (other
// processes, a warming cache) hits both alike. `make bench` runs the full
// measurements and regenerates BENCHMARKS.md; the package's tests run each
// measurement in miniature to check the harness itself.
//
// tests/ holds suites over the whole product; they may import any room.
package bench

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Stats summarises one figure over several rounds.
type Stats struct {
	Median, Min, Max float64
	// Values are the per-round figures in the order they were measured.
	Values []float64
}

// summarise computes the median, minimum and maximum of values.
func summarise(values []float64) Stats {
	if len(values) == 0 {
		return Stats{}
	}
	s := slices.Clone(values)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stats{Median: med, Min: s[0], Max: s[len(s)-1], Values: slices.Clone(values)}
}

// Figure is one named quantity with its unit, such as "inbox writes/s".
type Figure struct {
	Name  string
	Unit  string
	Stats Stats
	// Bound is the value a target compares this figure with, 0 when none
	// does. The report prints the figure's values with as many digits as
	// it takes to show which side of the bound each falls on.
	Bound float64
	// Ceiling says the target wants values at most Bound; otherwise it
	// wants them at least Bound (a ratio's floor).
	Ceiling bool
}

// metIn counts the rounds whose value meets the figure's bound, and the
// rounds there are. A median on the target's edge reads differently when
// 9 of 10 rounds met it than when 5 did.
func (f Figure) metIn() (met, rounds int) {
	for _, v := range f.Stats.Values {
		if (f.Ceiling && v <= f.Bound) || (!f.Ceiling && v >= f.Bound) {
			met++
		}
	}
	return met, len(f.Stats.Values)
}

// roundsMet states metIn for the summary, e.g. "met in 7 of 10 rounds";
// "" for a figure without a bound or with one value only (a pooled one).
func (f Figure) roundsMet() string {
	met, rounds := f.metIn()
	if f.Bound == 0 || rounds < 2 {
		return ""
	}
	return fmt.Sprintf("met in %d of %d rounds", met, rounds)
}

// format prints one of the figure's values, numBeside its bound.
func (f Figure) format(v float64) string { return numBeside(v, f.Bound) }

// numBeside prints v as num does, or with more digits where num's rounding
// would land on bound or cross it, so a 0.8496 judged against 0.85 reads
// 0.8496 rather than passing for the bound itself. A bound of 0 is none.
func numBeside(v, bound float64) string {
	s := num(v)
	for d := decimals(v) + 1; bound != 0 && d <= 9 && !sameSide(s, v, bound); d++ {
		s = strconv.FormatFloat(v, 'f', d, 64)
	}
	return s
}

// sameSide says whether printed, read back, compares with bound as v does.
func sameSide(printed string, v, bound float64) bool {
	p, err := strconv.ParseFloat(printed, 64)
	return err == nil && cmp.Compare(p, bound) == cmp.Compare(v, bound)
}

// Result is one measurement (M1 … M10) as the report prints it.
type Result struct {
	// ID is M1 … M10.
	ID string
	// What describes the subject in a few words.
	What string
	// Subject is the headline figure.
	Subject Figure
	// Baselines are what Subject is compared with, measured in the same rounds.
	Baselines []Figure
	// Ratios are Subject over (or under) each baseline, per round.
	Ratios []Figure
	// Extra are further figures worth reporting (latencies, counts).
	Extra []Figure
	// Target states the goal in words, e.g. ">= 0.85".
	Target string
	// Pass says whether the target was met (on the median unless noted).
	Pass bool
	// Headline is the one figure the summary line leads with.
	Headline string
	// Notes explain how it was measured and anything odd seen.
	Notes []string
	// Rounds is how many interleaved rounds were run.
	Rounds int
	// Elapsed is the wall time the measurement took.
	Elapsed time.Duration
	// Profile is where its subject and baseline spent CPU, when profiled.
	Profile *Profile
}

// ratioTarget is the floor a measurement's median ratio must reach.
type ratioTarget float64

// String states the target as the report prints it, e.g. ">= 0.9".
func (t ratioTarget) String() string { return ">= " + strconv.FormatFloat(float64(t), 'g', -1, 64) }

// met says whether the ratio's median reaches the target.
func (t ratioTarget) met(ratio Stats) bool { return ratio.Median >= float64(t) }

// SummaryLine is the one line `make bench` prints for the measurement.
func (r Result) SummaryLine() string {
	verdict := "PASS"
	if !r.Pass {
		verdict = "MISS"
	}
	var ratios []string
	for _, f := range r.Ratios {
		ratios = append(ratios, fmt.Sprintf("%s %s (min %s, max %s%s)", f.Name, f.format(f.Stats.Median), f.format(f.Stats.Min), f.format(f.Stats.Max), prefixed("; ", f.roundsMet())))
	}
	ratio := strings.Join(ratios, "; ")
	if ratio == "" {
		ratio = "no baseline"
	}
	return fmt.Sprintf("%-3s %-34s %-32s | %s | target %s | %s", r.ID, r.What, r.Headline, ratio, r.Target, verdict)
}

// num prints a figure with about three significant digits.
func num(v float64) string {
	if v == 0 {
		return "0"
	}
	return strconv.FormatFloat(v, 'f', decimals(v), 64)
}

// decimals is how many digits num prints after the point.
func decimals(v float64) int {
	switch a := math.Abs(v); {
	case a >= 100:
		return 0
	case a >= 10:
		return 1
	default:
		return 2
	}
}

// ratios divides each round's a by its b.
func ratios(a, b []float64) []float64 {
	out := make([]float64, 0, len(a))
	for i := range a {
		if i < len(b) && b[i] > 0 {
			out = append(out, a[i]/b[i])
		}
	}
	return out
}

// alternate runs a round's phases in the given order on even rounds and in
// reverse on odd ones (ABBA). The engines slow down as a run goes on
// (Temporal's in-memory store grows with every workflow started), so a
// fixed order would hand that drift to whichever phase always runs last.
func alternate(round int, phases ...func() error) error {
	if round%2 == 1 {
		phases = slices.Clone(phases)
		slices.Reverse(phases)
	}
	for _, run := range phases {
		if err := run(); err != nil {
			return err
		}
	}
	return nil
}

// rate is n events over d, per second.
func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// millis turns a duration into float milliseconds for Stats.
func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentile returns the p-th percentile (0 < p <= 100) of sorted durations
// by the nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// prefixed is s after prefix, or "" when s is empty.
func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}
