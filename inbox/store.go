package inbox

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store reads and writes the webhook_inbox table. It is safe for
// concurrent use; concurrent Inserts share commits (ingest.go).
type Store struct {
	pool  *pgxpool.Pool
	batch *batcher
}

// NewStore returns the inbox kept in pool's database (migrated by
// internal/store).
func NewStore(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, batch: newBatcher()}
}

// eventColumns are the columns scanEvent reads, in its order.
const eventColumns = `id, provider, event_id, event_type, coalesce(workflow_id, ''), route, payload, received_at, attempts,
       coalesce(trace_parent, ''), recovered, status, coalesce(last_error, ''), handed_off_at`

// scanEvent reads one row of eventColumns, then, when more is set, the
// further columns the query returned after them into the fields more
// names.
func scanEvent(rows pgx.Rows, more func(e *Event) []any) (Event, error) {
	var e Event
	var route *string
	dest := []any{&e.ID, &e.Source, &e.EventID, &e.EventType, &e.Target, &route, &e.Payload, &e.ReceivedAt,
		&e.Attempts, &e.TraceParent, &e.Recovered, &e.Status, &e.Note, &e.DoneAt}
	if more != nil {
		dest = append(dest, more(&e)...)
	}
	if err := rows.Scan(dest...); err != nil {
		return e, fmt.Errorf("scan inbox event: %w", err)
	}
	if route != nil {
		if err := json.Unmarshal([]byte(*route), &e.Route); err != nil {
			return e, fmt.Errorf("decode route of inbox event %d: %w", e.ID, err)
		}
	}
	return e, nil
}

// scanEvents reads every row with scanEvent.
func scanEvents(rows pgx.Rows, more func(e *Event) []any) ([]Event, error) {
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e, err := scanEvent(rows, more)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Claim leases up to limit events that are due for hand-off. A row is only
// due when no earlier row of the same target is still pending, which keeps
// hand-off in commit order per target and means a batch holds at most one
// row per target. The lease pushes the row's next attempt out, so another
// dispatcher (or this one after a crash) picks it up again only if it is
// neither handed off nor failed by then. Each row claimed says whether a
// later row of its target was waiting (Event.followed), so the dispatcher
// knows which finished rows make another claimable.
func (s *Store) Claim(ctx context.Context, limit int, lease time.Duration) ([]Event, error) {
	const q = `
UPDATE webhook_inbox w
SET next_attempt_at = now() + $2 * interval '1 millisecond', attempts = attempts + 1
WHERE w.id IN (
    SELECT i.id FROM webhook_inbox i
    WHERE i.handed_off_at IS NULL AND i.next_attempt_at <= now()
      AND NOT EXISTS (
          SELECT 1 FROM webhook_inbox e
          WHERE e.workflow_id = i.workflow_id AND e.handed_off_at IS NULL AND e.id < i.id)
    ORDER BY i.id
    LIMIT $1
    FOR UPDATE SKIP LOCKED)
RETURNING ` + eventColumns + `,
    EXISTS (SELECT 1 FROM webhook_inbox n
            WHERE n.workflow_id = w.workflow_id AND n.handed_off_at IS NULL AND n.id > w.id)`
	rows, err := s.pool.Query(ctx, q, limit, lease.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("claim inbox events: %w", err)
	}
	out, err := scanEvents(rows, func(e *Event) []any { return []any{&e.followed} })
	if err != nil {
		return nil, fmt.Errorf("claim inbox events: %w", err)
	}
	// UPDATE ... RETURNING does not keep the subquery's order.
	slices.SortFunc(out, func(a, b Event) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// PendingOf returns the target's rows not yet handed off, oldest first, for
// coalescing: only the latest of them needs to reach Temporal.
func (s *Store) PendingOf(ctx context.Context, target string, limit int) ([]Event, error) {
	q := `SELECT ` + eventColumns + `
FROM webhook_inbox WHERE workflow_id = $1 AND handed_off_at IS NULL ORDER BY id LIMIT $2`
	rows, err := s.pool.Query(ctx, q, target, limit)
	if err != nil {
		return nil, fmt.Errorf("pending inbox rows of %s: %w", target, err)
	}
	out, err := scanEvents(rows, nil)
	if err != nil {
		return nil, fmt.Errorf("pending inbox rows of %s: %w", target, err)
	}
	return out, nil
}

// MarkDone records where the rows ended, all with one status and note:
// Temporal has them (delivered, no note), they were coalesced into a later
// event, their target does not exist or had finished, or they can never be
// handed off (the note says why). Rows already done keep their first end.
func (s *Store) MarkDone(ctx context.Context, ids []int64, status, note string) error {
	const q = `
UPDATE webhook_inbox SET handed_off_at = now(), status = $2, last_error = nullif($3, '')
WHERE id = ANY($1) AND handed_off_at IS NULL`
	if _, err := s.pool.Exec(ctx, q, ids, status, note); err != nil {
		return fmt.Errorf("mark %d inbox rows %s: %w", len(ids), status, err)
	}
	return nil
}

// MarkFailed records why the hand-off failed and when to try again.
func (s *Store) MarkFailed(ctx context.Context, id int64, reason string, retryIn time.Duration) error {
	const q = `
UPDATE webhook_inbox SET last_error = $2, next_attempt_at = now() + $3 * interval '1 millisecond'
WHERE id = $1 AND handed_off_at IS NULL`
	if _, err := s.pool.Exec(ctx, q, id, reason, retryIn.Milliseconds()); err != nil {
		return fmt.Errorf("mark inbox event %d failed: %w", id, err)
	}
	return nil
}

// Backlog is what is waiting for hand-off.
type Backlog struct {
	Pending int64
	// OldestAge is how long the oldest pending event has waited.
	OldestAge time.Duration
}

// Backlog measures the hand-off backlog for metrics and /readyz.
func (s *Store) Backlog(ctx context.Context) (Backlog, error) {
	const q = `
SELECT count(*), coalesce(extract(epoch FROM now() - min(received_at)), 0)
FROM webhook_inbox WHERE handed_off_at IS NULL`
	var b Backlog
	var secs float64
	if err := s.pool.QueryRow(ctx, q).Scan(&b.Pending, &secs); err != nil {
		return b, fmt.Errorf("inbox backlog: %w", err)
	}
	b.OldestAge = time.Duration(secs * float64(time.Second))
	return b, nil
}
