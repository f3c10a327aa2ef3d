package webhooks

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	svix "github.com/svix/svix-webhooks/go"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
)

// providerClerk names Clerk's rows in the inbox.
const providerClerk = "clerk"

// Clerk event types crmflow acts on.
const (
	clerkUserCreated = "user.created"
	clerkUserDeleted = "user.deleted"
)

// clerkEvent is the part of Clerk's webhook envelope crmflow reads.
type clerkEvent struct {
	Type string `json:"type"`
	Data struct {
		ID                    string `json:"id"`
		PrimaryEmailAddressID string `json:"primary_email_address_id"`
		EmailAddresses        []struct {
			ID           string `json:"id"`
			EmailAddress string `json:"email_address"`
		} `json:"email_addresses"`
	} `json:"data"`
}

// primaryEmail is the user's primary address, as Clerk marks it.
func (e *clerkEvent) primaryEmail() string {
	for _, a := range e.Data.EmailAddresses {
		if a.ID == e.Data.PrimaryEmailAddressID {
			return a.EmailAddress
		}
	}
	return ""
}

// clerkUserKey orders a user's events: user.created and user.deleted of one
// user fan out to several alias workflows, so they share one inbox key.
func clerkUserKey(userID string) string { return "clerk-user/" + userID }

// clerkWebhook verifies a Clerk delivery (signed by Svix) and commits it to
// the inbox; the dispatcher signals the alias workflows it concerns.
//
// The signature is checked with Svix's own library; the timestamp with the
// configured tolerance (default 5 minutes, as Svix's), because the library's
// own tolerance cannot be configured.
func (s *Server) clerkWebhook(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r, providerClerk)
	if !ok {
		return
	}
	verifiers, err := s.clerkVerifiers(r.Context())
	if err != nil {
		s.unavailable(w, providerClerk, "", err)
		return
	}
	if len(verifiers) == 0 {
		s.reject(w, providerClerk, rejection{http.StatusBadRequest, "bad_signature", "no Clerk webhook secret is configured"})
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
		s.reject(w, providerClerk, rejection{http.StatusBadRequest, "bad_signature", "Svix signature does not verify"})
		return
	}
	ts, err := strconv.ParseInt(headerEither(r.Header, "svix-timestamp", "webhook-timestamp"), 10, 64)
	if err != nil {
		s.reject(w, providerClerk, rejection{http.StatusBadRequest, "bad_signature", "svix-timestamp is not a Unix time"})
		return
	}
	if age := time.Since(time.Unix(ts, 0)); age > s.deps.Webhooks.Tolerance || -age > s.deps.Webhooks.Tolerance {
		s.reject(w, providerClerk, rejection{http.StatusBadRequest, "stale_timestamp", "signature timestamp is outside the tolerance"})
		return
	}
	var ev clerkEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.Type == "" {
		s.reject(w, providerClerk, rejection{http.StatusBadRequest, "malformed", "body is not a Clerk event"})
		return
	}
	workflowID, ignored := "", ""
	switch {
	case ev.Type != clerkUserCreated && ev.Type != clerkUserDeleted:
		ignored = "event type " + ev.Type + " is not handled"
	case contract.ValidateKey("user id", ev.Data.ID) != nil:
		ignored = "event has no usable user id"
	default:
		workflowID = clerkUserKey(ev.Data.ID)
	}
	s.accept(w, r, store.InboxEvent{
		Provider: providerClerk, EventID: headerEither(r.Header, "svix-id", "webhook-id"),
		EventType: ev.Type, WorkflowID: workflowID, Payload: body,
	}, ignored)
}

// headerEither reads Svix's header or its standard-webhooks fallback.
func headerEither(h http.Header, name, fallback string) string {
	if v := h.Get(name); v != "" {
		return v
	}
	return h.Get(fallback)
}

// clerkVerifiers are the Svix verifiers of the secrets valid now.
func (s *Server) clerkVerifiers(ctx context.Context) ([]*svix.Webhook, error) {
	if s.deps.WebhookSecrets == nil {
		if s.clerk == nil {
			return nil, nil
		}
		return []*svix.Webhook{s.clerk}, nil
	}
	secrets, err := s.deps.WebhookSecrets(ctx, "clerk_webhook")
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
