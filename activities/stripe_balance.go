package activities

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
)

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
	// LookFor, when set, makes the call look among the customer's balance
	// transactions for the one an earlier attempt made, and create one only
	// when there is none. Stripe forgets an idempotency key after 24 hours,
	// so the key alone cannot keep a retry days later from moving the money
	// again. Nil creates at once, as runs from before the look-up did.
	LookFor *BalanceMatch `json:"look_for,omitempty"`
}

// BalanceMatch says which balance transaction is the one a money step made.
type BalanceMatch struct {
	// Metadata names the step: a transaction whose metadata holds every
	// pair is the step's. The call sets the pairs on the transaction it
	// creates.
	Metadata map[string]string `json:"metadata"`
	// Legacy, optional, also matches a transaction made before steps were
	// named this way: one without the Metadata keys whose metadata holds
	// every Legacy pair, in the same currency and of the same sign (a credit
	// or a debit).
	Legacy map[string]string `json:"legacy,omitempty"`
	// Since bounds the look-up: Stripe lists newest first, and nothing
	// created before the step could first have run (the referral's
	// creation, for the referral's steps) can be the step's. Zero reads the
	// customer's whole list.
	Since time.Time `json:"since"`
}

// CreditCustomerBalanceOutput names the balance transaction made.
type CreditCustomerBalanceOutput struct {
	// BalanceTransactionID is Stripe's cbtxn_ id, or "console:" plus the
	// idempotency key in console mode, unique like a real one.
	BalanceTransactionID string `json:"BalanceTransactionID"`
	// Console is true when nothing was sent to Stripe.
	Console bool `json:"Console"`
	// Found is true when the look-up found the transaction an earlier
	// attempt made, so nothing was created.
	Found bool `json:"found,omitempty"`
	// IdempotencyKey is the key the creating request carried; "" when the
	// transaction was found or nothing was sent.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// StripeKeyAnswer is the detail of the error of a creating request that
// Stripe answered with a 5xx. Stripe stores even a 500 under the idempotency
// key and replays it for as long as it keeps the key (24 hours), so the
// workflow sends its next attempt with a fresh key; that attempt's look-up
// first tells whether the failed request moved the money after all.
type StripeKeyAnswer struct {
	IdempotencyKey string `json:"idempotency_key"`
	Status         int    `json:"status"`
	// Replayed: Stripe answered with the response it stored under the key
	// (Idempotent-Replayed: true), which a retry with the key only repeats.
	Replayed bool `json:"replayed"`
}

// consoleIDPrefix starts the ids console mode makes up in place of a
// provider's, such as a balance transaction's.
const consoleIDPrefix = "console:"

// maxBalanceScan bounds the look-up, so a customer with an enormous history
// cannot keep the activity listing until its timeout. Reaching it is a
// permanent StripeConflict: crediting without having looked could pay twice.
const maxBalanceScan = 10_000

// balanceClockSkew widens the look-up's Since: a transaction's created time
// is Stripe's clock, Since the workflow's.
const balanceClockSkew = time.Hour

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

// balanceTransaction makes one customer balance transaction of amount
// (Stripe's sign) with the input's idempotency key, after looking for the
// one an earlier attempt made when the input asks to.
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

	// The look-up pages and the creation follows: one heartbeat per call.
	ctx = heartbeatPerCall(ctx)
	metadata := in.Metadata
	if in.LookFor != nil {
		found, err := findBalanceTransaction(ctx, sc, in, amount)
		if err != nil {
			return nil, err
		}
		if found != nil {
			if found.Amount != amount {
				logger.Warn("stripe: the step's balance transaction has another amount", "balanceTransactionID", found.ID,
					"amount", found.Amount, "want", amount)
			}
			logger.Info("stripe: an earlier attempt made the balance transaction; not moving money again",
				"balanceTransactionID", found.ID)
			return &CreditCustomerBalanceOutput{BalanceTransactionID: found.ID, Found: true}, nil
		}
		metadata = maps.Clone(in.Metadata)
		if metadata == nil {
			metadata = map[string]string{}
		}
		maps.Copy(metadata, in.LookFor.Metadata)
	}

	params := &stripe.CustomerBalanceTransactionParams{
		Customer: stripe.String(in.CustomerID),
		Amount:   stripe.Int64(amount),
		Currency: stripe.String(in.Currency),
		Metadata: metadata,
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
		return nil, classifyStripeCreate(err, in.IdempotencyKey)
	}
	logger.Info("stripe: "+verb+" customer balance", "balanceTransactionID", txn.ID, "requestID", requestID(txn.LastResponse))
	return &CreditCustomerBalanceOutput{BalanceTransactionID: txn.ID, IdempotencyKey: in.IdempotencyKey}, nil
}

