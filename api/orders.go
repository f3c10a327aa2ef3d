package api

import (
	"errors"
	"net/http"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/httpserver"
	"github.com/crmflow/crmflow/starter"
)

// startOrderConfirmation: POST /v1/orders/{orderID}/confirmation → 202
// {"workflow_id","run_id"} of the new or running confirmation; 409
// order_closed once it finished.
func (a *API) startOrderConfirmation(w http.ResponseWriter, r *http.Request) {
	orderID := r.PathValue("orderID")
	if err := contract.ValidateKey("order ID", orderID); err != nil {
		httpserver.WriteError(w, http.StatusBadRequest, "invalid_order_id", err.Error())
		return
	}
	// An unknown order would only park the new run; refuse it up front.
	if _, err := a.deps.Store.GetOrder(r.Context(), orderID); err != nil {
		a.storeError(w, err)
		return
	}
	run, err := a.deps.Starter.StartOrderConfirmation(r.Context(), orderID)
	if errors.Is(err, starter.ErrAlreadyDone) {
		// Joining the running confirmation is the idempotent start; one
		// that finished is not run again, and the caller is told so.
		closedRun(w, "order_closed", "the confirmation of order "+orderID+" has finished", run)
		return
	}
	if err != nil {
		a.starterError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusAccepted, run)
}
