package credentials

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/crmflow/crmflow/internal/store"
)

// ErrInvalid means an argument can never be stored: a malformed provider or
// name, an empty secret, a status Put does not accept. Callers answer 400 or
// 422 and do not retry. Missing rows are store.ErrNotFound and forbidden
// transitions store.ErrConflict, as everywhere in the store.
var ErrInvalid = errors.New("invalid credential")

// Defaults of Options.
const (
	// DefaultGrace is how long a replaced key stays valid, long enough for
	// every in-flight activity and every client holding the old start-API
	// token to move on.
	DefaultGrace = 24 * time.Hour
	// DefaultCacheTTL bounds how stale a cached read may be: a rotation done
	// by another process is seen within this time.
	DefaultCacheTTL = 5 * time.Second
)

// Options tune a Store.
type Options struct {
	// Grace is how long Activate keeps the replaced active version valid
	// (retiring); 0 means DefaultGrace, negative means no grace at all.
	Grace time.Duration
	// CacheTTL is how long Active and Valid answers are cached in this
	// process; 0 means DefaultCacheTTL, negative disables the cache.
	CacheTTL time.Duration
}

// Store keeps provider credentials encrypted in PostgreSQL's credentials
// table and records every change in audit_log. It is safe for concurrent
// use, also across processes: changes to one provider and name are
// serialised by a transaction-scoped advisory lock.
//
// Active and Valid are served from a small in-process read-through cache
// (Options.CacheTTL, 5 s by default), so activities can read their key on
// every call without a database round trip each time. This process's own
// changes clear the cache at once; another process's are seen within the TTL.
type Store struct {
	pool  *pgxpool.Pool
	keys  *Keyring
	grace time.Duration
	cache *cache
	usage
}

// NewStore returns a credential store over st's pool, sealing new values
// under keys' current master key.
func NewStore(st *store.Store, keys *Keyring, opts Options) *Store {
	grace := opts.Grace
	switch {
	case grace == 0:
		grace = DefaultGrace
	case grace < 0:
		grace = 0
	}
	ttl := opts.CacheTTL
	if ttl == 0 {
		ttl = DefaultCacheTTL
	}
	return &Store{pool: st.Pool(), keys: keys, grace: grace, cache: newCache(ttl), usage: usage{used: map[string]time.Time{}}}
}

// identRE keeps provider and name free of the "/" and "@" that separate
// them in audit subjects, and of anything an operator could not type.
var identRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

func validKey(provider, name string) error {
	if !identRE.MatchString(provider) {
		return fmt.Errorf("provider %q must match %s: %w", provider, identRE, ErrInvalid)
	}
	if !identRE.MatchString(name) {
		return fmt.Errorf("name %q must match %s: %w", name, identRE, ErrInvalid)
	}
	return nil
}

// aad binds a ciphertext to its row: opening it under another provider,
// name or version fails, so a value cannot be moved (by SQL or a restored
// backup) to a row where it would be used as something else.
func aad(provider, name string, version int) []byte {
	return []byte("crmflow/credentials/v1\x00" + provider + "\x00" + name + "\x00" + strconv.Itoa(version))
}

// Put stores secret as a new version of provider/name and returns its
// version number. status is StatusPending (stored for a later Activate, e.g.
// after verification) or StatusActive (activated at once, as Activate).
func (s *Store) Put(ctx context.Context, provider, name, secret, status string) (int, error) {
	return s.PutWithExternalID(ctx, provider, name, secret, "", status)
}