// findBalanceTransaction pages through the customer's balance transactions,
// newest first, back to the look-up's Since, and returns the step's, or nil.
func findBalanceTransaction(ctx context.Context, sc *client.API, in CreditCustomerBalanceInput, amount int64) (*stripe.CustomerBalanceTransaction, error) {
	params := &stripe.CustomerBalanceTransactionListParams{Customer: stripe.String(in.CustomerID)}
	params.Context = ctx
	params.Limit = stripe.Int64(100)
	oldest := int64(0)
	if !in.LookFor.Since.IsZero() {
		oldest = in.LookFor.Since.Add(-balanceClockSkew).Unix()
	}
	it := sc.CustomerBalanceTransactions.List(params)
	for n := 0; it.Next(); n++ {
		if n == maxBalanceScan {
			return nil, permanent(providerStripe, ErrTypeConflict, fmt.Errorf(
				"customer %s has more than %d balance transactions since %s: cannot tell whether the step moved money already",
				in.CustomerID, maxBalanceScan, in.LookFor.Since.UTC().Format(time.RFC3339)))
		}
		t := it.CustomerBalanceTransaction()
		if t.Created < oldest {
			break
		}
		if in.LookFor.matches(t, amount, in.Currency) {
			return t, nil
		}
	}
	if err := it.Err(); err != nil {
		return nil, classifyStripe(err)
	}
	return nil, nil
}

// matches reports whether t is the step's transaction; amount and currency
// are the step's, for Legacy matches.
func (m *BalanceMatch) matches(t *stripe.CustomerBalanceTransaction, amount int64, currency string) bool {
	if hasPairs(t.Metadata, m.Metadata) {
		return true
	}
	if len(m.Legacy) == 0 || !hasPairs(t.Metadata, m.Legacy) || string(t.Currency) != currency || (t.Amount < 0) != (amount < 0) {
		return false
	}
	for k := range m.Metadata {
		if _, marked := t.Metadata[k]; marked {
			return false // named, and for another step
		}
	}
	return true
}

func hasPairs(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// classifyStripeCreate classifies a creating request's error as
// classifyStripe does and, for a 5xx answer, attaches a StripeKeyAnswer. A
// replayed 5xx is a permanent StripeStoredFailure: Stripe gives the same
// answer to the key for as long as it keeps it, so only a fresh key helps.
func classifyStripeCreate(err error, key string) error {
	var se *stripe.Error
	if !errors.As(err, &se) || stripeStatus(se) < 500 {
		return classifyStripe(err)
	}
	ans := StripeKeyAnswer{IdempotencyKey: key, Status: stripeStatus(se)}
	if se.LastResponse != nil {
		ans.Replayed = strings.EqualFold(se.LastResponse.Header.Get("Idempotent-Replayed"), "true")
	}
	if ans.Replayed {
		return temporal.NewApplicationErrorWithOptions(
			fmt.Sprintf("%s: %v (replayed: Stripe stored this answer under key %s)", providerStripe, scrubStripeError(se), key),
			ErrorType(providerStripe, ErrTypeStoredFailure),
			temporal.ApplicationErrorOptions{NonRetryable: true, Cause: scrubStripeError(se), Details: []any{ans}})
	}
	return classifiedStripe(se, ans)
}

// currencyRE is Stripe's currency form: ISO 4217, lowercase.
var currencyRE = regexp.MustCompile(`^[a-z]{3}$`)

// metadataKeyMax is Stripe's limit on a metadata key's length.
const metadataKeyMax = 40

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
	case in.LookFor != nil && len(in.LookFor.Metadata) == 0:
		// Every transaction would match: the first one found would be
		// taken for the step's.
		return invalidStripeInput("a look-up needs the metadata that names the step")
	}
	if in.LookFor != nil {
		for k, v := range in.LookFor.Metadata {
			if k == "" || len(k) > metadataKeyMax || v == "" {
				return invalidStripeInput(fmt.Sprintf("look-up metadata %q=%q: keys are 1 to %d characters, values not empty", k, v, metadataKeyMax))
			}
		}
	}
	return nil
}
