package worker

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/doctor"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/workflows"
)

// ProviderProbes are the breaker's probes: each provider's cheapest
// authenticated call with the key active now (doctor.CheckKey, the check
// crmflow doctor and key rotation make). A probe fails only while the
// provider is down or throttling (no answer, 5xx, 429); any other answer, a
// refused key included, means it answers again — a bad key is then the
// activities' to report, as a non-retryable error that parks. A provider
// without an active key is in console mode and always answers.
func ProviderProbes(cfg *config.Config, creds *credentials.Store) map[string]func(ctx context.Context) error {
	hc := &http.Client{Timeout: 10 * time.Second}
	keys := credentialKeys{creds}
	probes := map[string]func(ctx context.Context) error{}
	for _, provider := range workflows.Providers() {
		probes[provider] = func(ctx context.Context) error {
			key, err := keys.ActiveKey(ctx, provider, "api_key")
			if err != nil {
				return fmt.Errorf("read %s key: %w", provider, err)
			}
			if key == "" {
				return nil
			}
			v, err := doctor.CheckKey(ctx, hc, cfg, provider, key)
			if err != nil && (v.Code == 0 || v.Code == http.StatusTooManyRequests || v.Code >= 500) {
				return err
			}
			return nil
		}
	}
	return probes
}
