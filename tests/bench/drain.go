package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/starter"
)

// defaultDispatcher is the dispatcher as `crmflow serve` configures it.
func defaultDispatcher() inbox.DispatcherOptions { return inbox.DispatcherOptions{} }

// drainTarget is M4's target: the dispatcher's drain over raw
// SignalWithStart at the same concurrency.
const drainTarget ratioTarget = 0.9

// M4's figures on where the dispatcher's time goes against raw
// SignalWithStart at its concurrency. Both make one call per event, so in
// each round dispatcher/raw is about the ratio of their busy shares times
// the raw call's mean over the hand-off's (see workTiming); a retried
// hand-off is one unit more. The busy shares take that concurrency.
const (
	handOffBusyFigure = "dispatcher: share of the drain its %d hand-off slots were handing off"
	handOffCallFigure = "dispatcher: mean hand-off (its route's reads and the call, until Temporal answered)"
	rawCallBusyFigure = "raw SignalWithStart: share of the phase its %d callers were calling"
	rawCallFigure     = "raw SignalWithStart: mean call"
	slotsPartFigure   = "of dispatcher/raw: hand-off slots' busy share/the raw callers'"
	callPartFigure    = "of dispatcher/raw: raw call/hand-off"
)

// Drain measures M4: a burst of events already committed to the inbox is
// handed to Temporal by the real dispatcher, against raw SignalWithStart
// calls at the dispatcher's concurrency. Each event is for its own order, so
// per-workflow ordering never holds one back.
func (e *Env) Drain(ctx context.Context, tb testing.TB) (Result, error) {
	started := time.Now()
	sz := e.Sizes
	c, err := e.dial(nil)
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	noWorker := e.queue("drain")
	conc := inbox.DefaultHandOffConcurrency
	var raw, starterLoop, disp, serial []float64
	// How the dispatcher's hand-off slots and the raw callers spent each
	// phase.
	var dispTiming, rawTiming timingSeries
	s := starter.New(c, starter.Options{TaskQueue: noWorker, PaymentTimeout: time.Hour})
	for r := range sz.Rounds {
		prefix := fmt.Sprintf("drain-%d-%d", time.Now().UnixNano(), r)
		err := alternate(r,
			e.profiled("M4", 1, "raw SignalWithStart", func() error {
				d, timing, err := rawSignalWithStartTimed(ctx, c, noWorker, prefix+"-raw", sz.Backlog, conc)
				raw = append(raw, rate(sz.Backlog, d))
				rawTiming.add(timing)
				return err
			}),
			func() error {
				// The starter's own call, without the inbox around it: splits
				// the dispatcher's overhead into Temporal-side (crmflow's start
				// options, search attributes) and inbox bookkeeping.
				d, err := parallel(sz.Backlog, conc, func(i int) error {
					id := fmt.Sprintf("%s-starter-%d", prefix, i)
					_, err := s.SignalPayment(ctx, id, paymentFor(id))
					return err
				})
				starterLoop = append(starterLoop, rate(sz.Backlog, d))
				if err != nil {
					return fmt.Errorf("starter loop: %w", err)
				}
				return nil
			},
			func() error {
				d, timing, err := e.drainInbox(ctx, tb, c, noWorker, prefix, defaultDispatcher(), e.profiledWindow("M4", 0, "dispatcher"))
				disp = append(disp, rate(sz.Backlog, d))
				dispTiming.add(timing)
				return err
			},
			func() error {
				// The same drain one hand-off at a time, as the dispatcher
				// worked before it handed off concurrently: what that knob
				// moves.
				d, _, err := e.drainInbox(ctx, tb, c, noWorker, prefix+"-serial", inbox.DispatcherOptions{Concurrency: 1}, unprofiled)
				serial = append(serial, rate(sz.Backlog, d))
				return err
			})
		if err != nil {
			return Result{}, err
		}
		e.logf("drain round %d: raw SignalWithStart %.1f/s, starter.SignalPayment %.1f/s, dispatcher %.1f/s (one at a time %.1f/s)",
			r+1, raw[r], starterLoop[r], disp[r], serial[r])
	}
	ratio := summarise(ratios(disp, raw))
	return Result{
		ID: "M4", What: "backlog drain through the dispatcher",
		Subject:   Figure{Name: "dispatcher hand-offs", Unit: "events/s", Stats: summarise(disp)},
		Baselines: []Figure{{Name: fmt.Sprintf("raw SignalWithStart (%d concurrent)", conc), Unit: "calls/s", Stats: summarise(raw)}},
		Ratios:    []Figure{{Name: "dispatcher/raw", Unit: "×", Stats: ratio, Bound: float64(drainTarget)}},
		Extra: []Figure{
			{Name: fmt.Sprintf("starter.SignalPayment (%d concurrent)", conc), Unit: "calls/s", Stats: summarise(starterLoop)},
			{Name: "starter/raw (Temporal-side cost of crmflow's start options)", Unit: "×", Stats: summarise(ratios(starterLoop, raw))},
			{Name: "dispatcher/starter (inbox claim and mark)", Unit: "×", Stats: summarise(ratios(disp, starterLoop))},
			{Name: fmt.Sprintf(handOffBusyFigure, conc), Unit: "share", Stats: summarise(dispTiming.busy)},
			{Name: handOffCallFigure, Unit: "ms", Stats: summarise(dispTiming.mean)},
			{Name: fmt.Sprintf(rawCallBusyFigure, conc), Unit: "share", Stats: summarise(rawTiming.busy)},
			{Name: rawCallFigure, Unit: "ms", Stats: summarise(rawTiming.mean)},
			{Name: slotsPartFigure, Unit: "×", Stats: summarise(ratios(dispTiming.busy, rawTiming.busy))},
			{Name: callPartFigure, Unit: "×", Stats: summarise(ratios(rawTiming.mean, dispTiming.mean))},
			{Name: "dispatcher with one hand-off at a time", Unit: "events/s", Stats: summarise(serial)},
			{Name: "concurrent/one at a time", Unit: "×", Stats: summarise(ratios(disp, serial))},
		},
		Target: drainTarget.String(), Pass: drainTarget.met(ratio),
		Headline: fmt.Sprintf("%s events/s", num(summarise(disp).Median)),
		Rounds:   sz.Rounds, Elapsed: time.Since(started),
		Notes: []string{
			fmt.Sprintf("%d committed payment events per phase, one order each; the clock runs from Dispatcher.Run to its %d-th successful hand-off "+
				"(read from its own crmflow_inbox_handoffs_total counter, which counts a row once its mark is committed), "+
				"with the production DispatcherOptions (batch 64, %d hand-offs at once); the baselines call at the same concurrency. "+
				"The phases run in reverse order every other round, so the slowdown of the in-memory Temporal over the run favours none of them.",
				sz.Backlog, sz.Backlog, conc),
		},
	}, nil
}

