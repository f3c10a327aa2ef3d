package starter

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/contract"
)

// StartEmailComplaint starts the operators' alert about one spam complaint.
// The workflow ID is the email's, so a redelivered or replayed complaint
// joins or finds the run it started (ErrAlreadyDone once that run has
// finished): operators are alerted once per email.
func (s *Starter) StartEmailComplaint(ctx context.Context, in contract.EmailComplaintInput) (Run, error) {
	if err := contract.ValidateKey("email id", in.EmailID); err != nil {
		return Run{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	opts := client.StartWorkflowOptions{
		ID:                       contract.EmailComplaintID(in.EmailID),
		TaskQueue:                s.opts.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}
	return s.execute(ctx, opts, contract.EmailComplaintType, in)
}
