package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"
)

// Where the time goes. Every component runs on the same cores (the
// benchmark process holds crmflow's edge, dispatcher and workers and the
// load generator; Temporal and PostgreSQL are processes of their own), so a
// ratio below its target says little until it is known which of them spent
// the cores. A profiled phase records the CPU time of every process on the
// machine, grouped, and a CPU profile of the benchmark process, grouped by
// package. Both sides of a comparison are profiled the same way, so the
// profiler's small cost does not favour either.

// CPUShare is CPU time spent by one part of the machine or the process.
type CPUShare struct {
	Name    string
	Seconds float64
}

// PhaseProfile is where one side's phases (every round's) spent CPU.
type PhaseProfile struct {
	// Wall is the phases' summed wall time.
	Wall time.Duration
	// Processes splits the machine's CPU time by process group.
	Processes []CPUShare
	// InProcess splits the benchmark process's sampled CPU time by
	// package group.
	InProcess []CPUShare
}

// Profile is a measurement's subject and baseline, profiled alike.
type Profile struct {
	// Subject and Baseline name the two sides, as the tables show them.
	Subject, Baseline string
	Sides             [2]PhaseProfile
}

// profiles collects the profiles of the measurements that ask for them.
type profiles struct {
	mu  sync.Mutex
	byM map[string]*Profile
}

// profiled wraps a measurement's phase so that its CPU time is recorded
// under id; side 0 is the subject, side 1 the baseline, named as the
// report shows them.
func (e *Env) profiled(id string, side int, name string, phase func() error) func() error {
	return func() error {
		e.profs.mu.Lock()
		if e.profs.byM == nil {
			e.profs.byM = map[string]*Profile{}
		}
		p := e.profs.byM[id]
		if p == nil {
			p = &Profile{}
			e.profs.byM[id] = p
		}
		if side == 0 {
			p.Subject = name
		} else {
			p.Baseline = name
		}
		e.profs.mu.Unlock()

		before := processTimes()
		var buf bytes.Buffer
		profiling := pprof.StartCPUProfile(&buf) == nil
		t0 := time.Now()
		err := phase()
		wall := time.Since(t0)
		if profiling {
			pprof.StopCPUProfile()
		}
		after := processTimes()

		e.profs.mu.Lock()
		defer e.profs.mu.Unlock()
		s := &p.Sides[side]
		s.Wall += wall
		for group, secs := range cpuSince(before, after) {
			s.Processes = addShare(s.Processes, group, secs)
		}
		if profiling {
			if prof, perr := profile.Parse(&buf); perr == nil {
				for group, secs := range packageCPU(prof) {
					s.InProcess = addShare(s.InProcess, group, secs)
				}
			}
		}
		return err
	}
}

// window runs the part of a phase its figure measures. A phase that sets
// up a database or reads its results back passes only that part through
// it, so that its profile holds what the figure measures and not the set-up.
type window func(part func() error) error

// unprofiled is the window of a phase that is not profiled.
func unprofiled(part func() error) error { return part() }

// profiledWindow is the window of a profiled phase: it records the part's
// CPU time as profiled does.
func (e *Env) profiledWindow(id string, side int, name string) window {
	return func(part func() error) error { return e.profiled(id, side, name, part)() }
}

// profile returns the profile recorded under id, nil when none was.
func (e *Env) profile(id string) *Profile {
	e.profs.mu.Lock()
	defer e.profs.mu.Unlock()
	return e.profs.byM[id]
}

func addShare(shares []CPUShare, name string, secs float64) []CPUShare {
	if i := slices.IndexFunc(shares, func(s CPUShare) bool { return s.Name == name }); i >= 0 {
		shares[i].Seconds += secs
		return shares
	}
	return append(shares, CPUShare{Name: name, Seconds: secs})
}

// The process groups of processTimes.
const (
	groupBench    = "benchmark process (crmflow's edge, dispatcher, workers; the load generator)"
	groupTemporal = "Temporal server"
	groupPostgres = "PostgreSQL"
	groupOther    = "other processes"
)

// clockTicks is Linux's USER_HZ, the unit of /proc/<pid>/stat's times; it
// is 100 on every architecture Linux runs Go on.
const clockTicks = 100

// procTime is one process's group and the CPU time (user and system) it
// has used so far, in seconds.
type procTime struct {
	group   string
	seconds float64
}

// cpuSince sums, by group, the CPU time processes used between two reads:
// a process's whole time when it started in between, nothing for one that
// exited (its time went with it; the benchmark's processes live through a
// phase, and a pid is not reused within one).
func cpuSince(before, after map[int]procTime) map[string]float64 {
	out := map[string]float64{}
	for pid, a := range after {
		out[a.group] += a.seconds - before[pid].seconds
	}
	return out
}

// processTimes reads every process on the machine, by pid.
func processTimes() map[int]procTime {
	out := map[int]procTime{}
	self := os.Getpid()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue
		}
		// comm is in parentheses and may hold spaces; the fields after it
		// start with the state (field 3), so utime and stime (fields 14
		// and 15) are the 12th and 13th.
		open, end := bytes.IndexByte(raw, '('), bytes.LastIndexByte(raw, ')')
		if open < 0 || end < open {
			continue
		}
		comm := string(raw[open+1 : end])
		fields := strings.Fields(string(raw[end+1:]))
		if len(fields) < 13 {
			continue
		}
		utime, _ := strconv.ParseFloat(fields[11], 64)
		stime, _ := strconv.ParseFloat(fields[12], 64)
		group := groupOther
		switch {
		case pid == self:
			group = groupBench
		case comm == "standalone": // the embedded server's binary (testenv)
			group = groupTemporal
		case comm == "postgres":
			group = groupPostgres
		}
		out[pid] = procTime{group: group, seconds: (utime + stime) / clockTicks}
	}
	return out
}

