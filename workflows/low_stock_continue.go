package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/contract"
)

// The low-stock entity's continue-as-new: between steps when its history
// reaches its bound, and while parked (park_continue.go), carrying its
// state, the signals already delivered and the dead letter it waits on.

func (w *lowStock) shouldContinueAsNew(ctx workflow.Context) bool {
	return continueAsNewDue(ctx, w.input.MaxHistoryEvents)
}

// continueAsNew hands the state to a new run once no update handler (an
// operator's dead-letter decision) is running, and after recording every
// signal already delivered, which would otherwise be lost with this run.
// parked, if not nil, is the dead letter the run waits on, which the next
// run takes over.
func (w *lowStock) continueAsNew(ctx workflow.Context, parked *contract.ParkedStep) error {
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	for {
		var s contract.StockLevel
		if !w.signals.ReceiveAsync(&s) {
			break
		}
		w.receive(ctx, s)
	}
	state := w.state
	// The original bound, not the default: a new default reaches old chains.
	next := contract.LowStockInput{SKU: w.input.SKU, MaxHistoryEvents: w.input.MaxHistoryEvents, State: &state, Parked: parked}
	workflow.GetLogger(ctx).Info("Continuing as new", "historyLength", workflow.GetInfo(ctx).GetCurrentHistoryLength())
	return workflow.NewContinueAsNewError(ctx, contract.LowStockAlertType, next)
}
