package bench

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// signalWithStartMethod is the gRPC method a hand-off calls.
const signalWithStartMethod = "/temporal.api.workflowservice.v1.WorkflowService/SignalWithStartWorkflowExecution"

// DuplicateCounts are the Temporal calls M5 saw, summed over its rounds.
type DuplicateCounts struct {
	// Fresh and Duplicate are every gRPC call to Temporal made while each
	// path ran, by method.
	Fresh, Duplicate map[string]int
	// FreshEvents and DuplicateEvents are the deliveries sent on each path.
	FreshEvents, DuplicateEvents int
}

// dupTarget is M5's target: a duplicate answered at least this many times
// faster than a fresh event is handed off.
const dupTarget ratioTarget = 5

// Duplicates measures M5: N fresh events, each acknowledged and handed to
// Temporal, against the same N events delivered again, which are only
// acknowledged. Deliveries go one at a time, as Stripe retries one event at a
// time. Every gRPC call the edge's Temporal client makes is counted by an
// interceptor, so "no Temporal call" is observed, not assumed.
func (e *Env) Duplicates(ctx context.Context, tb testing.TB) (Result, DuplicateCounts, error) {
	started := time.Now()
	sz := e.Sizes
	counter := &callCounter{}
	c, err := e.dial(counter)
	if err != nil {
		return Result{}, DuplicateCounts{}, err
	}
	defer c.Close()
	g, err := e.newEdge(ctx, e.NewDatabase(tb), c, e.queue("dup"), defaultDispatcher())
	if err != nil {
		return Result{}, DuplicateCounts{}, err
	}
	defer g.close()
	g.runDispatcher()
	hc := httpClient(1)
	counts := DuplicateCounts{Fresh: map[string]int{}, Duplicate: map[string]int{}}
	var fresh, dup []float64
	handed := 0
	for r := range sz.Rounds {
		ws := signWebhooks(fmt.Sprintf("dup-%d-%d", time.Now().UnixNano(), r), sz.Duplicates)
		if err := g.insertOrders(ctx, ordersOf(ws)); err != nil {
			return Result{}, counts, err
		}

		before := counter.snapshot()
		t0 := time.Now()
		if _, err := sendWebhooks(ctx, hc, g.url, ws, 1); err != nil {
			return Result{}, counts, err
		}
		handed += len(ws)
		if err := g.waitHandedOff(ctx, handed, 5*time.Minute); err != nil {
			return Result{}, counts, err
		}
		fresh = append(fresh, millis(time.Since(t0))/float64(len(ws)))
		counts.Fresh = addCounts(counts.Fresh, counter.since(before))
		counts.FreshEvents += len(ws)

		again := resign(ws)
		before = counter.snapshot()
		d, err := sendWebhooks(ctx, hc, g.url, again, 1)
		if err != nil {
			return Result{}, counts, err
		}
		dup = append(dup, millis(d)/float64(len(again)))
		counts.Duplicate = addCounts(counts.Duplicate, counter.since(before))
		counts.DuplicateEvents += len(again)

		var rows int
		if err := g.store.Pool().QueryRow(ctx, `SELECT count(*) FROM webhook_inbox`).Scan(&rows); err != nil {
			return Result{}, counts, fmt.Errorf("count inbox: %w", err)
		}
		if rows != handed {
			return Result{}, counts, fmt.Errorf("inbox holds %d rows after %d distinct events: a duplicate was stored", rows, handed)
		}
		e.logf("duplicates round %d: fresh %.2f ms/event, duplicate %.2f ms/event", r+1, fresh[r], dup[r])
	}
	speedup := summarise(ratios(fresh, dup))
	dupCalls := 0
	for _, n := range counts.Duplicate {
		dupCalls += n
	}
	return Result{
		ID: "M5", What: "duplicate delivery vs fresh event",
		Subject:   Figure{Name: "duplicate delivery", Unit: "ms/event", Stats: summarise(dup)},
		Baselines: []Figure{{Name: "fresh event, acknowledged and handed to Temporal", Unit: "ms/event", Stats: summarise(fresh)}},
		Ratios:    []Figure{{Name: "fresh/duplicate", Unit: "×", Stats: speedup, Bound: float64(dupTarget)}},
		Extra: []Figure{
			{Name: "Temporal calls on the duplicate path", Unit: "calls", Stats: summarise([]float64{float64(dupCalls)})},
			{Name: "SignalWithStart calls on the fresh path", Unit: "calls", Stats: summarise([]float64{float64(counts.Fresh[signalWithStartMethod])})},
		},
		Target:   fmt.Sprintf("%s× faster, zero Temporal calls", dupTarget),
		Pass:     dupTarget.met(speedup) && dupCalls == 0,
		Headline: fmt.Sprintf("%s ms/dup, %d Temporal calls", num(summarise(dup).Median), dupCalls),
		Rounds:   sz.Rounds, Elapsed: time.Since(started),
		Notes: []string{
			fmt.Sprintf("%d deliveries per phase, one at a time. Fresh: from the first POST until the dispatcher has handed the last event to Temporal. "+
				"Duplicate: the same events re-signed with a new timestamp (as Stripe retries) and POSTed again. "+
				"Temporal calls counted by a gRPC interceptor on the edge's client: fresh path %s over %d events; duplicate path %s over %d events.",
				sz.Duplicates, formatCalls(counts.Fresh), counts.FreshEvents, formatCalls(counts.Duplicate), counts.DuplicateEvents),
		},
	}, counts, nil
}

// addCounts returns a + b by key.
func addCounts(a, b map[string]int) map[string]int {
	out := maps.Clone(a)
	for k, v := range b {
		out[k] += v
	}
	return out
}

// resign signs the same bodies again with a fresh timestamp, as Stripe does
// when it retries a delivery.
func resign(ws []signedWebhook) []signedWebhook {
	out := make([]signedWebhook, len(ws))
	now := time.Now()
	for i, w := range ws {
		signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: w.body, Secret: stripeWebhookSecret, Timestamp: now})
		out[i] = signedWebhook{body: w.body, signature: signed.Header}
	}
	return out
}

// formatCalls prints call counts as "Method ×n, …", sorted.
func formatCalls(calls map[string]int) string {
	if len(calls) == 0 {
		return "none"
	}
	var parts []string
	for _, m := range slices.Sorted(maps.Keys(calls)) {
		parts = append(parts, fmt.Sprintf("%s ×%d", m[strings.LastIndex(m, "/")+1:], calls[m]))
	}
	return strings.Join(parts, ", ")
}
