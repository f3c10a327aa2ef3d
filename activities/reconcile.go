package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/stripe/stripe-go/v76"
	"go.temporal.io/sdk/activity"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
)

// Bounds of the gap-fill reconciliation. Stripe stops retrying a webhook
// after three days and lists events of the last thirty days only; an event
// neither delivered nor listed in time is lost for good.
const (
	// DefaultReconcileOverlap is how far before the checkpoint a run starts
	// listing: it covers events Stripe made visible late and clocks that
	// disagree by less than overlap plus settle.
	DefaultReconcileOverlap = 10 * time.Minute
	// DefaultReconcileSettle leaves out events younger than this: their
	// webhook is most likely on its way, and counting them as recovered
	// would make crmflow_reconcile_recovered_total cry wolf.
	DefaultReconcileSettle = 5 * time.Minute
	// FirstReconcileWindow is how far back a run with no checkpoint lists:
	// as far as Stripe retries a webhook. Older events either arrived or
	// were handled before reconciliation existed.
	FirstReconcileWindow = 72 * time.Hour
	// StripeEventHorizon is how far back Stripe lists events at all.
	StripeEventHorizon = 30 * 24 * time.Hour
	// ReconcilePageSize is Stripe's largest page.
	ReconcilePageSize = 100
)

// StripeReconciledTypes are the Stripe event types crmflow acts on (the
// inbox routes them, see inbox/stripe.go); only they are listed.
var StripeReconciledTypes = []string{
	string(stripe.EventTypePaymentIntentSucceeded),
	string(stripe.EventTypePaymentIntentPaymentFailed),
	string(stripe.EventTypeChargeRefunded),
}

// ErrUnusableEvent marks an event the sink refuses for good (not an event
// it can store): reconciliation skips it instead of failing every run on it.
var ErrUnusableEvent = errors.New("unusable event")

// StripeEventLister lists Stripe's events, one page per call (GET
// /v1/events). StripeEventsAPI is the real one.
type StripeEventLister interface {
	ListEvents(ctx context.Context, q EventListQuery) (*EventPage, error)
}

// EventListQuery is one page's request.
type EventListQuery struct {
	// Types are the event types to list (types[]).
	Types []string
	// CreatedGTE and CreatedLT bound the events' created time, to the
	// second (created[gte], created[lt]).
	CreatedGTE time.Time
	CreatedLT  time.Time
	// StartingAfter is the last event of the previous page ("" for the
	// first page).
	StartingAfter string
	// Limit is the page size, 1 to 100.
	Limit int
}

// EventPage is one page of events, newest first as Stripe lists them.
type EventPage struct {
	Events  []ListedEvent
	HasMore bool
}

// ListedEvent is one event as the provider listed it.
type ListedEvent struct {
	ID      string
	Type    string
	Created time.Time
	// Raw is the event's JSON object exactly as the provider returned it:
	// what the inbox stores as the payload, as it stores a webhook's body.
	Raw json.RawMessage
}

// RecoveredEvent is an event reconciliation hands to the sink.
type RecoveredEvent struct {
	// Provider is the event's source, e.g. "stripe".
	Provider string
	ListedEvent
}

// RecoveredEventSink stores events reconciliation found exactly as their
// webhook would have: same deduplication by (provider, event id), same
// route, handed off by the inbox's dispatcher, marked recovered. inserted
// is false for an event already stored (its webhook did arrive). An event
// it can never store is an error wrapping ErrUnusableEvent. The worker's
// wiring adapts the inbox to it; activities cannot import the inbox.
type RecoveredEventSink interface {
	StoreRecovered(ctx context.Context, ev RecoveredEvent) (inserted bool, err error)
}

// RecoveredCounter counts events that reconciliation stored and the inbox
// did not have (crmflow_reconcile_recovered_total).
type RecoveredCounter interface {
	AddRecovered(provider string, n int)
}

// reconcileCheckpoints is what reconciliation needs of the database: how
// far each provider's events were listed and stored.
type reconcileCheckpoints interface {
	ReconcileCheckpoint(ctx context.Context, provider string) (time.Time, bool, error)
	SaveReconcileCheckpoint(ctx context.Context, provider string, checkpoint time.Time) error
}

var _ reconcileCheckpoints = (*store.Store)(nil)