// packageGroups name the package groups of the in-process split, by the
// prefix of a function's name; the first match wins.
var packageGroups = []struct{ prefix, name string }{
	{"github.com/crmflow/crmflow/tests/bench", "load generator (tests/bench)"},
	{"github.com/crmflow/crmflow", "crmflow"},
	{"github.com/jackc/", "pgx (PostgreSQL driver)"},
	{"go.temporal.io/", "Temporal SDK and API"},
	{"google.golang.org/", "gRPC and protobuf"},
	{"github.com/gogo/", "gRPC and protobuf"},
	{"github.com/stripe/", "stripe-go (webhook signatures)"},
	{"crypto/", "crypto"},
	{"compress/", "profile writing (gzip: the profiler's own cost)"},
	{"encoding/", "encoding (JSON and others)"},
	{"net/http", "net/http"},
	{"golang.org/x/net/", "net/http"},
	{"syscall.", "system calls (network, disk)"},
	{"internal/poll", "system calls (network, disk)"},
	{"internal/runtime/syscall", "system calls (network, disk)"},
	{"runtime.", "Go runtime (scheduler, garbage collector, memory)"},
	{"internal/runtime", "Go runtime (scheduler, garbage collector, memory)"},
}

// packageCPU sums a CPU profile's samples by the package group of the
// function each was taken in.
func packageCPU(p *profile.Profile) map[string]float64 {
	idx := slices.IndexFunc(p.SampleType, func(t *profile.ValueType) bool { return t.Type == "cpu" })
	out := map[string]float64{}
	if idx < 0 {
		return out
	}
	for _, s := range p.Sample {
		name := "other"
		if len(s.Location) > 0 && len(s.Location[0].Line) > 0 && s.Location[0].Line[0].Function != nil {
			fn := s.Location[0].Line[0].Function.Name
			// A module's path starts with a domain; the standard
			// library's first element has no dot.
			first := strings.SplitN(fn, "/", 2)[0]
			if !strings.Contains(fn, "/") {
				first = strings.SplitN(first, ".", 2)[0]
			}
			name = "other modules"
			if !strings.Contains(first, ".") {
				name = "other standard library"
			}
			for _, g := range packageGroups {
				if strings.HasPrefix(fn, g.prefix) {
					name = g.name
					break
				}
			}
		}
		out[name] += float64(s.Value[idx]) / 1e9
	}
	return out
}

// whereTimeGoes writes a measurement's profile: per process group and per
// package group of the benchmark process, the subject's and the baseline's
// CPU seconds, their share of the side's total and of its wall time, so the
// reader sees which component the subject spends more on than the baseline.
func whereTimeGoes(p func(format string, args ...any), prof *Profile) {
	if prof == nil {
		return
	}
	p("\n**Where the time goes.** CPU time of every round's phases while they do what their figure measures (not the fresh databases and rows set up before, nor the histories read after), by process (from /proc) and, within the benchmark process, by package (a CPU profile); "+
		"both sides profiled alike. %s took %s of wall time, %s %s; a core-second per wall-second is one of the machine's cores busy.\n\n",
		prof.Subject, prof.Sides[0].Wall.Round(time.Millisecond), prof.Baseline, prof.Sides[1].Wall.Round(time.Millisecond))
	table := func(title string, get func(PhaseProfile) []CPUShare) {
		names := []string{}
		totals := [2]float64{}
		for i, side := range prof.Sides {
			for _, s := range get(side) {
				if !slices.Contains(names, s.Name) {
					names = append(names, s.Name)
				}
				totals[i] += s.Seconds
			}
		}
		value := func(side int, name string) float64 {
			for _, s := range get(prof.Sides[side]) {
				if s.Name == name {
					return s.Seconds
				}
			}
			return 0
		}
		slices.SortFunc(names, func(a, b string) int {
			return compareFloat(value(0, b), value(0, a))
		})
		p("| %s | %s: CPU s (share, per wall s) | %s: CPU s (share, per wall s) |\n|---|---|---|\n", title, prof.Subject, prof.Baseline)
		cell := func(side int, v float64) string {
			share, perWall := 0.0, 0.0
			if totals[side] > 0 {
				share = 100 * v / totals[side]
			}
			if w := prof.Sides[side].Wall.Seconds(); w > 0 {
				perWall = v / w
			}
			return fmt.Sprintf("%s (%.0f%%, %s)", num(v), share, num(perWall))
		}
		// Rows under 2 % of both sides' totals go into one.
		var rest [2]float64
		for _, name := range names {
			v0, v1 := value(0, name), value(1, name)
			if v0 < 0.02*totals[0] && v1 < 0.02*totals[1] {
				rest[0], rest[1] = rest[0]+v0, rest[1]+v1
				continue
			}
			p("| %s | %s | %s |\n", name, cell(0, v0), cell(1, v1))
		}
		if rest[0] > 0 || rest[1] > 0 {
			p("| the rest (each under 2 %%) | %s | %s |\n", cell(0, rest[0]), cell(1, rest[1]))
		}
		p("| total | %s | %s |\n\n", cell(0, totals[0]), cell(1, totals[1]))
	}
	table("process", func(s PhaseProfile) []CPUShare { return s.Processes })
	table("in the benchmark process", func(s PhaseProfile) []CPUShare { return s.InProcess })
}

func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
