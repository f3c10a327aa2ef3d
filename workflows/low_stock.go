package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
)

// Knock workflow keys the low-stock entity triggers.
const (
	KnockLowStock           = "low-stock"
	KnockLowStockEscalation = "low-stock-escalation"
	KnockRestocked          = "restocked"
)

// DefaultMaxHistoryEvents is the history length at which a low-stock run
// continues as new when Temporal has not suggested it earlier. It keeps
// replays of this long-lived entity cheap, far below Temporal's limits.
const DefaultMaxHistoryEvents = 2000

// maxSeenEvents bounds the remembered event ids. A redelivery comes soon
// after the original (a retried SignalWithStart, an at-least-once hand-off),
// so the latest few hundred ids are enough and the carried state stays small.
const maxSeenEvents = 256

// settingsRefresh is how old the settings may get before a signal reloads
// them, so an operator's change in PostgreSQL takes effect within minutes
// without a settings activity on every signal.
const settingsRefresh = 15 * time.Minute

var inventory *activities.InventoryActivities

// lowStock is one run of a SKU's entity. Signals only record observations;
// act moves the alert state machine and sends notifications, so the same
// rules apply whether a signal, a timer or a new run woke it up.
type lowStock struct {
	input      contract.LowStockInput
	state      contract.LowStockState
	settings   activities.StockSettings
	settingsAt time.Time
	status     contract.Status
	parker     *parker
	signals    workflow.ReceiveChannel
	// parked is the dead letter a previous run handed over, nil if none.
	parked *contract.ParkedStep
	// One timer at a time, for the nearest deadline; kept while that
	// deadline is unchanged so a stream of signals adds no timer events.
	timer       workflow.Future
	timerAt     time.Time
	cancelTimer workflow.CancelFunc
}

// LowStockAlert is a SKU's long-running low-stock entity, fed by
// StockLevelSignal. It alerts once when the level is at or below the
// threshold for the debounce period; a cooldown spaces alerts; a level still
// low EscalateAfter after the alert is escalated once; a recovery above
// threshold + hysteresis after an alert sends "restocked" once and re-arms.
// It continues as new on Temporal's suggestion or past MaxHistoryEvents,
// also while a step is parked (the next run takes the dead letter over).
func LowStockAlert(ctx workflow.Context, in contract.LowStockInput) (_ *contract.LowStockResult, err error) {
	if err := contract.ValidateKey("SKU", in.SKU); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", nil)
	}
	w := &lowStock{input: in, state: contract.LowStockState{Alert: contract.StockOK}, parked: in.Parked}
	w.input.Parked = nil
	if in.State != nil {
		w.state = *in.State
		w.input.State = nil
	}
	if w.state.Alert == "" {
		w.state.Alert = contract.StockOK
	}
	w.status = contract.Status{Step: "start"}
	p, err := newParker(ctx, &w.status, w.currentStatus)
	if err != nil {
		return nil, err
	}
	defer func() { p.settle(err) }()
	w.parker = p
	p.continueDue = func() bool { return w.shouldContinueAsNew(ctx) }
	w.signals = workflow.GetSignalChannel(ctx, contract.StockLevelSignal)
	upsert(ctx, contract.SKUKey.ValueSet(in.SKU))

	res, err := w.run(ctx)
	if parked := parkedContinuing(err); parked != nil {
		err = w.continueAsNew(ctx, parked)
	}
	awaitHandlers(ctx)
	return res, err
}

// run takes over a dead letter handed over, loads the settings, then acts
// on every observation and deadline until the run continues as new.
func (w *lowStock) run(ctx workflow.Context) (*contract.LowStockResult, error) {
	if w.parked != nil {
		if err := w.parker.resume(ctx, w.parked); err != nil {
			return nil, err
		}
	}
	if err := w.loadSettings(ctx); err != nil {
		if errors.Is(err, errSkipped) {
			// Without settings there is nothing to alert on (the SKU left
			// the catalogue); a later signal starts a fresh entity.
			w.state.Alert = contract.StockStopped
			w.setStep(ctx, "done")
			return &contract.LowStockResult{State: contract.StockStopped}, nil
		}
		return nil, err
	}
	for first := true; ; first = false {
		if err := w.act(ctx); err != nil {
			return nil, err
		}
		if first {
			// A retried step the carried state no longer calls for.
			w.parker.dropResumed(ctx)
		}
		if w.shouldContinueAsNew(ctx) {
			return nil, w.continueAsNew(ctx, nil)
		}
		w.setStep(ctx, "await-stock-level")
		if err := w.wait(ctx); err != nil {
			return nil, err
		}
	}
}

