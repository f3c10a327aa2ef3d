package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/workflows"
)

// TestReceiptBounceSuppressesTheNextReceipt is the email path end to end:
// order 1 is confirmed and its receipt goes to Resend (spec-checked) with
// the run's idempotency key, the sender, both parts and tags; Resend's
// signed webhooks say it was delivered, then that it bounced for good, so
// the address is suppressed and the customer's row says why; order 2 is
// confirmed and its receipt is skipped and recorded suppressed.
func TestReceiptBounceSuppressesTheNextReceipt(t *testing.T) {
	f, peer := emailFixture(t, fixtureOptions{})
	ctx := context.Background()
	f.seedReceiptOrder("o-mail-1", "cus_mail")
	f.seedReceiptOrder("o-mail-2", "cus_mail")

	f.confirmOrder("o-mail-1")
	sent := peer.all()
	require.Len(t, sent, 1)
	m := sent[0]
	assert.Equal(t, receiptKey("o-mail-1"), m.IdempotencyKey)
	assert.Equal(t, resendFrom, m.Body["from"])
	assert.Equal(t, []any{"cus_mail@example.com"}, m.Body["to"])
	assert.Equal(t, "Your receipt for order o-mail-1", m.Body["subject"])
	assert.Contains(t, m.Body["text"], "2 x Mug (mug) at 15.00 EUR: 30.00 EUR")
	assert.Contains(t, m.Body["text"], "Total paid: 42.00 EUR")
	assert.Contains(t, m.Body["html"], "<td>Tea <span")
	assert.Equal(t, map[string]string{"template": "payment-receipt", "template_version": "v1", "business_key": "o-mail-1"}, tagsOf(m))
	row := f.emailOf(receiptKey("o-mail-1"))
	assert.Equal(t, store.EmailSent, row.Status)
	assert.Equal(t, m.ID, row.ProviderID)
	assert.Equal(t, 1, f.knock.countWorkflow(workflows.KnockOrderConfirmed), "Knock keeps the in-app notice")

	status, body := f.postResend("msg_delivered", resendEventBody(t, "email.delivered", m.ID, "cus_mail@example.com", ""))
	require.Equal(t, http.StatusOK, status, "%v", body)
	f.waitEmailStatus(receiptKey("o-mail-1"), store.EmailDelivered)

	bounce := resendEventBody(t, "email.bounced", m.ID, "Customer <CUS_MAIL@example.com>", "Permanent")
	status, _ = f.postResend("msg_bounced", bounce)
	require.Equal(t, http.StatusOK, status)
	row = f.waitEmailStatus(receiptKey("o-mail-1"), store.EmailBounced)
	assert.Equal(t, "Permanent/General: The recipient's mailbox does not exist", row.StatusDetail)
	status, body = f.postResend("msg_bounced", bounce)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, true, body["duplicate"], "a redelivery is acknowledged and does nothing")

	sup, err := f.store.GetSuppression(ctx, "cus_mail@example.com")
	require.NoError(t, err)
	assert.Equal(t, store.SuppressedBounce, sup.Reason)
	assert.Equal(t, m.ID, sup.EmailID)
	assert.Equal(t, "msg_bounced", sup.EventID)
	customer, err := f.store.CustomerEmailStatus(ctx, "cus_mail")
	require.NoError(t, err)
	require.NotNil(t, customer.Suppression, "the customer's row says why they get no email")
	assert.Equal(t, store.SuppressedBounce, customer.Suppression.Reason)

	f.confirmOrder("o-mail-2")
	assert.Len(t, peer.all(), 1, "nothing is sent to a suppressed address")
	row = f.emailOf(receiptKey("o-mail-2"))
	assert.Equal(t, store.EmailSuppressed, row.Status)
	assert.Contains(t, row.StatusDetail, "address suppressed after a bounce")
	assert.Empty(t, row.ProviderID)
	assert.Equal(t, "delivered", f.inboxEvent("msg_delivered").Status)
}

