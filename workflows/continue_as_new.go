package workflows

import (
	"go.temporal.io/sdk/workflow"
)

// continueAsNewDue reports whether a long-lived entity should continue as
// new: Temporal suggests it, or the history passed maxEvents (zero means
// DefaultMaxHistoryEvents).
func continueAsNewDue(ctx workflow.Context, maxEvents int) bool {
	if maxEvents <= 0 {
		maxEvents = DefaultMaxHistoryEvents
	}
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() > maxEvents
}
