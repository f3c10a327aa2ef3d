package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/log"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/providerhttp"
	"github.com/crmflow/crmflow/internal/simplelogin"
)

// providerSimpleLogin names SimpleLogin in error types: "SimpleLoginAuthFailed".
const providerSimpleLogin = "SimpleLogin"

// aliasMarkerPrefix starts the marker crmflow writes into every alias's note.
// SimpleLogin has no idempotency key, so the marker is how a retried creation
// finds the alias an earlier attempt made.
const aliasMarkerPrefix = "crmflow:alias/"

// AliasNoteMarker is the marker crmflow puts in the note of the SimpleLogin
// alias it creates for crmflow alias aliasID.
func AliasNoteMarker(aliasID string) string { return aliasMarkerPrefix + aliasID }

// SimpleLoginActivities manage email aliases at SimpleLogin.
//
// SimpleLogin has no idempotency keys and its toggle flips state, so every
// activity here is written to be safe to retry: creation looks for its marker
// before it creates, enabling and disabling read the state before toggling,
// and deleting an alias that is already gone succeeds.
//
// The worker injects a console client when SimpleLogin has no configured
// key at start, so the activities run the same way with or without
// SimpleLogin; a configured SimpleLogin's client reads its key at each
// call, and a call with no active key fails with a non-retryable
// SimpleLoginCredentialMissing.
type SimpleLoginActivities struct {
	// SL is the SimpleLogin client, real or console.
	SL *simplelogin.Client
}

// CreateAliasInput is one alias to create.
type CreateAliasInput struct {
	// AliasID is crmflow's alias id (the workflow's business key). It goes
	// into the alias's note as AliasNoteMarker(AliasID), so it may contain
	// neither whitespace nor a backslash.
	AliasID string `json:"AliasID"`
	// Mode is contract.AliasModeRandom or contract.AliasModeCustom.
	Mode string `json:"Mode"`
	// Prefix is the address's first part; required for custom, refused for
	// random. SimpleLogin lowercases it.
	Prefix string `json:"Prefix"`
	// Hostname, optional, is the website the alias is for.
	Hostname string `json:"Hostname"`
	// Note, optional, is kept in the alias's note before the marker.
	Note string `json:"Note"`
	// MailboxIDs, optional and custom only, are the SimpleLogin mailboxes to
	// forward to; empty means the account's default mailbox.
	MailboxIDs []int64 `json:"MailboxIDs"`
}

// AliasOutput is a SimpleLogin alias as the activities leave it.
type AliasOutput struct {
	// SimpleLoginID is SimpleLogin's alias id, the handle for later steps.
	SimpleLoginID int64 `json:"SimpleLoginID"`
	// Email is the alias address.
	Email string `json:"Email"`
	// Enabled is false when the alias blocks the mail it receives.
	Enabled bool `json:"Enabled"`
	// Console is true when nothing was sent to SimpleLogin.
	Console bool `json:"Console"`
}

// SetAliasEnabledInput is the state one alias should be in.
type SetAliasEnabledInput struct {
	// SimpleLoginID is SimpleLogin's alias id.
	SimpleLoginID int64 `json:"SimpleLoginID"`
	// Enabled is the wanted state.
	Enabled bool `json:"Enabled"`
}

// DeleteAliasInput names the alias to delete.
type DeleteAliasInput struct {
	// SimpleLoginID is SimpleLogin's alias id.
	SimpleLoginID int64 `json:"SimpleLoginID"`
}

// CreateAlias creates the SimpleLogin alias for in.AliasID, or returns the
// one an earlier attempt created: it first looks for the alias whose note
// carries AliasNoteMarker(in.AliasID), and creates only when there is none.
func (a *SimpleLoginActivities) CreateAlias(ctx context.Context, in CreateAliasInput) (*AliasOutput, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	marker := AliasNoteMarker(in.AliasID)
	logger := log.With(activity.GetLogger(ctx), "aliasID", in.AliasID, "mode", in.Mode)

	existing, err := a.SL.FindByNote(ctx, marker)
	switch {
	case err == nil:
		logger.Info("simplelogin: alias already exists, not creating it again", "simpleLoginID", existing.ID)
		return a.output(existing), nil
	case !errors.Is(err, simplelogin.ErrAliasNotFound):
		return nil, classifySimpleLogin(err)
	}

	note := marker
	if n := strings.TrimSpace(in.Note); n != "" {
		// The marker gets a line of its own, so a note cannot glue itself to
		// it and hide it from FindByNote.
		note = n + "\n" + marker
	}
	var created *simplelogin.Alias
	if in.Mode == contract.AliasModeRandom {
		created, err = a.createRandom(ctx, logger, in, note, marker)
	} else {
		created, err = a.createCustom(ctx, logger, in, note, marker)
	}
	if err != nil {
		return nil, err
	}
	logger.Info("simplelogin: alias created", "simpleLoginID", created.ID, "console", a.SL.Console())
	return a.output(created), nil
}

