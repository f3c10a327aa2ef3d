package inbox_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// testInbox is an inbox on a database of its own, with the pool behind it
// for looking at rows directly.
type testInbox struct {
	*inbox.Store
	pool *pgxpool.Pool
}

func (s testInbox) Pool() *pgxpool.Pool { return s.pool }

// freshStore opens an inbox on a newly created and migrated database of
// its own, for tests that look at the whole inbox table and so must not see
// the rows of tests running in parallel.
func freshStore(t *testing.T) testInbox {
	t.Helper()
	st := testenv.Store(t)
	return testInbox{Store: inbox.NewStore(st.Pool()), pool: st.Pool()}
}

var seq atomic.Int64

// uniqueID keeps rows of parallel tests apart.
func uniqueID(t *testing.T, prefix string) string {
	return fmt.Sprintf("%s_%s_%d", prefix, strings.ReplaceAll(t.Name(), "/", "_"), seq.Add(1))
}

func inboxEvent(t *testing.T, workflowID string) inbox.Event {
	return inbox.Event{
		Source:    "stripe",
		EventID:   uniqueID(t, "evt"),
		EventType: "payment_intent.succeeded",
		Target:    workflowID,
		Payload:   []byte(fmt.Sprintf(`{"workflow": %q}`, workflowID)),
	}
}

// insertEvents commits one pending event per workflow id, in order, and
// returns their row ids.
func insertEvents(t *testing.T, s testInbox, workflowIDs ...string) []int64 {
	t.Helper()
	ids := make([]int64, 0, len(workflowIDs))
	for _, wf := range workflowIDs {
		e := inboxEvent(t, wf)
		inserted, err := s.Insert(t.Context(), e)
		require.NoError(t, err)
		require.True(t, inserted)
		var id int64
		require.NoError(t, s.Pool().QueryRow(t.Context(),
			`SELECT id FROM webhook_inbox WHERE provider = $1 AND event_id = $2`, e.Source, e.EventID).Scan(&id))
		ids = append(ids, id)
	}
	return ids
}

func claim(t *testing.T, s testInbox, limit int, lease time.Duration) []int64 {
	t.Helper()
	events, err := s.Claim(t.Context(), limit, lease)
	require.NoError(t, err)
	return eventIDs(events)
}

func eventIDs(events []inbox.Event) []int64 {
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

func getInboxRow(t *testing.T, s testInbox, id int64) inboxRow {
	t.Helper()
	var r inboxRow
	require.NoError(t, s.Pool().QueryRow(t.Context(), `
		SELECT workflow_id, convert_from(payload, 'UTF8'), handed_off_at IS NOT NULL, last_error, attempts
		FROM webhook_inbox WHERE id = $1`, id).Scan(&r.workflowID, &r.payload, &r.handedOff, &r.lastError, &r.attempts))
	return r
}

func TestInsertInboxEventDeduplicates(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := freshStore(t)
	e := inboxEvent(t, uniqueID(t, "wf"))
	e.Payload = []byte(`{"delivery": 1}`)

	inserted, err := db.Insert(ctx, e)
	require.NoError(t, err)
	require.True(t, inserted)

	redelivery := e
	redelivery.Payload = []byte(`{"delivery": 2}`)
	inserted, err = db.Insert(ctx, redelivery)
	require.NoError(t, err)
	require.False(t, inserted, "a redelivery must report that nothing was stored")

	var n int
	var payload string
	require.NoError(t, db.Pool().QueryRow(ctx, `
		SELECT count(*), min(convert_from(payload, 'UTF8')) FROM webhook_inbox WHERE provider = $1 AND event_id = $2`,
		e.Source, e.EventID).Scan(&n, &payload))
	require.Equal(t, 1, n)
	require.JSONEq(t, `{"delivery": 1}`, payload, "the redelivery overwrote the stored event")

	// The same event id from another provider is another event.
	other := e
	other.Source = "clerk"
	inserted, err = db.Insert(ctx, other)
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

	e.Ignored = reason
	inserted, err := s.Insert(ctx, e)
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
	backlog, err := s.Backlog(ctx)
	require.NoError(t, err)
	require.Equal(t, inbox.Backlog{}, backlog)
}

func TestClaimInboxEventsOrderLimitAndLease(t *testing.T) {
	t.Parallel()
	s := freshStore(t)
	ctx := t.Context()
	ids := insertEvents(t, s, "wf-1", "wf-2", "wf-3", "wf-4", "wf-5")

	first, err := s.Claim(ctx, 3, time.Hour)
	require.NoError(t, err)
	require.Equal(t, ids[:3], eventIDs(first), "claims are in id order and respect the limit")
	for i, e := range first {
		require.Equal(t, "stripe", e.Source)
		require.Equal(t, "payment_intent.succeeded", e.EventType)
		require.Equal(t, fmt.Sprintf("wf-%d", i+1), e.Target)
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

	require.Equal(t, ids, claim(t, s, 10, time.Hour))
	require.Empty(t, claim(t, s, 10, time.Hour), "claimed again inside its lease")
	lease := leaseLeft(t, s, ids[0])
	require.Greater(t, lease, 59*time.Minute, "the lease runs from the claim")
	require.LessOrEqual(t, lease, time.Hour)

	// The lease ends at the row's next_attempt_at: move it to now, as the
	// clock would, rather than sleeping through a short lease.
	_, err := s.Pool().Exec(t.Context(), `UPDATE webhook_inbox SET next_attempt_at = now() WHERE id = $1`, ids[0])
	require.NoError(t, err)
	again, err := s.Claim(t.Context(), 10, time.Hour)
	require.NoError(t, err)
	require.Equal(t, ids, eventIDs(again), "not claimable after its lease expired")
	require.Equal(t, 2, again[0].Attempts)

	// And a short lease does run out on the clock: the row comes back,
	// however long this machine takes to get there.
	require.Empty(t, claim(t, s, 10, time.Hour))
	_, err = s.Pool().Exec(t.Context(), `UPDATE webhook_inbox SET next_attempt_at = now() + interval '50 milliseconds' WHERE id = $1`, ids[0])
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		got := claim(t, s, 10, time.Hour)
		return len(got) == 1 && got[0] == ids[0]
	}, 30*time.Second, 20*time.Millisecond, "a lease that ran out")
	require.Equal(t, 3, getInboxRow(t, s, ids[0]).attempts)
}

