package api

import (
	"net/http"
	"net/mail"

	"github.com/crmflow/crmflow/internal/httpserver"
	"github.com/crmflow/crmflow/internal/store"
)

// suppressionListLimit bounds GET /v1/email/suppressions; a list longer
// than this is a deliverability incident to handle at Resend, not here.
const suppressionListLimit = 1000

// listSuppressions: GET /v1/email/suppressions, newest first: the
// addresses crmflow sends no more email to, and why.
func (a *API) listSuppressions(w http.ResponseWriter, r *http.Request) {
	list, err := a.deps.Store.ListSuppressions(r.Context(), suppressionListLimit)
	if err != nil {
		a.storeError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, map[string]any{"suppressions": list})
}

// removeSuppression: DELETE /v1/email/suppressions/{address} lets crmflow
// email the address again (say the customer fixed their mailbox). The
// removal is audited, like a dead-letter decision, with the reason it
// undid; an address that is not suppressed is 404.
func (a *API) removeSuppression(w http.ResponseWriter, r *http.Request) {
	address := r.PathValue("address")
	if _, err := mail.ParseAddress(address); err != nil {
		httpserver.WriteError(w, http.StatusBadRequest, "invalid_address", "not an email address")
		return
	}
	operator := principalOf(r.Context()).Name
	removed, err := a.deps.Store.RemoveSuppression(r.Context(), address)
	details := map[string]any{}
	if removed != nil {
		details["reason"], details["email_id"] = removed.Reason, removed.EmailID
	}
	a.audit(r.Context(), store.AuditEntry{Actor: operator, Action: "email_suppression.remove",
		Subject: "email-suppression/" + store.NormalizeAddress(address), Outcome: outcome(err), Details: details})
	if err != nil {
		a.storeError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, map[string]any{"removed": removed})
}
