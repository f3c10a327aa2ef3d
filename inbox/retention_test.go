package inbox_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// TestPurgedEventIsADuplicateUntilTheDedupWindowEnds: retention purges a
// handed-off row's payload and route after retention.inbox but keeps the
// row, so a provider's redelivery inside retention.dedup is still a
// duplicate (Insert returns false) and stores nothing; once the record is
// deleted after retention.dedup, the same event is accepted as new. A
// purged row cannot be replayed: its payload is gone. The
// purged row still reads through the dispatcher's scan, its payload nil.
func TestPurgedEventIsADuplicateUntilTheDedupWindowEnds(t *testing.T) {
	t.Parallel()
	const day = 24 * time.Hour
	inboxAge, dedupAge := 30*day, 90*day
	ctx := t.Context()
	st := testenv.Store(t)
	ib := inbox.NewStore(st.Pool())
	e := inboxEvent(t, uniqueID(t, "order-confirmation/o"))
	e.Route = inbox.Route{Stock: &inbox.StockRoute{SKU: "sku-1", Level: 3}}
	inserted, err := ib.Insert(ctx, e)
	require.NoError(t, err)
	require.True(t, inserted)
	var id int64
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT id FROM webhook_inbox WHERE event_id = $1`, e.EventID).Scan(&id))
	age := func(d time.Duration) {
		t.Helper()
		_, err := st.Pool().Exec(ctx, `UPDATE webhook_inbox SET received_at = now() - $2 * interval '1 millisecond' WHERE id = $1`,
			id, d.Milliseconds())
		require.NoError(t, err)
	}

	// Pending, it is never purged, however old.
	age(dedupAge + day)
	n, err := st.PurgeInboxPayloads(ctx, inboxAge, 1000)
	require.NoError(t, err)
	assert.Zero(t, n, "a pending row keeps its payload")

	require.NoError(t, ib.MarkDone(ctx, []int64{id}, inbox.StatusDelivered, ""))
	age(inboxAge - time.Minute)
	n, err = st.PurgeInboxPayloads(ctx, inboxAge, 1000)
	require.NoError(t, err)
	assert.Zero(t, n, "inside retention.inbox the row stays whole")
	age(inboxAge + time.Minute)
	n, err = st.PurgeInboxPayloads(ctx, inboxAge, 1000)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)

	got, err := ib.EventByID(ctx, id)
	require.NoError(t, err, "a purged row scans")
	assert.Nil(t, got.Payload)
	assert.Equal(t, inbox.Route{}, got.Route)
	assert.Equal(t, inbox.StatusDelivered, got.Status)
	assert.Equal(t, e.EventID, got.EventID)
	assert.Equal(t, e.Target, got.Target, "the record keeps its target")

	inserted, err = ib.Insert(ctx, e)
	require.NoError(t, err)
	assert.False(t, inserted, "a redelivery inside retention.dedup is a duplicate")
	got, err = ib.EventByID(ctx, id)
	require.NoError(t, err)
	assert.Nil(t, got.Payload, "the duplicate stored nothing")

	before, err := ib.Get(ctx, id)
	require.NoError(t, err)
	require.NotNil(t, before.PurgedAt, "the record says when it was purged")
	_, err = ib.Replay(ctx, id, "alice")
	require.ErrorIs(t, err, inbox.ErrPurged, "nothing is left to hand off")
	after, err := ib.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, before, after, "a refused replay changes nothing")

	age(dedupAge - time.Minute)
	n, err = st.DeleteInboxRecords(ctx, dedupAge, 1000)
	require.NoError(t, err)
	assert.Zero(t, n, "inside retention.dedup the record stays")
	age(dedupAge + time.Minute)
	n, err = st.DeleteInboxRecords(ctx, dedupAge, 1000)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)

	inserted, err = ib.Insert(ctx, e)
	require.NoError(t, err)
	assert.True(t, inserted, "after retention.dedup the event is new again")
	backlog, err := ib.Backlog(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 1, backlog.Pending, "and waits for hand-off")
}
