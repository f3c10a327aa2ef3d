package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// InboxCommitters is how many inbox commits may run at once. Callers
	// that arrive while they are all busy queue up, and the next committer
	// to free up writes the whole queue in one statement and one commit.
	InboxCommitters = 4
	// maxInboxBatch caps the rows of one such statement.
	maxInboxBatch = 128
	// inboxBatchTimeout bounds a batch's statement. It runs for several
	// callers, so it cannot use one caller's context; each caller still
	// stops waiting when its own context ends.
	inboxBatchTimeout = 15 * time.Second
)

// inboxBatcher turns concurrent InsertInboxEvent calls into shared commits.
// Under load every commit costs PostgreSQL a WAL flush and a round trip,
// and many webhook requests wait on commits at once; one statement for all
// of them pays that once. A caller that finds a committer free commits its
// own row at once, so a lone webhook waits for nothing. There is no
// background goroutine: whichever caller takes a committer slot writes
// what is queued.
type inboxBatcher struct {
	slots chan struct{}

	mu    sync.Mutex
	queue []*inboxInsert
}

func newInboxBatcher() *inboxBatcher {
	return &inboxBatcher{slots: make(chan struct{}, InboxCommitters)}
}

// inboxInsert is one caller's row and, once written, its outcome.
type inboxInsert struct {
	event   InboxEvent
	ignored string
	done    chan struct{}
	// Set under the batcher's mutex.
	taken, abandoned bool
	// Set before done is closed.
	inserted bool
	err      error
}

// insert queues the row and returns once a commit has written it (or
// failed), or when ctx ends first. A caller that gets a committer slot
// starts the commit of everything queued; the slot is free again when that
// commit ends.
func (b *inboxBatcher) insert(ctx context.Context, s *Store, e InboxEvent, ignored string) (bool, error) {
	req := &inboxInsert{event: e, ignored: ignored, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, req)
	b.mu.Unlock()
	slots := b.slots
	for {
		select {
		case <-req.done:
			return req.inserted, req.err
		case <-ctx.Done():
			b.mu.Lock()
			// A row no commit has taken yet is never written; one that a
			// commit holds may still be, and a redelivery then finds it.
			req.abandoned = !req.taken
			b.mu.Unlock()
			return false, fmt.Errorf("insert inbox event %s/%s: %w", e.Provider, e.EventID, ctx.Err())
		case slots <- struct{}{}:
			batch := b.take()
			if len(batch) == 0 {
				<-b.slots
				// Another commit holds this row: only wait for its outcome
				// (a nil channel is never ready).
				slots = nil
				continue
			}
			go func() {
				defer func() { <-b.slots }()
				s.commitInbox(context.WithoutCancel(ctx), batch)
			}()
		}
	}
}

// take removes up to maxInboxBatch rows from the queue, in arrival order,
// skipping callers that gave up.
func (b *inboxBatcher) take() []*inboxInsert {
	b.mu.Lock()
	defer b.mu.Unlock()
	var batch []*inboxInsert
	n := 0
	for ; n < len(b.queue) && len(batch) < maxInboxBatch; n++ {
		req := b.queue[n]
		if req.abandoned {
			continue
		}
		req.taken = true
		batch = append(batch, req)
	}
	b.queue = append(b.queue[:0:0], b.queue[n:]...)
	return batch
}

// commitInbox writes a batch and hands every caller its outcome. A
// statement PostgreSQL refuses (one caller's body it cannot store, say)
// is retried row by row, so each caller gets its own answer.
func (s *Store) commitInbox(ctx context.Context, batch []*inboxInsert) {
	ctx, cancel := context.WithTimeout(ctx, inboxBatchTimeout)
	defer cancel()
	defer func() {
		for _, req := range batch {
			close(req.done)
		}
	}()
	if len(batch) > 1 {
		inserted, err := s.insertInboxRows(ctx, batch)
		if err == nil {
			for i, req := range batch {
				req.inserted = inserted[i]
			}
			return
		}
		// Only PostgreSQL's own refusal is worth a try row by row; a lost
		// connection or a timeout would fail each row the same way.
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			for _, req := range batch {
				req.err = err
			}
			return
		}
	}
	for _, req := range batch {
		req.inserted, req.err = s.insertInboxRow(ctx, req.event, req.ignored)
	}
}

// insertInboxRow writes one row; false when its (provider, event id) is
// stored already.
func (s *Store) insertInboxRow(ctx context.Context, e InboxEvent, ignoredReason string) (bool, error) {
	const q = `
INSERT INTO webhook_inbox (provider, event_id, event_type, workflow_id, payload, handed_off_at, last_error, next_attempt_at, trace_parent)
VALUES ($1, $2, $3, nullif($4, ''), $5,
        CASE WHEN $4 = '' THEN now() END, nullif($6, ''), now() + $7 * interval '1 millisecond', nullif($8, ''))
ON CONFLICT (provider, event_id) DO NOTHING`
	tag, err := s.pool.Exec(ctx, q, e.Provider, e.EventID, e.EventType, e.WorkflowID, e.Payload, ignoredReason,
		e.DueIn.Milliseconds(), e.TraceParent)
	if err != nil {
		return false, fmt.Errorf("insert inbox event %s/%s: %w", e.Provider, e.EventID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// insertInboxRows writes a batch in one statement, rows in batch order so
// their ids keep arrival order, and reports which rows are new. Of two
// rows with the same (provider, event id) only the first can be new.
func (s *Store) insertInboxRows(ctx context.Context, batch []*inboxInsert) ([]bool, error) {
	const q = `
INSERT INTO webhook_inbox (provider, event_id, event_type, workflow_id, payload, handed_off_at, last_error, next_attempt_at, trace_parent)
SELECT p, e, t, nullif(w, ''), pl::jsonb, CASE WHEN w = '' THEN now() END, nullif(ig, ''),
       now() + d * interval '1 millisecond', nullif(tp, '')
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[])
     WITH ORDINALITY AS r(p, e, t, w, pl, ig, d, tp, n)
ORDER BY n
ON CONFLICT (provider, event_id) DO NOTHING
RETURNING provider, event_id`
	n := len(batch)
	prov, ids, types, wfs, payloads, ignored, due, trace :=
		make([]string, n), make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]int64, n), make([]string, n)
	for i, req := range batch {
		e := req.event
		prov[i], ids[i], types[i], wfs[i] = e.Provider, e.EventID, e.EventType, e.WorkflowID
		payloads[i], ignored[i], due[i], trace[i] = string(e.Payload), req.ignored, e.DueIn.Milliseconds(), e.TraceParent
	}
	rows, err := s.pool.Query(ctx, q, prov, ids, types, wfs, payloads, ignored, due, trace)
	if err != nil {
		return nil, fmt.Errorf("insert %d inbox events: %w", n, err)
	}
	defer rows.Close()
	type key struct{ provider, eventID string }
	stored := map[key]bool{}
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.provider, &k.eventID); err != nil {
			return nil, fmt.Errorf("insert %d inbox events: %w", n, err)
		}
		stored[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("insert %d inbox events: %w", n, err)
	}
	out := make([]bool, n)
	for i := range batch {
		k := key{prov[i], ids[i]}
		out[i] = stored[k]
		delete(stored, k) // a later row with the same key is a duplicate
	}
	return out, nil
}
