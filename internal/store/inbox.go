package store

import (
	"context"
	"fmt"
	"time"
)

// InboxEvent is one accepted webhook event (or start-API inventory update)
// waiting for, or past, its hand-off to Temporal.
type InboxEvent struct {
	ID        int64
	Provider  string
	EventID   string
	EventType string
	// WorkflowID is the workflow the event is for; "" for events crmflow
	// stores but ignores (they are marked handed off at once).
	WorkflowID string
	Payload    []byte
	ReceivedAt time.Time
	// Attempts counts hand-off attempts, including the current one.
	Attempts int
	// DueIn holds a new row back from hand-off for a while, so that more
	// updates of the same workflow can gather and coalesce (stock levels).
	DueIn time.Duration
	// TraceParent is the W3C traceparent of the delivering request, so the
	// hand-off joins its trace; "" when it was not traced.
	TraceParent string
}

// InsertInboxEvent commits the event and reports whether it is new; a
// redelivery of the same (provider, event id) inserts nothing and returns
// false. Ignored events are stored already handed off, with the reason.
// Concurrent calls share commits (inboxBatcher); each returns once its own
// row is durable.
func (s *Store) InsertInboxEvent(ctx context.Context, e InboxEvent, ignoredReason string) (bool, error) {
	return s.inbox.insert(ctx, s, e, ignoredReason)
}

// ClaimInboxEvents leases up to limit events that are due for hand-off. A
// row is only due when no earlier row of the same workflow is still pending,
// which keeps hand-off in commit order per workflow. The lease pushes the
// row's next attempt out, so another dispatcher (or this one after a crash)
// picks it up again only if it is neither handed off nor failed by then.
func (s *Store) ClaimInboxEvents(ctx context.Context, limit int, lease time.Duration) ([]InboxEvent, error) {
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
RETURNING w.id, w.provider, w.event_id, w.event_type, coalesce(w.workflow_id, ''), w.payload, w.received_at, w.attempts,
          coalesce(w.trace_parent, '')`
	rows, err := s.pool.Query(ctx, q, limit, lease.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("claim inbox events: %w", err)
	}
	defer rows.Close()
	var out []InboxEvent
	for rows.Next() {
		var e InboxEvent
		if err := rows.Scan(&e.ID, &e.Provider, &e.EventID, &e.EventType, &e.WorkflowID, &e.Payload, &e.ReceivedAt, &e.Attempts,
			&e.TraceParent); err != nil {
			return nil, fmt.Errorf("scan inbox event: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim inbox events: %w", err)
	}
	// UPDATE ... RETURNING does not keep the subquery's order.
	sortByID(out)
	return out, nil
}

func sortByID(events []InboxEvent) {
	for i := 1; i < len(events); i++ {
		for j := i; j > 0 && events[j].ID < events[j-1].ID; j-- {
			events[j], events[j-1] = events[j-1], events[j]
		}
	}
}

// PendingOfWorkflow returns the workflow's rows not yet handed off, oldest
// first, for coalescing: only the latest of them needs to reach Temporal.
func (s *Store) PendingOfWorkflow(ctx context.Context, workflowID string, limit int) ([]InboxEvent, error) {
	const q = `
SELECT id, provider, event_id, event_type, coalesce(workflow_id, ''), payload, received_at, attempts,
       coalesce(trace_parent, '')
FROM webhook_inbox WHERE workflow_id = $1 AND handed_off_at IS NULL ORDER BY id LIMIT $2`
	rows, err := s.pool.Query(ctx, q, workflowID, limit)
	if err != nil {
		return nil, fmt.Errorf("pending inbox rows of %s: %w", workflowID, err)
	}
	defer rows.Close()
	var out []InboxEvent
	for rows.Next() {
		var e InboxEvent
		if err := rows.Scan(&e.ID, &e.Provider, &e.EventID, &e.EventType, &e.WorkflowID, &e.Payload, &e.ReceivedAt, &e.Attempts,
			&e.TraceParent); err != nil {
			return nil, fmt.Errorf("scan inbox event: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// MarkHandedOff records that the rows are done with, all with one note:
// Temporal has them (no note), they were coalesced into a later event, or
// they can never be handed off and stay for operators (the note says why).
// Rows already done keep their first note.
func (s *Store) MarkHandedOff(ctx context.Context, ids []int64, note string) error {
	const q = `UPDATE webhook_inbox SET handed_off_at = now(), last_error = nullif($2, '') WHERE id = ANY($1) AND handed_off_at IS NULL`
	if _, err := s.pool.Exec(ctx, q, ids, note); err != nil {
		return fmt.Errorf("mark %d inbox rows handed off: %w", len(ids), err)
	}
	return nil
}

// MarkHandOffFailed records why the hand-off failed and when to try again.
func (s *Store) MarkHandOffFailed(ctx context.Context, id int64, reason string, retryIn time.Duration) error {
	const q = `
UPDATE webhook_inbox SET last_error = $2, next_attempt_at = now() + $3 * interval '1 millisecond'
WHERE id = $1 AND handed_off_at IS NULL`
	if _, err := s.pool.Exec(ctx, q, id, reason, retryIn.Milliseconds()); err != nil {
		return fmt.Errorf("mark inbox event %d failed: %w", id, err)
	}
	return nil
}

// InboxBacklog is what is waiting for hand-off.
type InboxBacklog struct {
	Pending int64
	// OldestAge is how long the oldest pending event has waited.
	OldestAge time.Duration
}

// InboxBacklog measures the hand-off backlog for metrics and /readyz.
func (s *Store) InboxBacklog(ctx context.Context) (InboxBacklog, error) {
	const q = `
SELECT count(*), coalesce(extract(epoch FROM now() - min(received_at)), 0)
FROM webhook_inbox WHERE handed_off_at IS NULL`
	var b InboxBacklog
	var secs float64
	if err := s.pool.QueryRow(ctx, q).Scan(&b.Pending, &secs); err != nil {
		return b, fmt.Errorf("inbox backlog: %w", err)
	}
	b.OldestAge = time.Duration(secs * float64(time.Second))
	return b, nil
}
