package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/form"
)

// StripeEventsAPI lists Stripe's events with the Stripe activities' client:
// the secret key read from the credential store at each call, Stripe's
// errors classified as every Stripe activity's are (a 429 is a retryable
// StripeRateLimited, 5xx and network errors retryable StripeUnavailable, a
// revoked key a permanent StripeAuthFailed or StripeCredentialMissing).
type StripeEventsAPI struct {
	Stripe *StripeActivities
}

// rawEventPage is a list answer of GET /v1/events with each event kept as
// the bytes Stripe sent. stripe-go's iterator decodes events into
// stripe.Event, whose re-encoding would not be what Stripe returned, and
// keeps the raw JSON only of the whole page.
type rawEventPage struct {
	stripe.APIResource
	Object  string            `json:"object"`
	Data    []json.RawMessage `json:"data"`
	HasMore bool              `json:"has_more"`
}

// eventHead is what the lister reads of each event; the rest stays raw.
type eventHead struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Type    string `json:"type"`
	Created int64  `json:"created"`
}

// ListEvents fetches one page of events: GET /v1/events with types[],
// created[gte], created[lt], limit and starting_after, through stripe-go's
// backend (its form encoding, headers, API version and error decoding).
func (l StripeEventsAPI) ListEvents(ctx context.Context, q EventListQuery) (*EventPage, error) {
	if l.Stripe == nil {
		return nil, permanent(providerStripe, ErrTypeInvalid, errors.New("the event lister has no Stripe activities to call with"))
	}
	sc, err := l.Stripe.client(ctx)
	if err != nil {
		return nil, err
	}
	if sc == nil {
		return nil, permanent(providerStripe, ErrTypeInvalid, errors.New("console mode: there is no Stripe account to list events of"))
	}
	params := &stripe.EventListParams{CreatedRange: &stripe.RangeQueryParams{
		GreaterThanOrEqual: q.CreatedGTE.Unix(), LesserThan: q.CreatedLT.Unix(),
	}}
	for _, t := range q.Types {
		params.Types = append(params.Types, stripe.String(t))
	}
	if q.Limit > 0 {
		params.Limit = stripe.Int64(int64(q.Limit))
	}
	if q.StartingAfter != "" {
		params.StartingAfter = stripe.String(q.StartingAfter)
	}
	params.Context = ctx
	// As stripe-go's own list call does: Backend.Call cannot encode list
	// params (it looks for a Metadata field they lack).
	values := &form.Values{}
	form.AppendTo(values, params)
	var page rawEventPage
	if err := sc.Events.B.CallRaw(http.MethodGet, "/v1/events", sc.Events.Key, values, params.GetParams(), &page); err != nil {
		return nil, classifyStripe(err)
	}
	if page.Object != "list" {
		// Not Stripe's list shape (a proxy's page, say): worth a retry.
		return nil, transient(providerStripe, ErrTypeUnavailable, fmt.Errorf("GET /v1/events answered a %q object, not a list", page.Object), 0)
	}
	out := &EventPage{HasMore: page.HasMore, Events: make([]ListedEvent, 0, len(page.Data))}
	for i, raw := range page.Data {
		var h eventHead
		if err := json.Unmarshal(raw, &h); err != nil || h.ID == "" || h.Object != "event" {
			return nil, permanent(providerStripe, ErrTypeInvalid, fmt.Errorf("GET /v1/events: item %d is not an event (%v)", i, err))
		}
		out.Events = append(out.Events, ListedEvent{ID: h.ID, Type: h.Type, Created: time.Unix(h.Created, 0).UTC(), Raw: raw})
	}
	return out, nil
}
