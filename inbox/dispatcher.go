package inbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmflow/crmflow/starter"
)

// DispatcherOptions tune the hand-off loop.
type DispatcherOptions struct {
	// Batch is how many inbox rows one pass claims.
	Batch int
	// Lease is how long a claimed row is reserved for this dispatcher; a row
	// left behind by a crash is handed off again once it expires.
	Lease time.Duration
	// Sweep is how often the inbox is scanned without a poke; it finds rows
	// committed by other replicas and rows whose backoff or lease ran out.
	Sweep time.Duration
	// MaxBackoff caps the delay between hand-off attempts of one row.
	MaxBackoff time.Duration
	// Concurrency is how many targets' events are handed off at once
	// (default DefaultHandOffConcurrency). Temporal serves concurrent
	// callers about twice as fast as one caller even on two cores (see
	// BENCHMARKS.md); one target's events still go one at a time.
	Concurrency int
}

// DefaultHandOffConcurrency is how many targets' events a dispatcher hands
// to Temporal at once unless DispatcherOptions says otherwise.
const DefaultHandOffConcurrency = 16

// Lookups are the database reads some routes need at hand-off (store.Store
// implements them).
type Lookups interface {
	ReferralLookup
	AliasLookup
}

// Dispatcher hands committed inbox rows to Temporal, in commit order per
// target, and marks them handed off. Hand-off is at least once; workflows
// ignore an event ID they have seen, so the effect is exactly once.
type Dispatcher struct {
	store   *Store
	lookups Lookups
	starter *starter.Starter
	logger  *slog.Logger
	opts    DispatcherOptions
	poke    chan struct{}

	handedOff *prometheus.CounterVec
	coalesced prometheus.Counter
	lag       prometheus.Gauge
	pending   prometheus.Gauge
}

// NewDispatcher builds a dispatcher and registers its metrics.
func NewDispatcher(st *Store, lookups Lookups, s *starter.Starter, logger *slog.Logger, reg prometheus.Registerer,
	opts DispatcherOptions) *Dispatcher {
	if opts.Batch == 0 {
		opts.Batch = 64
	}
	if opts.Lease == 0 {
		opts.Lease = 30 * time.Second
	}
	if opts.Sweep == 0 {
		opts.Sweep = time.Second
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = time.Minute
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = DefaultHandOffConcurrency
	}
	d := &Dispatcher{
		store: st, lookups: lookups, starter: s, logger: logger, opts: opts, poke: make(chan struct{}, 1),
		handedOff: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmflow_inbox_handoffs_total",
			Help: "Inbox rows handed to Temporal, by provider and result (ok, retry, dropped).",
		}, []string{"provider", "result"}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "crmflow_inbox_handoff_lag_seconds",
			Help: "Age of the oldest inbox row not yet handed to Temporal; 0 when none waits.",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "crmflow_inbox_pending",
			Help: "Inbox rows not yet handed to Temporal.",
		}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crmflow_inbox_coalesced_total",
			Help: "Stock updates folded into a later update of the same SKU instead of being signalled.",
		}),
	}
	reg.MustRegister(d.handedOff, d.lag, d.pending, d.coalesced)
	return d
}

// Poke asks for a pass now; it never blocks.
func (d *Dispatcher) Poke() {
	select {
	case d.poke <- struct{}{}:
	default:
	}
}

// Run hands off rows until ctx is cancelled.
func (d *Dispatcher) Run(ctx context.Context) error {
	sweep := time.NewTicker(d.opts.Sweep)
	defer sweep.Stop()
	for {
		for d.pass(ctx) == d.opts.Batch {
			// A full batch means more is waiting: go again at once.
		}
		d.measure(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-d.poke:
		case <-sweep.C:
		}
	}
}

