package inbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmflow/crmflow/starter"
)

// DispatcherOptions tune the hand-off loop.
type DispatcherOptions struct {
	// Batch is how many inbox rows may be claimed and not yet marked at
	// once (default 64).
	Batch int
	// Lease is how long a claimed row is reserved for this dispatcher; a row
	// left behind by a crash is handed off again once it expires. It is
	// never shorter than the longest a row is held (see worstHold), so no
	// other replica claims a row this one may still hand off.
	Lease time.Duration
	// Sweep is how often the inbox is scanned without a poke; it finds rows
	// committed by other replicas and rows whose backoff or lease ran out.
	Sweep time.Duration
	// MaxBackoff caps the delay between hand-off attempts of one row.
	MaxBackoff time.Duration
	// RefundWait is how long a refund waits for the order its PaymentIntent
	// paid to be decided (the confirmation records the PaymentIntent when
	// it marks the order) before it is stored unroutable; default 24h.
	RefundWait time.Duration
	// EmailWait is how long a Resend event waits for its email's send to
	// record Resend's id before it is stored unroutable; default 10m.
	EmailWait time.Duration
	// Concurrency is how many targets' events are handed off at once
	// (default DefaultHandOffConcurrency). Temporal serves concurrent
	// callers about twice as fast as one caller even on two cores (see
	// BENCHMARKS.md); one target's events still go one at a time.
	Concurrency int
}

// DefaultHandOffConcurrency is how many targets' events a dispatcher hands
// to Temporal at once unless DispatcherOptions says otherwise.
const DefaultHandOffConcurrency = 16

// Bounds of a hand-off's calls; with them a claimed row has a worst case
// (worstHold) the lease can cover.
const (
	// callTimeout bounds one row's delivery: every read and every call to
	// Temporal it makes. A SignalWithStart normally takes milliseconds.
	callTimeout = 5 * time.Second
	// markTimeout bounds one release or mark statement.
	markTimeout = 2 * time.Second
	// markGather is how long a delivered row waits for others to share its
	// mark's commit. A commit per row, at hundreds a second, takes cores
	// from Temporal on a small machine and slows the drain (M4 in
	// BENCHMARKS.md); the wait delays only the mark, not the hand-off.
	markGather = 10 * time.Millisecond
)

// Lookups are the database reads some routes need at hand-off (store.Store
// implements them).
type Lookups interface {
	OrderLookup
	EmailEvents
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
	queued    prometheus.Histogram
	call      prometheus.Histogram
}

// HandOffQueuedMetric and HandOffCallMetric time a claimed row's way to
// Temporal in two parts: waiting in the dispatcher, then the hand-off
// itself. When hand-offs fall behind, a longer call says Temporal (or a
// route's read) got slow; a longer wait alone says rows come faster than
// the slots serve them.
const (
	HandOffQueuedMetric = "crmflow_inbox_handoff_queued_seconds"
	HandOffCallMetric   = "crmflow_inbox_handoff_call_seconds"
)

// handOffBuckets run from 1 ms to about 5 s, each 1.5 times the last: a
// hand-off normally takes milliseconds, and a percentile read from them is
// off by at most half a bucket.
var handOffBuckets = prometheus.ExponentialBuckets(0.001, 1.5, 22)

// NewDispatcher builds a dispatcher and registers its metrics.
func NewDispatcher(st *Store, lookups Lookups, s *starter.Starter, logger *slog.Logger, reg prometheus.Registerer,
	opts DispatcherOptions) *Dispatcher {
	if opts.Batch == 0 {
		opts.Batch = 64
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = DefaultHandOffConcurrency
	}
	opts.Lease = max(opts.Lease, worstHold(opts.Batch, opts.Concurrency))
	if opts.Sweep == 0 {
		opts.Sweep = time.Second
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = time.Minute
	}
	if opts.RefundWait == 0 {
		opts.RefundWait = 24 * time.Hour
	}
	if opts.EmailWait == 0 {
		opts.EmailWait = 10 * time.Minute
	}
	d := &Dispatcher{
		store: st, lookups: lookups, starter: s, logger: logger, opts: opts, poke: make(chan struct{}, 1),
		handedOff: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmflow_inbox_handoffs_total",
			Help: "Hand-off attempts of inbox rows, by provider and result: a status the row ended in (delivered, late, unroutable, dropped) or retry.",
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
		queued: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    HandOffQueuedMetric,
			Help:    "Time from an inbox row's claim to the start of its hand-off: the claim's order look-up, then the wait for one of the dispatcher's hand-off slots.",
			Buckets: handOffBuckets,
		}),
		call: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    HandOffCallMetric,
			Help:    "Time one inbox row's hand-off took: the reads its route needs and the call to Temporal, until Temporal answered.",
			Buckets: handOffBuckets,
		}),
	}
	reg.MustRegister(d.handedOff, d.lag, d.pending, d.coalesced, d.queued, d.call)
	return d
}

