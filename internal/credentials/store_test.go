package credentials_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// fixture is a credential store on a fresh database, with the cache off so
// every read sees the table, unless a test turns it on.
type fixture struct {
	db    *store.Store
	keys  *credentials.Keyring
	creds *credentials.Store
}

func newFixture(t *testing.T, opts credentials.Options) *fixture {
	t.Helper()
	keys, err := credentials.NewKeyring(newKey(t))
	require.NoError(t, err)
	if opts.CacheTTL == 0 {
		opts.CacheTTL = -1
	}
	db := testenv.Store(t)
	return &fixture{db: db, keys: keys, creds: credentials.NewStore(db, keys, opts)}
}

func versions(creds []credentials.Credential) []string {
	out := make([]string, 0, len(creds))
	for _, c := range creds {
		out = append(out, fmt.Sprintf("v%d:%s:%s", c.Version, c.Status, c.Secret.Reveal()))
	}
	return out
}

func TestPutActivateValid(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, credentials.Options{Grace: time.Hour})
	s := f.creds

	v1, err := s.Put(ctx, "resend", "api_key", "re_one", credentials.StatusActive)
	require.NoError(t, err)
	require.Equal(t, 1, v1)
	active, err := s.Active(ctx, "resend", "api_key")
	require.NoError(t, err)
	require.Equal(t, 1, active.Version)
	require.Equal(t, "re_one", active.Secret.Reveal())
	require.NotNil(t, active.ActivatedAt)

	// A pending version is stored but not used or accepted yet.
	v2, err := s.PutWithExternalID(ctx, "resend", "api_key", "re_two", "key_2", credentials.StatusPending)
	require.NoError(t, err)
	require.Equal(t, 2, v2)
	active, err = s.Active(ctx, "resend", "api_key")
	require.NoError(t, err)
	require.Equal(t, 1, active.Version)
	valid, err := s.Valid(ctx, "resend", "api_key")
	require.NoError(t, err)
	require.Equal(t, []string{"v1:active:re_one"}, versions(valid))

	before := time.Now()
	require.NoError(t, s.Activate(ctx, "resend", "api_key", v2))
	require.NoError(t, s.Activate(ctx, "resend", "api_key", v2), "activating again is a no-op")
	active, err = s.Active(ctx, "resend", "api_key")
	require.NoError(t, err)
	require.Equal(t, "re_two", active.Secret.Reveal())
	require.Equal(t, "key_2", active.ExternalID)

	// During the grace period both are valid, the active one first.
	valid, err = s.Valid(ctx, "resend", "api_key")
	require.NoError(t, err)
	require.Equal(t, []string{"v2:active:re_two", "v1:retiring:re_one"}, versions(valid))
	require.NotNil(t, valid[1].RetireAfter)
	require.WithinDuration(t, before.Add(time.Hour), *valid[1].RetireAfter, time.Minute)

	// Once retire_after has passed the old one is no longer valid.
	_, err = f.db.Pool().Exec(ctx, `UPDATE credentials SET retire_after = now() - interval '1 second' WHERE version = 1`)
	require.NoError(t, err)
	valid, err = s.Valid(ctx, "resend", "api_key")
	require.NoError(t, err)
	require.Equal(t, []string{"v2:active:re_two"}, versions(valid))

	all, err := s.Versions(ctx, "resend", "api_key")
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, credentials.StatusRetiring, all[0].Status)
	require.Empty(t, all[0].Secret.Reveal(), "Versions does not decrypt")

	// Other keys are independent.
	_, err = s.Active(ctx, "resend", "other")
	require.ErrorIs(t, err, store.ErrNotFound)
	valid, err = s.Valid(ctx, "resend", "other")
	require.NoError(t, err)
	require.Empty(t, valid)
}

func TestGraceEndsOnItsOwn(t *testing.T) {
	ctx := context.Background()
	// The cache is on here: it must not stretch the grace period either.
	f := newFixture(t, credentials.Options{Grace: 1500 * time.Millisecond, CacheTTL: time.Hour})
	s := f.creds
	_, err := s.Put(ctx, "crmflow", "api_token", "tok_old", credentials.StatusActive)
	require.NoError(t, err)
	_, err = s.Put(ctx, "crmflow", "api_token", "tok_new", credentials.StatusActive)
	require.NoError(t, err)

	valid, err := s.Valid(ctx, "crmflow", "api_token")
	require.NoError(t, err)
	require.Equal(t, []string{"v2:active:tok_new", "v1:retiring:tok_old"}, versions(valid))
	require.Eventually(t, func() bool {
		valid, err := s.Valid(ctx, "crmflow", "api_token")
		return err == nil && len(valid) == 1 && valid[0].Secret.Reveal() == "tok_new"
	}, 10*time.Second, 100*time.Millisecond)
}

