package worker

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/internal/providers"
)

// keyVerifier checks a candidate key before a human-in-the-loop rotation
// accepts it, as the provider registry says: the provider's cheapest
// authenticated call (the one `crmflow doctor` makes) against the API URL
// in cfg, or the form of a webhook signing secret, which cannot be checked
// remotely. The reason never quotes the key.
func keyVerifier(cfg *config.Config) func(ctx context.Context, provider, secret string) (bool, string, error) {
	hc := &http.Client{Timeout: 15 * time.Second}
	return func(ctx context.Context, provider, secret string) (bool, string, error) {
		p, ok := providers.Lookup(provider)
		if !ok {
			return false, "", fmt.Errorf("no key check for provider %q", provider)
		}
		return p.VerifyKey(ctx, hc, cfg.StringAt(p.URLKey), secret)
	}
}
