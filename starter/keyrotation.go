package starter

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/contract"
)

// StartKeyRotation starts the provider's key rotation, or joins the one
// running: a rotation is never duplicated. A finished one is started again,
// so this never answers ErrAlreadyDone.
func (s *Starter) StartKeyRotation(ctx context.Context, provider, requestedBy string) (Run, error) {
	// Which keys rotate is crmflow's to know (its provider registry): the
	// API and the CLI check the name first, and a rotation started for an
	// unknown one fails at once with InvalidInput.
	if err := contract.ValidateKey("provider", provider); err != nil {
		return Run{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	opts := s.startOptions(contract.KeyRotationID(provider), contract.ProviderKey.ValueSet(provider))
	// A finished rotation may run again: rotations recur.
	opts.WorkflowIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
	return s.execute(ctx, opts, contract.KeyRotationType,
		contract.KeyRotationInput{Provider: provider, RequestedBy: requestedBy})
}

// SubmitKey hands an operator's new key to a human-in-the-loop rotation; the
// answer says whether the provider accepted it.
func (s *Starter) SubmitKey(ctx context.Context, provider string, in contract.SubmitKeyInput) (*contract.SubmitKeyResult, error) {
	var res contract.SubmitKeyResult
	if err := s.update(ctx, contract.KeyRotationID(provider), contract.KeyRotationSubmitKeyUpdate, in, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// ConfirmOldKeyRevoked tells the rotation the operator revoked the old key
// at the provider.
func (s *Starter) ConfirmOldKeyRevoked(ctx context.Context, provider, operator string) error {
	return s.update(ctx, contract.KeyRotationID(provider), contract.KeyRotationRevokedUpdate,
		contract.KeyRevokedInput{Operator: operator}, nil)
}

// AcknowledgeToken tells a crmflow token rotation an operator put the new
// token in place, so it need not wait for the token's first use.
func (s *Starter) AcknowledgeToken(ctx context.Context, operator string) error {
	return s.update(ctx, contract.KeyRotationID(contract.KeyRotationCrmflow), contract.KeyRotationTokenAckUpdate,
		contract.KeyRotationTokenRequest{Operator: operator}, nil)
}

// CancelKeyRotation ends a rotation that waits for an operator's key, or
// for proof of a submitted webhook secret, changing nothing.
func (s *Starter) CancelKeyRotation(ctx context.Context, provider, operator string) error {
	return s.update(ctx, contract.KeyRotationID(provider), contract.KeyRotationCancelUpdate,
		contract.KeyRevokedInput{Operator: operator}, nil)
}

// SignalKeyRotation tells the provider's rotation about a key version (a
// new token's first use, a webhook secret's proof). A rotation that is not
// running is ErrNotFound: the news concerns nobody then.
func (s *Starter) SignalKeyRotation(ctx context.Context, provider, signal string, version int) error {
	err := s.c.SignalWorkflow(ctx, contract.KeyRotationID(provider), "", signal, contract.KeyVersion{Version: version})
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return fmt.Errorf("%w: %s", ErrNotFound, contract.KeyRotationID(provider))
		}
		return fmt.Errorf("signal %s of %s: %w", signal, contract.KeyRotationID(provider), err)
	}
	return nil
}

// CollectToken asks a crmflow token rotation for its new token: its
// version in the credential store, where the caller reads it (runs started
// before tokens stayed out of histories answer with the token, once).
func (s *Starter) CollectToken(ctx context.Context, operator string) (*contract.KeyRotationToken, error) {
	var tok contract.KeyRotationToken
	if err := s.update(ctx, contract.KeyRotationID("crmflow"), contract.KeyRotationTokenUpdate,
		contract.KeyRotationTokenRequest{Operator: operator}, &tok); err != nil {
		return nil, err
	}
	return &tok, nil
}

// update sends an Update to the workflow's running run and waits for its
// answer; a validator's refusal is ErrRejected.
func (s *Starter) update(ctx context.Context, workflowID, name string, arg, result any) error {
	handle, err := s.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflowID, UpdateName: name, Args: []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return classifyUpdate(workflowID, err)
	}
	if err := handle.Get(ctx, result); err != nil {
		return classifyUpdate(workflowID, err)
	}
	return nil
}

// NextRotation is when provider's rotation Schedule starts its next run;
// nil when the Schedule does not exist, is paused or plans no run.
func (s *Starter) NextRotation(ctx context.Context, provider string) (*time.Time, error) {
	desc, err := s.c.ScheduleClient().GetHandle(ctx, contract.KeyRotationScheduleID(provider)).Describe(ctx)
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("describe schedule %s: %w", contract.KeyRotationScheduleID(provider), err)
	}
	if desc.Schedule.State != nil && desc.Schedule.State.Paused {
		return nil, nil
	}
	if next := desc.Info.NextActionTimes; len(next) > 0 {
		return &next[0], nil
	}
	return nil, nil
}
