package workflows

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
)

// errSkipped tells the caller an operator chose to skip the step.
var errSkipped = errors.New("step skipped by operator")

var dl *activities.DeadLetterActivities

// parker runs steps and, when one fails for good, parks the run: a dead
// letter in PostgreSQL, CrmflowParked=true, and a wait for an operator's
// retry, skip or abort. One parker per workflow run.
type parker struct {
	status *contract.Status
	// parkedOn is the dead letter the run waits on; 0 when not parked.
	parkedOn int64
	decision *contract.DeadLetterDecision
}

// newParker registers the decision Update handler.
func newParker(ctx workflow.Context, status *contract.Status) (*parker, error) {
	p := &parker{status: status}
	err := workflow.SetUpdateHandlerWithOptions(ctx, contract.DeadLetterDecisionUpdate,
		func(ctx workflow.Context, d contract.DeadLetterDecision) (contract.DeadLetterDecisionResult, error) {
			p.decision = &d
			return contract.DeadLetterDecisionResult{Step: p.status.Step, Action: d.Action}, nil
		},
		workflow.UpdateHandlerOptions{Validator: p.validate})
	if err != nil {
		return nil, fmt.Errorf("register %s: %w", contract.DeadLetterDecisionUpdate, err)
	}
	return p, nil
}

// validate rejects a decision before it reaches history: wrong action, not
// parked, parked on another dead letter, or already decided.
func (p *parker) validate(_ workflow.Context, d contract.DeadLetterDecision) error {
	switch d.Action {
	case contract.DecisionRetry, contract.DecisionSkip, contract.DecisionAbort:
	default:
		return fmt.Errorf("action %q is not retry, skip or abort", d.Action)
	}
	if d.Operator != "" {
		// Unnamed decisions are accepted, as they always were; a named
		// one must be readable.
		if err := contract.ValidateOperator(d.Operator); err != nil {
			return err
		}
	}
	switch {
	case p.parkedOn == 0:
		return temporal.NewApplicationError("run is not parked", contract.ErrorTypeNotParked)
	case d.DeadLetterID != p.parkedOn:
		return fmt.Errorf("run is parked on dead letter %d, not %d", p.parkedOn, d.DeadLetterID)
	case p.decision != nil:
		return fmt.Errorf("dead letter %d is already decided: %s", p.parkedOn, p.decision.Action)
	}
	return nil
}

// step runs call as the named step with opts (retry policy and task queue). On a
// final failure it parks and waits; retry runs call again, skip returns
// errSkipped, abort returns an OperatorAborted error that ends the run.
// input is recorded in the dead letter for the operator; it holds no secrets.
func (p *parker) step(ctx workflow.Context, name string, opts activityPolicy, input any,
	call func(ctx workflow.Context) error) error {
	actx := opts.context(ctx)
	var deadLetter int64
	for {
		p.setStep(ctx, name)
		err := call(actx)
		if err == nil {
			if deadLetter != 0 {
				p.close(ctx, deadLetter, "resolved", "")
			}
			return nil
		}
		if temporal.IsCanceledError(err) {
			return err
		}
		errType := ""
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			errType = appErr.Type()
		}
		var d contract.DeadLetterDecision
		deadLetter, d, err = p.park(ctx, name, input, err.Error(), errType, attemptsOf(opts, err))
		if err != nil {
			return err
		}
		if d.Action != contract.DecisionRetry {
			return p.outcome(name, d)
		}
	}
}

// ask parks the run on a question only an operator can answer, though no
// step failed (say, whether to claw back a paid reward). It returns the
// operator's action and the dead letter, which the caller resolves once it
// has acted on a retry; abort comes back as the OperatorAborted error.
func (p *parker) ask(ctx workflow.Context, name, errType, question string, input any) (string, int64, error) {
	p.setStep(ctx, name)
	id, d, err := p.park(ctx, name, input, question, errType, 0)
	if err != nil {
		return "", 0, err
	}
	if d.Action == contract.DecisionAbort {
		return "", 0, p.outcome(name, d)
	}
	return d.Action, id, nil
}

// outcome turns a skip or abort into the error step returns.
func (p *parker) outcome(step string, d contract.DeadLetterDecision) error {
	if d.Action == contract.DecisionSkip {
		return errSkipped
	}
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("step %s aborted by operator %s", step, d.Operator), contract.ErrorTypeOperatorAborted, nil)
}

// park records the dead letter, blocks until an operator decides, and
// records the decision on the dead letter.
func (p *parker) park(ctx workflow.Context, step string, input any, message, errType string, attempts int) (int64, contract.DeadLetterDecision, error) {
	info := workflow.GetInfo(ctx)
	var out activities.RecordDeadLetterOutput
	err := workflow.ExecuteActivity(parkOptions.context(ctx), dl.RecordDeadLetter,
		activities.RecordDeadLetterInput{
			WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
			WorkflowType: info.WorkflowType.Name, Step: step, Error: message, ErrorType: errType,
			Attempts: attempts, Input: input,
		}).Get(ctx, &out)
	if err != nil {
		return 0, contract.DeadLetterDecision{}, fmt.Errorf("record dead letter for step %s: %w", step, err)
	}
	p.parkedOn = out.DeadLetterID
	p.setParked(ctx, true)
	workflow.GetLogger(ctx).Warn("Parked: waiting for an operator", "step", step, "deadLetterID", out.DeadLetterID)
	if err := workflow.Await(ctx, func() bool { return p.decision != nil }); err != nil {
		return 0, contract.DeadLetterDecision{}, err
	}
	d := *p.decision
	p.parkedOn, p.decision = 0, nil
	p.setParked(ctx, false)
	status := map[string]string{contract.DecisionRetry: "retrying", contract.DecisionSkip: "skipped", contract.DecisionAbort: "aborted"}[d.Action]
	p.close(ctx, out.DeadLetterID, status, d.Operator)
	return out.DeadLetterID, d, nil
}

// close records what became of a dead letter. It retries until it succeeds
// (parkOptions), so its error only surfaces on cancellation.
func (p *parker) close(ctx workflow.Context, id int64, status, operator string) {
	err := workflow.ExecuteActivity(parkOptions.context(ctx), dl.DecideDeadLetter,
		activities.DecideDeadLetterInput{DeadLetterID: id, Status: status, Operator: operator}).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Error("Could not record dead-letter decision", "deadLetterID", id, "error", err)
	}
}

func (p *parker) setStep(ctx workflow.Context, step string) {
	p.status.Step = step
	upsert(ctx, contract.StepKey.ValueSet(step))
}

func (p *parker) setParked(ctx workflow.Context, parked bool) {
	p.status.Parked = parked
	upsert(ctx, contract.ParkedKey.ValueSet(parked))
}

// upsert sets search attributes. It only fails for unregistered attributes,
// a deployment error that the UI shows on the run; the workflow goes on.
func upsert(ctx workflow.Context, updates ...temporal.SearchAttributeUpdate) {
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		workflow.GetLogger(ctx).Error("Could not set search attributes", "error", err)
	}
}
