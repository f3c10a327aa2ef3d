package bench

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmflow/crmflow/internal/store"
)

// sentLateFigure names M3's figure of how far behind its schedule the load
// generator sent the requests: part of their latency, and not the edge's.
const sentLateFigure = "load generator: request sent after its slot in the schedule (included in its latency), p99 over every request of every round"

// latencyRound is one M3 round's outcome.
type latencyRound struct {
	sent, errors    int
	p50, p99, worst time.Duration
	// offered is the rate the round was paced at, achieved the rate the
	// requests actually went out at.
	offered, achieved float64
	handedOff         int
	pendingAtEnd      int64
	// latencies are every request's, sorted; firstSecond those scheduled
	// in the round's first second, sorted.
	latencies, firstSecond []time.Duration
	// late is how long after its slot each request was sent, sorted: the
	// load generator's own delay, which its latency includes.
	late []time.Duration
}

// latencyCeiling is M3's target: the p99 of every request, in ms, stays
// below it.
const latencyCeiling = 50.0

// Latency measures M3: signed webhooks sent at a steady rate of five times
// Temporal's SignalWithStart capacity (measured in the same run), with the
// dispatcher handing off to Temporal at the same time, so the backlog grows
// while the webhooks are answered. The load is open loop: each request is
// due at its slot in the schedule whether or not earlier ones have been
// answered, and latency counts from the slot, so a stalled server cannot
// hide its queueing (no coordinated omission). Each round also sends the
// same load with the dispatcher stopped, and to a cold edge built just
// before its first request, reported on lines of their own.
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
	// round runs one phase on a fresh database: with or without the
	// dispatcher handing off to Temporal meanwhile, on an edge that has
	// been running or on a cold one.
	round := func(r int, dispatch, cold bool) (latencyRound, error) {
		url := e.NewDatabase(tb)
		ws := signWebhooks(fmt.Sprintf("lat-%d-%d", time.Now().UnixNano(), r), max(int(offered*sz.LatencyDuration.Seconds()), 1))
		if err := insertOrdersAt(ctx, url, ordersOf(ws)); err != nil {
			return latencyRound{}, err
		}
		tc := c
		if cold {
			// A fresh process has its own Temporal connection too.
			fresh, err := e.dial(nil)
			if err != nil {
				return latencyRound{}, err
			}
			defer fresh.Close()
			tc = fresh
		}
		g, err := e.newEdge(ctx, url, tc, queue, defaultDispatcher())
		if err != nil {
			return latencyRound{}, err
		}
		defer g.close()
		hc := httpClient(512)
		if !cold {
			// A fresh edge has no database or HTTP connections yet; opening
			// them under load costs hundreds of milliseconds at the start of
			// a round. A server that has been running has them, so the warm
			// phases measure after opening them, as Ingest does.
			if _, err := warmUp(ctx, g, hc, sz.Senders); err != nil {
				return latencyRound{}, err
			}
		}
		if dispatch {
			g.runDispatcher()
		}
		// The two warm phases are profiled alike; the cold edge is not.
		within := unprofiled
		switch {
		case cold:
		case dispatch:
			within = e.profiledWindow("M3", 0, "webhooks with the dispatcher running")
		default:
			within = e.profiledWindow("M3", 1, "webhooks with the dispatcher stopped")
		}
		var lr latencyRound
		_ = within(func() error {
			lr = latencyRoundOf(ctx, g, hc, ws, offered)
			return nil
		})
		g.stopDispatcher()
		if lr.handedOff, err = g.handedOff(); err == nil {
			lr.pendingAtEnd, err = g.pending(ctx)
		}
		return lr, err
	}
	var rounds []latencyRound
	var alone []float64
	var pooled, pooledAlone, pooledCold, coldFirst, pooledLate []time.Duration
	coldErrors := 0
	for r := range sz.Rounds {
		var base, lr, cold latencyRound
		err := alternate(r, func() (err error) {
			base, err = round(r, false, false)
			return err
		}, func() (err error) {
			lr, err = round(r, true, false)
			return err
		}, func() (err error) {
			cold, err = round(r, true, true)
			return err
		})
		if err != nil {
			return Result{}, err
		}
		alone = append(alone, millis(base.p99))
		pooledAlone = append(pooledAlone, base.latencies...)
		pooled = append(pooled, lr.latencies...)
		pooledLate = append(pooledLate, lr.late...)
		pooledCold = append(pooledCold, cold.latencies...)
		coldFirst = append(coldFirst, cold.firstSecond...)
		rounds = append(rounds, lr)
		e.logf("latency round %d: %d webhooks at %.0f/s (achieved %.0f/s): p50 %s p99 %s max %s, %d errors; %d handed off, %d pending; "+
			"without the dispatcher p99 %s; cold edge p99 %s max %s",
			r+1, lr.sent, lr.offered, lr.achieved, lr.p50.Round(time.Millisecond), lr.p99.Round(time.Millisecond),
			lr.worst.Round(time.Millisecond), lr.errors, lr.handedOff, lr.pendingAtEnd, base.p99.Round(time.Millisecond),
			cold.p99.Round(time.Millisecond), cold.worst.Round(time.Millisecond))
		coldErrors += cold.errors
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
	slices.Sort(pooled)
	slices.Sort(pooledAlone)
	slices.Sort(pooledCold)
	slices.Sort(coldFirst)
	slices.Sort(pooledLate)
	pooledP99, pooledMax := millis(percentile(pooled, 99)), millis(percentile(pooled, 100))
	coldP99, coldMax := millis(percentile(pooledCold, 99)), millis(percentile(pooledCold, 100))
	subject := Figure{Name: "p99 latency over every request of every round", Unit: "ms", Stats: summarise([]float64{pooledP99}), Bound: latencyCeiling, Ceiling: true}
	res := Result{
		ID: "M3", What: "webhook latency at 5× Temporal's rate",
		Subject: subject,
		Baselines: []Figure{
			{Name: "p99 latency with the dispatcher stopped, every request of every round", Unit: "ms", Stats: summarise([]float64{millis(percentile(pooledAlone, 99))})},
			{Name: "p99 latency with the dispatcher stopped, per round", Unit: "ms", Stats: summarise(alone)},
		},
		Extra: []Figure{
			{Name: "max latency over every request of every round", Unit: "ms", Stats: summarise([]float64{pooledMax})},
			{Name: sentLateFigure, Unit: "ms", Stats: summarise([]float64{millis(percentile(pooledLate, 99))})},
			{Name: "cold edge: p99 latency over every request of every round", Unit: "ms", Stats: summarise([]float64{coldP99})},
			{Name: "cold edge: max latency over every request of every round", Unit: "ms", Stats: summarise([]float64{coldMax})},
			{Name: "cold edge: p99 latency of the first second, every round", Unit: "ms", Stats: summarise([]float64{millis(percentile(coldFirst, 99))})},
			{Name: "cold edge: errors (non-200 or transport)", Unit: "requests", Stats: summarise([]float64{float64(coldErrors)})},
			{Name: "p99 latency per round", Unit: "ms", Stats: summarise(p99)},
			{Name: "p50 latency per round", Unit: "ms", Stats: summarise(p50)},
			{Name: "max latency per round", Unit: "ms", Stats: summarise(worst)},
			{Name: "offered rate (5× SignalWithStart capacity)", Unit: "webhooks/s", Stats: summarise([]float64{offered})},
			{Name: "achieved send rate", Unit: "webhooks/s", Stats: summarise(achieved)},
			{Name: "backlog left at the end of the round", Unit: "events", Stats: summarise(grew)},
			{Name: "errors (non-200 or transport)", Unit: "requests", Stats: summarise([]float64{float64(errorsTotal)})},
		},
		Target:   fmt.Sprintf("p99 of all requests < %g ms, no error, backlog grows (cold edge reported, no target)", latencyCeiling),
		Pass:     pooledP99 < latencyCeiling && errorsTotal == 0 && backlogGrew,
		Headline: fmt.Sprintf("p99 %s ms, max %s ms at %s/s; cold edge p99 %s ms, max %s ms", subject.format(pooledP99), num(pooledMax), num(offered), num(coldP99), num(coldMax)),
		Rounds:   len(rounds), Elapsed: time.Since(started),
		Notes: []string{
			fmt.Sprintf("Each round sends for %s at %.0f webhooks/s (5 × the %.1f/s SignalWithStart capacity measured with M2) to a fresh database, "+
				"after %d inbox writes and %d webhooks have opened the edge's database and HTTP connections (as on a server that has been running), "+
				"with the dispatcher running; latency is from the request's scheduled send time to the end of the answer. "+
				"Each round also sends the same load with the dispatcher stopped, to show what the concurrent hand-off to Temporal adds; "+
				"the phases alternate their order (ABBA). The p99 and maximum that decide the target are over all %d requests of all rounds, not a median of per-round figures.",
				sz.LatencyDuration, offered, capacity, 4*sz.Senders, 4*sz.Senders, len(pooled)),
			fmt.Sprintf("Cold edge: each round also sends the same load, with the dispatcher running, to an edge built just before the first request "+
				"(a new pgx pool, Temporal client, dispatcher, handler and HTTP client, as a freshly started `crmflow serve` has, in the same OS process), "+
				"first second included: its %d requests are reported as their own rows and have no target of their own. "+
				"The orders the payments are for are written beforehand through a connection of their own, so the edge's pool starts empty.",
				len(pooledCold)),
		},
	}
	if !backlogGrew {
		res.Notes = append(res.Notes, "In at least one round the dispatcher kept up, so the backlog did not grow: the offered rate was not above Temporal's rate then.")
	}
	return res, nil
}

