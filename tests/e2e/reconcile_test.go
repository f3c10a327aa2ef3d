package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	stripego "github.com/stripe/stripe-go/v76"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/appmetrics"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/stripeevents"
	"github.com/crmflow/crmflow/worker"
)

// e2eRecoveredSink stores recovered events in the fixture's inbox as
// cmd/crmflow's recoveredSink does (tested there; package main cannot be
// imported): the event's JSON is the payload, inbox.StripeEvent routes it,
// the row is marked recovered and the dispatcher poked.
type e2eRecoveredSink struct {
	inbox      *inbox.Store
	dispatcher *inbox.Dispatcher
}

func (s e2eRecoveredSink) StoreRecovered(ctx context.Context, ev activities.RecoveredEvent) (bool, error) {
	var se stripego.Event
	if err := json.Unmarshal(ev.Raw, &se); err != nil {
		return false, fmt.Errorf("%w: %w", activities.ErrUnusableEvent, err)
	}
	row, err := inbox.StripeEvent(se, ev.Raw)
	if err != nil {
		return false, fmt.Errorf("%w: %w", activities.ErrUnusableEvent, err)
	}
	row.Recovered = true
	inserted, err := s.inbox.Insert(ctx, row)
	if inserted && row.Ignored == "" {
		s.dispatcher.Poke()
	}
	return inserted, err
}

// reconciler is the worker's Stripe reconciliation when the test asks for
// one: Stripe's client (stripeURL), the fixture's inbox, its checkpoint
// table and crmflow_reconcile_recovered_total on the fixture's registry.
func (f *fixture) reconciler(opts fixtureOptions, stripe *activities.StripeActivities, ib *inbox.Store,
	disp *inbox.Dispatcher) *activities.ReconcileActivities {
	if !opts.reconcile {
		return nil
	}
	return &activities.ReconcileActivities{Stripe: activities.StripeEventsAPI{Stripe: stripe},
		Sink: e2eRecoveredSink{inbox: ib, dispatcher: disp}, Checkpoints: f.store,
		Counter: appmetrics.NewReconcileMetrics(f.registry)}
}

// stripeWithEvents is one Stripe for the worker: GET /v1/events from the
// events stand-in, everything else from stripe-mock (the stripePeer, which
// answers PaymentIntents with the test orders' amounts).
func stripeWithEvents(t *testing.T) (*stripeevents.Server, string) {
	events := stripeevents.New(t, nil)
	peer := newStripePeer(t)
	to := func(raw string) *httputil.ReverseProxy {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		return httputil.NewSingleHostReverseProxy(u)
	}
	eventsProxy, peerProxy := to(events.URL), to(peer.srv.URL)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/events" {
			eventsProxy.ServeHTTP(w, r)
			return
		}
		peerProxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return events, srv.URL
}

