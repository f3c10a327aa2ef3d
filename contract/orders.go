package contract

import "time"

// PaymentSignal is the signal Stripe's payment_intent.succeeded and
// payment_intent.payment_failed webhooks send to an order's confirmation.
const PaymentSignal = "payment"

// DefaultPaymentTimeout is how long an order waits for a successful payment.
const DefaultPaymentTimeout = 24 * time.Hour

// OrderConfirmationInput starts an order's confirmation.
type OrderConfirmationInput struct {
	OrderID string `json:"order_id"`
	// PaymentTimeout is how long to wait for a successful payment; zero means
	// DefaultPaymentTimeout.
	PaymentTimeout time.Duration `json:"payment_timeout,omitempty"`
	// LatePayment starts a run for a payment that succeeded after the
	// order's confirmation had ended it expired or payment_failed: the run
	// records the payment and holds it for operators (paid-after-close).
	LatePayment *PaymentEvent `json:"late_payment,omitempty"`
}

// OrderConfirmationResult is how the order ended.
type OrderConfirmationResult struct {
	// State is confirmed, payment_failed, mismatch, expired or skipped.
	State string `json:"state"`
	// ReferralID is the referral whose reward this order started, if any.
	ReferralID string `json:"referral_id,omitempty"`
}

// PaymentEvent is the PaymentSignal's payload: what a verified Stripe event
// said about the order's PaymentIntent.
type PaymentEvent struct {
	// EventID is the Stripe event id; a redelivered event is ignored.
	EventID             string `json:"event_id"`
	Succeeded           bool   `json:"succeeded"`
	PaymentIntentID     string `json:"payment_intent_id"`
	AmountCents         int64  `json:"amount_cents"`
	AmountReceivedCents int64  `json:"amount_received_cents"`
	Currency            string `json:"currency"`
	CustomerID          string `json:"customer_id,omitempty"`
	// FailureMessage is Stripe's last_payment_error message on failure.
	FailureMessage string `json:"failure_message,omitempty"`
}

// OrderRefundInput starts the handling of one charge.refunded event for the
// order its PaymentIntent paid.
type OrderRefundInput struct {
	OrderID string      `json:"order_id"`
	Refund  RefundEvent `json:"refund"`
}

// OrderRefundResult is what the refund made of the order.
type OrderRefundResult struct {
	// Status is the order's status after the refund: refunded,
	// partially_refunded, or the status it kept (a stale event).
	Status        string `json:"status"`
	RefundedCents int64  `json:"refunded_cents"`
}
