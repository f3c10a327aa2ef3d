package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/store"
)

// freshStore opens a newly created and migrated database of its own, for
// tests that look at the whole inbox or dead-letter table and so must not see
// the rows of tests running in parallel.
func freshStore(t *testing.T) *store.Store {
	t.Helper()
	dbURL := newDatabase(t)
	require.NoError(t, store.Migrate(t.Context(), dbURL))
	s, err := store.Open(t.Context(), dbURL)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

func inboxEvent(t *testing.T, workflowID string) store.InboxEvent {
	return store.InboxEvent{
		Provider:   "stripe",
		EventID:    uniqueID(t, "evt"),
		EventType:  "payment_intent.succeeded",
		WorkflowID: workflowID,
		Payload:    []byte(fmt.Sprintf(`{"workflow": %q}`, workflowID)),
	}
}

// insertEvents commits one pending event per workflow id, in order, and
// returns their row ids.
func insertEvents(t *testing.T, s *store.Store, workflowIDs ...string) []int64 {
	t.Helper()
	ids := make([]int64, 0, len(workflowIDs))
	for _, wf := range workflowIDs {
		e := inboxEvent(t, wf)
		inserted, err := s.InsertInboxEvent(t.Context(), e, "")
		require.NoError(t, err)
		require.True(t, inserted)
		var id int64
		require.NoError(t, s.Pool().QueryRow(t.Context(),
			`SELECT id FROM webhook_inbox WHERE provider = $1 AND event_id = $2`, e.Provider, e.EventID).Scan(&id))
		ids = append(ids, id)
	}
	return ids
}

func claim(t *testing.T, s *store.Store, limit int, lease time.Duration) []int64 {
	t.Helper()
	events, err := s.ClaimInboxEvents(t.Context(), limit, lease)
	require.NoError(t, err)
	return eventIDs(events)
}

func eventIDs(events []store.InboxEvent) []int64 {
	ids := []int64{}
	for _, e := range events {
		ids = append(ids, e.ID)
	}
	return ids
}

type inboxRow struct {
	workflowID *string
	payload    string
	handedOff  bool
	lastError  *string
	attempts   int
}

func getInboxRow(t *testing.T, s *store.Store, id int64) inboxRow {
	t.Helper()
	var r inboxRow
	require.NoError(t, s.Pool().QueryRow(t.Context(), `
		SELECT workflow_id, payload::text, handed_off_at IS NOT NULL, last_error, attempts
		FROM webhook_inbox WHERE id = $1`, id).Scan(&r.workflowID, &r.payload, &r.handedOff, &r.lastError, &r.attempts))
	return r
}

func TestInsertInboxEventDeduplicates(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := inboxEvent(t, uniqueID(t, "wf"))
	e.Payload = []byte(`{"delivery": 1}`)

	inserted, err := db.InsertInboxEvent(ctx, e, "")
	require.NoError(t, err)
	require.True(t, inserted)

	redelivery := e
	redelivery.Payload = []byte(`{"delivery": 2}`)
	inserted, err = db.InsertInboxEvent(ctx, redelivery, "")
	require.NoError(t, err)
	require.False(t, inserted, "a redelivery must report that nothing was stored")

	var n int
	var payload string
	require.NoError(t, db.Pool().QueryRow(ctx, `
		SELECT count(*), min(payload::text) FROM webhook_inbox WHERE provider = $1 AND event_id = $2`,
		e.Provider, e.EventID).Scan(&n, &payload))
	require.Equal(t, 1, n)
	require.JSONEq(t, `{"delivery": 1}`, payload, "the redelivery overwrote the stored event")

	// The same event id from another provider is another event.
	other := e
	other.Provider = "clerk"
	inserted, err = db.InsertInboxEvent(ctx, other, "")
	require.NoError(t, err)
	require.True(t, inserted)
}

func TestInsertIgnoredInboxEvent(t *testing.T) {
	t.Parallel()
	s := freshStore(t)
	ctx := t.Context()
	e := inboxEvent(t, "")
	e.EventType = "customer.tax_id.created"
	const reason = "event type customer.tax_id.created is not handled"

	inserted, err := s.InsertInboxEvent(ctx, e, reason)
	require.NoError(t, err)
	require.True(t, inserted)

	var id int64
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT id FROM webhook_inbox WHERE event_id = $1`, e.EventID).Scan(&id))
	row := getInboxRow(t, s, id)
	require.Nil(t, row.workflowID)
	require.True(t, row.handedOff, "an ignored event must be stored already handed off")
	require.NotNil(t, row.lastError)
	require.Equal(t, reason, *row.lastError)
	require.Zero(t, row.attempts)

	require.Empty(t, claim(t, s, 10, time.Minute), "an ignored event must never be claimed")
	backlog, err := s.InboxBacklog(ctx)
	require.NoError(t, err)
	require.Equal(t, store.InboxBacklog{}, backlog)
}

func TestClaimInboxEventsOrderLimitAndLease(t *testing.T) {
	t.Parallel()
	s := freshStore(t)
	ctx := t.Context()
	ids := insertEvents(t, s, "wf-1", "wf-2", "wf-3", "wf-4", "wf-5")

	first, err := s.ClaimInboxEvents(ctx, 3, time.Hour)
	require.NoError(t, err)
	require.Equal(t, ids[:3], eventIDs(first), "claims are in id order and respect the limit")
	for i, e := range first {
		require.Equal(t, "stripe", e.Provider)
		require.Equal(t, "payment_intent.succeeded", e.EventType)
		require.Equal(t, fmt.Sprintf("wf-%d", i+1), e.WorkflowID)
		require.JSONEq(t, fmt.Sprintf(`{"workflow": "wf-%d"}`, i+1), string(e.Payload))
		require.NotEmpty(t, e.EventID)
		require.WithinDuration(t, time.Now(), e.ReceivedAt, time.Minute)
		require.Equal(t, 1, e.Attempts)
	}

	// The leased rows are not handed out again; the rest are.
	require.Equal(t, ids[3:], claim(t, s, 10, time.Hour))
	require.Empty(t, claim(t, s, 10, time.Hour))

	for _, id := range ids {
		require.Equal(t, 1, getInboxRow(t, s, id).attempts)
	}
}

func TestClaimInboxEventsLeaseExpires(t *testing.T) {
	t.Parallel()
	s := freshStore(t)
	ids := insertEvents(t, s, "wf-1")

	require.Equal(t, ids, claim(t, s, 10, 200*time.Millisecond))
	require.Empty(t, claim(t, s, 10, 200*time.Millisecond), "claimed again inside its lease")

	time.Sleep(400 * time.Millisecond)
	again, err := s.ClaimInboxEvents(t.Context(), 10, time.Hour)
	require.NoError(t, err)
	require.Equal(t, ids, eventIDs(again), "not claimable after its lease expired")
	require.Equal(t, 2, again[0].Attempts)
}

func TestClaimInboxEventsKeepsOrderPerWorkflow(t *testing.T) {
	t.Parallel()
	s := freshStore(t)
	ctx := t.Context()
	ids := insertEvents(t, s, "wf-A", "wf-A", "wf-B")
	a1, a2, b1 := ids[0], ids[1], ids[2]

	require.Equal(t, []int64{a1, b1}, claim(t, s, 10, time.Hour), "A2 must wait for A1")
	require.Empty(t, claim(t, s, 10, time.Hour))

	// A failed hand-off of A1 still holds A2 back.
	require.NoError(t, s.MarkHandOffFailed(ctx, a1, "temporal unavailable", 0))
	require.NoError(t, s.MarkHandedOff(ctx, []int64{b1}, ""))
	require.Equal(t, []int64{a1}, claim(t, s, 10, time.Hour))

	require.NoError(t, s.MarkHandedOff(ctx, []int64{a1}, ""))
	require.Equal(t, []int64{a2}, claim(t, s, 10, time.Hour))

	row := getInboxRow(t, s, a1)
	require.True(t, row.handedOff)
	require.Nil(t, row.lastError, "a successful hand-off without a note clears the error")
	require.Equal(t, 2, row.attempts)
}

func TestMarkHandOffFailedDefersRow(t *testing.T) {
	t.Parallel()
	s := freshStore(t)
	ctx := t.Context()
	ids := insertEvents(t, s, "wf-1")
	id := ids[0]

	require.Equal(t, ids, claim(t, s, 10, time.Hour))
	const delay = 500 * time.Millisecond
	require.NoError(t, s.MarkHandOffFailed(ctx, id, "temporal unavailable", delay))

	row := getInboxRow(t, s, id)
	require.False(t, row.handedOff)
	require.NotNil(t, row.lastError)
	require.Equal(t, "temporal unavailable", *row.lastError)
	// The retry delay replaces the hour-long lease.
	var wait time.Duration
	require.NoError(t, s.Pool().QueryRow(ctx,
		`SELECT next_attempt_at - now() FROM webhook_inbox WHERE id = $1`, id).Scan(&wait))
	require.Greater(t, wait, time.Duration(0))
	require.LessOrEqual(t, wait, delay)

	require.Empty(t, claim(t, s, 10, time.Hour), "claimable before its retry delay passed")
	time.Sleep(delay + 200*time.Millisecond)
	require.Equal(t, ids, claim(t, s, 10, time.Hour), "not claimable after its retry delay passed")

	// A late failure report does not touch a row already handed off.
	require.NoError(t, s.MarkHandedOff(ctx, []int64{id}, "handed off by the sweeper"))
	require.NoError(t, s.MarkHandOffFailed(ctx, id, "stale failure", 0))
	row = getInboxRow(t, s, id)
	require.True(t, row.handedOff)
	require.Equal(t, "handed off by the sweeper", *row.lastError)
	require.Empty(t, claim(t, s, 10, time.Hour))
}

func TestConcurrentClaimersNeverShareARow(t *testing.T) {
	t.Parallel()
	s := freshStore(t)
	const rows, claimers = 50, 4
	workflows := make([]string, rows)
	for i := range workflows {
		workflows[i] = fmt.Sprintf("wf-%d", i)
	}
	ids := insertEvents(t, s, workflows...)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// Open a connection per claimer beforehand, so that the claimers do not
	// spend their first claim dialing while one of them drains the inbox.
	conns := make([]*pgxpool.Conn, claimers)
	for i := range conns {
		c, err := s.Pool().Acquire(ctx)
		require.NoError(t, err)
		conns[i] = c
	}
	for _, c := range conns {
		c.Release()
	}
	start := make(chan struct{})
	var (
		mu     sync.Mutex
		seen   = map[int64]int{}
		errs   = make([]error, claimers)
		counts = make([]int, claimers)
		wg     sync.WaitGroup
	)
	for g := range claimers {
		wg.Go(func() {
			<-start
			for {
				events, err := s.ClaimInboxEvents(ctx, 2, time.Hour)
				if err != nil {
					errs[g] = err
					return
				}
				if len(events) == 0 {
					return
				}
				counts[g] += len(events)
				mu.Lock()
				for _, e := range events {
					seen[e.ID]++
				}
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	for g, err := range errs {
		require.NoError(t, err, "claimer %d", g)
	}

	require.Len(t, seen, rows, "every row claimed")
	for id, n := range seen {
		require.Equal(t, 1, n, "row %d claimed %d times", id, n)
	}
	for _, id := range ids {
		require.Equal(t, 1, getInboxRow(t, s, id).attempts, "row %d", id)
	}
	require.Empty(t, claim(t, s, 100, time.Hour))
	t.Logf("rows per claimer: %v", counts)
}

func TestInboxBacklog(t *testing.T) {
	t.Parallel()
	s := freshStore(t)
	ctx := t.Context()

	backlog, err := s.InboxBacklog(ctx)
	require.NoError(t, err)
	require.Equal(t, store.InboxBacklog{}, backlog)

	ids := insertEvents(t, s, "wf-1", "wf-2")
	inserted, err := s.InsertInboxEvent(ctx, inboxEvent(t, ""), "ignored")
	require.NoError(t, err)
	require.True(t, inserted)
	const waited = 300 * time.Millisecond
	time.Sleep(waited)
	newestInserted := time.Now()
	ids = append(ids, insertEvents(t, s, "wf-3")...)

	backlog, err = s.InboxBacklog(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, backlog.Pending, "ignored events are not backlog")
	require.GreaterOrEqual(t, backlog.OldestAge, waited)
	require.Less(t, backlog.OldestAge, 30*time.Second)

	// Claimed (leased) rows are still waiting for their hand-off.
	require.Len(t, claim(t, s, 10, time.Hour), 3)
	backlog, err = s.InboxBacklog(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, backlog.Pending)

	// Handing off the two oldest leaves only the newest, which is younger.
	require.NoError(t, s.MarkHandedOff(ctx, []int64{ids[0]}, ""))
	require.NoError(t, s.MarkHandedOff(ctx, []int64{ids[1]}, ""))
	backlog, err = s.InboxBacklog(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, backlog.Pending)
	require.LessOrEqual(t, backlog.OldestAge, time.Since(newestInserted)+50*time.Millisecond)

	require.NoError(t, s.MarkHandedOff(ctx, []int64{ids[2]}, ""))
	backlog, err = s.InboxBacklog(ctx)
	require.NoError(t, err)
	require.Equal(t, store.InboxBacklog{}, backlog)
}
