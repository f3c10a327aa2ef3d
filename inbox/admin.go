package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	stripego "github.com/stripe/stripe-go/v76"

	"github.com/crmflow/crmflow/contract"
)

// What operators see of the inbox and how they replay an event: the queries
// behind GET /v1/inbox, `crmflow inbox` and the replay route.

// Errors of the operator queries; they are wrapped with the row's id.
var (
	// ErrNotFound means no inbox row has the id.
	ErrNotFound = errors.New("no such inbox event")
	// ErrAlreadyPending refuses a replay of a row still waiting for
	// hand-off: the dispatcher delivers it anyway.
	ErrAlreadyPending = errors.New("inbox event is already pending")
	// ErrNotRoutable refuses a replay of an event whose payload still names
	// no target crmflow acts on; the error carries the reason.
	ErrNotRoutable = errors.New("inbox event is not routable")
	// ErrPurged refuses a replay of a row whose payload retention already
	// removed: there is nothing left to hand off.
	ErrPurged = errors.New("inbox event's payload was purged by retention")
)

// Sources lists every source of inbox rows (the provider column).
var Sources = []string{SourceStripe, SourceClerk, SourceStock}

// Bounds of a List page.
const (
	// DefaultListLimit is a page's size when the filter names none.
	DefaultListLimit = 50
	// MaxListLimit caps a page; an operator pages on with BeforeID.
	MaxListLimit = 500
)

// ListFilter chooses the rows List returns; zero fields do not filter.
type ListFilter struct {
	// Status is one of Statuses.
	Status string
	// Provider is one of Sources.
	Provider string
	// Limit caps the rows returned (DefaultListLimit when 0, at most
	// MaxListLimit).
	Limit int
	// BeforeID returns only rows older than this id: the last id of the
	// previous page.
	BeforeID int64
}

// Record is an inbox row as operators see it: the event, where it ended,
// and who last replayed it.
type Record struct {
	Event
	// ReplayedAt is when an operator last replayed the row; nil if never.
	ReplayedAt *time.Time
	// ReplayedBy is the operator who did.
	ReplayedBy string
	// PurgedAt is when retention removed the payload and route; nil while
	// the row is whole.
	PurgedAt *time.Time
	// Size is the payload's length in bytes. List leaves Payload itself
	// out, so that a page of large bodies stays small.
	Size int
}

// Replayed is the outcome of a replay.
type Replayed struct {
	// Record is the row as it is now: pending again.
	Record
	// From is the status the row left.
	From string
	// Rerouted is set when the row had no target and its route was worked
	// out again from its payload.
	Rerouted bool
}

// recordColumns are the columns scanRecord reads, in its order; payload is
// the column (or NULL) put in the middle.
func recordColumns(payload string) string {
	return `id, provider, event_id, event_type, coalesce(workflow_id, ''), route, ` + payload + `, coalesce(octet_length(payload), 0),
       received_at, attempts, coalesce(trace_parent, ''), recovered, status, coalesce(last_error, ''), handed_off_at,
       replayed_at, coalesce(replayed_by, ''), purged_at`
}

// scanRecord reads one row of recordColumns.
func scanRecord(row pgx.Row) (Record, error) {
	var r Record
	var route *string
	err := row.Scan(&r.ID, &r.Source, &r.EventID, &r.EventType, &r.Target, &route, &r.Payload, &r.Size, &r.ReceivedAt,
		&r.Attempts, &r.TraceParent, &r.Recovered, &r.Status, &r.Note, &r.DoneAt, &r.ReplayedAt, &r.ReplayedBy, &r.PurgedAt)
	if err != nil {
		return r, err
	}
	if route != nil {
		if err := json.Unmarshal([]byte(*route), &r.Route); err != nil {
			return r, fmt.Errorf("decode route of inbox event %d: %w", r.ID, err)
		}
	}
	return r, nil
}