// TestResendComplaintSuppressesAndAlertsOperatorsOnce: a complaint marks
// the email, suppresses the address and alerts operators through Knock
// once, however often Resend tells it (a redelivery, another event of the
// same email).
func TestResendComplaintSuppressesAndAlertsOperatorsOnce(t *testing.T) {
	f, peer := emailFixture(t, fixtureOptions{})
	f.seedReceiptOrder("o-spam", "cus_spam")
	f.confirmOrder("o-spam")
	require.Len(t, peer.all(), 1)
	id := peer.all()[0].ID

	complaint := resendEventBody(t, "email.complained", id, "cus_spam@example.com", "")
	status, _ := f.postResend("msg_spam", complaint)
	require.Equal(t, http.StatusOK, status)
	var res contract.EmailComplaintResult
	require.NoError(t, f.result(contract.EmailComplaintID(id), &res))
	assert.Equal(t, "alerted", res.Status)
	f.waitEmailStatus(receiptKey("o-spam"), store.EmailComplained)
	sup, err := f.store.GetSuppression(context.Background(), "cus_spam@example.com")
	require.NoError(t, err)
	assert.Equal(t, store.SuppressedComplaint, sup.Reason)

	key := contract.EmailComplaintID(id) + "/notify-operators"
	require.Equal(t, 1, f.knock.succeeded(key))
	for _, tr := range f.knock.all() {
		if tr.IdempotencyKey == key {
			assert.Equal(t, workflows.KnockEmailComplaint, tr.Workflow)
			assert.Equal(t, []any{workflows.OperatorsRecipient}, tr.Body["recipients"])
		}
	}
	saveHistory(t, f.temporal, contract.EmailComplaintID(id), "email_complaint_alerted.json")

	// Resend tells it again under a new message id: the alert's run has
	// ended, so nothing more is sent.
	status, _ = f.postResend("msg_spam_again", complaint)
	require.Equal(t, http.StatusOK, status)
	f.waitInboxEvent("msg_spam_again", "delivered")
	assert.Equal(t, 1, f.knock.countWorkflow(workflows.KnockEmailComplaint))
}

// TestResendEventsByType: delivery_delayed then delivered move the row
// forward; a late delivery_delayed cannot move it back; a type crmflow
// does not act on is stored ignored; an event about an email crmflow never
// recorded waits, then ends unroutable, with its hard bounce applied.
func TestResendEventsByType(t *testing.T) {
	f, peer := emailFixture(t, fixtureOptions{emailWait: 300 * time.Millisecond})
	f.seedReceiptOrder("o-types", "cus_types")
	f.confirmOrder("o-types")
	id := peer.all()[0].ID
	to := "cus_types@example.com"

	post := func(msgID, typ string) {
		t.Helper()
		status, body := f.postResend(msgID, resendEventBody(t, typ, id, to, ""))
		require.Equal(t, http.StatusOK, status, "%v", body)
	}
	post("msg_delayed", "email.delivery_delayed")
	f.waitEmailStatus(receiptKey("o-types"), store.EmailDeliveryDelayed)
	post("msg_delivered", "email.delivered")
	f.waitEmailStatus(receiptKey("o-types"), store.EmailDelivered)
	post("msg_delayed_late", "email.delivery_delayed")
	f.waitInboxEvent("msg_delayed_late", "delivered")
	assert.Equal(t, store.EmailDelivered, f.emailOf(receiptKey("o-types")).Status, "a stale event moves nothing back")

	post("msg_opened", "email.opened")
	opened := f.inboxEvent("msg_opened")
	assert.Equal(t, "ignored", opened.Status)
	assert.Contains(t, opened.Note, "email.opened is not handled")

	foreign := resendEventBody(t, "email.bounced", "9a3c4e1f-0000-4000-8000-000000000001", "stranger@example.com", "Permanent")
	status, _ := f.postResend("msg_foreign", foreign)
	require.Equal(t, http.StatusOK, status)
	row := f.waitInboxEvent("msg_foreign", "unroutable")
	assert.Contains(t, row.Note, "crmflow recorded no email with Resend id")
	_, err := f.store.GetSuppression(context.Background(), "stranger@example.com")
	assert.NoError(t, err, "a hard bounce is a fact about the address, whoever sent the email")

	transient := resendEventBody(t, "email.bounced", "9a3c4e1f-0000-4000-8000-000000000002", "full@example.com", "Transient")
	status, _ = f.postResend("msg_transient", transient)
	require.Equal(t, http.StatusOK, status)
	f.waitInboxEvent("msg_transient", "unroutable")
	_, err = f.store.GetSuppression(context.Background(), "full@example.com")
	assert.ErrorIs(t, err, store.ErrNotFound, "a transient bounce suppresses nothing")
}

