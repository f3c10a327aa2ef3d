package inbox_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/inbox"
)

// inboxIDs returns the row id of each event, 0 when it has no row.
func inboxIDs(t *testing.T, s testInbox, events ...inbox.Event) []int64 {
	t.Helper()
	out := make([]int64, len(events))
	for i, e := range events {
		err := s.Pool().QueryRow(t.Context(),
			`SELECT id FROM webhook_inbox WHERE provider = $1 AND event_id = $2`, e.Source, e.EventID).Scan(&out[i])
		if err != nil {
			out[i] = 0
		}
	}
	return out
}

func TestInboxBatchKeepsArrivalOrderAndFindsDuplicates(t *testing.T) {
	s := freshStore(t)
	old := inboxEvent(t, "wf-batch-old")
	inserted, err := s.Insert(t.Context(), old)
	require.NoError(t, err)
	require.True(t, inserted)

	a, b, c := inboxEvent(t, "wf-batch"), inboxEvent(t, "wf-batch"), inboxEvent(t, "wf-batch-c")
	ignored := inboxEvent(t, "")
	ignored.Ignored = "ignored"
	got, errs := s.InsertBatch(t.Context(), []inbox.Event{a, b, a, old, c, ignored})
	for i, err := range errs {
		require.NoError(t, err, "row %d", i)
	}
	assert.Equal(t, []bool{true, true, false, false, true, true}, got,
		"the second copy of a and the event stored before are duplicates")

	ids := inboxIDs(t, s, old, a, b, c)
	assert.True(t, ids[0] < ids[1] && ids[1] < ids[2] && ids[2] < ids[3], "ids follow arrival order: %v", ids)
	var rows, pending int
	require.NoError(t, s.Pool().QueryRow(t.Context(),
		`SELECT count(*), count(*) FILTER (WHERE handed_off_at IS NULL) FROM webhook_inbox`).Scan(&rows, &pending))
	assert.Equal(t, 5, rows)
	assert.Equal(t, 4, pending, "an event for no workflow is stored handed off, as one written alone")
}

func TestInboxBatchAnswersARefusedRowAlone(t *testing.T) {
	s := freshStore(t)
	good1, bad, good2 := inboxEvent(t, "wf-r1"), inboxEvent(t, "wf-r2"), inboxEvent(t, "wf-r3")
	// A text PostgreSQL cannot store (the edges never let such an id
	// through): the caller gets the refusal, the others are stored.
	bad.EventID = "evt-\x00"
	got, errs := s.InsertBatch(t.Context(), []inbox.Event{good1, bad, good2})
	assert.Equal(t, []bool{true, false, true}, got)
	require.NoError(t, errs[0])
	require.NoError(t, errs[2])
	var pgErr *pgconn.PgError
	require.True(t, errors.As(errs[1], &pgErr), "the refused row gets PostgreSQL's own error: %v", errs[1])
	assert.Equal(t, "22", pgErr.Code[:2], "a data exception")
	ids := inboxIDs(t, s, good1, good2)
	assert.NotZero(t, ids[0])
	assert.NotZero(t, ids[1])
	var n int
	require.NoError(t, s.Pool().QueryRow(t.Context(), `SELECT count(*) FROM webhook_inbox`).Scan(&n))
	assert.Equal(t, 2, n, "nothing stored for the refused row")
}