// List returns the rows f chooses, newest first, without their payloads.
// With a status it reads the (status, id) index; without, the primary key
// backwards. An unknown status or provider is an error, not an empty page.
func (s *Store) List(ctx context.Context, f ListFilter) ([]Record, error) {
	if f.Status != "" && !slices.Contains(Statuses, f.Status) {
		return nil, fmt.Errorf("list inbox events: unknown status %q", f.Status)
	}
	if f.Provider != "" && !slices.Contains(Sources, f.Provider) {
		return nil, fmt.Errorf("list inbox events: unknown provider %q", f.Provider)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	// The conditions are written out rather than made optional in SQL
	// ("$1 = '' OR status = $1"), which a generic plan could not answer
	// from the index.
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Status != "" {
		add("status = $%d", f.Status)
	}
	if f.Provider != "" {
		add("provider = $%d", f.Provider)
	}
	if f.BeforeID > 0 {
		add("id < $%d", f.BeforeID)
	}
	q := `SELECT ` + recordColumns("NULL::bytea") + ` FROM webhook_inbox`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT $%d`, len(args))
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list inbox events: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("list inbox events: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list inbox events: %w", err)
	}
	return out, nil
}

// Get returns one row with its payload; ErrNotFound when no row has id.
func (s *Store) Get(ctx context.Context, id int64) (Record, error) {
	q := `SELECT ` + recordColumns("payload") + ` FROM webhook_inbox WHERE id = $1`
	r, err := scanRecord(s.pool.QueryRow(ctx, q, id))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Record{}, fmt.Errorf("inbox event %d: %w", id, ErrNotFound)
	case err != nil:
		return Record{}, fmt.Errorf("get inbox event %d: %w", id, err)
	}
	return r, nil
}

// Replay hands a stored event off again, under its original event id (the
// workflows ignore an event id they have seen, so a replay of a delivered
// event changes nothing): the row goes back to pending, due now, with its
// attempts and note cleared, and records when and by whom it was replayed.
// The dispatcher then delivers it as any pending row, in order behind the
// pending rows of its target.
//
// A row with no target (stored ignored, or before refunds were routed) has
// its route worked out again from its payload, as the edge would now; if
// it still has none, Replay changes nothing and returns ErrNotRoutable with
// the reason. A pending row is ErrAlreadyPending, a missing one
// ErrNotFound. Replay does not audit: its callers record who asked.
func (s *Store) Replay(ctx context.Context, id int64, operator string) (Replayed, error) {
	if err := contract.ValidateOperator(operator); err != nil {
		return Replayed{}, fmt.Errorf("replay inbox event %d: %w", id, err)
	}
	before, err := s.Get(ctx, id)
	if err != nil {
		return Replayed{}, err
	}
	if before.Status == StatusPending {
		return Replayed{}, fmt.Errorf("replay inbox event %d: %w", id, ErrAlreadyPending)
	}
	if before.PurgedAt != nil {
		return Replayed{}, fmt.Errorf("replay inbox event %d: %w on %s", id, ErrPurged, before.PurgedAt.UTC().Format(time.RFC3339))
	}
	var route *string
	var target string
	if before.Target == "" {
		r, t, why := rerouteOf(before.Event)
		if why != "" {
			return Replayed{}, fmt.Errorf("replay inbox event %d: %w: %s", id, ErrNotRoutable, why)
		}
		if route, err = routeJSON(r); err != nil {
			return Replayed{}, fmt.Errorf("replay inbox event %d: %w", id, err)
		}
		target = t
	}
	// The status test makes a concurrent replay, or a pending row, change
	// nothing here: only one replay puts a row back in the queue.
	q := `
UPDATE webhook_inbox
SET status = 'pending', handed_off_at = NULL, next_attempt_at = now(), attempts = 0, last_error = NULL,
    replayed_at = now(), replayed_by = $2, route = coalesce($3, route), workflow_id = coalesce(nullif($4, ''), workflow_id)
WHERE id = $1 AND status <> 'pending' AND purged_at IS NULL
RETURNING ` + recordColumns("payload")
	after, err := scanRecord(s.pool.QueryRow(ctx, q, id, operator, route, target))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		// Replayed by someone else since it was read (or deleted).
		if _, err := s.Get(ctx, id); err != nil {
			return Replayed{}, err
		}
		return Replayed{}, fmt.Errorf("replay inbox event %d: %w", id, ErrAlreadyPending)
	case err != nil:
		return Replayed{}, fmt.Errorf("replay inbox event %d: %w", id, err)
	}
	return Replayed{Record: after, From: before.Status, Rerouted: route != nil}, nil
}

// rerouteOf works out the route and target of a row stored without one
// from its payload, as the edge does for a new event of its source; why is
// set when it still has none.
func rerouteOf(ev Event) (route Route, target, why string) {
	switch ev.Source {
	case SourceStripe:
		var se stripego.Event
		if err := json.Unmarshal(ev.Payload, &se); err != nil {
			return Route{}, "", "stripe payload does not decode: " + err.Error()
		}
		return routeStripe(se)
	case SourceClerk:
		r, ignored, err := routeClerk(ev.Payload)
		switch {
		case err != nil:
			return Route{}, "", "payload is not a clerk event"
		case ignored != "":
			return Route{}, "", ignored
		}
		return Route{Clerk: r}, clerkUserTarget(r.UserID), ""
	case SourceStock:
		r, err := stockRouteOf(ev)
		if err != nil {
			return Route{}, "", err.Error()
		}
		if err := contract.ValidateKey("SKU", r.SKU); err != nil {
			return Route{}, "", "stock level names no usable SKU: " + err.Error()
		}
		return Route{Stock: r}, contract.LowStockID(r.SKU), ""
	}
	return Route{}, "", "no route for provider " + ev.Source
}
