package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
	"go.temporal.io/sdk/temporal"

	"github.com/crmflow/crmflow/internal/providers"
)

// client returns the Stripe client for this call, nil in console mode only.
// Outside console mode, no key to call with (no active key in Keys, or
// neither Keys nor a fixed client) is a permanent StripeCredentialMissing.
func (a *StripeActivities) client(ctx context.Context) (*client.API, error) {
	switch {
	case a.Console:
		return nil, nil
	case a.Keys == nil && a.Stripe != nil:
		return a.Stripe, nil
	case a.Keys == nil:
		return nil, credentialMissing(providerStripe)
	}
	key, err := a.Keys.ActiveKey(ctx, StripeCredentialProvider, StripeCredentialName)
	if err != nil {
		return nil, transient(providerStripe, ErrTypeUnavailable, fmt.Errorf("read stripe key: %w", err), 0)
	}
	if key == "" {
		return nil, credentialMissing(providerStripe)
	}
	if a.HTTPClient != nil {
		return NewStripeClientWithHTTPClient(key, a.APIURL, a.HTTPClient), nil
	}
	return NewStripeClient(key, a.APIURL), nil
}

// NewStripeClient builds a Stripe client for the secret key; apiURL
// overrides Stripe's base URL (stripe-mock in tests and dev) and "" means
// api.stripe.com.
func NewStripeClient(secretKey, apiURL string) *client.API {
	return providers.NewStripeClient(secretKey, apiURL, nil)
}

// NewStripeClientWithHTTPClient is NewStripeClient with the caller's HTTP
// client, for tests that observe the requests on the wire.
func NewStripeClientWithHTTPClient(secretKey, apiURL string, hc *http.Client) *client.API {
	return providers.NewStripeClient(secretKey, apiURL, hc)
}

// requestID is Stripe's request id, the handle Stripe support asks for.
func requestID(r *stripe.APIResponse) string {
	if r == nil {
		return ""
	}
	return r.RequestID
}

// classifyStripe maps a stripe-go error to a classified application error.
// The type names what went wrong:
//   - idempotency_error: Conflict; the key was reused with other parameters,
//     which only a new key or the old parameters can fix. Permanent.
//   - other 409s: Unavailable; the key is in use by a concurrent request,
//     which stripe-go itself treats as retryable. Transient.
//   - 429, rate limiting and lock_timeout alike: RateLimited. Transient;
//     Stripe sends no Retry-After, so Temporal's backoff sets the delay.
//   - otherwise by status as for any provider: 5xx and 408 Unavailable
//     (transient), 401/403 AuthFailed, 404 NotFound, other 4xx (card_error,
//     invalid_request_error) InvalidRequest (permanent).
//   - not a *stripe.Error: no Stripe answer was read (network, timeout,
//     unreadable body), so Unavailable, transient.
//
// A Stripe-Should-Retry header overrides retryability, not the type: it is
// Stripe's own verdict, e.g. "false" when a retry would only replay a stored
// idempotent result.
func classifyStripe(err error) error {
	if err == nil {
		return nil
	}
	var se *stripe.Error
	if !errors.As(err, &se) {
		return transient(providerStripe, ErrTypeUnavailable, err, 0)
	}
	return classifiedStripe(se)
}

// classifiedStripe is classifyStripe's answer for an error Stripe sent;
// details, if any, go into the application error for the workflow to read.
func classifiedStripe(se *stripe.Error, details ...any) error {
	kind := stripeKind(se, stripeStatus(se))
	retry := kind == ErrTypeRateLimited || kind == ErrTypeUnavailable
	if se.LastResponse != nil {
		switch se.LastResponse.Header.Get("Stripe-Should-Retry") {
		case "true":
			retry = true
		case "false":
			retry = false
		}
	}
	scrubbed := scrubStripeError(se)
	return temporal.NewApplicationErrorWithOptions(fmt.Sprintf("%s: %v", providerStripe, scrubbed),
		ErrorType(providerStripe, kind), temporal.ApplicationErrorOptions{
			NonRetryable: !retry, Cause: scrubbed, NextRetryDelay: retryDelay(retry, se), Details: details,
		})
}

// retryDelay is the next retry's delay Stripe asked for, for a retryable
// error.
func retryDelay(retry bool, se *stripe.Error) time.Duration {
	if !retry {
		return 0
	}
	return stripeRetryAfter(se)
}

// stripeStatus is the HTTP status of Stripe's answer; 0 when none was read.
func stripeStatus(se *stripe.Error) int {
	if se.HTTPStatusCode == 0 && se.LastResponse != nil {
		return se.LastResponse.StatusCode
	}
	return se.HTTPStatusCode
}

// stripeRetryAfter is the wait a Retry-After header (in seconds) asked for,
// capped at an hour; 0 leaves the delay to the retry policy.
func stripeRetryAfter(se *stripe.Error) time.Duration {
	if se.LastResponse == nil {
		return 0
	}
	secs, err := strconv.Atoi(strings.TrimSpace(se.LastResponse.Header.Get("Retry-After")))
	if err != nil || secs <= 0 {
		return 0
	}
	return min(time.Duration(secs)*time.Second, time.Hour)
}

// stripeKind names what went wrong, whether or not a retry can help.
func stripeKind(se *stripe.Error, status int) string {
	switch {
	case se.Type == stripe.ErrorTypeIdempotency:
		return ErrTypeConflict
	case status == http.StatusTooManyRequests:
		return ErrTypeRateLimited
	case status >= 500 || status == http.StatusConflict || status == http.StatusRequestTimeout || status == 0:
		return ErrTypeUnavailable
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return ErrTypeAuth
	case status == http.StatusNotFound:
		return ErrTypeNotFound
	default:
		return ErrTypeInvalid
	}
}

// apiKeyRE matches Stripe API keys, which some error messages quote.
var apiKeyRE = regexp.MustCompile(`\b((?:sk|rk|pk)_(?:test|live))_[0-9A-Za-z]+`)

// scrubStripeError copies the error without what must not reach a workflow
// history, where the error's text is stored: embedded objects (a
// PaymentIntent carries its client secret), the raw response, and any API
// key the message quotes. Err is dropped too, since its text is the
// original, unscrubbed error.
func scrubStripeError(se *stripe.Error) *stripe.Error {
	c := *se
	c.Err = nil
	c.LastResponse = nil
	c.PaymentIntent = nil
	c.PaymentMethod = nil
	c.SetupIntent = nil
	c.Source = nil
	c.Msg = apiKeyRE.ReplaceAllString(c.Msg, "${1}_***")
	return &c
}
