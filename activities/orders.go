package activities

import (
	"context"
	"errors"
	"fmt"

	"github.com/crmflow/crmflow/internal/store"
)

// providerStore names the database in error types: "StoreNotFound".
const providerStore = "Store"

// OrderActivities read and write orders in PostgreSQL.
type OrderActivities struct {
	// Store is the CRM database (*store.Store in the worker).
	Store orderStore
}

// orderStore is what the order workflows' activities need of the CRM
// database: an order, its outcome, a payment that came after it, its
// refunds, and the referral its first payment qualifies.
type orderStore interface {
	GetOrder(ctx context.Context, id string) (*store.Order, error)
	SetOrderOutcome(ctx context.Context, id, status, paymentIntentID string) (*store.Order, error)
	RecordLatePayment(ctx context.Context, id, paymentIntentID string) (*store.Order, error)
	ConfirmLatePayment(ctx context.Context, id, paymentIntentID string) (*store.Order, error)
	MarkOrderRefunded(ctx context.Context, id string, amountRefundedCents int64, fully bool) (*store.Refund, error)
	ReferralForFirstPaidOrder(ctx context.Context, orderID string) (string, error)
}

var _ orderStore = (*store.Store)(nil)

// LoadOrderInput names the order to load.
type LoadOrderInput struct {
	OrderID string `json:"OrderID"`
}

// Order is what the order-confirmation workflow needs of an order.
type Order struct {
	ID          string `json:"ID"`
	CustomerID  string `json:"CustomerID"`
	AmountCents int64  `json:"AmountCents"`
	Currency    string `json:"Currency"`
	Status      string `json:"Status"`
	// StripeCustomerID is the customer's Stripe customer id, "" when they
	// have none; a PaymentIntent for the order must be theirs. It is new:
	// histories recorded before it have none, which checks nothing.
	StripeCustomerID string `json:"stripe_customer_id,omitempty"`
}

// orderOf is what the workflow keeps of a stored order.
func orderOf(o *store.Order) *Order {
	return &Order{ID: o.ID, CustomerID: o.CustomerID, AmountCents: o.AmountCents, Currency: o.Currency, Status: o.Status,
		StripeCustomerID: o.CustomerStripeID}
}

// LoadOrder reads the order; an unknown order is a non-retryable
// StoreNotFound, since no retry will make it appear.
func (a *OrderActivities) LoadOrder(ctx context.Context, in LoadOrderInput) (*Order, error) {
	o, err := a.Store.GetOrder(ctx, in.OrderID)
	if err != nil {
		return nil, classifyStore(err)
	}
	return orderOf(o), nil
}

// SetOrderOutcomeInput is the final status an order moves to.
type SetOrderOutcomeInput struct {
	OrderID         string `json:"OrderID"`
	Status          string `json:"Status"`
	PaymentIntentID string `json:"PaymentIntentID"`
}

// SetOrderOutcome marks the order. Doing it twice is harmless; an order that
// already has another final status is a non-retryable StoreConflict.
func (a *OrderActivities) SetOrderOutcome(ctx context.Context, in SetOrderOutcomeInput) (*Order, error) {
	o, err := a.Store.SetOrderOutcome(ctx, in.OrderID, in.Status, in.PaymentIntentID)
	if err != nil {
		return nil, classifyStore(err)
	}
	return orderOf(o), nil
}

// LatePaymentInput is a payment that succeeded after its order was closed
// expired or payment_failed.
type LatePaymentInput struct {
	OrderID         string `json:"order_id"`
	PaymentIntentID string `json:"payment_intent_id"`
}

// RecordLatePayment notes the late payment on the order (a refund of it
// then finds the order); the order keeps its status.
func (a *OrderActivities) RecordLatePayment(ctx context.Context, in LatePaymentInput) (*Order, error) {
	o, err := a.Store.RecordLatePayment(ctx, in.OrderID, in.PaymentIntentID)
	if err != nil {
		return nil, classifyStore(err)
	}
	return orderOf(o), nil
}

// ConfirmLatePayment reopens the closed order and confirms it with the late
// payment, as an operator decided. Doing it twice is harmless; an order in
// any other state is a non-retryable StoreConflict.
func (a *OrderActivities) ConfirmLatePayment(ctx context.Context, in LatePaymentInput) (*Order, error) {
	o, err := a.Store.ConfirmLatePayment(ctx, in.OrderID, in.PaymentIntentID)
	if err != nil {
		return nil, classifyStore(err)
	}
	return orderOf(o), nil
}

// MarkRefundedInput is one charge.refunded event for the order.
type MarkRefundedInput struct {
	OrderID string `json:"order_id"`
	// AmountRefundedCents is the charge's cumulative amount refunded.
	AmountRefundedCents int64 `json:"amount_refunded_cents"`
	// FullyRefunded is Stripe's charge.refunded flag.
	FullyRefunded bool `json:"fully_refunded"`
}

// MarkRefundedOutput is the order after the refund.
type MarkRefundedOutput struct {
	CustomerID    string `json:"customer_id"`
	AmountCents   int64  `json:"amount_cents"`
	Currency      string `json:"currency"`
	Status        string `json:"status"`
	RefundedCents int64  `json:"refunded_cents"`
}

// MarkRefunded records the refund on the order: refunded or
// partially_refunded with the amount. Repeating it is harmless; an order
// still pending is a non-retryable StoreConflict.
func (a *OrderActivities) MarkRefunded(ctx context.Context, in MarkRefundedInput) (*MarkRefundedOutput, error) {
	r, err := a.Store.MarkOrderRefunded(ctx, in.OrderID, in.AmountRefundedCents, in.FullyRefunded)
	if err != nil {
		return nil, classifyStore(err)
	}
	return &MarkRefundedOutput{CustomerID: r.CustomerID, AmountCents: r.AmountCents, Currency: r.Currency,
		Status: r.Status, RefundedCents: r.RefundedCents}, nil
}

// FindReferralInput names a confirmed order.
type FindReferralInput struct {
	OrderID string `json:"OrderID"`
}

// FindReferralOutput holds the referral the order qualifies, if any.
type FindReferralOutput struct {
	// ReferralID is "" unless the customer was referred and this is their
	// first paid order.
	ReferralID string `json:"ReferralID"`
}

// FindReferral finds the referral a first paid order qualifies.
func (a *OrderActivities) FindReferral(ctx context.Context, in FindReferralInput) (*FindReferralOutput, error) {
	id, err := a.Store.ReferralForFirstPaidOrder(ctx, in.OrderID)
	if err != nil {
		return nil, classifyStore(err)
	}
	return &FindReferralOutput{ReferralID: id}, nil
}

// classifyStore makes missing rows and state conflicts permanent; anything
// else (connection refused, timeouts, serialization failures) retries.
func classifyStore(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return permanent(providerStore, ErrTypeNotFound, err)
	case errors.Is(err, store.ErrConflict):
		return permanent(providerStore, ErrTypeConflict, err)
	default:
		return transient(providerStore, ErrTypeUnavailable, fmt.Errorf("database: %w", err), 0)
	}
}
