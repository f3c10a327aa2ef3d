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

// orderStore is what the order-confirmation workflow's activities need of
// the CRM database: an order, its outcome, and the referral its first
// payment qualifies.
type orderStore interface {
	GetOrder(ctx context.Context, id string) (*store.Order, error)
	SetOrderOutcome(ctx context.Context, id, status, paymentIntentID string) (*store.Order, error)
	ReferralForFirstPaidOrder(ctx context.Context, orderID string) (string, error)
}

var _ orderStore = (*store.Store)(nil)

// LoadOrderInput names the order to load.
type LoadOrderInput struct {
	OrderID string
}

// Order is what the order-confirmation workflow needs of an order.
type Order struct {
	ID          string
	CustomerID  string
	AmountCents int64
	Currency    string
	Status      string
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
	OrderID         string
	Status          string
	PaymentIntentID string
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

// FindReferralInput names a confirmed order.
type FindReferralInput struct {
	OrderID string
}

// FindReferralOutput holds the referral the order qualifies, if any.
type FindReferralOutput struct {
	// ReferralID is "" unless the customer was referred and this is their
	// first paid order.
	ReferralID string
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
