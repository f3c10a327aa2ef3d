package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v76/webhook"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/codec"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
	"github.com/crmflow/crmflow/starter"
	"github.com/crmflow/crmflow/workflows"
)

// stackOptions choose what a test's crmflow runs against.
type stackOptions struct {
	// persistentTemporal keeps Temporal's state in a SQLite file, so the
	// server can be stopped and started again with its workflows intact.
	persistentTemporal bool
	// databaseURL replaces the test's database on the shared PostgreSQL
	// (a test that stops PostgreSQL brings its own).
	databaseURL string
	// temporalCluster runs Temporal as a two-node cluster on PostgreSQL
	// behind a balancer instead of one server on SQLite.
	temporalCluster bool
}

// stack is one test's world: a Temporal server of its own (so no workflow,
// schedule or task of another test can reach its workers), a fresh
// database, the provider peers, and the crmflow processes it starts.
type stack struct {
	t        *testing.T
	dbURL    string
	store    *store.Store
	temporal *testenv.TemporalServer
	tOpts    testenv.TemporalOptions
	// portHold keeps Temporal's port while stopTemporal has it down.
	portHold *testenv.PortHold
	// cluster is the Temporal cluster of a temporalCluster stack.
	cluster *testenv.TemporalCluster
	// temporalAddr is where crmflow dials Temporal.
	temporalAddr string
	tc           client.Client
	starter      *starter.Starter
	knock        *knockPeer
	stripe       *stripePeer

	mu sync.Mutex
	// acked are the events a provider got a 2xx for, by provider and id.
	acked map[inboxKey]bool
	// knockWant are the Knock effects the acked events must have caused,
	// by idempotency key, with the Knock workflow each must be.
	knockWant map[string]string
}

type inboxKey struct{ provider, eventID string }

// createDBMu serialises testenv.DatabaseURL across parallel tests.
var createDBMu sync.Mutex

func newStack(t *testing.T, opts stackOptions) *stack {
	t.Helper()
	s := &stack{t: t, acked: map[inboxKey]bool{}, knockWant: map[string]string{}}
	s.dbURL = opts.databaseURL
	if s.dbURL == "" {
		// PostgreSQL refuses to copy the template database into two new
		// databases at once, and these tests run in parallel.
		createDBMu.Lock()
		s.dbURL = testenv.DatabaseURL(t)
		createDBMu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, s.dbURL)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	s.store = st

	if opts.temporalCluster {
		s.cluster = testenv.StartTemporalCluster(t, 2)
		s.temporalAddr = s.cluster.FrontendAddr()
	} else {
		s.tOpts = testenv.TemporalOptions{Port: testenv.FreePort(t)}
		if opts.persistentTemporal {
			s.tOpts.DatabaseFile = filepath.Join(t.TempDir(), "temporal.db")
		}
		s.startTemporal()
		s.temporalAddr = fmt.Sprintf("127.0.0.1:%d", s.tOpts.Port)
	}

	keys, err := credentials.NewKeyring(testenv.MasterKey)
	require.NoError(t, err)
	dc := codec.NewDataConverter(keys)
	// Lazy, so it outlives a Temporal outage the test causes.
	s.tc, err = client.NewLazyClient(client.Options{
		HostPort: s.temporalAddr, Namespace: "default", Logger: quietLogger{},
		DataConverter: dc, FailureConverter: codec.NewFailureConverter(dc),
	})
	require.NoError(t, err)
	t.Cleanup(s.tc.Close)
	s.starter = starter.New(s.tc, starter.Options{})

	s.knock = newKnockPeer(t)
	s.stripe = newStripePeer(t)
	return s
}

// startTemporal starts (or restarts, on the same port and file) the stack's
// Temporal server.
func (s *stack) startTemporal() {
	s.t.Helper()
	s.portHold.Release()
	s.temporal = testenv.StartTemporal(s.t, s.tOpts)
}

// stopTemporal stops the stack's Temporal server.
func (s *stack) stopTemporal() {
	s.temporal.Stop()
	s.temporal = nil
	s.portHold = testenv.HoldPort(s.t, s.tOpts.Port)
}

