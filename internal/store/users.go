package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// The placeholders a deleted user's customer row keeps instead of their
// email and name (the customers_deleted_scrubbed check names them too). The
// address is in .invalid (RFC 2606), so nothing can ever be sent to it.
const (
	ScrubbedEmail = "deleted-user@scrubbed.invalid"
	ScrubbedName  = "[deleted]"
)

// UpsertUser creates or updates the customer row of a Clerk user (the id is
// the Clerk user id) with their email and name, leaving the Stripe customer
// and the referral alone, and returns the row. Writing what is already there
// is a no-op. A tombstone (a user deleted before) is left as it is and
// returned with DeletedAt set: a deleted user stays deleted.
func (s *Store) UpsertUser(ctx context.Context, id, email, name string) (*Customer, error) {
	const q = `
INSERT INTO customers AS c (id, email, name) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name
WHERE c.deleted_at IS NULL AND (c.email, c.name) IS DISTINCT FROM (EXCLUDED.email, EXCLUDED.name)`
	if _, err := s.pool.Exec(ctx, q, id, strings.TrimSpace(email), strings.TrimSpace(name)); err != nil {
		return nil, fmt.Errorf("upsert user %s: %w", id, err)
	}
	return s.GetCustomer(ctx, id)
}

// ScrubCustomer makes the customer row of a deleted user a tombstone: email
// and name become ScrubbedEmail and ScrubbedName and deleted_at is set. The
// id stays, with the Stripe customer, the referral and the creation time,
// because orders, referrals and the reward ledger refer to them. A user
// with no row gets a tombstone row, so that a user.created arriving after
// the user.deleted cannot create one. Scrubbing again keeps the first
// deletion time.
func (s *Store) ScrubCustomer(ctx context.Context, id string) (*Customer, error) {
	const q = `
INSERT INTO customers AS c (id, email, name, deleted_at) VALUES ($1, $2, $3, now())
ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name,
    deleted_at = coalesce(c.deleted_at, EXCLUDED.deleted_at)
WHERE c.deleted_at IS NULL OR (c.email, c.name) IS DISTINCT FROM (EXCLUDED.email, EXCLUDED.name)`
	if _, err := s.pool.Exec(ctx, q, id, ScrubbedEmail, ScrubbedName); err != nil {
		return nil, fmt.Errorf("scrub customer %s: %w", id, err)
	}
	return s.GetCustomer(ctx, id)
}

// ShadowAliasesForEmails returns the ids of the live, unclaimed shadow
// aliases made for any of emails, compared case-insensitively, in id order.
func (s *Store) ShadowAliasesForEmails(ctx context.Context, emails []string) ([]string, error) {
	lowered := lowerEmails(emails)
	if len(lowered) == 0 {
		return nil, nil
	}
	const q = `
SELECT id FROM aliases
WHERE shadow AND lower(email) = ANY($1) AND customer_id IS NULL AND state NOT IN ('deleted', 'expired')
ORDER BY id`
	return s.collectIDs(ctx, "shadow aliases for the user's emails", q, lowered)
}

// AliasesOfUser returns the ids of every live alias a deletion of the user
// must delete, in id order: the customer's own aliases (creating included:
// their workflows delete them once created) and the unclaimed shadow
// aliases made for any of emails or for the address on the customer row.
func (s *Store) AliasesOfUser(ctx context.Context, customerID string, emails []string) ([]string, error) {
	const q = `
SELECT id FROM aliases
WHERE state NOT IN ('deleted', 'expired')
  AND (customer_id = $1
       OR (shadow AND customer_id IS NULL
           AND (lower(email) = ANY($2)
                OR lower(email) = (SELECT lower(email) FROM customers WHERE id = $1 AND deleted_at IS NULL))))
ORDER BY id`
	return s.collectIDs(ctx, "aliases of user "+customerID, q, customerID, lowerEmails(emails))
}

// ForwardableAliases returns the customer's created, live aliases (active
// or disabled), in id order: the ones whose SimpleLogin mailbox follows the
// customer's address. Aliases still being created are not among them.
func (s *Store) ForwardableAliases(ctx context.Context, customerID string) ([]Alias, error) {
	const q = `SELECT ` + aliasColumns + ` FROM aliases
WHERE customer_id = $1 AND state IN ('active', 'disabled') AND simplelogin_id IS NOT NULL
ORDER BY id`
	rows, err := s.pool.Query(ctx, q, customerID)
	if err != nil {
		return nil, fmt.Errorf("forwardable aliases of %s: %w", customerID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Alias, error) {
		var a Alias
		return a, scanAlias(row, &a)
	})
	if err != nil {
		return nil, fmt.Errorf("forwardable aliases of %s: %w", customerID, err)
	}
	return out, nil
}

// collectIDs runs q and collects the ids; op names it in errors (never an
// email, which would put personal data into logs and histories).
func (s *Store) collectIDs(ctx context.Context, op, q string, args ...any) ([]string, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return ids, nil
}

// lowerEmails trims and lowercases emails, dropping empty ones, as the
// aliases' email index compares them.
func lowerEmails(emails []string) []string {
	out := make([]string, 0, len(emails))
	for _, e := range emails {
		if e = strings.ToLower(strings.TrimSpace(e)); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// IsTombstone reports whether the customer is a deleted user's tombstone.
func (c *Customer) IsTombstone() bool { return c != nil && c.DeletedAt != nil }
