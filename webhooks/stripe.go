package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
)

// providerStripe names Stripe's rows in the inbox.
const providerStripe = "stripe"

// routeStripe works out which workflow a verified Stripe event is for, or
// why it is ignored. A refund is routed to the reward of the referral its
// order qualified, found through the PaymentIntent it refunds (Stripe puts
// our metadata on the PaymentIntent, not on the charge).
func (s *Server) routeStripe(ctx context.Context, ev stripego.Event) (workflowID, ignored string, err error) {
	switch ev.Type {
	case stripego.EventTypeChargeRefunded:
		var ch stripego.Charge
		if err := json.Unmarshal(ev.Data.Raw, &ch); err != nil {
			return "", "charge does not decode: " + err.Error(), nil
		}
		if ch.PaymentIntent == nil || ch.PaymentIntent.ID == "" {
			return "", "refunded charge has no payment_intent", nil
		}
		target, ok, err := s.deps.Store.ReferralForPaymentIntent(ctx, ch.PaymentIntent.ID)
		if err != nil {
			return "", "", err
		}
		if !ok {
			return "", "refund of an order that qualified no referral reward", nil
		}
		return contract.ReferralRewardID(target.ReferralID), "", nil
	case stripego.EventTypePaymentIntentSucceeded, stripego.EventTypePaymentIntentPaymentFailed:
		var pi stripego.PaymentIntent
		if err := json.Unmarshal(ev.Data.Raw, &pi); err != nil {
			return "", "payment intent does not decode: " + err.Error(), nil
		}
		orderID := pi.Metadata["order_id"]
		if err := contract.ValidateKey("metadata.order_id", orderID); err != nil {
			return "", "not an order payment: " + err.Error(), nil
		}
		return contract.OrderConfirmationID(orderID), "", nil
	default:
		return "", "event type " + string(ev.Type) + " is not handled", nil
	}
}

// stripeWebhook verifies a Stripe delivery and commits it to the inbox; the
// dispatcher hands it to Temporal. It answers 200 as soon as the commit is
// durable, as Stripe advises, and never waits for Temporal.
//
// API versions: stripe-go v76 expects events of API version 2023-10-16 and by
// default rejects others. crmflow reads only fields that every version since
// then carries unchanged (ids, amounts, currency, metadata, status,
// last_payment_error.message), so it accepts events of any version instead of
// failing deliveries whenever the Stripe account's version moves; the version
// is kept with the stored payload for operators.
func (s *Server) stripeWebhook(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r, providerStripe)
	if !ok {
		return
	}
	secrets, err := s.webhookSecrets(r.Context(), "stripe_webhook", s.deps.Webhooks.StripeSecret)
	if err != nil {
		s.unavailable(w, providerStripe, "", err)
		return
	}
	var ev stripego.Event
	err = webhook.ErrNoValidSignature
	// Any secret valid now may have signed it: during a rotation Stripe
	// signs with both the new and the old one.
	for _, secret := range secrets {
		ev, err = webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), secret,
			webhook.ConstructEventOptions{Tolerance: s.deps.Webhooks.Tolerance, IgnoreAPIVersionMismatch: true})
		if !errors.Is(err, webhook.ErrNoValidSignature) {
			break
		}
	}
	if err == nil && signedInFuture(r.Header.Get("Stripe-Signature"), s.deps.Webhooks.Tolerance) {
		err = webhook.ErrTooOld // stripe-go checks only that a signature is not too old
	}
	if err != nil {
		s.reject(w, providerStripe, stripeRejection(err))
		return
	}
	if ev.ID == "" || ev.Type == "" || ev.Data == nil {
		s.reject(w, providerStripe, rejection{http.StatusBadRequest, "malformed", "event has no id, type or data"})
		return
	}
	workflowID, ignored, err := s.routeStripe(r.Context(), ev)
	if err != nil {
		s.unavailable(w, providerStripe, ev.ID, err)
		return
	}
	s.accept(w, r, store.InboxEvent{
		Provider: providerStripe, EventID: ev.ID, EventType: string(ev.Type), WorkflowID: workflowID, Payload: body,
	}, ignored)
}

