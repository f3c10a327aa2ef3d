package activities

import (
	"context"
	"errors"
	"fmt"

	"github.com/crmflow/crmflow/contract"
)

// KeyRotationStarter starts a provider's key rotation at its one workflow
// ID (contract.KeyRotationID), or joins the rotation running there, and
// answers that run's ID. The worker adapts starter.Starter to it, whose
// start uses the conflict policy USE_EXISTING for rotations.
type KeyRotationStarter interface {
	StartOrJoinKeyRotation(ctx context.Context, provider, requestedBy string) (runID string, err error)
}

// RotationTriggerActivities start key rotations for their Schedules. A
// Schedule cannot start them itself: Temporal appends the scheduled time to
// the workflow ID of every run a Schedule starts, and operators, the API
// and the edge's signals reach a rotation at its documented ID only.
type RotationTriggerActivities struct {
	// Starter starts or joins the rotation.
	Starter KeyRotationStarter
}

// StartKeyRotationInput names the rotation to start or join.
type StartKeyRotationInput struct {
	Provider    string `json:"provider"`
	RequestedBy string `json:"requested_by,omitempty"`
}

// StartKeyRotationOutput is the rotation run started or joined.
type StartKeyRotationOutput struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

// StartOrJoinKeyRotation starts the provider's rotation, or joins the one
// running (an operator's, or an earlier Schedule's that still waits): a
// rotation is never run twice at once. Starting is idempotent, so a retried
// attempt joins what the first one started.
func (a *RotationTriggerActivities) StartOrJoinKeyRotation(ctx context.Context, in StartKeyRotationInput) (*StartKeyRotationOutput, error) {
	if a.Starter == nil {
		return nil, permanent(providerTemporal, ErrTypeInvalid, errors.New("rotation trigger activities have no starter"))
	}
	if err := contract.ValidateKey("provider", in.Provider); err != nil {
		return nil, permanent(providerTemporal, ErrTypeInvalid, err)
	}
	runID, err := a.Starter.StartOrJoinKeyRotation(ctx, in.Provider, in.RequestedBy)
	if err != nil {
		return nil, transient(providerTemporal, ErrTypeUnavailable,
			fmt.Errorf("start or join %s: %w", contract.KeyRotationID(in.Provider), err), 0)
	}
	return &StartKeyRotationOutput{WorkflowID: contract.KeyRotationID(in.Provider), RunID: runID}, nil
}
