package workflows

import (
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/contract"
)

// stepAttributeOnWaits is the GetVersion change id of runs that set the
// CrmflowStep search attribute only where operators look for a run: at a
// wait (for a payment, a command, an event, a window or an answer), where it
// parks, and when it is done. Before it, every step a run entered was
// upserted, one command and one visibility write per activity, which is
// where most of an order confirmation's extra engine work went. The step a
// run is in is still its status query's answer, its activities' header and
// its failure reports' tag: those read the step recorder, not the attribute.
const stepAttributeOnWaits = "step-attribute-on-waits"

// steps keeps a run's current step in its status, in the step recorder of
// its context (see WithStepRecorder) and, for the states operators filter
// on, in CrmflowStep. One per run.
type steps struct {
	status *contract.Status
	// decided and everyStep hold the run's stepAttributeOnWaits version,
	// asked for at its first step so that every run asks at the same point.
	decided   bool
	everyStep bool
	// shown is the value last upserted, so that a wait entered again after
	// an activity step issues no command.
	shown string
	// pending are search-attribute updates that go out with the next shown
	// step, in its command (see also).
	pending []temporal.SearchAttributeUpdate
}

// decide sets the run's stepAttributeOnWaits version without asking for
// it, for a workflow whose own change id already stands for it (see
// orderBaseline).
func (s *steps) decide(everyStep bool) {
	s.decided, s.everyStep = true, everyStep
}

// also sends updates with the next shown step (a wait, a park or done),
// in one command instead of one each. Only for runs that set CrmflowStep
// where they wait: a run from before issued each update on its own.
func (s *steps) also(updates ...temporal.SearchAttributeUpdate) {
	s.pending = append(s.pending, updates...)
}

// legacy reports whether the run upserts every step, as runs from before
// stepAttributeOnWaits did.
func (s *steps) legacy(ctx workflow.Context) bool {
	if !s.decided {
		s.decided = true
		s.everyStep = workflow.GetVersion(ctx, stepAttributeOnWaits, workflow.DefaultVersion, 1) == workflow.DefaultVersion
	}
	return s.everyStep
}

// enter records a step the run passes through (an activity, a signal sent):
// operators see it in the status query, not in CrmflowStep.
func (s *steps) enter(ctx workflow.Context, step string) {
	s.record(ctx, step)
	if s.legacy(ctx) {
		upsert(ctx, contract.StepKey.ValueSet(step))
	}
}

// show records a step operators filter on (a wait, or done) and sets
// CrmflowStep to it.
func (s *steps) show(ctx workflow.Context, step string) {
	s.record(ctx, step)
	if s.legacy(ctx) {
		upsert(ctx, contract.StepKey.ValueSet(step))
		return
	}
	if s.shown != step || len(s.pending) > 0 {
		s.shown = step
		s.flush(ctx, contract.StepKey.ValueSet(step))
	}
}

// parked sets CrmflowParked=true and, for runs that upsert only where they
// wait, the step parked on in the same command.
func (s *steps) parked(ctx workflow.Context, step string) {
	s.record(ctx, step)
	if s.legacy(ctx) {
		upsert(ctx, contract.ParkedKey.ValueSet(true))
		return
	}
	s.shown = step
	s.flush(ctx, contract.StepKey.ValueSet(step), contract.ParkedKey.ValueSet(true))
}

// flush upserts updates with the pending ones, in one command.
func (s *steps) flush(ctx workflow.Context, updates ...temporal.SearchAttributeUpdate) {
	upsert(ctx, append(s.pending, updates...)...)
	s.pending = nil
}

func (s *steps) record(ctx workflow.Context, step string) {
	s.status.Step = step
	RecordStep(ctx, step)
}

// stepRecorderKey is the context key of a run's step recorder.
type stepRecorderKey struct{}

// stepRecorder holds the step a run is in. It lives in the run's root
// context, so every context derived from it (an activity's, a handler's)
// reads the same step.
type stepRecorder struct {
	step string
}

// WithStepRecorder returns ctx with a recorder of the run's current step,
// for CurrentStep to read. A workflow interceptor installs it before the
// workflow runs; without it the step is only in the status query.
func WithStepRecorder(ctx workflow.Context) workflow.Context {
	return workflow.WithValue(ctx, stepRecorderKey{}, &stepRecorder{})
}

// CurrentStep is the step the run of ctx is in, "" before its first step or
// when ctx has no recorder (see WithStepRecorder). Unlike the CrmflowStep
// search attribute, it names every step, activities' included.
func CurrentStep(ctx workflow.Context) string {
	if r, ok := ctx.Value(stepRecorderKey{}).(*stepRecorder); ok {
		return r.step
	}
	return ""
}

// RecordStep notes step in ctx's recorder, if it has one, for a workflow
// that keeps its step itself rather than through crmflow's step helpers. It
// issues no command, so it changes nothing in a run's history.
func RecordStep(ctx workflow.Context, step string) {
	if r, ok := ctx.Value(stepRecorderKey{}).(*stepRecorder); ok {
		r.step = step
	}
}
