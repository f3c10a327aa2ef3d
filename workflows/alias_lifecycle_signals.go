package workflows

import (
	"errors"
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
)

// next returns the next command: a carried one first, else the next signal
// by priority; or expired when a shadow alias's deadline passed first.
func (w *aliasLifecycle) next(ctx workflow.Context) (*contract.AliasPendingCommand, bool, error) {
	if len(w.state.Pending) > 0 {
		cmd := w.state.Pending[0]
		w.state.Pending = w.state.Pending[1:]
		return &cmd, false, nil
	}
	for {
		w.armTimer(ctx)
		var (
			got       *contract.AliasPendingCommand
			fired     bool
			cancelled bool
		)
		sel := workflow.NewSelector(ctx)
		for _, sig := range w.signals {
			sel.AddReceive(sig.ch, func(c workflow.ReceiveChannel, _ bool) {
				var cmd contract.AliasCommand
				c.Receive(ctx, &cmd)
				got = &contract.AliasPendingCommand{Signal: sig.name, Command: cmd}
			})
		}
		// After the signals: a claim already delivered beats an expiry due now.
		if w.timer != nil {
			sel.AddFuture(w.timer, func(workflow.Future) {
				fired = true
				w.timer, w.timerAt, w.cancelTimer = nil, time.Time{}, nil
			})
		}
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) { cancelled = true })
		sel.Select(ctx)
		switch {
		case cancelled || ctx.Err() != nil:
			// Cancelling the run also fires the timer; that is no expiry.
			return nil, false, ctx.Err()
		case got != nil:
			return got, false, nil
		case fired && w.dueToExpire(ctx):
			return nil, true, nil
		}
	}
}

func (w *aliasLifecycle) dueToExpire(ctx workflow.Context) bool {
	return !w.state.ExpiresAt.IsZero() && !workflow.Now(ctx).Before(w.state.ExpiresAt)
}

// armTimer keeps one timer for the expiry, cancelled once claimed. A
// deadline already past gives a timer that is ready at once.
func (w *aliasLifecycle) armTimer(ctx workflow.Context) {
	at := w.state.ExpiresAt
	if w.timer != nil && at.Equal(w.timerAt) {
		return
	}
	if w.cancelTimer != nil {
		w.cancelTimer()
	}
	w.timer, w.timerAt, w.cancelTimer = nil, time.Time{}, nil
	if at.IsZero() {
		return
	}
	tctx, cancel := workflow.WithCancel(ctx)
	w.timer, w.timerAt, w.cancelTimer = workflow.NewTimer(tctx, at.Sub(workflow.Now(ctx))), at, cancel
}

// handle acts on one command; it returns a result only when the run ends.
func (w *aliasLifecycle) handle(ctx workflow.Context, cmd contract.AliasPendingCommand) (*contract.AliasLifecycleResult, error) {
	if w.seenBefore(cmd.Command.EventID) {
		workflow.GetLogger(ctx).Info("Ignoring a command already seen", "signal", cmd.Signal, "eventID", cmd.Command.EventID)
		return nil, nil
	}
	switch cmd.Signal {
	case contract.AliasDeleteSignal:
		return w.remove(ctx, contract.AliasDeleted)
	case contract.AliasClaimSignal:
		return nil, w.claim(ctx, cmd.Command.CustomerID)
	case contract.AliasEnableSignal:
		return nil, w.setEnabled(ctx, true)
	case contract.AliasDisableSignal:
		return nil, w.setEnabled(ctx, false)
	}
	return nil, nil
}

// seenBefore reports whether the event id was handled already, remembering
// it; the latest maxSeenEvents ids are kept.
func (w *aliasLifecycle) seenBefore(eventID string) bool {
	if eventID == "" {
		return false
	}
	if slices.Contains(w.state.Seen, eventID) {
		return true
	}
	w.state.Seen = append(w.state.Seen, eventID)
	if over := len(w.state.Seen) - maxSeenEvents; over > 0 {
		w.state.Seen = slices.Delete(w.state.Seen, 0, over)
	}
	return false
}

// setEnabled sets the alias's state at SimpleLogin (read first, toggled only
// when it differs), then records what SimpleLogin says it is.
func (w *aliasLifecycle) setEnabled(ctx workflow.Context, enabled bool) error {
	step := "disable-alias"
	if enabled {
		step = "enable-alias"
	}
	in := activities.SetAliasEnabledInput{SimpleLoginID: w.state.SimpleLoginID, Enabled: enabled}
	var out *activities.AliasOutput
	err := w.parker.step(ctx, step, simpleLoginOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, simpleLogin.SetAliasEnabled, in).Get(ctx, &out)
	})
	if errors.Is(err, errSkipped) {
		return nil // an operator dropped the command; the state stays
	}
	if err != nil {
		return err
	}
	w.state.State = contract.AliasDisabled
	if out.Enabled {
		w.state.State = contract.AliasActive
	}
	rec := activities.SetAliasStateInput{AliasID: w.input.AliasID, State: w.state.State}
	err = w.parker.step(ctx, "record-state", storeOptions, rec, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, aliasStore.SetAliasState, rec).Get(ctx, nil)
	})
	if errors.Is(err, errSkipped) {
		return nil
	}
	return err
}

