package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/starter"
)

// PaymentRoute is a PaymentIntent's outcome for its order's confirmation:
// payment_intent.succeeded and payment_intent.payment_failed.
type PaymentRoute struct {
	// OrderID is the PaymentIntent's metadata.order_id.
	OrderID string                `json:"order_id"`
	Event   contract.PaymentEvent `json:"event"`
}

// RefundRoute is a refunded charge, for the order its PaymentIntent paid
// and that order's referral: charge.refunded. The order is found at
// hand-off, not at the edge: it is only known once the order's
// confirmation has recorded the PaymentIntent.
type RefundRoute struct {
	// PaymentIntentID is the refunded charge's PaymentIntent.
	PaymentIntentID string `json:"payment_intent_id,omitempty"`
	// Referral is the reward a row stored before refunds were routed at
	// hand-off goes to; nil for newer rows.
	Referral *contract.ReferralRewardInput `json:"referral,omitempty"`
	Event    contract.RefundEvent          `json:"event"`
}

// StripeEvent is the inbox row of a verified Stripe event, with its route:
// a payment goes to its order's confirmation (metadata.order_id), a refund
// to the order its PaymentIntent paid (Stripe puts crmflow's metadata on
// the PaymentIntent, not on the charge), found at hand-off. Other types,
// and events that name no usable target, are stored as ignored with the
// reason. An event without a usable id is ErrMalformed.
func StripeEvent(ev stripego.Event, body []byte) (Event, error) {
	if err := contract.ValidateKey("event id", ev.ID); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	row := Event{Source: SourceStripe, EventID: ev.ID, EventType: string(ev.Type), Payload: body}
	row.Route, row.Target, row.Ignored = routeStripe(ev)
	return row, nil
}

// routeStripe works out a Stripe event's route and target, or why it is
// ignored.
func routeStripe(ev stripego.Event) (route Route, target, ignored string) {
	switch ev.Type {
	case stripego.EventTypePaymentIntentSucceeded, stripego.EventTypePaymentIntentPaymentFailed:
		var pi stripego.PaymentIntent
		if err := json.Unmarshal(ev.Data.Raw, &pi); err != nil {
			return Route{}, "", "payment intent does not decode: " + err.Error()
		}
		orderID := pi.Metadata["order_id"]
		if err := contract.ValidateKey("metadata.order_id", orderID); err != nil {
			return Route{}, "", "not an order payment: " + err.Error()
		}
		r := &PaymentRoute{OrderID: orderID, Event: paymentEvent(ev, &pi)}
		return Route{Payment: r}, contract.OrderConfirmationID(orderID), ""
	case stripego.EventTypeChargeRefunded:
		var ch stripego.Charge
		if err := json.Unmarshal(ev.Data.Raw, &ch); err != nil {
			return Route{}, "", "charge does not decode: " + err.Error()
		}
		if ch.PaymentIntent == nil || contract.ValidateKey("payment_intent", ch.PaymentIntent.ID) != nil {
			return Route{}, "", "refunded charge has no usable payment_intent"
		}
		r := &RefundRoute{
			PaymentIntentID: ch.PaymentIntent.ID,
			Event: contract.RefundEvent{EventID: ev.ID, ChargeID: ch.ID, AmountRefundedCents: ch.AmountRefunded,
				FullyRefunded: ch.Refunded, Currency: string(ch.Currency)},
		}
		// One target per PaymentIntent: its refunds reach the order in the
		// order Stripe sent them.
		return Route{Refund: r}, "payment-intent/" + ch.PaymentIntent.ID, ""
	default:
		return Route{}, "", "event type " + string(ev.Type) + " is not handled"
	}
}

// paymentEvent is the signal payload for a PaymentIntent event.
func paymentEvent(se stripego.Event, pi *stripego.PaymentIntent) contract.PaymentEvent {
	pe := contract.PaymentEvent{
		EventID:             se.ID,
		Succeeded:           se.Type == stripego.EventTypePaymentIntentSucceeded,
		PaymentIntentID:     pi.ID,
		AmountCents:         pi.Amount,
		AmountReceivedCents: pi.AmountReceived,
		Currency:            string(pi.Currency),
	}
	if pi.Customer != nil {
		pe.CustomerID = pi.Customer.ID
	}
	if pi.LastPaymentError != nil {
		pe.FailureMessage = pi.LastPaymentError.Msg
	}
	return pe
}

// findOrders looks up the orders of a claim's payments in one query and
// marks the rows whose order exists. A query per row at hand-off costs the
// drain far more than its own time: on a machine Temporal keeps busy, each
// competes with Temporal for the cores. Rows it cannot vouch for (no such
// order, or the query failed) look their order up at hand-off, as before,
// where a missing order ends the row unroutable.
func (d *Dispatcher) findOrders(ctx context.Context, events []Event) {
	var ids []string
	for _, ev := range events {
		if ev.Route.Payment != nil {
			ids = append(ids, ev.Route.Payment.OrderID)
		}
	}
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, markTimeout)
	defer cancel()
	found, err := d.lookups.ExistingOrders(ctx, ids)
	if err != nil {
		d.logger.Debug("Claimed payments' orders not looked up at once; each hand-off looks up its own", "rows", len(ids), "error", err)
		return
	}
	for i, ev := range events {
		if ev.Route.Payment != nil && found[ev.Route.Payment.OrderID] {
			events[i].orderFound = true
		}
	}
}

