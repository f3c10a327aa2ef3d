package workflows

// UserLifecycle: one entity per Clerk user, fed by the Clerk webhook through
// the inbox. This file holds the entity's shape (input, loop, status,
// continue-as-new); user_lifecycle_events.go what each event does, and
// user_lifecycle_mailbox.go how the user's aliases follow a new address.

import (
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
)

var (
	userStore *activities.UserStoreActivities
	userKnock *activities.KnockActivities
	userEmail *activities.EmailActivities
)

// userEmailOptions: the welcome email goes out through Resend's queue, its
// rate limit and its breaker. The send carries an idempotency key, so a
// retry sends one email.
var userEmailOptions = activityPolicy{provider: contract.ProviderResend, options: workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	RetryPolicy:         backoff(8),
}}

// WelcomeEmailTemplate is the template of the email a new user gets.
const WelcomeEmailTemplate = "welcome"

// maxKnownEmails bounds the addresses a user's entity remembers.
const maxKnownEmails = 50

// userLifecycle is one run of a Clerk user's entity.
type userLifecycle struct {
	input  contract.UserLifecycleInput
	state  contract.UserState
	status contract.Status
	// ended is the final state once the run is over, "" before.
	ended  string
	parker *parker
	events workflow.ReceiveChannel
	// One timer for the next mailbox check while a forward waits.
	timer       workflow.Future
	cancelTimer workflow.CancelFunc
	// parked is the dead letter a previous run handed over, nil if none.
	parked *contract.ParkedStep
	// handling is set while an event is handled: only then may the run
	// continue as new while parked (the next run handles the event again).
	handling bool
}

// UserLifecycle is a Clerk user's entity (UserID(clerkUserID)). It lives on
// UserEventSignal, one Clerk event each, handled in the order delivered:
//   - user.created: the customer row (the Clerk user id is the customer id)
//     gets the user's email and name, Knock identifies the user, the
//     welcome email goes out once, and the shadow aliases made for any of
//     the user's verified addresses are claimed;
//   - user.updated: name and primary address go to PostgreSQL and Knock;
//     when the primary address changed, the user's aliases move to a
//     SimpleLogin mailbox for it once SimpleLogin has verified it; shadow
//     aliases made for a new verified address are claimed;
//   - user.deleted: the Knock user is deleted, every alias of the user is
//     told to delete itself (shadow aliases made for their addresses too),
//     the mailboxes crmflow made for them are deleted, the customer row is
//     scrubbed to a tombstone, and the run ends.
//
// An event id seen before is ignored; of two snapshots of the user the one
// Clerk updated last wins, whatever order they came in. A created that
// finds the tombstone of a deleted user ends the run at once. Failed steps
// park. The run continues as new, carrying its state, on Temporal's
// suggestion or past MaxHistoryEvents, also while a step of an event is
// parked (the next run takes the dead letter over and handles the event
// again, applying the operator's decision to that step).
func UserLifecycle(ctx workflow.Context, in contract.UserLifecycleInput) (_ *contract.UserLifecycleResult, err error) {
	if err := contract.ValidateKey("user ID", in.UserID); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", nil)
	}
	if in.Parked != nil && in.State == nil {
		return nil, temporal.NewNonRetryableApplicationError("only a continued user entity can carry a parked step", "InvalidInput", nil)
	}
	if in.MailboxCheck <= 0 {
		in.MailboxCheck = contract.DefaultMailboxCheck
	}
	if in.MailboxVerifyWait <= 0 {
		in.MailboxVerifyWait = contract.DefaultMailboxVerifyWait
	}
	w := &userLifecycle{input: in, status: contract.Status{Step: "start"}, parked: in.Parked}
	w.input.Parked = nil
	if in.State != nil {
		w.state = *in.State
		w.input.State = nil
	}
	p, err := newParker(ctx, &w.status, w.currentStatus)
	if err != nil {
		return nil, err
	}
	defer func() { p.settle(err) }()
	w.parker = p
	p.continueDue = func() bool { return w.handling && continueAsNewDue(ctx, w.input.MaxHistoryEvents) }
	w.events = workflow.GetSignalChannel(ctx, contract.UserEventSignal)
	upsert(ctx, contract.CustomerIDKey.ValueSet(in.UserID))
	// No address or name in the memo: it outlives the deletion in visibility.
	if err := workflow.UpsertMemo(ctx, map[string]any{"user_id": in.UserID}); err != nil {
		workflow.GetLogger(ctx).Error("Could not set memo", "error", err)
	}
	res, err := w.run(ctx)
	awaitHandlers(ctx)
	return res, err
}

