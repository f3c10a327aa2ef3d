package e2e_test

import (
	"context"
	"net/http"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/crmflow/crmflow/inbox"
)

// Waits on facts for "nothing happened" checks: rather than sleeping and
// then looking for the absence of an effect, a test sends a later event the
// same machinery must process and waits for it; whatever the earlier input
// could have caused would be visible by then.

// handOffMarker posts a valid payment for a fresh order and waits until the
// dispatcher has handed it to Temporal: every inbox row stored before it
// has had its claim pass, and its workflow is listed on the fixture's
// queue. It returns the marker's event ID.
func (f *fixture) handOffMarker(name string) string {
	f.t.Helper()
	// Temporal is shared by every test: the workflow ID must be this test's.
	name += "-" + f.queue
	orderID, eventID := "o-marker-"+name, "evt_marker_"+name
	f.seedOrder(orderID, "cus_marker_"+name)
	ev := stripeEvent(eventID, "payment_intent.succeeded", orderID)
	status, body := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(f.t, http.StatusOK, status, body)
	f.waitInboxStatus("stripe", eventID, inbox.StatusDelivered)
	return eventID
}

// waitWorkflowsOnQueue waits until Temporal's visibility lists n workflows
// on the fixture's queue. Visibility is updated after the start, and falls
// behind when the machine is busy, hence the long wait.
func (f *fixture) waitWorkflowsOnQueue(n int) {
	f.t.Helper()
	start := time.Now()
	require.Eventually(f.t, func() bool { return f.workflowsOnQueue() >= n }, 2*time.Minute, 100*time.Millisecond,
		"%d workflows listed on the queue", n)
	f.t.Logf("visibility listed %d workflows after %s", n, time.Since(start).Round(time.Millisecond))
}

// waitIdle waits until workflowID's latest run has nothing left to do: no
// workflow task and no activity pending, and a workflow task completed
// after its last signal, so every signal it was sent has been processed and
// every command it led to is in the history.
func (f *fixture) waitIdle(workflowID string) {
	f.t.Helper()
	require.Eventually(f.t, func() bool {
		desc, err := f.temporal.DescribeWorkflowExecution(context.Background(), workflowID, "")
		if err != nil {
			return false
		}
		if desc.GetPendingWorkflowTask() != nil || len(desc.GetPendingActivities()) > 0 {
			return false
		}
		it := f.temporal.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		lastSignal, lastCompleted := -1, -1
		for i := 0; it.HasNext(); i++ {
			ev, err := it.Next()
			if err != nil {
				return false
			}
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
				lastSignal = i
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
				lastCompleted = i
			}
		}
		return lastCompleted > lastSignal
	}, time.Minute, 100*time.Millisecond, "%s settles", workflowID)
}
