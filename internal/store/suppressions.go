package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Reasons an address is suppressed (email_suppressions.reason).
const (
	SuppressedBounce    = "bounce"
	SuppressedComplaint = "complaint"
)

// Suppression is an address crmflow sends no more email to, and why.
type Suppression struct {
	Address string `json:"address"`
	// Reason is SuppressedBounce or SuppressedComplaint.
	Reason string `json:"reason"`
	// Detail is the bounce's type and message, when there was one.
	Detail string `json:"detail,omitempty"`
	// EmailID is Resend's id of the email that bounced or was complained
	// about; EventID the webhook delivery that said so.
	EmailID   string    `json:"email_id,omitempty"`
	EventID   string    `json:"event_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

const suppressionColumns = `address, reason, detail, coalesce(email_id, ''), coalesce(event_id, ''), created_at`

func scanSuppression(row pgx.Row) (*Suppression, error) {
	var s Suppression
	err := row.Scan(&s.Address, &s.Reason, &s.Detail, &s.EmailID, &s.EventID, &s.CreatedAt)
	return &s, err
}

// NormalizeAddress is how email_suppressions keys an address: trimmed and
// lower-cased, as the customers table's email index compares them.
func NormalizeAddress(address string) string { return strings.ToLower(strings.TrimSpace(address)) }

// ListSuppressions lists suppressed addresses, newest first.
func (s *Store) ListSuppressions(ctx context.Context, limit int) ([]Suppression, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+suppressionColumns+` FROM email_suppressions
ORDER BY created_at DESC, address LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list email suppressions: %w", err)
	}
	defer rows.Close()
	out := []Suppression{}
	for rows.Next() {
		sup, err := scanSuppression(rows)
		if err != nil {
			return nil, fmt.Errorf("scan email suppression: %w", err)
		}
		out = append(out, *sup)
	}
	return out, rows.Err()
}

// GetSuppression returns the suppression of an address (in any case).
func (s *Store) GetSuppression(ctx context.Context, address string) (*Suppression, error) {
	sup, err := scanSuppression(s.pool.QueryRow(ctx, `SELECT `+suppressionColumns+` FROM email_suppressions WHERE address = $1`,
		NormalizeAddress(address)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("email suppression %s: %w", address, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get email suppression %s: %w", address, err)
	}
	return sup, nil
}

// Suppress puts an address on email_suppressions (seed data, tests, and
// operators' own decisions); an address already there keeps its first
// reason.
func (s *Store) Suppress(ctx context.Context, sup Suppression) error {
	const q = `
INSERT INTO email_suppressions (address, reason, detail, email_id, event_id)
VALUES ($1, $2, $3, nullif($4, ''), nullif($5, '')) ON CONFLICT (address) DO NOTHING`
	if _, err := s.pool.Exec(ctx, q, NormalizeAddress(sup.Address), sup.Reason, sup.Detail, sup.EmailID, sup.EventID); err != nil {
		return fmt.Errorf("suppress %s: %w", sup.Address, err)
	}
	return nil
}

// RemoveSuppression takes an address off email_suppressions, so crmflow
// sends to it again, and returns what was removed; an address that is not
// suppressed is ErrNotFound.
func (s *Store) RemoveSuppression(ctx context.Context, address string) (*Suppression, error) {
	sup, err := scanSuppression(s.pool.QueryRow(ctx, `DELETE FROM email_suppressions WHERE address = $1 RETURNING `+suppressionColumns,
		NormalizeAddress(address)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("email suppression %s: %w", address, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("remove email suppression %s: %w", address, err)
	}
	return sup, nil
}

// CustomerEmailStatus is a customer's row of the customer_email_status
// view: whether crmflow still sends them email, and if not why.
type CustomerEmailStatus struct {
	CustomerID  string       `json:"customer_id"`
	Email       string       `json:"email"`
	Suppression *Suppression `json:"suppression,omitempty"`
}

// CustomerEmailStatus reads a customer's row of customer_email_status.
func (s *Store) CustomerEmailStatus(ctx context.Context, customerID string) (*CustomerEmailStatus, error) {
	const q = `
SELECT v.customer_id, v.email, v.suppressed, coalesce(v.suppression_reason, ''), coalesce(v.suppression_detail, ''),
       v.suppressed_at
FROM customer_email_status v WHERE v.customer_id = $1`
	var (
		st         CustomerEmailStatus
		suppressed bool
		reason     string
		detail     string
		at         *time.Time
	)
	err := s.pool.QueryRow(ctx, q, customerID).Scan(&st.CustomerID, &st.Email, &suppressed, &reason, &detail, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("customer %s: %w", customerID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("customer %s email status: %w", customerID, err)
	}
	if suppressed && at != nil {
		st.Suppression = &Suppression{Address: NormalizeAddress(st.Email), Reason: reason, Detail: detail, CreatedAt: *at}
	}
	return &st, nil
}
