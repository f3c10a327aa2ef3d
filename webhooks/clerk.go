package webhooks

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	svix "github.com/svix/svix-webhooks/go"

	"github.com/crmflow/crmflow/inbox"
)

// clerk verifies a Clerk delivery (signed by Svix) and commits it to the
// inbox; the dispatcher signals the alias workflows it concerns.
//
// The signature is checked with Svix's own library; the timestamp with the
// configured tolerance (default 5 minutes, as Svix's), because the library's
// own tolerance cannot be configured.
func (h *Handler) clerk(w http.ResponseWriter, r *http.Request) {
	const provider = inbox.SourceClerk
	body, ok := h.readBody(w, r, provider)
	if !ok {
		return
	}
	verifiers, err := h.clerkVerifiers(r.Context())
	if err != nil {
		h.unavailable(w, provider, "", err)
		return
	}
	if len(verifiers) == 0 {
		h.reject(w, provider, rejection{http.StatusBadRequest, "bad_signature", "no Clerk webhook secret is configured"})
		return
	}
	verified := false
	for _, v := range verifiers {
		if v.VerifyIgnoringTimestamp(body, r.Header) == nil {
			verified = true
			break
		}
	}
	if !verified {
		h.reject(w, provider, rejection{http.StatusBadRequest, "bad_signature", "Svix signature does not verify"})
		return
	}
	h.prove(r.Context(), "clerk_webhook", func(secret string) bool {
		v := newClerkVerifier(secret)
		return v != nil && v.VerifyIgnoringTimestamp(body, r.Header) == nil
	})
	ts, err := strconv.ParseInt(headerEither(r.Header, "svix-timestamp", "webhook-timestamp"), 10, 64)
	if err != nil {
		h.reject(w, provider, rejection{http.StatusBadRequest, "bad_signature", "svix-timestamp is not a Unix time"})
		return
	}
	if age := time.Since(time.Unix(ts, 0)); age > h.deps.Options.Tolerance || -age > h.deps.Options.Tolerance {
		h.reject(w, provider, rejection{http.StatusBadRequest, "stale_timestamp", "signature timestamp is outside the tolerance"})
		return
	}
	row, err := inbox.ClerkEvent(headerEither(r.Header, "svix-id", "webhook-id"), body)
	if errors.Is(err, inbox.ErrMalformed) {
		h.reject(w, provider, rejection{http.StatusBadRequest, "malformed", "body is not a Clerk event"})
		return
	}
	h.accept(w, r, row)
}

// headerEither reads Svix's header or its standard-webhooks fallback.
func headerEither(hd http.Header, name, fallback string) string {
	if v := hd.Get(name); v != "" {
		return v
	}
	return hd.Get(fallback)
}

// clerkVerifiers are the Svix verifiers of the secrets valid now.
func (h *Handler) clerkVerifiers(ctx context.Context) ([]*svix.Webhook, error) {
	secrets, err := h.secrets(ctx, "clerk_webhook", h.deps.Options.ClerkSecret)
	if err != nil {
		return nil, err
	}
	var out []*svix.Webhook
	for _, secret := range secrets {
		if v := newClerkVerifier(secret); v != nil {
			out = append(out, v)
		}
	}
	return out, nil
}

// newClerkVerifier builds the Svix verifier, or nil when no usable secret is
// configured: then every delivery is rejected rather than accepted unsigned.
func newClerkVerifier(secret string) *svix.Webhook {
	if secret == "" {
		return nil
	}
	wh, err := svix.NewWebhook(secret)
	if err != nil {
		// Config validation rejects such a secret before we get here.
		return nil
	}
	return wh
}
