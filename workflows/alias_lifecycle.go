package workflows

import (
	"errors"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
)

var (
	aliasStore  *activities.AliasStoreActivities
	simpleLogin *activities.SimpleLoginActivities
)

// aliasSignal is one signal channel with its name.
type aliasSignal struct {
	name string
	ch   workflow.ReceiveChannel
}

// aliasLifecycle is one run of an alias's entity.
type aliasLifecycle struct {
	input  contract.AliasLifecycleInput
	state  contract.AliasState
	status contract.Status
	// ended is the final state once the run is over, "" before.
	ended  string
	parker *parker
	// signals in the order buffered commands are taken. Temporal keeps
	// order within one signal name only, so commands of different names
	// buffered together (during a step, or in one workflow task) are taken
	// by priority: delete first (it makes the others moot), then claim, then
	// enable before disable, so that an enable and a disable met together
	// leave the alias disabled, the side that leaks no mail.
	signals []aliasSignal
	// One expiry timer, kept while the deadline is unchanged.
	timer       workflow.Future
	timerAt     time.Time
	cancelTimer workflow.CancelFunc
}

// AliasLifecycle is an email alias's entity (AliasID(aliasID)): it records
// the alias, creates it at SimpleLogin, records it active, then lives on
// AliasDisableSignal, AliasEnableSignal, AliasClaimSignal and
// AliasDeleteSignal until deleted. A shadow alias (no customer yet) is
// deleted as expired after ShadowTTL unless claimed first. Commands that
// arrive while creation runs wait for it, so a delete during creation still
// deletes the alias it made. The run continues as new, carrying its state,
// on Temporal's suggestion or past MaxHistoryEvents. Failed steps park.
func AliasLifecycle(ctx workflow.Context, in contract.AliasLifecycleInput) (*contract.AliasLifecycleResult, error) {
	if err := normalizeAliasInput(&in); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", nil)
	}
	w := &aliasLifecycle{input: in, status: contract.Status{Step: "start"}}
	if in.State != nil {
		w.state = *in.State
		w.input.State = nil
	} else {
		w.state = contract.AliasState{State: contract.AliasCreating, CustomerID: in.CustomerID}
		if in.CustomerID == "" {
			w.state.ExpiresAt = workflow.Now(ctx).Add(in.ShadowTTL)
		}
	}
	if err := workflow.SetQueryHandler(ctx, contract.StatusQuery, w.currentStatus); err != nil {
		return nil, err
	}
	p, err := newParker(ctx, &w.status)
	if err != nil {
		return nil, err
	}
	w.parker = p
	for _, name := range []string{contract.AliasDeleteSignal, contract.AliasClaimSignal, contract.AliasEnableSignal, contract.AliasDisableSignal} {
		w.signals = append(w.signals, aliasSignal{name: name, ch: workflow.GetSignalChannel(ctx, name)})
	}
	if w.state.CustomerID != "" {
		upsert(ctx, contract.AliasIDKey.ValueSet(in.AliasID), contract.CustomerIDKey.ValueSet(w.state.CustomerID))
	} else {
		upsert(ctx, contract.AliasIDKey.ValueSet(in.AliasID))
	}
	// No address or email in the memo: it outlives a deletion in visibility.
	memo := map[string]any{"alias_id": in.AliasID, "mode": in.Mode, "shadow": in.CustomerID == ""}
	if err := workflow.UpsertMemo(ctx, memo); err != nil {
		workflow.GetLogger(ctx).Error("Could not set memo", "error", err)
	}
	return w.run(ctx)
}

// normalizeAliasInput applies defaults and rejects inputs that could never
// work, before anything is recorded or created.
func normalizeAliasInput(in *contract.AliasLifecycleInput) error {
	if err := contract.ValidateKey("alias ID", in.AliasID); err != nil {
		return err
	}
	if in.Mode == "" {
		in.Mode = contract.AliasModeRandom
	}
	switch {
	case in.Mode != contract.AliasModeRandom && in.Mode != contract.AliasModeCustom:
		return errors.New(`mode must be "random" or "custom"`)
	case in.Mode == contract.AliasModeCustom && strings.TrimSpace(in.Prefix) == "":
		return errors.New("a custom alias needs a prefix")
	case in.Mode == contract.AliasModeRandom && in.Prefix != "":
		return errors.New("a random alias takes no prefix")
	case in.CustomerID == "" && strings.TrimSpace(in.Email) == "":
		return errors.New("a shadow alias (no customer ID) needs the email it is made for")
	case in.State != nil && (in.State.SimpleLoginID <= 0 ||
		(in.State.State != contract.AliasActive && in.State.State != contract.AliasDisabled)):
		return errors.New("a continued alias must carry a created, live state")
	}
	if in.ShadowTTL <= 0 {
		in.ShadowTTL = contract.DefaultShadowTTL
	}
	return nil
}

