package api

import (
	"net/http"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/httpserver"
)

// setStockLevel: POST /v1/inventory/{sku}/stock-level with {"level": N};
// 202 once the update is in the inbox. An Idempotency-Key header makes a
// retried request a duplicate rather than a second update.
func (a *API) setStockLevel(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	if err := contract.ValidateKey("SKU", sku); err != nil {
		httpserver.WriteError(w, http.StatusBadRequest, "invalid_sku", err.Error())
		return
	}
	key, ok := idempotencyKey(w, r)
	if !ok {
		return
	}
	var body struct {
		Level *int `json:"level"`
	}
	if !httpserver.DecodeJSON(w, r, 4096, &body) {
		return
	}
	if body.Level == nil {
		httpserver.WriteError(w, http.StatusUnprocessableEntity, "missing_level", `"level" is required`)
		return
	}
	if _, err := a.deps.Store.GetProduct(r.Context(), sku); err != nil {
		a.storeError(w, err)
		return
	}
	if key != "" {
		key = "api/" + key
	}
	ev, err := inbox.StockEvent(sku, *body.Level, key, a.deps.CoalesceWindow)
	if err != nil {
		httpserver.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	ev.TraceParent = inbox.TraceParentOf(r.Context())
	inserted, err := a.deps.Inbox.Insert(r.Context(), ev)
	if err != nil {
		a.storeError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusAccepted, map[string]any{"sku": sku, "event_id": ev.EventID, "duplicate": !inserted})
}
