package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/crmflow/crmflow/inbox"
)

// Report is everything one `make bench` run measured and where.
type Report struct {
	Started time.Time
	Elapsed time.Duration
	Results []Result
	// Pool is the pgx pool size tuning pass; PoolSize the default pool size
	// the measurements ran with.
	Pool     []PoolTuning
	PoolSize int32
	// SignalCapacity is Temporal's SignalWithStart rate M3 was paced by.
	SignalCapacity float64
	Machine        Machine
	Versions       map[string]string
	Postgres       map[string]string
	Sizes          Sizes
	// Commit is the git commit measured, Dirty whether the work tree had
	// changes on top of it.
	Commit string
	Dirty  bool

	// Engines compares Temporal on SQLite and on PostgreSQL; nil when not run.
	Engines *EngineResults
}

// gitState reads the commit the sources are at and whether the work tree
// differs from it; "unknown" outside a git checkout.
func gitState() (commit string, dirty bool) {
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown", false
	}
	status, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output()
	return strings.TrimSpace(string(out)), err != nil || len(bytes.TrimSpace(status)) > 0
}

// Machine describes the host the run measured on.
type Machine struct {
	CPUs, GOMAXPROCS int
	CPUModel, Memory string
	// LoadBefore and LoadAfter are /proc/loadavg's 1, 5 and 15 minute load
	// averages: on a shared machine they show how busy it was.
	LoadBefore, LoadAfter string
}

