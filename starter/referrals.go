package starter

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/contract"
)

func (s *Starter) referralOptions(in contract.ReferralRewardInput) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:        contract.ReferralRewardID(in.ReferralID),
		TaskQueue: s.opts.TaskQueue,
		// One reward per referral: a finished reward is never started again
		// (the ledger would refuse a second payout anyway).
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		TypedSearchAttributes: searchAttributes(
			contract.OrderIDKey.ValueSet(in.OrderID), contract.CustomerIDKey.ValueSet(in.ReferredCustomerID)),
	}
}

// StartReferralReward starts (or joins) the referral's reward, e.g. for a
// backfill; the order confirmation normally starts it as a child. A reward
// that already finished is ErrAlreadyDone, with the finished run.
func (s *Starter) StartReferralReward(ctx context.Context, in contract.ReferralRewardInput) (Run, error) {
	if err := contract.ValidateKey("referral ID", in.ReferralID); err != nil {
		return Run{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	opts := s.referralOptions(in)
	return s.execute(ctx, opts, contract.ReferralRewardType, in)
}

// SignalRefund hands a verified charge.refunded event to the reward of the
// referral whose qualifying order was refunded, starting it if needed.
func (s *Starter) SignalRefund(ctx context.Context, in contract.ReferralRewardInput, ev contract.RefundEvent) (Run, error) {
	if err := contract.ValidateKey("referral ID", in.ReferralID); err != nil {
		return Run{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	opts := s.referralOptions(in)
	// A refund never restarts a reward that ended, even one an operator
	// aborted: the inbox stores it late.
	opts.WorkflowIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
	run, err := s.c.SignalWithStartWorkflow(ctx, opts.ID, contract.RefundSignal, ev, opts, contract.ReferralRewardType, in)
	if err != nil {
		return s.existing(ctx, opts.ID, err)
	}
	return Run{WorkflowID: run.GetID(), RunID: run.GetRunID()}, nil
}
