package contract

// RefundSignal is the signal a Stripe charge.refunded webhook sends to the
// reward of the referral the refunded order qualified.
const RefundSignal = "refund"

// ReferralRewardInput starts a referral's reward; the order confirmation
// starts it for a referred customer's first paid order.
type ReferralRewardInput struct {
	ReferralID         string `json:"referral_id"`
	OrderID            string `json:"order_id"`
	ReferredCustomerID string `json:"referred_customer_id"`
}

// ReferralRewardResult is how the reward ended: rewarded, ineligible,
// voided, clawed_back or skipped.
type ReferralRewardResult struct {
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
}

// RefundEvent is the RefundSignal's payload: what a verified charge.refunded
// event said.
type RefundEvent struct {
	// EventID is the Stripe event id; a redelivered event is ignored.
	EventID  string `json:"event_id"`
	ChargeID string `json:"charge_id"`
	// AmountRefundedCents is cumulative over the charge's refunds.
	AmountRefundedCents int64 `json:"amount_refunded_cents"`
	// FullyRefunded is Stripe's charge.refunded flag.
	FullyRefunded bool `json:"fully_refunded"`
	// Currency is the charge's currency ("" in events handed off before it
	// was carried).
	Currency string `json:"currency,omitempty"`
}
