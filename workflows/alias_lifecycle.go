package workflows

import (
	"errors"
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
	// live is set once the alias exists: only then may the run continue
	// as new while parked (a continued run carries a live state).
	live bool
	// parked is the dead letter a previous run handed over, nil if none.
	parked *contract.ParkedStep
}

// AliasLifecycle is an email alias's entity (AliasID(aliasID)): it records
// the alias, creates it at SimpleLogin, records it active, then lives on
// AliasDisableSignal, AliasEnableSignal, AliasClaimSignal and
// AliasDeleteSignal until deleted. A shadow alias (no customer yet) is
// deleted as expired after ShadowTTL unless claimed first. Commands that
// arrive while creation runs wait for it, so a delete during creation still
// deletes the alias it made. The run continues as new, carrying its state,
// on Temporal's suggestion or past MaxHistoryEvents, also while a step of
// a live alias is parked (the next run takes the dead letter over and
// handles the command again). Failed steps park.
func AliasLifecycle(ctx workflow.Context, in contract.AliasLifecycleInput) (_ *contract.AliasLifecycleResult, err error) {
	if err := normalizeAliasInput(&in); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", nil)
	}
	w := &aliasLifecycle{input: in, status: contract.Status{Step: "start"}, parked: in.Parked}
	w.input.Parked = nil
	if in.State != nil {
		w.state = *in.State
		w.input.State = nil
	} else {
		w.state = contract.AliasState{State: contract.AliasCreating, CustomerID: in.CustomerID}
		if in.CustomerID == "" {
			w.state.ExpiresAt = workflow.Now(ctx).Add(in.ShadowTTL)
		}
	}
	p, err := newParker(ctx, &w.status, w.currentStatus)
	if err != nil {
		return nil, err
	}
	defer func() { p.settle(err) }()
	w.parker = p
	p.continueDue = func() bool { return w.live && w.shouldContinueAsNew(ctx) }
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
	res, err := w.run(ctx)
	awaitHandlers(ctx)
	return res, err
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
	case in.Parked != nil && in.State == nil:
		return errors.New("only a continued alias can carry a parked step")
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
	w.live = true
	if w.parked != nil {
		if err := w.parker.resume(ctx, w.parked); err != nil {
			return nil, w.continuedWhileParked(ctx, nil, err)
		}
	}
	for first := true; ; first = false {
		if len(w.state.Pending) == 0 && w.shouldContinueAsNew(ctx) {
			return nil, w.continueAsNew(ctx, nil)
		}
		w.setStep(ctx, "await-command")
		cmd, expired, err := w.next(ctx)
		switch {
		case err != nil:
			return nil, err
		case expired:
			res, err := w.remove(ctx, contract.AliasExpired)
			return res, w.continuedWhileParked(ctx, nil, err)
		}
		res, err := w.handle(ctx, *cmd)
		if res != nil || err != nil {
			return res, w.continuedWhileParked(ctx, cmd, err)
		}
		if first {
			// A retried step the carried command no longer called for.
			w.parker.dropResumed(ctx)
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

// setStep records the step only when it changes: every change is a
// search-attribute event in the history.
func (w *aliasLifecycle) setStep(ctx workflow.Context, step string) {
	if w.status.Step != step {
		w.parker.setStep(ctx, step)
	}
}
