package inbox_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/inbox"
)

// insertRow commits e and returns its row id.
func insertRow(t *testing.T, s testInbox, e inbox.Event) int64 {
	t.Helper()
	inserted, err := s.Insert(t.Context(), e)
	require.NoError(t, err)
	require.True(t, inserted)
	var id int64
	require.NoError(t, s.Pool().QueryRow(t.Context(),
		`SELECT id FROM webhook_inbox WHERE provider = $1 AND event_id = $2`, e.Source, e.EventID).Scan(&id))
	return id
}

// ignoredEvent is a row of source stored as ignored, with payload.
func ignoredEvent(t *testing.T, source, typ, payload string) inbox.Event {
	return inbox.Event{Source: source, EventID: uniqueID(t, "evt"), EventType: typ, Payload: []byte(payload),
		Ignored: "not handled when it came"}
}

func TestInboxListFiltersNewestFirstAndPages(t *testing.T) {
	t.Parallel()
	s := freshStore(t)
	ctx := t.Context()
	pending := insertEvents(t, s, "wf-a", "wf-b", "wf-c")
	clerk := insertRow(t, s, ignoredEvent(t, inbox.SourceClerk, "session.created", `{"type":"session.created"}`))
	require.NoError(t, s.MarkDone(ctx, pending[:1], inbox.StatusUnroutable, "order o-1 does not exist"))

	all, err := s.List(ctx, inbox.ListFilter{})
	require.NoError(t, err)
	require.Equal(t, []int64{clerk, pending[2], pending[1], pending[0]}, recordIDs(all), "newest first")
	for _, r := range all {
		assert.Nil(t, r.Payload, "a listing leaves payloads out")
		assert.Positive(t, r.Size)
	}
	assert.Equal(t, inbox.StatusUnroutable, all[3].Status)
	assert.Equal(t, "order o-1 does not exist", all[3].Note)
	assert.NotNil(t, all[3].DoneAt)
	assert.Equal(t, "wf-a", all[3].Target)

	byStatus, err := s.List(ctx, inbox.ListFilter{Status: inbox.StatusPending})
	require.NoError(t, err)
	assert.Equal(t, []int64{pending[2], pending[1]}, recordIDs(byStatus))
	byProvider, err := s.List(ctx, inbox.ListFilter{Provider: inbox.SourceClerk})
	require.NoError(t, err)
	assert.Equal(t, []int64{clerk}, recordIDs(byProvider))
	both, err := s.List(ctx, inbox.ListFilter{Status: inbox.StatusIgnored, Provider: inbox.SourceStripe})
	require.NoError(t, err)
	assert.Empty(t, both)

	// Pages of two: the second starts below the first's last id.
	first, err := s.List(ctx, inbox.ListFilter{Limit: 2})
	require.NoError(t, err)
	assert.Equal(t, []int64{clerk, pending[2]}, recordIDs(first))
	second, err := s.List(ctx, inbox.ListFilter{Limit: 2, BeforeID: first[1].ID})
	require.NoError(t, err)
	assert.Equal(t, []int64{pending[1], pending[0]}, recordIDs(second))

	_, err = s.List(ctx, inbox.ListFilter{Status: "lost"})
	assert.ErrorContains(t, err, `unknown status "lost"`)
	_, err = s.List(ctx, inbox.ListFilter{Provider: "paypal"})
	assert.ErrorContains(t, err, `unknown provider "paypal"`)
}

func recordIDs(list []inbox.Record) []int64 {
	ids := []int64{}
	for _, r := range list {
		ids = append(ids, r.ID)
	}
	return ids
}

func TestInboxGetHasThePayload(t *testing.T) {
	t.Parallel()
	s := freshStore(t)
	e := inboxEvent(t, "wf-get")
	e.Recovered = true
	id := insertRow(t, s, e)

	r, err := s.Get(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, e.Payload, r.Payload)
	assert.Equal(t, len(e.Payload), r.Size)
	assert.Equal(t, inbox.StatusPending, r.Status)
	assert.True(t, r.Recovered)
	assert.Nil(t, r.DoneAt)
	assert.Nil(t, r.ReplayedAt)

	_, err = s.Get(t.Context(), id+1000)
	require.ErrorIs(t, err, inbox.ErrNotFound)
}

