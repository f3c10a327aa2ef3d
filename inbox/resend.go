package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/starter"
)

// SourceResend is Resend's webhook deliveries (email events).
const SourceResend = "resend"

// Resend event types crmflow acts on; every other type is stored ignored.
const (
	ResendEmailDelivered       = "email.delivered"
	ResendEmailDeliveryDelayed = "email.delivery_delayed"
	ResendEmailBounced         = "email.bounced"
	ResendEmailComplained      = "email.complained"
)

// resendStatuses are the emails.status each handled type moves to.
var resendStatuses = map[string]string{
	ResendEmailDelivered:       store.EmailDelivered,
	ResendEmailDeliveryDelayed: store.EmailDeliveryDelayed,
	ResendEmailBounced:         store.EmailBounced,
	ResendEmailComplained:      store.EmailComplained,
}

// EmailRoute is a Resend event about one email: the status it moves the
// emails row to and the addresses it suppresses.
type EmailRoute struct {
	Type string `json:"type"`
	// EmailID is Resend's id of the email (emails.provider_id).
	EmailID string `json:"email_id"`
	// Status is the emails.status the event moves the email to.
	Status string `json:"status"`
	// Detail is a bounce's type, sub-type and message.
	Detail string `json:"detail,omitempty"`
	// At is when Resend emitted the event (its created_at).
	At string `json:"at,omitempty"`
	// Suppress is why Addresses are suppressed: "bounce" for a permanent
	// bounce, "complaint"; "" suppresses nothing.
	Suppress  string   `json:"suppress,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
}

// resendEvent is the part of Resend's webhook payload crmflow reads.
type resendEvent struct {
	Type      string `json:"type"`
	CreatedAt string `json:"created_at"`
	Data      struct {
		EmailID string   `json:"email_id"`
		To      []string `json:"to"`
		Bounce  *struct {
			Type    string `json:"type"`
			SubType string `json:"subType"`
			Message string `json:"message"`
		} `json:"bounce"`
	} `json:"data"`
}

// resendEmailTarget orders one email's events: they go one at a time, in
// commit order, so a bounce is applied after the delivery_delayed before it.
func resendEmailTarget(emailID string) string { return "resend-email/" + emailID }

// ResendEvent is the inbox row of a verified Resend delivery (svixID is its
// Svix message id), routed to the email it is about. Types other than
// delivered, delivery_delayed, bounced and complained, and events naming no
// usable email id, are stored as ignored. A body that is not a Resend event
// is ErrMalformed.
func ResendEvent(svixID string, body []byte) (Event, error) {
	route, ignored, err := routeResend(body)
	if err != nil {
		return Event{}, err
	}
	row := Event{Source: SourceResend, EventID: svixID, EventType: route.Type, Payload: body, Ignored: ignored}
	if ignored == "" {
		row.Route, row.Target = Route{Email: route}, resendEmailTarget(route.EmailID)
	}
	return row, nil
}

// routeResend reads a Resend body's route, or why it is ignored.
func routeResend(body []byte) (*EmailRoute, string, error) {
	var ev resendEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.Type == "" {
		return nil, "", ErrMalformed
	}
	r := &EmailRoute{Type: ev.Type, EmailID: ev.Data.EmailID, Status: resendStatuses[ev.Type], At: ev.CreatedAt}
	switch {
	case r.Status == "":
		return r, "event type " + ev.Type + " is not handled", nil
	case contract.ValidateKey("email id", ev.Data.EmailID) != nil:
		return r, "event has no usable email id", nil
	}
	switch ev.Type {
	case ResendEmailBounced:
		if b := ev.Data.Bounce; b != nil {
			r.Detail = strings.TrimSpace(b.Type + "/" + b.SubType + ": " + b.Message)
			if b.Type == "Permanent" {
				// A transient or undetermined bounce may pass next time.
				r.Suppress = store.SuppressedBounce
			}
		}
	case ResendEmailComplained:
		r.Suppress = store.SuppressedComplaint
	}
	if r.Suppress != "" {
		r.Addresses = addresses(ev.Data.To)
	}
	return r, "", nil
}

// addresses are the bare addresses of a recipient list ("Name <a@b>" is
// a@b); entries that are no address are left out.
func addresses(to []string) []string {
	var out []string
	for _, s := range to {
		if a, err := mail.ParseAddress(s); err == nil {
			out = append(out, store.NormalizeAddress(a.Address))
		}
	}
	return out
}

// EmailEvents records what Resend's events say about crmflow's emails
// (store.Store implements it).
type EmailEvents interface {
	ApplyEmailEvent(ctx context.Context, ev store.EmailEvent) (store.EmailEventResult, error)
}

// deliverEmail applies a Resend event in PostgreSQL, straight from the
// dispatcher rather than through a workflow: it is one transaction that
// suppresses the addresses and moves the email's status forward only
// (store.ApplyEmailEvent), so a repeat changes nothing, and the inbox
// already gives it dedup (the Svix id) and order (one email's events one at
// a time). Only a complaint needs a provider call (Knock, to alert
// operators), and that goes through the EmailComplaint workflow, started
// once per email.
//
// An event for an email crmflow has not recorded as sent waits
// (EmailWait at most: its send may not have recorded Resend's answer yet),
// then ends unroutable; its addresses are suppressed either way.
func (d *Dispatcher) deliverEmail(ctx context.Context, ev Event, r *EmailRoute) error {
	at, _ := time.Parse(time.RFC3339Nano, r.At) // zero (now) when Resend sent none
	res, err := d.lookups.ApplyEmailEvent(ctx, store.EmailEvent{ProviderID: r.EmailID, Status: r.Status, Detail: r.Detail,
		At: at, Suppress: r.Suppress, Addresses: r.Addresses, EventID: ev.EventID})
	switch {
	case errors.Is(err, store.ErrConflict):
		return &permanentError{err}
	case err != nil:
		return err
	case res.Email == nil && time.Since(ev.ReceivedAt) < d.opts.EmailWait:
		return &waitError{"no email with Resend id " + r.EmailID + " recorded yet; waiting for its send to record it"}
	}
	if len(res.Suppressed) > 0 {
		d.logger.Info("Email addresses suppressed", "reason", r.Suppress, "resendEmailID", r.EmailID, "addresses", len(res.Suppressed))
	}
	if r.Type == ResendEmailComplained {
		in := contract.EmailComplaintInput{EmailID: r.EmailID, Addresses: r.Addresses, EventID: ev.EventID, ComplainedAt: r.At}
		if res.Email != nil {
			in.Template, in.BusinessKey = res.Email.Template, res.Email.BusinessKey
		}
		if _, err := d.starter.StartEmailComplaint(ctx, in); err != nil && !errors.Is(err, starter.ErrAlreadyDone) {
			return err // ErrAlreadyDone: operators were alerted to this email already
		}
	}
	if res.Email == nil {
		note := "crmflow recorded no email with Resend id " + r.EmailID
		if r.Suppress != "" {
			note += fmt.Sprintf(" (its %d address(es) were suppressed)", len(r.Addresses))
		}
		return &endedError{StatusUnroutable, note + "; replay the event once the email is recorded"}
	}
	return nil
}

// legacyResendRoute works out the route of a Resend row stored without one
// (an ignored row an operator replays): from its payload, as the edge
// would.
func legacyResendRoute(ev Event) (Route, error) {
	r, ignored, err := routeResend(ev.Payload)
	switch {
	case err != nil:
		return Route{}, &permanentError{fmt.Errorf("decode resend event %s: %w", ev.EventID, err)}
	case ignored != "":
		return Route{}, &permanentError{fmt.Errorf("resend event %s: %s", ev.EventID, ignored)}
	}
	return Route{Email: r}, nil
}