// drainInbox commits Backlog payment events to a fresh inbox, then times a
// dispatcher with opts from Run until it has handed off and marked them all;
// within runs the timed part (see window). It also returns how the
// dispatcher's hand-off slots spent the drain, read from its own
// inbox.HandOffCallMetric: a hand-off (the reads its route needs and the
// call, until Temporal answered) is a unit of work.
func (e *Env) drainInbox(ctx context.Context, tb testing.TB, c client.Client, queue, prefix string, opts inbox.DispatcherOptions,
	within window) (time.Duration, workTiming, error) {
	g, err := e.newEdge(ctx, e.NewDatabase(tb), c, queue, opts)
	if err != nil {
		return 0, workTiming{}, err
	}
	defer g.close()
	rows := inboxEvents(prefix, e.Sizes.Backlog)
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.Route.Payment.OrderID
	}
	if err := g.insertOrders(ctx, ids); err != nil {
		return 0, workTiming{}, err
	}
	if _, err := parallel(len(rows), 8, func(i int) error {
		_, err := g.inbox.Insert(ctx, rows[i])
		return err
	}); err != nil {
		return 0, workTiming{}, err
	}
	var d time.Duration
	err = within(func() error {
		t0 := time.Now()
		g.runDispatcher()
		err := g.waitHandedOff(ctx, e.Sizes.Backlog, 5*time.Minute)
		d = time.Since(t0)
		return err
	})
	g.stopDispatcher()
	if err != nil {
		return 0, workTiming{}, err
	}
	left, err := g.pending(ctx)
	if err == nil && left != 0 {
		err = fmt.Errorf("%d events still pending after the drain", left)
	}
	if err != nil {
		return 0, workTiming{}, err
	}
	// Every hand-off ended before Run returned, so each is in the
	// histogram; those after the last counted one add a little.
	_, call, err := g.handOffTimes()
	return d, newWorkTiming(time.Duration(call.Sum*float64(time.Second)), int(call.Count), g.disp.Concurrency(), d), err
}

// insertOrders writes the orders payments are for, before the clock
// starts: the dispatcher hands off a payment only for an order that exists.
func (g *edge) insertOrders(ctx context.Context, ids []string) error {
	const q = `
WITH c AS (INSERT INTO customers (id, email, name) VALUES ('bench-customer', 'bench@example.com', 'Bench')
           ON CONFLICT (id) DO NOTHING)
INSERT INTO orders (id, customer_id, amount_cents, currency)
SELECT id, 'bench-customer', 1000, 'usd' FROM unnest($1::text[]) AS id ON CONFLICT (id) DO NOTHING`
	if _, err := g.store.Pool().Exec(ctx, q, ids); err != nil {
		return fmt.Errorf("insert the drained payments' orders: %w", err)
	}
	return nil
}

// ordersOf are the orders of signed payments.
func ordersOf(ws []signedWebhook) []string {
	ids := make([]string, len(ws))
	for i, w := range ws {
		ids[i] = w.orderID
	}
	return ids
}
