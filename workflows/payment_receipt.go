package workflows

import (
	"errors"

	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
)

// Activities of the payment receipt, referred to by method value.
var (
	receipts *activities.ReceiptActivities
	email    *activities.EmailActivities
)

// paymentReceipt versions the receipt email an order's confirmation sends
// once the order is confirmed. It adds two activities after the Knock
// notice, so runs confirmed before it replay without them
// (DefaultVersion) and send no receipt.
const paymentReceipt = "payment-receipt"

// sendReceipt emails the customer their receipt through Resend: the
// order's lines and amount, read from PostgreSQL, rendered from the
// payment-receipt template. Knock keeps the in-app confirmation; every
// email to a customer is Resend's (docs/workflows.md). An address that is
// suppressed (a hard bounce or complaint) is skipped and recorded by the
// activity; the run goes on either way. The idempotency key is the run's
// workflow ID plus the step, so a retry or a replay sends nothing twice.
func (w *orderConfirmation) sendReceipt(ctx workflow.Context) error {
	if !w.current && workflow.GetVersion(ctx, paymentReceipt, workflow.DefaultVersion, 1) < 1 {
		return nil
	}
	load := activities.LoadReceiptInput{OrderID: w.order.ID}
	var receipt activities.Receipt
	err := w.parker.step(ctx, "load-receipt", w.store, load, func(ctx workflow.Context) error {
		return w.store.execute(ctx, receipts.LoadReceipt, load).Get(ctx, &receipt)
	})
	if errors.Is(err, errSkipped) {
		return nil // an operator chose to send no receipt
	}
	if err != nil {
		return err
	}
	if receipt.Email == "" {
		// A customer whose personal fields were scrubbed (user.deleted) has
		// no address left; there is nobody to send to, and nothing for an
		// operator to decide.
		workflow.GetLogger(ctx).Info("Receipt not sent: the customer has no email address", "orderID", w.order.ID)
		return nil
	}
	send := activities.SendEmailInput{
		Template:       activities.ReceiptTemplate,
		To:             receipt.Email,
		Data:           receipt.TemplateData(),
		IdempotencyKey: workflow.GetInfo(ctx).WorkflowExecution.ID + "/send-receipt",
		BusinessKey:    w.order.ID,
	}
	var out activities.SendEmailOutput
	err = w.parker.step(ctx, "send-receipt", emailOptions, send, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, email.SendTemplatedEmail, send).Get(ctx, &out)
	})
	if errors.Is(err, errSkipped) {
		return nil
	}
	if err != nil {
		return err
	}
	if out.Status == activities.EmailStatusSuppressed {
		workflow.GetLogger(ctx).Info("Receipt not sent: the customer's address is suppressed", "orderID", w.order.ID)
	}
	return nil
}