// worstHold is the longest a claimed row can be held before its mark: the
// claim's look-up of its payments' orders, then the wait behind the other
// rows claimed with it, Concurrency at once, each a delivery and perhaps a
// release or mark, then the mark in flight and its own, each gathered for
// up to markGather. A lease at least this long means no other dispatcher
// claims a row this one may still hand off; a crash frees the rows one
// lease later.
func worstHold(batch, concurrency int) time.Duration {
	rounds := time.Duration((batch + concurrency - 1) / concurrency)
	return rounds*(callTimeout+markTimeout) + 3*markTimeout + 2*markGather + time.Second
}

// Concurrency is how many targets' events the dispatcher hands off at
// once: DispatcherOptions.Concurrency, or its default.
func (d *Dispatcher) Concurrency() int { return d.opts.Concurrency }

// Poke asks for a claim now; it never blocks.
func (d *Dispatcher) Poke() {
	select {
	case d.poke <- struct{}{}:
	default:
	}
}

// Run hands off rows until ctx is cancelled, and returns once every row it
// claimed is marked or released.
//
// It is a pipeline, not a loop of passes: one goroutine claims, Concurrency
// goroutines hand off, one marks what was delivered. A row committed while
// others are in flight is claimed at once rather than after the slowest
// call of a pass, and Temporal is never left idle while a pass waits for
// its last call and its mark. At most Batch rows are claimed and not yet
// marked, which bounds how long a row is held (see worstHold).
func (d *Dispatcher) Run(ctx context.Context) error {
	p := &pipeline{
		work:      make(chan Event, d.opts.Batch),
		delivered: make(chan Event, d.opts.Batch),
	}
	var handOffs sync.WaitGroup
	for range d.opts.Concurrency {
		handOffs.Add(1)
		go func() {
			defer handOffs.Done()
			d.handOffRows(ctx, p)
		}()
	}
	marked := make(chan struct{})
	go func() {
		defer close(marked)
		d.markDelivered(context.WithoutCancel(ctx), p)
	}()
	d.claimRows(ctx, p)
	close(p.work)
	handOffs.Wait()
	close(p.delivered)
	<-marked
	return nil
}

// pipeline is what Run's goroutines share. Both channels hold at most
// Batch rows because held never exceeds Batch, so sending never blocks.
type pipeline struct {
	work      chan Event // claimed rows waiting for a hand-off slot
	delivered chan Event // rows Temporal has, waiting for their mark
	held      atomic.Int64
	// passedOver is set when the latest claim ran while rows were held, or
	// none could run for lack of room: a row may then wait for a held one
	// to finish (its target's earlier row, or room), so every finish wakes
	// the claimer. A claim with nothing held passes over no row but those
	// behind the rows it claims, which say so themselves (Event.followed).
	passedOver atomic.Bool
}