// latencyRoundOf sends the signed webhooks to the edge at offered per
// second, open loop, and times each from its scheduled send to the end of
// its answer.
func latencyRoundOf(ctx context.Context, g *edge, hc *http.Client, ws []signedWebhook, offered float64) latencyRound {
	n := len(ws)
	lat := make([]time.Duration, n)
	late := make([]time.Duration, n)
	var failed atomic.Int64
	sendTime := openLoop(n, offered, func(i int, due time.Time) {
		late[i] = time.Since(due)
		status, err := postWebhook(ctx, hc, g.url, ws[i])
		lat[i] = time.Since(due)
		if err != nil || status != http.StatusOK {
			failed.Add(1)
		}
	})
	first := slices.Clone(lat[:min(n, max(int(offered), 1))])
	slices.Sort(first)
	slices.Sort(lat)
	slices.Sort(late)
	return latencyRound{
		sent: n, errors: int(failed.Load()),
		p50: percentile(lat, 50), p99: percentile(lat, 99), worst: lat[len(lat)-1],
		offered: offered, achieved: rate(n, sendTime), latencies: lat, firstSecond: first, late: late,
	}
}

// insertOrdersAt writes the orders payments are for through a pool of its
// own, closed before returning, so the edge measured next opens its own
// connections.
func insertOrdersAt(ctx context.Context, databaseURL string, ids []string) error {
	st, err := store.Open(ctx, databaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	return (&edge{store: st}).insertOrders(ctx, ids)
}
