package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
)

// providerInventory names stock updates from the start API in the inbox.
const providerInventory = "inventory"

// stockUpdate is a stock level as the inbox keeps it.
type stockUpdate struct {
	SKU        string    `json:"sku"`
	Level      int       `json:"level"`
	ObservedAt time.Time `json:"observed_at"`
}

// StockUpdateEvent builds the inbox row of a stock level observed now.
// eventID is the caller's idempotency key, or "" for a fresh one. The row is
// held back for coalesceWindow so a burst for one SKU becomes one signal.
func StockUpdateEvent(sku string, level int, eventID string, coalesceWindow time.Duration) (store.InboxEvent, error) {
	if eventID == "" {
		eventID = randomID("stock_")
	}
	payload, err := json.Marshal(stockUpdate{SKU: sku, Level: level, ObservedAt: time.Now().UTC()})
	if err != nil {
		return store.InboxEvent{}, err
	}
	return store.InboxEvent{
		Provider: providerInventory, EventID: eventID, EventType: "stock-level",
		WorkflowID: contract.LowStockID(sku), Payload: payload, DueIn: coalesceWindow,
	}, nil
}

// setStockLevel: POST /v1/inventory/{sku}/stock-level with {"level": N};
// 202 once the update is in the inbox. An Idempotency-Key header makes a
// retried request a duplicate rather than a second update.
func (s *Server) setStockLevel(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	if err := contract.ValidateKey("SKU", sku); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_sku", err.Error())
		return
	}
	var body struct {
		Level *int `json:"level"`
	}
	if !decodeJSON(w, r, 4096, &body) {
		return
	}
	if body.Level == nil {
		writeError(w, http.StatusUnprocessableEntity, "missing_level", `"level" is required`)
		return
	}
	if _, err := s.deps.Store.GetProduct(r.Context(), sku); err != nil {
		s.storeError(w, err)
		return
	}
	key := strings.TrimSpace(r.Header.Get("Idempotency-Key"))
	if len(key) > 255 {
		writeError(w, http.StatusBadRequest, "invalid_idempotency_key", "Idempotency-Key is longer than 255 characters")
		return
	}
	if key != "" {
		key = "api/" + key
	}
	ev, err := StockUpdateEvent(sku, *body.Level, key, s.deps.CoalesceWindow)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	ev.TraceParent = traceParentOf(r.Context())
	inserted, err := s.deps.Store.InsertInboxEvent(r.Context(), ev, "")
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"sku": sku, "event_id": ev.EventID, "duplicate": !inserted})
}

// deliverStock coalesces the SKU's pending updates: only the one observed
// last is signalled, and the rest are marked as coalesced into it. A burst
// of thousands of updates for one SKU so becomes a few signals, as Temporal
// advises for a single workflow.
func (d *Dispatcher) deliverStock(ctx context.Context, claimed store.InboxEvent) error {
	pending, err := d.store.PendingOfWorkflow(ctx, claimed.WorkflowID, 10_000)
	if err != nil {
		return err
	}
	var latest stockUpdate
	latestEvent := claimed
	var others []int64
	for i, ev := range pending {
		var u stockUpdate
		if err := json.Unmarshal(ev.Payload, &u); err != nil {
			return &permanentError{fmt.Errorf("decode stock update %s: %w", ev.EventID, err)}
		}
		if i == 0 || !u.ObservedAt.Before(latest.ObservedAt) {
			latest, latestEvent = u, ev
		}
		if ev.ID != claimed.ID {
			others = append(others, ev.ID)
		}
	}
	if len(pending) == 0 {
		return nil // handed off by another dispatcher meanwhile
	}
	err = d.starter.SignalStockLevel(ctx, latest.SKU, contract.StockLevel{
		Level: latest.Level, ObservedAt: latest.ObservedAt, EventID: latestEvent.EventID,
	})
	if err != nil {
		return err
	}
	if len(others) > 0 {
		if err := d.store.MarkHandedOff(ctx, others, "coalesced into "+latestEvent.EventID); err != nil {
			d.logger.Warn("Could not mark coalesced stock updates; they will be signalled again and ignored", "error", err)
		}
		d.coalesced.Add(float64(len(others)))
	}
	return nil
}
