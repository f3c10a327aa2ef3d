package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/inbox"
)

// Engine is a Temporal server the benchmark runs on.
type Engine struct {
	// Name heads the engine's column in the report.
	Name string
	// Addr and Namespace locate its frontend.
	Addr, Namespace string
	// PostgresURL reaches the database that holds the engine's state, to
	// read its settings back; empty for an engine on SQLite.
	PostgresURL string
	// Where says in words where that state is kept, for the report.
	Where string
}

// EngineInfo is what an engine says about itself, read back from it.
type EngineInfo struct {
	Name string
	// ServerVersion, PersistenceStore, VisibilityStore and HistoryShards
	// are the frontend's answer to GetClusterInfo.
	ServerVersion, PersistenceStore, VisibilityStore string
	HistoryShards                                    int32
	// Postgres are the settings (SHOW) of the PostgreSQL that holds the
	// engine's state; nil for SQLite.
	Postgres map[string]string
	// Where is Engine.Where.
	Where string
}

// readEngineInfo asks the engine's frontend how it stores its state and,
// for PostgreSQL, that database how durably.
func readEngineInfo(ctx context.Context, en Engine, c client.Client) (EngineInfo, error) {
	resp, err := c.WorkflowService().GetClusterInfo(ctx, &workflowservice.GetClusterInfoRequest{})
	if err != nil {
		return EngineInfo{}, fmt.Errorf("cluster info: %w", err)
	}
	info := EngineInfo{
		Name: en.Name, Where: en.Where, ServerVersion: resp.GetServerVersion(), HistoryShards: resp.GetHistoryShardCount(),
		PersistenceStore: resp.GetPersistenceStore(), VisibilityStore: resp.GetVisibilityStore(),
	}
	if en.PostgresURL != "" {
		if info.Postgres, err = postgresSettings(ctx, en.PostgresURL); err != nil {
			return EngineInfo{}, fmt.Errorf("settings of the engine's postgresql: %w", err)
		}
	}
	return info, nil
}

// EngineFigure is one figure measured on both engines in the same rounds.
type EngineFigure struct {
	Name, Unit       string
	SQLite, Postgres Stats
	// PostgresOverSQLite is the PostgreSQL figure over the SQLite one,
	// round by round.
	PostgresOverSQLite Stats
	// Bound is the value a target compares the figure with on each engine,
	// 0 when none does (as Figure's).
	Bound float64
	// key names the figure for the report's prose.
	key string
}

// against sets the target the figure is judged by on each engine.
func (f EngineFigure) against(t ratioTarget) EngineFigure {
	f.Bound = float64(t)
	return f
}

// The keys of EngineResults.Figures.
const (
	keyCapacity = "capacity"
	keyRaw      = "raw"
	keyDrain    = "drain"
	keyM4       = "m4"
	keyMinimal  = "minimal"
	keyConfirm  = "confirm"
	keyM6       = "m6"
	keyDirect   = "direct"
	keyHooks    = "hooks"
	keyM9       = "m9"
)

// EngineResults is the "Both engines" measurement: the engine baselines,
// M4, M6 and M9 on Temporal on SQLite and on Temporal on PostgreSQL.
type EngineResults struct {
	SQLite, Postgres EngineInfo
	Figures          []EngineFigure
	// M4, M6 and M9 are the PostgreSQL engine's M4, M6 and M9, judged by
	// their targets, as the summary lists them.
	M4, M6, M9 Result
	// Activities is how many activities one confirmation ran (on both
	// engines), and so how many the minimal workflow runs.
	Activities int
	// LocalActivities is how many local activities it ran.
	LocalActivities int
	// Confirmed and Notified count, per engine (SQLite, PostgreSQL), the
	// orders confirmed in PostgreSQL (warm-up included) and the Knock
	// order-confirmation triggers recorded.
	Confirmed, Notified [2]int
	// Webhooks and Direct count, per engine, M9's orders confirmed and
	// notified through the edge and started directly (warm-up included).
	Webhooks, Direct [2]int
	Sizes            Sizes
	Elapsed          time.Duration
}

// figure returns the figure with the given key.
func (en *EngineResults) figure(key string) EngineFigure {
	for _, f := range en.Figures {
		if f.key == key {
			return f
		}
	}
	return EngineFigure{}
}

