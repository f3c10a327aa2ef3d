package credentials

import (
	"context"
	"errors"
	"fmt"

	"github.com/crmflow/crmflow/internal/providers"
	"github.com/crmflow/crmflow/internal/store"
)

// ActiveKey is the active secret of provider's key name, "" when none is
// stored: the caller then runs the provider in console mode. Activities
// read it at each call, so a rotation takes effect without a restart.
func (s *Store) ActiveKey(ctx context.Context, provider, name string) (string, error) {
	c, err := s.Active(ctx, provider, name)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return c.Secret.Reveal(), nil
}

// ValidSecrets are the secrets of provider's key name valid now: the active
// one and any retiring one still inside its grace period; none when no
// version is stored.
func (s *Store) ValidSecrets(ctx context.Context, provider, name string) ([]string, error) {
	valid, err := s.Valid(ctx, provider, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]string, len(valid))
	for i, c := range valid {
		out[i] = c.Secret.Reveal()
	}
	return out, nil
}

// WebhookSecrets are the signing secrets of a webhook ("stripe_webhook",
// "clerk_webhook", "resend_webhook") valid now; during a rotation both the new and the
// retiring secret verify.
func (s *Store) WebhookSecrets(ctx context.Context, provider string) ([]string, error) {
	return s.ValidSecrets(ctx, provider, providers.DefaultKeyName)
}

// SeedAll copies each provider's configured key (configured, by provider
// name; "" for none) into the store the first time crmflow starts with it;
// after that the store, which key rotation updates, is what counts.
func (s *Store) SeedAll(ctx context.Context, configured map[string]string) error {
	for _, p := range providers.All() {
		key, ok := configured[p.Name]
		if !ok {
			continue
		}
		if _, err := s.SeedFromConfig(ctx, p.Key.Provider, p.Key.Name, key); err != nil {
			return fmt.Errorf("seed %s credential: %w", p.Name, err)
		}
	}
	return nil
}

// SeedTokens seeds the configured tokens the first time crmflow starts with
// each: service[0] is the start-API token key rotation rotates
// ("crmflow/api_token"), further service tokens "crmflow/api_token_<n>",
// and each operator's token "crmflow_operator/<name>". As with provider
// keys, the store is the truth afterwards: revoking a token there revokes
// it everywhere, whatever config still says.
func (s *Store) SeedTokens(ctx context.Context, service []string, operators map[string]string) error {
	slot := providers.CrmflowToken().Key
	for i, tok := range service {
		name := slot.Name
		if i > 0 {
			name = fmt.Sprintf("%s_%d", slot.Name, i+1)
		}
		if _, err := s.SeedFromConfig(ctx, slot.Provider, name, tok); err != nil {
			return fmt.Errorf("seed service token %d: %w", i+1, err)
		}
	}
	for name, tok := range operators {
		if _, err := s.SeedFromConfig(ctx, OperatorTokenProvider, name, tok); err != nil {
			return fmt.Errorf("seed operator token of %s: %w", name, err)
		}
	}
	return nil
}

// PendingSecrets are the pending versions of provider's key, decrypted: a
// webhook signing secret an operator submitted, waiting for a genuine
// delivery to prove it.
func (s *Store) PendingSecrets(ctx context.Context, provider, name string) ([]Credential, error) {
	if err := validKey(provider, name); err != nil {
		return nil, err
	}
	// Read on every verified webhook delivery: served from the cache.
	if got, ok := s.cache.get(kindPending, provider, name); ok {
		return got, nil
	}
	gen := s.cache.generation()
	const q = `SELECT ` + columns + ` FROM credentials WHERE provider = $1 AND name = $2 AND status = 'pending' ORDER BY version`
	creds, err := s.query(ctx, true, q, provider, name)
	if err != nil {
		return nil, fmt.Errorf("pending credentials %s/%s: %w", provider, name, err)
	}
	s.cache.put(gen, kindPending, provider, name, creds)
	return creds, nil
}