// ReconcileActivities fill the gaps webhooks leave: they list a provider's
// recent events and store the ones whose delivery never arrived.
type ReconcileActivities struct {
	// Stripe lists Stripe's events; nil when Stripe runs in console mode.
	Stripe StripeEventLister
	// Sink stores the events found.
	Sink RecoveredEventSink
	// Checkpoints keeps each provider's progress (*store.Store).
	Checkpoints reconcileCheckpoints
	// Counter, when set, counts the events recovered.
	Counter RecoveredCounter
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ReconcileStripeEventsInput tunes one run; zero durations mean the
// defaults.
type ReconcileStripeEventsInput struct {
	Overlap time.Duration `json:"overlap,omitempty"`
	Settle  time.Duration `json:"settle,omitempty"`
}

// ReconcileStripeEventsOutput is what one run listed and stored.
type ReconcileStripeEventsOutput struct {
	// From and To bound the events listed: created in [From, To).
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Clamped: the checkpoint lay beyond Stripe's 30-day horizon.
	Clamped   bool     `json:"clamped,omitempty"`
	Pages     int      `json:"pages"`
	Listed    int      `json:"listed"`
	Recovered int      `json:"recovered"`
	Rejected  []string `json:"rejected,omitempty"`
	// Checkpoint is the progress saved: To, or the earlier checkpoint when
	// there was nothing to list.
	Checkpoint time.Time `json:"checkpoint"`
}

// reconcileProgress is the heartbeat: a retried attempt continues the same
// window after the last page stored instead of listing it all again.
type reconcileProgress struct {
	Out    ReconcileStripeEventsOutput `json:"out"`
	Cursor string                      `json:"cursor,omitempty"`
}

// ReconcileStripeEvents lists the handled Stripe events created since the
// last checkpoint (less the overlap, at most 30 days back, 72 hours on the
// first run) up to the settle delay before now, page by page, and stores
// each in the inbox as its webhook would have been, marked recovered. The
// checkpoint moves to the window's end only once every event in it is
// stored, so a failed run is repeated by the next one, and stored events
// are never lost: the inbox keeps one row per event id.
func (a *ReconcileActivities) ReconcileStripeEvents(ctx context.Context, in ReconcileStripeEventsInput) (*ReconcileStripeEventsOutput, error) {
	if a.Stripe == nil || a.Sink == nil || a.Checkpoints == nil {
		return nil, permanent(providerStripe, ErrTypeInvalid,
			errors.New("stripe reconciliation is not configured (console mode has no Stripe to list)"))
	}
	logger := activity.GetLogger(ctx)
	p, err := a.resume(ctx, in)
	if err != nil {
		return nil, err
	}
	out := &p.Out
	if !out.From.Before(out.To) {
		// The checkpoint is ahead of the window's end (a clock that went
		// back): nothing to list, and the checkpoint stays.
		return out, nil
	}
	for {
		page, err := a.Stripe.ListEvents(ctx, EventListQuery{Types: StripeReconciledTypes, CreatedGTE: out.From,
			CreatedLT: out.To, StartingAfter: p.Cursor, Limit: ReconcilePageSize})
		if err != nil {
			return nil, err
		}
		if err := a.storePage(ctx, page.Events, out); err != nil {
			return nil, err
		}
		out.Pages++
		out.Listed += len(page.Events)
		if len(page.Events) > 0 {
			p.Cursor = page.Events[len(page.Events)-1].ID
		}
		activity.RecordHeartbeat(ctx, p)
		if !page.HasMore {
			break
		}
		if len(page.Events) == 0 {
			// No cursor to go on with; a page like this would loop forever.
			logger.Warn("reconcile: stripe said has_more on an empty page; stopping the listing")
			break
		}
	}
	if err := a.Checkpoints.SaveReconcileCheckpoint(ctx, contract.ProviderStripe, out.To); err != nil {
		return nil, classifyStore(err)
	}
	out.Checkpoint = out.To
	logger.Info("reconcile: stripe events listed", "from", out.From, "to", out.To, "pages", out.Pages,
		"listed", out.Listed, "recovered", out.Recovered, "rejected", len(out.Rejected))
	return out, nil
}

// resume returns the progress of an earlier attempt of this run, or starts
// a new window from the checkpoint.
func (a *ReconcileActivities) resume(ctx context.Context, in ReconcileStripeEventsInput) (reconcileProgress, error) {
	var p reconcileProgress
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &p); err == nil && !p.Out.To.IsZero() {
			return p, nil
		}
		// Listing the window again is safe, only slower: stored events are
		// duplicates.
		p = reconcileProgress{}
	}
	overlap := orDefaultDuration(in.Overlap, DefaultReconcileOverlap)
	settle := orDefaultDuration(in.Settle, DefaultReconcileSettle)
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	t := now().UTC()
	checkpoint, ok, err := a.Checkpoints.ReconcileCheckpoint(ctx, contract.ProviderStripe)
	if err != nil {
		return p, classifyStore(err)
	}
	from := t.Add(-FirstReconcileWindow)
	if ok {
		from = checkpoint.Add(-overlap)
	}
	// Stripe's created filter counts whole seconds.
	from = from.Truncate(time.Second)
	horizon := t.Add(-StripeEventHorizon).Truncate(time.Second).Add(time.Second)
	if from.Before(horizon) {
		activity.GetLogger(ctx).Warn("reconcile: the checkpoint is older than Stripe's 30-day event horizon; "+
			"undelivered events older than that are lost", "checkpoint", checkpoint, "from", horizon)
		from, p.Out.Clamped = horizon, true
	}
	p.Out.From, p.Out.To, p.Out.Checkpoint = from, t.Add(-settle).Truncate(time.Second), checkpoint
	return p, nil
}

// storePage hands a page's events to the sink, oldest first as their
// webhooks would have come. Pages themselves come newest first; the
// workflows do not depend on the order of one order's events (a success
// wins over a failure, refund amounts only grow), the inbox hands each
// target's rows off one at a time, and most of one order's events share a
// page.
func (a *ReconcileActivities) storePage(ctx context.Context, events []ListedEvent, out *ReconcileStripeEventsOutput) error {
	for _, ev := range slices.Backward(events) {
		if !slices.Contains(StripeReconciledTypes, ev.Type) {
			// Not asked for (stripe-mock ignores types[]): storing it would
			// only add an ignored row and count a recovery that is none.
			continue
		}
		inserted, err := a.Sink.StoreRecovered(ctx, RecoveredEvent{Provider: contract.ProviderStripe, ListedEvent: ev})
		switch {
		case errors.Is(err, ErrUnusableEvent):
			activity.GetLogger(ctx).Warn("reconcile: the inbox refused a stripe event; skipped", "eventID", ev.ID, "error", err)
			out.Rejected = append(out.Rejected, ev.ID)
		case err != nil:
			return transient(providerStore, ErrTypeUnavailable, fmt.Errorf("store stripe event %s: %w", ev.ID, err), 0)
		case inserted:
			out.Recovered++
			if a.Counter != nil {
				a.Counter.AddRecovered(contract.ProviderStripe, 1)
			}
		}
	}
	return nil
}

func orDefaultDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
