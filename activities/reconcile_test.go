package activities_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/stripeevents"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// memSink is an inbox in memory: one row per event id, a redelivery a
// duplicate. failAt makes the nth call fail as a database outage would;
// unusable names events it refuses for good.
type memSink struct {
	mu       sync.Mutex
	rows     map[string]json.RawMessage
	order    []string // ids in the order they were stored
	calls    int
	failAt   int
	unusable map[string]bool
}

func newMemSink() *memSink {
	return &memSink{rows: map[string]json.RawMessage{}, unusable: map[string]bool{}}
}

func (s *memSink) StoreRecovered(_ context.Context, ev activities.RecoveredEvent) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	switch {
	case s.calls == s.failAt:
		return false, errors.New("connection refused")
	case s.unusable[ev.ID]:
		return false, fmt.Errorf("%w: no usable id", activities.ErrUnusableEvent)
	case ev.Provider != "stripe":
		return false, fmt.Errorf("provider %q", ev.Provider)
	}
	if _, ok := s.rows[ev.ID]; ok {
		return false, nil
	}
	s.rows[ev.ID] = ev.Raw
	s.order = append(s.order, ev.ID)
	return true, nil
}

// counter plays crmflow_reconcile_recovered_total.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) AddRecovered(provider string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[provider] += n
}

func (c *counter) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n["stripe"]
}

// reconcileFixture is the activity against the events stand-in, with a
// clock the test moves and a fresh database for the checkpoint.
type reconcileFixture struct {
	t       *testing.T
	now     time.Time
	stripe  *stripeevents.Server
	sink    *memSink
	counter *counter
	store   *store.Store
	acts    *activities.ReconcileActivities
}

var reconcileT0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func newReconcileFixture(t *testing.T) *reconcileFixture {
	f := &reconcileFixture{t: t, now: reconcileT0, sink: newMemSink(), counter: &counter{}, store: testenv.Store(t)}
	clock := func() time.Time { return f.now }
	f.stripe = stripeevents.New(t, clock)
	f.acts = &activities.ReconcileActivities{
		Stripe: activities.StripeEventsAPI{Stripe: &activities.StripeActivities{
			Stripe: activities.NewStripeClient(stripeTestKey, f.stripe.URL)}},
		Sink: f.sink, Checkpoints: f.store, Counter: f.counter, Now: clock,
	}
	return f
}

// run executes one attempt of the activity; details, when set, are an
// earlier attempt's heartbeat.
func (f *reconcileFixture) run(details any) (*activities.ReconcileStripeEventsOutput, error) {
	f.t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(&captureLogger{})
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(f.acts)
	if details != nil {
		env.SetHeartbeatDetails(details)
	}
	val, err := env.ExecuteActivity(f.acts.ReconcileStripeEvents, activities.ReconcileStripeEventsInput{})
	if err != nil {
		return nil, err
	}
	var out activities.ReconcileStripeEventsOutput
	require.NoError(f.t, val.Get(&out))
	return &out, nil
}

func (f *reconcileFixture) checkpoint() (time.Time, bool) {
	f.t.Helper()
	cp, ok, err := f.store.ReconcileCheckpoint(context.Background(), "stripe")
	require.NoError(f.t, err)
	return cp, ok
}

// payment adds a payment_intent.succeeded event created at.
func (f *reconcileFixture) payment(id string, at time.Time) []byte {
	raw := stripeevents.PaymentIntentEvent(id, "payment_intent.succeeded", "o-"+id, "pi_"+id, 4200, "eur", at)
	f.stripe.Add(f.t, raw)
	return raw
}

var handledTypes = []string{"charge.refunded", "payment_intent.payment_failed", "payment_intent.succeeded"}

