package stripeevents

import (
	"encoding/json"
	"time"
)

// APIVersion is the API version the built events carry: stripe-go v76's.
const APIVersion = "2023-10-16"

// PaymentIntentEvent builds a payment_intent.succeeded or
// payment_intent.payment_failed event of PaymentIntent piID for orderID
// (metadata.order_id), in the shape Stripe lists it.
func PaymentIntentEvent(id, typ, orderID, piID string, amountCents int64, currency string, created time.Time) []byte {
	pi := map[string]any{
		"id": piID, "object": "payment_intent", "amount": amountCents, "amount_received": amountCents,
		"currency": currency, "status": "succeeded", "last_payment_error": nil, "latest_charge": "ch_" + piID,
		"metadata": map[string]string{"order_id": orderID}, "created": created.Unix(), "livemode": false,
	}
	if typ == "payment_intent.payment_failed" {
		pi["amount_received"], pi["status"] = 0, "requires_payment_method"
		pi["last_payment_error"] = map[string]any{"type": "card_error", "code": "card_declined", "message": "Your card was declined."}
	}
	return eventJSON(id, typ, created, pi)
}

// ChargeRefundedEvent builds a charge.refunded event of a charge of
// PaymentIntent piID with amountRefunded of amountCents refunded so far.
func ChargeRefundedEvent(id, chargeID, piID string, amountCents, amountRefunded int64, currency string, created time.Time) []byte {
	return eventJSON(id, "charge.refunded", created, map[string]any{
		"id": chargeID, "object": "charge", "amount": amountCents, "amount_refunded": amountRefunded,
		"refunded": amountRefunded >= amountCents, "currency": currency, "payment_intent": piID,
		"created": created.Unix(), "livemode": false, "metadata": map[string]string{},
	})
}

// eventJSON is an event object around data.object, with the fields Stripe
// always sends.
func eventJSON(id, typ string, created time.Time, object map[string]any) []byte {
	b, err := json.Marshal(map[string]any{
		"id": id, "object": "event", "api_version": APIVersion, "created": created.Unix(), "type": typ,
		"livemode": false, "pending_webhooks": 1, "request": map[string]any{"id": nil, "idempotency_key": nil},
		"data": map[string]any{"object": object},
	})
	if err != nil {
		panic(err) // maps of plain values always encode
	}
	return b
}
