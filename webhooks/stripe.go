package webhooks

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/crmflow/crmflow/inbox"
)

// stripe verifies a Stripe delivery and commits it to the inbox; the
// dispatcher hands it to Temporal. It answers 200 as soon as the commit is
// durable, as Stripe advises, and never waits for Temporal.
//
// API versions: stripe-go v76 expects events of API version 2023-10-16 and by
// default rejects others. crmflow reads only fields that every version since
// then carries unchanged (ids, amounts, currency, metadata, status,
// last_payment_error.message), so it accepts events of any version instead of
// failing deliveries whenever the Stripe account's version moves; the version
// is kept with the stored payload for operators.
func (h *Handler) stripe(w http.ResponseWriter, r *http.Request) {
	const provider = inbox.SourceStripe
	body, ok := h.readBody(w, r, provider)
	if !ok {
		return
	}
	secrets, err := h.secrets(r.Context(), "stripe_webhook", h.deps.Options.StripeSecret)
	if err != nil {
		h.unavailable(w, provider, "", err)
		return
	}
	header := r.Header.Get("Stripe-Signature")
	// stripe-go verifies with the last t= of the header; crmflow's own
	// future check reads its t= too. With one t= only, both read the same.
	if timestamps(header) > 1 {
		h.reject(w, provider, rejection{http.StatusBadRequest, "bad_signature", "Stripe-Signature carries more than one timestamp"})
		return
	}
	var ev stripego.Event
	err = webhook.ErrNoValidSignature
	// Any secret valid now may have signed it: during a rotation Stripe
	// signs with both the new and the old one.
	for _, secret := range secrets {
		ev, err = webhook.ConstructEventWithOptions(body, header, secret,
			webhook.ConstructEventOptions{Tolerance: h.deps.Options.Tolerance, IgnoreAPIVersionMismatch: true})
		if !errors.Is(err, webhook.ErrNoValidSignature) {
			break
		}
	}
	if err == nil && signedInFuture(header, h.deps.Options.Tolerance) {
		err = webhook.ErrTooOld // stripe-go checks only that a signature is not too old
	}
	if err != nil {
		h.reject(w, provider, stripeRejection(err))
		return
	}
	h.prove(r.Context(), "stripe_webhook", func(secret string) bool {
		_, err := webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), secret,
			webhook.ConstructEventOptions{Tolerance: h.deps.Options.Tolerance, IgnoreAPIVersionMismatch: true})
		return err == nil
	})
	if ev.ID == "" || ev.Type == "" || ev.Data == nil {
		h.reject(w, provider, rejection{http.StatusBadRequest, "malformed", "event has no id, type or data"})
		return
	}
	row, err := inbox.StripeEvent(ev, body)
	if err != nil {
		h.reject(w, provider, rejection{http.StatusBadRequest, "malformed", err.Error()})
		return
	}
	h.accept(w, r, row)
}

// timestamps counts the t= elements of a Stripe-Signature, split the way
// stripe-go splits it (on commas, the key exactly "t").
func timestamps(header string) int {
	n := 0
	for _, part := range strings.Split(header, ",") {
		if strings.HasPrefix(part, "t=") {
			n++
		}
	}
	return n
}

// signedInFuture reports whether a verified Stripe-Signature's timestamp is
// further ahead of our clock than the tolerance (default as stripe-go's).
// The header holds one t= (the handler refuses more), the one stripe-go
// verified.
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