// OrderLookup reads the orders payments and refunds are for (store.Store
// implements it).
type OrderLookup interface {
	GetOrder(ctx context.Context, id string) (*store.Order, error)
	// ExistingOrders returns which of ids are orders, in one query.
	ExistingOrders(ctx context.Context, ids []string) (map[string]bool, error)
	OrderForPaymentIntent(ctx context.Context, paymentIntentID string) (store.RefundTarget, bool, error)
}

// deliverPayment signals the order's confirmation, starting it if needed.
// A payment for an order that does not exist ends unroutable, with no run:
// replaying it once the CRM has written the order delivers it. A payment
// that reaches a finished confirmation ends late, and a success for an
// order that expired or failed starts a run holding it for operators.
// orderFound says the claim's look-up already found the order.
func (d *Dispatcher) deliverPayment(ctx context.Context, r *PaymentRoute, orderFound bool) error {
	// An order the claim found moments ago is not read again: a second
	// look-up would be no fresher for the call that follows it.
	if !orderFound {
		if _, err := d.lookups.GetOrder(ctx, r.OrderID); errors.Is(err, store.ErrNotFound) {
			return &endedError{StatusUnroutable, "order " + r.OrderID + " does not exist; replay the event once it does"}
		} else if err != nil {
			return err
		}
	}
	_, err := d.starter.SignalPayment(ctx, r.OrderID, r.Event)
	if errors.Is(err, starter.ErrAlreadyDone) {
		return d.latePayment(ctx, r)
	}
	return err
}

// latePayment handles a payment event whose order's confirmation had
// finished.
func (d *Dispatcher) latePayment(ctx context.Context, r *PaymentRoute) error {
	order, err := d.lookups.GetOrder(ctx, r.OrderID)
	if err != nil {
		return err
	}
	note := fmt.Sprintf("the confirmation %s; order is %s", d.closedRun(ctx, contract.OrderConfirmationID(r.OrderID)), order.Status)
	paidAfterClose := r.Event.Succeeded && r.Event.PaymentIntentID != order.PaymentIntentID &&
		(order.Status == store.OrderExpired || order.Status == store.OrderPaymentFailed)
	if !paidAfterClose {
		return &endedError{StatusLate, note}
	}
	run, err := d.starter.StartLatePayment(ctx, r.OrderID, r.Event)
	if err != nil {
		return err
	}
	d.logger.Warn("Payment succeeded after its order was closed; held for operators", "orderID", r.OrderID,
		"paymentIntentID", r.Event.PaymentIntentID, "runID", run.RunID)
	return &endedError{StatusLate, note + "; paid after close: run " + run.RunID + " holds it for operators"}
}

// deliverRefund starts the refund's handling for the order its
// PaymentIntent paid, and signals the reward of the referral that order
// qualified. Until the order's confirmation has recorded the PaymentIntent
// the refund waits (RefundWait at most), then ends unroutable.
func (d *Dispatcher) deliverRefund(ctx context.Context, ev Event, r *RefundRoute) error {
	if r.Referral != nil {
		// Stored before refunds were routed at hand-off.
		_, err := d.starter.SignalRefund(ctx, *r.Referral, r.Event)
		return err
	}
	t, ok, err := d.lookups.OrderForPaymentIntent(ctx, r.PaymentIntentID)
	switch {
	case err != nil:
		return err
	case !ok && time.Since(ev.ReceivedAt) < d.opts.RefundWait:
		return &waitError{"no order records payment intent " + r.PaymentIntentID + " yet; waiting for its confirmation"}
	case !ok:
		return &endedError{StatusUnroutable, "no order was paid with payment intent " + r.PaymentIntentID +
			"; replay the event once one is"}
	}
	if _, err := d.starter.StartOrderRefund(ctx, contract.OrderRefundInput{OrderID: t.OrderID, Refund: r.Event}); err != nil &&
		!errors.Is(err, starter.ErrAlreadyDone) {
		return err
	}
	if t.ReferralID == "" {
		return nil
	}
	in := contract.ReferralRewardInput{ReferralID: t.ReferralID, OrderID: t.OrderID, ReferredCustomerID: t.ReferredCustomerID}
	if _, err = d.starter.SignalRefund(ctx, in, r.Event); errors.Is(err, starter.ErrAlreadyDone) {
		// The order took the refund; the reward had already ended (paid
		// out after its window, or voided), which operators should see.
		return &endedError{StatusLate, fmt.Sprintf("order %s refunded; the referral reward %s %s", t.OrderID, t.ReferralID,
			d.closedRun(ctx, contract.ReferralRewardID(t.ReferralID)))}
	}
	return err
}

// legacyStripeRoute works out the route of a row stored before routes were
// (by an older version still draining): from its payload, as the edge would.
func legacyStripeRoute(ev Event) (Route, error) {
	var se stripego.Event
	if err := json.Unmarshal(ev.Payload, &se); err != nil {
		return Route{}, &permanentError{fmt.Errorf("decode stripe event %s: %w", ev.EventID, err)}
	}
	route, _, ignored := routeStripe(se)
	if ignored != "" {
		return Route{}, &permanentError{fmt.Errorf("stripe event %s: %s", ev.EventID, ignored)}
	}
	return route, nil
}