// TestInboxStoresTheVerifiedBytes stores bodies jsonb would have changed or
// refused (a \u0000 escape, duplicate keys, key order, spacing), alone and
// in a shared commit: each reads back byte for byte.
func TestInboxStoresTheVerifiedBytes(t *testing.T) {
	s := freshStore(t)
	bodies := [][]byte{
		[]byte(`{"note":"\u0000","b":1,"a":2}`),
		[]byte(`{"a":1,"a":2}`),
		[]byte("{ \"z\" : [1, 2 ],\n \"y\":\"\\ud83d\\ude00\"}"),
	}
	events := make([]inbox.Event, len(bodies))
	for i, b := range bodies {
		events[i] = inboxEvent(t, fmt.Sprintf("wf-bytes-%d", i))
		events[i].Payload = b
		events[i].EventType = "type-with-\x00-nul"
	}
	got, errs := s.InsertBatch(t.Context(), events[:2])
	require.NoError(t, errors.Join(errs...))
	assert.Equal(t, []bool{true, true}, got)
	inserted, err := s.Insert(t.Context(), events[2])
	require.NoError(t, err)
	require.True(t, inserted)
	for i, e := range events {
		var payload []byte
		var eventType string
		require.NoError(t, s.Pool().QueryRow(t.Context(),
			`SELECT payload, event_type FROM webhook_inbox WHERE provider = $1 AND event_id = $2`, e.Source, e.EventID).
			Scan(&payload, &eventType))
		assert.Equal(t, bodies[i], payload, "body %d", i)
		assert.Equal(t, "type-with-\uFFFD-nul", eventType, "text columns hold what PostgreSQL can store")
	}
}

// TestConcurrentInsertsEachGetTheirOwnAnswer drives Insert from
// many goroutines at once, so calls queue behind the committers and share
// commits: every distinct event is new exactly once, and of the callers
// delivering one shared event exactly one hears it is new.
func TestConcurrentInsertsEachGetTheirOwnAnswer(t *testing.T) {
	s := freshStore(t)
	shared := inboxEvent(t, "wf-shared")
	const callers, each = 48, 8
	var (
		wg          sync.WaitGroup
		mu          sync.Mutex
		newShared   int
		newDistinct int
		failures    []error
	)
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				e := inboxEvent(t, fmt.Sprintf("wf-c%d-%d", g, i))
				if i == each/2 {
					e = shared
				}
				inserted, err := s.Insert(t.Context(), e)
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, err)
				case inserted && e.EventID == shared.EventID:
					newShared++
				case inserted:
					newDistinct++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Empty(t, failures)
	assert.Equal(t, 1, newShared, "one caller of the shared event hears it is new")
	assert.Equal(t, callers*(each-1), newDistinct, "every distinct event is new once")
	var rows int
	require.NoError(t, s.Pool().QueryRow(t.Context(), `SELECT count(*) FROM webhook_inbox`).Scan(&rows))
	assert.Equal(t, callers*(each-1)+1, rows)
}

