package workflows

import (
	"errors"
	"slices"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
)

// How a user's aliases follow their primary address. The aliases keep
// their addresses (SimpleLogin never hands out a deleted address again, so
// recreating them would break every site they were given to); what changes
// is the SimpleLogin mailbox they forward to. SimpleLogin forwards only to
// mailboxes whose owner has followed its verification link, so the move
// waits for that: the entity asks every MailboxCheck and gives up after
// MailboxVerifyWait, leaving the aliases where they were, which loses no
// mail. Clerk's own verification does not count for SimpleLogin.

// follow starts moving the user's aliases to the mailbox of their new
// primary address, at once if SimpleLogin has verified it already. An
// address Clerk has not verified is not followed: SimpleLogin would email a
// verification link to an address that may not be the user's.
func (w *userLifecycle) follow(ctx workflow.Context, email string) error {
	if !slices.ContainsFunc(w.state.VerifiedEmails, func(v string) bool { return strings.EqualFold(v, email) }) {
		workflow.GetLogger(ctx).Info("Aliases do not follow an unverified primary address")
		return nil
	}
	w.state.Forward = nil
	w.status.Detail = ""
	in := activities.EnsureMailboxInput{Email: email}
	var mb activities.MailboxOutput
	err := w.parker.step(ctx, "ensure-mailbox", simpleLoginOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, simpleLogin.EnsureMailbox, in).Get(ctx, &mb)
	})
	if errors.Is(err, errSkipped) {
		return nil // the aliases stay where they forward now
	}
	if err != nil {
		return err
	}
	w.rememberMailbox(mb)
	if mb.Verified {
		return w.forward(ctx, mb.MailboxID)
	}
	w.state.Forward = &contract.MailboxForward{Email: email, MailboxID: mb.MailboxID,
		GiveUpAt: workflow.Now(ctx).Add(w.input.MailboxVerifyWait)}
	return nil
}

// checkMailbox asks SimpleLogin whether the waiting forward's mailbox is
// verified now, moves the aliases if it is, and gives up past the deadline.
func (w *userLifecycle) checkMailbox(ctx workflow.Context) error {
	f := w.state.Forward
	in := activities.EnsureMailboxInput{Email: f.Email}
	var mb activities.MailboxOutput
	err := w.parker.step(ctx, "check-mailbox", simpleLoginOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, simpleLogin.EnsureMailbox, in).Get(ctx, &mb)
	})
	switch {
	case errors.Is(err, errSkipped):
		w.state.Forward = nil
		return nil
	case err != nil:
		return err
	case mb.Verified:
		w.state.Forward = nil
		w.rememberMailbox(mb)
		return w.forward(ctx, mb.MailboxID)
	case !workflow.Now(ctx).Before(f.GiveUpAt):
		workflow.GetLogger(ctx).Warn("SimpleLogin never verified the new address's mailbox; the aliases stay where they forward")
		w.state.Forward = nil
		w.status.Detail = "the new address's mailbox was never verified at SimpleLogin; the aliases forward where they did"
	}
	return nil
}

// forward points the user's created aliases at the mailbox.
func (w *userLifecycle) forward(ctx workflow.Context, mailboxID int64) error {
	list := activities.ForwardableAliasesInput{CustomerID: w.input.UserID}
	var aliases activities.ForwardableAliasesOutput
	err := w.parker.step(ctx, "list-aliases", storeOptions, list, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, userStore.ForwardableAliases, list).Get(ctx, &aliases)
	})
	if errors.Is(err, errSkipped) || err == nil && len(aliases.SimpleLoginIDs) == 0 {
		return nil
	}
	if err != nil {
		return err
	}
	in := activities.ForwardAliasesInput{SimpleLoginIDs: aliases.SimpleLoginIDs, MailboxID: mailboxID}
	err = w.parker.step(ctx, "forward-aliases", simpleLoginOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, simpleLogin.ForwardAliases, in).Get(ctx, nil)
	})
	if err != nil && !errors.Is(err, errSkipped) {
		return err
	}
	return nil
}

// rememberMailbox notes a mailbox made for the user, for their deletion;
// the account's default mailbox is crmflow's own and never theirs.
func (w *userLifecycle) rememberMailbox(mb activities.MailboxOutput) {
	if !mb.Default && !slices.Contains(w.state.Mailboxes, mb.MailboxID) {
		w.state.Mailboxes = append(w.state.Mailboxes, mb.MailboxID)
	}
}

// deleteMailboxes deletes the mailboxes made for the user's addresses, so
// SimpleLogin keeps no address of a deleted user.
func (w *userLifecycle) deleteMailboxes(ctx workflow.Context) error {
	w.state.Forward = nil
	if len(w.state.Mailboxes) == 0 {
		return nil
	}
	in := activities.DeleteMailboxesInput{MailboxIDs: w.state.Mailboxes}
	err := w.parker.step(ctx, "delete-mailboxes", simpleLoginOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, simpleLogin.DeleteMailboxes, in).Get(ctx, nil)
	})
	if err != nil && !errors.Is(err, errSkipped) {
		return err
	}
	return nil
}