// PutWithExternalID is Put that also records the provider's own id of the
// key (a Resend API key id), needed to delete the key at the provider later.
func (s *Store) PutWithExternalID(ctx context.Context, provider, name, secret, externalID, status string) (int, error) {
	if err := validKey(provider, name); err != nil {
		return 0, err
	}
	if secret == "" {
		return 0, fmt.Errorf("empty secret: %w", ErrInvalid)
	}
	if status != StatusPending && status != StatusActive {
		return 0, fmt.Errorf("status %q: a new version is pending or active: %w", status, ErrInvalid)
	}
	var version int
	err := s.inTx(ctx, provider, name, func(tx pgx.Tx) error {
		const q = `SELECT coalesce(max(version), 0) + 1 FROM credentials WHERE provider = $1 AND name = $2`
		if err := tx.QueryRow(ctx, q, provider, name).Scan(&version); err != nil {
			return fmt.Errorf("next version: %w", err)
		}
		if err := s.insert(ctx, tx, "credential.put", provider, name, version, secret, externalID); err != nil {
			return err
		}
		if status == StatusActive {
			return s.activate(ctx, tx, provider, name, version)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("put credential %s/%s: %w", provider, name, err)
	}
	return version, nil
}

// SeedFromConfig stores secret as active version 1 of provider/name only if
// the store holds no version of it at all, and reports whether it did. Config
// seeds the store on first start; afterwards the store is the truth, so a
// stale key left in config cannot undo a rotation. An empty secret (the key
// is not configured) seeds nothing.
func (s *Store) SeedFromConfig(ctx context.Context, provider, name, secret string) (bool, error) {
	if err := validKey(provider, name); err != nil {
		return false, err
	}
	if secret == "" {
		return false, nil
	}
	seeded := false
	err := s.inTx(ctx, provider, name, func(tx pgx.Tx) error {
		const q = `SELECT EXISTS (SELECT 1 FROM credentials WHERE provider = $1 AND name = $2)`
		var exists bool
		if err := tx.QueryRow(ctx, q, provider, name).Scan(&exists); err != nil {
			return fmt.Errorf("look for credential: %w", err)
		}
		if exists {
			return nil
		}
		if err := s.insert(ctx, tx, "credential.seed", provider, name, 1, secret, ""); err != nil {
			return err
		}
		seeded = true
		return s.activate(ctx, tx, provider, name, 1)
	})
	if err != nil {
		return false, fmt.Errorf("seed credential %s/%s: %w", provider, name, err)
	}
	return seeded, nil
}

// Activate makes version the active one of provider/name in one transaction:
// the version active until now becomes retiring, valid for the grace period
// (retire_after = now + Options.Grace), and version becomes active. A pending
// or retiring version may be activated (the latter rolls a rotation back);
// activating the active version again is a no-op, so a retried activity is
// harmless; a revoked version is store.ErrConflict.
func (s *Store) Activate(ctx context.Context, provider, name string, version int) error {
	if err := validKey(provider, name); err != nil {
		return err
	}
	err := s.inTx(ctx, provider, name, func(tx pgx.Tx) error {
		return s.activate(ctx, tx, provider, name, version)
	})
	if err != nil {
		return fmt.Errorf("activate credential %s: %w", subject(provider, name, version), err)
	}
	return nil
}

// activate is Activate inside the caller's locked transaction.
func (s *Store) activate(ctx context.Context, tx pgx.Tx, provider, name string, version int) error {
	status, err := lockedStatus(ctx, tx, provider, name, version)
	if err != nil {
		return err
	}
	switch status {
	case StatusActive:
		return nil
	case StatusRevoked:
		return fmt.Errorf("version is revoked: %w", store.ErrConflict)
	}

	// Demote first: the partial unique index allows one active row per key
	// and is checked at each statement.
	const retire = `
UPDATE credentials
SET status = 'retiring', retire_after = now() + make_interval(secs => $3)
WHERE provider = $1 AND name = $2 AND status = 'active'
RETURNING version, retire_after`
	rows, err := tx.Query(ctx, retire, provider, name, s.grace.Seconds())
	if err != nil {
		return fmt.Errorf("retire active version: %w", err)
	}
	type retired struct {
		version int
		after   time.Time
	}
	olds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (retired, error) {
		var o retired
		err := r.Scan(&o.version, &o.after)
		return o, err
	})
	if err != nil {
		return fmt.Errorf("retire active version: %w", err)
	}
	replaced := make([]int, 0, len(olds))
	for _, o := range olds {
		replaced = append(replaced, o.version)
		if err := audit(ctx, tx, "credential.retire", subject(provider, name, o.version), map[string]any{
			"replaced_by": version, "retire_after": o.after.UTC().Format(time.RFC3339),
		}); err != nil {
			return err
		}
	}

	const promote = `
UPDATE credentials SET status = 'active', activated_at = now(), retire_after = NULL
WHERE provider = $1 AND name = $2 AND version = $3`
	if _, err := tx.Exec(ctx, promote, provider, name, version); err != nil {
		return fmt.Errorf("promote version: %w", err)
	}
	return audit(ctx, tx, "credential.activate", subject(provider, name, version), map[string]any{
		"previous_status": status, "replaced": replaced,
	})
}

// Revoke marks version as revoked: it is never returned by Active or Valid
// again. Revoking the active version is allowed (a leaked key must stop being
// used even before a replacement exists); activities then find no credential
// and park until an operator supplies one. Revoking twice is a no-op.
func (s *Store) Revoke(ctx context.Context, provider, name string, version int) error {
	if err := validKey(provider, name); err != nil {
		return err
	}
	err := s.inTx(ctx, provider, name, func(tx pgx.Tx) error {
		status, err := lockedStatus(ctx, tx, provider, name, version)
		if err != nil || status == StatusRevoked {
			return err
		}
		const q = `
UPDATE credentials SET status = 'revoked', revoked_at = now()
WHERE provider = $1 AND name = $2 AND version = $3`
		if _, err := tx.Exec(ctx, q, provider, name, version); err != nil {
			return fmt.Errorf("update: %w", err)
		}
		return audit(ctx, tx, "credential.revoke", subject(provider, name, version), map[string]any{
			"previous_status": status,
		})
	})
	if err != nil {
		return fmt.Errorf("revoke credential %s: %w", subject(provider, name, version), err)
	}
	return nil
}

// inTx runs fn in a transaction holding provider/name's advisory lock, so
// concurrent Put, Activate and Revoke calls (from any process) take turns
// instead of racing for the next version number or the active slot. The
// cache entry is dropped whatever the outcome.
func (s *Store) inTx(ctx context.Context, provider, name string, fn func(pgx.Tx) error) error {
	defer s.cache.forget(provider, name)
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		const lock = `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`
		if _, err := tx.Exec(ctx, lock, "crmflow.credentials:"+provider+"/"+name); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		return fn(tx)
	})
}

