package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
)

// providerTemporal names Temporal in error types: "TemporalUnavailable".
const providerTemporal = "Temporal"

// Scan batch bounds: a batch travels through workflow history three times
// (read, signal, mark), so it stays far below Temporal's payload limits.
const (
	DefaultScanBatch = 500
	MaxScanBatch     = 5000
)

// StockSignaller delivers a stock level to the SKU's low-stock workflow,
// starting it if needed (SignalWithStart). The starter package implements
// it. A SKU that can never be signalled (it makes no valid workflow ID) is
// refused with an error that is contract.ErrInvalidKey: the scan reports the
// SKU and moves on instead of retrying it forever.
type StockSignaller interface {
	// SignalStockLevel delivers level to sku's workflow, starting it if
	// needed.
	SignalStockLevel(ctx context.Context, sku string, level contract.StockLevel) error
}

// StockDefaults are the low-stock settings of every SKU that does not
// override them in the products table. Threshold and hysteresis have no
// defaults: they are per-SKU columns that are never NULL.
type StockDefaults struct {
	Debounce      time.Duration
	Cooldown      time.Duration
	EscalateAfter time.Duration
	// Audience and EscalationAudience are Knock recipient ids.
	Audience           []string
	EscalationAudience []string
}

// InventoryActivities load low-stock settings and run the inventory scan.
type InventoryActivities struct {
	// Store is the CRM database (*store.Store in the worker); needed by
	// every activity but SignalStockLevels.
	Store inventoryStore
	// Defaults apply to every SKU that does not override them.
	Defaults StockDefaults
	// Signaller is needed by SignalStockLevels only.
	Signaller StockSignaller
}

// inventoryStore is what the low-stock settings and the inventory scan need
// of the CRM database: a product's settings, the levels changed since the
// last scan, and the mark that they were signalled.
type inventoryStore interface {
	GetProduct(ctx context.Context, sku string) (*store.Product, error)
	ChangedStockLevels(ctx context.Context, limit int) ([]store.StockLevel, error)
	MarkStockSignalled(ctx context.Context, levels []store.StockLevel) error
}

var _ inventoryStore = (*store.Store)(nil)

// LoadStockSettingsInput names the SKU.
type LoadStockSettingsInput struct {
	SKU string `json:"SKU"`
}

// StockSettings are the effective low-stock settings of one SKU: its
// overrides merged over the defaults.
type StockSettings struct {
	SKU  string `json:"SKU"`
	Name string `json:"Name"`
	// Threshold: the level is low at or below it.
	Threshold int `json:"Threshold"`
	// Hysteresis: restocked only above Threshold + Hysteresis.
	Hysteresis int `json:"Hysteresis"`
	// Debounce is how long a low level must last before the alert.
	Debounce time.Duration `json:"Debounce"`
	// Cooldown is the least time between two alerts.
	Cooldown time.Duration `json:"Cooldown"`
	// EscalateAfter is how long after the alert a still-low level is
	// escalated; zero means never.
	EscalateAfter      time.Duration `json:"EscalateAfter"`
	Audience           []string      `json:"Audience"`
	EscalationAudience []string      `json:"EscalationAudience"`
}

// LoadStockSettings reads the SKU's settings. An unknown SKU is a
// non-retryable StoreNotFound: no retry makes the product appear.
func (a *InventoryActivities) LoadStockSettings(ctx context.Context, in LoadStockSettingsInput) (*StockSettings, error) {
	p, err := a.Store.GetProduct(ctx, in.SKU)
	if err != nil {
		return nil, classifyStore(err)
	}
	o, d := p.Settings, a.Defaults
	return &StockSettings{
		SKU: p.SKU, Name: p.Name, Threshold: o.Threshold, Hysteresis: o.Hysteresis,
		Debounce:      orDefault(o.Debounce, d.Debounce),
		Cooldown:      orDefault(o.Cooldown, d.Cooldown),
		EscalateAfter: orDefault(o.EscalateAfter, d.EscalateAfter),
		// An empty alert audience would be an alert nobody gets: use the default.
		Audience: firstNonEmpty(o.AlertAudience, d.Audience),
		// An empty (not NULL) escalation audience is how a SKU opts out.
		EscalationAudience: orDefaultList(o.EscalationAudience, d.EscalationAudience),
	}, nil
}

// SKULevel is a SKU's stock level as the inventory scan found it.
type SKULevel struct {
	SKU   string `json:"SKU"`
	Level int    `json:"Level"`
	// ChangedAt is when the level was written; it becomes the observation
	// time, so a level read late never overrides a newer one.
	ChangedAt time.Time `json:"ChangedAt"`
}

// ChangedStockLevelsInput bounds one batch of the scan.
type ChangedStockLevelsInput struct {
	// Limit is the batch size; zero means DefaultScanBatch, and it is at
	// most MaxScanBatch.
	Limit int `json:"Limit"`
}