// engineSide is one engine's client, order and effect rigs and per-round
// figures.
type engineSide struct {
	engine   Engine
	c        client.Client
	orders   *orderRig
	effect   *effectRig
	noWorker string

	capacity, raw, drain, minimal, confirm, direct, hooks []float64
}

func (s *engineSide) close() {
	if s.effect != nil {
		s.effect.close()
	}
	if s.orders != nil {
		s.orders.close()
	}
	if s.c != nil {
		s.c.Close()
	}
}

// openSide dials the engine, starts the order rig's workers on it and warms
// it up with as many SignalWithStart calls as there are senders, as Ingest
// does before its rounds.
func (e *Env) openSide(ctx context.Context, tb testing.TB, s *engineSide) error {
	var err error
	if s.c, err = dialTemporal(s.engine.Addr, s.engine.Namespace, nil); err != nil {
		return err
	}
	if s.orders, err = e.newOrderRig(ctx, tb, s.c); err != nil {
		return err
	}
	if s.effect, err = e.newEffectRig(ctx, tb, s.c); err != nil {
		return err
	}
	s.noWorker = e.queue("engines-no-worker")
	_, err = rawSignalWithStart(ctx, s.c, s.noWorker, fmt.Sprintf("engines-warm-%d", time.Now().UnixNano()), e.Sizes.Senders, e.Sizes.Senders)
	return err
}

// sidePhases are one round's work on the side's engine: the SignalWithStart
// capacity as M2 measures it, M4's baseline and subject, M6's baseline and
// subject. Each reuses the measurement's own code with this engine's client.
func (e *Env) sidePhases(ctx context.Context, tb testing.TB, s *engineSide, prefix string) []func() error {
	sz := e.Sizes
	timed := func(into *[]float64, n int, run func() (time.Duration, error)) func() error {
		return func() error {
			d, err := run()
			*into = append(*into, rate(n, d))
			return err
		}
	}
	return []func() error{
		func() error {
			capacity, err := e.signalCapacity(ctx, s.c, s.noWorker, prefix+"-cap")
			s.capacity = append(s.capacity, capacity)
			return err
		},
		timed(&s.raw, sz.Backlog, func() (time.Duration, error) {
			return rawSignalWithStart(ctx, s.c, s.noWorker, prefix+"-raw", sz.Backlog, inbox.DefaultHandOffConcurrency)
		}),
		timed(&s.drain, sz.Backlog, func() (time.Duration, error) {
			d, _, err := e.drainInbox(ctx, tb, s.c, s.noWorker, prefix+"-drain", defaultDispatcher(), unprofiled)
			return d, err
		}),
		timed(&s.minimal, sz.Orders, func() (time.Duration, error) { return s.orders.minimal(ctx, prefix, sz.Orders) }),
		timed(&s.confirm, sz.Orders, func() (time.Duration, error) { return s.orders.confirm(ctx, prefix, sz.Orders) }),
		timed(&s.direct, sz.Orders, func() (time.Duration, error) { return s.effect.viaStarter(ctx, prefix+"-m9-direct", sz.Orders) }),
		timed(&s.hooks, sz.Orders, func() (time.Duration, error) { return s.effect.viaWebhooks(ctx, prefix+"-m9-hook", sz.Orders) }),
	}
}

