package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Email statuses (emails.status). A send starts sending and becomes sent
// (or suppressed, when nothing was sent); Resend's webhooks then move it
// forward through EmailStatusRank, never back.
const (
	EmailSending         = "sending"
	EmailSent            = "sent"
	EmailSuppressed      = "suppressed"
	EmailDeliveryDelayed = "delivery_delayed"
	EmailDelivered       = "delivered"
	EmailBounced         = "bounced"
	EmailComplained      = "complained"
)

// emailRanks orders the statuses webhook events may set: an event whose
// status ranks at or below the row's is stale (Svix does not promise
// order, so a delivery_delayed may arrive after the delivered it preceded).
var emailRanks = []string{EmailSending, EmailSent, EmailDeliveryDelayed, EmailDelivered, EmailBounced, EmailComplained}

// EmailStatusRank is where status stands among emailRanks; -1 for
// suppressed and unknown statuses, which no event moves.
func EmailStatusRank(status string) int {
	for i, s := range emailRanks {
		if s == status {
			return i
		}
	}
	return -1
}

// Email is one row of the emails table: a templated email crmflow sent, or
// skipped because its address is suppressed.
type Email struct {
	ID              int64      `json:"id"`
	IdempotencyKey  string     `json:"idempotency_key"`
	Recipient       string     `json:"recipient"`
	Template        string     `json:"template"`
	TemplateVersion string     `json:"template_version"`
	BusinessKey     string     `json:"business_key"`
	Subject         string     `json:"subject"`
	Status          string     `json:"status"`
	StatusDetail    string     `json:"status_detail,omitempty"`
	ProviderID      string     `json:"provider_id,omitempty"`
	Console         bool       `json:"console"`
	CreatedAt       time.Time  `json:"created_at"`
	SentAt          *time.Time `json:"sent_at,omitempty"`
	StatusAt        time.Time  `json:"status_at"`
}

const emailColumns = `id, idempotency_key, recipient, template, template_version, business_key, subject, status,
status_detail, coalesce(provider_id, ''), console, created_at, sent_at, status_at`

func scanEmail(row pgx.Row) (*Email, error) {
	var e Email
	err := row.Scan(&e.ID, &e.IdempotencyKey, &e.Recipient, &e.Template, &e.TemplateVersion, &e.BusinessKey, &e.Subject,
		&e.Status, &e.StatusDetail, &e.ProviderID, &e.Console, &e.CreatedAt, &e.SentAt, &e.StatusAt)
	return &e, err
}

// BeginEmail records a send before it is made, and returns the row that
// decides it. A new row is suppressed when its recipient is on
// email_suppressions (status_detail says why) and sending otherwise, in
// one statement, so a suppression and a send cannot interleave. An
// existing row of the idempotency key (a retried attempt) is returned as
// it stands: a send under way is finished, never re-decided.
func (s *Store) BeginEmail(ctx context.Context, e Email) (*Email, error) {
	const q = `
WITH sup AS (SELECT reason, detail FROM email_suppressions WHERE address = lower(btrim($2)))
INSERT INTO emails (idempotency_key, recipient, template, template_version, business_key, subject, status, status_detail)
SELECT $1, $2, $3, $4, $5, $6,
       CASE WHEN EXISTS (SELECT 1 FROM sup) THEN 'suppressed' ELSE 'sending' END,
       coalesce((SELECT 'address suppressed after a ' || reason || coalesce(nullif(': ' || detail, ': '), '') FROM sup), '')
ON CONFLICT (idempotency_key) DO UPDATE SET idempotency_key = EXCLUDED.idempotency_key
RETURNING ` + emailColumns
	got, err := scanEmail(s.pool.QueryRow(ctx, q, e.IdempotencyKey, e.Recipient, e.Template, e.TemplateVersion,
		e.BusinessKey, e.Subject))
	if err != nil {
		return nil, fmt.Errorf("begin email %s: %w", e.IdempotencyKey, err)
	}
	return got, nil
}

