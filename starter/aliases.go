package starter

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/crmflow/crmflow/contract"
)

// SignalAlias sends a command (disable, enable, delete, claim) to the alias's
// lifecycle. ErrNotFound means the alias has no running workflow (it was
// deleted or expired).
func (s *Starter) SignalAlias(ctx context.Context, aliasID, signal string, cmd contract.AliasCommand) error {
	if err := contract.ValidateKey("alias ID", aliasID); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	err := s.c.SignalWorkflow(ctx, contract.AliasID(aliasID), "", signal, cmd)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("%w: alias %s", ErrNotFound, aliasID)
	}
	if err != nil {
		return fmt.Errorf("signal %s to alias %s: %w", signal, aliasID, err)
	}
	return nil
}

// CreateAlias starts the alias's lifecycle: creation at SimpleLogin, then a
// life on signals. Starting the same alias ID again joins the running run;
// once that run ended (the alias was deleted or expired) it is
// ErrAlreadyDone with the ended run, whatever the input says.
func (s *Starter) CreateAlias(ctx context.Context, in contract.AliasLifecycleInput) (Run, error) {
	if err := contract.ValidateKey("alias ID", in.AliasID); err != nil {
		return Run{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if in.ShadowTTL == 0 {
		in.ShadowTTL = s.opts.ShadowTTL
	}
	attrs := []temporal.SearchAttributeUpdate{contract.AliasIDKey.ValueSet(in.AliasID)}
	if in.CustomerID != "" {
		attrs = append(attrs, contract.CustomerIDKey.ValueSet(in.CustomerID))
	}
	opts := s.startOptions(contract.AliasID(in.AliasID), attrs...)
	// A deleted or expired alias is not brought back under the same ID.
	opts.WorkflowIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY
	return s.execute(ctx, opts, contract.AliasLifecycleType, in)
}