// leaseLeft is how long the row stays out of Claim's reach, by the
// database's clock.
func leaseLeft(t *testing.T, s testInbox, id int64) time.Duration {
	t.Helper()
	var left time.Duration
	require.NoError(t, s.Pool().QueryRow(t.Context(),
		`SELECT next_attempt_at - now() FROM webhook_inbox WHERE id = $1`, id).Scan(&left))
	return left
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
	require.NoError(t, s.MarkFailed(ctx, a1, "temporal unavailable", 0))
	require.NoError(t, s.MarkDone(ctx, []int64{b1}, inbox.StatusDelivered, ""))
	require.Equal(t, []int64{a1}, claim(t, s, 10, time.Hour))

	require.NoError(t, s.MarkDone(ctx, []int64{a1}, inbox.StatusDelivered, ""))
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
	const delay = time.Hour
	require.NoError(t, s.MarkFailed(ctx, id, "temporal unavailable", delay))

	row := getInboxRow(t, s, id)
	require.False(t, row.handedOff)
	require.NotNil(t, row.lastError)
	require.Equal(t, "temporal unavailable", *row.lastError)
	// The retry delay replaces the hour-long lease.
	wait := leaseLeft(t, s, id)
	require.Greater(t, wait, 50*time.Minute)
	require.LessOrEqual(t, wait, delay)
	require.Empty(t, claim(t, s, 10, time.Hour), "claimable before its retry delay passed")

	// A short delay runs out on the clock: wait for the row to come back
	// rather than for a fixed time.
	_, err := s.Pool().Exec(ctx, `UPDATE webhook_inbox SET next_attempt_at = now() WHERE id = $1`, id)
	require.NoError(t, err)
	require.Equal(t, ids, claim(t, s, 10, time.Hour), "claimable once its retry is due")
	require.NoError(t, s.MarkFailed(ctx, id, "temporal unavailable", 50*time.Millisecond))
	require.LessOrEqual(t, leaseLeft(t, s, id), 50*time.Millisecond)
	require.Eventually(t, func() bool {
		got := claim(t, s, 10, time.Hour)
		return len(got) == 1 && got[0] == id
	}, 30*time.Second, 20*time.Millisecond, "not claimable after its retry delay passed")

	// A late failure report does not touch a row already handed off.
	require.NoError(t, s.MarkDone(ctx, []int64{id}, inbox.StatusDelivered, "handed off by the sweeper"))
	require.NoError(t, s.MarkFailed(ctx, id, "stale failure", 0))
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
				events, err := s.Claim(ctx, 2, time.Hour)
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

	backlog, err := s.Backlog(ctx)
	require.NoError(t, err)
	require.Equal(t, inbox.Backlog{}, backlog)

	ids := insertEvents(t, s, "wf-1", "wf-2")
	ignored := inboxEvent(t, "")
	ignored.Ignored = "ignored"
	inserted, err := s.Insert(ctx, ignored)
	require.NoError(t, err)
	require.True(t, inserted)
	// The first two arrived ten minutes ago, as the clock would have it
	// after a wait; the ignored one is older still and does not count.
	const waited = 10 * time.Minute
	_, err = s.Pool().Exec(ctx, `UPDATE webhook_inbox SET received_at = received_at - $1 * interval '1 second'`, waited.Seconds())
	require.NoError(t, err)
	_, err = s.Pool().Exec(ctx, `UPDATE webhook_inbox SET received_at = received_at - interval '1 hour' WHERE event_id = $1`, ignored.EventID)
	require.NoError(t, err)
	newestInserted := time.Now()
	ids = append(ids, insertEvents(t, s, "wf-3")...)

	backlog, err = s.Backlog(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, backlog.Pending, "ignored events are not backlog")
	require.GreaterOrEqual(t, backlog.OldestAge, waited)
	require.Less(t, backlog.OldestAge, waited+30*time.Second)

	// Claimed (leased) rows are still waiting for their hand-off.
	require.Len(t, claim(t, s, 10, time.Hour), 3)
	backlog, err = s.Backlog(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, backlog.Pending)

	// Handing off the two oldest leaves only the newest, which is younger.
	require.NoError(t, s.MarkDone(ctx, []int64{ids[0]}, inbox.StatusDelivered, ""))
	require.NoError(t, s.MarkDone(ctx, []int64{ids[1]}, inbox.StatusDelivered, ""))
	backlog, err = s.Backlog(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, backlog.Pending)
	require.LessOrEqual(t, backlog.OldestAge, time.Since(newestInserted)+50*time.Millisecond)

	require.NoError(t, s.MarkDone(ctx, []int64{ids[2]}, inbox.StatusDelivered, ""))
	backlog, err = s.Backlog(ctx)
	require.NoError(t, err)
	require.Equal(t, inbox.Backlog{}, backlog)
}
