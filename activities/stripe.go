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
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/log"
)

// providerStripe names Stripe in error types: "StripeNotFound".
const providerStripe = "Stripe"

// stripeHTTPTimeout bounds one HTTP exchange below the activities'
// StartToCloseTimeout, so a hung connection fails as a retryable attempt
// instead of as an activity timeout.
const stripeHTTPTimeout = 20 * time.Second

// StripeActivities call Stripe through stripe-go with an injected client.
//
// A nil Stripe client is console mode: nothing is sent, and each activity
// logs what it would have done. The worker leaves Stripe nil when no secret
// key is configured, which is how `crmflow dev` runs without Stripe keys.
type StripeActivities struct {
	Stripe *client.API
	// Keys, when set, supplies the secret key at each call (key rotation
	// replaces it in the credential store); Stripe is then ignored, and no
	// active key means console mode.
	Keys KeySource
	// APIURL is Stripe's base URL for clients built from Keys.
	APIURL string
	// HTTPClient carries the calls of clients built from Keys (e.g. one
	// that measures them); nil means a plain client with Stripe's timeout.
	HTTPClient *http.Client
}

// StripeCredentialProvider and StripeCredentialName locate Stripe's secret
// key in the credential store.
const (
	StripeCredentialProvider = "stripe"
	StripeCredentialName     = "api_key"
)