func (w *lowStock) currentStatus() (contract.Status, error) {
	st := w.status
	st.State = w.state.Alert
	switch {
	case !w.state.Known:
		st.Detail = "no stock level received yet"
	default:
		st.Detail = fmt.Sprintf("level %d (low at or below %d, restocked above %d)",
			w.state.Level, w.settings.Threshold, w.settings.Threshold+w.settings.Hysteresis)
	}
	switch {
	case w.state.Alert == contract.StockLowPending:
		st.Detail += "; alert due at " + w.state.AlertAt.UTC().Format(time.RFC3339)
	case w.state.Alert == contract.StockAlerted && w.escalates() && !w.state.EscalateAt.IsZero():
		st.Detail += "; escalates at " + w.state.EscalateAt.UTC().Format(time.RFC3339)
	}
	return st, nil
}

// loadSettings reads the SKU's settings through the parker: an unknown SKU
// parks the run for an operator.
func (w *lowStock) loadSettings(ctx workflow.Context) error {
	in := activities.LoadStockSettingsInput{SKU: w.input.SKU}
	var out *activities.StockSettings
	err := w.parker.step(ctx, "load-settings", storeOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, inventory.LoadStockSettings, in).Get(ctx, &out)
	})
	if err != nil {
		return err
	}
	w.settings = *out
	if len(w.settings.Audience) == 0 {
		// An alert must reach someone; the operators' inbox is the fallback.
		w.settings.Audience = []string{OperatorsRecipient}
	}
	w.settingsAt = workflow.Now(ctx)
	return nil
}

// wait blocks until a signal or the nearest deadline, and records the
// signal's observation.
func (w *lowStock) wait(ctx workflow.Context) error {
	w.armTimer(ctx)
	var (
		sig       *contract.StockLevel
		cancelled bool
	)
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(w.signals, func(c workflow.ReceiveChannel, _ bool) {
		var s contract.StockLevel
		c.Receive(ctx, &s)
		sig = &s
	})
	if w.timer != nil {
		sel.AddFuture(w.timer, func(workflow.Future) { w.timer, w.timerAt, w.cancelTimer = nil, time.Time{}, nil })
	}
	sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) { cancelled = true })
	sel.Select(ctx)
	switch {
	case cancelled || ctx.Err() != nil:
		// Cancelling the run also fires the timer; never mistake that for
		// a deadline.
		return ctx.Err()
	case sig == nil:
		return nil
	}
	// Recorded before the settings reload, which may park: a run that
	// continues as new while parked there carries it.
	w.receive(ctx, *sig)
	if workflow.Now(ctx).Sub(w.settingsAt) >= settingsRefresh {
		err := w.loadSettings(ctx)
		switch {
		case errors.Is(err, errSkipped):
			// The operator chose to go on with the settings already loaded.
			w.settingsAt = workflow.Now(ctx)
		case err != nil:
			return err
		}
	}
	return nil
}

// armTimer keeps one timer for the nearest deadline. Timers run on a
// cancellable context, so a deadline that moved or vanished is cancelled.
func (w *lowStock) armTimer(ctx workflow.Context) {
	now := workflow.Now(ctx)
	at := w.nextDeadline(now)
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
	w.timer, w.timerAt, w.cancelTimer = workflow.NewTimer(tctx, at.Sub(now)), at, cancel
}

// nextDeadline is when act has something to do without a new signal, or
// zero. An escalation deadline that passed while the level sat between the
// threshold and the restock level needs no timer: the next low level
// escalates at once.
func (w *lowStock) nextDeadline(now time.Time) time.Time {
	switch {
	case w.state.Alert == contract.StockLowPending:
		return w.state.AlertAt
	case w.state.Alert == contract.StockAlerted && w.escalates() && w.state.EscalateAt.After(now):
		return w.state.EscalateAt
	}
	return time.Time{}
}

// receive records an observation: a seen event id is ignored entirely; an
// observation older than the newest one is remembered as seen but does not
// change the level, since stock levels are snapshots and the newest wins.
func (w *lowStock) receive(ctx workflow.Context, s contract.StockLevel) {
	logger := workflow.GetLogger(ctx)
	if s.EventID != "" {
		if slices.Contains(w.state.Seen, s.EventID) {
			logger.Info("Ignoring a stock level already seen", "eventID", s.EventID)
			return
		}
		w.state.Seen = append(w.state.Seen, s.EventID)
		if over := len(w.state.Seen) - maxSeenEvents; over > 0 {
			w.state.Seen = slices.Delete(w.state.Seen, 0, over)
		}
	}
	if s.ObservedAt.IsZero() {
		s.ObservedAt = workflow.Now(ctx)
	}
	if w.state.Known && s.ObservedAt.Before(w.state.ObservedAt) {
		logger.Info("Ignoring a stock level older than the newest", "eventID", s.EventID,
			"observedAt", s.ObservedAt, "newest", w.state.ObservedAt)
		return
	}
	w.state.Known, w.state.Level, w.state.ObservedAt = true, s.Level, s.ObservedAt
}

