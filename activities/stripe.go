package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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

// invalidStripeInput is a permanent StripeInvalidRequest for a bad input.
func invalidStripeInput(msg string) error {
	return permanent(providerStripe, ErrTypeInvalid, errors.New(msg))
}
