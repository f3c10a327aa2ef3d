// Package starter is the typed way to start, signal, update and query
// crmflow's workflows. The webhooks server, the CLI and other Go services call
// it instead of using workflow names and IDs by hand.
//
// starter imports contract and Temporal's client only (a test at the module
// root checks it), so another Go service can use it without crmflow's
// database, providers or server.
package starter

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/crmflow/crmflow/contract"
)

// Errors callers branch on (the HTTP API maps them to status codes).
var (
	// ErrNotFound means no workflow run has the given ID.
	ErrNotFound = errors.New("workflow not found")
	// ErrInvalid means the request was malformed (a bad business key).
	ErrInvalid = errors.New("invalid request")
	// ErrAlreadyDone means the workflow for that key already finished and
	// may not start again (its reuse policy says so). The Run returned with
	// it is the run that finished, so the caller can say which one.
	ErrAlreadyDone = errors.New("workflow already finished")
	// ErrRejected means the workflow refused an update (its validator said no).
	ErrRejected = errors.New("rejected by the workflow")
)

// Options tune what the starter puts into new runs.
type Options struct {
	// TaskQueue defaults to workflows.TaskQueue.
	TaskQueue string
	// PaymentTimeout is how long a new order confirmation waits for payment;
	// zero means the workflow's default.
	PaymentTimeout time.Duration
	// ShadowTTL is how long a new shadow alias waits for its claim; zero
	// means the workflow's default.
	ShadowTTL time.Duration
	// MailboxCheck is how often a new user entity checks whether the
	// SimpleLogin mailbox of a changed address is verified; zero means the
	// workflow's default.
	MailboxCheck time.Duration
	// MailboxVerifyWait is how long a new user entity keeps checking that
	// mailbox before the aliases stay where they were; zero means the
	// workflow's default.
	MailboxVerifyWait time.Duration
}

// Starter wraps a Temporal client with crmflow's workflow contract.
type Starter struct {
	c    client.Client
	opts Options
}

// New returns a Starter using c.
func New(c client.Client, opts Options) *Starter {
	if opts.TaskQueue == "" {
		opts.TaskQueue = contract.TaskQueue
	}
	return &Starter{c: c, opts: opts}
}

// Status asks the workflow's latest run for its status query answer.
func (s *Starter) Status(ctx context.Context, workflowID string) (*contract.Status, error) {
	v, err := s.c.QueryWorkflow(ctx, workflowID, "", contract.StatusQuery)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, workflowID)
		}
		return nil, fmt.Errorf("query status of %s: %w", workflowID, err)
	}
	var st contract.Status
	if err := v.Get(&st); err != nil {
		return nil, fmt.Errorf("decode status of %s: %w", workflowID, err)
	}
	return &st, nil
}

// execute starts a workflow, or joins the run of its ID that is running
// (opts' conflict policy is USE_EXISTING). A run of the ID that ended and
// that opts' reuse policy does not let start again is ErrAlreadyDone with
// that run. The SDK hides that case unless
// WorkflowExecutionErrorWhenAlreadyStarted is set: ExecuteWorkflow would
// hand back the ended run as if it had been started, and a caller would be
// told that work is under way when nothing was done.
func (s *Starter) execute(ctx context.Context, opts client.StartWorkflowOptions, workflowType string, in any) (Run, error) {
	opts.WorkflowExecutionErrorWhenAlreadyStarted = true
	run, err := s.c.ExecuteWorkflow(ctx, opts, workflowType, in)
	if err != nil {
		return s.existing(ctx, opts.ID, err)
	}
	return Run{WorkflowID: run.GetID(), RunID: run.GetRunID()}, nil
}

// existing turns "already started", which Temporal answers when the ID's
// run ended and may not start again, into ErrAlreadyDone with that run;
// any other error is returned as the failed start.
func (s *Starter) existing(ctx context.Context, workflowID string, startErr error) (Run, error) {
	if !temporal.IsWorkflowExecutionAlreadyStartedError(startErr) {
		return Run{}, fmt.Errorf("start %s: %w", workflowID, startErr)
	}
	run := Run{WorkflowID: workflowID}
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(startErr, &started) {
		run.RunID = started.RunId
	}
	if run.RunID == "" {
		desc, err := s.c.DescribeWorkflowExecution(ctx, workflowID, "")
		if err != nil {
			return Run{}, fmt.Errorf("describe %s: %w", workflowID, err)
		}
		run.RunID = desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	}
	return run, fmt.Errorf("%w: %s (run %s)", ErrAlreadyDone, workflowID, run.RunID)
}

// startOptions are the options of an entity workflow that lives as long as
// its key: a running one is joined, a closed one (continued or ended) may be
// started again.
func (s *Starter) startOptions(id string, attrs ...temporal.SearchAttributeUpdate) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                s.opts.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		TypedSearchAttributes:    searchAttributes(attrs...),
	}
}

func searchAttributes(updates ...temporal.SearchAttributeUpdate) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(updates...)
}
