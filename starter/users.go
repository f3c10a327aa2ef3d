package starter

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/crmflow/crmflow/contract"
)

// SignalUserEvent hands a Clerk user event to the user's lifecycle,
// starting it if needed. Once the user's run has completed (the user was
// deleted) no event starts another: ErrAlreadyDone with that run, and the
// inbox stores the event late. A run that failed (an operator aborted it)
// may be started again by the next event.
func (s *Starter) SignalUserEvent(ctx context.Context, ev contract.UserEvent) (Run, error) {
	if err := contract.ValidateKey("user ID", ev.UserID); err != nil {
		return Run{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	id := contract.UserID(ev.UserID)
	opts := s.startOptions(id, contract.CustomerIDKey.ValueSet(ev.UserID))
	opts.WorkflowIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY
	in := contract.UserLifecycleInput{UserID: ev.UserID, MailboxCheck: s.opts.MailboxCheck, MailboxVerifyWait: s.opts.MailboxVerifyWait}
	run, err := s.c.SignalWithStartWorkflow(ctx, id, contract.UserEventSignal, ev, opts, contract.UserLifecycleType, in)
	if err != nil {
		return s.existing(ctx, id, err)
	}
	return Run{WorkflowID: run.GetID(), RunID: run.GetRunID()}, nil
}
