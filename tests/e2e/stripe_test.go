package e2e_test

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

func TestStripeWebhookRejectsBadInputAndStoresNothing(t *testing.T) {
	f := newFixture(t, fixtureOptions{maxBody: 4096})
	good := stripeEvent("evt_1", "payment_intent.succeeded", "o1")
	cases := []struct {
		name    string
		payload []byte
		sig     string
		status  int
		code    string
	}{
		{"no signature", good, "", 400, "bad_signature"},
		{"wrong secret", good, sign(good, "whsec_other", time.Now()), 400, "bad_signature"},
		{"tampered body", bytes.Replace(good, []byte("4200"), []byte("1"), 1), sign(good, stripeSecret, time.Now()), 400, "bad_signature"},
		{"stale timestamp", good, sign(good, stripeSecret, time.Now().Add(-10*time.Minute)), 400, "stale_timestamp"},
		{"malformed json", []byte(`{"id":`), sign([]byte(`{"id":`), stripeSecret, time.Now()), 400, "malformed"},
		{"oversized", bytes.Repeat([]byte("x"), 5000), sign(bytes.Repeat([]byte("x"), 5000), stripeSecret, time.Now()), 413, "too_large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := f.postStripe(c.payload, c.sig)
			assert.Equal(t, c.status, status)
			assert.Equal(t, c.code, errorCode(body))
		})
	}
	total, _ := f.inboxRows()
	assert.Zero(t, total, "a rejected delivery stores nothing")
}

func TestStripeWebhookDuplicateAndUnknownType(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ev := stripeEvent("evt_dup", "payment_intent.succeeded", "o-dup")
	status, body := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, false, body["duplicate"])
	status, body = f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, true, body["duplicate"])

	unknown := []byte(`{"id":"evt_unknown","object":"event","type":"customer.created","data":{"object":{"id":"cus_1"}}}`)
	status, _ = f.postStripe(unknown, sign(unknown, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)

	var handedOff bool
	var note string
	require.NoError(t, f.store.Pool().QueryRow(context.Background(),
		`SELECT handed_off_at IS NOT NULL, coalesce(last_error, '') FROM webhook_inbox WHERE event_id = 'evt_unknown'`).Scan(&handedOff, &note))
	assert.True(t, handedOff, "an unknown type is stored and ignored, never dispatched")
	assert.Contains(t, note, "customer.created is not handled")
	total, _ := f.inboxRows()
	assert.Equal(t, 2, total)
}

// TestStripeWebhookPostgresDown: with PostgreSQL gone the provider gets 503
// (and retries later) instead of a 200 for an event nobody stored.
func TestStripeWebhookPostgresDown(t *testing.T) {
	url := testenv.DatabaseURL(t)
	st, err := store.Open(context.Background(), url)
	require.NoError(t, err)
	defer st.Close()
	f := newFixture(t, fixtureOptions{store: st})
	admin := testenv.Store(t)
	dbName := url[strings.LastIndex(url, "/")+1 : strings.Index(url, "?")]
	_, err = admin.Pool().Exec(context.Background(), "DROP DATABASE "+dbName+" WITH (FORCE)")
	require.NoError(t, err)

	ev := stripeEvent("evt_pgdown", "payment_intent.succeeded", "o1")
	start := time.Now()
	status, body := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, "unavailable", errorCode(body))
	assert.Less(t, time.Since(start), 10*time.Second, "answers fast")
}

// TestEndToEndConfirmsOnceUnderConcurrentRedelivery: one signed webhook
// delivered three times at once → one inbox row → one workflow → the order
// confirmed in PostgreSQL → exactly one Knock trigger.
func TestEndToEndConfirmsOnceUnderConcurrentRedelivery(t *testing.T) {
	f := newFixture(t, fixtureOptions{worker: true})
	f.seedOrder("o-e2e", "cus_e2e")
	ev := stripeEvent("evt_e2e", "payment_intent.succeeded", "o-e2e")
	sig := sign(ev, stripeSecret, time.Now())
	var wg sync.WaitGroup
	statuses := make([]int, 3)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _ = f.postStripe(ev, sig)
		}()
	}
	wg.Wait()
	assert.Equal(t, []int{200, 200, 200}, statuses)

	require.Eventually(t, func() bool { return f.orderStatus("o-e2e") == "confirmed" }, 30*time.Second, 100*time.Millisecond)
	key := contract.OrderConfirmationID("o-e2e") + "/notify-confirmation"
	require.Eventually(t, func() bool { return f.knock.succeeded(key) == 1 }, 10*time.Second, 100*time.Millisecond)

	total, pending := f.inboxRows()
	assert.Equal(t, 1, total)
	assert.Zero(t, pending)
	run := f.temporal.GetWorkflow(context.Background(), contract.OrderConfirmationID("o-e2e"), "")
	var res contract.OrderConfirmationResult
	require.NoError(t, run.Get(context.Background(), &res))
	assert.Equal(t, "confirmed", res.State)
	saveHistory(t, f.temporal, contract.OrderConfirmationID("o-e2e"), "order_confirmation_confirmed.json")
	// Redelivery after completion changes nothing either.
	status, body := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	assert.Equal(t, 200, status)
	assert.Equal(t, true, body["duplicate"])
	time.Sleep(300 * time.Millisecond)
	assert.Len(t, f.knock.all(), 1)
	assert.Equal(t, "order-confirmation", f.knock.all()[0].Workflow)
}