// Engines measures "Both engines": every round runs the engine baselines,
// M4, M6 and M9 on Temporal on SQLite (the server the other measurements use)
// and then on Temporal on PostgreSQL persistence (started here, so it does
// not idle beside the others), with the whole sequence reversed every other
// round (ABBA).
func (e *Env) Engines(ctx context.Context, tb testing.TB) (*EngineResults, error) {
	if e.PostgresEngine == nil {
		return nil, errors.New("no Temporal on PostgreSQL to compare with (Env.PostgresEngine is nil)")
	}
	started := time.Now()
	sz := e.Sizes
	sides := []*engineSide{
		{engine: Engine{Name: "SQLite", Addr: e.TemporalAddr, Namespace: e.Namespace, Where: "in memory"}},
		{engine: e.PostgresEngine(tb)},
	}
	infos := make([]EngineInfo, len(sides))
	for i, s := range sides {
		defer s.close()
		if err := e.openSide(ctx, tb, s); err != nil {
			return nil, fmt.Errorf("temporal on %s: %w", s.engine.Name, err)
		}
		info, err := readEngineInfo(ctx, s.engine, s.c)
		if err != nil {
			return nil, fmt.Errorf("temporal on %s: %w", s.engine.Name, err)
		}
		infos[i] = info
	}
	if a, b := sides[0].orders.shape, sides[1].orders.shape; a.Activities != b.Activities || a.LocalActivities != b.LocalActivities {
		return nil, fmt.Errorf("a confirmation ran %d+%d local activities on %s and %d+%d on %s",
			a.Activities, a.LocalActivities, sides[0].engine.Name, b.Activities, b.LocalActivities, sides[1].engine.Name)
	}

	for r := range sz.Rounds {
		var phases []func() error
		for _, s := range sides {
			phases = append(phases, e.sidePhases(ctx, tb, s, fmt.Sprintf("eng%d-%s-%d", time.Now().UnixNano(), s.engine.Name, r))...)
		}
		if err := alternate(r, phases...); err != nil {
			return nil, fmt.Errorf("round %d: %w", r+1, err)
		}
		for _, s := range sides {
			e.logf("engines round %d on %s: SignalWithStart %.0f/s, raw %.1f/s, dispatcher %.1f/s, minimal workflow %.1f/s, order confirmation %.1f/s",
				r+1, s.engine.Name, s.capacity[r], s.raw[r], s.drain[r], s.minimal[r], s.confirm[r])
		}
	}

	res := &EngineResults{SQLite: infos[0], Postgres: infos[1], Activities: sides[0].orders.shape.Activities,
		LocalActivities: sides[0].orders.shape.LocalActivities, Sizes: sz}
	for i, s := range sides {
		var err error
		if res.Confirmed[i], res.Notified[i], err = s.orders.outcome(ctx); err != nil {
			return nil, err
		}
		res.Webhooks[i], res.Direct[i] = s.effect.webhooks, s.effect.direct
	}
	pair := func(key, name, unit string, of func(s *engineSide) []float64) EngineFigure {
		a, b := of(sides[0]), of(sides[1])
		return EngineFigure{Name: name, Unit: unit, SQLite: summarise(a), Postgres: summarise(b), PostgresOverSQLite: summarise(ratios(b, a)), key: key}
	}
	conc := inbox.DefaultHandOffConcurrency
	res.Figures = []EngineFigure{
		pair(keyCapacity, fmt.Sprintf("raw SignalWithStart, %d concurrent (the engine capacity M2 and M3 use)", sz.Senders), "calls/s",
			func(s *engineSide) []float64 { return s.capacity }),
		pair(keyRaw, fmt.Sprintf("M4 baseline: raw SignalWithStart, %d concurrent", conc), "calls/s",
			func(s *engineSide) []float64 { return s.raw }),
		pair(keyDrain, "M4: dispatcher hand-offs", "events/s", func(s *engineSide) []float64 { return s.drain }),
		pair(keyM4, "M4: dispatcher/raw", "×", func(s *engineSide) []float64 { return ratios(s.drain, s.raw) }).against(drainTarget),
		pair(keyMinimal, fmt.Sprintf("M6 baseline: minimal workflow, %d no-op activities and %d local", res.Activities, res.LocalActivities), "workflows/s",
			func(s *engineSide) []float64 { return s.minimal }),
		pair(keyConfirm, "M6: OrderConfirmation completed", "orders/s", func(s *engineSide) []float64 { return s.confirm }),
		pair(keyM6, "M6: crmflow/minimal", "×", func(s *engineSide) []float64 { return ratios(s.confirm, s.minimal) }).against(ordersTarget),
		pair(keyDirect, "M9 baseline: confirmations started directly", "orders/s", func(s *engineSide) []float64 { return s.direct }),
		pair(keyHooks, "M9: signed webhooks through the edge to effect", "orders/s", func(s *engineSide) []float64 { return s.hooks }),
		pair(keyM9, "M9: webhooks/direct", "×", func(s *engineSide) []float64 { return ratios(s.hooks, s.direct) }).against(effectTarget),
	}
	res.Elapsed = time.Since(started)
	res.M4 = res.summaryResult("M4", "backlog drain, Temporal on PostgreSQL", keyDrain, keyRaw, keyM4, drainTarget)
	res.M6 = res.summaryResult("M6", "order confirmations, Temporal on PostgreSQL", keyConfirm, keyMinimal, keyM6, ordersTarget)
	res.M9 = res.summaryResult("M9", "webhook to effect, Temporal on PostgreSQL", keyHooks, keyDirect, keyM9, effectTarget)
	return res, nil
}

