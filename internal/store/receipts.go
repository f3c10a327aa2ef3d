package store

import (
	"context"
	"fmt"
	"time"
)

// Receipt is what a payment receipt tells the customer: the order, who
// paid, and its lines.
type Receipt struct {
	OrderID       string
	CustomerID    string
	CustomerEmail string
	CustomerName  string
	AmountCents   int64
	Currency      string
	ConfirmedAt   *time.Time
	Lines         []ReceiptLine
}

// ReceiptLine is one line of an order: order_items with the product's name.
type ReceiptLine struct {
	SKU            string
	Name           string
	Quantity       int
	UnitPriceCents int64
}

// OrderReceipt reads an order's receipt: the order with its customer's
// address and name, and its lines in SKU order (an order without lines has
// none; its amount still stands).
func (s *Store) OrderReceipt(ctx context.Context, orderID string) (*Receipt, error) {
	o, err := s.GetOrder(ctx, orderID)
	if err != nil {
		return nil, err
	}
	c, err := s.GetCustomer(ctx, o.CustomerID)
	if err != nil {
		return nil, err
	}
	r := &Receipt{OrderID: o.ID, CustomerID: o.CustomerID, CustomerEmail: o.CustomerEmail, CustomerName: c.Name,
		AmountCents: o.AmountCents, Currency: o.Currency, ConfirmedAt: o.ConfirmedAt, Lines: []ReceiptLine{}}
	const q = `
SELECT i.sku, p.name, i.quantity, i.price_cents
FROM order_items i JOIN products p ON p.sku = i.sku
WHERE i.order_id = $1 ORDER BY i.sku`
	rows, err := s.pool.Query(ctx, q, orderID)
	if err != nil {
		return nil, fmt.Errorf("lines of order %s: %w", orderID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var l ReceiptLine
		if err := rows.Scan(&l.SKU, &l.Name, &l.Quantity, &l.UnitPriceCents); err != nil {
			return nil, fmt.Errorf("scan line of order %s: %w", orderID, err)
		}
		r.Lines = append(r.Lines, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lines of order %s: %w", orderID, err)
	}
	return r, nil
}

// InsertOrderItem adds a line to an order (seed data, demo, tests); an
// existing line of the SKU is replaced.
func (s *Store) InsertOrderItem(ctx context.Context, orderID, sku string, quantity int, unitPriceCents int64) error {
	const q = `
INSERT INTO order_items (order_id, sku, quantity, price_cents) VALUES ($1, $2, $3, $4)
ON CONFLICT (order_id, sku) DO UPDATE SET quantity = EXCLUDED.quantity, price_cents = EXCLUDED.price_cents`
	if _, err := s.pool.Exec(ctx, q, orderID, sku, quantity, unitPriceCents); err != nil {
		return fmt.Errorf("insert item %s of order %s: %w", sku, orderID, err)
	}
	return nil
}
