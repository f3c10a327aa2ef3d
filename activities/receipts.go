package activities

import (
	"context"
	"time"

	"github.com/crmflow/crmflow/internal/store"
)

// ReceiptTemplate is the email template of a payment receipt.
const ReceiptTemplate = "payment-receipt"

// ReceiptActivities read what a payment receipt tells the customer. They
// touch only PostgreSQL, so they run on the workflow queue, apart from
// Resend's rate limit.
type ReceiptActivities struct {
	// Store is the CRM database (*store.Store in the worker).
	Store receiptStore
}

// receiptStore is what the receipt activities need of the database.
type receiptStore interface {
	OrderReceipt(ctx context.Context, orderID string) (*store.Receipt, error)
}

var _ receiptStore = (*store.Store)(nil)

// LoadReceiptInput names the order whose receipt to load.
type LoadReceiptInput struct {
	OrderID string `json:"order_id"`
}

// Receipt is an order's receipt: who gets it and what it says.
type Receipt struct {
	OrderID      string `json:"order_id"`
	CustomerID   string `json:"customer_id"`
	Email        string `json:"email"`
	CustomerName string `json:"customer_name,omitempty"`
	AmountCents  int64  `json:"amount_cents"`
	Currency     string `json:"currency"`
	// ConfirmedAt is when the order was confirmed, RFC 3339; "" if never.
	ConfirmedAt string        `json:"confirmed_at,omitempty"`
	Lines       []ReceiptLine `json:"lines"`
}

// ReceiptLine is one line of the order.
type ReceiptLine struct {
	SKU            string `json:"sku"`
	Name           string `json:"name"`
	Quantity       int    `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
	TotalCents     int64  `json:"total_cents"`
}

// LoadReceipt reads the order's receipt: the customer's address and name,
// the lines from order_items with their products' names, and the amount.
// An unknown order is a non-retryable StoreNotFound.
func (a *ReceiptActivities) LoadReceipt(ctx context.Context, in LoadReceiptInput) (*Receipt, error) {
	r, err := a.Store.OrderReceipt(ctx, in.OrderID)
	if err != nil {
		return nil, classifyStore(err)
	}
	out := &Receipt{OrderID: r.OrderID, CustomerID: r.CustomerID, Email: r.CustomerEmail, CustomerName: r.CustomerName,
		AmountCents: r.AmountCents, Currency: r.Currency, Lines: make([]ReceiptLine, 0, len(r.Lines))}
	if r.ConfirmedAt != nil {
		out.ConfirmedAt = r.ConfirmedAt.UTC().Format(time.RFC3339)
	}
	for _, l := range r.Lines {
		out.Lines = append(out.Lines, ReceiptLine{SKU: l.SKU, Name: l.Name, Quantity: l.Quantity,
			UnitPriceCents: l.UnitPriceCents, TotalCents: int64(l.Quantity) * l.UnitPriceCents})
	}
	return out, nil
}

// TemplateData is the receipt as the payment-receipt template reads it.
// It does no I/O, so workflows call it to build the send's input.
func (r *Receipt) TemplateData() map[string]any {
	lines := make([]any, 0, len(r.Lines))
	for _, l := range r.Lines {
		lines = append(lines, map[string]any{"sku": l.SKU, "name": l.Name, "quantity": l.Quantity,
			"unit_price_cents": l.UnitPriceCents, "total_cents": l.TotalCents})
	}
	data := map[string]any{"order_id": r.OrderID, "amount_cents": r.AmountCents, "currency": r.Currency, "lines": lines}
	if r.CustomerName != "" {
		data["customer_name"] = r.CustomerName
	}
	if r.ConfirmedAt != "" {
		data["confirmed_at"] = r.ConfirmedAt
	}
	return data
}