// claim gives the alias its customer and cancels the expiry. A claim by the
// owner changes nothing; a claim by anyone else is refused here, since a
// claimed alias never changes hands (the store would refuse it too).
func (w *aliasLifecycle) claim(ctx workflow.Context, customerID string) error {
	logger := workflow.GetLogger(ctx)
	switch {
	case customerID == "":
		logger.Warn("Ignoring a claim without a customer ID")
		return nil
	case w.state.CustomerID == customerID:
		return nil
	case w.state.CustomerID != "":
		logger.Warn("Ignoring a claim for an alias another customer owns", "owner", w.state.CustomerID, "claimant", customerID)
		return nil
	}
	in := activities.ClaimAliasInput{AliasID: w.input.AliasID, CustomerID: customerID}
	err := w.parker.step(ctx, "claim", storeOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, aliasStore.ClaimAlias, in).Get(ctx, nil)
	})
	if err != nil && !errors.Is(err, errSkipped) {
		return err // skipped: the claim stands; the operator fixes the row
	}
	w.state.CustomerID, w.state.Claimed, w.state.ExpiresAt = customerID, true, time.Time{}
	upsert(ctx, contract.CustomerIDKey.ValueSet(customerID))
	return nil
}

// remove deletes the alias at SimpleLogin and ends it as end (deleted or
// expired), scrubbing its row.
func (w *aliasLifecycle) remove(ctx workflow.Context, end string) (*contract.AliasLifecycleResult, error) {
	step := "delete-alias"
	if end == contract.AliasExpired {
		step = "expire-alias"
	}
	in := activities.DeleteAliasInput{SimpleLoginID: w.state.SimpleLoginID}
	err := w.parker.step(ctx, step, simpleLoginOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, simpleLogin.DeleteAlias, in).Get(ctx, nil)
	})
	if err != nil && !errors.Is(err, errSkipped) {
		return nil, err // skipped: the operator deleted it by hand, or chose to keep it
	}
	if err := w.markEnded(ctx, end); err != nil {
		return nil, err
	}
	return w.finish(ctx, end, ""), nil
}

func (w *aliasLifecycle) shouldContinueAsNew(ctx workflow.Context) bool {
	return continueAsNewDue(ctx, w.input.MaxHistoryEvents)
}

// continuedWhileParked turns err, when it asks the run to continue as new
// while parked, into that continue-as-new: cmd, the command being handled
// (nil for an expiry, which the next run meets again), goes back to the
// front of the queue as not yet seen, for the next run to handle it again
// and apply the operator's decision to its parked step. Any other err is
// returned as it is.
func (w *aliasLifecycle) continuedWhileParked(ctx workflow.Context, cmd *contract.AliasPendingCommand, err error) error {
	parked := parkedContinuing(err)
	if parked == nil {
		return err
	}
	if cmd != nil {
		if id := cmd.Command.EventID; id != "" && len(w.state.Seen) > 0 && w.state.Seen[len(w.state.Seen)-1] == id {
			w.state.Seen = w.state.Seen[:len(w.state.Seen)-1]
		}
		w.state.Pending = append([]contract.AliasPendingCommand{*cmd}, w.state.Pending...)
	}
	return w.continueAsNew(ctx, parked)
}

// continueAsNew hands the state to a new run once no update handler (an
// operator's dead-letter decision) is running, carrying every command
// already delivered, which would otherwise be lost with this run, and
// parked, if not nil, the dead letter the run waits on.
func (w *aliasLifecycle) continueAsNew(ctx workflow.Context, parked *contract.ParkedStep) error {
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	for _, sig := range w.signals {
		for {
			var cmd contract.AliasCommand
			if !sig.ch.ReceiveAsync(&cmd) {
				break
			}
			w.state.Pending = append(w.state.Pending, contract.AliasPendingCommand{Signal: sig.name, Command: cmd})
		}
	}
	state := w.state
	// MaxHistoryEvents as given, zero staying zero: a new default reaches
	// old chains.
	next := w.input
	next.State, next.Parked = &state, parked
	workflow.GetLogger(ctx).Info("Continuing as new", "historyLength", workflow.GetInfo(ctx).GetCurrentHistoryLength())
	return workflow.NewContinueAsNewError(ctx, contract.AliasLifecycleType, next)
}
