package activities

import (
	"context"
	"encoding/json"
	"fmt"

	"go.temporal.io/sdk/activity"

	"github.com/crmflow/crmflow/internal/store"
)

// Reporter sends a parked step to error tracking (Sentry). Implementations
// must not include secrets or payloads.
type Reporter interface {
	// ReportParked reports d. It returns nothing: a report that cannot be
	// sent must not fail or retry the parking of the step.
	ReportParked(ctx context.Context, d store.DeadLetter)
}

// DeadLetterActivities park failed steps in PostgreSQL for an operator.
type DeadLetterActivities struct {
	// Store is the CRM database (*store.Store in the worker).
	Store deadLetterStore
	// Reporter is optional; nil reports nowhere.
	Reporter Reporter
}

// deadLetterStore is what parking a step needs of the database: the dead
// letter and the decision on it.
type deadLetterStore interface {
	RecordDeadLetter(ctx context.Context, d store.DeadLetter) (int64, error)
	DecideDeadLetter(ctx context.Context, id int64, status, decidedBy string) error
	MoveDeadLetter(ctx context.Context, id int64, workflowID, runID string) (bool, error)
}

var _ deadLetterStore = (*store.Store)(nil)

// RecordDeadLetterInput describes a step that failed for good.
type RecordDeadLetterInput struct {
	WorkflowID   string `json:"WorkflowID"`
	RunID        string `json:"RunID"`
	WorkflowType string `json:"WorkflowType"`
	Step         string `json:"Step"`
	Error        string `json:"Error"`
	ErrorType    string `json:"ErrorType"`
	Attempts     int    `json:"Attempts"`
	// Input is the failed step's input; it never holds secrets. It is
	// encoded to JSON here rather than in the workflow, whose code must stay
	// free of reflection-driven encoding.
	Input any `json:"Input"`
}

// RecordDeadLetterOutput identifies the dead letter operators act on.
type RecordDeadLetterOutput struct {
	DeadLetterID int64 `json:"DeadLetterID"`
}

// RecordDeadLetter stores the dead letter and reports it. Recording the same
// open step again returns the same id, so a retried activity adds nothing.
func (a *DeadLetterActivities) RecordDeadLetter(ctx context.Context, in RecordDeadLetterInput) (*RecordDeadLetterOutput, error) {
	input, err := json.Marshal(in.Input)
	if err != nil {
		return nil, permanent(providerStore, ErrTypeInvalid, fmt.Errorf("encode step input: %w", err))
	}
	d := store.DeadLetter{
		WorkflowID: in.WorkflowID, RunID: in.RunID, WorkflowType: in.WorkflowType, Step: in.Step,
		Error: in.Error, ErrorType: in.ErrorType, Attempts: in.Attempts, Input: input,
	}
	id, err := a.Store.RecordDeadLetter(ctx, d)
	if err != nil {
		return nil, classifyStore(err)
	}
	d.ID = id
	activity.GetLogger(ctx).Warn("Step parked for an operator", "deadLetterID", id, "workflowID", in.WorkflowID,
		"step", in.Step, "errorType", in.ErrorType)
	if a.Reporter != nil {
		a.Reporter.ReportParked(ctx, d)
	}
	return &RecordDeadLetterOutput{DeadLetterID: id}, nil
}

// DecideDeadLetterInput records what became of a dead letter.
type DecideDeadLetterInput struct {
	DeadLetterID int64 `json:"DeadLetterID"`
	// Status is retrying, skipped, aborted, or resolved (the retry worked).
	Status   string `json:"Status"`
	Operator string `json:"Operator"`
}

// DecideDeadLetter records the operator's decision or the retry's success.
func (a *DeadLetterActivities) DecideDeadLetter(ctx context.Context, in DecideDeadLetterInput) error {
	if err := a.Store.DecideDeadLetter(ctx, in.DeadLetterID, in.Status, in.Operator); err != nil {
		return classifyStore(err)
	}
	return nil
}

// MoveDeadLetterInput names a parked dead letter and the run that takes it
// over: the next run of the workflow that recorded it.
type MoveDeadLetterInput struct {
	DeadLetterID int64  `json:"dead_letter_id"`
	WorkflowID   string `json:"workflow_id"`
	RunID        string `json:"run_id"`
}

// MoveDeadLetterOutput says whether the dead letter still waits for an
// operator, now on the new run.
type MoveDeadLetterOutput struct {
	Moved bool `json:"moved"`
}

// MoveDeadLetter hands a parked dead letter over to the run that continued
// its workflow, so the operator's decision reaches the run waiting for it.
// A dead letter no longer parked is left as it is (Moved false).
func (a *DeadLetterActivities) MoveDeadLetter(ctx context.Context, in MoveDeadLetterInput) (*MoveDeadLetterOutput, error) {
	moved, err := a.Store.MoveDeadLetter(ctx, in.DeadLetterID, in.WorkflowID, in.RunID)
	if err != nil {
		return nil, classifyStore(err)
	}
	return &MoveDeadLetterOutput{Moved: moved}, nil
}
