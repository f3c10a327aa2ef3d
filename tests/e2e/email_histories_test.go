package e2e_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/workflows"
)

// The email branches of OrderConfirmation (the receipt) and EmailComplaint
// that the other email tests do not record, run through a sealing client
// like the other recorded histories (histories_test.go).

// sealedEmailFixture is emailFixture whose worker's client seals payloads.
func sealedEmailFixture(t *testing.T) (*fixture, *resendMailPeer) {
	t.Helper()
	return emailFixture(t, fixtureOptions{temporal: sealedClient(t)})
}

// TestHistoryOrderReceiptSentAndSuppressed records a receipt sent and, after
// its address bounced for good, the next order's receipt suppressed.
func TestHistoryOrderReceiptSentAndSuppressed(t *testing.T) {
	f, peer := sealedEmailFixture(t)
	f.seedReceiptOrder("o-rcpt-1", "cus_rcpt")
	f.seedReceiptOrder("o-rcpt-2", "cus_rcpt")
	f.confirmOrder("o-rcpt-1")
	require.Len(t, peer.all(), 1)
	saveHistory(t, f.temporal, contract.OrderConfirmationID("o-rcpt-1"), "order_confirmation_receipt_sent.json")

	status, _ := f.postResend("msg_rcpt_bounce", resendEventBody(t, "email.bounced", peer.all()[0].ID, "cus_rcpt@example.com", "Permanent"))
	require.Equal(t, http.StatusOK, status)
	f.waitEmailStatus(receiptKey("o-rcpt-1"), store.EmailBounced)
	f.confirmOrder("o-rcpt-2")
	assert.Len(t, peer.all(), 1, "nothing sent to the suppressed address")
	assert.Equal(t, store.EmailSuppressed, f.emailOf(receiptKey("o-rcpt-2")).Status)
	saveHistory(t, f.temporal, contract.OrderConfirmationID("o-rcpt-2"), "order_confirmation_receipt_suppressed.json")
}

// TestHistoryOrderReceiptParkedRetried: Resend refuses the send (the
// sender's domain is not verified), the run parks on send-receipt with the
// order already confirmed; once an operator retries, the receipt is sent
// once, under the same idempotency key.
func TestHistoryOrderReceiptParkedRetried(t *testing.T) {
	f, peer := sealedEmailFixture(t)
	peer.refuse(1)
	f.seedReceiptOrder("o-rcpt-retry", "cus_rcpt_retry")
	ev := stripeEvent("evt_rcpt_retry", "payment_intent.succeeded", "o-rcpt-retry")
	status, _ := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	dl := f.parkedDeadLetter("send-receipt")
	assert.Equal(t, "confirmed", f.orderStatus("o-rcpt-retry"), "the order is confirmed before its receipt")
	assert.Equal(t, 1, peer.refusals())
	f.decide(dl, "retry")

	id := contract.OrderConfirmationID("o-rcpt-retry")
	var res contract.OrderConfirmationResult
	require.NoError(t, f.result(id, &res))
	assert.Equal(t, "confirmed", res.State)
	sent := peer.all()
	require.Len(t, sent, 1)
	assert.Equal(t, receiptKey("o-rcpt-retry"), sent[0].IdempotencyKey)
	assert.Equal(t, sent[0].ID, f.emailOf(receiptKey("o-rcpt-retry")).ProviderID)
	saveHistory(t, f.temporal, id, "order_confirmation_receipt_parked_retried.json")
}

// TestHistoryOrderReceiptParkedSkipped: the refused send parks and an
// operator skips it: the order ends confirmed without a receipt.
func TestHistoryOrderReceiptParkedSkipped(t *testing.T) {
	f, peer := sealedEmailFixture(t)
	peer.refuse(1)
	f.seedReceiptOrder("o-rcpt-skip", "cus_rcpt_skip")
	ev := stripeEvent("evt_rcpt_skip", "payment_intent.succeeded", "o-rcpt-skip")
	status, _ := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	f.decide(f.parkedDeadLetter("send-receipt"), "skip")

	id := contract.OrderConfirmationID("o-rcpt-skip")
	var res contract.OrderConfirmationResult
	require.NoError(t, f.result(id, &res))
	assert.Equal(t, "confirmed", res.State)
	assert.Empty(t, peer.all(), "the skipped receipt was not sent")
	assert.Equal(t, store.EmailSending, f.emailOf(receiptKey("o-rcpt-skip")).Status,
		"the row shows a send that never completed")
	saveHistory(t, f.temporal, id, "order_confirmation_receipt_parked_skipped.json")
}

// TestHistoryEmailComplaintSkipped: Knock refuses the operators' alert,
// the complaint's run parks on notify-operators, and an operator skips it;
// the address stays suppressed.
func TestHistoryEmailComplaintSkipped(t *testing.T) {
	f, peer := sealedEmailFixture(t)
	f.seedReceiptOrder("o-spam-skip", "cus_spam_skip")
	f.confirmOrder("o-spam-skip")
	require.Len(t, peer.all(), 1)
	emailID := peer.all()[0].ID
	f.knock.mu.Lock()
	f.knock.failFirst = 1
	f.knock.mu.Unlock()

	status, _ := f.postResend("msg_spam_skip", resendEventBody(t, "email.complained", emailID, "cus_spam_skip@example.com", ""))
	require.Equal(t, http.StatusOK, status)
	f.decide(f.parkedDeadLetter("notify-operators"), "skip")

	id := contract.EmailComplaintID(emailID)
	var res contract.EmailComplaintResult
	require.NoError(t, f.result(id, &res))
	assert.Equal(t, "skipped", res.Status)
	assert.Zero(t, f.knock.countWorkflow(workflows.KnockEmailComplaint), "the skipped alert was not sent")
	sup, err := f.store.GetSuppression(t.Context(), "cus_spam_skip@example.com")
	require.NoError(t, err)
	assert.Equal(t, store.SuppressedComplaint, sup.Reason)
	saveHistory(t, f.temporal, id, "email_complaint_skipped.json")
}