func TestReconcileFirstRunPagesThroughTheHandledEvents(t *testing.T) {
	f := newReconcileFixture(t)
	raws := map[string][]byte{}
	for i := range 230 {
		id := fmt.Sprintf("evt_%03d", i)
		raws[id] = f.payment(id, reconcileT0.Add(-48*time.Hour+time.Duration(i)*time.Minute))
	}
	refund := stripeevents.ChargeRefundedEvent("evt_refund", "ch_1", "pi_evt_000", 4200, 4200, "eur", reconcileT0.Add(-time.Hour))
	f.stripe.Add(t, refund)
	raws["evt_refund"] = refund
	// Not handled, too old for a first run, too young to be missing yet.
	f.stripe.Add(t, []byte(fmt.Sprintf(`{"id":"evt_customer","object":"event","type":"customer.created","created":%d,"data":{"object":{}}}`,
		reconcileT0.Add(-time.Hour).Unix())))
	f.payment("evt_old", reconcileT0.Add(-73*time.Hour))
	f.payment("evt_young", reconcileT0.Add(-time.Minute))

	out, err := f.run(nil)
	require.NoError(t, err)
	from, to := reconcileT0.Add(-72*time.Hour), reconcileT0.Add(-5*time.Minute)
	assert.Equal(t, activities.ReconcileStripeEventsOutput{From: from, To: to, Pages: 3, Listed: 231, Recovered: 231, Checkpoint: to}, *out)

	reqs := f.stripe.Requests()
	require.Len(t, reqs, 3, "100 + 100 + 31 events")
	for i, r := range reqs {
		assert.Equal(t, handledTypes, r.Types, "types[]: only the handled types")
		assert.Equal(t, map[string]int64{"gte": from.Unix(), "lt": to.Unix()}, r.Created)
		assert.Equal(t, 100, r.Limit)
		if i > 0 {
			assert.NotEmpty(t, r.StartingAfter, "page %d continues after the last event of page %d", i+1, i)
		}
	}
	assert.Equal(t, "evt_131", reqs[1].StartingAfter, "newest first: page 1 is the refund and evt_229 down to evt_131")

	require.Len(t, f.sink.rows, 231)
	for id, raw := range raws {
		assert.Equal(t, string(raw), string(f.sink.rows[id]), "%s is stored as Stripe listed it, byte for byte", id)
	}
	assert.NotContains(t, f.sink.rows, "evt_old")
	assert.NotContains(t, f.sink.rows, "evt_young")
	assert.NotContains(t, f.sink.rows, "evt_customer")
	assert.Equal(t, []string{"evt_131", "evt_132"}, f.sink.order[:2], "within a page, oldest first as webhooks come")
	assert.Equal(t, 231, f.counter.get())
	cp, ok := f.checkpoint()
	require.True(t, ok)
	assert.True(t, cp.Equal(to), "checkpoint %s", cp)
}

func TestReconcileNextRunOverlapsAndCountsOnlyWhatIsNew(t *testing.T) {
	f := newReconcileFixture(t)
	f.payment("evt_a", reconcileT0.Add(-8*time.Minute))
	f.payment("evt_young", reconcileT0.Add(-2*time.Minute))
	_, err := f.run(nil)
	require.NoError(t, err)
	require.Equal(t, 1, f.counter.get())
	// The webhook of one new event arrived; another's never did.
	f.now = reconcileT0.Add(15 * time.Minute)
	f.payment("evt_delivered", reconcileT0.Add(5*time.Minute))
	_, err = f.sink.StoreRecovered(context.Background(), activities.RecoveredEvent{Provider: "stripe",
		ListedEvent: activities.ListedEvent{ID: "evt_delivered", Raw: json.RawMessage(`{}`)}})
	require.NoError(t, err)
	f.payment("evt_lost", reconcileT0.Add(6*time.Minute))

	out, err := f.run(nil)
	require.NoError(t, err)
	from := reconcileT0.Add(-5*time.Minute - 10*time.Minute)
	last := f.stripe.Requests()[len(f.stripe.Requests())-1]
	assert.Equal(t, from.Unix(), last.Created["gte"], "created[gte] is the checkpoint less the 10-minute overlap")
	assert.Equal(t, 4, out.Listed, "the overlap lists evt_a again")
	assert.Equal(t, 2, out.Recovered, "evt_young (now old enough) and evt_lost")
	assert.Equal(t, 3, f.counter.get(), "evt_a and evt_delivered are duplicates: not counted")
	cp, _ := f.checkpoint()
	assert.True(t, cp.Equal(reconcileT0.Add(10*time.Minute)), "checkpoint %s", cp)
}

