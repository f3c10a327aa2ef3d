package credentials

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Rewrap re-encrypts every stored value not sealed under the current master
// key, and returns how many it re-encrypted. Run it after making a new master
// key current; once it returns, the previous key can leave the config
// (payloads in workflow histories may still need it until they age out).
func (s *Store) Rewrap(ctx context.Context) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		const q = `
SELECT id, provider, name, version, ciphertext, nonce, master_key_id
FROM credentials WHERE master_key_id <> $1 ORDER BY id FOR UPDATE`
		type row struct {
			id                  int64
			provider, name, kid string
			version             int
			ciphertext, nonce   []byte
		}
		rows, err := tx.Query(ctx, q, s.keys.KeyID())
		if err != nil {
			return fmt.Errorf("select: %w", err)
		}
		olds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
			var o row
			err := r.Scan(&o.id, &o.provider, &o.name, &o.version, &o.ciphertext, &o.nonce, &o.kid)
			return o, err
		})
		if err != nil {
			return fmt.Errorf("select: %w", err)
		}
		for _, o := range olds {
			subj := subject(o.provider, o.name, o.version)
			ad := aad(o.provider, o.name, o.version)
			plain, err := s.keys.Open(o.ciphertext, o.nonce, ad, o.kid)
			if err != nil {
				return fmt.Errorf("%s: %w", subj, err)
			}
			ct, nonce, kid, err := s.keys.Seal(plain, ad)
			if err != nil {
				return fmt.Errorf("%s: %w", subj, err)
			}
			const upd = `UPDATE credentials SET ciphertext = $2, nonce = $3, master_key_id = $4 WHERE id = $1`
			if _, err := tx.Exec(ctx, upd, o.id, ct, nonce, kid); err != nil {
				return fmt.Errorf("%s: update: %w", subj, err)
			}
			if err := audit(ctx, tx, "credential.rewrap", subj, map[string]any{
				"from_master_key_id": o.kid, "to_master_key_id": kid,
			}); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("rewrap credentials: %w", err)
	}
	s.cache.clear()
	return n, nil
}
