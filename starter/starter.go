// Package starter is the typed way to start, signal, update and query
// crmflow's workflows. The webhooks server, the CLI and other Go services call
// it instead of using workflow names and IDs by hand.
package starter

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/workflows"
)

// ErrNotFound means no workflow run has the given ID.
var ErrNotFound = errors.New("workflow not found")

// Starter wraps a Temporal client with crmflow's workflow contract.
type Starter struct {
	c client.Client
}

// New returns a Starter using c.
func New(c client.Client) *Starter { return &Starter{c: c} }

// Status asks the workflow's latest run for its status query answer.
func (s *Starter) Status(ctx context.Context, workflowID string) (*workflows.Status, error) {
	v, err := s.c.QueryWorkflow(ctx, workflowID, "", workflows.StatusQuery)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, workflowID)
		}
		return nil, fmt.Errorf("query status of %s: %w", workflowID, err)
	}
	var st workflows.Status
	if err := v.Get(&st); err != nil {
		return nil, fmt.Errorf("decode status of %s: %w", workflowID, err)
	}
	return &st, nil
}