// pass claims one batch and hands it off; it returns how many it claimed.
// Claim never returns a row behind a pending row of its target, so a batch
// holds at most one row per target and its rows can go side by side,
// Concurrency at once, without a later event overtaking an earlier one.
// The rows handed off are marked at the end of the pass in one statement
// per note rather than one commit each: a crash before the mark only hands
// them off again, which workflows ignore by event ID.
func (d *Dispatcher) pass(ctx context.Context) int {
	events, err := d.store.Claim(ctx, d.opts.Batch, d.opts.Lease)
	if err != nil {
		if ctx.Err() == nil {
			d.logger.Warn("Inbox claim failed; will retry", "error", err)
		}
		return 0
	}
	var (
		mu    sync.Mutex
		done  = map[mark][]Event{}
		wg    sync.WaitGroup
		slots = make(chan struct{}, d.opts.Concurrency)
	)
	for _, ev := range events {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			m, err := d.handOff(ctx, ev)
			if err != nil {
				return // released for a later attempt
			}
			mu.Lock()
			done[m] = append(done[m], ev)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for m, rows := range done {
		d.markDone(ctx, rows, m)
	}
	return len(events)
}

// mark is how a row leaves the inbox: the note its row keeps, and the
// result it counts as in crmflow_inbox_handoffs_total.
type mark struct{ note, result string }

// handOff gives one row to Temporal. It returns how to mark the row, or an
// error when the row was released for a retry.
func (d *Dispatcher) handOff(ctx context.Context, ev Event) (mark, error) {
	callCtx, cancel := context.WithTimeout(withTraceParent(ctx, ev.TraceParent), 10*time.Second)
	err := d.deliver(callCtx, ev)
	cancel()
	var permanent *permanentError
	switch {
	case err == nil:
		return mark{result: "ok"}, nil
	case errors.Is(err, starter.ErrAlreadyDone):
		// The workflow for this key finished before the event came; the
		// event changes nothing, as intended, and the row says so.
		return mark{note: "workflow had finished; the event changed nothing", result: "ok"}, nil
	case errors.Is(err, starter.ErrInvalid), errors.As(err, &permanent):
		// Retrying cannot help and would hold up the target's later
		// events; the row stays in the inbox with the reason.
		d.logger.Error("Inbox row cannot be handed off; kept in the inbox with the reason", "id", ev.ID,
			"provider", ev.Source, "eventID", ev.EventID, "error", err)
		return mark{note: "not handed off: " + err.Error(), result: "dropped"}, nil
	default:
		d.handedOff.WithLabelValues(ev.Source, "retry").Inc()
		d.logger.Warn("Hand-off to Temporal failed; will retry", "id", ev.ID, "attempts", ev.Attempts, "error", err)
		d.release(ctx, ev, err.Error(), backoff(ev.Attempts, d.opts.MaxBackoff))
		return mark{}, err
	}
}

// markDone records rows as done with one note, and counts them once the
// record is durable: a row whose mark fails is handed off again when its
// lease ends, and counted then.
func (d *Dispatcher) markDone(ctx context.Context, rows []Event, m mark) {
	ids := make([]int64, len(rows))
	for i, ev := range rows {
		ids[i] = ev.ID
	}
	if err := d.store.MarkDone(ctx, ids, m.note); err != nil {
		d.logger.Warn("Could not mark inbox rows handed off; they will be handed off again", "rows", len(ids), "error", err)
		return
	}
	for _, ev := range rows {
		d.handedOff.WithLabelValues(ev.Source, m.result).Inc()
	}
}

// release returns a claimed row to the queue, due after retryIn.
func (d *Dispatcher) release(ctx context.Context, ev Event, reason string, retryIn time.Duration) {
	if err := d.store.MarkFailed(ctx, ev.ID, reason, retryIn); err != nil && ctx.Err() == nil {
		d.logger.Warn("Could not release inbox row; its lease will expire", "id", ev.ID, "error", err)
	}
}

// permanentError is a row no retry can hand off (its payload is broken).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// deliver hands a row to its workflow by its route; a row stored before
// routes were has its route worked out from the payload first.
func (d *Dispatcher) deliver(ctx context.Context, ev Event) error {
	if ev.Source == SourceStock {
		return d.deliverStock(ctx, ev)
	}
	route := ev.Route
	if route == (Route{}) {
		var err error
		if route, err = d.legacyRoute(ctx, ev); err != nil {
			return err
		}
	}
	switch {
	case route.Payment != nil:
		return d.deliverPayment(ctx, route.Payment)
	case route.Refund != nil:
		return d.deliverRefund(ctx, route.Refund)
	case route.Clerk != nil:
		return d.deliverClerk(ctx, ev.EventID, route.Clerk)
	}
	return &permanentError{fmt.Errorf("no route for %s event %s", ev.Source, ev.EventType)}
}

// legacyRoute is the route of a row stored without one.
func (d *Dispatcher) legacyRoute(ctx context.Context, ev Event) (Route, error) {
	switch ev.Source {
	case SourceStripe:
		return d.legacyStripeRoute(ctx, ev)
	case SourceClerk:
		return legacyClerkRoute(ev)
	}
	return Route{}, &permanentError{fmt.Errorf("no route for %s event %s", ev.Source, ev.EventType)}
}

// measure updates the backlog metrics.
func (d *Dispatcher) measure(ctx context.Context) {
	b, err := d.store.Backlog(ctx)
	if err != nil {
		return
	}
	d.pending.Set(float64(b.Pending))
	d.lag.Set(b.OldestAge.Seconds())
}

// backoff doubles from 500ms per attempt up to limit.
func backoff(attempts int, limit time.Duration) time.Duration {
	b := 500 * time.Millisecond
	for i := 1; i < attempts && b < limit; i++ {
		b *= 2
	}
	return min(b, limit)
}
