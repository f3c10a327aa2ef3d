package inbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/crmflow/crmflow/contract"
)

// StockRoute is a stock level posted to the start API, for the SKU's
// low-stock entity.
type StockRoute struct {
	SKU        string    `json:"sku"`
	Level      int       `json:"level"`
	ObservedAt time.Time `json:"observed_at"`
}

// stockPayload is a stock level as the inbox keeps it: the payload column,
// which is also all an older row has.
type stockPayload struct {
	SKU        string    `json:"sku"`
	Level      int       `json:"level"`
	ObservedAt time.Time `json:"observed_at"`
}

// StockEvent is the inbox row of a stock level observed now. eventID is
// the caller's idempotency key, or "" for a fresh one. The row is held back
// for coalesceWindow so a burst for one SKU becomes one signal.
func StockEvent(sku string, level int, eventID string, coalesceWindow time.Duration) (Event, error) {
	if eventID == "" {
		eventID = randomStockID()
	}
	now := time.Now().UTC()
	payload, err := json.Marshal(stockPayload{SKU: sku, Level: level, ObservedAt: now})
	if err != nil {
		return Event{}, fmt.Errorf("encode stock level: %w", err)
	}
	return Event{
		Source: SourceStock, EventID: eventID, EventType: "stock-level",
		Target: contract.LowStockID(sku), Payload: payload, DueIn: coalesceWindow,
		Route: Route{Stock: &StockRoute{SKU: sku, Level: level, ObservedAt: now}},
	}, nil
}

// randomStockID makes an unguessable event id for an update posted without
// an Idempotency-Key.
func randomStockID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return "stock_" + hex.EncodeToString(b)
}

// stockRouteOf is a row's stock level: its route, or for a row stored
// before routes were, its payload.
func stockRouteOf(ev Event) (*StockRoute, error) {
	if ev.Route.Stock != nil {
		return ev.Route.Stock, nil
	}
	var p stockPayload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		return nil, &permanentError{fmt.Errorf("decode stock update %s: %w", ev.EventID, err)}
	}
	return &StockRoute{SKU: p.SKU, Level: p.Level, ObservedAt: p.ObservedAt}, nil
}

// deliverStock coalesces the SKU's pending updates: only the one observed
// last is signalled, and the rest are marked as coalesced into it. A burst
// of thousands of updates for one SKU so becomes a few signals, as Temporal
// advises for a single workflow.
func (d *Dispatcher) deliverStock(ctx context.Context, claimed Event) error {
	pending, err := d.store.PendingOf(ctx, claimed.Target, 10_000)
	if err != nil {
		return err
	}
	if len(pending) == 0 {
		return nil // handed off by another dispatcher meanwhile
	}
	var latest *StockRoute
	latestEvent := claimed
	var others []int64
	for i, ev := range pending {
		r, err := stockRouteOf(ev)
		if err != nil {
			return err
		}
		if i == 0 || !r.ObservedAt.Before(latest.ObservedAt) {
			latest, latestEvent = r, ev
		}
		if ev.ID != claimed.ID {
			others = append(others, ev.ID)
		}
	}
	err = d.starter.SignalStockLevel(ctx, latest.SKU, contract.StockLevel{
		Level: latest.Level, ObservedAt: latest.ObservedAt, EventID: latestEvent.EventID,
	})
	if err != nil {
		return err
	}
	if len(others) > 0 {
		if err := d.store.MarkDone(ctx, others, StatusCoalesced, "coalesced into "+latestEvent.EventID); err != nil {
			d.logger.Warn("Could not mark coalesced stock updates; they will be signalled again and ignored", "error", err)
		}
		d.coalesced.Add(float64(len(others)))
	}
	return nil
}