// TestEmailSuppressionRoutes: the operator routes answer 401 without a
// token and 403 to a service token; an operator lists the suppressions
// and removes one, which is audited, after which the address gets email
// again (a second removal is 404).
func TestEmailSuppressionRoutes(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := context.Background()
	require.NoError(t, f.store.Suppress(ctx, store.Suppression{Address: "Ada@Example.com", Reason: store.SuppressedBounce, Detail: "Permanent/General"}))
	const list, one = "/v1/email/suppressions", "/v1/email/suppressions/ada%40example.com"

	for _, r := range []struct{ method, path string }{{http.MethodGet, list}, {http.MethodDelete, one}} {
		status, body, _ := f.authRequest(r.method, r.path, "-", "")
		assert.Equal(t, http.StatusUnauthorized, status, "%s %s", r.method, r.path)
		assert.Equal(t, "unauthorized", errorCode(body))
		status, body, _ = f.authRequest(r.method, r.path, "Bearer "+apiToken, "")
		assert.Equal(t, http.StatusForbidden, status, "%s %s", r.method, r.path)
		assert.Equal(t, "forbidden", errorCode(body))
	}
	_, err := f.store.GetSuppression(ctx, "ada@example.com")
	require.NoError(t, err, "a refused removal removes nothing")

	status, body, _ := f.authRequest(http.MethodGet, list, "Bearer "+operatorToken, "")
	require.Equal(t, http.StatusOK, status)
	sups, _ := body["suppressions"].([]any)
	require.Len(t, sups, 1)
	assert.Equal(t, "ada@example.com", sups[0].(map[string]any)["address"])
	assert.Equal(t, "bounce", sups[0].(map[string]any)["reason"])

	status, body, _ = f.authRequest(http.MethodDelete, one, "Bearer "+operatorToken, "")
	require.Equal(t, http.StatusOK, status, "%v", body)
	assert.Equal(t, "ada@example.com", body["removed"].(map[string]any)["address"])
	f.requireAudited(operatorName, "email_suppression.remove", "email-suppression/ada@example.com")
	status, body, _ = f.authRequest(http.MethodDelete, one, "Bearer "+operatorToken, "")
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "not_found", errorCode(body))
	status, body, _ = f.authRequest(http.MethodDelete, "/v1/email/suppressions/not-an-address", "Bearer "+operatorToken, "")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "invalid_address", errorCode(body))

	e, err := f.store.BeginEmail(ctx, store.Email{IdempotencyKey: "k-after", Recipient: "ada@example.com", Template: "welcome", TemplateVersion: "v1"})
	require.NoError(t, err)
	assert.Equal(t, store.EmailSending, e.Status, "the address gets email again")
}

// TestResendEventReplayedOnceItsEmailIsRecorded: an event about an email
// crmflow has no row of ends unroutable and is listed under provider
// resend; once the row exists, an operator's replay applies it. An ignored
// type still has no route, so its replay is refused and changes nothing.
func TestResendEventReplayedOnceItsEmailIsRecorded(t *testing.T) {
	f := newFixture(t, fixtureOptions{emailWait: 300 * time.Millisecond})
	ctx := context.Background()
	const emailID = "4ef9a417-02e9-4d39-ad75-0000000000aa"
	status, _ := f.postResend("msg_early", resendEventBody(t, "email.delivered", emailID, "ada@example.com", ""))
	require.Equal(t, http.StatusOK, status)
	id := f.waitInboxStatus(inbox.SourceResend, "msg_early", inbox.StatusUnroutable)

	status, body := f.api(http.MethodGet, "/v1/inbox?provider=resend&status=unroutable", operatorToken, nil)
	require.Equal(t, http.StatusOK, status, "%v", body)
	events, _ := body["events"].([]any)
	require.Len(t, events, 1)
	assert.Equal(t, "msg_early", events[0].(map[string]any)["event_id"])

	_, err := f.store.BeginEmail(ctx, store.Email{IdempotencyKey: "k-early", Recipient: "ada@example.com", Template: "welcome", TemplateVersion: "v1"})
	require.NoError(t, err)
	_, err = f.store.MarkEmailSent(ctx, "k-early", emailID, false)
	require.NoError(t, err)
	status, body = f.api(http.MethodPost, fmt.Sprintf("/v1/inbox/%d/replay", id), operatorToken, nil)
	require.Equal(t, http.StatusAccepted, status, "%v", body)
	f.waitInboxStatus(inbox.SourceResend, "msg_early", inbox.StatusDelivered)
	assert.Equal(t, store.EmailDelivered, f.emailOf("k-early").Status)

	status, _ = f.postResend("msg_clicked", resendEventBody(t, "email.clicked", emailID, "ada@example.com", ""))
	require.Equal(t, http.StatusOK, status)
	clicked := f.waitInboxStatus(inbox.SourceResend, "msg_clicked", inbox.StatusIgnored)
	status, body = f.api(http.MethodPost, fmt.Sprintf("/v1/inbox/%d/replay", clicked), operatorToken, nil)
	assert.Equal(t, http.StatusConflict, status)
	assert.Equal(t, "not_routable", errorCode(body))
	_, st, _ := f.inboxRow(inbox.SourceResend, "msg_clicked")
	assert.Equal(t, inbox.StatusIgnored, st, "a refused replay changes nothing")
}