// TestCommitTimeCountsEachCommitBeforeItsCallersHear: a fresh store has
// spent no time committing; CommitTime has grown by the time an Insert
// returns (the benchmark reads it right after its callers' answers); and
// concurrent inserts add no more than Committers commits running for their
// whole wall time could.
func TestCommitTimeCountsEachCommitBeforeItsCallersHear(t *testing.T) {
	s := freshStore(t)
	require.Zero(t, s.CommitTime())
	var last time.Duration
	for range 3 {
		inserted, err := s.Insert(t.Context(), inboxEvent(t, "wf-time"))
		require.NoError(t, err)
		require.True(t, inserted)
		now := s.CommitTime()
		assert.Greater(t, now, last, "the commit is counted before its caller is answered")
		last = now
	}

	const callers, each = 32, 4
	started, before := time.Now(), s.CommitTime()
	var wg sync.WaitGroup
	errs := make(chan error, callers*each)
	for g := range callers {
		wg.Go(func() {
			for i := range each {
				if _, err := s.Insert(t.Context(), inboxEvent(t, fmt.Sprintf("wf-time-%d-%d", g, i))); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	wall := time.Since(started)
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	spent := s.CommitTime() - before
	assert.Positive(t, spent)
	assert.LessOrEqual(t, spent, inbox.Committers*wall, "commits overlap at most %d at a time", inbox.Committers)
}

// TestEventKeyNamesTheUniqueConstraint guards the one refusal a batch
// answers by going again with ON CONFLICT: if a migration renamed the
// constraint, every batch holding a redelivery would fall back to row by
// row, still right but slow, and nothing else would notice.
func TestEventKeyNamesTheUniqueConstraint(t *testing.T) {
	s := freshStore(t)
	var def string
	require.NoError(t, s.Pool().QueryRow(t.Context(),
		`SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = $1 AND conrelid = 'webhook_inbox'::regclass`,
		inbox.EventKey).Scan(&def))
	assert.Equal(t, "UNIQUE (provider, event_id)", def)
}

// TestInboxBatchOfAnyShapeStoresWhatARowAloneStores stores events that set
// each of the columns only some events use, alone (one row per statement)
// and in batches of every shape the batch statement takes: each row in a
// batch reads back exactly as the same event stored alone.
func TestInboxBatchOfAnyShapeStoresWhatARowAloneStores(t *testing.T) {
	s := freshStore(t)
	routed := func() inbox.Event {
		e := inboxEvent(t, "wf-shape")
		e.Route = inbox.Route{Payment: &inbox.PaymentRoute{OrderID: "o-shape"}}
		return e
	}
	kinds := map[string]func() inbox.Event{
		"routed": routed,
		"traced": func() inbox.Event {
			e := routed()
			e.TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
			return e
		},
		"ignored": func() inbox.Event {
			e := inboxEvent(t, "")
			e.Ignored = "event type not handled"
			return e
		},
		"held": func() inbox.Event {
			e := routed()
			e.DueIn = 90 * time.Second
			return e
		},
		"recovered": func() inbox.Event {
			e := routed()
			e.Recovered = true
			return e
		},
	}
	// row reads back every column the insert decides, times relative to
	// the row's own commit.
	row := func(e inbox.Event) string {
		t.Helper()
		var got string
		require.NoError(t, s.Pool().QueryRow(t.Context(), `
SELECT concat_ws(' | ', provider, event_type, coalesce(workflow_id, '-'), coalesce(route, '-'), encode(payload, 'escape'),
                 status, coalesce((handed_off_at - received_at)::text, '-'), coalesce(last_error, '-'),
                 (next_attempt_at - received_at)::text, coalesce(trace_parent, '-'), recovered, attempts)
FROM webhook_inbox WHERE provider = $1 AND event_id = $2`, e.Source, e.EventID).Scan(&got))
		return got
	}
	alone := map[string]string{}
	for kind, event := range kinds {
		e := event()
		got, errs := s.InsertBatch(t.Context(), []inbox.Event{e})
		require.NoError(t, errors.Join(errs...))
		require.Equal(t, []bool{true}, got)
		alone[kind] = row(e)
	}
	assert.Regexp(t, `^stripe \| payment_intent.succeeded \| wf-shape \| \{"payment":\{"order_id":"o-shape",.*\} \| `+
		`\{"workflow": "wf-shape"\} \| pending \| - \| - \| 00:00:00 \| - \| f \| 0$`, alone["routed"])
	assert.Contains(t, alone["traced"], "| 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01 |")
	assert.Contains(t, alone["ignored"], "| ignored | 00:00:00 | event type not handled | 00:00:00 |")
	assert.Contains(t, alone["held"], "| pending | - | - | 00:01:30 |")
	assert.Contains(t, alone["recovered"], "| t | 0")

	for _, batch := range [][]string{
		{"routed", "routed"},
		{"routed", "traced"},
		{"routed", "ignored"},
		{"held", "routed"},
		{"routed", "recovered"},
		{"traced", "ignored", "held", "recovered", "routed"},
	} {
		events := make([]inbox.Event, len(batch))
		for i, kind := range batch {
			events[i] = kinds[kind]()
		}
		got, errs := s.InsertBatch(t.Context(), events)
		require.NoError(t, errors.Join(errs...))
		for i, kind := range batch {
			assert.True(t, got[i], "%v: row %d is new", batch, i)
			assert.Equal(t, alone[kind], row(events[i]), "%v: the %s row", batch, kind)
		}
	}
}
