package starter

import (
	"context"
	"fmt"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/contract"
)

// StartOrderRefund starts the handling of one refund event for its order.
// The workflow ID is the event's, so a redelivered or replayed event joins
// or finds the run it started (ErrAlreadyDone once that run has finished).
func (s *Starter) StartOrderRefund(ctx context.Context, in contract.OrderRefundInput) (Run, error) {
	if err := contract.ValidateKey("order ID", in.OrderID); err != nil {
		return Run{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := contract.ValidateKey("refund event ID", in.Refund.EventID); err != nil {
		return Run{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	opts := client.StartWorkflowOptions{
		ID:                       contract.OrderRefundID(in.Refund.EventID),
		TaskQueue:                s.opts.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes:    searchAttributes(contract.OrderIDKey.ValueSet(in.OrderID)),
	}
	return s.execute(ctx, opts, contract.OrderRefundType, in)
}

// StartLatePayment starts a new run of the order's confirmation for a
// payment that succeeded after the order's previous run had ended it
// expired or payment_failed: the run records the payment and holds it for
// operators (paid-after-close). Only the inbox's dispatcher calls it, after
// checking the order's status; a run of the order still going is joined.
func (s *Starter) StartLatePayment(ctx context.Context, orderID string, ev contract.PaymentEvent) (Run, error) {
	if err := contract.ValidateKey("order ID", orderID); err != nil {
		return Run{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	opts := s.orderOptions(orderID)
	opts.WorkflowIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
	in := s.orderInput(orderID)
	in.LatePayment = &ev
	return s.execute(ctx, opts, contract.OrderConfirmationType, in)
}

// Outcome says how the workflow's latest run ended, for operators: its
// close status and run id, e.g. "completed (run 1b2c…)"; "running" when it
// has not ended.
func (s *Starter) Outcome(ctx context.Context, workflowID string) (string, error) {
	desc, err := s.c.DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil {
		return "", fmt.Errorf("describe %s: %w", workflowID, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	status := strings.ToLower(info.GetStatus().String()) // "Completed", "Terminated", …
	return fmt.Sprintf("%s (run %s)", status, info.GetExecution().GetRunId()), nil
}
