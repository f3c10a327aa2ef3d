package workflows_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"

	"github.com/crmflow/crmflow/contract"
)

// upsertedSteps lists, in order, the CrmflowStep values a recorded run set,
// each with whether the same command set CrmflowParked=true.
func upsertedSteps(t *testing.T, name string) (steps []string, parkedWith []string) {
	t.Helper()
	dc := converter.GetDefaultDataConverter()
	for _, ev := range loadHistory(t, name).GetEvents() {
		fields := ev.GetUpsertWorkflowSearchAttributesEventAttributes().GetSearchAttributes().GetIndexedFields()
		p, ok := fields[contract.StepKey.GetName()]
		if !ok {
			continue
		}
		var step string
		require.NoError(t, dc.FromPayload(p, &step), name)
		steps = append(steps, step)
		if pp, ok := fields[contract.ParkedKey.GetName()]; ok {
			var parked bool
			require.NoError(t, dc.FromPayload(pp, &parked), name)
			if parked {
				parkedWith = append(parkedWith, step)
			}
		}
	}
	return steps, parkedWith
}

// TestCrmflowStepOnlyWhereRunsWait reads the same branches recorded before
// and after step-attribute-on-waits: runs from before set CrmflowStep at
// every step they entered (and CrmflowParked on its own); runs from after
// set it only where they wait, park (in the same command as CrmflowParked)
// or end. Both replay (TestReplayRecordedHistories).
func TestCrmflowStepOnlyWhereRunsWait(t *testing.T) {
	before, _ := upsertedSteps(t, "v1/order_confirmation_confirmed.json")
	require.Contains(t, before, "load-order", "runs from before set every step")
	after, _ := upsertedSteps(t, "v5/order_confirmation_confirmed.json")
	require.Equal(t, []string{"await-payment", "done"}, after)
	t.Logf("CrmflowStep upserts of a confirmed order: %d before, %d after", len(before), len(after))

	_, parkedBefore := upsertedSteps(t, "v1/order_confirmation_parked_skipped.json")
	require.Empty(t, parkedBefore, "runs from before set CrmflowParked in a command of its own")
	steps, parkedAfter := upsertedSteps(t, "v5/order_confirmation_parked_skipped.json")
	require.Len(t, parkedAfter, 1, "the park sets step and CrmflowParked together")
	require.Equal(t, []string{"await-payment", parkedAfter[0], "done"}, steps)
}

// TestOrderBaselineIsOneMarker reads a confirmed order recorded before and
// after order-confirmation-baseline: before, each change the run passed
// was a version marker (and a search-attribute upsert) of its own; after,
// one marker stands for them all, and CrmflowCustomerID goes out in the
// same command as the first wait's CrmflowStep.
func TestOrderBaselineIsOneMarker(t *testing.T) {
	markers := func(name string) (versions, upserts int) {
		for _, ev := range loadHistory(t, name).GetEvents() {
			if ev.GetMarkerRecordedEventAttributes().GetMarkerName() == "Version" {
				versions++
			}
			if ev.GetUpsertWorkflowSearchAttributesEventAttributes() != nil {
				upserts++
			}
		}
		return versions, upserts
	}
	v5, up5 := markers("v5/order_confirmation_confirmed.json")
	v6, up6 := markers("v6/order_confirmation_confirmed.json")
	require.Greater(t, v5, 1, "runs from before asked for each change")
	require.Equal(t, 1, v6, "one marker for every change")
	t.Logf("a confirmed order: %d version markers and %d upserts before, %d and %d after", v5, up5, v6, up6)

	dc := converter.GetDefaultDataConverter()
	for _, ev := range loadHistory(t, "v6/order_confirmation_confirmed.json").GetEvents() {
		fields := ev.GetUpsertWorkflowSearchAttributesEventAttributes().GetSearchAttributes().GetIndexedFields()
		p, ok := fields[contract.StepKey.GetName()]
		if !ok {
			continue
		}
		var step string
		require.NoError(t, dc.FromPayload(p, &step))
		if step == "await-payment" {
			require.Contains(t, fields, contract.CustomerIDKey.GetName(), "the customer goes out with the first wait")
			return
		}
	}
	t.Fatal("no await-payment upsert in the v6 confirmed order")
}

// TestLeanStartInTheCorpus reads orders recorded before and after the
// baseline's version 2 (leanStart). A confirmed order whose payment started
// it no longer sets CrmflowOrderID again, starts no deadline timer and
// shows no wait it never made: its customer goes out with done. A failed
// attempt that starts the wait still waits as before, timer and
// await-payment included, and a park carries the customer.
func TestLeanStartInTheCorpus(t *testing.T) {
	type shape struct {
		events, timers, upserts int
		orderIDUpserted         bool
		customerWith            string
	}
	read := func(name string) shape {
		var s shape
		dc := converter.GetDefaultDataConverter()
		for _, ev := range loadHistory(t, name).GetEvents() {
			s.events++
			if ev.GetTimerStartedEventAttributes() != nil {
				s.timers++
			}
			fields := ev.GetUpsertWorkflowSearchAttributesEventAttributes().GetSearchAttributes().GetIndexedFields()
			if fields == nil {
				continue
			}
			s.upserts++
			if _, ok := fields[contract.OrderIDKey.GetName()]; ok {
				s.orderIDUpserted = true
			}
			if _, ok := fields[contract.CustomerIDKey.GetName()]; ok && s.customerWith == "" {
				require.NoError(t, dc.FromPayload(fields[contract.StepKey.GetName()], &s.customerWith), name)
			}
		}
		return s
	}

	before, after := read("v6/order_confirmation_confirmed.json"), read("v7/order_confirmation_confirmed.json")
	require.Equal(t, 1, before.timers)
	require.True(t, before.orderIDUpserted)
	require.Equal(t, "await-payment", before.customerWith)
	require.Zero(t, after.timers, "no deadline timer for a payment already waiting")
	require.False(t, after.orderIDUpserted, "the start set CrmflowOrderID")
	require.Equal(t, "done", after.customerWith)
	require.Equal(t, before.upserts-2, after.upserts)
	t.Logf("a confirmed order: %d events and %d upserts before, %d and %d after", before.events, before.upserts, after.events, after.upserts)

	failedFirst := read("v7/order_confirmation_failed_then_confirmed.json")
	require.Equal(t, 1, failedFirst.timers, "a failed attempt starts the wait")
	require.Equal(t, "await-payment", failedFirst.customerWith)
	steps, parkedWith := upsertedSteps(t, "v7/order_confirmation_parked_skipped.json")
	require.Equal(t, []string{parkedWith[0], "done"}, steps)
	require.Equal(t, parkedWith[0], read("v7/order_confirmation_parked_skipped.json").customerWith, "the park carries the customer")
}
