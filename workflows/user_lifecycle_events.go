package workflows

import (
	"errors"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
)

// handle acts on one event; it returns a result only when the run ends.
func (w *userLifecycle) handle(ctx workflow.Context, ev contract.UserEvent) (*contract.UserLifecycleResult, error) {
	logger := workflow.GetLogger(ctx)
	switch {
	case ev.UserID != w.input.UserID:
		logger.Warn("Ignoring an event for another user", "eventID", ev.EventID, "eventUserID", ev.UserID)
		return nil, nil
	case w.seenBefore(ev.EventID):
		logger.Info("Ignoring an event already seen", "type", ev.Type, "eventID", ev.EventID)
		return nil, nil
	}
	switch ev.Type {
	case contract.UserEventCreated:
		return w.onCreated(ctx, ev)
	case contract.UserEventUpdated:
		return w.onUpdated(ctx, ev)
	case contract.UserEventDeleted:
		return w.onDeleted(ctx, ev)
	}
	logger.Warn("Ignoring an event of a type the entity does not handle", "type", ev.Type, "eventID", ev.EventID)
	return nil, nil
}

// onCreated records the user, welcomes them once and claims their shadow
// aliases. A created that comes after an updated (Svix does not promise
// order) still welcomes the user, with the newer data the updated brought.
func (w *userLifecycle) onCreated(ctx workflow.Context, ev contract.UserEvent) (*contract.UserLifecycleResult, error) {
	w.apply(ctx, ev)
	w.state.Created = true
	if res, _, err := w.sync(ctx); res != nil || err != nil {
		return res, err
	}
	if err := w.welcome(ctx); err != nil {
		return nil, err
	}
	return nil, w.claim(ctx, ev.EventID)
}

// onUpdated syncs a newer snapshot; when the primary address changed the
// user's aliases follow it. An older snapshot than the one held (an update
// overtaken by a later one) changes nothing.
func (w *userLifecycle) onUpdated(ctx workflow.Context, ev contract.UserEvent) (*contract.UserLifecycleResult, error) {
	before := w.state.PrimaryEmail
	if !w.apply(ctx, ev) {
		return nil, nil
	}
	res, previous, err := w.sync(ctx)
	if res != nil || err != nil {
		return res, err
	}
	if before == "" {
		// The run's first snapshot: the row says what the address was.
		before = previous
	}
	now := w.state.PrimaryEmail
	if before != "" && now != "" && !strings.EqualFold(before, now) {
		if err := w.follow(ctx, now); err != nil {
			return nil, err
		}
	}
	return nil, w.claim(ctx, ev.EventID)
}

// apply takes the event's snapshot unless the one held is newer, and
// reports whether it did. A changed snapshot is synced again.
func (w *userLifecycle) apply(ctx workflow.Context, ev contract.UserEvent) bool {
	s := &w.state
	if ev.UpdatedAt < s.UpdatedAt {
		workflow.GetLogger(ctx).Info("Keeping the newer snapshot of the user", "eventID", ev.EventID,
			"eventUpdatedAt", ev.UpdatedAt, "heldUpdatedAt", s.UpdatedAt)
		return false
	}
	if ev.Name != s.Name || ev.PrimaryEmail != s.PrimaryEmail || !slices.Equal(ev.VerifiedEmails, s.VerifiedEmails) {
		s.Synced = false
	}
	s.Name, s.PrimaryEmail, s.VerifiedEmails, s.UpdatedAt = ev.Name, ev.PrimaryEmail, ev.VerifiedEmails, ev.UpdatedAt
	w.rememberEmails(ev.VerifiedEmails)
	return true
}

// sync writes the snapshot to the customer row and to Knock, unless they
// have it already. It returns the address the row had before; and a result
// when the row is the tombstone of a deleted user: then nothing is written
// anywhere and the run ends, since a deleted user stays deleted.
func (w *userLifecycle) sync(ctx workflow.Context) (*contract.UserLifecycleResult, string, error) {
	if w.state.Synced {
		return nil, "", nil
	}
	up := activities.UpsertUserInput{CustomerID: w.input.UserID, Email: w.state.PrimaryEmail, Name: w.state.Name}
	var out activities.UpsertUserOutput
	err := w.parker.step(ctx, "upsert-customer", storeOptions, up, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, userStore.UpsertUser, up).Get(ctx, &out)
	})
	if err != nil && !errors.Is(err, errSkipped) {
		return nil, "", err // skipped: the operator writes the row by hand
	}
	if out.Deleted {
		workflow.GetLogger(ctx).Info("The user was deleted before; an event for them changes nothing")
		return w.finish(ctx, "the user had been deleted; the event changed nothing"), "", nil
	}
	id := activities.IdentifyUserInput{UserID: w.input.UserID, Email: w.state.PrimaryEmail, Name: w.state.Name}
	err = w.parker.step(ctx, "identify-user", knockOptions, id, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, userKnock.IdentifyUser, id).Get(ctx, nil)
	})
	if err != nil && !errors.Is(err, errSkipped) {
		return nil, "", err
	}
	w.state.Synced = true
	return nil, out.PreviousEmail, nil
}

