package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/pgexplain"
)

const day = 24 * time.Hour

// The defaults of the retention.* config keys.
const (
	inboxAge      = 30 * day
	dedupAge      = 90 * day
	deadLetterAge = 180 * day
	auditAge      = 400 * day
)

// retentionStore opens a store on a migrated database of its own: the
// retention statements act on whole tables, so rows of parallel tests
// must not be there.
func retentionStore(t *testing.T) (*store.Store, string) {
	t.Helper()
	url := newDatabase(t)
	require.NoError(t, store.Migrate(t.Context(), url))
	st, err := store.Open(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	return st, url
}

// inboxRow inserts an inbox row received age ago, in status (pending, or
// handed off as status), purged or not, and returns its id.
func inboxRow(t *testing.T, st *store.Store, status string, age time.Duration, purged bool) int64 {
	t.Helper()
	var id int64
	require.NoError(t, st.Pool().QueryRow(t.Context(), `
INSERT INTO webhook_inbox (provider, event_id, event_type, workflow_id, route, payload, status, handed_off_at,
                           received_at, purged_at)
VALUES ('stripe', $1, 'payment_intent.succeeded', 'order-confirmation/o-1', CASE WHEN $4 THEN NULL ELSE '{}' END,
        CASE WHEN $4 THEN NULL ELSE '{"id":"evt"}'::bytea END, $2,
        CASE WHEN $2 <> 'pending' THEN now() - $3 * interval '1 millisecond' END,
        now() - $3 * interval '1 millisecond', CASE WHEN $4 THEN now() END)
RETURNING id`, uniqueID(t, "evt"), status, age.Milliseconds(), purged).Scan(&id))
	return id
}

// deadLetterRow inserts a dead letter in status, decided (or, when open,
// created) age ago.
func deadLetterRow(t *testing.T, st *store.Store, status string, age time.Duration) int64 {
	t.Helper()
	var id int64
	require.NoError(t, st.Pool().QueryRow(t.Context(), `
INSERT INTO dead_letters (workflow_id, run_id, workflow_type, step, error, status, decided_by, decided_at, created_at)
VALUES ($1, 'run', 'OrderConfirmation', 'notify', 'boom', $2,
        CASE WHEN $2 IN ('parked', 'retrying') THEN NULL ELSE 'alice' END,
        CASE WHEN $2 IN ('parked', 'retrying') THEN NULL ELSE now() - $3 * interval '1 millisecond' END,
        now() - $3 * interval '1 millisecond' - interval '1 day')
RETURNING id`, uniqueID(t, "order-confirmation"), status, age.Milliseconds()).Scan(&id))
	return id
}

// auditRow inserts an audit entry written age ago.
func auditRow(t *testing.T, st *store.Store, age time.Duration) int64 {
	t.Helper()
	var id int64
	require.NoError(t, st.Pool().QueryRow(t.Context(), `
INSERT INTO audit_log (at, actor, action, subject) VALUES (now() - $1 * interval '1 millisecond', 'alice', 'test', 'x')
RETURNING id`, age.Milliseconds()).Scan(&id))
	return id
}

// inboxState is what is left of an inbox row: gone, whole or purged.
func inboxState(t *testing.T, st *store.Store, id int64) string {
	t.Helper()
	var payload, route, purged bool
	err := st.Pool().QueryRow(t.Context(),
		`SELECT payload IS NOT NULL, route IS NOT NULL, purged_at IS NOT NULL FROM webhook_inbox WHERE id = $1`, id).
		Scan(&payload, &route, &purged)
	switch {
	case err != nil:
		return "gone"
	case payload && route && !purged:
		return "whole"
	case !payload && !route && purged:
		return "purged"
	}
	return fmt.Sprintf("inconsistent (payload %v, route %v, purged %v)", payload, route, purged)
}

func exists(t *testing.T, st *store.Store, table string, id int64) bool {
	t.Helper()
	var n int
	require.NoError(t, st.Pool().QueryRow(t.Context(), `SELECT count(*) FROM `+table+` WHERE id = $1`, id).Scan(&n))
	return n == 1
}

// drain runs one retention method until a batch comes back short, as the
// activity does, and returns the total removed.
func drain(t *testing.T, fn func(context.Context, time.Duration, int) (int64, error), age time.Duration, batch int) int64 {
	t.Helper()
	var total int64
	for {
		n, err := fn(t.Context(), age, batch)
		require.NoError(t, err)
		total += n
		if n < int64(batch) {
			return total
		}
	}
}

// TestRetentionRemovesExactlyWhatIsDue: rows a minute past their cut-off
// go, rows a minute short of it stay; pending inbox rows and open dead
// letters stay whatever their age. A whole inbox row past both windows is
// purged, then deleted with the other records past the dedup window.
func TestRetentionRemovesExactlyWhatIsDue(t *testing.T) {
	t.Parallel()
	st, _ := retentionStore(t)
	const m = time.Minute
	inbox := map[string]int64{
		"delivered past inbox":   inboxRow(t, st, "delivered", inboxAge+m, false),
		"ignored past inbox":     inboxRow(t, st, "ignored", inboxAge+m, false),
		"unroutable past inbox":  inboxRow(t, st, "unroutable", inboxAge+m, false),
		"delivered inside inbox": inboxRow(t, st, "delivered", inboxAge-m, false),
		"pending past dedup":     inboxRow(t, st, "pending", dedupAge+m, false),
		"pending past inbox":     inboxRow(t, st, "pending", inboxAge+m, false),
		"whole past dedup":       inboxRow(t, st, "delivered", dedupAge+m, false),
		"purged past dedup":      inboxRow(t, st, "delivered", dedupAge+m, true),
		"purged inside dedup":    inboxRow(t, st, "late", dedupAge-m, true),
	}
	dead := map[string]int64{
		"resolved past":   deadLetterRow(t, st, "resolved", deadLetterAge+m),
		"skipped past":    deadLetterRow(t, st, "skipped", deadLetterAge+m),
		"aborted past":    deadLetterRow(t, st, "aborted", deadLetterAge+m),
		"resolved inside": deadLetterRow(t, st, "resolved", deadLetterAge-m),
		"parked ancient":  deadLetterRow(t, st, "parked", 3*deadLetterAge),
		"retrying past":   deadLetterRow(t, st, "retrying", deadLetterAge+m),
	}
	auditPast, auditInside := auditRow(t, st, auditAge+m), auditRow(t, st, auditAge-m)

	// In the order the workflow runs them: the purge first.
	assert.EqualValues(t, 4, drain(t, st.PurgeInboxPayloads, inboxAge, 1000))
	assert.Equal(t, "purged", inboxState(t, st, inbox["whole past dedup"]), "only purged rows are deleted")
	assert.EqualValues(t, 2, drain(t, st.DeleteInboxRecords, dedupAge, 1000))
	assert.EqualValues(t, 3, drain(t, st.DeleteClosedDeadLetters, deadLetterAge, 1000))
	assert.EqualValues(t, 1, drain(t, st.DeleteAuditEntries, auditAge, 1000))

	want := map[string]string{
		"delivered past inbox": "purged", "ignored past inbox": "purged", "unroutable past inbox": "purged",
		"delivered inside inbox": "whole", "pending past dedup": "whole", "pending past inbox": "whole",
		"whole past dedup": "gone", "purged past dedup": "gone", "purged inside dedup": "purged",
	}
	for name, id := range inbox {
		assert.Equal(t, want[name], inboxState(t, st, id), name)
	}

	for name, id := range dead {
		assert.Equal(t, name == "resolved inside" || name == "parked ancient" || name == "retrying past",
			exists(t, st, "dead_letters", id), name)
	}
	assert.False(t, exists(t, st, "audit_log", auditPast))
	assert.True(t, exists(t, st, "audit_log", auditInside))
}

// TestRetentionBatchesAreBounded: no statement removes more than its batch,
// and batches repeated until one comes back short remove every due row.
func TestRetentionBatchesAreBounded(t *testing.T) {
	t.Parallel()
	st, _ := retentionStore(t)
	_, err := st.Pool().Exec(t.Context(), `
INSERT INTO audit_log (at, actor, action, subject)
SELECT now() - interval '401 days' - g * interval '1 second', 'alice', 'test', 'x' FROM generate_series(1, 2500) g`)
	require.NoError(t, err)
	kept := auditRow(t, st, auditAge-time.Hour)

	var batches []int64
	for {
		n, err := st.DeleteAuditEntries(t.Context(), auditAge, 1000)
		require.NoError(t, err)
		batches = append(batches, n)
		if n < 1000 {
			break
		}
	}
	assert.Equal(t, []int64{1000, 1000, 500}, batches)
	var left int
	require.NoError(t, st.Pool().QueryRow(t.Context(), `SELECT count(*) FROM audit_log`).Scan(&left))
	assert.Equal(t, 1, left)
	assert.True(t, exists(t, st, "audit_log", kept))
}

// TestRetentionRefusesZeroAge: an age of zero would mean "everything up to
// now"; keep-for-ever is the caller's not calling, never a zero here.
func TestRetentionRefusesZeroAge(t *testing.T) {
	t.Parallel()
	st, _ := retentionStore(t)
	id := auditRow(t, st, time.Hour)
	for _, age := range []time.Duration{0, -time.Hour, time.Microsecond} {
		_, err := st.DeleteAuditEntries(t.Context(), age, 1000)
		assert.Error(t, err, "age %s", age)
	}
	_, err := st.PurgeInboxPayloads(t.Context(), time.Hour, 0)
	assert.Error(t, err, "batch size 0")
	assert.True(t, exists(t, st, "audit_log", id))
}

// TestPurgedRowsCannotBePendingOrLoseTheirPayloadOtherwise: the schema
// keeps a payload on every row that was not purged, and a purged row out of
// the queue (a replay must refuse it: nothing could deliver it).
func TestPurgedRowsCannotBePendingOrLoseTheirPayloadOtherwise(t *testing.T) {
	t.Parallel()
	st, _ := retentionStore(t)
	purged := inboxRow(t, st, "delivered", inboxAge, true)
	_, err := st.Pool().Exec(t.Context(),
		`UPDATE webhook_inbox SET status = 'pending', handed_off_at = NULL WHERE id = $1`, purged)
	requirePgError(t, err, "23514", "webhook_inbox_purged_done")
	whole := inboxRow(t, st, "delivered", time.Hour, false)
	_, err = st.Pool().Exec(t.Context(), `UPDATE webhook_inbox SET payload = NULL WHERE id = $1`, whole)
	requirePgError(t, err, "23514", "webhook_inbox_payload_kept")
}

// TestRetentionStatementsUseIndexes: on tables of tens of thousands of
// rows, each retention statement reads its table through the index
// migration 00011 made for it, never scanning it whole.
func TestRetentionStatementsUseIndexes(t *testing.T) {
	t.Parallel()
	st, url := retentionStore(t)
	ctx := t.Context()
	for _, q := range []string{
		// 20k handed off across 120 days (a third purged), 20 pending.
		`INSERT INTO webhook_inbox (provider, event_id, event_type, workflow_id, route, payload, status, handed_off_at,
                           received_at, purged_at)
SELECT 'stripe', 'evt_' || g, 'payment_intent.succeeded', 'order-confirmation/o-' || g,
       CASE WHEN g % 3 = 0 THEN NULL ELSE '{}' END, CASE WHEN g % 3 = 0 THEN NULL ELSE '{"id":1}'::bytea END,
       'delivered', now() - g * interval '518 seconds', now() - g * interval '518 seconds',
       CASE WHEN g % 3 = 0 THEN now() END
FROM generate_series(1, 20000) g`,
		`INSERT INTO webhook_inbox (provider, event_id, event_type, workflow_id, route, payload)
SELECT 'stripe', 'evt_pending_' || g, 'payment_intent.succeeded', 'order-confirmation/p-' || g, '{}', '{}'::bytea
FROM generate_series(1, 20) g`,
		`INSERT INTO dead_letters (workflow_id, run_id, workflow_type, step, error, status, decided_at, created_at)
SELECT 'wf-' || g, 'run', 'OrderConfirmation', 'notify', 'boom',
       (ARRAY['parked', 'resolved', 'skipped', 'aborted'])[1 + g % 4],
       CASE WHEN g % 4 <> 0 THEN now() - g * interval '1 hour' END, now() - g * interval '1 hour'
FROM generate_series(1, 20000) g`,
		`INSERT INTO audit_log (at, actor, action, subject)
SELECT now() - g * interval '30 minutes', 'alice', 'test', 'x' FROM generate_series(1, 20000) g`,
		`ANALYZE webhook_inbox, dead_letters, audit_log`,
	} {
		_, err := st.Pool().Exec(ctx, q)
		require.NoError(t, err)
	}

	pool, rec := pgexplain.RecordingPool(t, url)
	traced := store.NewWithPool(pool)
	cases := []struct {
		name, table, index string
		run                func() (int64, error)
	}{
		{"purge inbox payloads", "webhook_inbox", "webhook_inbox_unpurged_idx",
			func() (int64, error) { return traced.PurgeInboxPayloads(ctx, inboxAge, 1000) }},
		{"delete inbox records", "webhook_inbox", "webhook_inbox_purged_idx",
			func() (int64, error) { return traced.DeleteInboxRecords(ctx, dedupAge, 1000) }},
		{"delete closed dead letters", "dead_letters", "dead_letters_closed_idx",
			func() (int64, error) { return traced.DeleteClosedDeadLetters(ctx, deadLetterAge, 1000) }},
		{"delete audit entries", "audit_log", "audit_log_at_idx",
			func() (int64, error) { return traced.DeleteAuditEntries(ctx, auditAge, 1000) }},
	}
	for _, c := range cases {
		n, err := c.run()
		require.NoError(t, err, c.name)
		assert.Positive(t, n, "%s: the data makes some rows due", c.name)
		stmt, ok := rec.Last(c.table, "LIMIT $2")
		require.True(t, ok, "%s: statement not recorded", c.name)
		plan, err := pgexplain.Explain(ctx, st.Pool(), stmt)
		require.NoError(t, err, c.name)
		t.Logf("%s:\n%s", c.name, plan)
		assert.Empty(t, plan.SeqScans(c.table), "%s scans %s whole:\n%s", c.name, c.table, plan)
		assert.Contains(t, plan.Indexes(), c.index, "%s:\n%s", c.name, plan)
	}
}
