package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/log"
)

// providerStripe names Stripe in error types: "StripeNotFound".
const providerStripe = "Stripe"

// StripeActivities call Stripe through stripe-go with an injected client.
//
// In console mode (Console) nothing is sent: each activity logs what it
// would have done and answers as Stripe would have. The worker sets it at
// start for a Stripe with no configured secret key, which is how `crmflow
// dev` runs without Stripe keys. It is never chosen at call time: a Stripe
// that is not in console mode and has no key fails each call with a
// non-retryable StripeCredentialMissing, so a revoked key parks the step
// for an operator instead of confirming orders from webhook snapshots or
// recording credits that were never made.
type StripeActivities struct {
	// Console is console mode, decided at start; Stripe and Keys are then
	// never used.
	Console bool
	// Stripe is the client when Keys is nil: a fixed key, as tests and
	// tools use.
	Stripe *client.API
	// Keys, when set, supplies the secret key at each call (key rotation
	// replaces it in the credential store); Stripe is then ignored.
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

// RetrievePaymentIntentInput names the PaymentIntent to fetch.
type RetrievePaymentIntentInput struct {
	PaymentIntentID string `json:"PaymentIntentID"`
	// Snapshot is what the verified webhook said about the PaymentIntent.
	// Only console mode uses it, as the answer Stripe would have given;
	// with Stripe configured it is never trusted in Stripe's place.
	Snapshot *PaymentIntentSnapshot `json:"Snapshot"`
}

// PaymentIntentSnapshot is what the workflows need of a PaymentIntent.
type PaymentIntentSnapshot struct {
	ID             string `json:"ID"`
	Amount         int64  `json:"Amount"`
	AmountReceived int64  `json:"AmountReceived"`
	// Currency is lowercase ISO 4217, as Stripe writes it.
	Currency   string            `json:"Currency"`
	Status     string            `json:"Status"`
	CustomerID string            `json:"CustomerID"`
	Metadata   map[string]string `json:"Metadata"`
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
	CustomerID string `json:"CustomerID"`
	// AmountCents is the positive credit; Stripe records it as a negative
	// balance transaction.
	AmountCents int64             `json:"AmountCents"`
	Currency    string            `json:"Currency"`
	Description string            `json:"Description"`
	Metadata    map[string]string `json:"Metadata"`
	// IdempotencyKey is required and must be derived from the workflow (ID +
	// step), so a Temporal retry replays Stripe's first answer instead of
	// crediting twice.
	IdempotencyKey string `json:"IdempotencyKey"`
}

// consoleIDPrefix starts the ids console mode makes up in place of a
// provider's, such as a balance transaction's.
const consoleIDPrefix = "console:"

// CreditCustomerBalanceOutput names the balance transaction made.
type CreditCustomerBalanceOutput struct {
	// BalanceTransactionID is Stripe's cbtxn_ id, or "console:" plus the
	// idempotency key in console mode, unique like a real one.
	BalanceTransactionID string `json:"BalanceTransactionID"`
	// Console is true when nothing was sent to Stripe.
	Console bool `json:"Console"`
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
		return &CreditCustomerBalanceOutput{BalanceTransactionID: consoleIDPrefix + in.IdempotencyKey, Console: true}, nil
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
