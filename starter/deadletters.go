package starter

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/workflows"
)

// DecideDeadLetter sends an operator's retry, skip or abort to the run parked
// on the dead letter, and returns once the run has accepted it.
func (s *Starter) DecideDeadLetter(ctx context.Context, workflowID, runID string, d workflows.DeadLetterDecision) (*workflows.DeadLetterDecisionResult, error) {
	var res workflows.DeadLetterDecisionResult
	handle, err := s.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   workflowID,
		RunID:        runID,
		UpdateName:   workflows.DeadLetterDecisionUpdate,
		Args:         []any{d},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return nil, classifyUpdate(workflowID, err)
	}
	if err := handle.Get(ctx, &res); err != nil {
		return nil, classifyUpdate(workflowID, err)
	}
	return &res, nil
}

func classifyUpdate(workflowID string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("%w: %s is not running", ErrNotFound, workflowID)
	}
	var appErr interface{ Type() string }
	if errors.As(err, &appErr) {
		// Validator rejections come back as application errors.
		return fmt.Errorf("%w: %v", ErrRejected, err)
	}
	return fmt.Errorf("update %s: %w", workflowID, err)
}