func (w *userLifecycle) run(ctx workflow.Context) (*contract.UserLifecycleResult, error) {
	if w.parked != nil {
		w.handling = true
		err := w.parker.resume(ctx, w.parked)
		w.handling = false
		if parked := parkedContinuing(err); parked != nil {
			return nil, w.continueAsNew(ctx, parked) // still waiting, and the history is full again
		}
		if err != nil {
			return nil, err
		}
	}
	for first := true; ; first = false {
		if len(w.state.Pending) == 0 && continueAsNewDue(ctx, w.input.MaxHistoryEvents) {
			return nil, w.continueAsNew(ctx, nil)
		}
		w.setStep(ctx, "await-event")
		ev, check, err := w.next(ctx)
		switch {
		case err != nil:
			return nil, err
		case check:
			if err := w.checkMailbox(ctx); err != nil {
				return nil, err
			}
		case ev != nil:
			before := w.state.Clone()
			w.handling = true
			res, err := w.handle(ctx, *ev)
			w.handling = false
			if res != nil || err != nil {
				return res, w.continuedWhileParked(ctx, *ev, before, err)
			}
		default:
			continue // a timer for a forward that is over
		}
		if first {
			// A retried step the carried event no longer called for.
			w.parker.dropResumed(ctx)
		}
	}
}

// continuedWhileParked turns err, when it asks the run to continue as new
// while parked, into that continue-as-new: the state goes back to before
// the event (before), which goes to the front of the queue as not yet
// seen, for the next run to handle it again and apply the operator's
// decision to its parked step. What the steps before did stays done (they
// are idempotent and run again), except that a welcome sent is not sent
// again and the mailboxes made are remembered. Any other err is returned
// as it is.
func (w *userLifecycle) continuedWhileParked(ctx workflow.Context, ev contract.UserEvent, before contract.UserState, err error) error {
	parked := parkedContinuing(err)
	if parked == nil {
		return err
	}
	before.Welcomed = before.Welcomed || w.state.Welcomed
	before.Mailboxes = w.state.Mailboxes
	before.Pending = append([]contract.UserEvent{ev}, before.Pending...)
	w.state = before
	return w.continueAsNew(ctx, parked)
}

// next returns the next event: a carried one first, else the next signal;
// or check when a waiting forward's mailbox is due for a look.
func (w *userLifecycle) next(ctx workflow.Context) (*contract.UserEvent, bool, error) {
	if len(w.state.Pending) > 0 {
		ev := w.state.Pending[0]
		w.state.Pending = w.state.Pending[1:]
		return &ev, false, nil
	}
	w.armTimer(ctx)
	var (
		got       *contract.UserEvent
		fired     bool
		cancelled bool
	)
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(w.events, func(c workflow.ReceiveChannel, _ bool) {
		var ev contract.UserEvent
		c.Receive(ctx, &ev)
		got = &ev
	})
	if w.timer != nil {
		sel.AddFuture(w.timer, func(workflow.Future) {
			fired = true
			w.timer, w.cancelTimer = nil, nil
		})
	}
	sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) { cancelled = true })
	sel.Select(ctx)
	switch {
	case cancelled || ctx.Err() != nil:
		return nil, false, ctx.Err()
	case got != nil:
		return got, false, nil
	}
	return nil, fired && w.state.Forward != nil, nil
}