// summaryResult is measurement id's row on PostgreSQL for the summary.
func (en *EngineResults) summaryResult(id, what, subject, baseline, ratio string, target ratioTarget) Result {
	pg := func(key string) Figure {
		f := en.figure(key)
		return Figure{Name: f.Name, Unit: f.Unit, Stats: f.Postgres, Bound: f.Bound}
	}
	s, r := pg(subject), pg(ratio)
	s.Name, r.Name = strings.TrimPrefix(s.Name, id+": "), strings.TrimPrefix(r.Name, id+": ")
	return Result{
		ID: id + "-PG", What: what,
		Subject: s, Baselines: []Figure{pg(baseline)}, Ratios: []Figure{r},
		Target: target.String(), Pass: target.met(r.Stats),
		Headline: fmt.Sprintf("%s %s", num(s.Stats.Median), s.Unit),
		Rounds:   en.Sizes.Rounds, Elapsed: en.Elapsed,
	}
}

// summaryResults are the summary's rows: every measurement's, then those
// of Both engines.
func (r *Report) summaryResults() []Result {
	if r.Engines == nil {
		return r.Results
	}
	return slices.Concat(r.Results, []Result{r.Engines.M4, r.Engines.M6, r.Engines.M9})
}

// bothEngines writes the "Both engines" section: the table and what the
// production-shaped engine changes, every number from this run.
func (r *Report) bothEngines(p func(format string, args ...any)) {
	en := r.Engines
	if en == nil {
		return
	}
	sz := en.Sizes
	pgs := en.Postgres.Postgres
	p("\n## Both engines\n\n")
	p("The engine baselines, M4, M6 and M9 on the embedded Temporal twice: on SQLite (persistence store %s, %s, state %s: the server every other measurement uses) "+
		"and on PostgreSQL (persistence store %s, %s, state in %s, fsync=%s and synchronous_commit=%s: %s). "+
		"Each round runs every phase on one engine and then on the other, the whole sequence reversed every other round (ABBA): %d rounds in %s. "+
		"Per engine and round: %d raw SignalWithStart calls at %d concurrent (the capacity M2 and M3 use); M4's %d committed events drained by the production dispatcher "+
		"against as many raw SignalWithStart calls at %d concurrent; M6's %d order confirmations against as many minimal workflows, started %d at a time; "+
		"M9's %d orders through the edge (signed webhooks, inbox, dispatcher) against as many started directly. "+
		"The inbox and the orders live on the benchmark's durable PostgreSQL for both engines; only Temporal's own state moves.\n\n",
		en.SQLite.PersistenceStore, shards(en.SQLite.HistoryShards), en.SQLite.Where,
		en.Postgres.PersistenceStore, shards(en.Postgres.HistoryShards), en.Postgres.Where, pgs["fsync"], pgs["synchronous_commit"], durability(pgs),
		sz.Rounds, en.Elapsed.Round(time.Second),
		sz.SignalCalls, sz.Senders, sz.Backlog, inbox.DefaultHandOffConcurrency, sz.Orders, sz.OrderSenders, sz.Orders)
	p("| figure | unit | SQLite (median, min–max) | PostgreSQL (median, min–max) | PostgreSQL/SQLite per round (median, min–max) |\n|---|---|---|---|---|\n")
	cell := func(s Stats, bound float64) string {
		return fmt.Sprintf("%s (%s–%s)", numBeside(s.Median, bound), numBeside(s.Min, bound), numBeside(s.Max, bound))
	}
	for _, f := range en.Figures {
		p("| %s | %s | %s | %s | %s |\n", f.Name, f.Unit, cell(f.SQLite, f.Bound), cell(f.Postgres, f.Bound), cell(f.PostgresOverSQLite, 0))
	}
	p("\nM6: %d orders confirmed and %d Knock triggers recorded on SQLite, %d and %d on PostgreSQL (each with one warm-up confirmation). "+
		"M9: %d orders confirmed and notified through the edge and %d directly on SQLite, %d and %d on PostgreSQL (one warm-up order each way included).\n",
		en.Confirmed[0], en.Notified[0], en.Confirmed[1], en.Notified[1], en.Webhooks[0], en.Direct[0], en.Webhooks[1], en.Direct[1])

	capacity, minimal := en.figure(keyCapacity).PostgresOverSQLite, en.figure(keyMinimal).PostgresOverSQLite
	m4, m6, m9 := en.figure(keyM4), en.figure(keyM6), en.figure(keyM9)
	p("\n**What the production-shaped engine changes.** On PostgreSQL every change to a workflow's state is a PostgreSQL transaction (%s), "+
		"spread over %s instead of %s. There Temporal took SignalWithStart calls at %s× its rate on SQLite "+
		"(median of the per-round ratios, %s–%s; %s) and completed minimal workflows at %s× (%s–%s; %s). "+
		"The dispatcher drained at %s× raw SignalWithStart on PostgreSQL against %s× on SQLite (%s; M4's target %s is %s), "+
		"order confirmations ran at %s× the minimal workflow against %s× (%s; M6's target %s is %s), "+
		"and orders through the edge reached their effect at %s× the rate of orders started directly against %s× (%s; M9's target %s is %s).\n",
		durability(pgs), shards(en.Postgres.HistoryShards), shards(en.SQLite.HistoryShards),
		num(capacity.Median), num(capacity.Min), num(capacity.Max), direction(capacity, "faster", "slower"),
		num(minimal.Median), num(minimal.Min), num(minimal.Max), direction(minimal, "faster", "slower"),
		numBeside(m4.Postgres.Median, m4.Bound), numBeside(m4.SQLite.Median, m4.Bound), direction(m4.PostgresOverSQLite, "higher", "lower"), drainTarget, metOn(drainTarget, m4),
		numBeside(m6.Postgres.Median, m6.Bound), numBeside(m6.SQLite.Median, m6.Bound), direction(m6.PostgresOverSQLite, "higher", "lower"), ordersTarget, metOn(ordersTarget, m6),
		numBeside(m9.Postgres.Median, m9.Bound), numBeside(m9.SQLite.Median, m9.Bound), direction(m9.PostgresOverSQLite, "higher", "lower"), effectTarget, metOn(effectTarget, m9))
}

