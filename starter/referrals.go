package starter

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/workflows"
)

func (s *Starter) referralOptions(in workflows.ReferralRewardInput) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:        workflows.ReferralRewardID(in.ReferralID),
		TaskQueue: s.opts.TaskQueue,
		// One reward per referral: a finished reward is never started again
		// (the ledger would refuse a second payout anyway).
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		TypedSearchAttributes: searchAttributes(
			workflows.OrderIDKey.ValueSet(in.OrderID), workflows.CustomerIDKey.ValueSet(in.ReferredCustomerID)),
	}
}

// StartReferralReward starts (or joins) the referral's reward, e.g. for a
// backfill; the order confirmation normally starts it as a child.
func (s *Starter) StartReferralReward(ctx context.Context, in workflows.ReferralRewardInput) (Run, error) {
	if err := workflows.ValidateKey("referral ID", in.ReferralID); err != nil {
		return Run{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	opts := s.referralOptions(in)
	run, err := s.c.ExecuteWorkflow(ctx, opts, workflows.ReferralRewardType, in)
	if err != nil {
		return s.existing(ctx, opts.ID, err)
	}
	return Run{WorkflowID: run.GetID(), RunID: run.GetRunID()}, nil
}

// SignalRefund hands a verified charge.refunded event to the reward of the
// referral whose qualifying order was refunded, starting it if needed.
func (s *Starter) SignalRefund(ctx context.Context, in workflows.ReferralRewardInput, ev workflows.RefundEvent) (Run, error) {
	if err := workflows.ValidateKey("referral ID", in.ReferralID); err != nil {
		return Run{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	opts := s.referralOptions(in)
	run, err := s.c.SignalWithStartWorkflow(ctx, opts.ID, workflows.RefundSignal, ev, opts, workflows.ReferralRewardType, in)
	if err != nil {
		return s.existing(ctx, opts.ID, err)
	}
	return Run{WorkflowID: run.GetID(), RunID: run.GetRunID()}, nil
}