// act moves the state machine as far as the level and the clock allow,
// notifying on the way. Debounce, cooldown and escalation are measured in
// workflow time (deterministic and what the timers use), not in the
// observations' clocks.
func (w *lowStock) act(ctx workflow.Context) error {
	for {
		now := workflow.Now(ctx)
		s, cfg := &w.state, w.settings
		low := s.Known && s.Level <= cfg.Threshold
		restocked := s.Known && s.Level > cfg.Threshold+cfg.Hysteresis
		switch {
		case s.Alert == contract.StockOK && low:
			// A low level inside the cooldown is not dropped: it alerts when
			// the cooldown ends if it is still low then.
			s.Alert, s.AlertAt = contract.StockLowPending, laterTime(now.Add(cfg.Debounce), s.CooldownUntil)
		case s.Alert == contract.StockLowPending && !low:
			// Recovered before the alert: flapping costs nothing.
			s.Alert, s.AlertAt = contract.StockOK, time.Time{}
		case s.Alert == contract.StockLowPending && !now.Before(s.AlertAt):
			s.Episode++
			if err := w.notify(ctx, "notify-low-stock", KnockLowStock, cfg.Audience); err != nil {
				// Not sent: the episode begins only when it is, so a run
				// continued while parked here sends it with the same key.
				s.Episode--
				return err
			}
			s.Alert, s.AlertAt, s.CooldownUntil, s.EscalateAt = contract.StockAlerted, time.Time{}, now.Add(cfg.Cooldown), time.Time{}
			if w.escalates() {
				s.EscalateAt = now.Add(cfg.EscalateAfter)
			}
		case (s.Alert == contract.StockAlerted || s.Alert == contract.StockEscalated) && restocked:
			// Everyone who was told it is low is told it is back.
			audience := cfg.Audience
			if s.Alert == contract.StockEscalated {
				audience = unionIDs(audience, cfg.EscalationAudience)
			}
			if err := w.notify(ctx, "notify-restocked", KnockRestocked, audience); err != nil {
				return err
			}
			s.Alert, s.EscalateAt = contract.StockOK, time.Time{}
		case s.Alert == contract.StockAlerted && low && w.escalates() && !s.EscalateAt.IsZero() && !now.Before(s.EscalateAt):
			// EscalateAt is zero when escalation was off at the alert: a
			// settings change applies from the next episode.
			if err := w.notify(ctx, "notify-escalation", KnockLowStockEscalation, cfg.EscalationAudience); err != nil {
				return err
			}
			s.Alert, s.EscalateAt = contract.StockEscalated, time.Time{}
		default:
			return nil
		}
	}
}

// escalates reports whether this SKU escalates at all.
func (w *lowStock) escalates() bool {
	return w.settings.EscalateAfter > 0 && len(w.settings.EscalationAudience) > 0
}

// notify triggers a Knock workflow. The idempotency key is workflow ID, step
// and episode: a retried activity, a replay or a retried step reuses it, and
// only a new alert episode makes a new one.
func (w *lowStock) notify(ctx workflow.Context, step, knockWorkflow string, recipients []string) error {
	in := activities.NotifyInput{
		Workflow:   knockWorkflow,
		Recipients: recipients,
		Data: map[string]any{
			"sku": w.input.SKU, "name": w.settings.Name, "level": w.state.Level,
			"threshold": w.settings.Threshold, "restock_level": w.settings.Threshold + w.settings.Hysteresis,
			"episode": w.state.Episode,
		},
		IdempotencyKey: fmt.Sprintf("%s/%s/%d", workflow.GetInfo(ctx).WorkflowExecution.ID, step, w.state.Episode),
	}
	err := w.parker.step(ctx, step, knockOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, knock.Notify, in).Get(ctx, nil)
	})
	if errors.Is(err, errSkipped) {
		return nil // an operator dropped this notification; the state moves on
	}
	return err
}

// setStep records the step only when it changes: every change is a
// search-attribute event in the history.
func (w *lowStock) setStep(ctx workflow.Context, step string) {
	if w.status.Step != step {
		w.parker.setStep(ctx, step)
	}
}

func laterTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// unionIDs is a followed by b's ids not in a, in order.
func unionIDs(a, b []string) []string {
	out := slices.Clone(a)
	for _, id := range b {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}