// counter reads a counter of the fixture's registry; 0 when it has no
// such series.
func (f *fixture) counter(name string, labels map[string]string) float64 {
	f.t.Helper()
	families, err := f.registry.Gather()
	require.NoError(f.t, err)
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
	metrics:
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// triggerReconcile runs the stripe-reconcile Schedule now and returns the
// run's result, waiting for the run the trigger started (the nth action).
func (f *fixture) triggerReconcile(n int) contract.StripeReconcileResult {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	h := f.temporal.ScheduleClient().GetHandle(ctx, contract.StripeReconcileScheduleID)
	require.NoError(f.t, h.Trigger(ctx, client.ScheduleTriggerOptions{}))
	var run *client.ScheduleWorkflowExecution
	require.Eventually(f.t, func() bool {
		desc, err := h.Describe(ctx)
		if err != nil || len(desc.Info.RecentActions) < n {
			return false
		}
		run = desc.Info.RecentActions[n-1].StartWorkflowResult
		return true
	}, 30*time.Second, 100*time.Millisecond, "the trigger starts run %d", n)
	var res contract.StripeReconcileResult
	require.NoError(f.t, f.temporal.GetWorkflow(ctx, run.WorkflowID, run.FirstExecutionRunID).Get(ctx, &res))
	if n == 1 {
		saveRunHistory(f.t, f.temporal, run.WorkflowID, run.FirstExecutionRunID, "stripe_reconcile_recovered.json")
	}
	return res
}

// TestStripeReconcileRecoversEventsTheWebhookNeverDelivered: the webhook
// endpoint was down for four days, longer than Stripe retries (three), so
// Stripe gave up on three payments and a refund. The stripe-reconcile
// Schedule (created as a worker start creates it) lists them from Stripe:
// each is stored once, marked recovered, handed off once, and the orders
// end confirmed; an event the webhook did deliver before is a duplicate.
// A second run recovers nothing, and a late webhook redelivery of a
// recovered event is a duplicate too.
func TestStripeReconcileRecoversEventsTheWebhookNeverDelivered(t *testing.T) {
	ctx := context.Background()
	events, stripeURL := stripeWithEvents(t)
	f := newFixture(t, fixtureOptions{worker: true, stripeURL: stripeURL, reconcile: true})
	now := time.Now()
	// Workflow IDs outlive the test on the binary's Temporal server: keep
	// them apart under -count.
	run := now.UnixNano() % 1e9
	order := func(n int) string { return fmt.Sprintf("o-rec%d-%d", n, run) }
	evt := func(name string) string { return fmt.Sprintf("evt_rec_%s_%d", name, run) }
	for n := 1; n <= 4; n++ {
		f.seedOrder(order(n), "cus-"+order(n))
	}
	// The last successful run was five days ago, before the outage.
	require.NoError(t, f.store.SaveReconcileCheckpoint(ctx, "stripe", now.Add(-5*24*time.Hour)))

	pay := func(id, orderID string, at time.Time) []byte {
		return stripeevents.PaymentIntentEvent(id, "payment_intent.succeeded", orderID, "pi_"+orderID, 4200, "eur", at)
	}
	// Delivered before the endpoint went down.
	seen := pay(evt("seen"), order(4), now.Add(-4*24*time.Hour-time.Hour))
	status, body := f.postStripe(seen, sign(seen, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status, body)
	lost := map[string][]byte{
		evt("pay1"): pay(evt("pay1"), order(1), now.Add(-4*24*time.Hour)),
		evt("pay2"): pay(evt("pay2"), order(2), now.Add(-4*24*time.Hour+time.Minute)),
		evt("refund"): stripeevents.ChargeRefundedEvent(evt("refund"), "ch_"+order(2), "pi_"+order(2), 4200, 1000, "eur",
			now.Add(-3*24*time.Hour)),
		evt("pay3"): pay(evt("pay3"), order(3), now.Add(-7*time.Minute)),
	}
	events.Add(t, seen)
	for _, raw := range lost {
		events.Add(t, raw)
	}
	events.Add(t, []byte(fmt.Sprintf(`{"id":%q,"object":"event","type":"customer.created","created":%d,"data":{"object":{}}}`,
		evt("customer"), now.Add(-time.Hour).Unix())))

	cfg, err := config.Load(config.LoadOptions{Dev: true, Environ: []string{
		"CRMFLOW_STRIPE_SECRET_KEY=sk_test_123", "CRMFLOW_STRIPE_API_URL=" + stripeURL,
		// Only the test's triggers run it.
		"CRMFLOW_STRIPE_RECONCILE_EVERY=8760h"}})
	require.NoError(t, err)
	require.NoError(t, worker.EnsureStripeReconcileSchedule(ctx, f.temporal, cfg, f.queue))
	t.Cleanup(func() {
		_ = f.temporal.ScheduleClient().GetHandle(context.Background(), contract.StripeReconcileScheduleID).Delete(context.Background())
	})

	res := f.triggerReconcile(1)
	assert.Equal(t, 5, res.Listed, "the four lost events and the one delivered; not the customer event")
	assert.Equal(t, 4, res.Recovered)
	recovered := map[string]string{"provider": "stripe"}
	assert.Equal(t, 4.0, f.counter("crmflow_reconcile_recovered_total", recovered))

	for n := 1; n <= 4; n++ {
		o := order(n)
		var out contract.OrderConfirmationResult
		require.NoError(t, f.result(contract.OrderConfirmationID(o), &out), o)
		assert.Equal(t, store.OrderConfirmed, out.State, o)
	}
	if !assert.Eventually(t, func() bool { _, pending := f.inboxRows(); return pending == 0 },
		30*time.Second, 100*time.Millisecond, "every row is handed off") {
		f.dumpInbox()
		t.FailNow()
	}
	f.waitStarted(contract.OrderRefundID(evt("refund")))
	for id, raw := range lost {
		var payload []byte
		var status string
		var isRecovered bool
		require.NoError(t, f.store.Pool().QueryRow(ctx, `SELECT payload, status, recovered FROM webhook_inbox
WHERE provider = 'stripe' AND event_id = $1`, id).Scan(&payload, &status, &isRecovered), id)
		assert.Equal(t, string(raw), string(payload), "%s is stored as Stripe listed it", id)
		assert.Equal(t, "delivered", status, id)
		assert.True(t, isRecovered, id)
	}
	var seenRecovered bool
	require.NoError(t, f.store.Pool().QueryRow(ctx,
		`SELECT recovered FROM webhook_inbox WHERE event_id = $1`, evt("seen")).Scan(&seenRecovered))
	assert.False(t, seenRecovered, "the webhook's row stays the webhook's")
	total, _ := f.inboxRows()
	assert.Equal(t, 5, total, "one row per event")
	delivered := map[string]string{"provider": "stripe", "result": "delivered"}
	assert.Equal(t, 5.0, f.counter("crmflow_inbox_handoffs_total", delivered), "each row handed off once")
	assert.Equal(t, 4, f.knock.countWorkflow("order-confirmation"), "each customer told once")

	// The next run lists the youngest event again (overlap) and stores
	// nothing new.
	res = f.triggerReconcile(2)
	assert.Equal(t, 1, res.Listed, "the youngest payment is inside the overlap")
	assert.Zero(t, res.Recovered)
	assert.Equal(t, 4.0, f.counter("crmflow_reconcile_recovered_total", recovered), "counter unchanged")

	// Stripe's endpoint comes back and redelivers a recovered event.
	late := lost[evt("pay1")]
	status, body = f.postStripe(late, sign(late, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, true, body["duplicate"], "a recovered event's webhook is a duplicate")
	total, pending := f.inboxRows()
	assert.Equal(t, 5, total, "rows unchanged")
	assert.Zero(t, pending)
	assert.Equal(t, 5.0, f.counter("crmflow_inbox_handoffs_total", delivered))
	assert.Equal(t, 4, f.knock.countWorkflow("order-confirmation"))
	cp, ok, err := f.store.ReconcileCheckpoint(ctx, "stripe")
	require.NoError(t, err)
	require.True(t, ok)
	assert.WithinDuration(t, time.Now().Add(-activities.DefaultReconcileSettle), cp, time.Minute, "the checkpoint follows the runs")
}

// dumpInbox logs every inbox row's state, to say why a wait failed.
func (f *fixture) dumpInbox() {
	rows, err := f.store.Pool().Query(context.Background(), `SELECT event_id, status, attempts, coalesce(last_error, ''),
coalesce(workflow_id, '') FROM webhook_inbox ORDER BY id`)
	require.NoError(f.t, err)
	defer rows.Close()
	for rows.Next() {
		var id, status, note, target string
		var attempts int
		require.NoError(f.t, rows.Scan(&id, &status, &attempts, &note, &target))
		f.t.Logf("inbox %s → %s: %s after %d attempts: %s", id, target, status, attempts, note)
	}
}
