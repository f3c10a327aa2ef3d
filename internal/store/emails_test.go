package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/store"
)

func beginEmail(t *testing.T, to string) *store.Email {
	t.Helper()
	e, err := db.BeginEmail(t.Context(), store.Email{IdempotencyKey: uniqueID(t, "key"), Recipient: to,
		Template: "payment-receipt", TemplateVersion: "v1", BusinessKey: uniqueID(t, "order"), Subject: "Receipt"})
	require.NoError(t, err)
	return e
}

// TestEmailSendLifecycle: a send is recorded before it is made, a retry
// finds the same row, and Resend's id is recorded once.
func TestEmailSendLifecycle(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	to := strings.ToLower(uniqueID(t, "to")) + "@example.com"
	e := beginEmail(t, to)
	assert.Equal(t, store.EmailSending, e.Status)

	again, err := db.BeginEmail(ctx, store.Email{IdempotencyKey: e.IdempotencyKey, Recipient: "other@example.com", Template: "welcome"})
	require.NoError(t, err)
	assert.Equal(t, e.ID, again.ID, "a retry finds the row as it stands")
	assert.Equal(t, to, again.Recipient)

	id := uniqueID(t, "re")
	sent, err := db.MarkEmailSent(ctx, e.IdempotencyKey, id, false)
	require.NoError(t, err)
	assert.Equal(t, store.EmailSent, sent.Status)
	assert.Equal(t, id, sent.ProviderID)
	require.NotNil(t, sent.SentAt)
	_, err = db.MarkEmailSent(ctx, e.IdempotencyKey, id, false)
	require.NoError(t, err, "recording the same id again is a no-op")
	_, err = db.MarkEmailSent(ctx, e.IdempotencyKey, "another", false)
	require.ErrorIs(t, err, store.ErrConflict)
	_, err = db.MarkEmailSent(ctx, uniqueID(t, "nokey"), id, false)
	require.ErrorIs(t, err, store.ErrNotFound)

	list, err := db.EmailsOf(ctx, e.BusinessKey)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, id, list[0].ProviderID)
}

// TestEmailEventsMoveStatusForwardOnly: events apply by rank, so a late
// delivery_delayed cannot undo delivered, and repeats change nothing.
func TestEmailEventsMoveStatusForwardOnly(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := beginEmail(t, uniqueID(t, "to")+"@example.com")
	id := uniqueID(t, "re")
	_, err := db.MarkEmailSent(ctx, e.IdempotencyKey, id, false)
	require.NoError(t, err)

	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	res, err := db.ApplyEmailEvent(ctx, store.EmailEvent{ProviderID: id, Status: store.EmailDelivered, At: at})
	require.NoError(t, err)
	assert.True(t, res.Changed)
	assert.Equal(t, store.EmailDelivered, res.Email.Status)
	assert.True(t, at.Equal(res.Email.StatusAt))

	for _, stale := range []string{store.EmailDeliveryDelayed, store.EmailDelivered, store.EmailSent} {
		res, err = db.ApplyEmailEvent(ctx, store.EmailEvent{ProviderID: id, Status: stale})
		require.NoError(t, err)
		assert.False(t, res.Changed, stale)
		assert.Equal(t, store.EmailDelivered, res.Email.Status, stale)
	}
	res, err = db.ApplyEmailEvent(ctx, store.EmailEvent{ProviderID: id, Status: store.EmailComplained})
	require.NoError(t, err)
	assert.True(t, res.Changed)

	res, err = db.ApplyEmailEvent(ctx, store.EmailEvent{ProviderID: uniqueID(t, "unknown"), Status: store.EmailDelivered})
	require.NoError(t, err)
	assert.Nil(t, res.Email, "an email crmflow did not send has no row")
	_, err = db.ApplyEmailEvent(ctx, store.EmailEvent{ProviderID: id, Status: "opened"})
	require.ErrorIs(t, err, store.ErrConflict)
}

// TestBounceSuppressesTheNextSend: a hard bounce suppresses the address
// (in any case), the next send to it is recorded suppressed with the
// reason, the customer's row says why, and removing the suppression lets
// mail through again.
func TestBounceSuppressesTheNextSend(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	customer := seedCustomer(t)
	addr := customer + "@example.com"
	e := beginEmail(t, strings.ToLower(addr))
	id := uniqueID(t, "re")
	_, err := db.MarkEmailSent(ctx, e.IdempotencyKey, id, false)
	require.NoError(t, err)

	status, err := db.CustomerEmailStatus(ctx, customer)
	require.NoError(t, err)
	assert.Nil(t, status.Suppression)

	ev := store.EmailEvent{ProviderID: id, Status: store.EmailBounced, Detail: "Permanent/General: no such mailbox",
		Suppress: store.SuppressedBounce, Addresses: []string{strings.ToUpper(addr)}, EventID: "msg_1"}
	res, err := db.ApplyEmailEvent(ctx, ev)
	require.NoError(t, err)
	assert.Equal(t, []string{strings.ToUpper(addr)}, res.Suppressed)
	assert.Equal(t, store.EmailBounced, res.Email.Status)
	res, err = db.ApplyEmailEvent(ctx, ev)
	require.NoError(t, err)
	assert.Empty(t, res.Suppressed, "a repeat suppresses nothing new")

	sup, err := db.GetSuppression(ctx, addr)
	require.NoError(t, err)
	assert.Equal(t, store.Suppression{Address: strings.ToLower(addr), Reason: store.SuppressedBounce,
		Detail: "Permanent/General: no such mailbox", EmailID: id, EventID: "msg_1", CreatedAt: sup.CreatedAt}, *sup)

	next := beginEmail(t, strings.ToLower(addr))
	assert.Equal(t, store.EmailSuppressed, next.Status)
	assert.Equal(t, "address suppressed after a bounce: Permanent/General: no such mailbox", next.StatusDetail)

	status, err = db.CustomerEmailStatus(ctx, customer)
	require.NoError(t, err)
	require.NotNil(t, status.Suppression)
	assert.Equal(t, store.SuppressedBounce, status.Suppression.Reason)

	list, err := db.ListSuppressions(ctx, 1000)
	require.NoError(t, err)
	assert.Contains(t, list, *sup)

	removed, err := db.RemoveSuppression(ctx, strings.ToUpper(addr))
	require.NoError(t, err)
	assert.Equal(t, sup, removed)
	_, err = db.RemoveSuppression(ctx, addr)
	require.ErrorIs(t, err, store.ErrNotFound)
	assert.Equal(t, store.EmailSending, beginEmail(t, strings.ToLower(addr)).Status)
}

// TestOrderReceipt reads an order's lines with their products' names.
func TestOrderReceipt(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	customer := seedCustomer(t)
	orderID := seedOrder(t, customer, 4250)
	sku := uniqueID(t, "sku")
	require.NoError(t, db.UpsertProduct(ctx, store.Product{SKU: sku, Name: "Mug", PriceCents: 1500}))
	require.NoError(t, db.InsertOrderItem(ctx, orderID, sku, 2, 1500))

	r, err := db.OrderReceipt(ctx, orderID)
	require.NoError(t, err)
	assert.Equal(t, customer+"@example.com", r.CustomerEmail)
	assert.Equal(t, "Test Customer", r.CustomerName)
	assert.Equal(t, []store.ReceiptLine{{SKU: sku, Name: "Mug", Quantity: 2, UnitPriceCents: 1500}}, r.Lines)

	_, err = db.OrderReceipt(ctx, uniqueID(t, "missing"))
	require.ErrorIs(t, err, store.ErrNotFound)
}
