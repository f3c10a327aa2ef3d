package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Referral statuses.
const (
	ReferralPending    = "pending"
	ReferralHolding    = "holding"
	ReferralRewarded   = "rewarded"
	ReferralVoided     = "voided"
	ReferralIneligible = "ineligible"
)

// Referral is who referred whom, with what the reward needs to know.
type Referral struct {
	ID                       string
	ReferrerID               string
	ReferrerEmail            string
	ReferrerStripeCustomerID string
	ReferredID               string
	ReferredEmail            string
	Status                   string
	OrderID                  string
	// CreatedAt is when the referral was written: nothing crmflow paid
	// for it can be older.
	CreatedAt time.Time
}

// GetReferral returns the referral with both customers' emails.
func (s *Store) GetReferral(ctx context.Context, id string) (*Referral, error) {
	const q = `
SELECT r.id, r.referrer_id, rr.email, coalesce(rr.stripe_customer_id, ''), r.referred_id, rd.email,
       r.status, coalesce(r.order_id, ''), r.created_at
FROM referrals r
JOIN customers rr ON rr.id = r.referrer_id
JOIN customers rd ON rd.id = r.referred_id
WHERE r.id = $1`
	var r Referral
	err := s.pool.QueryRow(ctx, q, id).Scan(&r.ID, &r.ReferrerID, &r.ReferrerEmail, &r.ReferrerStripeCustomerID,
		&r.ReferredID, &r.ReferredEmail, &r.Status, &r.OrderID, &r.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("referral %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get referral %s: %w", id, err)
	}
	return &r, nil
}

// SetReferralStatus records where the reward stands and which order
// qualified it ("" keeps the order). A final status (rewarded, voided,
// ineligible) is never left again, except rewarded to voided by a clawback.
func (s *Store) SetReferralStatus(ctx context.Context, id, status, orderID string) error {
	const q = `
UPDATE referrals SET status = $2, order_id = coalesce(nullif($3, ''), order_id)
WHERE id = $1 AND (status IN ('pending', 'holding') OR status = $2
                   OR (status = 'rewarded' AND $2 = 'voided'))`
	tag, err := s.pool.Exec(ctx, q, id, status, orderID)
	if err != nil {
		return fmt.Errorf("set referral %s %s: %w", id, status, err)
	}
	if tag.RowsAffected() == 0 {
		r, err := s.GetReferral(ctx, id)
		if err != nil {
			return err
		}
		return fmt.Errorf("referral %s is %s, cannot become %s: %w", id, r.Status, status, ErrConflict)
	}
	return nil
}

// Reward is a referral reward in the ledger.
type Reward struct {
	ReferralID           string
	ReferrerID           string
	AmountCents          int64
	Currency             string
	BalanceTransactionID string
	Status               string
}

// RecordReward writes the reward to the ledger and marks the referral
// rewarded, in one transaction. The ledger allows one reward per referral:
// recording it again returns the reward already there, so a rerun can never
// pay twice.
func (s *Store) RecordReward(ctx context.Context, r Reward) (*Reward, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("record reward %s: %w", r.ReferralID, err)
	}
	defer tx.Rollback(ctx) // a no-op after Commit; on error it undoes everything
	const ins = `
INSERT INTO reward_ledger (referral_id, referrer_id, amount_cents, currency, stripe_balance_transaction_id)
VALUES ($1, $2, $3, $4, nullif($5, ''))
ON CONFLICT (referral_id) DO NOTHING`
	if _, err := tx.Exec(ctx, ins, r.ReferralID, r.ReferrerID, r.AmountCents, r.Currency, r.BalanceTransactionID); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return nil, fmt.Errorf("balance transaction %s is already recorded for another referral: %w", r.BalanceTransactionID, ErrConflict)
		}
		return nil, fmt.Errorf("record reward %s: %w", r.ReferralID, err)
	}
	const upd = `UPDATE referrals SET status = 'rewarded' WHERE id = $1 AND status IN ('pending', 'holding', 'rewarded')`
	if _, err := tx.Exec(ctx, upd, r.ReferralID); err != nil {
		return nil, fmt.Errorf("mark referral %s rewarded: %w", r.ReferralID, err)
	}
	var got Reward
	const sel = `
SELECT referral_id, referrer_id, amount_cents, currency, coalesce(stripe_balance_transaction_id, ''), status
FROM reward_ledger WHERE referral_id = $1`
	if err := tx.QueryRow(ctx, sel, r.ReferralID).Scan(&got.ReferralID, &got.ReferrerID, &got.AmountCents,
		&got.Currency, &got.BalanceTransactionID, &got.Status); err != nil {
		return nil, fmt.Errorf("read reward %s: %w", r.ReferralID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit reward %s: %w", r.ReferralID, err)
	}
	return &got, nil
}

