package workflows

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
)

// KnockOrderPaidAfterClose alerts operators to a payment that succeeded
// after its order was closed.
const KnockOrderPaidAfterClose = "order-paid-after-close"

// ErrorTypePaidAfterClose is the type of the dead letter a late payment
// parks on.
const ErrorTypePaidAfterClose = "PaidAfterClose"

// paidAfterClose handles a run started for a payment that succeeded after
// the order's confirmation had ended it expired or payment_failed. The
// customer paid for an order crmflow has given up on, so an operator
// decides: the payment is recorded on the order (a later refund of it finds
// the order), operators are alerted through Knock, and the run parks on a
// paid-after-close dead letter. Retry checks the payment at Stripe, reopens
// the order and confirms it as a normal confirmation would; skip leaves the
// order closed for a manual refund.
func (w *orderConfirmation) paidAfterClose(ctx workflow.Context, payment *contract.PaymentEvent) (*contract.OrderConfirmationResult, error) {
	closedAs := w.order.Status
	if closedAs != "expired" && closedAs != "payment_failed" {
		// Decided otherwise meanwhile (confirmed by an earlier late run).
		return w.finish(ctx, closedAs, "late payment for an order that is "+closedAs+"; nothing to do"), nil
	}
	late := activities.LatePaymentInput{OrderID: w.order.ID, PaymentIntentID: payment.PaymentIntentID}
	err := w.parker.step(ctx, "record-late-payment", storeOptions, late, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, orders.RecordLatePayment, late).Get(ctx, nil)
	})
	if err != nil && !errors.Is(err, errSkipped) {
		return nil, err
	}
	data := w.orderData()
	data["payment_intent_id"], data["closed_as"] = payment.PaymentIntentID, closedAs
	if err := w.notify(ctx, "notify-paid-after-close", KnockOrderPaidAfterClose, OperatorsRecipient, data); err != nil {
		return nil, err
	}

	w.status.State = "paid_after_close"
	question := fmt.Sprintf("payment %s of %d %s succeeded after the order was %s: retry reopens and confirms the order, "+
		"skip leaves it %s for a manual refund", payment.PaymentIntentID, payment.AmountReceivedCents, payment.Currency,
		closedAs, closedAs)
	action, deadLetter, err := w.parker.ask(ctx, "paid-after-close", ErrorTypePaidAfterClose, question, late)
	if err != nil {
		return nil, err
	}
	if action == contract.DecisionSkip {
		if err := w.alertOtherPayments(ctx, payment); err != nil {
			return nil, err
		}
		return w.finish(ctx, closedAs, "paid after close; left "+closedAs+" for a manual refund"), nil
	}

	if mismatch, err := w.verifyPayment(ctx, payment); err != nil {
		return nil, err
	} else if mismatch != "" {
		// Nothing reopened: the operators hear why and still hold the
		// payment.
		w.parker.close(ctx, deadLetter, "resolved", "")
		data["mismatch"] = mismatch
		if err := w.notify(ctx, "notify-mismatch", KnockOrderMismatch, OperatorsRecipient, data); err != nil {
			return nil, err
		}
		if err := w.alertOtherPayments(ctx, payment); err != nil {
			return nil, err
		}
		return w.finish(ctx, closedAs, "paid after close, but the payment does not match: "+mismatch), nil
	}
	err = w.parker.step(ctx, "confirm-late-payment", storeOptions, late, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, orders.ConfirmLatePayment, late).Get(ctx, nil)
	})
	if err != nil && !errors.Is(err, errSkipped) {
		return nil, err
	}
	w.parker.close(ctx, deadLetter, "resolved", "")
	if err := w.notify(ctx, "notify-confirmation", KnockOrderConfirmed, w.order.CustomerID, w.orderData()); err != nil {
		return nil, err
	}
	if err := w.sendReceipt(ctx); err != nil {
		return nil, err
	}
	referralID, err := w.startReferralReward(ctx)
	if err != nil {
		return nil, err
	}
	if err := w.alertOtherPayments(ctx, payment); err != nil {
		return nil, err
	}
	res := w.finish(ctx, "confirmed", "paid after close; confirmed by an operator")
	res.ReferralID = referralID
	return res, nil
}

// alertOtherPayments reads the payment events signalled to this run while
// it held the late payment (the inbox joins a running run of the order):
// any other successful payment is money for a closed order too, so
// operators are alerted to each; failures and repeats change nothing.
func (w *orderConfirmation) alertOtherPayments(ctx workflow.Context, handled *contract.PaymentEvent) error {
	w.seenBefore(handled.EventID)
	for {
		var ev contract.PaymentEvent
		if !w.payments.ReceiveAsync(&ev) {
			return nil
		}
		if w.seenBefore(ev.EventID) || !ev.Succeeded || ev.PaymentIntentID == handled.PaymentIntentID {
			continue
		}
		data := w.orderData()
		data["payment_intent_id"], data["closed_as"] = ev.PaymentIntentID, w.order.Status
		if err := w.notify(ctx, "notify-paid-after-close/"+ev.EventID, KnockOrderPaidAfterClose, OperatorsRecipient, data); err != nil {
			return err
		}
	}
}
