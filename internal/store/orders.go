package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Order statuses. A confirmation moves pending to one of the others; a
// refund moves a decided order to refunded or partially_refunded; an
// operator's retry of a paid-after-close dead letter reopens an expired or
// payment_failed order and confirms it.
const (
	OrderPending           = "pending"
	OrderConfirmed         = "confirmed"
	OrderPaymentFailed     = "payment_failed"
	OrderMismatch          = "mismatch"
	OrderExpired           = "expired"
	OrderRefunded          = "refunded"
	OrderPartiallyRefunded = "partially_refunded"
)

// Order is a CRM order and its payment outcome.
type Order struct {
	ID            string
	CustomerID    string
	CustomerEmail string
	// CustomerStripeID is the customer's Stripe customer id
	// (customers.stripe_customer_id), "" when they have none: a payment
	// for the order must come from it.
	CustomerStripeID string
	AmountCents      int64
	Currency         string
	Status           string
	PaymentIntentID  string
	ConfirmedAt      *time.Time
}

// GetOrder returns the order with its customer's email and Stripe customer.
func (s *Store) GetOrder(ctx context.Context, id string) (*Order, error) {
	const q = `
SELECT o.id, o.customer_id, c.email, coalesce(c.stripe_customer_id, ''), o.amount_cents, o.currency, o.status,
       coalesce(o.payment_intent_id, ''), o.confirmed_at
FROM orders o JOIN customers c ON c.id = o.customer_id
WHERE o.id = $1`
	var o Order
	err := s.pool.QueryRow(ctx, q, id).Scan(&o.ID, &o.CustomerID, &o.CustomerEmail, &o.CustomerStripeID, &o.AmountCents,
		&o.Currency, &o.Status, &o.PaymentIntentID, &o.ConfirmedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("order %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get order %s: %w", id, err)
	}
	return &o, nil
}

// ExistingOrders returns which of ids are orders (each found id maps to
// true), in one query.
func (s *Store) ExistingOrders(ctx context.Context, ids []string) (map[string]bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM orders WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("look up %d orders: %w", len(ids), err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("look up %d orders: %w", len(ids), err)
	}
	out := make(map[string]bool, len(found))
	for _, id := range found {
		out[id] = true
	}
	return out, nil
}

// SetOrderOutcome moves a pending order to its final status. Setting the same
// outcome again is a no-op, so a retried activity is harmless; changing a
// final status to another one is ErrConflict, so state never goes backwards.
func (s *Store) SetOrderOutcome(ctx context.Context, id, status, paymentIntentID string) (*Order, error) {
	const q = `
UPDATE orders
SET status = $2,
    payment_intent_id = coalesce(nullif($3, ''), payment_intent_id),
    confirmed_at = CASE WHEN $2 = 'confirmed' THEN now() ELSE confirmed_at END
WHERE id = $1 AND status = 'pending'`
	tag, err := s.pool.Exec(ctx, q, id, status, paymentIntentID)
	if err != nil {
		return nil, fmt.Errorf("set order %s %s: %w", id, status, err)
	}
	o, err := s.GetOrder(ctx, id)
	if err != nil {
		return nil, err
	}
	if tag.RowsAffected() == 0 && o.Status != status {
		return o, fmt.Errorf("order %s is %s, cannot become %s: %w", id, o.Status, status, ErrConflict)
	}
	return o, nil
}

// ReferralForFirstPaidOrder returns the referral of the order's customer when
// this order is their first paid one, and "" otherwise. An order was paid
// once it was confirmed (confirmed_at), whatever a refund made of it since:
// a refund voids the reward, it does not pass it to a later order.
func (s *Store) ReferralForFirstPaidOrder(ctx context.Context, orderID string) (string, error) {
	const q = `
SELECT r.id
FROM orders o
JOIN referrals r ON r.referred_id = o.customer_id
WHERE o.id = $1 AND o.confirmed_at IS NOT NULL
  AND NOT EXISTS (
      SELECT 1 FROM orders earlier
      WHERE earlier.customer_id = o.customer_id AND earlier.confirmed_at IS NOT NULL
        AND earlier.id <> o.id
        AND (earlier.confirmed_at, earlier.id) < (o.confirmed_at, o.id))`
	var id string
	err := s.pool.QueryRow(ctx, q, orderID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("referral for order %s: %w", orderID, err)
	}
	return id, nil
}

// Customer is a CRM customer.
type Customer struct {
	ID, Email, Name, StripeCustomerID, ReferredBy string
	// DeletedAt is when the Clerk user was deleted: the row is a tombstone
	// with Email and Name scrubbed (ScrubbedEmail, ScrubbedName); nil for a
	// live customer. Written by ScrubCustomer only.
	DeletedAt *time.Time
}

// customerColumns are the columns scanCustomer reads.
const customerColumns = `id, email, name, coalesce(stripe_customer_id, ''), coalesce(referred_by, ''), deleted_at`

func scanCustomer(row pgx.Row, c *Customer) error {
	return row.Scan(&c.ID, &c.Email, &c.Name, &c.StripeCustomerID, &c.ReferredBy, &c.DeletedAt)
}

// GetCustomer returns one customer, a tombstone included (DeletedAt set).
func (s *Store) GetCustomer(ctx context.Context, id string) (*Customer, error) {
	const q = `SELECT ` + customerColumns + ` FROM customers WHERE id = $1`
	var c Customer
	err := scanCustomer(s.pool.QueryRow(ctx, q, id), &c)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("customer %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get customer %s: %w", id, err)
	}
	return &c, nil
}

// UpsertCustomer creates or updates a customer (seed data, demo, tests).
func (s *Store) UpsertCustomer(ctx context.Context, c Customer) error {
	const q = `
INSERT INTO customers (id, email, name, stripe_customer_id, referred_by)
VALUES ($1, $2, $3, nullif($4, ''), nullif($5, ''))
ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name,
    stripe_customer_id = EXCLUDED.stripe_customer_id, referred_by = EXCLUDED.referred_by`
	if _, err := s.pool.Exec(ctx, q, c.ID, c.Email, c.Name, c.StripeCustomerID, c.ReferredBy); err != nil {
		return fmt.Errorf("upsert customer %s: %w", c.ID, err)
	}
	return nil
}

// InsertOrder creates a pending order; an existing order is left unchanged.
func (s *Store) InsertOrder(ctx context.Context, o Order) error {
	const q = `
INSERT INTO orders (id, customer_id, amount_cents, currency)
VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING`
	if _, err := s.pool.Exec(ctx, q, o.ID, o.CustomerID, o.AmountCents, o.Currency); err != nil {
		return fmt.Errorf("insert order %s: %w", o.ID, err)
	}
	return nil
}

// InsertReferral records that referrerID referred referredID.
func (s *Store) InsertReferral(ctx context.Context, id, referrerID, referredID string) error {
	const q = `
INSERT INTO referrals (id, referrer_id, referred_id) VALUES ($1, $2, $3)
ON CONFLICT (id) DO NOTHING`
	if _, err := s.pool.Exec(ctx, q, id, referrerID, referredID); err != nil {
		return fmt.Errorf("insert referral %s: %w", id, err)
	}
	return nil
}