// ReverseReward marks a paid reward clawed back and the referral voided.
func (s *Store) ReverseReward(ctx context.Context, referralID string) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("reverse reward %s: %w", referralID, err)
	}
	defer tx.Rollback(ctx) // a no-op after Commit; on error it undoes everything
	tag, err := tx.Exec(ctx, `UPDATE reward_ledger SET status = 'reversed' WHERE referral_id = $1`, referralID)
	if err != nil {
		return fmt.Errorf("reverse reward %s: %w", referralID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("reward for referral %s: %w", referralID, ErrNotFound)
	}
	if _, err := tx.Exec(ctx, `UPDATE referrals SET status = 'voided' WHERE id = $1`, referralID); err != nil {
		return fmt.Errorf("void referral %s: %w", referralID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit reversal %s: %w", referralID, err)
	}
	return nil
}

// RefundTarget is what a refunded PaymentIntent affects: the order it paid
// and, when that order qualified a referral, its reward.
type RefundTarget struct {
	// ReferralID is "" when the order qualified no referral.
	ReferralID         string
	OrderID            string
	ReferredCustomerID string
	OrderAmountCents   int64
}

// OrderForPaymentIntent finds the order the PaymentIntent paid (its
// confirmation records the PaymentIntent when it marks the order) and the
// referral it qualified, if it was the referred customer's first paid
// order. ok is false while no order records the PaymentIntent.
func (s *Store) OrderForPaymentIntent(ctx context.Context, paymentIntentID string) (RefundTarget, bool, error) {
	const q = `SELECT id, customer_id, amount_cents FROM orders WHERE payment_intent_id = $1`
	var t RefundTarget
	err := s.pool.QueryRow(ctx, q, paymentIntentID).Scan(&t.OrderID, &t.ReferredCustomerID, &t.OrderAmountCents)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, false, nil
	}
	if err != nil {
		return t, false, fmt.Errorf("order for payment intent %s: %w", paymentIntentID, err)
	}
	if t.ReferralID, err = s.ReferralForFirstPaidOrder(ctx, t.OrderID); err != nil {
		return t, false, err
	}
	return t, true, nil
}

// BackfillTarget is what a reward backfill starts with: the referral's
// referred customer and their first paid order. ErrConflict when that
// customer has not paid an order yet.
func (s *Store) BackfillTarget(ctx context.Context, referralID string) (RefundTarget, error) {
	r, err := s.GetReferral(ctx, referralID)
	if err != nil {
		return RefundTarget{}, err
	}
	orderID, err := s.FirstPaidOrder(ctx, r.ReferredID)
	if err != nil {
		return RefundTarget{}, err
	}
	if orderID == "" {
		return RefundTarget{}, fmt.Errorf("referral %s: the referred customer has no paid order yet: %w", referralID, ErrConflict)
	}
	return RefundTarget{ReferralID: referralID, OrderID: orderID, ReferredCustomerID: r.ReferredID}, nil
}

// FirstPaidOrder returns the customer's first paid order id, or "". An
// order was paid once it was confirmed, whatever a refund made of it since.
func (s *Store) FirstPaidOrder(ctx context.Context, customerID string) (string, error) {
	const q = `
SELECT id FROM orders WHERE customer_id = $1 AND confirmed_at IS NOT NULL
ORDER BY confirmed_at, id LIMIT 1`
	var id string
	err := s.pool.QueryRow(ctx, q, customerID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("first paid order of %s: %w", customerID, err)
	}
	return id, nil
}