// config is the CRMFLOW_* configuration of a child process.
func (s *stack) config(extra map[string]string) map[string]string {
	c := map[string]string{
		"CRMFLOW_HTTP_ADDR":             freeAddr(s.t),
		"CRMFLOW_DATABASE_URL":          s.dbURL,
		"CRMFLOW_TEMPORAL_ADDRESS":      s.temporalAddr,
		"CRMFLOW_TEMPORAL_NAMESPACE":    "default",
		"CRMFLOW_MASTER_KEY":            testenv.MasterKey,
		"CRMFLOW_API_TOKENS":            apiToken,
		"CRMFLOW_LOG_LEVEL":             "info",
		"CRMFLOW_STRIPE_SECRET_KEY":     stripeKey,
		"CRMFLOW_STRIPE_API_URL":        s.stripe.srv.URL,
		"CRMFLOW_STRIPE_WEBHOOK_SECRET": stripeSecret,
		"CRMFLOW_KNOCK_API_KEY":         knockKey,
		"CRMFLOW_KNOCK_API_URL":         s.knock.srv.URL,
	}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// serve starts a `crmflow serve` process.
func (s *stack) serve(name string, extra map[string]string) *proc {
	s.t.Helper()
	return startProc(s.t, name, "serve", s.config(extra))
}

// worker starts a `crmflow worker` process.
//
// It returns once the worker polls the workflow task queue: /healthz answers
// before the worker has reached Temporal (and, as a versioned worker, joined
// its deployment), and a test that stops Temporal right after starting one
// must not catch it half started.
func (s *stack) worker(name string, extra map[string]string) *proc {
	s.t.Helper()
	p := startProc(s.t, name, "worker", s.config(extra))
	waitFor(s.t, time.Minute, name+" polls the workflow task queue", func() bool {
		return s.polls(p, contract.TaskQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
	})
	return p
}

// polls reports whether Temporal lists the worker process p among the
// pollers of queue (the SDK's identity starts with the process id).
func (s *stack) polls(p *proc, queue string, typ enumspb.TaskQueueType) bool {
	identity := fmt.Sprintf("%d@", p.cmd.Process.Pid)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := s.tc.DescribeTaskQueue(ctx, queue, typ)
	if err != nil {
		return false
	}
	for _, poller := range resp.GetPollers() {
		if strings.HasPrefix(poller.GetIdentity(), identity) {
			return true
		}
	}
	return false
}

// databaseRestarted drops the test's own connections to a PostgreSQL that
// has just been restarted. They died with the old server, and a backend
// may have written its "terminating connection" (57P01) to one before it
// went: the pool checks only connections idle for a second or more, so it
// would hand such a one to the first query after a quick restart.
func (s *stack) databaseRestarted() {
	s.store.Pool().Reset()
}

// seedOrders creates one customer and a pending order per id.
func (s *stack) seedOrders(ids ...string) {
	s.t.Helper()
	ctx := context.Background()
	for _, id := range ids {
		cust := "cus-" + id
		require.NoError(s.t, s.store.UpsertCustomer(ctx, store.Customer{ID: cust, Email: cust + "@example.com"}))
		require.NoError(s.t, s.store.InsertOrder(ctx, store.Order{ID: id, CustomerID: cust, AmountCents: orderAmount, Currency: orderCurrency}))
	}
}

// paymentEvent is a Stripe payment_intent.succeeded or .payment_failed
// event for an order, created at the given time.
func paymentEvent(eventID, typ, orderID string, created time.Time) []byte {
	status, lastErr, received := "succeeded", "null", orderAmount
	if typ == "payment_intent.payment_failed" {
		status, lastErr, received = "requires_payment_method", `{"message":"Your card was declined."}`, 0
	}
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2024-06-20","type":%q,"created":%d,
"data":{"object":{"id":"pi_%s","object":"payment_intent","amount":%d,"amount_received":%d,"currency":%q,
"status":%q,"last_payment_error":%s,"metadata":{"order_id":%q}}}}`,
		eventID, typ, created.Unix(), orderID, orderAmount, received, orderCurrency, status, lastErr, orderID))
}

// confirmationKey is the idempotency key of an order's confirmation notice.
func confirmationKey(orderID string) string {
	return contract.OrderConfirmationID(orderID) + "/notify-confirmation"
}

// webhookReply is what a delivery got: a status and body, or an error when
// no answer came back.
type webhookReply struct {
	status int
	body   map[string]any
	err    error
}

// httpClient delivers webhooks. Its timeout only keeps a broken run from
// hanging; no test asserts on how long an answer took.
var httpClient = &http.Client{Timeout: 90 * time.Second}

// deliverStripe posts a Stripe event to a crmflow server, signed now the way
// Stripe signs each delivery attempt.
func deliverStripe(baseURL string, payload []byte) webhookReply {
	return do(deliverStripeRequest(context.Background(), baseURL, payload))
}

// deliverStripeRequest is the signed request deliverStripe sends.
func deliverStripeRequest(ctx context.Context, baseURL string, payload []byte) *http.Request {
	sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: stripeSecret, Timestamp: time.Now()}).Header
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/webhooks/stripe", bytes.NewReader(payload))
	if err != nil {
		panic(err) // the URL is built by the tests themselves
	}
	req.Header.Set("Stripe-Signature", sig)
	req.Header.Set("Content-Type", "application/json")
	return req
}

// errorCode is the code of crmflow's JSON error answer.
func errorCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func do(req *http.Request) webhookReply {
	resp, err := httpClient.Do(req)
	if err != nil {
		return webhookReply{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return webhookReply{err: err}
	}
	r := webhookReply{status: resp.StatusCode}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			r.err = fmt.Errorf("answer %d is not JSON: %s", resp.StatusCode, raw)
		}
	}
	return r
}

// ack records that the provider got a 2xx for the event, and which Knock
// effects it must cause (by idempotency key → Knock workflow).
func (s *stack) ack(provider, eventID string, knockEffects map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acked[inboxKey{provider, eventID}] = true
	for k, wf := range knockEffects {
		s.knockWant[k] = wf
	}
}

// deliverUntilAcked delivers a Stripe event to the servers in turn, as a
// provider retries, until one answers 200; it records the ack.
func (s *stack) deliverUntilAcked(payload []byte, eventID string, knockEffects map[string]string, servers ...func() string) webhookReply {
	s.t.Helper()
	r, err := s.tryDeliverUntilAcked(payload, eventID, knockEffects, func(attempt int) string {
		return servers[attempt%len(servers)]()
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

// tryDeliverUntilAcked is deliverUntilAcked for any goroutine: pick names
// the server of each attempt, and giving up is an error.
func (s *stack) tryDeliverUntilAcked(payload []byte, eventID string, knockEffects map[string]string, pick func(attempt int) string) (webhookReply, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for attempt := 0; ; attempt++ {
		r := deliverStripe(pick(attempt), payload)
		if r.err == nil && r.status == http.StatusOK {
			s.ack("stripe", eventID, knockEffects)
			return r, nil
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("event %s never acknowledged; last answer %d %v (%v)", eventID, r.status, r.body, r.err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// deliverPaymentToEither delivers the i-th sender's payment for the order
// to one of two servers until one acknowledges it, and expects its Knock
// confirmation: round robin over the servers that are up, a failed attempt
// going to the other one, as a load balancer in front of them would.
func (s *stack) deliverPaymentToEither(servers [2]*proc, i int, orderID string) error {
	eventID := "evt_" + orderID
	pick := func(attempt int) string {
		p := servers[(i+attempt)%2]
		if !p.alive() {
			p = servers[(i+attempt+1)%2]
		}
		return p.url()
	}
	_, err := s.tryDeliverUntilAcked(paymentEvent(eventID, "payment_intent.succeeded", orderID, time.Now()), eventID,
		map[string]string{confirmationKey(orderID): workflows.KnockOrderConfirmed}, pick)
	return err
}

// orderResult waits for the order's confirmation run to finish and returns
// its final state.
func (s *stack) orderResult(orderID string, timeout time.Duration) string {
	s.t.Helper()
	id := contract.OrderConfirmationID(orderID)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		var res contract.OrderConfirmationResult
		err := s.tc.GetWorkflow(ctx, id, "").Get(ctx, &res)
		if err == nil {
			return res.State
		}
		var notFound *serviceerror.NotFound
		if ctx.Err() != nil || !(errors.As(err, &notFound) || isUnavailable(err)) {
			s.t.Fatalf("%s did not finish: %v", id, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func isUnavailable(err error) bool {
	var unavailable *serviceerror.Unavailable
	return errors.As(err, &unavailable) || strings.Contains(err.Error(), "connection refused")
}

// orderStatus is the order's status column.
func (s *stack) orderStatus(orderID string) string {
	s.t.Helper()
	o, err := s.store.GetOrder(context.Background(), orderID)
	require.NoError(s.t, err)
	return o.Status
}

// inboxCounts counts inbox rows and those not yet handed off. A test that
// restarted PostgreSQL left the pool holding connections the server has
// since closed; the pool drops each as it fails, so a few tries reach a
// live one.
func (s *stack) inboxCounts() (total, pending int) {
	s.t.Helper()
	var err error
	for range 5 {
		err = s.store.Pool().QueryRow(context.Background(),
			`SELECT count(*), count(*) FILTER (WHERE handed_off_at IS NULL) FROM webhook_inbox`).Scan(&total, &pending)
		if err == nil {
			return total, pending
		}
	}
	require.NoError(s.t, err)
	return total, pending
}

// checkExactlyOnce is the check every fault test ends with: every event a
// provider got a 2xx for has exactly one inbox row, handed off; there is no
// row no provider was told about; and the provider peers saw exactly the
// side effects those events call for, each once: no missing effect, no
// second one, no stray one. Call it once the workflows have finished.
func (s *stack) checkExactlyOnce() {
	s.t.Helper()
	waitFor(s.t, 2*time.Minute, "every inbox row handed off", func() bool { _, p := s.inboxCounts(); return p == 0 })
	s.mu.Lock()
	acked := make([]inboxKey, 0, len(s.acked))
	for k := range s.acked {
		acked = append(acked, k)
	}
	want := make(map[string]string, len(s.knockWant))
	for k, v := range s.knockWant {
		want[k] = v
	}
	s.mu.Unlock()

	ctx := context.Background()
	for _, k := range acked {
		var rows int
		require.NoError(s.t, s.store.Pool().QueryRow(ctx,
			`SELECT count(*) FROM webhook_inbox WHERE provider = $1 AND event_id = $2`, k.provider, k.eventID).Scan(&rows))
		assert.Equal(s.t, 1, rows, "inbox rows of acknowledged event %s/%s", k.provider, k.eventID)
	}
	total, _ := s.inboxCounts()
	assert.Equal(s.t, len(acked), total, "every inbox row belongs to an acknowledged event")

	// The workflows finished before this check, so every effect has
	// happened; waiting a moment more only catches late duplicates.
	got := s.knock.effectsByKey()
	var missing, extra []string
	for key, wf := range want {
		e, ok := got[key]
		switch {
		case !ok:
			missing = append(missing, key)
		case e.Workflow != wf:
			s.t.Errorf("Knock effect %s is workflow %q, want %q", key, e.Workflow, wf)
		}
	}
	for key := range got {
		if _, ok := want[key]; !ok {
			extra = append(extra, key)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	assert.Empty(s.t, missing, "Knock effects that never happened")
	assert.Empty(s.t, extra, "Knock effects no acknowledged event called for")
	assert.Len(s.t, got, len(want), "one Knock effect per expected idempotency key")
	assert.Empty(s.t, s.stripe.writeKeys(), "no write at Stripe: order confirmation only reads")
}

// quietLogger drops the SDK's logs, which are loud during outages; the
// tests' own assertions report what went wrong.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}

// logf prints progress lines a reader of a failed run needs.
func logf(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("%s "+format, append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}
