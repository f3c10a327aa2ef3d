package webhooks

import (
	"errors"
	"net/http"

	"github.com/crmflow/crmflow/inbox"
)

// resend verifies a Resend delivery (email.delivered, email.bounced, …),
// signed by Svix exactly as Clerk's are (verifySvix), and commits it to the
// inbox, routed to the email it is about; the dispatcher updates the
// emails row and the suppressions, and alerts operators to a complaint.
func (h *Handler) resend(w http.ResponseWriter, r *http.Request) {
	const provider = inbox.SourceResend
	body, ok := h.readBody(w, r, provider)
	if !ok {
		return
	}
	set, ok := h.verifySvix(w, r, provider, "resend_webhook", h.deps.Options.ResendSecret, body)
	if !ok {
		return
	}
	row, err := inbox.ResendEvent(set.id, body)
	if errors.Is(err, inbox.ErrMalformed) {
		h.reject(w, provider, rejection{http.StatusBadRequest, "malformed", "body is not a Resend event"})
		return
	}
	h.accept(w, r, row)
}