func (w *aliasLifecycle) run(ctx workflow.Context) (*contract.AliasLifecycleResult, error) {
	if w.state.State == contract.AliasCreating {
		if res, err := w.create(ctx); res != nil || err != nil {
			return res, err
		}
	}
	for {
		if len(w.state.Pending) == 0 && w.shouldContinueAsNew(ctx) {
			return nil, w.continueAsNew(ctx)
		}
		w.setStep(ctx, "await-command")
		cmd, expired, err := w.next(ctx)
		switch {
		case err != nil:
			return nil, err
		case expired:
			return w.remove(ctx, contract.AliasExpired)
		}
		if res, err := w.handle(ctx, *cmd); res != nil || err != nil {
			return res, err
		}
	}
}

// create records the alias, creates it at SimpleLogin and records it
// active. It returns a result only when the run ends here.
func (w *aliasLifecycle) create(ctx workflow.Context) (*contract.AliasLifecycleResult, error) {
	rec := activities.RecordAliasCreatingInput{AliasID: w.input.AliasID, CustomerID: w.state.CustomerID,
		Email: w.input.Email, Mode: w.input.Mode, ExpiresAt: w.state.ExpiresAt}
	err := w.parker.step(ctx, "record-creating", storeOptions, rec, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, aliasStore.RecordAliasCreating, rec).Get(ctx, nil)
	})
	if err != nil && !errors.Is(err, errSkipped) {
		return nil, err // skipped: the operator records the row by hand
	}

	in := activities.CreateAliasInput{AliasID: w.input.AliasID, Mode: w.input.Mode, Prefix: w.input.Prefix,
		Hostname: w.input.Hostname}
	var out *activities.AliasOutput
	err = w.parker.step(ctx, "create-alias", simpleLoginOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, simpleLogin.CreateAlias, in).Get(ctx, &out)
	})
	if errors.Is(err, errSkipped) {
		// No alias to live on. The row is ended, so nothing (a claim, a
		// user.deleted) goes looking for this run later.
		if err := w.markEnded(ctx, contract.AliasDeleted); err != nil {
			return nil, err
		}
		return w.finish(ctx, contract.AliasSkipped, "an operator skipped creating the alias at SimpleLogin"), nil
	}
	if err != nil {
		return nil, err
	}
	w.state.SimpleLoginID, w.state.AliasEmail, w.state.State = out.SimpleLoginID, out.Email, contract.AliasActive

	mark := activities.MarkAliasActiveInput{AliasID: w.input.AliasID, SimpleLoginID: out.SimpleLoginID, AliasEmail: out.Email}
	err = w.parker.step(ctx, "record-active", storeOptions, mark, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, aliasStore.MarkAliasActive, mark).Get(ctx, nil)
	})
	if err != nil && !errors.Is(err, errSkipped) {
		return nil, err
	}
	return nil, nil
}

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

// markEnded records the end and scrubs the row.
func (w *aliasLifecycle) markEnded(ctx workflow.Context, end string) error {
	in := activities.MarkAliasDeletedInput{AliasID: w.input.AliasID, State: end}
	err := w.parker.step(ctx, "record-"+end, storeOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, aliasStore.MarkAliasDeleted, in).Get(ctx, nil)
	})
	if errors.Is(err, errSkipped) {
		return nil
	}
	return err
}

// finish ends the run. The status and the search attributes stop naming the
// address and the customer: a closed run stays visible until retention.
func (w *aliasLifecycle) finish(ctx workflow.Context, end, detail string) *contract.AliasLifecycleResult {
	w.ended, w.status.Detail = end, detail
	w.state.AliasEmail, w.state.CustomerID, w.state.ExpiresAt = "", "", time.Time{}
	upsert(ctx, contract.CustomerIDKey.ValueUnset())
	w.setStep(ctx, "done")
	return &contract.AliasLifecycleResult{State: end}
}

func (w *aliasLifecycle) currentStatus() (contract.Status, error) {
	st := w.status
	if w.ended != "" {
		st.State = w.ended
		return st, nil
	}
	st.State, st.Detail = w.state.State, w.state.AliasEmail
	if !w.state.ExpiresAt.IsZero() {
		if st.Detail != "" {
			st.Detail += "; "
		}
		st.Detail += "unclaimed, expires at " + w.state.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return st, nil
}

func (w *aliasLifecycle) shouldContinueAsNew(ctx workflow.Context) bool {
	return continueAsNewDue(ctx, w.input.MaxHistoryEvents)
}

// continueAsNew hands the state to a new run once no update handler (an
// operator's dead-letter decision) is running, carrying every command
// already delivered, which would otherwise be lost with this run.
func (w *aliasLifecycle) continueAsNew(ctx workflow.Context) error {
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
	next.State = &state
	workflow.GetLogger(ctx).Info("Continuing as new", "historyLength", workflow.GetInfo(ctx).GetCurrentHistoryLength())
	return workflow.NewContinueAsNewError(ctx, contract.AliasLifecycleType, next)
}

// setStep records the step only when it changes: every change is a
// search-attribute event in the history.
func (w *aliasLifecycle) setStep(ctx workflow.Context, step string) {
	if w.status.Step != step {
		w.parker.setStep(ctx, step)
	}
}
