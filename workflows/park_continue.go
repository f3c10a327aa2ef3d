package workflows

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
)

// Continue-as-new while parked. An entity (low-stock, alias) keeps taking
// signals while a step of it waits for an operator, and every signal grows
// its history; a run parked for days under a stream of stock levels would
// reach Temporal's history limit and be terminated. So an entity's parker
// also watches the history bound while it waits (parker.continueDue) and,
// when it is reached, the run continues as new: the next run takes the
// dead letter over (parker.resume), waits for the decision, and applies
// it to the same step when it comes to it (parker.step).

// continueWhileParkedChange is the GetVersion change id of runs that
// continue as new while parked; older runs go on waiting in the run they
// are in.
const continueWhileParkedChange = "continue-as-new-while-parked"

// errContinueParked is what a step returns when its run should continue
// as new while parked on Parked; the entity carries Parked to its next run.
type errContinueParked struct {
	parked contract.ParkedStep
}

func (e *errContinueParked) Error() string {
	return fmt.Sprintf("continue as new while parked on dead letter %d (step %s)", e.parked.DeadLetterID, e.parked.Step)
}

// parkedContinuing returns the dead letter to carry when err asks the run
// to continue as new while parked, or nil.
func parkedContinuing(err error) *contract.ParkedStep {
	var cp *errContinueParked
	if errors.As(err, &cp) {
		return &cp.parked
	}
	return nil
}

// resumedDecision is an operator's decision on a dead letter a previous
// run handed over, kept for the step it concerns.
type resumedDecision struct {
	step       string
	action     string
	deadLetter int64
}

// awaitDecision waits, parked on p.parkedOn for step, for an operator's
// decision and records it on the dead letter. An entity whose history
// reaches its bound meanwhile gets an errContinueParked instead.
func (p *parker) awaitDecision(ctx workflow.Context, step string) (contract.DeadLetterDecision, error) {
	due := func() bool { return p.continueDue != nil && p.continueDue() }
	if err := workflow.Await(ctx, func() bool { return p.decision != nil || due() }); err != nil {
		return contract.DeadLetterDecision{}, err
	}
	if p.decision == nil {
		if workflow.GetVersion(ctx, continueWhileParkedChange, workflow.DefaultVersion, 1) >= 1 {
			return contract.DeadLetterDecision{}, &errContinueParked{parked: contract.ParkedStep{DeadLetterID: p.parkedOn, Step: step}}
		}
		// A run from before: it waits here, whatever its history.
		if err := workflow.Await(ctx, func() bool { return p.decision != nil }); err != nil {
			return contract.DeadLetterDecision{}, err
		}
	}
	d := *p.decision
	id := p.parkedOn
	p.parkedOn, p.decision = 0, nil
	p.setParked(ctx, false)
	status := map[string]string{contract.DecisionRetry: "retrying", contract.DecisionSkip: "skipped", contract.DecisionAbort: "aborted"}[d.Action]
	p.close(ctx, id, status, d.Operator)
	return d, nil
}

// resume takes over the dead letter the previous run was parked on when it
// continued as new: it names this run on the dead letter, parks on it and
// waits for the decision as the previous run would have. An abort ends the
// run (the returned error); a retry or skip is kept for the step, which
// runs it again or skips it when the run comes to it. A dead letter decided
// meanwhile by other means is left alone: the step simply runs.
func (p *parker) resume(ctx workflow.Context, h *contract.ParkedStep) error {
	info := workflow.GetInfo(ctx)
	in := activities.MoveDeadLetterInput{DeadLetterID: h.DeadLetterID, WorkflowID: info.WorkflowExecution.ID,
		RunID: info.WorkflowExecution.RunID}
	var out activities.MoveDeadLetterOutput
	if err := workflow.ExecuteActivity(parkOptions.context(ctx), dl.MoveDeadLetter, in).Get(ctx, &out); err != nil {
		return fmt.Errorf("take over dead letter %d: %w", h.DeadLetterID, err)
	}
	if !out.Moved {
		workflow.GetLogger(ctx).Warn("The dead letter handed over is no longer parked", "deadLetterID", h.DeadLetterID)
		return nil
	}
	p.steps.enter(ctx, h.Step)
	p.parkedOn = h.DeadLetterID
	p.markParked(ctx, h.Step)
	workflow.GetLogger(ctx).Warn("Parked: waiting for an operator", "step", h.Step, "deadLetterID", h.DeadLetterID)
	d, err := p.awaitDecision(ctx, h.Step)
	if err != nil {
		return err
	}
	if d.Action == contract.DecisionAbort {
		return p.outcome(h.Step, d)
	}
	p.resumed = &resumedDecision{step: h.Step, action: d.Action, deadLetter: h.DeadLetterID}
	return nil
}

// takeResumed returns the decision kept for the step name, once.
func (p *parker) takeResumed(name string) *resumedDecision {
	r := p.resumed
	if r == nil || r.step != name {
		return nil
	}
	p.resumed = nil
	return r
}

// dropResumed closes a retried dead letter whose step the run did not come
// to: the state it resumed from no longer needs it (the level recovered,
// say). A skip needs nothing more.
func (p *parker) dropResumed(ctx workflow.Context) {
	r := p.resumed
	p.resumed = nil
	if r != nil && r.action == contract.DecisionRetry {
		workflow.GetLogger(ctx).Info("The retried step is no longer needed", "step", r.step, "deadLetterID", r.deadLetter)
		p.close(ctx, r.deadLetter, "resolved", "")
	}
}
