package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
)

// DefaultInventoryScanInterval is how often the Schedule scans by default.
const DefaultInventoryScanInterval = 15 * time.Minute

// maxScanBatches bounds one scan's history; changes beyond it are left for
// the next scheduled run, which finds them still unsignalled.
const maxScanBatches = 20

// signalOptions cover signalling a batch: one SignalWithStart per SKU at the
// rate the Temporal frontend allows, with heartbeats so a retried attempt
// resumes where the last one stopped.
var signalOptions = activityPolicy{options: workflow.ActivityOptions{
	StartToCloseTimeout:    10 * time.Minute,
	HeartbeatTimeout:       time.Minute,
	ScheduleToCloseTimeout: time.Hour,
	RetryPolicy:            backoff(0),
}}

// InventoryScan signals every SKU whose stock level changed in PostgreSQL
// since it was last signalled: read a batch, signal each SKU's low-stock
// entity, mark the batch signalled, repeat while batches come back full.
//
// A failed step fails the run instead of parking it: nothing is lost, since
// a batch is marked only after it was signalled, and the next scheduled run
// retries it; a parked scan would instead hold up every later scan behind
// the Schedule's overlap policy. A batch signalled twice (mark failed) is
// harmless: the event ids are the same and the entities ignore them.
func InventoryScan(ctx workflow.Context, in contract.InventoryScanInput) (*contract.InventoryScanResult, error) {
	res, err := scanInventory(ctx, in)
	awaitHandlers(ctx)
	return res, err
}

// scanInventory is InventoryScan's body.
func scanInventory(ctx workflow.Context, in contract.InventoryScanInput) (*contract.InventoryScanResult, error) {
	status := contract.Status{Step: "start", State: "scanning"}
	if err := workflow.SetQueryHandler(ctx, contract.StatusQuery, func() (contract.Status, error) { return status, nil }); err != nil {
		return nil, err
	}
	st := steps{status: &status}
	limit := in.BatchSize
	switch {
	case limit <= 0:
		limit = activities.DefaultScanBatch
	case limit > activities.MaxScanBatch:
		// The activity caps it too; a short batch must mean "no more".
		limit = activities.MaxScanBatch
	}
	storeCtx := storeOptions.context(ctx)
	signalCtx := signalOptions.context(ctx)
	res := &contract.InventoryScanResult{}
	for batch := 0; ; batch++ {
		if batch == maxScanBatches {
			res.More = true
			break
		}
		st.enter(ctx, "find-changes")
		var changed activities.ChangedStockLevelsOutput
		if err := workflow.ExecuteActivity(storeCtx, inventory.ChangedStockLevels,
			activities.ChangedStockLevelsInput{Limit: limit}).Get(ctx, &changed); err != nil {
			return nil, err
		}
		levels := changed.Levels
		if len(levels) == 0 {
			break
		}

		st.enter(ctx, "signal")
		var sent activities.SignalStockLevelsOutput
		if err := workflow.ExecuteActivity(signalCtx, inventory.SignalStockLevels,
			activities.SignalStockLevelsInput{Levels: levels}).Get(ctx, &sent); err != nil {
			return nil, err
		}
		res.Signalled += sent.Signalled
		res.Rejected = append(res.Rejected, sent.Rejected...)

		st.enter(ctx, "mark-signalled")
		// Rejected SKUs are marked too: they fail the same way every time.
		if err := workflow.ExecuteActivity(storeCtx, inventory.MarkStockSignalled,
			activities.MarkStockSignalledInput{Levels: levels}).Get(ctx, nil); err != nil {
			return nil, err
		}
		if len(levels) < limit {
			break
		}
	}
	st.show(ctx, "done")
	status.State, status.Detail = "done", fmt.Sprintf("signalled %d SKUs, rejected %d", res.Signalled, len(res.Rejected))
	return res, nil
}
