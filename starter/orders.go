package starter

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/contract"
)

// Run identifies a workflow run.
type Run struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

func (s *Starter) orderOptions(orderID string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:        contract.OrderConfirmationID(orderID),
		TaskQueue: s.opts.TaskQueue,
		// A running confirmation is joined, a finished one is not redone;
		// only a run that failed (say, aborted by an operator) may start again.
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		TypedSearchAttributes:    searchAttributes(contract.OrderIDKey.ValueSet(orderID)),
	}
}

func (s *Starter) orderInput(orderID string) contract.OrderConfirmationInput {
	return contract.OrderConfirmationInput{OrderID: orderID, PaymentTimeout: s.opts.PaymentTimeout}
}

// StartOrderConfirmation starts the order's confirmation, or joins the run
// that is running. A confirmation that already finished is not started
// again: ErrAlreadyDone, with the finished run.
func (s *Starter) StartOrderConfirmation(ctx context.Context, orderID string) (Run, error) {
	if err := contract.ValidateKey("order ID", orderID); err != nil {
		return Run{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	opts := s.orderOptions(orderID)
	return s.execute(ctx, opts, contract.OrderConfirmationType, s.orderInput(orderID))
}

// SignalPayment hands a verified Stripe payment event to the order's
// confirmation, starting it if needed. An event for an order whose
// confirmation already finished returns ErrAlreadyDone: the order's state
// never goes backwards.
func (s *Starter) SignalPayment(ctx context.Context, orderID string, ev contract.PaymentEvent) (Run, error) {
	if err := contract.ValidateKey("order ID", orderID); err != nil {
		return Run{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	opts := s.orderOptions(orderID)
	// An event never starts a run after one ended, even one an operator
	// aborted: it is late, and the inbox says so (StartLatePayment is the
	// one way a payment starts a new run).
	opts.WorkflowIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
	run, err := s.c.SignalWithStartWorkflow(ctx, opts.ID, contract.PaymentSignal, ev, opts,
		contract.OrderConfirmationType, s.orderInput(orderID))
	if err != nil {
		return s.existing(ctx, opts.ID, err)
	}
	return Run{WorkflowID: run.GetID(), RunID: run.GetRunID()}, nil
}
