package bench

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/workflows"
)

// EffectCounts are what M9 observed beyond its rates.
type EffectCounts struct {
	// Webhooks and Direct count the orders confirmed (in PostgreSQL, with
	// their Knock trigger recorded) on each path, warm-up included.
	Webhooks, Direct int
	// Notified counts console-mode Knock order-confirmation triggers.
	Notified int
}

// effectTarget is M9's target: orders through the edge over orders
// started directly.
const effectTarget ratioTarget = 0.8

// effectRig runs M9's two paths on one Temporal server: an edge (handler,
// inbox, dispatcher) on a fresh database, and crmflow's worker (M6's,
// console-mode providers) that confirms the orders of both.
type effectRig struct {
	c       client.Client
	g       *edge
	kc      *knockCounter
	stop    func()
	hc      *http.Client
	senders int
	// webhooks and direct count the orders confirmed on each path.
	webhooks, direct int
}

// newEffectRig starts the edge and the worker on c, with the dispatcher
// running, and confirms one order each way so that the HTTP connection,
// the edge's database connections and the worker's caches are warm before
// the clock.
func (e *Env) newEffectRig(ctx context.Context, tb testing.TB, c client.Client) (*effectRig, error) {
	queue := e.queue("effect")
	g, err := e.newEdge(ctx, e.NewDatabase(tb), c, queue, defaultDispatcher())
	if err != nil {
		return nil, err
	}
	kc, stop, err := startConsoleWorker(c, g.store, g.starter, queue, nil)
	if err != nil {
		g.close()
		return nil, err
	}
	r := &effectRig{c: c, g: g, kc: kc, stop: stop, hc: httpClient(e.Sizes.OrderSenders), senders: e.Sizes.OrderSenders}
	g.runDispatcher()
	warm := fmt.Sprintf("effect-warm-%d", time.Now().UnixNano())
	if _, err := r.viaWebhooks(ctx, warm+"-hook", 1); err != nil {
		r.close()
		return nil, err
	}
	if _, err := r.viaStarter(ctx, warm+"-direct", 1); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// close stops the worker, then the edge.
func (r *effectRig) close() {
	r.stop()
	r.g.close()
}

// viaWebhooks times n orders from their signed webhooks' first POST until
// each is confirmed and notified.
func (r *effectRig) viaWebhooks(ctx context.Context, prefix string, n int) (time.Duration, error) {
	ws := signWebhooks(prefix, n)
	ids, err := seedOrders(ctx, r.g.store, "o-"+prefix, n)
	if err != nil {
		return 0, fmt.Errorf("seed orders: %w", err)
	}
	d, err := r.toEffect(ctx, ids, func() error {
		_, err := sendWebhooks(ctx, r.hc, r.g.url, ws, r.senders)
		return err
	})
	if err == nil {
		r.webhooks += n
	}
	return d, err
}

// viaStarter times the same confirmations started directly with the
// payment signal (starter.SignalPayment, as M6's subject).
func (r *effectRig) viaStarter(ctx context.Context, prefix string, n int) (time.Duration, error) {
	ids, err := seedOrders(ctx, r.g.store, prefix, n)
	if err != nil {
		return 0, fmt.Errorf("seed orders: %w", err)
	}
	d, err := r.toEffect(ctx, ids, func() error {
		_, err := parallel(n, r.senders, func(i int) error {
			_, err := r.g.starter.SignalPayment(ctx, ids[i], paymentFor(ids[i]))
			return err
		})
		return err
	})
	if err == nil {
		r.direct += n
	}
	return d, err
}

// toEffect times send, which delivers the payments of the orders ids,
// until every one of them is confirmed in PostgreSQL and its Knock call
// recorded; then it checks each run's result too, off the clock.
func (r *effectRig) toEffect(ctx context.Context, ids []string, send func() error) (time.Duration, error) {
	notified := r.kc.count(workflows.KnockOrderConfirmed)
	t0 := time.Now()
	if err := send(); err != nil {
		return 0, err
	}
	if err := waitEffects(ctx, r.g.store, r.kc, ids, notified); err != nil {
		return 0, err
	}
	d := time.Since(t0)
	return d, waitConfirmed(ctx, r.c, ids)
}

// Effect measures M9: signed payment_intent.succeeded webhooks for N
// orders through the real edge (handler, inbox, dispatcher) until every
// order is confirmed in PostgreSQL and its Knock call made, against the
// same confirmations started directly with the payment signal
// (starter.SignalPayment, as M6's subject). Both paths share one worker
// (M6's, console-mode providers) and one database; phases alternate
// their order (ABBA).
func (e *Env) Effect(ctx context.Context, tb testing.TB) (Result, EffectCounts, error) {
	started := time.Now()
	sz := e.Sizes
	var counts EffectCounts
	c, err := e.dial(nil)
	if err != nil {
		return Result{}, counts, err
	}
	defer c.Close()
	rig, err := e.newEffectRig(ctx, tb, c)
	if err != nil {
		return Result{}, counts, err
	}
	defer rig.close()

	var hooks, base []float64
	for r := range sz.Rounds {
		prefix := fmt.Sprintf("effect-%d-%d", time.Now().UnixNano(), r)
		err := alternate(r,
			func() error {
				d, err := rig.viaStarter(ctx, prefix+"-direct", sz.Orders)
				base = append(base, rate(sz.Orders, d))
				return err
			},
			func() error {
				d, err := rig.viaWebhooks(ctx, prefix+"-hook", sz.Orders)
				hooks = append(hooks, rate(sz.Orders, d))
				return err
			})
		if err != nil {
			return Result{}, counts, err
		}
		e.logf("effect round %d: started directly %.1f orders/s, through the edge %.1f orders/s", r+1, base[r], hooks[r])
	}
	counts.Webhooks, counts.Direct, counts.Notified = rig.webhooks, rig.direct, rig.kc.count(workflows.KnockOrderConfirmed)
	ratio := summarise(ratios(hooks, base))
	return Result{
		ID: "M9", What: "webhook to effect (order confirmed, Knock called)",
		Subject:   Figure{Name: "signed webhooks through the edge to effect", Unit: "orders/s", Stats: summarise(hooks)},
		Baselines: []Figure{{Name: "the same confirmations started directly (SignalWithStart)", Unit: "orders/s", Stats: summarise(base)}},
		Ratios:    []Figure{{Name: "webhooks/direct", Unit: "×", Stats: ratio, Bound: float64(effectTarget)}},
		Target:    effectTarget.String(), Pass: effectTarget.met(ratio),
		Headline: fmt.Sprintf("%s orders/s", num(summarise(hooks).Median)),
		Rounds:   sz.Rounds, Elapsed: time.Since(started),
		Notes: []string{
			fmt.Sprintf("%d orders per phase. Through the edge: signed payment_intent.succeeded webhooks POSTed by %d senders to the API handler `crmflow serve` builds, "+
				"committed to the inbox and handed to Temporal by the dispatcher (production options). Directly: starter.SignalPayment of the same payment, %d at a time, as M6's subject. "+
				"The clock stops when every order of the phase is confirmed in PostgreSQL and its Knock order-confirmation trigger is recorded; "+
				"both paths run on one crmflow worker (worker.New, console-mode providers, as M6) and one database, with the dispatcher running throughout. "+
				"%d orders confirmed through the edge and %d directly (one warm-up order each way included), %d Knock triggers recorded.",
				sz.Orders, sz.OrderSenders, sz.OrderSenders, counts.Webhooks, counts.Direct, counts.Notified),
		},
	}, counts, nil
}

// waitEffects waits until every order in ids is confirmed in PostgreSQL
// and the Knock recorder has as many order-confirmation triggers more than
// notified.
func waitEffects(ctx context.Context, st *store.Store, kc *knockCounter, ids []string, notified int) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var confirmed int
		if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM orders WHERE id = ANY($1) AND status = 'confirmed'`, ids).Scan(&confirmed); err != nil {
			return fmt.Errorf("count confirmed orders: %w", err)
		}
		called := kc.count(workflows.KnockOrderConfirmed) - notified
		if confirmed == len(ids) && called >= len(ids) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d orders confirmed and %d Knock triggers within 5m", confirmed, len(ids), called)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitConfirmed waits for the orders' confirmation runs to close with a
// confirmed result, so that no run of one phase is still working in the
// next.
func waitConfirmed(ctx context.Context, c client.Client, orderIDs []string) error {
	wfIDs := make([]string, len(orderIDs))
	for i, id := range orderIDs {
		wfIDs[i] = contract.OrderConfirmationID(id)
	}
	return waitAll(ctx, c, wfIDs, func(id string, get func(any) error) error {
		var res contract.OrderConfirmationResult
		if err := get(&res); err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		if res.State != "confirmed" {
			return fmt.Errorf("%s ended %s, not confirmed", id, res.State)
		}
		return nil
	})
}