// readMachine reads the CPU count, model, memory and load of this host.
func readMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), CPUModel: "unknown", Memory: "unknown"}
	if v, ok := procField("/proc/cpuinfo", "model name"); ok {
		m.CPUModel = v
	}
	if v, ok := procField("/proc/meminfo", "MemTotal"); ok {
		var kb int64
		if _, err := fmt.Sscanf(v, "%d kB", &kb); err == nil {
			m.Memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	m.LoadBefore = loadAverage()
	return m
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// temporalServerLabel names the Temporal server's row in Report.Versions.
const temporalServerLabel = "Temporal server (embedded, a child process, SQLite in memory)"

// moduleVersions are the versions of the engines and SDKs the benchmark
// was built with, read from the module's go.mod (a test binary carries no
// dependency list in its build info).
func moduleVersions() map[string]string {
	out := map[string]string{"Go": runtime.Version()}
	want := map[string]string{
		"go.temporal.io/server":           temporalServerLabel,
		"go.temporal.io/sdk":              "Temporal Go SDK",
		"github.com/jackc/pgx/v5":         "pgx",
		"github.com/stripe/stripe-go/v76": "stripe-go",
	}
	b, err := os.ReadFile(findGoMod())
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 {
			if name, ok := want[f[0]]; ok {
				out[name] = f[1]
			}
		}
	}
	return out
}

// findGoMod returns the path of the nearest go.mod above the working
// directory (tests run in their package's directory), or "".
func findGoMod() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		p := filepath.Join(dir, "go.mod")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// postgresSettings reads the server version and the settings that decide
// what a commit costs.
func postgresSettings(ctx context.Context, url string) (map[string]string, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	out := map[string]string{}
	for key, q := range map[string]string{
		"version":            "SELECT current_setting('server_version')",
		"fsync":              "SHOW fsync",
		"synchronous_commit": "SHOW synchronous_commit",
		"full_page_writes":   "SHOW full_page_writes",
		"max_connections":    "SHOW max_connections",
		"shared_buffers":     "SHOW shared_buffers",
	} {
		var v string
		if err := conn.QueryRow(ctx, q).Scan(&v); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		out[key] = v
	}
	return out, nil
}

// Run runs every measurement in order (M1/M2 first: M3 is paced by the
// Temporal capacity they measure) and the pool tuning pass.
func (e *Env) Run(ctx context.Context, tb testing.TB) (*Report, error) {
	rep := &Report{Started: time.Now(), Machine: readMachine(), Versions: moduleVersions(), Sizes: e.Sizes}
	rep.Commit, rep.Dirty = gitState()
	pg, err := postgresSettings(ctx, e.NewDatabase(tb))
	if err != nil {
		return nil, fmt.Errorf("postgresql settings: %w", err)
	}
	rep.Postgres = pg

	ingest, err := e.Ingest(ctx, tb)
	if err != nil {
		return nil, fmt.Errorf("M1/M2: %w", err)
	}
	rep.PoolSize, rep.SignalCapacity = ingest.PoolSize, ingest.SignalCapacity
	m3, err := e.Latency(ctx, tb, ingest.SignalCapacity)
	if err != nil {
		return nil, fmt.Errorf("M3: %w", err)
	}
	// M8 measures the capacity it is paced by before each of its rounds.
	m8, err := e.Handoff(ctx, tb)
	if err != nil {
		return nil, fmt.Errorf("M8: %w", err)
	}
	m4, err := e.Drain(ctx, tb)
	if err != nil {
		return nil, fmt.Errorf("M4: %w", err)
	}
	m5, _, err := e.Duplicates(ctx, tb)
	if err != nil {
		return nil, fmt.Errorf("M5: %w", err)
	}
	m6, _, err := e.Orders(ctx, tb)
	if err != nil {
		return nil, fmt.Errorf("M6: %w", err)
	}
	m7, _, err := e.StockBurst(ctx, tb)
	if err != nil {
		return nil, fmt.Errorf("M7: %w", err)
	}
	m9, _, err := e.Effect(ctx, tb)
	if err != nil {
		return nil, fmt.Errorf("M9: %w", err)
	}
	m10, _, err := e.Storage(ctx, tb)
	if err != nil {
		return nil, fmt.Errorf("M10: %w", err)
	}
	rep.Results = []Result{ingest.M1, ingest.M2, m3, m4, m5, m6, m7, m8, m9, m10}
	for i := range rep.Results {
		rep.Results[i].Profile = e.profile(rep.Results[i].ID)
	}
	if rep.Pool, err = e.TunePool(ctx, tb); err != nil {
		return nil, fmt.Errorf("pool tuning: %w", err)
	}
	if e.PostgresEngine != nil {
		if rep.Engines, err = e.Engines(ctx, tb); err != nil {
			return nil, fmt.Errorf("both engines: %w", err)
		}
	}
	rep.Machine.LoadAfter = loadAverage()
	rep.Elapsed = time.Since(rep.Started)
	return rep, nil
}

// Markdown renders the report as BENCHMARKS.md.
func (r *Report) Markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Benchmarks\n\n")
	dirty := "clean work tree"
	if r.Dirty {
		dirty = "work tree with uncommitted changes"
	}
	p("Generated by `make bench` (package `tests/bench`) on %s in %s, measuring commit `%s` (%s). Do not edit by hand: run `make bench` again. "+
		"Every number below comes from that run.\n\n",
		r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Elapsed.Round(time.Second), r.Commit, dirty)
	p("Every figure is the median of %d interleaved rounds (baseline, subject, baseline, subject, …) with its minimum and maximum; "+
		"every ratio is computed per round and then summarised, so drift of the machine during the run hits subject and baseline alike. "+
		"M1–M4, M6, M8 and M9 run their phases in reverse order every other round (ABBA), M10 its two tables every other day: the engines slow down as data accumulates over the run, "+
		"and a fixed order would hand that to whichever phase always ran last. "+
		"A missed target is reported as MISS here and in the summary; `make bench` does not fail because of it.\n\n", r.Sizes.Rounds)
	p("PostgreSQL ran with fsync=%s, synchronous_commit=%s, full_page_writes=%s (read back with SHOW); Temporal is the embedded server the tests use, in a child process. "+
		"`go test ./tests/bench/` (part of `make test`) runs every measurement in miniature to check the harness, without timing anything.\n\n",
		r.Postgres["fsync"], r.Postgres["synchronous_commit"], r.Postgres["full_page_writes"])
	p("Load average on the %d cores: %s before, %s after. Other work on the machine lowers the absolute rates "+
		"and adds noise; the ratios, measured side by side, are what to read.\n\n",
		r.Machine.CPUs, r.Machine.LoadBefore, r.Machine.LoadAfter)

	p("## Summary\n\n")
	p("| # | what | figure (median) | ratio to baseline (median, min–max) | target | result |\n|---|---|---|---|---|---|\n")
	for _, res := range r.summaryResults() {
		var rs []string
		for _, f := range res.Ratios {
			rs = append(rs, fmt.Sprintf("%s %s (%s–%s%s)", f.Name, f.format(f.Stats.Median), f.format(f.Stats.Min), f.format(f.Stats.Max), prefixed("; ", f.roundsMet())))
		}
		ratio := strings.Join(rs, "; ")
		if ratio == "" {
			ratio = "—"
		}
		verdict := "**PASS**"
		if !res.Pass {
			verdict = "**MISS**"
		}
		p("| %s | %s | %s | %s | %s | %s |\n", res.ID, res.What, res.Headline, ratio, res.Target, verdict)
	}

	p("\n## Measurements\n")
	for _, res := range r.Results {
		p("\n### %s — %s\n\n", res.ID, res.What)
		p("| figure | unit | median | min | max | per round |\n|---|---|---|---|---|---|\n")
		row := func(f Figure) {
			var per []string
			for _, v := range f.Stats.Values {
				per = append(per, f.format(v))
			}
			p("| %s | %s | %s | %s | %s | %s |\n", f.Name, f.Unit, f.format(f.Stats.Median), f.format(f.Stats.Min), f.format(f.Stats.Max),
				strings.Join(per, ", "))
		}
		row(res.Subject)
		for _, f := range res.Baselines {
			row(f)
		}
		for _, f := range res.Ratios {
			row(f)
		}
		for _, f := range res.Extra {
			row(f)
		}
		p("\n%d rounds in %s. Target: %s.\n", res.Rounds, res.Elapsed.Round(time.Second), res.Target)
		for _, n := range res.Notes {
			p("\n%s\n", n)
		}
		whereTimeGoes(p, res.Profile)
	}

	if len(r.Pool) > 0 {
		p("\n## Tuning: pgx pool size\n\n")
		p("The measurements above ran on a pool of %d connections (the store's pool MaxConns, read back). The same one-row-per-commit raw insert and webhook phases as M1/M2, "+
			"with `pool_max_conns` set in the database URL, sizes interleaved within each round:\n\n", r.PoolSize)
		p("| pool_max_conns | raw insert, one row per commit, rows/s (median, min–max) | webhooks/s (median, min–max) |\n|---|---|---|\n")
		for _, t := range r.Pool {
			p("| %d | %s (%s–%s) | %s (%s–%s) |\n", t.PoolSize, num(t.RawInsert.Median), num(t.RawInsert.Min), num(t.RawInsert.Max),
				num(t.Webhooks.Median), num(t.Webhooks.Min), num(t.Webhooks.Max))
		}
	}

	r.bothEngines(p)
	r.findings(p)

	p("\n## Where it ran\n\n")
	p("| | |\n|---|---|\n")
	p("| CPU | %d × %s (GOMAXPROCS %d) |\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.GOMAXPROCS)
	p("| memory | %s |\n", r.Machine.Memory)
	p("| load average (1, 5, 15 min) | before %s, after %s |\n", r.Machine.LoadBefore, r.Machine.LoadAfter)
	for _, k := range []string{"Go", temporalServerLabel, "Temporal Go SDK", "pgx", "stripe-go"} {
		if v, ok := r.Versions[k]; ok {
			p("| %s | %s |\n", k, v)
		}
	}
	p("| PostgreSQL | %s, started from the machine's binaries with fsync=%s, synchronous_commit=%s, full_page_writes=%s, "+
		"shared_buffers=%s, max_connections=%s, data on the local disk |\n",
		r.Postgres["version"], r.Postgres["fsync"], r.Postgres["synchronous_commit"], r.Postgres["full_page_writes"],
		r.Postgres["shared_buffers"], r.Postgres["max_connections"])
	p("| pgx pool | %d connections (the store's pool MaxConns) |\n", r.PoolSize)
	p("| inbox | %d commits at once (inbox.Committers) |\n", inbox.Committers)
	p("| dispatcher | production DispatcherOptions (the zero value, the package's defaults), %d hand-offs at once |\n", inbox.DefaultHandOffConcurrency)
	p("| workers | worker.New defaults: SDK default pollers and slots, stop timeout %s; the M6 baseline worker uses the same options |\n", workerStopTimeout)
	r.engineRows(p)
	p("| load generator | in the same process, on the same cores, over loopback HTTP; %d senders for M1, M2, M7 and M10 |\n", r.Sizes.Senders)
	return b.String()
}

// figure finds a measurement's figure by name in its subject, baselines,
// ratios and extras.
func (r *Report) figure(id, name string) (Stats, bool) {
	for _, res := range r.Results {
		if res.ID != id {
			continue
		}
		all := append([]Figure{res.Subject}, res.Baselines...)
		all = append(all, res.Ratios...)
		all = append(all, res.Extra...)
		for _, f := range all {
			if f.Name == name {
				return f.Stats, true
			}
		}
	}
	return Stats{}, false
}

// findings states what the figures of this run say about where the time
// goes and which knob would move it; every number is from this run.
func (r *Report) findings(p func(format string, args ...any)) {
	p("\n## What the numbers say\n\n")
	if m1, ok := r.figure("M1", "inbox/best raw"); ok {
		m2, _ := r.figure("M2", "webhooks/best raw")
		m1Rows, _ := r.figure("M1", "rows per inbox commit (mean)")
		m2Rows, _ := r.figure("M2", "rows per inbox commit (mean)")
		aa, _ := r.figure("M1", rawAsSubjectRatio)
		busy, _ := r.figure("M1", fmt.Sprintf(committersBusyFigure, inbox.Committers))
		rawBusy, _ := r.figure("M1", fmt.Sprintf(rawBusyFigure, inbox.Committers))
		same, _ := r.figure("M1", fmt.Sprintf(sameConcurrencyRatio, inbox.Committers))
		busyPart, _ := r.figure("M1", busyPartFigure)
		commitPart, _ := r.figure("M1", commitPartFigure)
		p("- **Shared commits (M1, M2).** InsertInboxEvent ran at %s× the best raw pgx insert of the same rows and signed webhooks at %s× it, "+
			"where the best raw insert is whichever of one row per commit and multi-row unnest inserts at exactly the commit sizes the inbox formed "+
			"(a mean of %s rows per commit for M1 and %s for M2 in this run) had the highest median; the raw unnest insert itself, run in the "+
			"inbox's place and scored the same way, came out at %s×, which is where a subject with no cost of its own lands in this run. Concurrent inbox writes queue behind %d committers; a caller that takes a free one "+
			"yields once, so writers ready to run can queue too, then writes the queue in one plain INSERT and one WAL flush, and goes on with "+
			"what queued meanwhile before it frees the committer (`inbox/ingest.go`). A batch sends the columns only some events set "+
			"(ignored, held back, recovered, traced) only when one of its rows sets them, so a batch of routed, untraced events, as in these "+
			"phases, sends the six arrays the raw inserts send; only a batch the unique key refuses goes again with ON CONFLICT. Every caller is answered only once its own row is durable. "+
			"Better sharing raises the baseline with the subject, since the raw inserts replay the same commit sizes; what the inbox does that they do not is "+
			"gather each commit from callers that each wait for their own row, where the raw inserts run ready-made batches back to back. "+
			"In M1, against the raw unnest insert from as many goroutines as it has committers (%d), the inbox ran at %s× (median of the rounds); "+
			"its committers were committing for %s of each phase and the raw insert's workers for %s, a ratio of %s, "+
			"and the raw insert's commit took %s× as long as the inbox's (each ratio taken round by round; their product is about the rate's ratio). "+
			"What the share leaves is time a committer spent not writing: after each commit, until the callers it answered have queued their next rows and it has taken them.\n",
			num(m1.Median), num(m2.Median), num(m1Rows.Median), num(m2Rows.Median), num(aa.Median), inbox.Committers,
			inbox.Committers, num(same.Median), num(busy.Median), num(rawBusy.Median), num(busyPart.Median), num(commitPart.Median))
	}
	if used, ok := r.poolUsed(); ok && len(r.Pool) > 1 {
		raw, hooks := r.Pool[0], r.Pool[0]
		for _, t := range r.Pool[1:] {
			if t.RawInsert.Median > raw.RawInsert.Median {
				raw = t
			}
			if t.Webhooks.Median > hooks.Webhooks.Median {
				hooks = t
			}
		}
		p("- **pgx pool size.** The measurements ran on %d connections. With durable commits the one-row raw insert was fastest at %d connections "+
			"(%s rows/s, %s× its figure at %d) and webhooks at %d (%s/s, %s×). The pool size is set by `pool_max_conns` in `CRMFLOW_DATABASE_URL`; "+
			"a different default would belong in `store.Open` (`internal/store/store.go`).\n",
			used.PoolSize, raw.PoolSize, num(raw.RawInsert.Median), num(raw.RawInsert.Median/used.RawInsert.Median), used.PoolSize,
			hooks.PoolSize, num(hooks.Webhooks.Median), num(hooks.Webhooks.Median/used.Webhooks.Median))
	}
	if alone, ok := r.figure("M3", "p99 latency with the dispatcher stopped, every request of every round"); ok {
		with, _ := r.figure("M3", "p99 latency over every request of every round")
		worst, _ := r.figure("M3", "max latency over every request of every round")
		offered, _ := r.figure("M3", "offered rate (5× SignalWithStart capacity)")
		closed, _ := r.figure("M2", "webhooks acknowledged")
		coldP99, _ := r.figure("M3", "cold edge: p99 latency over every request of every round")
		coldMax, _ := r.figure("M3", "cold edge: max latency over every request of every round")
		coldFirst, _ := r.figure("M3", "cold edge: p99 latency of the first second, every round")
		late, _ := r.figure("M3", sentLateFigure)
		p("- **Latency under a growing backlog (M3).** Over every request of every round, p99 was %s ms (maximum %s ms) with the dispatcher handing off "+
			"to Temporal and %s ms with it stopped (%s× with it than without), at the same offered rate of %s/s, which is %s of the closed-loop rate M2 reached. "+
			"On a cold edge under the same load p99 was %s ms (maximum %s ms; %s ms over the first second). "+
			"The embedded Temporal server, the dispatcher, the handler and the load generator share the machine's cores (see the load average): "+
			"the load generator itself sent 99%% of its requests within %s ms of their slots, and a request's latency counts from its slot. "+
			"The per-round rows of the table show how much the rounds differ.\n",
			num(with.Median), num(worst.Median), num(alone.Median), num(with.Median/max(alone.Median, 0.001)), num(offered.Median),
			fmt.Sprintf("%.0f%%", 100*offered.Median/max(closed.Median, 1)), num(coldP99.Median), num(coldMax.Median), num(coldFirst.Median), num(late.Median))
	}
	if sr, ok := r.figure("M4", "starter/raw (Temporal-side cost of crmflow's start options)"); ok {
		ds, _ := r.figure("M4", "dispatcher/starter (inbox claim and mark)")
		cs, _ := r.figure("M4", "concurrent/one at a time")
		conc := inbox.DefaultHandOffConcurrency
		slotsBusy, _ := r.figure("M4", fmt.Sprintf(handOffBusyFigure, conc))
		callersBusy, _ := r.figure("M4", fmt.Sprintf(rawCallBusyFigure, conc))
		slotsPart, _ := r.figure("M4", slotsPartFigure)
		callPart, _ := r.figure("M4", callPartFigure)
		p("- **Drain (M4).** starter.SignalPayment ran at %s× bare SignalWithStart calls (what separates them is crmflow's start options: "+
			"conflict and reuse policy, the CrmflowOrderID search attribute), "+
			"and the dispatcher at %s× the starter (what separates those is the inbox bookkeeping: claiming rows, one look-up of the orders per claim, and marking rows delivered, several to a commit). "+
			"The dispatcher's %d hand-off slots were handing off for %s of the drain (median over rounds) and the raw callers were calling for %s of theirs, a ratio of %s, "+
			"and a raw call took %s× as long as a hand-off (each ratio taken round by round; their product is about dispatcher/raw): "+
			"a smaller share is slots waiting for claimed rows, a hand-off longer than a raw call is crmflow's start options and Temporal answering slower beside the inbox's bookkeeping on the same cores. "+
			"Handing off %d workflows' events at once ran at %s× the same drain with one hand-off at a time.\n",
			num(sr.Median), num(ds.Median), conc, num(slotsBusy.Median), num(callersBusy.Median), num(slotsPart.Median), num(callPart.Median),
			conc, num(cs.Median))
	}
	offered, m8 := r.figure("M8", "offered rate (half the SignalWithStart capacity)")
	drain, m4 := r.figure("M4", "dispatcher hand-offs")
	if m8 && m4 {
		p50, _ := r.figure("M8", "p50 commit to signal in history, every event of every round")
		rawP50, _ := r.figure("M8", "p50 raw SignalWithStart, every call of every round")
		queued, _ := r.figure("M8", "in the dispatcher: claim to call (order look-up, then a free slot), p99")
		queuedMean, _ := r.figure("M8", "in the dispatcher: claim to call, mean")
		call, _ := r.figure("M8", "in the dispatcher: the call, until Temporal answered, p99")
		callMean, _ := r.figure("M8", "in the dispatcher: the call, mean")
		late, _ := r.figure("M8", generatorLateFigure+", commits, p99")
		rawLate, _ := r.figure("M8", generatorLateFigure+", raw calls, p99")
		p("- **Hand-off latency (M8).** The offered rate, %s events/s (the median over rounds, each half the SignalWithStart capacity measured just before it), was %s× the rate the dispatcher drained a committed backlog at in M4 (%s/s, "+
			"measured later in the same run); raw SignalWithStart calls at that rate have no limit on calls in flight, the dispatcher has %d. "+
			"Half of the hand-offs took longer than %s ms from commit to history, against %s ms for the raw calls. "+
			"The load generator made its commits %s ms and its raw calls %s ms after their slots in the schedule at p99, a delay neither clock counts. "+
			"Inside the dispatcher a claimed row waited %s ms at p99 (mean %s ms) for its order look-up and a free slot, and its call took %s ms at p99 (mean %s ms) until Temporal answered: %s.\n",
			num(offered.Median), num(offered.Median/max(drain.Median, 0.001)), num(drain.Median), inbox.DefaultHandOffConcurrency,
			num(p50.Median), num(rawP50.Median), num(late.Median), num(rawLate.Median), num(queued.Median), num(queuedMean.Median), num(call.Median), num(callMean.Median),
			tailCause(queued.Median, call.Median))
	}
	if ev, ok := r.figure("M6", "history events of one OrderConfirmation"); ok {
		mev, _ := r.figure("M6", "history events of one minimal run")
		up, _ := r.figure("M6", "search-attribute upserts in one OrderConfirmation")
		strict, _ := r.figure("M6", "crmflow/minimal")
		apart, _ := r.figure("M6", "crmflow/minimal with its activities apart (no eager dispatch)")
		p("- **Order confirmations (M6).** One confirmation's history has %s events against %s for the minimal workflow with as many activities; "+
			"%s of them are search-attribute upserts and %s other events the minimal run does not have. "+
			"Every history event is written by Temporal, and an upsert is also indexed for visibility. "+
			"The minimal workflow's activities run on its own queue, so Temporal hands each to its worker in the answer to the workflow task that scheduled it; "+
			"crmflow's provider activities run on their providers' queues (the breaker pauses one provider there) and each goes through matching. "+
			"Against a minimal workflow whose activities also run apart, crmflow ran at %s× (%s–%s), against %s× with them on its own queue.\n",
			num(ev.Median), num(mev.Median), num(up.Median), num(ev.Median-mev.Median-up.Median),
			num(apart.Median), num(apart.Min), num(apart.Max), num(strict.Median))
	}
	for _, res := range r.Results {
		if !res.Pass && res.Profile != nil {
			p("- %s\n", coresSentence(res.ID, res.Profile, r.Machine.CPUs))
		}
	}
}

// poolUsed is the tuning row of the pool size the measurements ran with.
func (r *Report) poolUsed() (PoolTuning, bool) {
	for _, t := range r.Pool {
		if t.PoolSize == int(r.PoolSize) {
			return t, t.RawInsert.Median > 0 && t.Webhooks.Median > 0
		}
	}
	return PoolTuning{}, false
}

// tailCause says which part of the dispatcher's hand-off made the longer
// tail: the wait before the call or the call itself, and whether the other
// part mattered too.
func tailCause(queuedP99, callP99 float64) string {
	switch {
	case queuedP99 >= callP99:
		return "the longer tail is rows waiting behind calls in flight (every slot held a call Temporal was slow to answer), which open-loop raw calls never do"
	case queuedP99 < callP99/4:
		return "the tail is in the calls themselves; rows hardly waited for a slot"
	}
	return "the longer tail is in the calls themselves, and while they were slow the rows behind them waited for a slot, which open-loop raw calls never do"
}

// coresSentence says, for a measurement that missed its target, which
// process spent the most of the machine's cores during its subject, against
// its baseline, and how much of the benchmark process's own time was
// crmflow's code.
func coresSentence(id string, prof *Profile, cores int) string {
	perWall := func(side int, name string) float64 {
		w := prof.Sides[side].Wall.Seconds()
		for _, s := range prof.Sides[side].Processes {
			if s.Name == name && w > 0 {
				return s.Seconds / w
			}
		}
		return 0
	}
	// top is the busiest process during the subject; next is the
	// benchmark process, or the busiest after it when it is top.
	top, next := "", ""
	for _, s := range prof.Sides[0].Processes {
		switch {
		case top == "" || perWall(0, s.Name) > perWall(0, top):
			top, next = s.Name, top
		case next == "" || perWall(0, s.Name) > perWall(0, next):
			next = s.Name
		}
	}
	if top != groupBench {
		next = groupBench
	}
	var own, all float64
	for _, s := range prof.Sides[0].InProcess {
		all += s.Seconds
		if s.Name == "crmflow" {
			own = s.Seconds
		}
	}
	crmflowShare := 0.0
	if all > 0 {
		crmflowShare = 100 * own / all
	}
	// busy is every process together: near the core count, the subject
	// waited for cores rather than for any one process.
	busy := func(side int) float64 {
		total := 0.0
		for _, s := range prof.Sides[side].Processes {
			total += perWall(side, s.Name)
		}
		return total
	}
	return fmt.Sprintf("**Where the cores went (%s).** During %s the %s kept %s of the machine's %d cores busy per second of wall time (%s during %s), "+
		"the %s %s (%s), and all processes together %s (%s); crmflow's own code took %.0f%% of the benchmark process's sampled time. The tables under %s break this down.",
		id, prof.Subject, top, num(perWall(0, top)), cores, num(perWall(1, top)), prof.Baseline,
		next, num(perWall(0, next)), num(perWall(1, next)), num(busy(0)), num(busy(1)), crmflowShare, id)
}