// MarkEmailSent records Resend's id of the email a sending row stood for.
// Recording the same id again is a no-op; another id for the same key is
// ErrConflict (Resend answered one idempotency key with two emails).
func (s *Store) MarkEmailSent(ctx context.Context, idempotencyKey, providerID string, console bool) (*Email, error) {
	const q = `
UPDATE emails SET provider_id = $2, console = $3, sent_at = coalesce(sent_at, now()),
    status = CASE WHEN status = 'sending' THEN 'sent' ELSE status END,
    status_at = CASE WHEN status = 'sending' THEN now() ELSE status_at END
WHERE idempotency_key = $1 AND (provider_id IS NULL OR provider_id = $2)
RETURNING ` + emailColumns
	got, err := scanEmail(s.pool.QueryRow(ctx, q, idempotencyKey, providerID, console))
	if errors.Is(err, pgx.ErrNoRows) {
		cur, getErr := s.EmailByKey(ctx, idempotencyKey)
		if getErr != nil {
			return nil, getErr
		}
		return nil, fmt.Errorf("email %s was sent as %s, not %s: %w", idempotencyKey, cur.ProviderID, providerID, ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("mark email %s sent: %w", idempotencyKey, err)
	}
	return got, nil
}

// EmailByKey returns the email recorded under an idempotency key.
func (s *Store) EmailByKey(ctx context.Context, idempotencyKey string) (*Email, error) {
	e, err := scanEmail(s.pool.QueryRow(ctx, `SELECT `+emailColumns+` FROM emails WHERE idempotency_key = $1`, idempotencyKey))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("email %s: %w", idempotencyKey, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get email %s: %w", idempotencyKey, err)
	}
	return e, nil
}

// EmailsOf lists the emails sent for a business key, oldest first.
func (s *Store) EmailsOf(ctx context.Context, businessKey string) ([]Email, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+emailColumns+` FROM emails WHERE business_key = $1 ORDER BY id`, businessKey)
	if err != nil {
		return nil, fmt.Errorf("emails of %s: %w", businessKey, err)
	}
	defer rows.Close()
	out := []Email{}
	for rows.Next() {
		e, err := scanEmail(rows)
		if err != nil {
			return nil, fmt.Errorf("scan email: %w", err)
		}
		out = append(out, *e)
	}
	return out, rows.Err()
}

// EmailEvent is what a Resend webhook event says about one email.
type EmailEvent struct {
	// ProviderID is Resend's email id.
	ProviderID string
	// Status is the status the event moves the email to (EmailDelivered…).
	Status string
	// Detail says more (a bounce's type and message).
	Detail string
	// At is when Resend emitted the event; zero means now.
	At time.Time
	// Suppress, when set, puts each of Addresses on email_suppressions for
	// this reason ("bounce" or "complaint").
	Suppress  string
	Addresses []string
	// EventID is the webhook delivery's id, kept with a suppression.
	EventID string
}

// EmailEventResult is what applying an event found and did.
type EmailEventResult struct {
	// Email is the row of ProviderID, nil when crmflow has none (yet).
	Email *Email
	// Changed is true when the event moved the row's status.
	Changed bool
	// Suppressed lists the addresses the event newly suppressed.
	Suppressed []string
}

// ApplyEmailEvent records an event in one transaction: the addresses it
// suppresses (an address already suppressed keeps its first reason) and
// the email's new status, when it ranks above the row's (EmailStatusRank),
// so repeats and stale events change nothing. An event for an email
// crmflow has no row of is still a fact about its addresses: they are
// suppressed, and the result's Email is nil.
func (s *Store) ApplyEmailEvent(ctx context.Context, ev EmailEvent) (EmailEventResult, error) {
	var res EmailEventResult
	if EmailStatusRank(ev.Status) < 0 {
		return res, fmt.Errorf("email event status %q: %w", ev.Status, ErrConflict)
	}
	at := ev.At
	if at.IsZero() {
		at = time.Now()
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if ev.Suppress != "" {
			for _, addr := range ev.Addresses {
				tag, err := tx.Exec(ctx, `
INSERT INTO email_suppressions (address, reason, detail, email_id, event_id)
VALUES (lower(btrim($1)), $2, $3, nullif($4, ''), nullif($5, ''))
ON CONFLICT (address) DO NOTHING`, addr, ev.Suppress, ev.Detail, ev.ProviderID, ev.EventID)
				if err != nil {
					return fmt.Errorf("suppress %s: %w", addr, err)
				}
				if tag.RowsAffected() == 1 {
					res.Suppressed = append(res.Suppressed, addr)
				}
			}
		}
		const q = `
UPDATE emails SET status = $2, status_detail = $3, status_at = $4
WHERE provider_id = $1
  AND array_position($5::text[], status) < array_position($5::text[], $2::text)
RETURNING ` + emailColumns
		e, err := scanEmail(tx.QueryRow(ctx, q, ev.ProviderID, ev.Status, ev.Detail, at, emailRanks))
		switch {
		case err == nil:
			res.Email, res.Changed = e, true
			return nil
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("set email %s %s: %w", ev.ProviderID, ev.Status, err)
		}
		e, err = scanEmail(tx.QueryRow(ctx, `SELECT `+emailColumns+` FROM emails WHERE provider_id = $1`, ev.ProviderID))
		switch {
		case err == nil:
			res.Email = e
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("get email %s: %w", ev.ProviderID, err)
		}
		return nil
	})
	if err != nil {
		return EmailEventResult{}, fmt.Errorf("apply email event %s: %w", ev.ProviderID, err)
	}
	return res, nil
}
