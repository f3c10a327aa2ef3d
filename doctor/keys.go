package doctor

import (
	"context"
	"fmt"
	"net/http"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/internal/providers"
)

// CheckKey makes provider's cheapest authenticated call (the provider
// registry's Check: Stripe GET /v1/balance, Knock GET /v1/users/<probe
// user>, SimpleLogin GET /api/user_info, Resend GET /api-keys) with secret
// against the API URL in cfg. An error means there is no verdict; neither
// it nor the verdict ever quotes the key.
func CheckKey(ctx context.Context, hc *http.Client, cfg *config.Config, provider, secret string) (providers.Verdict, error) {
	p, ok := providers.Lookup(provider)
	if !ok || !p.Checkable() {
		return providers.Verdict{}, fmt.Errorf("no key check for provider %q", provider)
	}
	return p.Check(ctx, hc, cfg.StringAt(p.URLKey), secret)
}
