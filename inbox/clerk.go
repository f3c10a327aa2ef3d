package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/starter"
)

// Clerk event types crmflow acts on.
const (
	ClerkUserCreated = "user.created"
	ClerkUserDeleted = "user.deleted"
)

// ErrMalformed marks a verified body that is not an event of its source:
// the sender is answered 400 and nothing is stored.
var ErrMalformed = errors.New("not an event of its source")

// ClerkRoute is a Clerk user event for the user's alias workflows.
type ClerkRoute struct {
	Type   string `json:"type"`
	UserID string `json:"user_id"`
	// PrimaryEmail is the user's primary address ("" when none), which
	// user.created claims shadow aliases by.
	PrimaryEmail string `json:"primary_email,omitempty"`
}

// clerkEvent is the part of Clerk's webhook envelope crmflow reads.
type clerkEvent struct {
	Type string `json:"type"`
	Data struct {
		ID                    string `json:"id"`
		PrimaryEmailAddressID string `json:"primary_email_address_id"`
		EmailAddresses        []struct {
			ID           string `json:"id"`
			EmailAddress string `json:"email_address"`
		} `json:"email_addresses"`
	} `json:"data"`
}

// primaryEmail is the user's primary address, as Clerk marks it.
func (e *clerkEvent) primaryEmail() string {
	for _, a := range e.Data.EmailAddresses {
		if a.ID == e.Data.PrimaryEmailAddressID {
			return a.EmailAddress
		}
	}
	return ""
}

// clerkUserTarget orders a user's events: user.created and user.deleted of
// one user fan out to several alias workflows, so they share one target.
func clerkUserTarget(userID string) string { return "clerk-user/" + userID }

// ClerkEvent is the inbox row of a verified Clerk delivery (svixID is its
// Svix message id), with its route. Types other than user.created and
// user.deleted, and events without a usable user id, are stored as ignored.
// A body that is not a Clerk event is ErrMalformed.
func ClerkEvent(svixID string, body []byte) (Event, error) {
	route, ignored, err := routeClerk(body)
	if err != nil {
		return Event{}, err
	}
	row := Event{Source: SourceClerk, EventID: svixID, EventType: route.Type, Payload: body, Ignored: ignored}
	if ignored == "" {
		row.Route, row.Target = Route{Clerk: route}, clerkUserTarget(route.UserID)
	}
	return row, nil
}

// routeClerk reads a Clerk body's route, or why it is ignored.
func routeClerk(body []byte) (*ClerkRoute, string, error) {
	var ev clerkEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.Type == "" {
		return nil, "", ErrMalformed
	}
	r := &ClerkRoute{Type: ev.Type, UserID: ev.Data.ID, PrimaryEmail: ev.primaryEmail()}
	switch {
	case ev.Type != ClerkUserCreated && ev.Type != ClerkUserDeleted:
		return r, "event type " + ev.Type + " is not handled", nil
	case contract.ValidateKey("user id", ev.Data.ID) != nil:
		return r, "event has no usable user id", nil
	}
	return r, "", nil
}

// AliasLookup finds the alias workflows a Clerk user event concerns
// (store.Store implements it).
type AliasLookup interface {
	ShadowAliasesForEmail(ctx context.Context, email string) ([]string, error)
	AliasesOfCustomer(ctx context.Context, customerID string) ([]string, error)
}

// deliverClerk fans a Clerk user event out to the alias workflows it
// concerns: user.created claims the shadow aliases made for the user's
// email; user.deleted deletes every alias of the user (privacy). Aliases
// whose workflow has ended are skipped. A partial failure retries the whole
// row; the workflows ignore the event id they have already seen.
func (d *Dispatcher) deliverClerk(ctx context.Context, eventID string, r *ClerkRoute) error {
	var aliasIDs []string
	var signal string
	var err error
	switch r.Type {
	case ClerkUserCreated:
		if r.PrimaryEmail == "" {
			return nil // nothing to claim by
		}
		signal = contract.AliasClaimSignal
		aliasIDs, err = d.lookups.ShadowAliasesForEmail(ctx, r.PrimaryEmail)
	case ClerkUserDeleted:
		signal = contract.AliasDeleteSignal
		aliasIDs, err = d.lookups.AliasesOfCustomer(ctx, r.UserID)
	default:
		return &permanentError{fmt.Errorf("no route for clerk event type %s", r.Type)}
	}
	if err != nil {
		return err
	}
	for _, id := range aliasIDs {
		err := d.starter.SignalAlias(ctx, id, signal, contract.AliasCommand{EventID: eventID, CustomerID: r.UserID})
		if err != nil && !errors.Is(err, starter.ErrNotFound) {
			return err
		}
	}
	return nil
}

// legacyClerkRoute works out the route of a row stored before routes were.
func legacyClerkRoute(ev Event) (Route, error) {
	r, ignored, err := routeClerk(ev.Payload)
	switch {
	case err != nil:
		return Route{}, &permanentError{fmt.Errorf("decode clerk event %s: %w", ev.EventID, err)}
	case ignored != "":
		return Route{}, &permanentError{fmt.Errorf("clerk event %s: %s", ev.EventID, ignored)}
	}
	return Route{Clerk: r}, nil
}
