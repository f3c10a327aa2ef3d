package reliability

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/workflows"
)

// TestPaymentFailedAfterSucceeded (scenario 7, payments): Stripe does not
// promise delivery order. A payment_failed that arrives after the order was
// paid, whether long after (its run finished) or right behind the success
// (its run still busy), changes nothing: the order stays confirmed in
// PostgreSQL and in its run's status, no new run starts, and the customer
// gets no "payment failed" notice.
func TestPaymentFailedAfterSucceeded(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.worker("worker", nil)
	srv := s.serve("serve", nil)
	s.seedOrders("o-late", "o-racing")
	paidAt := time.Now()
	confirmed := func(orderID string) map[string]string {
		return map[string]string{confirmationKey(orderID): workflows.KnockOrderConfirmed}
	}

	// Long after: the run has finished when the failure arrives.
	s.deliverUntilAcked(paymentEvent("evt_late_ok", "payment_intent.succeeded", "o-late", paidAt), "evt_late_ok", confirmed("o-late"), srv.url)
	require.Equal(t, "confirmed", s.orderResult("o-late", 2*time.Minute))
	runBefore := s.runID(contract.OrderConfirmationID("o-late"))
	s.deliverUntilAcked(paymentEvent("evt_late_failed", "payment_intent.payment_failed", "o-late", paidAt.Add(-time.Minute)), "evt_late_failed", nil, srv.url)
	waitFor(t, time.Minute, "the late failure handed off", func() bool {
		var done bool
		err := s.store.Pool().QueryRow(context.Background(),
			`SELECT handed_off_at IS NOT NULL FROM webhook_inbox WHERE event_id = 'evt_late_failed'`).Scan(&done)
		return err == nil && done
	})

	// Right behind: the failure is committed just after the success.
	s.deliverUntilAcked(paymentEvent("evt_racing_ok", "payment_intent.succeeded", "o-racing", paidAt), "evt_racing_ok", confirmed("o-racing"), srv.url)
	s.deliverUntilAcked(paymentEvent("evt_racing_failed", "payment_intent.payment_failed", "o-racing", paidAt.Add(-time.Second)), "evt_racing_failed", nil, srv.url)
	require.Equal(t, "confirmed", s.orderResult("o-racing", 2*time.Minute))

	for _, id := range []string{"o-late", "o-racing"} {
		assert.Equal(t, "confirmed", s.orderStatus(id), "order %s in PostgreSQL", id)
		st, err := s.starter.Status(context.Background(), contract.OrderConfirmationID(id))
		require.NoError(t, err)
		assert.Equal(t, "confirmed", st.State, "order %s's run status", id)
	}
	assert.Equal(t, runBefore, s.runID(contract.OrderConfirmationID("o-late")), "the late failure started no new run")
	assert.Equal(t, 1, s.runCount(contract.OrderConfirmationID("o-late")))
	s.checkExactlyOnce()
}

// runID is the latest run of a workflow ID.
func (s *stack) runID(workflowID string) string {
	s.t.Helper()
	desc, err := s.tc.DescribeWorkflowExecution(context.Background(), workflowID, "")
	require.NoError(s.t, err)
	return desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
}

// TestStaleStockLevelIgnored (scenario 7, stock): a SKU's level reaches its
// entity from two sources, the stock-level API (observed when received) and
// the inventory-scan Schedule (the level in PostgreSQL, observed when it
// last changed there). When the scan delivers an older level after the API
// delivered a newer one, the entity keeps the newer level: it stays alerted
// at the low level, and no false "restocked" goes out.
func TestStaleStockLevelIgnored(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.worker("worker", nil)
	srv := s.serve("serve", map[string]string{"CRMFLOW_INVENTORY_COALESCE_WINDOW": "50ms"})
	const sku = "SKU-STALE"
	debounce, noEscalation := time.Millisecond, []string{}
	// The shop's table says 50, written now: older than the API update below.
	require.NoError(t, s.store.UpsertProduct(context.Background(), store.Product{
		SKU: sku, Name: "Stale widget", PriceCents: 999, StockLevel: 50,
		Settings: store.StockSettings{Threshold: 5, Hysteresis: 2, Debounce: &debounce, EscalationAudience: noEscalation},
	}))

	req, err := http.NewRequest(http.MethodPost, srv.url()+"/v1/inventory/"+sku+"/stock-level", strings.NewReader(`{"level":2}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "stock-stale-1")
	r := do(req)
	require.NoError(t, r.err)
	require.Equal(t, http.StatusAccepted, r.status, "%v", r.body)
	alertKey := contract.LowStockID(sku) + "/notify-low-stock/1"
	s.ack("inventory", "api/stock-stale-1", map[string]string{alertKey: workflows.KnockLowStock})
	waitFor(t, 2*time.Minute, "the low-stock alert", func() bool { _, ok := s.knock.effectsByKey()[alertKey]; return ok })

	// The scan now reads 50 from PostgreSQL, observed before the API's 2.
	ctx := context.Background()
	require.NoError(t, s.tc.ScheduleClient().GetHandle(ctx, contract.InventoryScanScheduleID).Trigger(ctx, client.ScheduleTriggerOptions{}))
	var level int
	var signalled *int
	waitFor(t, 2*time.Minute, "the scan signalled the table's level and recorded it", func() bool {
		err := s.store.Pool().QueryRow(ctx,
			`SELECT stock_level, last_signalled_level FROM products WHERE sku = $1`, sku).Scan(&level, &signalled)
		return err == nil && signalled != nil && s.signalCount(contract.LowStockID(sku)) >= 2
	})
	assert.Equal(t, 50, *signalled, "the scan sent the table's level")
	assert.Equal(t, 50, level, "the shop's own stock column is crmflow's to read, not to write")
	st, err := s.starter.Status(ctx, contract.LowStockID(sku))
	require.NoError(t, err)
	assert.Equal(t, contract.StockAlerted, st.State, "the alert state never goes back")
	assert.Contains(t, st.Detail, "level 2 ", "the newer level stands: %s", st.Detail)
	s.checkExactlyOnce()
}

// signalCount counts the signals in the history of a workflow's latest run.
func (s *stack) signalCount(workflowID string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	it := s.tc.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return 0
		}
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED {
			n++
		}
	}
	return n
}
