package contract

import "time"

// StockLevelSignal feeds a SKU's low-stock entity one stock observation; it
// is sent with SignalWithStart so the first observation starts the entity.
const StockLevelSignal = "stock-level"

// Alert states of a low-stock entity, in Status.State and LowStockState.
const (
	// StockOK: not low, or low for too short a time to matter; armed.
	StockOK = "ok"
	// StockLowPending: low, the alert waits for the debounce (or cooldown).
	StockLowPending = "low-pending"
	// StockAlerted: the alert went out; escalation may follow.
	StockAlerted = "alerted"
	// StockEscalated: the escalation went out too.
	StockEscalated = "escalated"
	// StockStopped: an operator skipped loading the settings; the run ended.
	StockStopped = "stopped"
)

// StockLevel is StockLevelSignal's payload.
type StockLevel struct {
	Level int `json:"level"`
	// ObservedAt is when the level was true at the source; an observation
	// older than the newest one seen never overrides it. Zero means "now".
	ObservedAt time.Time `json:"observed_at"`
	// EventID identifies the observation; a redelivery is ignored.
	EventID string `json:"event_id"`
}

// LowStockInput starts a SKU's low-stock entity, or continues it.
type LowStockInput struct {
	SKU string `json:"sku"`
	// MaxHistoryEvents bounds a run's history before it continues as new;
	// zero means the workflow's default.
	MaxHistoryEvents int `json:"max_history_events,omitempty"`
	// State is the previous run's state when continuing as new; nil at first.
	State *LowStockState `json:"state,omitempty"`
	// Parked is the dead letter the previous run waited on when it
	// continued as new; nil when it was not parked.
	Parked *ParkedStep `json:"parked,omitempty"`
}

// LowStockState is what a low-stock entity carries across continue-as-new.
// Deadlines are absolute times, so timers resume where they were.
type LowStockState struct {
	// Known is false until the first level arrives.
	Known      bool      `json:"known"`
	Level      int       `json:"level"`
	ObservedAt time.Time `json:"observed_at"`
	// Alert is StockOK, StockLowPending, StockAlerted or StockEscalated.
	Alert string `json:"alert"`
	// Episode numbers alert episodes (alert, escalation, restocked); it is
	// part of the notifications' idempotency keys.
	Episode int `json:"episode"`
	// AlertAt is when a pending alert goes out if the level stays low.
	AlertAt time.Time `json:"alert_at"`
	// EscalateAt is when a still-low alerted level escalates.
	EscalateAt time.Time `json:"escalate_at"`
	// CooldownUntil is the earliest time of the next alert.
	CooldownUntil time.Time `json:"cooldown_until"`
	// Seen are the latest event ids, oldest first.
	Seen []string `json:"seen,omitempty"`
}

// LowStockResult is how a low-stock entity ended. It normally never ends:
// it continues as new; it returns only when an operator stopped it.
type LowStockResult struct {
	State string `json:"state"`
}

// InventoryScanInput configures one scan; the zero value is the default.
type InventoryScanInput struct {
	// BatchSize is how many SKUs one batch reads, signals and marks; zero
	// means the scan's default batch.
	BatchSize int `json:"batch_size,omitempty"`
}

// InventoryScanResult is what one scan did.
type InventoryScanResult struct {
	Signalled int `json:"signalled"`
	// Rejected are SKUs that can never be signalled (invalid as workflow
	// IDs); they are marked so that scans stop retrying them.
	Rejected []string `json:"rejected,omitempty"`
	// More is true when the scan stopped at its batch bound with changes
	// left for the next run.
	More bool `json:"more,omitempty"`
}
