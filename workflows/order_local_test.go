package workflows_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
)

// activityKinds counts a recorded run's activity tasks by type and its
// local-activity markers.
func activityKinds(t *testing.T, name string) (tasks map[string]int, local int) {
	t.Helper()
	tasks = map[string]int{}
	for _, ev := range loadHistory(t, name).GetEvents() {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			tasks[ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()]++
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			if ev.GetMarkerRecordedEventAttributes().GetMarkerName() == "LocalActivity" {
				local++
			}
		}
	}
	return tasks, local
}

// TestOrderStoreStepsRunLocally reads a confirmed order recorded before and
// after order-store-steps-local: its PostgreSQL steps were activity tasks,
// and are local activities now; the provider calls stay activity tasks on
// their providers' queues. Both histories replay (TestReplayRecordedHistories).
func TestOrderStoreStepsRunLocally(t *testing.T) {
	store := []string{"LoadOrder", "SetOrderOutcome", "LoadReceipt", "FindReferral"}
	before, localBefore := activityKinds(t, "v2/order_confirmation_receipt_sent.json")
	require.Zero(t, localBefore)
	for _, a := range store {
		require.Equal(t, 1, before[a], "%s was an activity task", a)
	}
	after, localAfter := activityKinds(t, "v5/order_confirmation_receipt_sent.json")
	for _, a := range store {
		require.Zero(t, after[a], "%s is a local activity", a)
	}
	require.Equal(t, len(store), localAfter)
	for _, a := range []string{"RetrievePaymentIntent", "Notify", "SendTemplatedEmail"} {
		require.Equal(t, 1, after[a], "%s stays an activity task", a)
	}
}
