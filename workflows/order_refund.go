package workflows

import (
	"errors"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
)

// KnockOrderRefunded is the Knock workflow that tells a customer their
// order was refunded.
const KnockOrderRefunded = "order-refunded"

// OrderRefund handles one charge.refunded event for the order its
// PaymentIntent paid: it marks the order refunded or partially refunded
// with the amount, and tells the customer (one Knock notice per refund
// event: the idempotency key is this run's ID, which is the event's). The
// referral the order qualified is signalled by the inbox alongside, as
// before; this run only keeps the order true.
func OrderRefund(ctx workflow.Context, in contract.OrderRefundInput) (_ *contract.OrderRefundResult, err error) {
	if err := contract.ValidateKey("order ID", in.OrderID); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", nil)
	}
	status := contract.Status{Step: "start", State: "pending"}
	p, err := newParker(ctx, &status, nil)
	if err != nil {
		return nil, err
	}
	defer func() { p.settle(err) }()
	upsert(ctx, contract.OrderIDKey.ValueSet(in.OrderID))
	res, err := refundOrder(ctx, p, &status, in)
	awaitHandlers(ctx)
	return res, err
}

// refundOrder marks the order and tells the customer.
func refundOrder(ctx workflow.Context, p *parker, status *contract.Status, in contract.OrderRefundInput) (*contract.OrderRefundResult, error) {
	mark := activities.MarkRefundedInput{OrderID: in.OrderID, AmountRefundedCents: in.Refund.AmountRefundedCents,
		FullyRefunded: in.Refund.FullyRefunded}
	var order activities.MarkRefundedOutput
	err := p.step(ctx, "mark-refunded", storeOptions, mark, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, orders.MarkRefunded, mark).Get(ctx, &order)
	})
	switch {
	case errors.Is(err, errSkipped):
		status.State, status.Detail = "skipped", "an operator skipped marking the order refunded"
		p.setStep(ctx, "done")
		return &contract.OrderRefundResult{Status: "skipped"}, nil
	case err != nil:
		return nil, err
	}
	upsert(ctx, contract.CustomerIDKey.ValueSet(order.CustomerID))

	notice := activities.NotifyInput{
		Workflow:   KnockOrderRefunded,
		Recipients: []string{order.CustomerID},
		Data: map[string]any{"order_id": in.OrderID, "amount_cents": order.AmountCents, "currency": order.Currency,
			"refunded_cents": order.RefundedCents, "status": order.Status, "charge_id": in.Refund.ChargeID},
		IdempotencyKey: workflow.GetInfo(ctx).WorkflowExecution.ID + "/notify-refunded",
	}
	err = p.step(ctx, "notify-refunded", knockOptions, notice, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, knock.Notify, notice).Get(ctx, nil)
	})
	if err != nil && !errors.Is(err, errSkipped) {
		return nil, err
	}
	status.State = order.Status
	p.setStep(ctx, "done")
	return &contract.OrderRefundResult{Status: order.Status, RefundedCents: order.RefundedCents}, nil
}