func TestReconcileCheckpointOnlyAdvancesAfterEveryEventIsStored(t *testing.T) {
	f := newReconcileFixture(t)
	for i := range 150 {
		f.payment(fmt.Sprintf("evt_%03d", i), reconcileT0.Add(-time.Hour+time.Duration(i)*time.Second))
	}

	// The database fails on the 120th event (page 2).
	f.sink.failAt = 120
	_, err := f.run(nil)
	requireStripeError(t, err, "StoreUnavailable", false)
	_, ok := f.checkpoint()
	assert.False(t, ok, "no checkpoint while events of the window are missing")
	assert.Equal(t, 119, f.counter.get(), "what was stored is counted once")

	// Stripe rate-limits the second page: retryable, and the checkpoint
	// stays.
	f.sink.failAt, f.sink.calls = 0, 0
	reqs := len(f.stripe.Requests())
	f.stripe.FailNext(0, http.StatusTooManyRequests)
	_, err = f.run(nil)
	requireStripeError(t, err, "StripeRateLimited", false)
	assert.Len(t, f.stripe.Requests(), reqs+2)
	_, ok = f.checkpoint()
	assert.False(t, ok)

	out, err := f.run(nil)
	require.NoError(t, err)
	assert.Equal(t, 150, out.Listed)
	assert.Equal(t, 31, out.Recovered, "only the events the failed runs did not store")
	assert.Equal(t, 150, f.counter.get(), "each event counted once across the runs")
	cp, ok := f.checkpoint()
	require.True(t, ok)
	assert.True(t, cp.Equal(reconcileT0.Add(-5*time.Minute)))
}

func TestReconcileNeverListsBeyondStripesThirtyDays(t *testing.T) {
	f := newReconcileFixture(t)
	// The last successful run was 40 days ago (reconciliation was off).
	require.NoError(t, f.store.SaveReconcileCheckpoint(context.Background(), "stripe", reconcileT0.Add(-40*24*time.Hour)))
	f.payment("evt_29d", reconcileT0.Add(-29*24*time.Hour))

	out, err := f.run(nil)
	require.NoError(t, err)
	horizon := reconcileT0.Add(-30*24*time.Hour + time.Second)
	assert.True(t, out.Clamped)
	assert.Equal(t, horizon, out.From)
	assert.Equal(t, horizon.Unix(), f.stripe.Requests()[0].Created["gte"], "created[gte] is clamped to Stripe's horizon")
	assert.Equal(t, 1, out.Recovered)
}

func TestReconcileSkipsAnEventTheInboxRefusesForGood(t *testing.T) {
	f := newReconcileFixture(t)
	f.payment("evt_bad", reconcileT0.Add(-time.Hour))
	f.payment("evt_good", reconcileT0.Add(-time.Hour+time.Second))
	f.sink.unusable["evt_bad"] = true

	out, err := f.run(nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"evt_bad"}, out.Rejected)
	assert.Equal(t, 1, out.Recovered)
	_, ok := f.checkpoint()
	assert.True(t, ok, "a refused event does not hold the checkpoint back forever")
}

func TestReconcileRetryResumesAfterTheLastStoredPage(t *testing.T) {
	f := newReconcileFixture(t)
	for i := range 5 {
		f.payment(fmt.Sprintf("evt_%d", i), reconcileT0.Add(-time.Hour+time.Duration(i)*time.Second))
	}
	from, to := reconcileT0.Add(-2*time.Hour), reconcileT0.Add(-30*time.Minute)
	// The heartbeat of an attempt that stored the page ending with evt_3.
	details := map[string]any{"out": activities.ReconcileStripeEventsOutput{From: from, To: to, Pages: 1, Listed: 2, Recovered: 2},
		"cursor": "evt_3"}

	out, err := f.run(details)
	require.NoError(t, err)
	req := f.stripe.Requests()[0]
	assert.Equal(t, "evt_3", req.StartingAfter, "the retry goes on after the stored page")
	assert.Equal(t, map[string]int64{"gte": from.Unix(), "lt": to.Unix()}, req.Created, "in the same window")
	assert.Equal(t, 2, out.Pages)
	assert.Equal(t, 5, out.Listed)
	assert.Equal(t, 5, out.Recovered)
	assert.ElementsMatch(t, []string{"evt_0", "evt_1", "evt_2"}, f.sink.order)
	cp, _ := f.checkpoint()
	assert.True(t, cp.Equal(to))
}

