package providers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/crmflow/crmflow/contract"
)

// stripe: PaymentIntents and customer balance transactions, with a key an
// operator rotates in the Stripe dashboard.
var stripe = Provider{
	Name: contract.ProviderStripe, Title: "Stripe",
	Key: Slot{contract.ProviderStripe, DefaultKeyName}, ConfigKey: "stripe.secret_key", URLKey: "stripe.api_url",
	Queue: true, Rotation: RotationManual, KeyPrefixes: []string{"sk_", "rk_"},
	Probe: "GET /v1/balance", check: checkStripe,
}

// StripeHTTPTimeout bounds one HTTP exchange with Stripe below the
// activities' StartToCloseTimeout, so a hung connection fails as a
// retryable attempt instead of as an activity timeout.
const StripeHTTPTimeout = 20 * time.Second

// NewStripeClient builds a Stripe client for the secret key; apiURL
// overrides Stripe's base URL (stripe-mock in tests and dev) and "" means
// api.stripe.com. A nil hc gets StripeHTTPTimeout.
func NewStripeClient(secretKey, apiURL string, hc *http.Client) *client.API {
	if hc == nil {
		hc = &http.Client{Timeout: StripeHTTPTimeout}
	}
	backend := func(typ stripego.SupportedBackend) stripego.Backend {
		cfg := &stripego.BackendConfig{
			HTTPClient: hc,
			// Temporal's retry policy owns retries: stripe-go's own would
			// multiply the attempts and hide them from the workflow history.
			MaxNetworkRetries: stripego.Int64(0),
			// stripe-go prints every request to stdout; activities log
			// through Temporal's logger instead.
			LeveledLogger: &stripego.LeveledLogger{Level: stripego.LevelNull},
		}
		if apiURL != "" {
			cfg.URL = stripego.String(apiURL)
		}
		return stripego.GetBackendWithConfig(typ, cfg)
	}
	return client.New(secretKey, &stripego.Backends{
		API:     backend(stripego.APIBackend),
		Connect: backend(stripego.ConnectBackend),
		Uploads: backend(stripego.UploadsBackend),
	})
}

// checkStripe reads the balance, which any standard key may.
func checkStripe(ctx context.Context, hc *http.Client, apiURL, key string) (Verdict, error) {
	// stripe-go reports an answer that is not Stripe's JSON (a proxy's 503
	// page) without its status: the transport notes it.
	var answered int
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	observed := *hc
	observed.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(r)
		if resp != nil {
			answered = resp.StatusCode
		}
		return resp, err
	})
	sc := NewStripeClient(key, apiURL, &observed)
	params := &stripego.BalanceParams{}
	params.Context = ctx
	_, err := sc.Balance.Get(params)
	var se *stripego.Error
	switch {
	case err == nil:
		return verdict(true, http.StatusOK, ""), nil
	case !errors.As(err, &se) && answered != 0:
		return verdict(false, answered, ""), fmt.Errorf("answered %s", statusLine(answered))
	case !errors.As(err, &se):
		return Verdict{}, err
	case se.HTTPStatusCode == http.StatusUnauthorized:
		// Stripe's message may quote part of the key: only its type is kept.
		reason := string(se.Code)
		if reason == "" {
			reason = string(se.Type)
		}
		return verdict(false, se.HTTPStatusCode, reason), nil
	case se.HTTPStatusCode == http.StatusForbidden:
		// A restricted key (rk_…) authenticated but may not read the
		// balance; crmflow needs PaymentIntents and customer balance
		// transactions, which it may still have.
		v := verdict(true, se.HTTPStatusCode, "a restricted key without balance access; crmflow needs PaymentIntents read and Customers write")
		v.Limited = true
		return v, nil
	default:
		return verdict(false, se.HTTPStatusCode, ""), fmt.Errorf("answered %s (%s %s)", statusLine(se.HTTPStatusCode), se.Type, se.Code)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
