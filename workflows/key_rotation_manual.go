package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/providers"
)

// Human-in-the-loop rotation: crmflow cannot create these providers' keys,
// so operators submit the new key (KeyRotationSubmitKeyUpdate), crmflow
// verifies and activates it, and operators confirm the old one is revoked
// at the provider (KeyRotationRevokedUpdate).

// keyVerifyOptions: an operator waits on the answer, so few attempts. It runs
// on the workflow's own queue, not the provider's: a new key is often what
// ends a provider's failures, so its check must not wait behind a paused
// provider queue.
var keyVerifyOptions = activityPolicy{options: workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    10 * time.Second,
		MaximumAttempts:    3,
	},
}}

var verify *activities.KeyVerifier

// manualSubmission is the human-in-the-loop mode's state: the verified key
// waiting for the main flow (its stored version, or in older runs the key
// itself, cleared once taken), who submitted it, whether a genuine delivery
// proved a webhook secret, who confirmed the old key's revocation, and how
// many reminders went out (one count over every wait and every run, so
// reminder step names never repeat; runReminders counts this run's).
type manualSubmission struct {
	verifying    bool
	submitted    string
	version      int
	proven       bool
	submittedBy  string
	revokedBy    string
	revokedKnown bool
	reminders    int
	runReminders int
}

// reminderContinueChange is the GetVersion change id of rotations that
// continue as new after RemindersPerRun reminders in one run; older runs
// go on reminding in the run they are in.
const reminderContinueChange = "reminders-continue-as-new"

// rotateByHand: ask operators for the new key, verify it, for a webhook
// secret wait until a genuine delivery proves it, activate it, then wait
// for the operators' confirmation that the old key is revoked at the
// provider. Until activation an operator may cancel, which changes
// nothing. A run that continued as new while it waited resumes that wait.
func (k *keyRotation) rotateByHand(ctx workflow.Context) (*contract.KeyRotationResult, error) {
	m := &k.manual
	phase := phaseAwaitKey
	if k.input.Resume != nil {
		phase = k.resume(*k.input.Resume)
	} else {
		if err := k.readActive(ctx); err != nil {
			return nil, err
		}
		k.notify(ctx, "notify-needed", KnockKeyRotationNeeded)
	}

	if phase == phaseAwaitKey {
		k.await(ctx, phaseAwaitKey, "await-key")
		if err := k.awaitOperator(ctx, "a new key", func() bool { return m.submitted != "" || m.version != 0 || k.cancelled }); err != nil {
			return nil, err
		}
		k.phase = phaseNone
		if k.cancelled {
			return k.cancelRotation(ctx)
		}
		k.status.Detail = "key submitted by " + m.submittedBy
		phase = phaseAwaitRevocation
		switch provider, _ := providers.Lookup(k.input.Provider); {
		case m.version == 0:
			// A run started before keys stayed out of histories.
			secret := m.submitted
			m.submitted = ""
			if err := k.storeAndActivate(ctx, secret, ""); err != nil {
				return nil, err
			}
		case provider.Webhook && k.byVersion:
			phase = phaseAwaitProof
			k.status.Detail = "waiting for a delivery signed with both the old and the new secret (set the new one at the provider)"
		default:
			if err := k.activate(ctx, m.version); err != nil {
				return nil, err
			}
		}
	}

	if phase == phaseAwaitProof {
		k.await(ctx, phaseAwaitProof, "await-proof")
		if err := k.awaitOperator(ctx, "a delivery signed with the new secret", func() bool { return m.proven || k.cancelled }); err != nil {
			return nil, err
		}
		k.phase = phaseNone
		if k.cancelled {
			return k.cancelRotation(ctx)
		}
		k.status.Detail = "a genuine delivery verified with the new secret"
		if err := k.activate(ctx, m.version); err != nil {
			return nil, err
		}
	}

	k.await(ctx, phaseAwaitRevocation, "await-old-key-revoked")
	if err := k.awaitOperator(ctx, "revocation of the old key", func() bool { return m.revokedKnown }); err != nil {
		return nil, err
	}
	k.phase = phaseNone
	k.status.Detail = "old key revoked at the provider, confirmed by " + m.revokedBy
	return k.rotated(ctx, k.status.Detail, "confirmed_by", m.revokedBy)
}

