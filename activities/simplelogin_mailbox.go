package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"go.temporal.io/sdk/activity"

	"github.com/crmflow/crmflow/internal/providerhttp"
	"github.com/crmflow/crmflow/internal/simplelogin"
)

// A user's aliases follow their primary address through SimpleLogin
// mailboxes: crmflow makes the address a mailbox of its account and, once
// SimpleLogin has verified it (its owner followed the link SimpleLogin
// sent), points the user's aliases at it. Aliases keep their addresses;
// only where they forward changes.

// EnsureMailboxInput is the address the user's aliases should forward to.
type EnsureMailboxInput struct {
	Email string `json:"email"`
}

// MailboxOutput is the account's mailbox for an address.
type MailboxOutput struct {
	MailboxID int64 `json:"mailbox_id"`
	// Verified is false until the address's owner follows SimpleLogin's
	// link; no alias can forward there before.
	Verified bool `json:"verified"`
	// Default is true for the account's default mailbox, which crmflow
	// never deletes.
	Default bool `json:"default,omitempty"`
}

// EnsureMailbox returns the account's mailbox for the address, creating it
// (SimpleLogin then emails a verification link) when there is none. It
// looks before it creates, so a retry finds the mailbox an earlier attempt
// made. An address SimpleLogin will not take as this account's mailbox
// (another account's, a disposable domain, a free account) is a permanent
// SimpleLoginNotFound carrying SimpleLogin's message.
func (a *SimpleLoginActivities) EnsureMailbox(ctx context.Context, in EnsureMailboxInput) (*MailboxOutput, error) {
	if !strings.Contains(in.Email, "@") {
		return nil, invalidSimpleLoginInput("the mailbox address is not an email address")
	}
	mb, err := a.SL.EnsureMailbox(ctx, in.Email)
	if err != nil {
		return nil, classifySimpleLogin(err)
	}
	activity.GetLogger(ctx).Info("simplelogin: mailbox ready", "mailboxID", mb.ID, "verified", mb.Verified)
	return &MailboxOutput{MailboxID: mb.ID, Verified: mb.Verified, Default: mb.Default}, nil
}

// ForwardAliasesInput points aliases at one mailbox.
type ForwardAliasesInput struct {
	SimpleLoginIDs []int64 `json:"simplelogin_ids"`
	MailboxID      int64   `json:"mailbox_id"`
}

// ForwardAliasesOutput says which aliases now forward to the mailbox.
type ForwardAliasesOutput struct {
	Forwarded []int64 `json:"forwarded"`
	// Gone are aliases SimpleLogin no longer has (deleted meanwhile).
	Gone []int64 `json:"gone,omitempty"`
}

// ForwardAliases makes every alias forward to the mailbox, replacing the
// mailboxes it had. Setting the same mailbox again changes nothing, so a
// retry repeats only what did not happen. An alias SimpleLogin no longer has
// is reported Gone, not failed: its own workflow ends it. An unverified
// mailbox is a permanent SimpleLoginInvalidRequest.
func (a *SimpleLoginActivities) ForwardAliases(ctx context.Context, in ForwardAliasesInput) (*ForwardAliasesOutput, error) {
	if in.MailboxID <= 0 {
		return nil, invalidSimpleLoginInput(fmt.Sprintf("SimpleLogin mailbox id %d is not positive", in.MailboxID))
	}
	out := &ForwardAliasesOutput{Forwarded: []int64{}}
	for _, id := range in.SimpleLoginIDs {
		err := a.SL.SetAliasMailboxes(ctx, id, []int64{in.MailboxID})
		if err != nil && a.aliasGone(ctx, id, err) {
			out.Gone = append(out.Gone, id)
			continue
		}
		if err != nil {
			return nil, classifySimpleLogin(err)
		}
		out.Forwarded = append(out.Forwarded, id)
		activity.RecordHeartbeat(ctx, len(out.Forwarded))
	}
	activity.GetLogger(ctx).Info("simplelogin: aliases forward to the mailbox", "mailboxID", in.MailboxID,
		"forwarded", len(out.Forwarded), "gone", len(out.Gone))
	return out, nil
}

// aliasGone tells a 403 about an alias SimpleLogin no longer has from one
// about an alias that is not this account's: only a read says which.
func (a *SimpleLoginActivities) aliasGone(ctx context.Context, id int64, err error) bool {
	if errors.Is(err, simplelogin.ErrAliasNotFound) {
		return true
	}
	if providerhttp.StatusOf(err) != http.StatusForbidden {
		return false
	}
	_, gerr := a.SL.GetAlias(ctx, id)
	return errors.Is(gerr, simplelogin.ErrAliasNotFound)
}

// DeleteMailboxesInput are mailboxes crmflow made for a deleted user.
type DeleteMailboxesInput struct {
	MailboxIDs []int64 `json:"mailbox_ids"`
}

// DeleteMailboxesOutput says what was deleted.
type DeleteMailboxesOutput struct {
	Deleted []int64 `json:"deleted"`
	// Kept is the account's default mailbox if it was among them: deleting
	// it is refused, and it is crmflow's own, not the user's.
	Kept []int64 `json:"kept,omitempty"`
}

// DeleteMailboxes deletes the mailboxes, so SimpleLogin keeps no address
// of a deleted user. Mailboxes already gone count as deleted; the
// account's default mailbox is never deleted.
func (a *SimpleLoginActivities) DeleteMailboxes(ctx context.Context, in DeleteMailboxesInput) (*DeleteMailboxesOutput, error) {
	out := &DeleteMailboxesOutput{Deleted: []int64{}}
	if len(in.MailboxIDs) == 0 {
		return out, nil
	}
	mbs, err := a.SL.Mailboxes(ctx)
	if err != nil {
		return nil, classifySimpleLogin(err)
	}
	for _, id := range in.MailboxIDs {
		i := slices.IndexFunc(mbs, func(mb simplelogin.Mailbox) bool { return mb.ID == id })
		switch {
		case i < 0:
			out.Deleted = append(out.Deleted, id) // gone already
			continue
		case mbs[i].Default:
			out.Kept = append(out.Kept, id)
			continue
		}
		if err := a.SL.DeleteMailboxIfExists(ctx, id); err != nil {
			return nil, classifySimpleLogin(err)
		}
		out.Deleted = append(out.Deleted, id)
	}
	activity.GetLogger(ctx).Info("simplelogin: mailboxes deleted", "deleted", len(out.Deleted), "kept", len(out.Kept))
	return out, nil
}
