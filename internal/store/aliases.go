package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Alias states, as the aliases table's check constraint spells them.
// Creating, active and disabled are live; deleted and expired are final.
const (
	AliasCreating = "creating"
	AliasActive   = "active"
	AliasDisabled = "disabled"
	AliasDeleted  = "deleted"
	AliasExpired  = "expired"
)

// Alias is an email alias managed at SimpleLogin. Once deleted or expired,
// CustomerID, Email, AliasEmail and ExpiresAt are empty: the row keeps only
// what the audit needs.
type Alias struct {
	ID string
	// CustomerID is the owner; "" for a shadow alias not yet claimed.
	CustomerID string
	// Email is the address a shadow alias was made for before sign-up; a
	// customer signing up with it claims the alias.
	Email string
	// AliasEmail is the alias address, "" until SimpleLogin created it.
	AliasEmail string
	// SimpleLoginID is SimpleLogin's alias id, 0 until created.
	SimpleLoginID int64
	// Mode is random or custom.
	Mode  string
	State string
	// Shadow is true for an alias made before its owner signed up; it stays
	// true after a claim, as a record of how the alias began.
	Shadow bool
	// ExpiresAt is when an unclaimed shadow alias expires; nil otherwise.
	ExpiresAt *time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

const aliasColumns = `id, coalesce(customer_id, ''), coalesce(email, ''), coalesce(alias_email, ''),
       coalesce(simplelogin_id, 0), mode, state, shadow, expires_at, created_at, updated_at`

func scanAlias(row pgx.Row, a *Alias) error {
	return row.Scan(&a.ID, &a.CustomerID, &a.Email, &a.AliasEmail, &a.SimpleLoginID, &a.Mode, &a.State,
		&a.Shadow, &a.ExpiresAt, &a.CreatedAt, &a.UpdatedAt)
}

// ended reports whether state is final.
func ended(state string) bool { return state == AliasDeleted || state == AliasExpired }

// UpsertCreatingAlias records an alias about to be created at SimpleLogin.
// A shadow alias (no CustomerID) needs Email. Recording it again while it is
// still creating updates the owner fields (writing only when they differ), so
// a retried activity is harmless;
// an alias already live is returned as it is, and one already deleted or
// expired is ErrConflict: alias ids are never reused. An unknown customer
// is ErrNotFound.
func (s *Store) UpsertCreatingAlias(ctx context.Context, a Alias) (*Alias, error) {
	if a.CustomerID == "" && strings.TrimSpace(a.Email) == "" {
		return nil, fmt.Errorf("record alias %s: a shadow alias needs the email it is made for", a.ID)
	}
	const q = `
INSERT INTO aliases (id, customer_id, email, mode, shadow, expires_at)
VALUES ($1, nullif($2, ''), nullif($3, ''), $4, $2 = '', $5)
ON CONFLICT (id) DO UPDATE SET customer_id = EXCLUDED.customer_id, email = EXCLUDED.email,
    mode = EXCLUDED.mode, shadow = EXCLUDED.shadow, expires_at = EXCLUDED.expires_at
WHERE aliases.state = 'creating'
  AND (aliases.customer_id, aliases.email, aliases.mode, aliases.shadow, aliases.expires_at)
      IS DISTINCT FROM (EXCLUDED.customer_id, EXCLUDED.email, EXCLUDED.mode, EXCLUDED.shadow, EXCLUDED.expires_at)`
	if _, err := s.pool.Exec(ctx, q, a.ID, a.CustomerID, strings.TrimSpace(a.Email), a.Mode, a.ExpiresAt); err != nil {
		return nil, aliasWriteError(err, "record alias "+a.ID, a.CustomerID)
	}
	got, err := s.GetAlias(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	if ended(got.State) {
		return got, fmt.Errorf("alias %s is already %s; alias ids are not reused: %w", a.ID, got.State, ErrConflict)
	}
	return got, nil
}

// MarkAliasActive records that SimpleLogin created the alias. Marking it
// again with the same SimpleLogin id is a no-op, whatever state it moved to
// since; a different SimpleLogin id, an address or id another alias holds,
// or an ended alias is ErrConflict.
func (s *Store) MarkAliasActive(ctx context.Context, id string, simpleLoginID int64, aliasEmail string) (*Alias, error) {
	const q = `
UPDATE aliases SET state = 'active', simplelogin_id = $2, alias_email = $3
WHERE id = $1 AND state = 'creating'`
	tag, err := s.pool.Exec(ctx, q, id, simpleLoginID, aliasEmail)
	if err != nil {
		return nil, aliasWriteError(err, "mark alias "+id+" active", "")
	}
	got, err := s.GetAlias(ctx, id)
	if err != nil {
		return nil, err
	}
	if tag.RowsAffected() == 0 && (ended(got.State) || got.SimpleLoginID != simpleLoginID) {
		return got, fmt.Errorf("alias %s is %s with SimpleLogin id %d, cannot become active with %d: %w",
			id, got.State, got.SimpleLoginID, simpleLoginID, ErrConflict)
	}
	return got, nil
}

// SetAliasState moves a live, created alias between active and disabled.
// Setting the state it has is a no-op; an alias still creating or already
// ended is ErrConflict.
func (s *Store) SetAliasState(ctx context.Context, id, state string) (*Alias, error) {
	if state != AliasActive && state != AliasDisabled {
		return nil, fmt.Errorf("set alias %s: state %q is neither %s nor %s", id, state, AliasActive, AliasDisabled)
	}
	const q = `UPDATE aliases SET state = $2 WHERE id = $1 AND state IN ('active', 'disabled') AND state <> $2`
	if _, err := s.pool.Exec(ctx, q, id, state); err != nil {
		return nil, fmt.Errorf("set alias %s %s: %w", id, state, err)
	}
	got, err := s.GetAlias(ctx, id)
	if err != nil {
		return nil, err
	}
	if got.State != state {
		return got, fmt.Errorf("alias %s is %s, cannot become %s: %w", id, got.State, state, ErrConflict)
	}
	return got, nil
}

// ClaimAlias gives a live alias its customer and cancels a shadow alias's
// expiry. Claiming it again for the same customer is a no-op; an alias
// another customer owns, or an ended one, is ErrConflict; an unknown
// customer is ErrNotFound.
func (s *Store) ClaimAlias(ctx context.Context, id, customerID string) (*Alias, error) {
	if customerID == "" {
		return nil, fmt.Errorf("claim alias %s: customer id is empty", id)
	}
	const q = `
UPDATE aliases SET customer_id = $2, expires_at = NULL
WHERE id = $1 AND state NOT IN ('deleted', 'expired')
  AND (customer_id IS NULL OR customer_id = $2)
  AND (customer_id IS DISTINCT FROM $2 OR expires_at IS NOT NULL)`
	if _, err := s.pool.Exec(ctx, q, id, customerID); err != nil {
		return nil, aliasWriteError(err, "claim alias "+id, customerID)
	}
	got, err := s.GetAlias(ctx, id)
	if err != nil {
		return nil, err
	}
	if got.CustomerID != customerID {
		owner := got.CustomerID
		if owner == "" {
			owner = "nobody"
		}
		return got, fmt.Errorf("alias %s is %s and owned by %s, cannot be claimed by %s: %w",
			id, got.State, owner, customerID, ErrConflict)
	}
	return got, nil
}

// MarkAliasDeleted ends an alias as deleted or expired and scrubs it: the
// address, the shadow owner's email, the customer and the expiry are
// cleared, leaving the id, SimpleLogin id, mode, state and timestamps for
// the audit (a table constraint enforces the scrub). An alias already ended
// is left as it is, its first end state kept, so a retry is a no-op.
func (s *Store) MarkAliasDeleted(ctx context.Context, id, state string) (*Alias, error) {
	if !ended(state) {
		return nil, fmt.Errorf("end alias %s: state %q is neither %s nor %s", id, state, AliasDeleted, AliasExpired)
	}
	const q = `
UPDATE aliases SET state = $2, customer_id = NULL, email = NULL, alias_email = NULL, expires_at = NULL
WHERE id = $1 AND state NOT IN ('deleted', 'expired')`
	if _, err := s.pool.Exec(ctx, q, id, state); err != nil {
		return nil, fmt.Errorf("mark alias %s %s: %w", id, state, err)
	}
	return s.GetAlias(ctx, id)
}

// GetAlias returns the alias; an unknown id is ErrNotFound.
func (s *Store) GetAlias(ctx context.Context, id string) (*Alias, error) {
	var a Alias
	err := scanAlias(s.pool.QueryRow(ctx, `SELECT `+aliasColumns+` FROM aliases WHERE id = $1`, id), &a)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("alias %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get alias %s: %w", id, err)
	}
	return &a, nil
}

// AliasesOfCustomer returns the ids of the customer's live aliases (creating
// included: their workflows delete them once created), in id order. Clerk's
// user.deleted signals a delete to each.
func (s *Store) AliasesOfCustomer(ctx context.Context, customerID string) ([]string, error) {
	const q = `
SELECT id FROM aliases
WHERE customer_id = $1 AND state NOT IN ('deleted', 'expired')
ORDER BY id`
	return s.aliasIDs(ctx, "aliases of customer "+customerID, q, customerID)
}

// ShadowAliasesForEmail returns the ids of the live, unclaimed shadow
// aliases made for email, compared case-insensitively, in id order. Clerk's
// user.created signals a claim to each.
func (s *Store) ShadowAliasesForEmail(ctx context.Context, email string) ([]string, error) {
	const q = `
SELECT id FROM aliases
WHERE shadow AND lower(email) = lower($1) AND customer_id IS NULL AND state NOT IN ('deleted', 'expired')
ORDER BY id`
	email = strings.TrimSpace(email)
	if email == "" {
		return nil, nil
	}
	return s.aliasIDs(ctx, "shadow aliases for an email", q, email)
}

// aliasIDs runs q and collects the ids; op names it in errors (never the
// email itself, which would put personal data into logs and histories).
func (s *Store) aliasIDs(ctx context.Context, op, q, arg string) ([]string, error) {
	rows, err := s.pool.Query(ctx, q, arg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return ids, nil
}

// aliasWriteError translates constraint violations: an unknown customer is
// ErrNotFound, an address or SimpleLogin id already held by another alias is
// ErrConflict; neither is fixed by retrying.
func aliasWriteError(err error, op, customerID string) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23503":
			return fmt.Errorf("%s: customer %s: %w", op, customerID, ErrNotFound)
		case "23505":
			return fmt.Errorf("%s: %s already belongs to another alias: %w", op, pgErr.ConstraintName, ErrConflict)
		case "23514":
			return fmt.Errorf("%s: %s: %w", op, pgErr.ConstraintName, ErrConflict)
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}