// welcome sends the welcome email once, after a user.created. The key makes
// a retried send one email; a user without an address is not welcomed.
func (w *userLifecycle) welcome(ctx workflow.Context) error {
	if w.state.Welcomed || !w.state.Created {
		return nil
	}
	if w.state.PrimaryEmail == "" {
		workflow.GetLogger(ctx).Info("No welcome email: the user has no primary address")
		w.state.Welcomed = true
		return nil
	}
	id := contract.UserID(w.input.UserID)
	in := activities.SendEmailInput{
		Template: WelcomeEmailTemplate, To: w.state.PrimaryEmail, Data: map[string]any{"name": w.state.Name},
		IdempotencyKey: id + "/welcome", BusinessKey: id,
	}
	err := w.parker.step(ctx, "send-welcome", userEmailOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, userEmail.SendTemplatedEmail, in).Get(ctx, nil)
	})
	if err != nil && !errors.Is(err, errSkipped) {
		return err // skipped: the user is not welcomed by email
	}
	w.state.Welcomed = true
	return nil
}

// claim gives the user the unclaimed shadow aliases made for any of their
// verified addresses: each alias's entity gets a claim. Claiming again is
// harmless (the store finds only unclaimed ones, the aliases ignore an
// event id they have seen).
func (w *userLifecycle) claim(ctx workflow.Context, eventID string) error {
	if len(w.state.VerifiedEmails) == 0 {
		return nil
	}
	in := activities.FindShadowAliasesInput{Emails: w.state.VerifiedEmails}
	var out activities.AliasIDsOutput
	err := w.parker.step(ctx, "find-shadow-aliases", storeOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, userStore.FindShadowAliases, in).Get(ctx, &out)
	})
	if errors.Is(err, errSkipped) {
		return nil
	}
	if err != nil {
		return err
	}
	w.signalAliases(ctx, "claim-aliases", out.AliasIDs, contract.AliasClaimSignal,
		contract.AliasCommand{EventID: eventID, CustomerID: w.input.UserID})
	return nil
}

// signalAliases sends cmd to each alias's entity at once and waits for the
// sends. An alias whose entity has ended (deleted or expired meanwhile)
// needs nothing; any other failure is logged, since no retry of a signal
// Temporal itself refused can do better.
func (w *userLifecycle) signalAliases(ctx workflow.Context, step string, aliasIDs []string, signal string, cmd contract.AliasCommand) {
	if len(aliasIDs) == 0 {
		return
	}
	w.enterStep(ctx, step)
	sends := make([]workflow.Future, len(aliasIDs))
	for i, id := range aliasIDs {
		sends[i] = workflow.SignalExternalWorkflow(ctx, contract.AliasID(id), "", signal, cmd)
	}
	for i, f := range sends {
		err := f.Get(ctx, nil)
		var ended *temporal.UnknownExternalWorkflowExecutionError
		switch {
		case err == nil:
		case errors.As(err, &ended):
			workflow.GetLogger(ctx).Info("Alias entity has ended; nothing to send", "aliasID", aliasIDs[i], "signal", signal)
		default:
			workflow.GetLogger(ctx).Error("Could not signal an alias", "aliasID", aliasIDs[i], "signal", signal, "error", err)
		}
	}
}

// onDeleted removes the user everywhere crmflow put them, then ends the run.
// Each step is idempotent, so a deletion retried after a park, or redone
// by an operator, repeats nothing harmful.
func (w *userLifecycle) onDeleted(ctx workflow.Context, ev contract.UserEvent) (*contract.UserLifecycleResult, error) {
	del := activities.DeleteUserInput{UserID: w.input.UserID}
	err := w.parker.step(ctx, "delete-knock-user", knockOptions, del, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, userKnock.DeleteUser, del).Get(ctx, nil)
	})
	if err != nil && !errors.Is(err, errSkipped) {
		return nil, err
	}

	find := activities.FindUserAliasesInput{CustomerID: w.input.UserID, Emails: w.state.KnownEmails}
	var aliases activities.AliasIDsOutput
	err = w.parker.step(ctx, "find-aliases", storeOptions, find, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, userStore.FindUserAliases, find).Get(ctx, &aliases)
	})
	if err != nil && !errors.Is(err, errSkipped) {
		return nil, err
	}
	w.signalAliases(ctx, "delete-aliases", aliases.AliasIDs, contract.AliasDeleteSignal, contract.AliasCommand{EventID: ev.EventID})

	if err := w.deleteMailboxes(ctx); err != nil {
		return nil, err
	}

	scrub := activities.ScrubUserInput{CustomerID: w.input.UserID}
	err = w.parker.step(ctx, "scrub-customer", storeOptions, scrub, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, userStore.ScrubUser, scrub).Get(ctx, nil)
	})
	if err != nil && !errors.Is(err, errSkipped) {
		return nil, err
	}
	return w.finish(ctx, ""), nil
}