// resume takes over the state of the run this one continues and returns
// the wait to resume.
func (k *keyRotation) resume(r contract.KeyRotationResume) string {
	k.oldVersion, k.oldExternalID, k.newVersion = r.OldVersion, r.OldExternalID, r.NewVersion
	k.manual.version, k.manual.submittedBy = r.SubmittedVersion, r.SubmittedBy
	k.manual.reminders = r.Reminders
	k.status.Detail = r.Detail
	if k.newVersion != 0 {
		k.status.State = "activated"
	}
	return r.Phase
}

// cancelRotation ends a rotation an operator cancelled before activation:
// the submitted key, if any, is revoked; the old key stays as it was.
func (k *keyRotation) cancelRotation(ctx workflow.Context) (*contract.KeyRotationResult, error) {
	if k.manual.version != 0 {
		if err := k.revokePending(ctx, "revoke-submitted", k.manual.version); err != nil {
			return nil, err
		}
	}
	return k.finish(ctx, "cancelled", "cancelled by "+k.cancelledBy+"; the old key stays active"), nil
}

// awaitOperator waits for done, reminding operators every ReminderEvery.
// After RemindersPerRun reminders in one run it continues as new (the
// returned error is the ContinueAsNewError), so that a rotation waiting
// for months keeps a short history.
func (k *keyRotation) awaitOperator(ctx workflow.Context, what string, done func() bool) error {
	m := &k.manual
	for {
		ok, err := workflow.AwaitWithTimeout(ctx, k.input.ReminderEvery, done)
		if err != nil || ok {
			return err
		}
		m.reminders++
		m.runReminders++
		k.notify(ctx, fmt.Sprintf("reminder-%d", m.reminders), KnockKeyRotationReminder,
			"waiting_for", what, "reminder", m.reminders)
		if m.runReminders >= k.remindersPerRun() &&
			workflow.GetVersion(ctx, reminderContinueChange, workflow.DefaultVersion, 1) >= 1 {
			if err := k.continueWaiting(ctx, done); err != nil || done() {
				return err
			}
		}
	}
}

func (k *keyRotation) remindersPerRun() int {
	if k.input.RemindersPerRun > 0 {
		return k.input.RemindersPerRun
	}
	return contract.DefaultKeyRotationRemindersPerRun
}

// continueWaiting continues the rotation as new in the wait it is in. It
// first lets every Update being handled finish (a key being verified) and
// takes the signals already delivered: either may end the wait (done), and
// then it returns nil for the run to go on. Otherwise the returned error is
// the ContinueAsNewError carrying the rotation's state.
func (k *keyRotation) continueWaiting(ctx workflow.Context, done func() bool) error {
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	k.drainSignals()
	if done() {
		return nil
	}
	m := &k.manual
	next := k.input
	next.Resume = &contract.KeyRotationResume{
		Phase: k.phase, OldVersion: k.oldVersion, OldExternalID: k.oldExternalID, NewVersion: k.newVersion,
		SubmittedVersion: m.version, SubmittedBy: m.submittedBy, Reminders: m.reminders, Detail: k.status.Detail,
	}
	workflow.GetLogger(ctx).Info("Continuing the wait as new", "phase", k.phase, "reminders", m.reminders,
		"historyLength", workflow.GetInfo(ctx).GetCurrentHistoryLength())
	return workflow.NewContinueAsNewError(ctx, contract.KeyRotationType, next)
}