// createRandom creates a random alias carrying note. With a hostname and the
// account setting "include website in one-click alias" on, SimpleLogin may
// hand back an alias it made earlier for that hostname instead of a new one;
// that alias lacks our marker, and taking it would tie two crmflow aliases to
// one SimpleLogin alias (deleting one would delete the other). Then it
// creates again without the hostname, which always makes a new alias.
func (a *SimpleLoginActivities) createRandom(ctx context.Context, logger log.Logger, in CreateAliasInput, note, marker string) (*simplelogin.Alias, error) {
	created, err := a.SL.CreateRandomAlias(ctx, simplelogin.RandomAliasParams{Hostname: in.Hostname, Note: note})
	if err != nil {
		return nil, classifySimpleLogin(err)
	}
	if simplelogin.NoteHasMarker(created.Note, marker) {
		return created, nil
	}
	if in.Hostname != "" {
		logger.Warn("simplelogin: answered with an existing alias for the hostname; creating one without the hostname",
			"reusedSimpleLoginID", created.ID)
		created, err = a.SL.CreateRandomAlias(ctx, simplelogin.RandomAliasParams{Note: note})
		if err != nil {
			return nil, classifySimpleLogin(err)
		}
		if simplelogin.NoteHasMarker(created.Note, marker) {
			return created, nil
		}
	}
	return nil, permanent(providerSimpleLogin, ErrTypeConflict,
		fmt.Errorf("created alias %d does not carry the note sent, so it is not ours to use", created.ID))
}

// createCustom creates <prefix><suffix> with the account's first suffix
// (SimpleLogin lists the user's default first) and note.
func (a *SimpleLoginActivities) createCustom(ctx context.Context, logger log.Logger, in CreateAliasInput, note, marker string) (*simplelogin.Alias, error) {
	mailboxes := in.MailboxIDs
	if len(mailboxes) == 0 {
		id, err := a.defaultMailbox(ctx)
		if err != nil {
			return nil, err
		}
		mailboxes = []int64{id}
	}
	params := simplelogin.CustomAliasParams{Hostname: in.Hostname, Prefix: in.Prefix, MailboxIDs: mailboxes, Note: note}

	// A signed suffix is valid for 600 s; SimpleLogin answers 412 past that
	// (a slow attempt, clock trouble). One fresh suffix is worth a try; a
	// second 412 is not something retrying fixes.
	for attempt := 1; ; attempt++ {
		suffix, err := a.signedSuffix(ctx, in.Hostname)
		if err != nil {
			return nil, err
		}
		params.SignedSuffix = suffix
		created, err := a.SL.CreateCustomAlias(ctx, params)
		if err == nil {
			return created, nil
		}
		switch status := providerhttp.StatusOf(err); {
		case status == http.StatusPreconditionFailed && attempt == 1:
			logger.Warn("simplelogin: signed suffix expired; fetching a fresh one")
			continue
		case status == http.StatusConflict:
			// The address is taken. If an attempt of ours raced this one
			// and won, its alias carries the marker: that is the answer.
			if found, ferr := a.SL.FindByNote(ctx, marker); ferr == nil {
				return found, nil
			}
		}
		return nil, classifySimpleLogin(err)
	}
}

// signedSuffix returns the account's default signed suffix, fresh.
func (a *SimpleLoginActivities) signedSuffix(ctx context.Context, hostname string) (string, error) {
	opts, err := a.SL.AliasOptions(ctx, hostname)
	if err != nil {
		return "", classifySimpleLogin(err)
	}
	switch {
	case !opts.CanCreate:
		return "", permanent(providerSimpleLogin, ErrTypeInvalid,
			errors.New("the SimpleLogin account cannot create more aliases (free plan quota reached)"))
	case len(opts.Suffixes) == 0 || opts.Suffixes[0].SignedSuffix == "":
		return "", permanent(providerSimpleLogin, ErrTypeInvalid, errors.New("the SimpleLogin account offers no alias suffix"))
	}
	return opts.Suffixes[0].SignedSuffix, nil
}