func TestCacheReadThrough(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, credentials.Options{CacheTTL: time.Hour})
	s := f.creds
	_, err := s.Put(ctx, "knock", "api_key", "sk_knock_1", credentials.StatusActive)
	require.NoError(t, err)
	c, err := s.Active(ctx, "knock", "api_key")
	require.NoError(t, err)
	require.Equal(t, "sk_knock_1", c.Secret.Reveal())

	// A change made by another process is not seen until the TTL ends...
	other := credentials.NewStore(f.db, f.keys, credentials.Options{CacheTTL: -1})
	_, err = other.Put(ctx, "knock", "api_key", "sk_knock_2", credentials.StatusActive)
	require.NoError(t, err)
	c, err = s.Active(ctx, "knock", "api_key")
	require.NoError(t, err)
	require.Equal(t, "sk_knock_1", c.Secret.Reveal(), "served from the cache")

	// ...but this process's own changes are seen at once.
	_, err = s.Put(ctx, "knock", "api_key", "sk_knock_3", credentials.StatusActive)
	require.NoError(t, err)
	c, err = s.Active(ctx, "knock", "api_key")
	require.NoError(t, err)
	require.Equal(t, "sk_knock_3", c.Secret.Reveal())
}

func TestAtMostOneActive(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, credentials.Options{})
	s := f.creds

	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			_, err := s.Put(ctx, "stripe", "secret_key", fmt.Sprintf("sk_test_%d", i), credentials.StatusActive)
			errs <- err
		})
	}
	wg.Wait()
	for i := 1; i <= n; i++ {
		wg.Go(func() { errs <- s.Activate(ctx, "stripe", "secret_key", i) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	var active, total int
	err := f.db.Pool().QueryRow(ctx, `
SELECT count(*) FILTER (WHERE status = 'active'), count(*) FROM credentials
WHERE provider = 'stripe' AND name = 'secret_key'`).Scan(&active, &total)
	require.NoError(t, err)
	require.Equal(t, 1, active)
	require.Equal(t, n, total, "every concurrent Put got its own version")

	// The schema refuses a second active row even past the store.
	_, err = f.db.Pool().Exec(ctx, `UPDATE credentials SET status = 'active' WHERE provider = 'stripe' AND status <> 'active'`)
	require.ErrorContains(t, err, "credentials_one_active_idx")
}

func TestRevoke(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, credentials.Options{Grace: time.Hour})
	s := f.creds
	_, err := s.Put(ctx, "simplelogin", "api_key", "sl_one", credentials.StatusActive)
	require.NoError(t, err)
	_, err = s.Put(ctx, "simplelogin", "api_key", "sl_two", credentials.StatusActive)
	require.NoError(t, err)

	require.NoError(t, s.Revoke(ctx, "simplelogin", "api_key", 1))
	require.NoError(t, s.Revoke(ctx, "simplelogin", "api_key", 1), "revoking twice is a no-op")
	valid, err := s.Valid(ctx, "simplelogin", "api_key")
	require.NoError(t, err)
	require.Equal(t, []string{"v2:active:sl_two"}, versions(valid), "a revoked key is not valid even in its grace period")

	err = s.Activate(ctx, "simplelogin", "api_key", 1)
	require.ErrorIs(t, err, store.ErrConflict, "a revoked key never comes back")
	require.ErrorIs(t, s.Revoke(ctx, "simplelogin", "api_key", 9), store.ErrNotFound)
	require.ErrorIs(t, s.Activate(ctx, "simplelogin", "api_key", 9), store.ErrNotFound)

	// Revoking the active key (it leaked) leaves no active key at all.
	require.NoError(t, s.Revoke(ctx, "simplelogin", "api_key", 2))
	_, err = s.Active(ctx, "simplelogin", "api_key")
	require.ErrorIs(t, err, store.ErrNotFound)

	all, err := s.Versions(ctx, "simplelogin", "api_key")
	require.NoError(t, err)
	for _, c := range all {
		require.Equal(t, credentials.StatusRevoked, c.Status)
		require.NotNil(t, c.RevokedAt)
	}
}

func TestRollbackToRetiring(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, credentials.Options{Grace: time.Hour})
	s := f.creds
	_, err := s.Put(ctx, "resend", "api_key", "re_good", credentials.StatusActive)
	require.NoError(t, err)
	_, err = s.Put(ctx, "resend", "api_key", "re_bad", credentials.StatusActive)
	require.NoError(t, err)
	require.NoError(t, s.Activate(ctx, "resend", "api_key", 1))
	valid, err := s.Valid(ctx, "resend", "api_key")
	require.NoError(t, err)
	require.Equal(t, []string{"v1:active:re_good", "v2:retiring:re_bad"}, versions(valid))
}

