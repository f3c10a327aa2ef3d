package worker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	svix "github.com/svix/svix-webhooks/go"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/doctor"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/store"
)

// credentialKeys reads a provider's active key from the credential store at
// call time, so a rotation takes effect without a restart. No active key
// means none is configured: the caller runs in console mode.
type credentialKeys struct {
	creds *credentials.Store
}

// ActiveKey implements activities.KeySource.
func (k credentialKeys) ActiveKey(ctx context.Context, provider, name string) (string, error) {
	c, err := k.creds.Active(ctx, provider, name)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return c.Secret.Reveal(), nil
}

// keyVerifier checks a candidate key with the provider's cheapest
// authenticated call (doctor.CheckKey, the same call `crmflow doctor` makes)
// before a human-in-the-loop rotation accepts it. Webhook signing secrets
// cannot be checked remotely: their form is checked instead. The reason
// never quotes the key.
func keyVerifier(cfg *config.Config) func(ctx context.Context, provider, secret string) (bool, string, error) {
	hc := &http.Client{Timeout: 15 * time.Second}
	return func(ctx context.Context, provider, secret string) (bool, string, error) {
		switch provider {
		case "stripe", "knock", "simplelogin":
			v, err := doctor.CheckKey(ctx, hc, cfg, provider, secret)
			switch {
			case err != nil:
				return false, "", fmt.Errorf("check %s key: %w", provider, err)
			case !v.Valid && v.Reason != "":
				return false, v.Status + " (" + v.Reason + ")", nil
			case !v.Valid:
				return false, v.Status, nil
			}
			return true, "", nil
		case "stripe_webhook":
			if !strings.HasPrefix(secret, "whsec_") {
				return false, "a Stripe webhook secret starts with whsec_", nil
			}
			return true, "", nil
		case "clerk_webhook":
			if _, err := svix.NewWebhook(secret); err != nil {
				return false, "not a Svix signing secret (whsec_ followed by base64)", nil
			}
			return true, "", nil
		}
		return false, "", fmt.Errorf("no key check for provider %q", provider)
	}
}

// SeedCredentials copies the keys configured for each provider into the
// credential store the first time crmflow starts with them; after that the
// store, which key rotation updates, is what counts.
func SeedCredentials(ctx context.Context, cfg *config.Config, creds *credentials.Store) error {
	for _, k := range []struct {
		provider, name string
		secret         config.Secret
	}{
		{"stripe", "api_key", cfg.Stripe.SecretKey},
		{"stripe_webhook", "api_key", cfg.Stripe.WebhookSecret},
		{"clerk_webhook", "api_key", cfg.Clerk.WebhookSecret},
		{"knock", "api_key", cfg.Knock.APIKey},
		{"simplelogin", "api_key", cfg.SimpleLogin.APIKey},
		{activities.ResendCredentialProvider, activities.ResendCredentialName, cfg.Resend.APIKey},
		{StartAPITokenProvider, StartAPITokenName, firstToken(cfg.APITokens)},
	} {
		if _, err := creds.SeedFromConfig(ctx, k.provider, k.name, k.secret.Reveal()); err != nil {
			return fmt.Errorf("seed %s credential: %w", k.provider, err)
		}
	}
	return nil
}

// The start-API tokens' place in the credential store.
const (
	StartAPITokenProvider = "crmflow"
	StartAPITokenName     = "api_token"
)

func firstToken(tokens []config.Secret) config.Secret {
	if len(tokens) == 0 {
		return ""
	}
	return tokens[0]
}

// StartAPITokens returns the start-API tokens valid now: the active one and
// any still inside its grace period after a rotation.
func StartAPITokens(creds *credentials.Store) func(ctx context.Context) ([]string, error) {
	return func(ctx context.Context) ([]string, error) {
		return validSecrets(ctx, creds, StartAPITokenProvider, StartAPITokenName)
	}
}

// WebhookSecrets returns a webhook provider's ("stripe_webhook",
// "clerk_webhook") signing secrets valid now, for the webhook handlers.
func WebhookSecrets(creds *credentials.Store) func(ctx context.Context, provider string) ([]string, error) {
	return func(ctx context.Context, provider string) ([]string, error) {
		return validSecrets(ctx, creds, provider, "api_key")
	}
}

func validSecrets(ctx context.Context, creds *credentials.Store, provider, name string) ([]string, error) {
	valid, err := creds.Valid(ctx, provider, name)
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
