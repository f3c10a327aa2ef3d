package worker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	svix "github.com/svix/svix-webhooks/go"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/config"
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
// authenticated call before a human-in-the-loop rotation accepts it. Webhook
// signing secrets cannot be checked remotely: their form is checked instead.
// The reason never quotes the key.
func keyVerifier(cfg *config.Config) func(ctx context.Context, provider, secret string) (bool, string, error) {
	hc := &http.Client{Timeout: 15 * time.Second}
	return func(ctx context.Context, provider, secret string) (bool, string, error) {
		switch provider {
		case "stripe":
			sc := activities.NewStripeClientWithHTTPClient(secret, cfg.Stripe.APIURL, hc)
			params := &stripe.BalanceParams{}
			params.Context = ctx
			_, err := sc.Balance.Get(params)
			var se *stripe.Error
			switch {
			case err == nil:
				return true, "", nil
			case errors.As(err, &se) && (se.HTTPStatusCode == 401 || se.HTTPStatusCode == 403):
				return false, "Stripe refused the key", nil
			default:
				return false, "", fmt.Errorf("check stripe key: %w", err)
			}
		case "knock":
			// Reading a user that need not exist proves the key authenticates:
			// 200 or 404 means it does, 401/403 that it does not.
			return probe(ctx, hc, cfg.Knock.APIURL+"/v1/users/crmflow-key-check", "Authorization", "Bearer "+secret)
		case "simplelogin":
			return probe(ctx, hc, cfg.SimpleLogin.APIURL+"/api/user_info", "Authentication", secret)
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

// probe makes one authenticated GET and reads the answer as a verdict.
func probe(ctx context.Context, hc *http.Client, url, header, value string) (bool, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, "", err
	}
	req.Header.Set(header, value)
	resp, err := hc.Do(req)
	if err != nil {
		return false, "", fmt.Errorf("check key: %w", err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == 200 || resp.StatusCode == 404:
		return true, "", nil
	case resp.StatusCode == 401 || resp.StatusCode == 403:
		return false, fmt.Sprintf("the provider refused the key (%d)", resp.StatusCode), nil
	default:
		return false, "", fmt.Errorf("check key: provider answered %d", resp.StatusCode)
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
