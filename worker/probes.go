package worker

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/workflows"
)

// ProviderProbes are the breaker's probes: each provider's cheapest
// authenticated GET with the key active now. A probe fails only when the
// provider is still down or throttling (network error, 5xx, 429); any other
// answer, a refused key included, means it is answering again — a bad key is
// then the activities' to report, as a non-retryable error that parks.
// A provider without an active key is in console mode and always answers.
func ProviderProbes(cfg *config.Config, creds *credentials.Store) map[string]func(ctx context.Context) error {
	hc := &http.Client{Timeout: 10 * time.Second}
	keys := credentialKeys{creds}
	bearer := func(k string) (string, string) { return "Authorization", "Bearer " + k }
	endpoints := map[string]struct {
		url  string
		auth func(key string) (string, string)
	}{
		workflows.ProviderStripe:      {cfg.Stripe.APIURL + "/v1/balance", bearer},
		workflows.ProviderKnock:       {cfg.Knock.APIURL + "/v1/users/crmflow-key-check", bearer},
		workflows.ProviderSimpleLogin: {cfg.SimpleLogin.APIURL + "/api/user_info", func(k string) (string, string) { return "Authentication", k }},
		workflows.ProviderResend:      {cfg.Resend.APIURL + "/domains?limit=1", bearer},
	}
	probes := map[string]func(ctx context.Context) error{}
	for provider, e := range endpoints {
		probes[provider] = func(ctx context.Context) error {
			key, err := keys.ActiveKey(ctx, provider, "api_key")
			if err != nil {
				return fmt.Errorf("read %s key: %w", provider, err)
			}
			if key == "" {
				return nil
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.url, nil)
			if err != nil {
				return err
			}
			req.Header.Set(e.auth(key))
			resp, err := hc.Do(req)
			if err != nil {
				return fmt.Errorf("%s unreachable: %w", provider, err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
				return fmt.Errorf("%s answered %d", provider, resp.StatusCode)
			}
			return nil
		}
	}
	return probes
}
