package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Refund is what a refund made of an order.
type Refund struct {
	OrderID       string
	CustomerID    string
	AmountCents   int64
	Currency      string
	Status        string
	RefundedCents int64
}

// MarkOrderRefunded records a charge.refunded event on the order the
// PaymentIntent paid: refunded_cents becomes the charge's cumulative
// amount_refunded (it only grows, so events in any order converge), and the
// order becomes refunded when the charge is fully refunded, else
// partially_refunded. A fully refunded order stays so. An order not decided
// yet (pending) is ErrConflict: its PaymentIntent cannot be known.
func (s *Store) MarkOrderRefunded(ctx context.Context, id string, amountRefundedCents int64, fully bool) (*Refund, error) {
	const q = `
UPDATE orders SET
    refunded_cents = greatest(refunded_cents, $2),
    status = CASE WHEN status = 'refunded' OR $3 OR greatest(refunded_cents, $2) >= amount_cents
                  THEN 'refunded' ELSE 'partially_refunded' END
WHERE id = $1 AND status <> 'pending'
RETURNING id, customer_id, amount_cents, currency, status, refunded_cents`
	var r Refund
	err := s.pool.QueryRow(ctx, q, id, amountRefundedCents, fully).
		Scan(&r.OrderID, &r.CustomerID, &r.AmountCents, &r.Currency, &r.Status, &r.RefundedCents)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, getErr := s.GetOrder(ctx, id); getErr != nil {
			return nil, getErr
		}
		return nil, fmt.Errorf("order %s is still pending, cannot be refunded: %w", id, ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("mark order %s refunded: %w", id, err)
	}
	return &r, nil
}

// RecordLatePayment notes on an order that ended expired or payment_failed
// the PaymentIntent that paid it after all, so a refund of that payment
// finds the order. The order keeps its status until an operator decides;
// a PaymentIntent recorded already is kept.
func (s *Store) RecordLatePayment(ctx context.Context, id, paymentIntentID string) (*Order, error) {
	const q = `
UPDATE orders SET payment_intent_id = $2
WHERE id = $1 AND status IN ('expired', 'payment_failed') AND payment_intent_id IS NULL`
	if _, err := s.pool.Exec(ctx, q, id, paymentIntentID); err != nil {
		return nil, fmt.Errorf("record late payment %s of order %s: %w", paymentIntentID, id, err)
	}
	return s.GetOrder(ctx, id)
}

// ConfirmLatePayment reopens an order that ended expired or payment_failed
// and confirms it with the PaymentIntent that paid it late, on an
// operator's word. Confirming it again with the same PaymentIntent is a
// no-op; any other status is ErrConflict.
func (s *Store) ConfirmLatePayment(ctx context.Context, id, paymentIntentID string) (*Order, error) {
	const q = `
UPDATE orders SET status = 'confirmed', confirmed_at = now(), payment_intent_id = $2
WHERE id = $1 AND status IN ('expired', 'payment_failed')
  AND (payment_intent_id IS NULL OR payment_intent_id = $2)`
	tag, err := s.pool.Exec(ctx, q, id, paymentIntentID)
	if err != nil {
		return nil, fmt.Errorf("confirm late payment of order %s: %w", id, err)
	}
	o, err := s.GetOrder(ctx, id)
	if err != nil {
		return nil, err
	}
	if tag.RowsAffected() == 0 && (o.Status != OrderConfirmed || o.PaymentIntentID != paymentIntentID) {
		return o, fmt.Errorf("order %s is %s (payment intent %q), cannot be confirmed with %s: %w",
			id, o.Status, o.PaymentIntentID, paymentIntentID, ErrConflict)
	}
	return o, nil
}