// defaultMailbox returns the account's default mailbox, or its first
// verified one: SimpleLogin refuses unverified mailboxes.
func (a *SimpleLoginActivities) defaultMailbox(ctx context.Context) (int64, error) {
	mbs, err := a.SL.Mailboxes(ctx)
	if err != nil {
		return 0, classifySimpleLogin(err)
	}
	var first int64
	for _, mb := range mbs {
		if !mb.Verified {
			continue
		}
		if mb.Default {
			return mb.ID, nil
		}
		if first == 0 {
			first = mb.ID
		}
	}
	if first == 0 {
		return 0, permanent(providerSimpleLogin, ErrTypeInvalid, errors.New("the SimpleLogin account has no verified mailbox"))
	}
	return first, nil
}

// SetAliasEnabled enables or disables an alias. It reads the alias and
// toggles only when the state differs, so a retry changes nothing.
func (a *SimpleLoginActivities) SetAliasEnabled(ctx context.Context, in SetAliasEnabledInput) (*AliasOutput, error) {
	if in.SimpleLoginID <= 0 {
		return nil, invalidSimpleLoginInput(fmt.Sprintf("SimpleLogin alias id %d is not positive", in.SimpleLoginID))
	}
	alias, err := a.SL.SetEnabled(ctx, in.SimpleLoginID, in.Enabled)
	if err != nil {
		return nil, classifySimpleLogin(err)
	}
	activity.GetLogger(ctx).Info("simplelogin: alias state set",
		"simpleLoginID", alias.ID, "enabled", alias.Enabled, "console", a.SL.Console())
	return a.output(alias), nil
}

// DeleteAlias deletes an alias; one that is already gone counts as deleted,
// so a retry after a lost answer succeeds.
func (a *SimpleLoginActivities) DeleteAlias(ctx context.Context, in DeleteAliasInput) error {
	if in.SimpleLoginID <= 0 {
		return invalidSimpleLoginInput(fmt.Sprintf("SimpleLogin alias id %d is not positive", in.SimpleLoginID))
	}
	if err := a.SL.DeleteIfExists(ctx, in.SimpleLoginID); err != nil {
		return classifySimpleLogin(err)
	}
	activity.GetLogger(ctx).Info("simplelogin: alias deleted", "simpleLoginID", in.SimpleLoginID, "console", a.SL.Console())
	return nil
}

// output is what the workflow keeps of an alias: no note, no counters, so
// its history holds nothing more of the alias than it needs.
func (a *SimpleLoginActivities) output(alias *simplelogin.Alias) *AliasOutput {
	return &AliasOutput{SimpleLoginID: alias.ID, Email: alias.Email, Enabled: alias.Enabled, Console: a.SL.Console()}
}

// validate rejects inputs SimpleLogin would refuse and ids the marker cannot
// carry, before anything is sent.
func (in CreateAliasInput) validate() error {
	switch {
	case in.AliasID == "":
		return invalidSimpleLoginInput("alias id is empty")
	case strings.ContainsFunc(in.AliasID, unicode.IsSpace) || strings.ContainsRune(in.AliasID, '\\'):
		return invalidSimpleLoginInput(fmt.Sprintf("alias id %q contains whitespace or a backslash, which its note marker cannot hold", in.AliasID))
	}
	switch in.Mode {
	case contract.AliasModeRandom:
		if in.Prefix != "" || len(in.MailboxIDs) > 0 {
			return invalidSimpleLoginInput("prefix and mailbox ids are for custom aliases only")
		}
	case contract.AliasModeCustom:
		if strings.TrimSpace(in.Prefix) == "" {
			return invalidSimpleLoginInput("a custom alias needs a prefix")
		}
	default:
		return invalidSimpleLoginInput(fmt.Sprintf("mode %q is neither %q nor %q", in.Mode, contract.AliasModeRandom, contract.AliasModeCustom))
	}
	return nil
}

// invalidSimpleLoginInput is a permanent SimpleLoginInvalidRequest for a bad
// input.
func invalidSimpleLoginInput(msg string) error {
	return permanent(providerSimpleLogin, ErrTypeInvalid, errors.New(msg))
}

// classifySimpleLogin maps an error from the SimpleLogin client to a
// classified application error, as for any provider (providerhttp.Classify);
// no active key is SimpleLoginCredentialMissing.
// An alias that does not exist (simplelogin.ErrAliasNotFound; SimpleLogin
// answers 400 for it, not 404) is NotFound; deleting treats it as success
// before it gets here. A 429 carries the client's RetryAfter as the next
// delay (simplelogin.DefaultRateLimitBackoff, since SimpleLogin sends no
// Retry-After). A call that got no answer is retried: creation looks before
// it creates, so that is safe even if SimpleLogin did act on the lost
// request.
func classifySimpleLogin(err error) error {
	return classified(providerSimpleLogin, providerhttp.Classify(err), err)
}
