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

// Tokens are crmflow's start-API tokens valid now.
func (s *Store) Tokens(ctx context.Context) ([]string, error) {
	t := providers.CrmflowToken()
	return s.ValidSecrets(ctx, t.Key.Provider, t.Key.Name)
}

// WebhookSecrets are the signing secrets of a webhook ("stripe_webhook",
// "clerk_webhook") valid now; during a rotation both the new and the
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
