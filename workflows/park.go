package workflows

import (
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
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
	steps  steps
	// parkedOn is the dead letter the run waits on; 0 when not parked.
	parkedOn int64
	// recording is true while the dead letter is being recorded: its row
	// may already be in PostgreSQL, where operators find it, before the
	// run learns its id (see earlyDecisions).
	recording bool
	decision  *contract.DeadLetterDecision
	// aborted is the status an operator's last abort calls for; it is the
	// run's answer once the run ends on that abort (settle sets ended).
	aborted *contract.Status
	// ended, when set, is the status query's answer: the run ended aborted.
	ended *contract.Status
	// continueDue, set by entities, reports whether the run should continue
	// as new; it is watched while parked too (park_continue.go).
	continueDue func() bool
	// resumed is the decision on a dead letter a previous run handed over,
	// until the step it concerns runs.
	resumed *resumedDecision
}

// stateAborted is the status state of a run an operator's abort ended.
const stateAborted = "aborted"

// newParker registers the decision Update handler and the status query.
// The query answers current(), or *status when current is nil, until an
// operator's abort ends the run; from then on it says so (see settle),
// whatever the workflow's own state still holds.
func newParker(ctx workflow.Context, status *contract.Status, current func() (contract.Status, error)) (*parker, error) {
	p := &parker{status: status, steps: steps{status: status}}
	if current == nil {
		current = func() (contract.Status, error) { return *status, nil }
	}
	err := workflow.SetQueryHandler(ctx, contract.StatusQuery, func() (contract.Status, error) {
		if p.ended != nil {
			return *p.ended, nil
		}
		return current()
	})
	if err != nil {
		return nil, fmt.Errorf("register %s: %w", contract.StatusQuery, err)
	}
	err = workflow.SetUpdateHandlerWithOptions(ctx, contract.DeadLetterDecisionUpdate, p.decide,
		workflow.UpdateHandlerOptions{Validator: p.validate})
	if err != nil {
		return nil, fmt.Errorf("register %s: %w", contract.DeadLetterDecisionUpdate, err)
	}
	return p, nil
}

// earlyDecisions versions accepting a decision while the dead letter is
// being recorded. Before it, a decision that reached the run between the
// row's commit and the run's taking note of the activity's result was
// rejected as not parked (and the starter sent it again for a while).
const earlyDecisions = "dead-letter-early-decisions"

// validate rejects a decision before it reaches history: wrong action, not
// parked, parked on another dead letter, or already decided. While the dead
// letter is being recorded its id is not known yet: any decision is
// accepted, and decide checks the id once it is.
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
	case p.recording:
		return nil
	case p.parkedOn == 0:
		return temporal.NewApplicationError("run is not parked", contract.ErrorTypeNotParked)
	}
	return p.matches(d)
}

// matches checks an accepted decision against the dead letter the run is
// parked on.
func (p *parker) matches(d contract.DeadLetterDecision) error {
	switch {
	case d.DeadLetterID != p.parkedOn:
		return fmt.Errorf("run is parked on dead letter %d, not %d", p.parkedOn, d.DeadLetterID)
	case p.decision != nil:
		return fmt.Errorf("dead letter %d is already decided: %s", p.parkedOn, p.decision.Action)
	}
	return nil
}

// decide is the decision's handler. A decision accepted while the dead
// letter was being recorded waits for its id, and fails (the operator is
// told) if it named another or the run decided otherwise meanwhile.
func (p *parker) decide(ctx workflow.Context, d contract.DeadLetterDecision) (contract.DeadLetterDecisionResult, error) {
	if p.recording {
		if err := workflow.Await(ctx, func() bool { return !p.recording }); err != nil {
			return contract.DeadLetterDecisionResult{}, err
		}
		if p.parkedOn == 0 {
			return contract.DeadLetterDecisionResult{}, temporal.NewApplicationError("run is not parked", contract.ErrorTypeNotParked)
		}
		if err := p.matches(d); err != nil {
			return contract.DeadLetterDecisionResult{}, err
		}
	}
	p.decision = &d
	return contract.DeadLetterDecisionResult{Step: p.status.Step, Action: d.Action}, nil
}

// step runs call as the named step with opts (retry policy and task queue). On a
// final failure it parks and waits; retry runs call again, skip returns
// errSkipped, abort returns an OperatorAborted error that ends the run.
// input is recorded in the dead letter for the operator; it holds no secrets.
func (p *parker) step(ctx workflow.Context, name string, opts activityPolicy, input any,
	call func(ctx workflow.Context) error) error {
	actx := opts.context(ctx)
	var deadLetter int64
	if r := p.takeResumed(name); r != nil {
		// Decided while the previous run was parked on this step.
		if r.action == contract.DecisionSkip {
			p.steps.enter(ctx, name)
			return errSkipped
		}
		deadLetter = r.deadLetter
	}
	for {
		p.steps.enter(ctx, name)
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
		message, errType := failure(err)
		var d contract.DeadLetterDecision
		deadLetter, d, err = p.park(ctx, name, input, message, errType, attemptsOf(opts, err))
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
	p.steps.enter(ctx, name)
	id, d, err := p.park(ctx, name, input, question, errType, 0)
	if err != nil {
		return "", 0, err
	}
	if d.Action == contract.DecisionAbort {
		return "", 0, p.outcome(name, d)
	}
	return d.Action, id, nil
}

// outcome turns a skip or abort into the error step returns. An abort also
// notes the status the run answers if it ends on it.
func (p *parker) outcome(step string, d contract.DeadLetterDecision) error {
	if d.Action == contract.DecisionSkip {
		return errSkipped
	}
	by := "operator " + d.Operator
	if d.Operator == "" {
		by = "an operator"
	}
	p.aborted = &contract.Status{Step: step, State: stateAborted, Detail: "step " + step + " aborted by " + by}
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("step %s aborted by operator %s", step, d.Operator), contract.ErrorTypeOperatorAborted, nil)
}