// webhookSecrets are the signing secrets of provider valid now.
func (s *Server) webhookSecrets(ctx context.Context, provider, static string) ([]string, error) {
	if s.deps.WebhookSecrets == nil {
		if static == "" {
			return nil, nil
		}
		return []string{static}, nil
	}
	return s.deps.WebhookSecrets(ctx, provider)
}

// signedInFuture reports whether a verified Stripe-Signature's timestamp is
// further ahead of our clock than the tolerance (default as stripe-go's).
func signedInFuture(header string, tolerance time.Duration) bool {
	if tolerance <= 0 {
		tolerance = webhook.DefaultTolerance
	}
	for _, part := range strings.Split(header, ",") {
		if v, ok := strings.CutPrefix(part, "t="); ok {
			ts, err := strconv.ParseInt(v, 10, 64)
			return err == nil && time.Until(time.Unix(ts, 0)) > tolerance
		}
	}
	return false
}

// rejection is a webhook refused before anything is stored.
type rejection struct {
	status  int
	code    string
	message string
}

func stripeRejection(err error) rejection {
	switch {
	case errors.Is(err, webhook.ErrTooOld):
		return rejection{http.StatusBadRequest, "stale_timestamp", "signature timestamp is outside the tolerance"}
	case errors.Is(err, webhook.ErrNotSigned), errors.Is(err, webhook.ErrInvalidHeader), errors.Is(err, webhook.ErrNoValidSignature):
		return rejection{http.StatusBadRequest, "bad_signature", "Stripe-Signature does not verify"}
	default:
		// The signature verified but the body is not a Stripe event.
		return rejection{http.StatusBadRequest, "malformed", "body is not a Stripe event: " + err.Error()}
	}
}

// readBody reads at most the configured limit of a provider's delivery;
// larger bodies get 413 and nothing is stored. Both refusals count as
// rejected deliveries of the provider.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, provider string) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.deps.Webhooks.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		s.reject(w, provider, rejection{http.StatusRequestEntityTooLarge, "too_large",
			fmt.Sprintf("body is larger than %d bytes", s.deps.Webhooks.MaxBodyBytes)})
		return nil, false
	case err != nil:
		s.reject(w, provider, rejection{http.StatusBadRequest, "unreadable", "could not read the body"})
		return nil, false
	}
	return body, true
}

func (s *Server) reject(w http.ResponseWriter, provider string, rj rejection) {
	s.metrics.webhooks.WithLabelValues(provider, "rejected_"+rj.code).Inc()
	writeError(w, rj.status, rj.code, rj.message)
}

// unavailable answers 503 when PostgreSQL fails, so the provider retries.
// A body whose text PostgreSQL refuses is no outage: it is refused with 400.
func (s *Server) unavailable(w http.ResponseWriter, provider, eventID string, err error) {
	if isDataException(err) {
		s.reject(w, provider, rejection{http.StatusBadRequest, "malformed", "body holds text the inbox cannot store"})
		return
	}
	s.deps.Logger.Error("Inbox commit failed; provider will retry", "provider", provider, "eventID", eventID, "error", err)
	s.metrics.webhooks.WithLabelValues(provider, "unavailable").Inc()
	writeError(w, http.StatusServiceUnavailable, "unavailable", "could not store the event; retry later")
}

// accept commits a verified event to the inbox. PostgreSQL unreachable means
// 503, so the provider retries later and nothing is lost.
func (s *Server) accept(w http.ResponseWriter, r *http.Request, ev store.InboxEvent, ignored string) {
	ev.TraceParent = traceParentOf(r.Context())
	inserted, err := s.deps.Store.InsertInboxEvent(r.Context(), ev, ignored)
	if err != nil {
		s.unavailable(w, ev.Provider, ev.EventID, err)
		return
	}
	outcome := "accepted"
	switch {
	case !inserted:
		outcome = "duplicate"
	case ignored != "":
		outcome = "ignored"
	default:
		s.deps.Dispatcher.Poke()
	}
	s.metrics.webhooks.WithLabelValues(ev.Provider, outcome).Inc()
	writeJSON(w, http.StatusOK, map[string]any{"received": true, "duplicate": !inserted})
}