// direction says whether a per-round ratio of PostgreSQL over SQLite was
// above 1 in every round, below it in every round, or neither.
func direction(perRound Stats, above, below string) string {
	switch {
	case perRound.Min > 1:
		return above + " on PostgreSQL in every round"
	case perRound.Max < 1:
		return below + " on PostgreSQL in every round"
	default:
		return "neither engine ahead in every round"
	}
}

// metOn says on which engines a ratio's median met its target.
func metOn(t ratioTarget, f EngineFigure) string {
	switch sq, pg := t.met(f.SQLite), t.met(f.Postgres); {
	case sq && pg:
		return "met on both engines"
	case sq:
		return "met on SQLite only"
	case pg:
		return "met on PostgreSQL only"
	default:
		return "missed on both engines"
	}
}

// engineRows are the engines' rows of "Where it ran".
func (r *Report) engineRows(p func(format string, args ...any)) {
	en := r.Engines
	if en == nil {
		return
	}
	p("| Temporal on SQLite (every measurement) | %s, persistence %s, visibility %s, %s (read back with GetClusterInfo); state %s |\n",
		en.SQLite.ServerVersion, en.SQLite.PersistenceStore, en.SQLite.VisibilityStore, shards(en.SQLite.HistoryShards), en.SQLite.Where)
	pgs := en.Postgres.Postgres
	p("| Temporal on PostgreSQL (Both engines) | %s, persistence %s, visibility %s, %s (read back with GetClusterInfo); "+
		"state in %s, PostgreSQL %s with fsync=%s, synchronous_commit=%s, full_page_writes=%s, shared_buffers=%s, max_connections=%s (read back with SHOW) |\n",
		en.Postgres.ServerVersion, en.Postgres.PersistenceStore, en.Postgres.VisibilityStore, shards(en.Postgres.HistoryShards),
		en.Postgres.Where, pgs["version"], pgs["fsync"], pgs["synchronous_commit"], pgs["full_page_writes"], pgs["shared_buffers"], pgs["max_connections"])
}

// shards words a history shard count.
func shards(n int32) string {
	if n == 1 {
		return "1 history shard"
	}
	return fmt.Sprintf("%d history shards", n)
}

// durability words what PostgreSQL settings make of a commit.
func durability(settings map[string]string) string {
	if settings["fsync"] == "on" && settings["synchronous_commit"] == "on" {
		return "every commit flushed to disk before it is acknowledged, as production runs it"
	}
	return "commits not flushed to disk before they are acknowledged, unlike production"
}
