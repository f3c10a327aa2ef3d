package inbox

import (
	"context"
	"encoding/json"
	"fmt"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
)

// PaymentRoute is a PaymentIntent's outcome for its order's confirmation:
// payment_intent.succeeded and payment_intent.payment_failed.
type PaymentRoute struct {
	// OrderID is the PaymentIntent's metadata.order_id.
	OrderID string                `json:"order_id"`
	Event   contract.PaymentEvent `json:"event"`
}

// RefundRoute is a refunded charge for the reward of the referral its
// order qualified: charge.refunded.
type RefundRoute struct {
	Referral contract.ReferralRewardInput `json:"referral"`
	Event    contract.RefundEvent         `json:"event"`
}

// ReferralLookup finds the referral whose qualifying order a PaymentIntent
// paid (store.Store implements it).
type ReferralLookup interface {
	ReferralForPaymentIntent(ctx context.Context, paymentIntentID string) (store.RefundTarget, bool, error)
}

// StripeEvent is the inbox row of a verified Stripe event, with its route:
// a payment goes to its order's confirmation (metadata.order_id), a refund
// to the reward of the referral its order qualified, found through the
// PaymentIntent it refunds (Stripe puts crmflow's metadata on the
// PaymentIntent, not on the charge). Other types, and events that name no
// usable target, are stored as ignored with the reason. An error means the
// lookup failed and the delivery should be retried.
func StripeEvent(ctx context.Context, referrals ReferralLookup, ev stripego.Event, body []byte) (Event, error) {
	row := Event{Source: SourceStripe, EventID: ev.ID, EventType: string(ev.Type), Payload: body}
	route, target, ignored, err := routeStripe(ctx, referrals, ev)
	if err != nil {
		return row, err
	}
	row.Route, row.Target, row.Ignored = route, target, ignored
	return row, nil
}

// routeStripe works out a Stripe event's route and target, or why it is
// ignored.
func routeStripe(ctx context.Context, referrals ReferralLookup, ev stripego.Event) (route Route, target, ignored string, err error) {
	switch ev.Type {
	case stripego.EventTypePaymentIntentSucceeded, stripego.EventTypePaymentIntentPaymentFailed:
		var pi stripego.PaymentIntent
		if err := json.Unmarshal(ev.Data.Raw, &pi); err != nil {
			return Route{}, "", "payment intent does not decode: " + err.Error(), nil
		}
		orderID := pi.Metadata["order_id"]
		if err := contract.ValidateKey("metadata.order_id", orderID); err != nil {
			return Route{}, "", "not an order payment: " + err.Error(), nil
		}
		r := &PaymentRoute{OrderID: orderID, Event: paymentEvent(ev, &pi)}
		return Route{Payment: r}, contract.OrderConfirmationID(orderID), "", nil
	case stripego.EventTypeChargeRefunded:
		var ch stripego.Charge
		if err := json.Unmarshal(ev.Data.Raw, &ch); err != nil {
			return Route{}, "", "charge does not decode: " + err.Error(), nil
		}
		if ch.PaymentIntent == nil || ch.PaymentIntent.ID == "" {
			return Route{}, "", "refunded charge has no payment_intent", nil
		}
		t, ok, err := referrals.ReferralForPaymentIntent(ctx, ch.PaymentIntent.ID)
		if err != nil {
			return Route{}, "", "", err
		}
		if !ok {
			return Route{}, "", "refund of an order that qualified no referral reward", nil
		}
		r := &RefundRoute{
			Referral: contract.ReferralRewardInput{ReferralID: t.ReferralID, OrderID: t.OrderID, ReferredCustomerID: t.ReferredCustomerID},
			Event:    contract.RefundEvent{EventID: ev.ID, ChargeID: ch.ID, AmountRefundedCents: ch.AmountRefunded, FullyRefunded: ch.Refunded},
		}
		return Route{Refund: r}, contract.ReferralRewardID(t.ReferralID), "", nil
	default:
		return Route{}, "", "event type " + string(ev.Type) + " is not handled", nil
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

// deliverPayment signals the order's confirmation, starting it if needed.
func (d *Dispatcher) deliverPayment(ctx context.Context, r *PaymentRoute) error {
	_, err := d.starter.SignalPayment(ctx, r.OrderID, r.Event)
	return err
}

// deliverRefund signals the reward of the referral the refunded order
// qualified, starting it if needed.
func (d *Dispatcher) deliverRefund(ctx context.Context, r *RefundRoute) error {
	_, err := d.starter.SignalRefund(ctx, r.Referral, r.Event)
	return err
}

// legacyStripeRoute works out the route of a row stored before routes were
// (by an older version still draining): from its payload, as the edge would.
func (d *Dispatcher) legacyStripeRoute(ctx context.Context, ev Event) (Route, error) {
	var se stripego.Event
	if err := json.Unmarshal(ev.Payload, &se); err != nil {
		return Route{}, &permanentError{fmt.Errorf("decode stripe event %s: %w", ev.EventID, err)}
	}
	route, _, ignored, err := routeStripe(ctx, d.lookups, se)
	switch {
	case err != nil:
		return Route{}, err
	case ignored != "":
		return Route{}, &permanentError{fmt.Errorf("stripe event %s: %s", ev.EventID, ignored)}
	}
	return route, nil
}
