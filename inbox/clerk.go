package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/starter"
)

// Clerk event types crmflow acts on.
const (
	ClerkUserCreated = contract.UserEventCreated
	ClerkUserUpdated = contract.UserEventUpdated
	ClerkUserDeleted = contract.UserEventDeleted
)

// ErrMalformed marks a verified body that is not an event of its source:
// the sender is answered 400 and nothing is stored.
var ErrMalformed = errors.New("not an event of its source")

// ClerkRoute is a Clerk user event for the user's entity (UserLifecycle).
type ClerkRoute struct {
	Type   string `json:"type"`
	UserID string `json:"user_id"`
	// PrimaryEmail is the user's primary address ("" when none); rows
	// stored before UserLifecycle routed by it.
	PrimaryEmail string `json:"primary_email,omitempty"`
	// Event is what the user's entity is signalled, as the edge read it.
	// Rows stored before UserLifecycle have none: their event is read
	// again from the payload at hand-off.
	Event *contract.UserEvent `json:"event,omitempty"`
}

// clerkEvent is the part of Clerk's webhook envelope crmflow reads.
type clerkEvent struct {
	Type string `json:"type"`
	Data struct {
		ID        string `json:"id"`
		FirstName string `json:"first_name"`
		LastName  string `json:"last_name"`
		// UpdatedAt is Unix milliseconds.
		UpdatedAt             int64  `json:"updated_at"`
		PrimaryEmailAddressID string `json:"primary_email_address_id"`
		EmailAddresses        []struct {
			ID           string `json:"id"`
			EmailAddress string `json:"email_address"`
			Verification *struct {
				Status string `json:"status"`
			} `json:"verification"`
		} `json:"email_addresses"`
	} `json:"data"`
}

// primaryEmail is the user's primary address, as Clerk marks it.
func (e *clerkEvent) primaryEmail() string {
	for _, a := range e.Data.EmailAddresses {
		if a.ID == e.Data.PrimaryEmailAddressID {
			return strings.TrimSpace(a.EmailAddress)
		}
	}
	return ""
}

// verifiedEmails are the addresses whose verification Clerk reports as
// "verified": the ones a user may claim shadow aliases by.
func (e *clerkEvent) verifiedEmails() []string {
	var out []string
	for _, a := range e.Data.EmailAddresses {
		if a.Verification != nil && a.Verification.Status == "verified" && strings.TrimSpace(a.EmailAddress) != "" {
			out = append(out, strings.TrimSpace(a.EmailAddress))
		}
	}
	return out
}

// userEvent is the event for the user's entity; its EventID is the row's,
// set at hand-off.
func (e *clerkEvent) userEvent() *contract.UserEvent {
	ev := &contract.UserEvent{Type: e.Type, UserID: e.Data.ID}
	if e.Type != ClerkUserDeleted {
		ev.UpdatedAt = e.Data.UpdatedAt
		ev.Name = strings.TrimSpace(strings.TrimSpace(e.Data.FirstName) + " " + strings.TrimSpace(e.Data.LastName))
		ev.PrimaryEmail, ev.VerifiedEmails = e.primaryEmail(), e.verifiedEmails()
	}
	return ev
}

// ClerkEvent is the inbox row of a verified Clerk delivery (svixID is its
// Svix message id), with its route: the user's entity, user/<user id>, the
// row's target, so one user's events are handed off in commit order. Types
// other than user.created, user.updated and user.deleted, and events
// without a usable user id, are stored as ignored. A body that is not a
// Clerk event is ErrMalformed.
func ClerkEvent(svixID string, body []byte) (Event, error) {
	route, ignored, err := routeClerk(body)
	if err != nil {
		return Event{}, err
	}
	row := Event{Source: SourceClerk, EventID: svixID, EventType: route.Type, Payload: body, Ignored: ignored}
	if ignored == "" {
		route.Event.EventID = svixID
		row.Route, row.Target = Route{Clerk: route}, clerkUserTarget(route.UserID)
	}
	return row, nil
}

// clerkUserTarget orders a user's events: they all go to the user's
// entity, so its workflow ID is their target. (Rows stored before
// UserLifecycle have the target clerk-user/<user id>.)
func clerkUserTarget(userID string) string { return contract.UserID(userID) }

// routeClerk reads a Clerk body's route, or why it is ignored.
func routeClerk(body []byte) (*ClerkRoute, string, error) {
	var ev clerkEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.Type == "" {
		return nil, "", ErrMalformed
	}
	r := &ClerkRoute{Type: ev.Type, UserID: ev.Data.ID, PrimaryEmail: ev.primaryEmail()}
	switch {
	case ev.Type != ClerkUserCreated && ev.Type != ClerkUserUpdated && ev.Type != ClerkUserDeleted:
		return r, "event type " + ev.Type + " is not handled", nil
	case contract.ValidateKey("user id", ev.Data.ID) != nil:
		return r, "event has no usable user id", nil
	}
	r.Event = ev.userEvent()
	return r, "", nil
}

// deliverClerk signals the event to the user's entity, starting it if
// needed. A row stored before UserLifecycle carries no event: it is read
// again from the payload, so such rows still reach the user (as their
// rows, routed by user, went to the alias entities before). A user whose
// entity has completed (deleted) gets nothing more: the row ends late.
func (d *Dispatcher) deliverClerk(ctx context.Context, row Event, r *ClerkRoute) error {
	if r.Event == nil {
		again, ignored, err := routeClerk(row.Payload)
		switch {
		case err != nil:
			return &permanentError{fmt.Errorf("decode clerk event %s: %w", row.EventID, err)}
		case ignored != "":
			return &endedError{StatusIgnored, ignored}
		}
		r = again
	}
	ev := *r.Event
	// The row's event id (Svix's message id) is the one the entity
	// deduplicates by, whoever worked the route out.
	ev.EventID = row.EventID
	_, err := d.starter.SignalUserEvent(ctx, ev)
	if errors.Is(err, starter.ErrAlreadyDone) {
		// Said here rather than by the caller: a row stored before
		// UserLifecycle has another target than the entity's ID.
		return &endedError{StatusLate, err.Error() + "; " + d.closedRun(ctx, contract.UserID(ev.UserID))}
	}
	return err
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