// TestPaymentEventAfterCompletionChangesNothing: a payment_failed arriving
// after the order was confirmed ends late, with the run's outcome (no
// endless retry), and the order stays confirmed.
func TestPaymentEventAfterCompletionChangesNothing(t *testing.T) {
	f := newFixture(t, fixtureOptions{worker: true})
	f.seedOrder("o-late", "cus_late")
	ok := stripeEvent("evt_ok", "payment_intent.succeeded", "o-late")
	status, _ := f.postStripe(ok, sign(ok, stripeSecret, time.Now()))
	require.Equal(t, 200, status)
	require.Eventually(t, func() bool { return f.orderStatus("o-late") == "confirmed" }, 30*time.Second, 100*time.Millisecond)
	run := f.temporal.GetWorkflow(context.Background(), contract.OrderConfirmationID("o-late"), "")
	require.NoError(t, run.Get(context.Background(), nil))

	late := stripeEvent("evt_late_fail", "payment_intent.payment_failed", "o-late")
	status, _ = f.postStripe(late, sign(late, stripeSecret, time.Now()))
	require.Equal(t, 200, status)
	r := f.waitInboxEvent("evt_late_fail", "late")
	assert.Contains(t, r.Note, "had ended completed (run "+run.GetRunID()+"); order is confirmed", "the note says what the event met")
	assert.Equal(t, "confirmed", f.orderStatus("o-late"))
	desc, err := f.temporal.DescribeWorkflowExecution(context.Background(), contract.OrderConfirmationID("o-late"), "")
	require.NoError(t, err)
	assert.Equal(t, run.GetRunID(), desc.GetWorkflowExecutionInfo().GetExecution().GetRunId(), "no new run was started")
}

// TestTemporalOutageNeverFailsTheProvider: with Temporal down, webhooks still
// answer 200 from the inbox; once Temporal is back the dispatcher hands the
// event off and the workflow exists.
func TestTemporalOutageNeverFailsTheProvider(t *testing.T) {
	opts := testenv.TemporalOptions{Port: testenv.FreePort(t), DatabaseFile: filepath.Join(t.TempDir(), "t.db")}
	srv := testenv.StartTemporal(t, opts)
	c, err := client.NewLazyClient(client.Options{HostPort: srv.FrontendAddr(), Logger: quiet{}})
	require.NoError(t, err)
	defer c.Close()
	f := newFixture(t, fixtureOptions{temporal: c})
	f.seedOrder("o-outage", "cus_outage")
	srv.Stop()

	ev := stripeEvent("evt_outage", "payment_intent.succeeded", "o-outage")
	status, _ := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	assert.Equal(t, http.StatusOK, status, "Temporal being down is not the provider's problem")
	time.Sleep(time.Second)
	status, ready := f.api(http.MethodGet, "/readyz", "", nil)
	assert.Equal(t, http.StatusOK, status, "no Temporal check is configured in this fixture")
	assert.Equal(t, float64(1), ready["inbox"].(map[string]any)["pending"], "the backlog shows in /readyz")
	var pending, attempts int
	var lastErr string
	require.NoError(t, f.store.Pool().QueryRow(context.Background(),
		`SELECT count(*) FILTER (WHERE handed_off_at IS NULL), max(attempts), coalesce(max(last_error), '') FROM webhook_inbox`).Scan(&pending, &attempts, &lastErr))
	assert.Equal(t, 1, pending)
	assert.GreaterOrEqual(t, attempts, 1)
	assert.NotEmpty(t, lastErr)

	testenv.StartTemporal(t, opts)
	require.Eventually(t, func() bool { _, p := f.inboxRows(); return p == 0 }, 60*time.Second, 200*time.Millisecond)
	desc, err := c.DescribeWorkflowExecution(context.Background(), contract.OrderConfirmationID("o-outage"), "")
	require.NoError(t, err)
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.GetWorkflowExecutionInfo().GetStatus())
}

// quiet drops the SDK's logs, which are noisy while Temporal is down.
type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}