// ChangedStockLevelsOutput is one batch of changed SKUs, in SKU order.
type ChangedStockLevelsOutput struct {
	Levels []SKULevel `json:"Levels"`
}

// ChangedStockLevels returns SKUs whose level changed since they were last
// marked signalled.
func (a *InventoryActivities) ChangedStockLevels(ctx context.Context, in ChangedStockLevelsInput) (*ChangedStockLevelsOutput, error) {
	limit := in.Limit
	switch {
	case limit <= 0:
		limit = DefaultScanBatch
	case limit > MaxScanBatch:
		limit = MaxScanBatch
	}
	levels, err := a.Store.ChangedStockLevels(ctx, limit)
	if err != nil {
		return nil, classifyStore(err)
	}
	out := &ChangedStockLevelsOutput{Levels: make([]SKULevel, 0, len(levels))}
	for _, l := range levels {
		out.Levels = append(out.Levels, SKULevel{SKU: l.SKU, Level: l.Level, ChangedAt: l.ChangedAt})
	}
	return out, nil
}

// SignalStockLevelsInput is the batch to signal.
type SignalStockLevelsInput struct {
	Levels []SKULevel `json:"Levels"`
}

// SignalStockLevelsOutput says what became of the batch.
type SignalStockLevelsOutput struct {
	Signalled int `json:"Signalled"`
	// Rejected are SKUs the signaller refused for good (contract.ErrInvalidKey).
	Rejected []string `json:"Rejected"`
}

// signalProgress is the heartbeat: a retried attempt resumes after the last
// SKU signalled instead of signalling the whole batch again. Its wire names
// are pinned as the first release wrote them, since an attempt resumes from
// a heartbeat an older build recorded.
type signalProgress struct {
	Next      int      `json:"Next"`
	Signalled int      `json:"Signalled"`
	Rejected  []string `json:"Rejected"`
}

// SignalStockLevels signals each SKU's low-stock workflow. The event id is
// derived from the SKU, level and change time, so a retried attempt or a
// rescan after a failed mark sends the same id and the entity ignores it.
func (a *InventoryActivities) SignalStockLevels(ctx context.Context, in SignalStockLevelsInput) (*SignalStockLevelsOutput, error) {
	if a.Signaller == nil {
		return nil, permanent(providerTemporal, ErrTypeInvalid, errors.New("inventory activities have no stock signaller"))
	}
	logger := activity.GetLogger(ctx)
	var p signalProgress
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &p); err != nil {
			// Starting over is safe, only slower: the event ids dedupe.
			logger.Warn("inventory: unreadable heartbeat, signalling the batch from the start", "error", err)
			p = signalProgress{}
		}
	}
	for ; p.Next < len(in.Levels); p.Next++ {
		l := in.Levels[p.Next]
		err := a.Signaller.SignalStockLevel(ctx, l.SKU, contract.StockLevel{
			Level: l.Level, ObservedAt: l.ChangedAt, EventID: ScanEventID(l),
		})
		switch {
		case err == nil:
			p.Signalled++
		case errors.Is(err, contract.ErrInvalidKey):
			logger.Warn("inventory: stock signal rejected", "sku", l.SKU, "error", err)
			p.Rejected = append(p.Rejected, l.SKU)
		default:
			return nil, transient(providerTemporal, ErrTypeUnavailable, fmt.Errorf("signal %s: %w", l.SKU, err), 0)
		}
		activity.RecordHeartbeat(ctx, signalProgress{Next: p.Next + 1, Signalled: p.Signalled, Rejected: p.Rejected})
	}
	return &SignalStockLevelsOutput{Signalled: p.Signalled, Rejected: p.Rejected}, nil
}

// ScanEventID is the event id of a scanned level: one id per change of the
// level in the database.
func ScanEventID(l SKULevel) string {
	return fmt.Sprintf("scan/%s/%d/%d", l.SKU, l.Level, l.ChangedAt.UnixMicro())
}

// MarkStockSignalledInput is the batch that was signalled.
type MarkStockSignalledInput struct {
	Levels []SKULevel `json:"Levels"`
}

// MarkStockSignalled records the signalled levels, so the next scan sends
// only what changed after them.
func (a *InventoryActivities) MarkStockSignalled(ctx context.Context, in MarkStockSignalledInput) error {
	levels := make([]store.StockLevel, 0, len(in.Levels))
	for _, l := range in.Levels {
		levels = append(levels, store.StockLevel{SKU: l.SKU, Level: l.Level, ChangedAt: l.ChangedAt})
	}
	if err := a.Store.MarkStockSignalled(ctx, levels); err != nil {
		return classifyStore(err)
	}
	return nil
}

func orDefault(override *time.Duration, def time.Duration) time.Duration {
	if override != nil {
		return *override
	}
	return def
}

// orDefaultList keeps an empty but non-nil override: it was set on purpose.
func orDefaultList(override, def []string) []string {
	if override != nil {
		return override
	}
	return def
}

func firstNonEmpty(override, def []string) []string {
	if len(override) > 0 {
		return override
	}
	return def
}