// claimRows claims as many due rows as there is room for and queues them
// for hand-off, until ctx is cancelled. It claims again at once while
// claims come back full, and otherwise waits for a poke (a commit, or a
// finished row that frees room or makes its target's next row claimable)
// or the sweep, which also measures the backlog. A finished row that does
// neither wakes no one: at a few events a second a claim that finds
// nothing, and the backlog measured after it, were two of the six
// statements each event cost PostgreSQL.
func (d *Dispatcher) claimRows(ctx context.Context, p *pipeline) {
	sweep := time.NewTicker(d.opts.Sweep)
	defer sweep.Stop()
	for {
		// While Concurrency rows already wait for a slot, claiming more
		// would only cost a statement per freed row: claim once the
		// queue runs low, in larger batches.
		held := int(p.held.Load())
		if room := d.opts.Batch - held; room > 0 && len(p.work) < d.opts.Concurrency {
			// Set before the claim starts: a row finishing meanwhile
			// either sees it set and wakes the claimer again, or finished
			// before the claim began, which then sees the row done.
			p.passedOver.Store(held > 0)
			events, err := d.store.Claim(ctx, room, d.opts.Lease)
			if err != nil && ctx.Err() == nil {
				d.logger.Warn("Inbox claim failed; will retry", "error", err)
			}
			claimedAt := time.Now()
			for i := range events {
				events[i].claimedAt = claimedAt
			}
			p.held.Add(int64(len(events)))
			d.findOrders(ctx, events)
			for _, ev := range events {
				p.work <- ev
			}
			if len(events) == room {
				continue // more may be waiting
			}
		} else {
			p.passedOver.Store(true) // rows may wait for room
		}
		select {
		case <-ctx.Done():
			return
		case <-d.poke:
		case <-sweep.C:
			d.measure(ctx)
		}
	}
}

// handOffRows hands queued rows to Temporal one at a time. Claim never
// returns a row behind an unmarked row of its target, so the rows in
// flight belong to different targets and go side by side without a later
// event overtaking an earlier one.
func (d *Dispatcher) handOffRows(ctx context.Context, p *pipeline) {
	for ev := range p.work {
		d.queued.Observe(time.Since(ev.claimedAt).Seconds())
		m, err := d.handOff(ctx, ev)
		switch {
		case err != nil:
			// released for a later attempt
		case m.status == StatusDelivered:
			p.delivered <- ev
			continue // finished once marked
		default:
			// Rare, and each with its own note: marked at once.
			d.markDone(ctx, []Event{ev}, m)
		}
		d.finished(p, []Event{ev})
	}
}

// markDelivered marks delivered rows in one statement per gathering rather
// than one commit each: after a row is delivered it waits up to markGather
// for more, unless every row held is already in hand. A crash before the
// mark only hands the rows off again, which workflows ignore by event ID.
// It runs on after Run's context ends so rows Temporal already has are not
// handed off again.
func (d *Dispatcher) markDelivered(ctx context.Context, p *pipeline) {
	for ev := range p.delivered {
		rows := []Event{ev}
		gathered := time.After(markGather)
	gather:
		for int64(len(rows)) < p.held.Load() {
			select {
			case ev, ok := <-p.delivered:
				if !ok {
					break gather
				}
				rows = append(rows, ev)
			case <-gathered:
				break gather
			}
		}
		d.markDone(ctx, rows, mark{status: StatusDelivered})
		d.finished(p, rows)
	}
}

// finished frees the rows' room and pokes the claimer when that may let it
// claim more: a finished row had a later row of its target waiting, or the
// latest claim passed rows over (see pipeline.passedOver).
func (d *Dispatcher) finished(p *pipeline, rows []Event) {
	p.held.Add(-int64(len(rows)))
	if p.passedOver.Load() || slices.ContainsFunc(rows, func(ev Event) bool { return ev.followed }) {
		d.Poke()
	}
}

// mark is how a row leaves the inbox: the status and note it keeps.
type mark struct{ status, note string }

