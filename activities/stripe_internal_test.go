package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v76"
	"go.temporal.io/sdk/temporal"
)

// stripeErr builds the error stripe-go returns for an error response.
func stripeErr(status int, typ stripe.ErrorType, code stripe.ErrorCode, header http.Header) *stripe.Error {
	e := &stripe.Error{HTTPStatusCode: status, Type: typ, Code: code, Msg: "boom", RequestID: "req_1"}
	if header != nil {
		e.LastResponse = &stripe.APIResponse{Header: header, StatusCode: status}
	}
	return e
}

func TestClassifyStripe(t *testing.T) {
	shouldRetry := func(v string) http.Header { return http.Header{"Stripe-Should-Retry": {v}} }
	tests := []struct {
		name         string
		err          error
		wantType     string
		nonRetryable bool
	}{
		{"rate limited", stripeErr(429, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeRateLimit, nil), "StripeRateLimited", false},
		{"lock timeout", stripeErr(429, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeLockTimeout, nil), "StripeRateLimited", false},
		{"key in use by a concurrent request", stripeErr(409, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeIdempotencyKeyInUse, nil), "StripeUnavailable", false},
		{"key reused with other params", stripeErr(409, stripe.ErrorTypeIdempotency, "", nil), "StripeConflict", true},
		{"idempotency error on another status", stripeErr(400, stripe.ErrorTypeIdempotency, "", nil), "StripeConflict", true},
		{"500", stripeErr(500, stripe.ErrorTypeAPI, "", nil), "StripeUnavailable", false},
		{"503", stripeErr(503, stripe.ErrorTypeAPI, "", nil), "StripeUnavailable", false},
		{"401", stripeErr(401, stripe.ErrorTypeInvalidRequest, "", nil), "StripeAuthFailed", true},
		{"403", stripeErr(403, stripe.ErrorTypeInvalidRequest, "", nil), "StripeAuthFailed", true},
		{"404", stripeErr(404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing, nil), "StripeNotFound", true},
		{"400", stripeErr(400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeParameterMissing, nil), "StripeInvalidRequest", true},
		{"card declined", stripeErr(402, stripe.ErrorTypeCard, stripe.ErrorCodeCardDeclined, nil), "StripeInvalidRequest", true},
		{"status only in the response", &stripe.Error{Type: stripe.ErrorTypeInvalidRequest,
			APIResource: stripe.APIResource{LastResponse: &stripe.APIResponse{StatusCode: 404, Header: http.Header{}}}}, "StripeNotFound", true},
		{"should-retry false beats 503", stripeErr(503, stripe.ErrorTypeAPI, "", shouldRetry("false")), "StripeUnavailable", true},
		{"should-retry false beats 409", stripeErr(409, stripe.ErrorTypeInvalidRequest, "", shouldRetry("false")), "StripeUnavailable", true},
		{"should-retry true beats 400", stripeErr(400, stripe.ErrorTypeInvalidRequest, "", shouldRetry("true")), "StripeInvalidRequest", false},
		{"should-retry true on 429", stripeErr(429, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeLockTimeout, shouldRetry("true")), "StripeRateLimited", false},
		{"wrapped stripe error", fmt.Errorf("get: %w", stripeErr(404, stripe.ErrorTypeInvalidRequest, "", nil)), "StripeNotFound", true},
		{"connection refused", &url.Error{Op: "Post", URL: "http://127.0.0.1:1/v1/customers", Err: syscall.ECONNREFUSED}, "StripeUnavailable", false},
		{"deadline", context.DeadlineExceeded, "StripeUnavailable", false},
		{"unreadable body", errors.New("Couldn't deserialize JSON (response status: 502, body sample: '<html>')"), "StripeUnavailable", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classifyStripe(tt.err)
			var appErr *temporal.ApplicationError
			require.ErrorAs(t, err, &appErr)
			assert.Equal(t, tt.wantType, appErr.Type())
			assert.Equal(t, tt.nonRetryable, appErr.NonRetryable())
			// Stripe sends no Retry-After; Temporal's backoff decides.
			assert.Zero(t, appErr.NextRetryDelay())
		})
	}
}

func TestClassifyStripeNil(t *testing.T) {
	assert.NoError(t, classifyStripe(nil))
}

// The error's text lands in workflow histories and dead letters, so it must
// not carry secrets.
func TestClassifyStripeScrubsSecrets(t *testing.T) {
	orig := &stripe.Error{
		HTTPStatusCode: 402, Type: stripe.ErrorTypeCard, Code: stripe.ErrorCodeCardDeclined,
		Msg:           "Invalid API Key provided: sk_live_51AbCdEfGhIjKlMn and rk_test_XyZ123",
		RequestID:     "req_42",
		PaymentIntent: &stripe.PaymentIntent{ID: "pi_1", ClientSecret: "pi_1_secret_topsecret"},
		SetupIntent:   &stripe.SetupIntent{ID: "seti_1", ClientSecret: "seti_1_secret_topsecret"},
		APIResource:   stripe.APIResource{LastResponse: &stripe.APIResponse{RawJSON: []byte(`{"client_secret":"pi_1_secret_topsecret"}`)}},
	}
	err := classifyStripe(orig)

	for e := err; e != nil; e = errors.Unwrap(e) {
		assert.NotContains(t, e.Error(), "topsecret")
		assert.NotContains(t, e.Error(), "51AbCdEfGhIjKlMn")
		assert.NotContains(t, e.Error(), "XyZ123")
	}
	assert.Contains(t, err.Error(), "sk_live_***")
	assert.Contains(t, err.Error(), "req_42", "the request id is what Stripe support asks for")
	assert.Equal(t, "pi_1_secret_topsecret", orig.PaymentIntent.ClientSecret, "the caller's error is not modified")
	var se *stripe.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, stripe.ErrorCodeCardDeclined, se.Code)
}

func TestCreditCustomerBalanceInputValidate(t *testing.T) {
	valid := CreditCustomerBalanceInput{CustomerID: "cus_1", AmountCents: 500, Currency: "usd", IdempotencyKey: "k"}
	require.NoError(t, valid.validate())

	long := make([]byte, 256)
	for i := range long {
		long[i] = 'k'
	}
	tests := map[string]func(*CreditCustomerBalanceInput){
		"no customer":         func(in *CreditCustomerBalanceInput) { in.CustomerID = " " },
		"zero amount":         func(in *CreditCustomerBalanceInput) { in.AmountCents = 0 },
		"negative amount":     func(in *CreditCustomerBalanceInput) { in.AmountCents = -500 },
		"uppercase currency":  func(in *CreditCustomerBalanceInput) { in.Currency = "USD" },
		"short currency":      func(in *CreditCustomerBalanceInput) { in.Currency = "us" },
		"no currency":         func(in *CreditCustomerBalanceInput) { in.Currency = "" },
		"no idempotency key":  func(in *CreditCustomerBalanceInput) { in.IdempotencyKey = "" },
		"blank key":           func(in *CreditCustomerBalanceInput) { in.IdempotencyKey = "  " },
		"key over 255 chars":  func(in *CreditCustomerBalanceInput) { in.IdempotencyKey = string(long) },
		"currency with space": func(in *CreditCustomerBalanceInput) { in.Currency = "usd " },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			in := valid
			mutate(&in)
			var appErr *temporal.ApplicationError
			require.ErrorAs(t, in.validate(), &appErr)
			assert.Equal(t, "StripeInvalidRequest", appErr.Type())
			assert.True(t, appErr.NonRetryable())
		})
	}
}