func TestSeedFromConfig(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, credentials.Options{})
	s := f.creds

	seeded, err := s.SeedFromConfig(ctx, "stripe", "webhook_secret", "whsec_first")
	require.NoError(t, err)
	require.True(t, seeded)
	c, err := s.Active(ctx, "stripe", "webhook_secret")
	require.NoError(t, err)
	require.Equal(t, 1, c.Version)
	require.Equal(t, "whsec_first", c.Secret.Reveal())

	// A second start, even with another value left in config, changes nothing.
	seeded, err = s.SeedFromConfig(ctx, "stripe", "webhook_secret", "whsec_stale_config")
	require.NoError(t, err)
	require.False(t, seeded)
	c, err = s.Active(ctx, "stripe", "webhook_secret")
	require.NoError(t, err)
	require.Equal(t, "whsec_first", c.Secret.Reveal())

	// Nor after a rotation: the store, not config, is the truth.
	_, err = s.Put(ctx, "stripe", "webhook_secret", "whsec_rotated", credentials.StatusActive)
	require.NoError(t, err)
	require.NoError(t, s.Revoke(ctx, "stripe", "webhook_secret", 1))
	seeded, err = s.SeedFromConfig(ctx, "stripe", "webhook_secret", "whsec_first")
	require.NoError(t, err)
	require.False(t, seeded)
	c, err = s.Active(ctx, "stripe", "webhook_secret")
	require.NoError(t, err)
	require.Equal(t, "whsec_rotated", c.Secret.Reveal())

	// An unset config key seeds nothing.
	seeded, err = s.SeedFromConfig(ctx, "knock", "api_key", "")
	require.NoError(t, err)
	require.False(t, seeded)
	_, err = s.Active(ctx, "knock", "api_key")
	require.ErrorIs(t, err, store.ErrNotFound)

	// Concurrent first starts (replicas) seed once.
	var wg sync.WaitGroup
	var mu sync.Mutex
	count := 0
	for range 6 {
		wg.Go(func() {
			ok, err := s.SeedFromConfig(ctx, "clerk", "webhook_secret", "whsec_clerk")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Error(err)
			}
			if ok {
				count++
			}
		})
	}
	wg.Wait()
	require.Equal(t, 1, count)
}

func TestAuditTrail(t *testing.T) {
	ctx := credentials.WithActor(context.Background(), "alice")
	f := newFixture(t, credentials.Options{})
	s := f.creds
	secrets := []string{"re_audit_one", "re_audit_two"}
	_, err := s.SeedFromConfig(context.Background(), "resend", "api_key", secrets[0])
	require.NoError(t, err)
	_, err = s.PutWithExternalID(ctx, "resend", "api_key", secrets[1], "key_audit", credentials.StatusPending)
	require.NoError(t, err)
	require.NoError(t, s.Activate(ctx, "resend", "api_key", 2))
	require.NoError(t, s.Revoke(ctx, "resend", "api_key", 1))

	rows, err := f.db.Pool().Query(ctx, `SELECT actor, action, subject, details::text FROM audit_log ORDER BY id`)
	require.NoError(t, err)
	defer rows.Close()
	var got []string
	for rows.Next() {
		var actor, action, subject, details string
		require.NoError(t, rows.Scan(&actor, &action, &subject, &details))
		for _, sec := range secrets {
			require.NotContains(t, actor+action+subject+details, sec)
		}
		var d map[string]any
		require.NoError(t, json.Unmarshal([]byte(details), &d))
		got = append(got, actor+" "+action+" "+subject)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{
		"crmflow credential.seed resend/api_key@v1",
		"crmflow credential.activate resend/api_key@v1",
		"alice credential.put resend/api_key@v2",
		"alice credential.retire resend/api_key@v1",
		"alice credential.activate resend/api_key@v2",
		"alice credential.revoke resend/api_key@v1",
	}, got)

	// No-op calls change nothing and so audit nothing.
	require.NoError(t, s.Activate(ctx, "resend", "api_key", 2))
	require.NoError(t, s.Revoke(ctx, "resend", "api_key", 1))
	var n int
	require.NoError(t, f.db.Pool().QueryRow(ctx, `SELECT count(*) FROM audit_log`).Scan(&n))
	require.Equal(t, len(got), n)
}

func TestStoredEncrypted(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, credentials.Options{})
	const secret = "sk_test_plaintext_must_not_be_stored"
	_, err := f.creds.Put(ctx, "stripe", "secret_key", secret, credentials.StatusActive)
	require.NoError(t, err)

	var ct, nonce []byte
	var kid, row string
	err = f.db.Pool().QueryRow(ctx, `SELECT ciphertext, nonce, master_key_id, c::text FROM credentials c`).Scan(&ct, &nonce, &kid, &row)
	require.NoError(t, err)
	require.NotContains(t, string(ct), secret)
	require.NotContains(t, row, secret)
	require.NotContains(t, row, fmt.Sprintf("%x", secret), "not even hex-encoded")
	require.Len(t, nonce, 12)
	require.Equal(t, f.keys.KeyID(), kid)
	require.Len(t, ct, len(secret)+16, "GCM: plaintext length plus a 16-byte tag")
}

