package workflows

import (
	"go.temporal.io/sdk/workflow"
)

// awaitHandlers waits until every Update handler of the run has returned.
// Every workflow calls it before it completes, fails or continues as new:
// a handler that runs an activity (a submitted key's verification) would
// otherwise be cut off, its caller told the Update failed though the run
// may have acted on it, and its effect lost to the next run.
//
// workflow.Await with a condition that is already true returns at once and
// adds no command, so histories recorded before this wait replay
// unchanged. It waits on a disconnected context so that a cancelled run
// waits too; its handlers see the cancellation through their own contexts
// and return.
func awaitHandlers(ctx workflow.Context) {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	_ = workflow.Await(dctx, func() bool { return workflow.AllHandlersFinished(dctx) })
}