// TestReconcileStoresOnlyTheTypesItAskedFor: a Stripe that ignores
// types[] (stripe-mock does) adds no ignored rows and no false recoveries.
func TestReconcileStoresOnlyTheTypesItAskedFor(t *testing.T) {
	f := newReconcileFixture(t)
	f.acts.Stripe = typesIgnored{f.acts.Stripe}
	f.payment("evt_pay", reconcileT0.Add(-time.Hour))
	f.stripe.Add(t, []byte(fmt.Sprintf(`{"id":"evt_plan","object":"event","type":"plan.created","created":%d,"data":{"object":{}}}`,
		reconcileT0.Add(-time.Hour).Unix())))
	out, err := f.run(nil)
	require.NoError(t, err)
	assert.Equal(t, 2, out.Listed)
	assert.Equal(t, 1, out.Recovered)
	assert.Equal(t, []string{"evt_pay"}, f.sink.order)
}

// typesIgnored lists every type, whatever the query asks for.
type typesIgnored struct{ activities.StripeEventLister }

func (l typesIgnored) ListEvents(ctx context.Context, q activities.EventListQuery) (*activities.EventPage, error) {
	q.Types = nil
	return l.StripeEventLister.ListEvents(ctx, q)
}

func TestReconcileWithoutStripeFailsForGood(t *testing.T) {
	f := newReconcileFixture(t)
	f.acts.Stripe = nil // console mode
	_, err := f.run(nil)
	requireStripeError(t, err, "StripeInvalidRequest", true)
}

// TestStripeEventsAPIAgainstStripeMock sends the listing to stripe-mock,
// which checks every parameter against Stripe's spec (an unknown or
// malformed one is a 400), and reads its answer: each event is the bytes
// Stripe sent for it.
func TestStripeEventsAPIAgainstStripeMock(t *testing.T) {
	rec := &wireRecorder{}
	api := activities.StripeEventsAPI{Stripe: &activities.StripeActivities{Stripe: activities.NewStripeClientWithHTTPClient(
		stripeTestKey, testenv.StripeMockURL(t), &http.Client{Transport: rec})}}
	page, err := api.ListEvents(context.Background(), activities.EventListQuery{Types: activities.StripeReconciledTypes,
		CreatedGTE: reconcileT0.Add(-time.Hour), CreatedLT: reconcileT0, StartingAfter: "evt_123", Limit: 100})
	require.NoError(t, err)
	require.NotEmpty(t, page.Events, "stripe-mock answers its fixture list")
	ev := page.Events[0]
	assert.NotEmpty(t, ev.ID)
	assert.False(t, ev.Created.IsZero())
	var obj map[string]any
	require.NoError(t, json.Unmarshal(ev.Raw, &obj))
	assert.Equal(t, "event", obj["object"])

	require.Len(t, rec.urls, 1)
	q := rec.urls[0].Query()
	assert.Equal(t, "/v1/events", rec.urls[0].Path)
	assert.Equal(t, "100", q.Get("limit"))
	assert.Equal(t, "evt_123", q.Get("starting_after"))
	assert.Equal(t, fmt.Sprint(reconcileT0.Add(-time.Hour).Unix()), q.Get("created[gte]"))
	assert.Equal(t, fmt.Sprint(reconcileT0.Unix()), q.Get("created[lt]"))
	assert.Equal(t, []string{"payment_intent.succeeded", "payment_intent.payment_failed", "charge.refunded"},
		[]string{q.Get("types[0]"), q.Get("types[1]"), q.Get("types[2]")})
	var answer struct {
		Data []json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(rec.bodies[0], &answer))
	assert.Equal(t, string(answer.Data[0]), string(ev.Raw), "not re-encoded")
}

// wireRecorder keeps each request's URL and each answer's body.
type wireRecorder struct {
	urls   []*url.URL
	bodies [][]byte
}

func (w *wireRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	w.urls = append(w.urls, req.URL)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	w.bodies = append(w.bodies, body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}