// client returns the Stripe client for this call, nil for console mode.
func (a *StripeActivities) client(ctx context.Context) (*client.API, error) {
	if a.Keys == nil {
		return a.Stripe, nil
	}
	key, err := a.Keys.ActiveKey(ctx, StripeCredentialProvider, StripeCredentialName)
	if err != nil {
		return nil, transient("Stripe", ErrTypeUnavailable, fmt.Errorf("read stripe key: %w", err), 0)
	}
	if key == "" {
		return nil, nil
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
	return NewStripeClientWithHTTPClient(secretKey, apiURL, &http.Client{Timeout: stripeHTTPTimeout})
}

// NewStripeClientWithHTTPClient is NewStripeClient with the caller's HTTP
// client, for tests that observe the requests on the wire.
func NewStripeClientWithHTTPClient(secretKey, apiURL string, hc *http.Client) *client.API {
	if hc == nil {
		hc = &http.Client{Timeout: stripeHTTPTimeout}
	}
	backend := func(typ stripe.SupportedBackend) stripe.Backend {
		cfg := &stripe.BackendConfig{
			HTTPClient: hc,
			// Temporal's retry policy owns retries: stripe-go's own would
			// multiply the attempts and hide them from the workflow history.
			MaxNetworkRetries: stripe.Int64(0),
			// stripe-go prints every request to stdout; activities log
			// through Temporal's logger instead.
			LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
		}
		if apiURL != "" {
			cfg.URL = stripe.String(apiURL)
		}
		return stripe.GetBackendWithConfig(typ, cfg)
	}
	return client.New(secretKey, &stripe.Backends{
		API:     backend(stripe.APIBackend),
		Connect: backend(stripe.ConnectBackend),
		Uploads: backend(stripe.UploadsBackend),
	})
}

// RetrievePaymentIntentInput names the PaymentIntent to fetch.
type RetrievePaymentIntentInput struct {
	PaymentIntentID string
	// Snapshot is what the verified webhook said about the PaymentIntent.
	// Only console mode uses it, as the answer Stripe would have given.
	Snapshot *PaymentIntentSnapshot
}

// PaymentIntentSnapshot is what the workflows need of a PaymentIntent.
type PaymentIntentSnapshot struct {
	ID             string
	Amount         int64
	AmountReceived int64
	// Currency is lowercase ISO 4217, as Stripe writes it.
	Currency   string
	Status     string
	CustomerID string
	Metadata   map[string]string
}

// RetrievePaymentIntent fetches the PaymentIntent from Stripe, so amounts are
// checked against Stripe's record rather than against a webhook body alone.
func (a *StripeActivities) RetrievePaymentIntent(ctx context.Context, in RetrievePaymentIntentInput) (*PaymentIntentSnapshot, error) {
	if strings.TrimSpace(in.PaymentIntentID) == "" {
		return nil, invalidStripeInput("payment intent id is empty")
	}
	logger := log.With(activity.GetLogger(ctx), "paymentIntentID", in.PaymentIntentID)

	sc, err := a.client(ctx)
	if err != nil {
		return nil, err
	}
	if sc == nil {
		if in.Snapshot == nil {
			return nil, invalidStripeInput("console mode needs the webhook's payment intent snapshot")
		}
		if in.Snapshot.ID != in.PaymentIntentID {
			return nil, invalidStripeInput(fmt.Sprintf("snapshot is of payment intent %q, not %q", in.Snapshot.ID, in.PaymentIntentID))
		}
		logger.Info("CONSOLE MODE stripe: would call GET /v1/payment_intents/{id}; answering with the webhook's snapshot")
		snap := *in.Snapshot
		return &snap, nil
	}

	params := &stripe.PaymentIntentParams{}
	// Without the context, a cancelled or timed-out activity would leave
	// the HTTP call running.
	params.Context = ctx
	pi, err := sc.PaymentIntents.Get(in.PaymentIntentID, params)
	if err != nil {
		return nil, classifyStripe(err)
	}
	snap := &PaymentIntentSnapshot{
		ID:             pi.ID,
		Amount:         pi.Amount,
		AmountReceived: pi.AmountReceived,
		Currency:       string(pi.Currency),
		Status:         string(pi.Status),
		Metadata:       pi.Metadata,
	}
	if pi.Customer != nil {
		snap.CustomerID = pi.Customer.ID
	}
	logger.Info("stripe: retrieved payment intent", "status", snap.Status, "requestID", requestID(pi.LastResponse))
	return snap, nil
}

// CreditCustomerBalanceInput is a credit to a Stripe customer's balance.
type CreditCustomerBalanceInput struct {
	CustomerID string
	// AmountCents is the positive credit; Stripe records it as a negative
	// balance transaction.
	AmountCents int64
	Currency    string
	Description string
	Metadata    map[string]string
	// IdempotencyKey is required and must be derived from the workflow (ID +
	// step), so a Temporal retry replays Stripe's first answer instead of
	// crediting twice.
	IdempotencyKey string
}

// CreditCustomerBalanceOutput names the balance transaction made.
type CreditCustomerBalanceOutput struct {
	// BalanceTransactionID is Stripe's cbtxn_ id, or "console:" plus the
	// idempotency key in console mode, unique like a real one.
	BalanceTransactionID string
	// Console is true when nothing was sent to Stripe.
	Console bool
}

// CreditCustomerBalance credits the customer through a customer balance
// transaction, which Stripe applies to the customer's next invoices.
func (a *StripeActivities) CreditCustomerBalance(ctx context.Context, in CreditCustomerBalanceInput) (*CreditCustomerBalanceOutput, error) {
	// Negative is a credit to the customer.
	return a.balanceTransaction(ctx, in, -in.AmountCents, "credited")
}

// DebitCustomerBalance takes AmountCents back from the customer's balance
// (a clawback of an earlier credit); the input is the credit's shape.
func (a *StripeActivities) DebitCustomerBalance(ctx context.Context, in CreditCustomerBalanceInput) (*CreditCustomerBalanceOutput, error) {
	// Positive is a debit.
	return a.balanceTransaction(ctx, in, in.AmountCents, "debited")
}

// balanceTransaction creates one customer balance transaction of amount
// (Stripe's sign) with the input's idempotency key.
func (a *StripeActivities) balanceTransaction(ctx context.Context, in CreditCustomerBalanceInput, amount int64, verb string) (*CreditCustomerBalanceOutput, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	logger := log.With(activity.GetLogger(ctx), "customerID", in.CustomerID, "idempotencyKey", in.IdempotencyKey)

	sc, err := a.client(ctx)
	if err != nil {
		return nil, err
	}
	if sc == nil {
		logger.Info("CONSOLE MODE stripe: would call POST /v1/customers/{id}/balance_transactions",
			"amount", amount, "currency", in.Currency)
		return &CreditCustomerBalanceOutput{BalanceTransactionID: "console:" + in.IdempotencyKey, Console: true}, nil
	}

	params := &stripe.CustomerBalanceTransactionParams{
		Customer: stripe.String(in.CustomerID),
		Amount:   stripe.Int64(amount),
		Currency: stripe.String(in.Currency),
		Metadata: in.Metadata,
	}
	if in.Description != "" {
		params.Description = stripe.String(in.Description)
	}
	params.Context = ctx
	// Without a key stripe-go invents a random one per call, which would
	// make every Temporal retry a new transaction.
	params.SetIdempotencyKey(in.IdempotencyKey)
	txn, err := sc.CustomerBalanceTransactions.New(params)
	if err != nil {
		return nil, classifyStripe(err)
	}
	logger.Info("stripe: "+verb+" customer balance", "balanceTransactionID", txn.ID, "requestID", requestID(txn.LastResponse))
	return &CreditCustomerBalanceOutput{BalanceTransactionID: txn.ID}, nil
}

// currencyRE is Stripe's currency form: ISO 4217, lowercase.
var currencyRE = regexp.MustCompile(`^[a-z]{3}$`)

// validate rejects what Stripe would reject anyway, before anything is sent,
// and what Stripe would accept but we must not send (a credit with no
// idempotency key).
func (in CreditCustomerBalanceInput) validate() error {
	switch {
	case strings.TrimSpace(in.CustomerID) == "":
		return invalidStripeInput("customer id is empty")
	case in.AmountCents <= 0:
		return invalidStripeInput(fmt.Sprintf("credit amount must be positive, got %d", in.AmountCents))
	case !currencyRE.MatchString(in.Currency):
		return invalidStripeInput(fmt.Sprintf("currency %q is not three lowercase letters", in.Currency))
	case strings.TrimSpace(in.IdempotencyKey) == "":
		return invalidStripeInput("idempotency key is empty")
	case len(strings.TrimSpace(in.IdempotencyKey)) > 255:
		// stripe-go refuses these client-side with an untyped error that
		// would otherwise be retried forever.
		return invalidStripeInput("idempotency key is longer than 255 characters")
	}
	return nil
}

// invalidStripeInput is a permanent StripeInvalidRequest for a bad input.
func invalidStripeInput(msg string) error {
	return permanent(providerStripe, ErrTypeInvalid, errors.New(msg))
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
	status := se.HTTPStatusCode
	if status == 0 && se.LastResponse != nil {
		status = se.LastResponse.StatusCode
	}
	kind := stripeKind(se, status)
	retry := kind == ErrTypeRateLimited || kind == ErrTypeUnavailable
	if se.LastResponse != nil {
		switch se.LastResponse.Header.Get("Stripe-Should-Retry") {
		case "true":
			retry = true
		case "false":
			retry = false
		}
	}
	if retry {
		return transient(providerStripe, kind, scrubStripeError(se), stripeRetryAfter(se))
	}
	return permanent(providerStripe, kind, scrubStripeError(se))
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