// settle is deferred by every workflow that parks, with the error the run
// ends with. A run that ends on an operator's abort then answers the status
// query with state aborted, the step and the operator, rather than the state
// it had before it parked. An abort the run went on from (a notification
// it could do without) changes nothing.
func (p *parker) settle(err error) {
	var appErr *temporal.ApplicationError
	if p.aborted != nil && errors.As(err, &appErr) && appErr.Type() == contract.ErrorTypeOperatorAborted {
		p.ended = p.aborted
	}
}

// failure is what a dead letter says of the error a step failed with: the
// application error's message, its type and whether it could be retried,
// after the activity's name. err.Error() would say much less clearly: the
// SDK's activity wrapping (event ids, worker identity), then the cause chain,
// where the Go error an activity wrapped in its application error reads
// "(type: wrapError, retryable: true)" though nothing retries it. errType is
// the application error's type, "" for other errors (their text is kept).
func failure(err error) (message, errType string) {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		return err.Error(), ""
	}
	message = fmt.Sprintf("%s (type: %s, %s)", appErr.Message(), appErr.Type(), retryability(err, appErr))
	var actErr *temporal.ActivityError
	if errors.As(err, &actErr) {
		message = actErr.ActivityType().GetName() + " failed: " + message
	}
	return message, appErr.Type()
}

// retryability says why retries stopped: the error could not be retried
// (its own flag, or the retry policy's list of types), or retries ran out.
func retryability(err error, appErr *temporal.ApplicationError) string {
	state := enumspb.RETRY_STATE_UNSPECIFIED
	var actErr *temporal.ActivityError
	if errors.As(err, &actErr) {
		state = actErr.RetryState()
	}
	switch {
	case appErr.NonRetryable(), state == enumspb.RETRY_STATE_NON_RETRYABLE_FAILURE:
		return "not retryable"
	case state == enumspb.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED:
		return "retryable, attempts used up"
	case state == enumspb.RETRY_STATE_TIMEOUT:
		return "retryable, retry time used up"
	default:
		return "retryable"
	}
}

// park records the dead letter, blocks until an operator decides, and
// records the decision on the dead letter (awaitDecision). An entity whose
// history reaches its bound meanwhile gets an errContinueParked instead.
func (p *parker) park(ctx workflow.Context, step string, input any, message, errType string, attempts int) (int64, contract.DeadLetterDecision, error) {
	info := workflow.GetInfo(ctx)
	// From earlyDecisions on, the run counts as parked from the moment it
	// asks for the dead letter: operators can see the row before the
	// activity's answer reaches the run, and a decision sent then is
	// accepted rather than refused.
	p.recording = workflow.GetVersion(ctx, earlyDecisions, workflow.DefaultVersion, 1) >= 1
	var out activities.RecordDeadLetterOutput
	err := workflow.ExecuteActivity(parkOptions.context(ctx), dl.RecordDeadLetter,
		activities.RecordDeadLetterInput{
			WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
			WorkflowType: info.WorkflowType.Name, Step: step, Error: message, ErrorType: errType,
			Attempts: attempts, Input: input,
		}).Get(ctx, &out)
	p.recording = false
	if err != nil {
		return 0, contract.DeadLetterDecision{}, fmt.Errorf("record dead letter for step %s: %w", step, err)
	}
	p.parkedOn = out.DeadLetterID
	p.markParked(ctx, step)
	workflow.GetLogger(ctx).Warn("Parked: waiting for an operator", "step", step, "deadLetterID", out.DeadLetterID)
	d, err := p.awaitDecision(ctx, step)
	if err != nil {
		return 0, contract.DeadLetterDecision{}, err
	}
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

// setStep records a step operators filter on, a wait or done, and shows it
// in CrmflowStep (see steps).
func (p *parker) setStep(ctx workflow.Context, step string) {
	p.steps.show(ctx, step)
}

// enterStep records a step the run passes through (see steps).
func (p *parker) enterStep(ctx workflow.Context, step string) {
	p.steps.enter(ctx, step)
}

// markParked shows the run parked on step.
func (p *parker) markParked(ctx workflow.Context, step string) {
	p.status.Parked = true
	p.steps.parked(ctx, step)
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
