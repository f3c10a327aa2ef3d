package starter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/crmflow/crmflow/contract"
)

// DecideDeadLetter sends an operator's retry, skip or abort to the run parked
// on the dead letter, and returns once the run has accepted it.
func (s *Starter) DecideDeadLetter(ctx context.Context, workflowID, runID string, d contract.DeadLetterDecision) (*contract.DeadLetterDecisionResult, error) {
	// Runs that parked first under older code reject a decision that
	// arrives between the dead letter's commit and their taking note of
	// it as not parked; it is sent again for a short while. Newer runs
	// accept it at once.
	deadline := time.Now().Add(notParkedPatience)
	for {
		res, err := s.decide(ctx, workflowID, runID, d)
		var appErr *temporal.ApplicationError
		if err == nil || !errors.As(err, &appErr) || appErr.Type() != contract.ErrorTypeNotParked || time.Now().After(deadline) {
			if err != nil {
				return nil, classifyUpdate(workflowID, err)
			}
			return res, nil
		}
		select {
		case <-ctx.Done():
			return nil, classifyUpdate(workflowID, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// notParkedPatience bounds how long DecideDeadLetter waits for a run to
// take note of the dead letter it just stored.
const notParkedPatience = 10 * time.Second

func (s *Starter) decide(ctx context.Context, workflowID, runID string, d contract.DeadLetterDecision) (*contract.DeadLetterDecisionResult, error) {
	var res contract.DeadLetterDecisionResult
	handle, err := s.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   workflowID,
		RunID:        runID,
		UpdateName:   contract.DeadLetterDecisionUpdate,
		Args:         []any{d},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return nil, err
	}
	if err := handle.Get(ctx, &res); err != nil {
		return nil, err
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
