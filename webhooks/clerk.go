package webhooks

import (
	"errors"
	"net/http"

	"github.com/crmflow/crmflow/inbox"
)

// clerk verifies a Clerk delivery (signed by Svix) and commits it to the
// inbox; the dispatcher signals the user's entity (UserLifecycle).
//
// The signature is checked with Svix's own library; the timestamp with the
// configured tolerance (default 5 minutes, as Svix's), because the library's
// own tolerance cannot be configured. The signature, the timestamp and the
// event id are all read from one header set (see svixHeaderSet).
func (h *Handler) clerk(w http.ResponseWriter, r *http.Request) {
	const provider = inbox.SourceClerk
	body, ok := h.readBody(w, r, provider)
	if !ok {
		return
	}
	set, ok := h.verifySvix(w, r, provider, "clerk_webhook", h.deps.Options.ClerkSecret, body)
	if !ok {
		return
	}
	row, err := inbox.ClerkEvent(set.id, body)
	if errors.Is(err, inbox.ErrMalformed) {
		h.reject(w, provider, rejection{http.StatusBadRequest, "malformed", "body is not a Clerk event"})
		return
	}
	h.accept(w, r, row)
}
