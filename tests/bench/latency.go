package bench

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// latencyRound is one M3 round's outcome.
type latencyRound struct {
	sent, errors    int
	p50, p99, worst time.Duration
	// offered is the rate the round was paced at, achieved the rate the
	// requests actually went out at.
	offered, achieved float64
	handedOff         int
	pendingAtEnd      int64
}

// Latency measures M3: signed webhooks sent at a steady rate of five times
// Temporal's SignalWithStart capacity (measured in the same run), with the
// dispatcher handing off to Temporal at the same time, so the backlog grows
// while the webhooks are answered. The load is open loop: each request is
// due at its slot in the schedule whether or not earlier ones have been
// answered, and latency counts from the slot, so a stalled server cannot
// hide its queueing (no coordinated omission).
func (e *Env) Latency(ctx context.Context, tb testing.TB, capacity float64) (Result, error) {
	started := time.Now()
	sz := e.Sizes
	if capacity <= 0 {
		return Result{}, fmt.Errorf("latency: Temporal capacity %.1f/s is not a rate", capacity)
	}
	offered := 5 * capacity
	c, err := e.dial(nil)
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	queue := e.queue("latency")
	// round runs one phase on a fresh database, with or without the
	// dispatcher handing off to Temporal meanwhile.
	round := func(r int, dispatch bool) (latencyRound, error) {
		g, err := e.newEdge(ctx, e.NewDatabase(tb), c, queue, defaultDispatcher())
		if err != nil {
			return latencyRound{}, err
		}
		defer g.close()
		// A fresh edge has no database or HTTP connections yet; opening
		// them under load costs hundreds of milliseconds at the start of a
		// round. A server that has been running has them, so each round
		// measures after opening them, as Ingest does.
		hc := httpClient(512)
		if _, err := warmUp(ctx, g, hc, sz.Senders); err != nil {
			return latencyRound{}, err
		}
		if dispatch {
			g.runDispatcher()
		}
		lr, err := e.latencyRound(ctx, g, hc, fmt.Sprintf("lat-%d-%d", time.Now().UnixNano(), r), offered)
		g.stopDispatcher()
		if err == nil {
			lr.handedOff, err = g.handedOff()
		}
		if err == nil {
			lr.pendingAtEnd, err = g.pending(ctx)
		}
		return lr, err
	}
	var rounds []latencyRound
	var alone []float64
	for r := range sz.Rounds {
		base, err := round(r, false)
		if err != nil {
			return Result{}, err
		}
		alone = append(alone, millis(base.p99))
		lr, err := round(r, true)
		if err != nil {
			return Result{}, err
		}
		rounds = append(rounds, lr)
		e.logf("latency round %d: %d webhooks at %.0f/s (achieved %.0f/s): p50 %s p99 %s max %s, %d errors; %d handed off, %d pending; "+
			"without the dispatcher p99 %s",
			r+1, lr.sent, lr.offered, lr.achieved, lr.p50.Round(time.Millisecond), lr.p99.Round(time.Millisecond),
			lr.worst.Round(time.Millisecond), lr.errors, lr.handedOff, lr.pendingAtEnd, base.p99.Round(time.Millisecond))
	}
	var p50, p99, worst, achieved, grew []float64
	errorsTotal := 0
	backlogGrew := true
	for _, lr := range rounds {
		p50 = append(p50, millis(lr.p50))
		p99 = append(p99, millis(lr.p99))
		worst = append(worst, millis(lr.worst))
		achieved = append(achieved, lr.achieved)
		grew = append(grew, float64(lr.pendingAtEnd))
		errorsTotal += lr.errors
		backlogGrew = backlogGrew && lr.pendingAtEnd > 0
	}
	p99s := summarise(p99)
	res := Result{
		ID: "M3", What: "webhook latency at 5× Temporal's rate",
		Subject:   Figure{"p99 latency", "ms", p99s},
		Baselines: []Figure{{"p99 latency with the dispatcher stopped (ingest alone)", "ms", summarise(alone)}},
		Extra: []Figure{
			{"p50 latency", "ms", summarise(p50)},
			{"max latency", "ms", summarise(worst)},
			{"offered rate (5× SignalWithStart capacity)", "webhooks/s", summarise([]float64{offered})},
			{"achieved send rate", "webhooks/s", summarise(achieved)},
			{"backlog left at the end of the round", "events", summarise(grew)},
			{"errors (non-200 or transport)", "requests", summarise([]float64{float64(errorsTotal)})},
		},
		Target:   "p99 < 50 ms, no error, backlog grows",
		Pass:     p99s.Median < 50 && errorsTotal == 0 && backlogGrew,
		Headline: fmt.Sprintf("p99 %s ms at %s/s", num(p99s.Median), num(offered)),
		Rounds:   len(rounds), Elapsed: time.Since(started),
		Notes: []string{
			fmt.Sprintf("Each round sends for %s at %.0f webhooks/s (5 × the %.1f/s SignalWithStart capacity measured with M2) to a fresh database, "+
				"after %d inbox writes and %d webhooks have opened the edge's database and HTTP connections (as on a server that has been running), "+
				"with the dispatcher running; latency is from the request's scheduled send time to the end of the answer. "+
				"Each round first sends the same load with the dispatcher stopped, to show what the concurrent hand-off to Temporal adds.",
				sz.LatencyDuration, offered, capacity, 4*sz.Senders, 4*sz.Senders),
		},
	}
	if !backlogGrew {
		res.Notes = append(res.Notes, "In at least one round the dispatcher kept up, so the backlog did not grow: the offered rate was not above Temporal's rate then.")
	}
	return res, nil
}

func (e *Env) latencyRound(ctx context.Context, g *edge, hc *http.Client, prefix string, offered float64) (latencyRound, error) {
	n := max(int(offered*e.Sizes.LatencyDuration.Seconds()), 1)
	ws := signWebhooks(prefix, n)
	if err := g.insertOrders(ctx, ordersOf(ws)); err != nil {
		return latencyRound{}, err
	}
	interval := time.Duration(float64(time.Second) / offered)
	lat := make([]time.Duration, n)
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now().Add(20 * time.Millisecond)
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, err := postWebhook(ctx, hc, g.url, ws[i])
			lat[i] = time.Since(due)
			if err != nil || status != http.StatusOK {
				failed.Add(1)
			}
		}()
	}
	sendTime := time.Since(start)
	wg.Wait()
	slices.Sort(lat)
	return latencyRound{
		sent: n, errors: int(failed.Load()),
		p50: percentile(lat, 50), p99: percentile(lat, 99), worst: lat[len(lat)-1],
		offered: offered, achieved: rate(n, sendTime),
	}, nil
}