// armTimer keeps one timer for the next mailbox check while a forward
// waits, never past the forward's deadline; none otherwise.
func (w *userLifecycle) armTimer(ctx workflow.Context) {
	if w.state.Forward == nil {
		w.stopTimer()
		return
	}
	if w.timer != nil {
		return
	}
	wait := min(w.input.MailboxCheck, w.state.Forward.GiveUpAt.Sub(workflow.Now(ctx)))
	tctx, cancel := workflow.WithCancel(ctx)
	w.timer, w.cancelTimer = workflow.NewTimer(tctx, max(wait, 0)), cancel
}

func (w *userLifecycle) stopTimer() {
	if w.cancelTimer != nil {
		w.cancelTimer()
	}
	w.timer, w.cancelTimer = nil, nil
}

// seenBefore reports whether the event id was handled already, remembering
// it; the latest maxSeenEvents ids are kept.
func (w *userLifecycle) seenBefore(eventID string) bool {
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

// continueAsNew hands the state to a new run once no update handler (an
// operator's dead-letter decision) is running, carrying every event already
// delivered, which would otherwise be lost with this run, and parked, if
// not nil, the dead letter the run waits on.
func (w *userLifecycle) continueAsNew(ctx workflow.Context, parked *contract.ParkedStep) error {
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	for {
		var ev contract.UserEvent
		if !w.events.ReceiveAsync(&ev) {
			break
		}
		w.state.Pending = append(w.state.Pending, ev)
	}
	state := w.state
	next := w.input
	next.State, next.Parked = &state, parked
	workflow.GetLogger(ctx).Info("Continuing as new", "historyLength", workflow.GetInfo(ctx).GetCurrentHistoryLength())
	return workflow.NewContinueAsNewError(ctx, contract.UserLifecycleType, next)
}

// finish ends the run deleted. Events delivered meanwhile are dropped with
// a log line: the user is gone, and later ones find the run closed (late).
// The state forgets the user's addresses and name.
func (w *userLifecycle) finish(ctx workflow.Context, detail string) *contract.UserLifecycleResult {
	w.stopTimer()
	for {
		var ev contract.UserEvent
		if !w.events.ReceiveAsync(&ev) {
			break
		}
		workflow.GetLogger(ctx).Info("Ignoring an event for a deleted user", "type", ev.Type, "eventID", ev.EventID)
	}
	w.ended, w.status.Detail = contract.UserDeleted, detail
	w.state = contract.UserState{Seen: w.state.Seen}
	w.setStep(ctx, "done")
	return &contract.UserLifecycleResult{State: contract.UserDeleted}
}

// currentStatus answers the status query. It names no address: the status
// of a closed run stays readable until retention.
func (w *userLifecycle) currentStatus() (contract.Status, error) {
	st := w.status
	switch {
	case w.ended != "":
		st.State = w.ended
	case w.state.Synced:
		st.State = contract.UserActive
	default:
		st.State = "new"
	}
	if f := w.state.Forward; f != nil && w.ended == "" {
		st.Detail = "aliases move to the new address's mailbox once SimpleLogin has verified it (until " +
			f.GiveUpAt.UTC().Format(time.RFC3339) + ")"
	}
	return st, nil
}

// setStep records the step only when it changes: every change is a
// search-attribute event in the history.
func (w *userLifecycle) setStep(ctx workflow.Context, step string) {
	if w.status.Step != step {
		w.parker.setStep(ctx, step)
	}
}

// enterStep records a step the run passes through, only when it changes
// (see steps).
func (w *userLifecycle) enterStep(ctx workflow.Context, step string) {
	if w.status.Step != step {
		w.parker.enterStep(ctx, step)
	}
}

// rememberEmails adds verified addresses to those known to be the user's,
// compared case-insensitively, keeping the latest maxKnownEmails.
func (w *userLifecycle) rememberEmails(emails []string) {
	for _, e := range emails {
		e = strings.TrimSpace(e)
		if e == "" || slices.ContainsFunc(w.state.KnownEmails, func(k string) bool { return strings.EqualFold(k, e) }) {
			continue
		}
		w.state.KnownEmails = append(w.state.KnownEmails, e)
	}
	if over := len(w.state.KnownEmails) - maxKnownEmails; over > 0 {
		w.state.KnownEmails = slices.Delete(w.state.KnownEmails, 0, over)
	}
}