// validateKey rejects a submitted key before it reaches history: wrong
// phase, empty or obviously malformed. Messages never quote the key.
func (k *keyRotation) validateKey(_ workflow.Context, in contract.SubmitKeyInput) error {
	provider, _ := providers.Lookup(k.input.Provider)
	switch {
	case k.phase != phaseAwaitKey || k.manual.submitted != "" || k.manual.version != 0:
		return errors.New("the rotation is not waiting for a key")
	case k.manual.verifying:
		return errors.New("another key is being verified")
	case contract.ValidateOperator(in.Operator) != nil:
		return contract.ValidateOperator(in.Operator)
	case in.Version > 0 && in.Secret == "":
		// Stored by the API or CLI, which checked its form first.
		return nil
	case in.Version > 0:
		return errors.New("submit a key's version or the key, not both")
	case k.byVersion:
		return errors.New("submit the key through crmflow's API or CLI, which store it and send its version")
	case in.Secret == "":
		return errors.New("key is empty")
	case len(in.Secret) < 16 || len(in.Secret) > 1024:
		return fmt.Errorf("key of %d characters is malformed", len(in.Secret))
	}
	for _, r := range in.Secret {
		if r <= ' ' || r >= 0x7f {
			return errors.New("key holds whitespace, control or non-ASCII characters")
		}
	}
	if provider.HasKeyPrefix(in.Secret) {
		return nil
	}
	return fmt.Errorf("a %s key starts with %s", k.input.Provider, strings.Join(provider.KeyPrefixes, " or "))
}

// submitKey verifies the key with the provider. A valid key is taken for the
// main flow to activate; an invalid one is forgotten (the API that stored it
// revokes it), and so is any key of a rotation an operator cancelled while
// it was verified.
func (k *keyRotation) submitKey(ctx workflow.Context, in contract.SubmitKeyInput) (contract.SubmitKeyResult, error) {
	m := &k.manual
	if m.verifying || m.submitted != "" || m.version != 0 || k.phase != phaseAwaitKey {
		return contract.SubmitKeyResult{}, errors.New("the rotation is not waiting for a key")
	}
	m.verifying = true
	defer func() { m.verifying = false }()
	check := activities.VerifyKeyInput{Provider: k.input.Provider, Secret: in.Secret}
	if in.Version > 0 {
		check = activities.VerifyKeyInput{Provider: k.input.Provider, Name: k.input.Name, Version: in.Version}
	}
	var out activities.VerifyKeyOutput
	err := workflow.ExecuteActivity(keyVerifyOptions.context(ctx), verify.VerifyKey, check).Get(ctx, &out)
	if err != nil {
		return contract.SubmitKeyResult{}, fmt.Errorf("could not verify the key: %w", err)
	}
	if k.cancelled {
		// The run waited for this answer before it ended (awaitHandlers);
		// the caller revokes the key it stored.
		return contract.SubmitKeyResult{}, errors.New("the rotation was cancelled while the key was verified; the key was not taken")
	}
	if !out.Valid {
		k.status.Detail = "a key submitted by " + in.Operator + " was rejected: " + out.Reason
		return contract.SubmitKeyResult{Reason: out.Reason}, nil
	}
	m.submitted, m.version, m.submittedBy = in.Secret, in.Version, in.Operator
	return contract.SubmitKeyResult{Valid: true}, nil
}

// validateRevoked admits a KeyRotationRevokedUpdate only while the run waits
// for the old key's revocation and has not heard of it yet.
func (k *keyRotation) validateRevoked(_ workflow.Context, in contract.KeyRevokedInput) error {
	if err := contract.ValidateOperator(in.Operator); err != nil {
		return err
	}
	if k.phase != phaseAwaitRevocation || k.manual.revokedKnown {
		return errors.New("the rotation is not waiting for the old key's revocation")
	}
	return nil
}

// confirmRevoked records an operator's word that the old key is revoked at
// the provider; the main flow then revokes it in the store.
func (k *keyRotation) confirmRevoked(_ workflow.Context, in contract.KeyRevokedInput) error {
	k.manual.revokedKnown, k.manual.revokedBy = true, in.Operator
	return nil
}
