package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	stripego "github.com/stripe/stripe-go/v76"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/latencyproxy"
	"github.com/crmflow/crmflow/internal/testsupport/promhist"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
	"github.com/crmflow/crmflow/starter"
)

// Each chunk of gRPC bytes between the replicas and Temporal is delayed by
// this much, each way: a SignalWithStart takes about a second instead of a
// few milliseconds, so the 64 rows a dispatcher holds at once take seconds.
const slowTemporalMin, slowTemporalMax = 300 * time.Millisecond, 800 * time.Millisecond

// TestSlowTemporalHandsEachRowOffOnce (the dispatcher's lease): two
// dispatchers, as two replicas of `crmflow serve` run them, share one
// PostgreSQL inbox and reach one Temporal through a proxy that makes every
// call slow. They drain a few hundred payment events for existing orders.
// Their lease is configured far below that (200 ms), and they sweep every
// 50 ms, so if a claimed row could be claimed again while its dispatcher
// still holds it (the lease shorter than the longest a row is held before
// its mark) the other replica would take it and signal it a second time.
// Afterwards every row is delivered and was claimed once — plus once more
// for each hand-off its dispatcher reported failed (a call that outlived its
// timeout on a loaded machine is retried, as it should be) — and each
// order's run holds exactly one payment signal, carrying its event's id
// (again, one more for each failed hand-off that had landed). No
// worker runs: the runs only collect their signals.
func TestSlowTemporalHandsEachRowOffOnce(t *testing.T) {
	t.Parallel()
	const orders = 300
	ctx := context.Background()
	seedStore, dbURL := newDatabase(t)

	// The orders exist (a payment for an unknown order ends unroutable),
	// and every event is committed before either replica starts.
	ib := inbox.NewStore(seedStore.Pool())
	orderIDs := make([]string, orders)
	for i := range orders {
		orderIDs[i] = fmt.Sprintf("o-slow-%03d", i)
		commitPaymentForNewOrder(t, seedStore, ib, orderIDs[i])
	}

	temporal := testenv.StartTemporal(t, testenv.TemporalOptions{})
	proxy := latencyproxy.Start(t, temporal.FrontendAddr(), latencyproxy.Options{Min: slowTemporalMin, Max: slowTemporalMax})
	logs := &testLogWriter{t: t, failed: map[int64]int{}}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	runCtx, stop := context.WithCancel(ctx)
	var running sync.WaitGroup
	regs := make([]*prometheus.Registry, 2)
	for i := range regs {
		// A replica: its own pool, its own Temporal connection (through
		// the proxy) and its own dispatcher.
		st, err := store.Open(ctx, dbURL)
		require.NoError(t, err)
		t.Cleanup(st.Close)
		c, err := client.Dial(client.Options{HostPort: proxy.Addr(), Namespace: temporal.Namespace(), Logger: quietLogger{}})
		require.NoError(t, err)
		t.Cleanup(c.Close)
		regs[i] = prometheus.NewRegistry()
		d := inbox.NewDispatcher(inbox.NewStore(st.Pool()), st, starter.New(c, starter.Options{}), logger.With("replica", i),
			regs[i], inbox.DispatcherOptions{Lease: 200 * time.Millisecond, Sweep: 50 * time.Millisecond, MaxBackoff: time.Second})
		running.Add(1)
		go func() { defer running.Done(); _ = d.Run(runCtx) }()
	}
	t.Cleanup(func() { stop(); running.Wait() })
	start := time.Now()

	var pending, claims int
	waitFor(t, time.Minute, "every row handed off", func() bool {
		require.NoError(t, seedStore.Pool().QueryRow(ctx,
			`SELECT count(*) FILTER (WHERE status = 'pending'), coalesce(sum(attempts), 0) FROM webhook_inbox`).Scan(&pending, &claims))
		return pending == 0
	})
	logf(t, "%d rows handed off in %s (%d claims) through %s–%s of latency each way",
		orders, time.Since(start).Round(time.Millisecond), claims, slowTemporalMin, slowTemporalMax)
	stop()
	running.Wait()

	// Every row delivered, each claimed once more than its reported
	// failures: a claim no failure explains is a row taken from a dispatcher
	// that still held it.
	statuses := map[string]int{}
	retried := 0
	failuresOf := map[string]int{} // event id → its failed hand-offs
	rows, err := seedStore.Pool().Query(ctx, `SELECT id, event_id, status, attempts FROM webhook_inbox`)
	require.NoError(t, err)
	for rows.Next() {
		var id int64
		var eventID, status string
		var attempts int
		require.NoError(t, rows.Scan(&id, &eventID, &status, &attempts))
		failures := logs.failures(id)
		failuresOf[eventID] = failures
		retried += failures
		statuses[fmt.Sprintf("%s, claims %s", status, map[bool]string{true: "explained", false: "unexplained"}[attempts == 1+failures])]++
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, map[string]int{"delivered, claims explained": orders}, statuses)
	logf(t, "%d hand-offs failed and were retried", retried)

	// Both replicas did part of the work: they really competed.
	var total float64
	for i, reg := range regs {
		n := handoffs(t, reg, inbox.StatusDelivered)
		assert.Positive(t, n, "replica %d delivered nothing", i)
		total += n
	}
	assert.EqualValues(t, orders, total, "one delivery counted per row")

	// The hand-off's two timings see the slow Temporal where it is: every
	// call went through the proxy both ways, so none was faster than two
	// of its delays; and a dispatcher holds 64 rows for 16 slots, so rows
	// waited for a slot for about a call's time.
	var calls, queued promhist.Histogram
	for _, reg := range regs {
		c, err := promhist.Read(reg, inbox.HandOffCallMetric)
		require.NoError(t, err)
		q, err := promhist.Read(reg, inbox.HandOffQueuedMetric)
		require.NoError(t, err)
		calls, queued = calls.Plus(c), queued.Plus(q)
	}
	fast := 2 * slowTemporalMin
	logf(t, "hand-off calls: %d, mean %.2fs, %d under %.1fs; waits in the dispatcher: %d, mean %.2fs, %d of them over %.1fs",
		calls.Count, calls.Mean().Seconds(), calls.AtMost(fast), fast.Seconds(), queued.Count, queued.Mean().Seconds(),
		queued.Count-queued.AtMost(fast/2), (fast / 2).Seconds())
	assert.EqualValues(t, orders+retried, calls.Count, "one call timed per hand-off")
	assert.EqualValues(t, orders+retried, queued.Count, "one wait timed per hand-off")
	assert.Zero(t, calls.AtMost(fast), "no call through the proxy is faster than its two delays")
	assert.Greater(t, queued.Count-queued.AtMost(fast/2), queued.Count/4, "rows waited for a slot behind the slow calls")

	// Each order's run got its payment once: the histories, read directly
	// from Temporal, not through the proxy.
	direct, err := client.Dial(client.Options{HostPort: temporal.FrontendAddr(), Namespace: temporal.Namespace(), Logger: quietLogger{}})
	require.NoError(t, err)
	defer direct.Close()
	dc := converter.GetDefaultDataConverter()
	wrong := map[string][]string{} // workflow ID → its payment signals' event ids, when not exactly its own
	for _, id := range orderIDs {
		var got []string
		wf := contract.OrderConfirmationID(id)
		it := direct.GetWorkflowHistory(ctx, wf, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err)
			attrs := ev.GetWorkflowExecutionSignaledEventAttributes()
			if ev.GetEventType() != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED || attrs.GetSignalName() != contract.PaymentSignal {
				continue
			}
			var pe contract.PaymentEvent
			require.NoError(t, dc.FromPayloads(attrs.GetInput(), &pe))
			got = append(got, pe.EventID)
		}
		// A hand-off that timed out may have landed before it was retried:
		// the run then holds its event twice (and ignores the second).
		own := len(got) >= 1 && len(got) <= 1+failuresOf["evt_"+id]
		for _, eventID := range got {
			own = own && eventID == "evt_"+id
		}
		if !own {
			wrong[wf] = got
		}
	}
	assert.Empty(t, wrong, "%d of %d runs did not get exactly their own payment signal, once per hand-off", len(wrong), orders)
}

