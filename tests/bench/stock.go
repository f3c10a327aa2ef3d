package bench

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/worker"
)

// StockCounts are what one M7 round observed.
type StockCounts struct {
	Updates int
	// Signals are stock-level signals in the entity's histories (every run,
	// following continue-as-new back to the first); Events is the length of
	// all those histories together and LongestRun that of the longest run.
	Signals, Events, LongestRun, Runs int
	// Signalled and Coalesced count the inbox rows handed off as a signal
	// and those folded into a later update.
	Signalled, Coalesced int
}

// M7's targets, over its worst round: at most this many signals reach the
// workflow, and its history stays below this many events.
const (
	stockSignalCeiling = 20
	stockEventCeiling  = 2000
)

// StockBurst measures M7: StockUpdates updates for one SKU through the
// start API, as fast as Senders clients can send them, with the production
// coalesce window and dispatcher; then counts what reached the SKU's
// low-stock entity.
func (e *Env) StockBurst(ctx context.Context, tb testing.TB) (Result, []StockCounts, error) {
	started := time.Now()
	sz := e.Sizes
	c, err := e.dial(nil)
	if err != nil {
		return Result{}, nil, err
	}
	defer c.Close()
	queue := e.queue("stock")
	g, err := e.newEdge(ctx, e.NewDatabase(tb), c, queue, defaultDispatcher())
	if err != nil {
		return Result{}, nil, err
	}
	defer g.close()
	inv := e.Defaults.Inventory
	_, stop, err := startConsoleWorker(c, g.store, g.starter, queue, func(a *worker.Activities) {
		a.Inventory.Defaults = activities.StockDefaults{
			Debounce: inv.Debounce, Cooldown: inv.Cooldown, EscalateAfter: inv.EscalateAfter,
			Audience: inv.AlertAudience, EscalationAudience: inv.EscalationAudience,
		}
	})
	if err != nil {
		return Result{}, nil, err
	}
	defer stop()
	g.runDispatcher()

	hc := httpClient(sz.Senders)
	var all []StockCounts
	var signals, events, longest, accept []float64
	for r := range sz.M7Rounds {
		sku := fmt.Sprintf("sku-burst-%d-%d", time.Now().UnixNano(), r)
		if err := g.store.UpsertProduct(ctx, store.Product{SKU: sku, Name: "Mug", PriceCents: 900, StockLevel: 100,
			Settings: store.StockSettings{Threshold: 10, Hysteresis: 5}}); err != nil {
			return Result{}, nil, fmt.Errorf("seed product: %w", err)
		}
		d, err := parallel(sz.StockUpdates, sz.Senders, func(i int) error {
			// Levels fall from 100 to 3, below the threshold at the end.
			level := 100 - i*97/sz.StockUpdates
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.url+"/v1/inventory/"+sku+"/stock-level",
				strings.NewReader(fmt.Sprintf(`{"level":%d}`, level)))
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+apiToken)
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				return fmt.Errorf("stock update: %w", err)
			}
			drain(resp)
			if resp.StatusCode != http.StatusAccepted {
				return fmt.Errorf("stock update answered %d", resp.StatusCode)
			}
			return nil
		})
		if err != nil {
			return Result{}, nil, err
		}
		accept = append(accept, rate(sz.StockUpdates, d))
		if err := waitNoPending(ctx, g.store, contract.LowStockID(sku), 3*time.Minute); err != nil {
			return Result{}, nil, err
		}
		sc, err := countStock(ctx, c, g.store, sku)
		if err != nil {
			return Result{}, nil, err
		}
		sc.Updates = sz.StockUpdates
		if sc.Signalled+sc.Coalesced != sc.Updates {
			return Result{}, nil, fmt.Errorf("%d updates: %d signalled + %d coalesced; some were lost", sc.Updates, sc.Signalled, sc.Coalesced)
		}
		all = append(all, sc)
		signals = append(signals, float64(sc.Signals))
		events = append(events, float64(sc.Events))
		longest = append(longest, float64(sc.LongestRun))
		e.logf("stock round %d: %d updates (%.0f/s accepted) became %d signals over %d run(s), %d history events",
			r+1, sc.Updates, accept[r], sc.Signals, sc.Runs, sc.Events)
	}
	sig, ev := summarise(signals), summarise(events)
	return Result{
		ID: "M7", What: fmt.Sprintf("%d stock updates for one SKU", sz.StockUpdates),
		Subject: Figure{Name: "signals reaching the workflow", Unit: "signals", Stats: sig, Bound: stockSignalCeiling, Ceiling: true},
		Extra: []Figure{
			{Name: "history events (all runs)", Unit: "events", Stats: ev, Bound: stockEventCeiling, Ceiling: true},
			{Name: "longest single run's history", Unit: "events", Stats: summarise(longest)},
			{Name: "updates accepted by the API", Unit: "updates/s", Stats: summarise(accept)},
		},
		Target:   fmt.Sprintf("<= %d signals, history < %d events (worst round)", stockSignalCeiling, stockEventCeiling),
		Pass:     sig.Max <= stockSignalCeiling && ev.Max < stockEventCeiling,
		Headline: fmt.Sprintf("%s signals, %s events", num(sig.Median), num(ev.Median)),
		Rounds:   len(all), Elapsed: time.Since(started),
		Notes: []string{
			fmt.Sprintf("POST /v1/inventory/{sku}/stock-level from %d concurrent clients, levels falling from 100 to 3; coalesce window %s and the dispatcher's "+
				"production options; the worker runs LowStockAlert with the default debounce (%s), so no alert is due during the burst. "+
				"Signals and events are read from Temporal's history of every run of low-stock/<sku>; each round checks that signalled + coalesced inbox rows = updates.",
				sz.Senders, e.Defaults.Inventory.CoalesceWindow, e.Defaults.Inventory.Debounce),
		},
	}, all, nil
}

// waitNoPending waits until none of the workflow's inbox rows waits for
// hand-off.
func waitNoPending(ctx context.Context, st *store.Store, workflowID string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var n int
		if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM webhook_inbox WHERE workflow_id = $1 AND handed_off_at IS NULL`,
			workflowID).Scan(&n); err != nil {
			return fmt.Errorf("count pending of %s: %w", workflowID, err)
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d rows of %s still pending after %s", n, workflowID, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// countStock reads the SKU's inbox rows and every run of its entity.
func countStock(ctx context.Context, c client.Client, st *store.Store, sku string) (StockCounts, error) {
	var sc StockCounts
	id := contract.LowStockID(sku)
	err := st.Pool().QueryRow(ctx, `
SELECT count(*) FILTER (WHERE last_error IS NULL OR last_error NOT LIKE 'coalesced into %'),
       count(*) FILTER (WHERE last_error LIKE 'coalesced into %')
FROM webhook_inbox WHERE workflow_id = $1`, id).Scan(&sc.Signalled, &sc.Coalesced)
	if err != nil {
		return sc, fmt.Errorf("count inbox rows of %s: %w", id, err)
	}
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return sc, fmt.Errorf("describe %s: %w", id, err)
	}
	runID := desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	for runID != "" {
		sc.Runs++
		previous, n := "", 0
		it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				return sc, fmt.Errorf("history of %s/%s: %w", id, runID, err)
			}
			n++
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
				previous = ev.GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId()
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
				if ev.GetWorkflowExecutionSignaledEventAttributes().GetSignalName() == contract.StockLevelSignal {
					sc.Signals++
				}
			}
		}
		sc.Events += n
		sc.LongestRun = max(sc.LongestRun, n)
		runID = previous
	}
	return sc, nil
}