func TestTamperedRowsFailToOpen(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, credentials.Options{})
	s := f.creds
	_, err := s.Put(ctx, "knock", "api_key", "sk_knock_a", credentials.StatusActive)
	require.NoError(t, err)
	_, err = s.Put(ctx, "knock", "api_key", "sk_knock_b", credentials.StatusPending)
	require.NoError(t, err)

	// Moving v2's ciphertext into the active v1 row: AAD binds it to v2.
	_, err = f.db.Pool().Exec(ctx, `
UPDATE credentials c SET ciphertext = o.ciphertext, nonce = o.nonce
FROM credentials o WHERE c.version = 1 AND o.version = 2`)
	require.NoError(t, err)
	_, err = s.Active(ctx, "knock", "api_key")
	require.ErrorIs(t, err, credentials.ErrDecrypt)

	// Flipping one bit.
	_, err = s.Put(ctx, "resend", "api_key", "re_bits", credentials.StatusActive)
	require.NoError(t, err)
	_, err = f.db.Pool().Exec(ctx, `
UPDATE credentials SET ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1) WHERE provider = 'resend'`)
	require.NoError(t, err)
	_, err = s.Valid(ctx, "resend", "api_key")
	require.ErrorIs(t, err, credentials.ErrDecrypt)

	// Another master key.
	otherKeys, err := credentials.NewKeyring(newKey(t))
	require.NoError(t, err)
	_, err = credentials.NewStore(f.db, otherKeys, credentials.Options{CacheTTL: -1}).Active(ctx, "knock", "api_key")
	require.ErrorIs(t, err, credentials.ErrUnknownKey)
}

func TestRewrapAfterMasterKeyRotation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, credentials.Options{})
	oldKey := newKey(t)
	oldKeys, err := credentials.NewKeyring(oldKey)
	require.NoError(t, err)
	old := credentials.NewStore(f.db, oldKeys, credentials.Options{CacheTTL: -1})
	_, err = old.Put(ctx, "stripe", "secret_key", "sk_test_a", credentials.StatusActive)
	require.NoError(t, err)
	_, err = old.Put(ctx, "resend", "api_key", "re_b", credentials.StatusActive)
	require.NoError(t, err)

	nextKey := newKey(t)
	rotated, err := credentials.NewKeyring(nextKey, oldKey)
	require.NoError(t, err)
	s := credentials.NewStore(f.db, rotated, credentials.Options{CacheTTL: -1})
	c, err := s.Active(ctx, "stripe", "secret_key")
	require.NoError(t, err, "the previous key still decrypts")
	require.Equal(t, oldKeys.KeyID(), c.MasterKeyID)

	n, err := s.Rewrap(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	n, err = s.Rewrap(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "nothing left to rewrap")

	onlyNew, err := credentials.NewKeyring(nextKey)
	require.NoError(t, err)
	c, err = credentials.NewStore(f.db, onlyNew, credentials.Options{CacheTTL: -1}).Active(ctx, "resend", "api_key")
	require.NoError(t, err, "after rewrap the old key is no longer needed")
	require.Equal(t, "re_b", c.Secret.Reveal())
	require.Equal(t, rotated.KeyID(), c.MasterKeyID)
}

func TestInvalidArguments(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, credentials.Options{})
	s := f.creds
	cases := map[string]error{}
	_, cases["empty provider"] = s.Put(ctx, "", "api_key", "x", credentials.StatusPending)
	_, cases["slash in name"] = s.Put(ctx, "stripe", "a/b", "x", credentials.StatusPending)
	_, cases["at in provider"] = s.Put(ctx, "str@ipe", "api_key", "x", credentials.StatusPending)
	_, cases["empty secret"] = s.Put(ctx, "stripe", "api_key", "", credentials.StatusPending)
	_, cases["retiring status"] = s.Put(ctx, "stripe", "api_key", "x", credentials.StatusRetiring)
	_, cases["uppercase"] = s.Active(ctx, "Stripe", "api_key")
	for name, err := range cases {
		require.ErrorIs(t, err, credentials.ErrInvalid, name)
		require.False(t, errors.Is(err, store.ErrNotFound), name)
	}
	var n int
	require.NoError(t, f.db.Pool().QueryRow(ctx, `SELECT count(*) FROM credentials`).Scan(&n))
	require.Zero(t, n)
}
