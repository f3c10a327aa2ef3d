package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Product is a catalogue row with its stock level and low-stock settings.
type Product struct {
	SKU        string
	Name       string
	PriceCents int64
	// Currency is a lowercase ISO 4217 code; "" means usd.
	Currency   string
	StockLevel int
	Settings   StockSettings
	// StockChangedAt is when StockLevel last changed (set by the database).
	StockChangedAt time.Time
}

// StockSettings are a SKU's low-stock alert settings. A nil override is NULL
// in the table and means "use the configured default", so changing a default
// in config reaches every SKU that has not chosen otherwise.
type StockSettings struct {
	// Threshold: alert when the level falls to or below it.
	Threshold int
	// Hysteresis: "restocked" only once the level is above Threshold + Hysteresis.
	Hysteresis    int
	Debounce      *time.Duration
	Cooldown      *time.Duration
	EscalateAfter *time.Duration
	// AlertAudience and EscalationAudience are Knock recipients. nil means the
	// default; an empty, non-nil EscalationAudience turns escalation off.
	AlertAudience      []string
	EscalationAudience []string
}

// StockLevel is one SKU's current level, as the inventory scan reads it.
type StockLevel struct {
	SKU   string
	Level int
	// ChangedAt is when the level last changed.
	ChangedAt time.Time
}

// UpsertProduct creates or replaces a product (seed data, demo, tests).
// StockChangedAt is ignored: the database keeps it.
func (s *Store) UpsertProduct(ctx context.Context, p Product) error {
	const q = `
INSERT INTO products (sku, name, price_cents, currency, stock_level, low_stock_threshold, hysteresis,
                      debounce, cooldown, escalate_after, alert_audience, escalation_audience)
VALUES ($1, $2, $3, coalesce(nullif($4, ''), 'usd'), $5, $6, $7,
        $8::bigint * interval '1 microsecond', $9::bigint * interval '1 microsecond',
        $10::bigint * interval '1 microsecond', $11, $12)
ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, price_cents = EXCLUDED.price_cents,
    currency = EXCLUDED.currency, stock_level = EXCLUDED.stock_level,
    low_stock_threshold = EXCLUDED.low_stock_threshold, hysteresis = EXCLUDED.hysteresis,
    debounce = EXCLUDED.debounce, cooldown = EXCLUDED.cooldown, escalate_after = EXCLUDED.escalate_after,
    alert_audience = EXCLUDED.alert_audience, escalation_audience = EXCLUDED.escalation_audience`
	st := p.Settings
	_, err := s.pool.Exec(ctx, q, p.SKU, p.Name, p.PriceCents, p.Currency, p.StockLevel, st.Threshold, st.Hysteresis,
		micros(st.Debounce), micros(st.Cooldown), micros(st.EscalateAfter), st.AlertAudience, st.EscalationAudience)
	if err != nil {
		return fmt.Errorf("upsert product %s: %w", p.SKU, err)
	}
	return nil
}

// GetProduct returns the product with its stock settings; NULL overrides
// come back nil. An unknown SKU is ErrNotFound.
func (s *Store) GetProduct(ctx context.Context, sku string) (*Product, error) {
	const q = `
SELECT sku, name, price_cents, currency, stock_level, low_stock_threshold, hysteresis,
       (extract(epoch FROM debounce) * 1000000)::bigint,
       (extract(epoch FROM cooldown) * 1000000)::bigint,
       (extract(epoch FROM escalate_after) * 1000000)::bigint,
       alert_audience, escalation_audience, stock_changed_at
FROM products WHERE sku = $1`
	var (
		p                                 Product
		debounce, cooldown, escalateAfter *int64
	)
	err := s.pool.QueryRow(ctx, q, sku).Scan(&p.SKU, &p.Name, &p.PriceCents, &p.Currency, &p.StockLevel,
		&p.Settings.Threshold, &p.Settings.Hysteresis, &debounce, &cooldown, &escalateAfter,
		&p.Settings.AlertAudience, &p.Settings.EscalationAudience, &p.StockChangedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("product %s: %w", sku, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get product %s: %w", sku, err)
	}
	p.Settings.Debounce, p.Settings.Cooldown, p.Settings.EscalateAfter =
		duration(debounce), duration(cooldown), duration(escalateAfter)
	return &p, nil
}

// SetStockLevel records the SKU's current stock level; an unknown SKU is
// ErrNotFound. The next inventory scan signals the change.
func (s *Store) SetStockLevel(ctx context.Context, sku string, level int) error {
	tag, err := s.pool.Exec(ctx, `UPDATE products SET stock_level = $2 WHERE sku = $1`, sku, level)
	if err != nil {
		return fmt.Errorf("set stock level %s: %w", sku, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("product %s: %w", sku, ErrNotFound)
	}
	return nil
}

// ChangedStockLevels returns up to limit SKUs, in SKU order, whose stock
// level differs from the level last marked signalled (every SKU before its
// first scan).
func (s *Store) ChangedStockLevels(ctx context.Context, limit int) ([]StockLevel, error) {
	const q = `
SELECT sku, stock_level, stock_changed_at FROM products
WHERE last_signalled_level IS DISTINCT FROM stock_level
ORDER BY sku LIMIT $1`
	rows, err := s.pool.Query(ctx, q, limit)
	if err != nil {
		return nil, fmt.Errorf("changed stock levels: %w", err)
	}
	levels, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (StockLevel, error) {
		var l StockLevel
		err := row.Scan(&l.SKU, &l.Level, &l.ChangedAt)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("changed stock levels: %w", err)
	}
	return levels, nil
}

// MarkStockSignalled records that each SKU's level was signalled. It stores
// the level that was signalled, not the current one, so a level that changed
// again meanwhile is still reported by the next scan. Marking again is
// harmless; unknown SKUs are ignored.
func (s *Store) MarkStockSignalled(ctx context.Context, levels []StockLevel) error {
	if len(levels) == 0 {
		return nil
	}
	skus, values := make([]string, len(levels)), make([]int, len(levels))
	for i, l := range levels {
		skus[i], values[i] = l.SKU, l.Level
	}
	const q = `
UPDATE products p SET last_signalled_level = v.level, last_signalled_at = now()
FROM unnest($1::text[], $2::integer[]) AS v(sku, level)
WHERE p.sku = v.sku`
	if _, err := s.pool.Exec(ctx, q, skus, values); err != nil {
		return fmt.Errorf("mark stock signalled: %w", err)
	}
	return nil
}

// micros is d in microseconds (PostgreSQL's interval resolution), nil for nil.
func micros(d *time.Duration) *int64 {
	if d == nil {
		return nil
	}
	us := d.Microseconds()
	return &us
}

// duration is the inverse of micros.
func duration(us *int64) *time.Duration {
	if us == nil {
		return nil
	}
	d := time.Duration(*us) * time.Microsecond
	return &d
}
