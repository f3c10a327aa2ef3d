package credentials

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/crmflow/crmflow/internal/store"
)

// Active returns the active version of provider/name with its secret
// decrypted, or store.ErrNotFound when there is none. A value that fails to
// decrypt (tampered row, unknown master key) is an error, never a guess.
func (s *Store) Active(ctx context.Context, provider, name string) (Credential, error) {
	if err := validKey(provider, name); err != nil {
		return Credential{}, err
	}
	if got, ok := s.cache.get(kindActive, provider, name); ok {
		return got[0], nil
	}
	gen := s.cache.generation()
	const q = `SELECT ` + columns + ` FROM credentials WHERE provider = $1 AND name = $2 AND status = 'active'`
	creds, err := s.query(ctx, true, q, provider, name)
	if err != nil {
		return Credential{}, fmt.Errorf("active credential %s/%s: %w", provider, name, err)
	}
	if len(creds) == 0 {
		return Credential{}, fmt.Errorf("active credential %s/%s: %w", provider, name, store.ErrNotFound)
	}
	s.cache.put(gen, kindActive, provider, name, creds)
	return creds[0], nil
}

// Valid returns every version of provider/name that must still be accepted:
// the active one first, then retiring ones whose grace period has not ended,
// newest first. The start API checks tokens against it, so the old token
// keeps working during a rotation's grace period. Empty (no error) when none.
func (s *Store) Valid(ctx context.Context, provider, name string) ([]Credential, error) {
	if err := validKey(provider, name); err != nil {
		return nil, err
	}
	if got, ok := s.cache.get(kindValid, provider, name); ok {
		return stillValid(got, time.Now()), nil
	}
	gen := s.cache.generation()
	const q = `SELECT ` + columns + ` FROM credentials
WHERE provider = $1 AND name = $2
  AND (status = 'active' OR (status = 'retiring' AND retire_after > now()))
ORDER BY status = 'active' DESC, version DESC`
	creds, err := s.query(ctx, true, q, provider, name)
	if err != nil {
		return nil, fmt.Errorf("valid credentials %s/%s: %w", provider, name, err)
	}
	s.cache.put(gen, kindValid, provider, name, creds)
	return stillValid(creds, time.Now()), nil
}

// stillValid drops retiring versions whose grace ended while they sat in the
// cache, so the cache never stretches a grace period.
func stillValid(creds []Credential, now time.Time) []Credential {
	out := make([]Credential, 0, len(creds))
	for _, c := range creds {
		if c.Status == StatusRetiring && (c.RetireAfter == nil || !now.Before(*c.RetireAfter)) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// Versions lists every version of provider/name, oldest first, without
// decrypting anything: Secret is empty. For status pages and for finding the
// retiring version (and its ExternalID) a rotation must revoke.
func (s *Store) Versions(ctx context.Context, provider, name string) ([]Credential, error) {
	if err := validKey(provider, name); err != nil {
		return nil, err
	}
	const q = `SELECT ` + columns + ` FROM credentials WHERE provider = $1 AND name = $2 ORDER BY version`
	creds, err := s.query(ctx, false, q, provider, name)
	if err != nil {
		return nil, fmt.Errorf("credential versions %s/%s: %w", provider, name, err)
	}
	return creds, nil
}

const columns = `provider, name, version, status, ciphertext, nonce, master_key_id,
coalesce(external_id, ''), created_at, activated_at, retire_after, revoked_at`

// query reads credential rows, decrypting them when decrypt is set.
func (s *Store) query(ctx context.Context, decrypt bool, q string, args ...any) ([]Credential, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Credential, error) {
		var c Credential
		var ct, nonce []byte
		if err := r.Scan(&c.Provider, &c.Name, &c.Version, &c.Status, &ct, &nonce, &c.MasterKeyID,
			&c.ExternalID, &c.CreatedAt, &c.ActivatedAt, &c.RetireAfter, &c.RevokedAt); err != nil {
			return c, err
		}
		if !decrypt {
			return c, nil
		}
		plain, err := s.keys.Open(ct, nonce, aad(c.Provider, c.Name, c.Version), c.MasterKeyID)
		if err != nil {
			return c, fmt.Errorf("%s: %w", c.Subject(), err)
		}
		c.Secret = Secret(plain)
		return c, nil
	})
}

// Version returns one version of provider/name with its secret decrypted,
// whatever its status, or store.ErrNotFound. Rotations read the key an
// operator submitted (stored pending) by its version, so the key itself
// never travels through a workflow.
func (s *Store) Version(ctx context.Context, provider, name string, version int) (Credential, error) {
	if err := validKey(provider, name); err != nil {
		return Credential{}, err
	}
	const q = `SELECT ` + columns + ` FROM credentials WHERE provider = $1 AND name = $2 AND version = $3`
	creds, err := s.query(ctx, true, q, provider, name, version)
	if err != nil {
		return Credential{}, fmt.Errorf("credential %s: %w", subject(provider, name, version), err)
	}
	if len(creds) == 0 {
		return Credential{}, fmt.Errorf("credential %s: %w", subject(provider, name, version), store.ErrNotFound)
	}
	return creds[0], nil
}

// ByExternalID is the newest version of provider/name recorded with the
// provider's (or a rotation's) id externalID, without its secret, or
// store.ErrNotFound. A retried activity finds what its earlier attempt
// stored instead of storing a second version.
func (s *Store) ByExternalID(ctx context.Context, provider, name, externalID string) (Credential, error) {
	if err := validKey(provider, name); err != nil {
		return Credential{}, err
	}
	const q = `SELECT ` + columns + ` FROM credentials WHERE provider = $1 AND name = $2 AND external_id = $3
ORDER BY version DESC LIMIT 1`
	creds, err := s.query(ctx, false, q, provider, name, externalID)
	if err != nil {
		return Credential{}, fmt.Errorf("credential %s/%s of %s: %w", provider, name, externalID, err)
	}
	if len(creds) == 0 {
		return Credential{}, fmt.Errorf("credential %s/%s of %s: %w", provider, name, externalID, store.ErrNotFound)
	}
	return creds[0], nil
}