// TestInboxReplayPutsARowBackInTheQueue: a delivered row goes back to
// pending under its event id, due now, attempts and note cleared, with who
// replayed it; the dispatcher's claim finds it. A pending row and a missing
// one are refused.
func TestInboxReplayPutsARowBackInTheQueue(t *testing.T) {
	t.Parallel()
	s := freshStore(t)
	ctx := t.Context()
	id := insertEvents(t, s, "order-confirmation/o-replay")[0]
	require.Equal(t, []int64{id}, claim(t, s, 10, time.Hour))
	require.NoError(t, s.MarkFailed(ctx, id, "temporal unavailable", time.Hour))
	_, err := s.Replay(ctx, id, "alice")
	require.ErrorIs(t, err, inbox.ErrAlreadyPending, "a pending row is handed off anyway")
	require.NoError(t, s.MarkDone(ctx, []int64{id}, inbox.StatusUnroutable, "order o-replay does not exist"))

	res, err := s.Replay(ctx, id, "alice")
	require.NoError(t, err)
	assert.Equal(t, inbox.StatusUnroutable, res.From)
	assert.False(t, res.Rerouted)
	assert.Equal(t, inbox.StatusPending, res.Status)
	assert.Equal(t, "order-confirmation/o-replay", res.Target)
	assert.Zero(t, res.Attempts)
	assert.Empty(t, res.Note)
	assert.Nil(t, res.DoneAt)
	assert.Equal(t, "alice", res.ReplayedBy)
	require.NotNil(t, res.ReplayedAt)
	assert.NotEmpty(t, res.Payload)

	// Due at once, although its last failure had put it off for an hour.
	assert.Equal(t, []int64{id}, claim(t, s, 10, time.Hour))
	_, err = s.Replay(ctx, id, "bob")
	require.ErrorIs(t, err, inbox.ErrAlreadyPending)
	_, err = s.Replay(ctx, id+1000, "alice")
	require.ErrorIs(t, err, inbox.ErrNotFound)
	_, err = s.Replay(ctx, id, "")
	require.Error(t, err, "a replay names its operator")
}

// TestInboxReplayOfAStillIgnoredEventChangesNothing: an event whose
// payload still names no target is refused with the reason, and its row
// stays as it was.
func TestInboxReplayOfAStillIgnoredEventChangesNothing(t *testing.T) {
	t.Parallel()
	s := freshStore(t)
	ctx := t.Context()
	cases := []struct {
		event  inbox.Event
		reason string
	}{
		{ignoredEvent(t, inbox.SourceStripe, "customer.created",
			`{"id":"evt_c","object":"event","type":"customer.created","data":{"object":{"id":"cus_1"}}}`),
			"event type customer.created is not handled"},
		{ignoredEvent(t, inbox.SourceStripe, "payment_intent.succeeded",
			`{"id":"evt_p","object":"event","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","metadata":{}}}}`),
			"not an order payment"},
		{ignoredEvent(t, inbox.SourceClerk, "session.created", `{"type":"session.created","data":{"id":"sess_1"}}`),
			"event type session.created is not handled"},
		{ignoredEvent(t, inbox.SourceStripe, "charge.refunded", `not json`), "stripe payload does not decode"},
		{ignoredEvent(t, "paypal", "sale", `{}`), "no route for provider paypal"},
	}
	for _, c := range cases {
		id := insertRow(t, s, c.event)
		before, err := s.Get(ctx, id)
		require.NoError(t, err)
		_, err = s.Replay(ctx, id, "alice")
		require.ErrorIs(t, err, inbox.ErrNotRoutable, c.event.EventType)
		assert.ErrorContains(t, err, c.reason)
		after, err := s.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, before, after, "a refused replay changes nothing")
	}
	assert.Empty(t, claim(t, s, 10, time.Hour))
}