// newDatabase creates a migrated database of the test's own and opens a
// store on it; the URL lets more replicas open their own.
func newDatabase(t *testing.T) (*store.Store, string) {
	t.Helper()
	createDBMu.Lock()
	dbURL := testenv.DatabaseURL(t)
	createDBMu.Unlock()
	st, err := store.Open(context.Background(), dbURL)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	return st, dbURL
}

// commitPaymentForNewOrder writes the order (and its customer) and commits
// its payment_intent.succeeded event, "evt_<orderID>", to the inbox, as the
// webhook handler would.
func commitPaymentForNewOrder(t *testing.T, st *store.Store, ib *inbox.Store, orderID string) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, st.UpsertCustomer(ctx, store.Customer{ID: "cus-" + orderID, Email: "cus-" + orderID + "@example.com"}))
	require.NoError(t, st.InsertOrder(ctx, store.Order{ID: orderID, CustomerID: "cus-" + orderID, AmountCents: orderAmount, Currency: orderCurrency}))
	commitPayment(t, ib, orderID)
}

// commitPayment commits a payment_intent.succeeded event, "evt_<orderID>",
// for the order to the inbox, as the webhook handler would, whether or not
// the order exists.
func commitPayment(t *testing.T, ib *inbox.Store, orderID string) {
	t.Helper()
	commitPaymentEvent(t, ib, "evt_"+orderID, orderID)
}

// commitPaymentEvent is commitPayment with the event id given: a second
// payment event for the same order.
func commitPaymentEvent(t *testing.T, ib *inbox.Store, eventID, orderID string) {
	t.Helper()
	body := paymentEvent(eventID, "payment_intent.succeeded", orderID, time.Now())
	var se stripego.Event
	require.NoError(t, json.Unmarshal(body, &se))
	row, err := inbox.StripeEvent(se, body)
	require.NoError(t, err)
	inserted, err := ib.Insert(context.Background(), row)
	require.NoError(t, err)
	require.True(t, inserted)
}

// handoffs is crmflow_inbox_handoffs_total{provider="stripe",result} in reg.
func handoffs(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "crmflow_inbox_handoffs_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["provider"] == inbox.SourceStripe && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// testLogWriter sends the dispatchers' warnings (failed hand-offs, marks)
// to the test's log, where a failed run needs them, and counts each row's
// failed hand-offs.
type testLogWriter struct {
	t      *testing.T
	mu     sync.Mutex
	failed map[int64]int
}

// handOffFailed matches the dispatcher's warning for a failed hand-off.
var handOffFailed = regexp.MustCompile(`msg="Hand-off to Temporal failed; will retry".* id=(\d+) `)

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	if m := handOffFailed.FindSubmatch(p); m != nil {
		id, err := strconv.ParseInt(string(m[1]), 10, 64)
		if err == nil {
			w.mu.Lock()
			w.failed[id]++
			w.mu.Unlock()
		}
	}
	return len(p), nil
}

// failures is how many hand-offs of row id were reported failed.
func (w *testLogWriter) failures(id int64) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed[id]
}