// insert seals secret and stores it as a pending version.
func (s *Store) insert(ctx context.Context, tx pgx.Tx, action, provider, name string, version int, secret, externalID string) error {
	ct, nonce, kid, err := s.keys.Seal([]byte(secret), aad(provider, name, version))
	if err != nil {
		return err
	}
	const q = `
INSERT INTO credentials (provider, name, version, ciphertext, nonce, master_key_id, external_id, status)
VALUES ($1, $2, $3, $4, $5, $6, nullif($7, ''), 'pending')`
	if _, err := tx.Exec(ctx, q, provider, name, version, ct, nonce, kid, externalID); err != nil {
		return fmt.Errorf("insert version %d: %w", version, err)
	}
	details := map[string]any{"master_key_id": kid}
	if externalID != "" {
		details["external_id"] = externalID
	}
	return audit(ctx, tx, action, subject(provider, name, version), details)
}

// lockedStatus returns a version's status; the caller holds the key's lock.
func lockedStatus(ctx context.Context, tx pgx.Tx, provider, name string, version int) (string, error) {
	const q = `SELECT status FROM credentials WHERE provider = $1 AND name = $2 AND version = $3`
	var status string
	err := tx.QueryRow(ctx, q, provider, name, version).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("no version %d: %w", version, store.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("read status: %w", err)
	}
	return status, nil
}

// audit appends one audit_log row. details must never hold a secret: only
// versions, statuses, key ids and times go in.
func audit(ctx context.Context, tx pgx.Tx, action, subj string, details map[string]any) error {
	const q = `INSERT INTO audit_log (actor, action, subject, details) VALUES ($1, $2, $3, $4)`
	if _, err := tx.Exec(ctx, q, Actor(ctx), action, subj, details); err != nil {
		return fmt.Errorf("audit %s %s: %w", action, subj, err)
	}
	return nil
}