// TestInboxReplayRoutesALegacyIgnoredRefund: a charge.refunded stored
// before refunds were routed (no route, no target, ignored) is routed from
// its payload as the edge routes one now: to its PaymentIntent, found at
// hand-off.
func TestInboxReplayRoutesALegacyIgnoredRefund(t *testing.T) {
	t.Parallel()
	s := freshStore(t)
	ctx := t.Context()
	payload := `{"id":"evt_refund_legacy","object":"event","type":"charge.refunded","data":{"object":{"id":"ch_1",
"object":"charge","amount":4200,"amount_refunded":4200,"refunded":true,"currency":"eur","payment_intent":"pi_legacy"}}}`
	id := insertRow(t, s, ignoredEvent(t, inbox.SourceStripe, "charge.refunded", payload))

	res, err := s.Replay(ctx, id, "alice")
	require.NoError(t, err)
	assert.True(t, res.Rerouted)
	assert.Equal(t, inbox.StatusIgnored, res.From)
	assert.Equal(t, "payment-intent/pi_legacy", res.Target)
	require.NotNil(t, res.Route.Refund)
	assert.Equal(t, "pi_legacy", res.Route.Refund.PaymentIntentID)
	assert.Equal(t, "evt_refund_legacy", res.Route.Refund.Event.EventID)
	assert.Equal(t, "ch_1", res.Route.Refund.Event.ChargeID)
	assert.EqualValues(t, 4200, res.Route.Refund.Event.AmountRefundedCents)

	// Stored as the edge stores a route, and claimable under its target.
	var workflowID, route string
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT workflow_id, route FROM webhook_inbox WHERE id = $1`, id).
		Scan(&workflowID, &route))
	assert.Equal(t, "payment-intent/pi_legacy", workflowID)
	assert.JSONEq(t, `{"refund":{"payment_intent_id":"pi_legacy","event":{"event_id":"evt_refund_legacy","charge_id":"ch_1",
"amount_refunded_cents":4200,"fully_refunded":true,"currency":"eur"}}}`, route)
	claimed, err := s.Claim(ctx, 10, time.Hour)
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	assert.Equal(t, res.Route, claimed[0].Route)
}

// TestInboxReplayRoutesAnIgnoredClerkAndStockRow: the other sources are
// routed from their payloads too.
func TestInboxReplayRoutesAnIgnoredClerkAndStockRow(t *testing.T) {
	t.Parallel()
	s := freshStore(t)
	ctx := t.Context()
	clerk := insertRow(t, s, ignoredEvent(t, inbox.SourceClerk, "user.deleted", `{"type":"user.deleted","data":{"id":"user_1"}}`))
	stock := insertRow(t, s, ignoredEvent(t, inbox.SourceStock, "stock-level",
		`{"sku":"sku-1","level":3,"observed_at":"2024-05-01T10:00:00Z"}`))

	res, err := s.Replay(ctx, clerk, "alice")
	require.NoError(t, err)
	// Routed as a new delivery is: to the user's entity, with its event
	// (the row's id becomes the event id at hand-off).
	assert.Equal(t, contract.UserID("user_1"), res.Target)
	assert.Equal(t, &inbox.ClerkRoute{Type: "user.deleted", UserID: "user_1",
		Event: &contract.UserEvent{Type: contract.UserEventDeleted, UserID: "user_1"}}, res.Route.Clerk)
	res, err = s.Replay(ctx, stock, "alice")
	require.NoError(t, err)
	assert.Equal(t, "low-stock/sku-1", res.Target)
	require.NotNil(t, res.Route.Stock)
	assert.Equal(t, 3, res.Route.Stock.Level)
}

// TestInboxCountsByProviderAndStatus: the metric counts rows per provider
// and status, every known pair at 0 when none has it.
func TestInboxCountsByProviderAndStatus(t *testing.T) {
	t.Parallel()
	s := freshStore(t)
	ctx := t.Context()
	ids := insertEvents(t, s, "wf-1", "wf-2", "wf-3")
	require.NoError(t, s.MarkDone(ctx, ids[:2], inbox.StatusUnroutable, "no order"))
	insertRow(t, s, ignoredEvent(t, inbox.SourceClerk, "session.created", `{}`))

	counts, err := s.Counts(ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, []inbox.Count{
		{Provider: "stripe", Status: "unroutable", Rows: 2},
		{Provider: "stripe", Status: "pending", Rows: 1},
		{Provider: "clerk", Status: "ignored", Rows: 1},
	}, counts)

	reg := prometheus.NewRegistry()
	reg.MustRegister(inbox.NewCountCollector(s.Store))
	got := gauges(t, reg, "crmflow_inbox_events_total")
	assert.Len(t, got, len(inbox.Sources)*len(inbox.Statuses))
	assert.EqualValues(t, 2, got["stripe/unroutable"])
	assert.EqualValues(t, 1, got["stripe/pending"])
	assert.EqualValues(t, 1, got["clerk/ignored"])
	assert.EqualValues(t, 0, got["inventory/dropped"])
	assert.EqualValues(t, 1, gauges(t, reg, "crmflow_inbox_events_up")[""])

	// PostgreSQL away: the scrape still answers, with up at 0.
	s.Pool().Close()
	assert.Empty(t, gauges(t, reg, "crmflow_inbox_events_total"))
	assert.EqualValues(t, 0, gauges(t, reg, "crmflow_inbox_events_up")[""])
}

// gauges gathers the family name from reg, by "provider/status" ("" for a
// gauge without labels).
func gauges(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var values []string
			for _, l := range m.GetLabel() { // sorted by name: provider, status
				values = append(values, l.GetValue())
			}
			out[strings.Join(values, "/")] = m.GetGauge().GetValue()
		}
	}
	return out
}