// handOff gives one row to Temporal. It returns how to mark the row, or an
// error when the row was released for a retry.
func (d *Dispatcher) handOff(ctx context.Context, ev Event) (mark, error) {
	callCtx, cancel := context.WithTimeout(withTraceParent(ctx, ev.TraceParent), callTimeout)
	started := time.Now()
	err := d.deliver(callCtx, ev)
	d.call.Observe(time.Since(started).Seconds())
	cancel()
	var (
		permanent *permanentError
		end       *endedError
		wait      *waitError
	)
	switch {
	case err == nil:
		return mark{status: StatusDelivered}, nil
	case errors.As(err, &end):
		d.logger.Info("Inbox row ended without a delivery", "id", ev.ID, "provider", ev.Source, "eventID", ev.EventID,
			"status", end.status, "note", end.note)
		return mark{status: end.status, note: end.note}, nil
	case errors.Is(err, starter.ErrAlreadyDone):
		// The workflow for this key finished before the event came.
		return mark{status: StatusLate, note: err.Error() + "; " + d.closedRun(ctx, ev.Target)}, nil
	case errors.Is(err, starter.ErrInvalid), errors.As(err, &permanent):
		// Retrying cannot help and would hold up the target's later
		// events; the row stays in the inbox with the reason.
		d.logger.Error("Inbox row cannot be handed off; kept in the inbox with the reason", "id", ev.ID,
			"provider", ev.Source, "eventID", ev.EventID, "error", err)
		return mark{status: StatusDropped, note: "not handed off: " + err.Error()}, nil
	case errors.As(err, &wait):
		d.handedOff.WithLabelValues(ev.Source, "retry").Inc()
		d.logger.Debug("Inbox row waits for its target", "id", ev.ID, "attempts", ev.Attempts, "reason", wait.reason)
		d.release(ctx, ev, wait.reason, backoff(ev.Attempts, d.opts.MaxBackoff))
		return mark{}, err
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
	ctx, cancel := context.WithTimeout(ctx, markTimeout)
	defer cancel()
	if err := d.store.MarkDone(ctx, ids, m.status, m.note); err != nil {
		d.logger.Warn("Could not mark inbox rows handed off; they will be handed off again", "rows", len(ids), "error", err)
		return
	}
	for _, ev := range rows {
		d.handedOff.WithLabelValues(ev.Source, m.status).Inc()
	}
}

// release returns a claimed row to the queue, due after retryIn.
func (d *Dispatcher) release(ctx context.Context, ev Event, reason string, retryIn time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, markTimeout)
	defer cancel()
	if err := d.store.MarkFailed(ctx, ev.ID, reason, retryIn); err != nil && ctx.Err() == nil {
		d.logger.Warn("Could not release inbox row; its lease will expire", "id", ev.ID, "error", err)
	}
}

// permanentError is a row no retry can hand off (its payload is broken).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// endedError ends a row in a status other than delivered (unroutable,
// late) with a note for operators.
type endedError struct{ status, note string }

func (e *endedError) Error() string { return e.status + ": " + e.note }

// waitError holds a row back: its target is not known yet (a refund whose
// order is not decided). The row is retried with backoff, quietly.
type waitError struct{ reason string }

func (e *waitError) Error() string { return e.reason }

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
		return d.deliverPayment(ctx, route.Payment, ev.orderFound)
	case route.Refund != nil:
		return d.deliverRefund(ctx, ev, route.Refund)
	case route.Clerk != nil:
		return d.deliverClerk(ctx, ev, route.Clerk)
	case route.Email != nil:
		return d.deliverEmail(ctx, ev, route.Email)
	}
	return &permanentError{fmt.Errorf("no route for %s event %s", ev.Source, ev.EventType)}
}

// legacyRoute is the route of a row stored without one.
func (d *Dispatcher) legacyRoute(_ context.Context, ev Event) (Route, error) {
	switch ev.Source {
	case SourceStripe:
		return legacyStripeRoute(ev)
	case SourceClerk:
		return legacyClerkRoute(ev)
	case SourceResend:
		return legacyResendRoute(ev)
	}
	return Route{}, &permanentError{fmt.Errorf("no route for %s event %s", ev.Source, ev.EventType)}
}

// closedRun says how the workflow's latest run ended, for the note of a
// late event: "ended completed (run …)".
func (d *Dispatcher) closedRun(ctx context.Context, workflowID string) string {
	ctx, cancel := context.WithTimeout(ctx, markTimeout)
	defer cancel()
	outcome, err := d.starter.Outcome(ctx, workflowID)
	if err != nil {
		return "had ended (outcome unknown: " + err.Error() + ")"
	}
	return "had ended " + outcome
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
