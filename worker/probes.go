package worker

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/providers"
)

// ProviderProbes are the breaker's probes: each queued provider's cheapest
// authenticated call (providers.Provider.Check, the check crmflow doctor
// and key rotation make) with the key active now. A probe fails only while
// the provider is down or throttling (no answer, 5xx, 429); any other
// answer, a refused key included, means it answers again — a bad key is
// then the activities' to report, as a non-retryable error that parks. A
// provider without an active key is in console mode and always answers.
func ProviderProbes(cfg *config.Config, creds *credentials.Store) map[string]func(ctx context.Context) error {
	hc := &http.Client{Timeout: 10 * time.Second}
	probes := map[string]func(ctx context.Context) error{}
	for _, p := range providers.Queued() {
		probes[p.Name] = func(ctx context.Context) error {
			key, err := creds.ActiveKey(ctx, p.Key.Provider, p.Key.Name)
			if err != nil {
				return fmt.Errorf("read %s key: %w", p.Name, err)
			}
			if key == "" {
				return nil
			}
			v, err := p.Check(ctx, hc, cfg.StringAt(p.URLKey), key)
			if err != nil && v.Down() {
				return err
			}
			return nil
		}
	}
	return probes
}
