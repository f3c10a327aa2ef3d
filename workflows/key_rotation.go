package workflows

// Key rotation in four files: this one holds the entry point and the core
// every mode shares (status, parker, phase, the credential store steps,
// grace, notifications); key_rotation_resend.go, key_rotation_token.go and
// key_rotation_manual.go each hold one mode and the state only it needs.

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/providers"
)

// Knock workflows of key rotation; all go to OperatorsRecipient.
const (
	KnockKeyRotated          = "key-rotated"
	KnockKeyRotationNeeded   = "key-rotation-needed"
	KnockKeyRotationReminder = "key-rotation-reminder"
	KnockKeyRotationFailed   = "key-rotation-failed"
)

var rotationCreds *activities.CredentialActivities

// Phases in which the run accepts an Update. Every mode's Update is
// registered on every run, so each validator checks the phase to reject an
// Update the run is not waiting for.
const (
	phaseNone             = ""
	phaseAwaitKey         = "awaiting-key"
	phaseAwaitProof       = "awaiting-proof"
	phaseAwaitRevocation  = "awaiting-revocation"
	phaseAwaitTokenPickup = "awaiting-token-pickup"
	phaseAwaitTokenUse    = "awaiting-token-use"
)

// keyMaterialChange is the GetVersion change id of keys kept out of
// histories: runs of version 1 and later carry only version numbers of keys
// (stored in the credential store by the edge or by the activity that made
// them), activate a webhook signing secret only once a genuine delivery
// verified with it, and keep the old start-API token until the new one is
// seen in use. Older runs keep what they did.
const keyMaterialChange = "key-material-by-version"

// keyRotation is one run's state; its methods are the steps. Secrets live
// only in fields no query, memo, search attribute or log reads. The fields
// above the modes' are shared by every mode.
type keyRotation struct {
	input  contract.KeyRotationInput
	status contract.Status
	parker *parker
	phase  string

	// oldVersion (and the provider's id of it, oldExternalID) is the
	// version active when the rotation began, the one it retires.
	oldVersion    int
	oldExternalID string
	newVersion    int

	// byVersion is true for runs that keep keys out of their history
	// (keyMaterialChange version 1).
	byVersion bool
	// cancelled is set by KeyRotationCancelUpdate.
	cancelled   bool
	cancelledBy string

	// Each mode's own state; a run uses at most one, but every mode's
	// Update validators read theirs on every run.
	handout tokenHandout
	manual  manualSubmission

	// The edge's signals (see listen); nil in runs that take none.
	tokenSeen, secretProven workflow.ReceiveChannel
}

// KeyRotation rotates one provider's key (workflow ID KeyRotationID):
// automatically for Resend and crmflow's start-API token, with an operator
// for Stripe, Knock, SimpleLogin and the webhook signing secrets. Nothing is
// activated before the new key is verified, so any failure before activation
// keeps the old key in use; failed steps park for an operator.
func KeyRotation(ctx workflow.Context, in contract.KeyRotationInput) (_ *contract.KeyRotationResult, err error) {
	in, err = keyRotationDefaults(in)
	if err != nil {
		return nil, err
	}

	k := &keyRotation{input: in, status: contract.Status{Step: "start", State: "pending"}}
	p, err := newParker(ctx, &k.status, nil)
	if err != nil {
		return nil, err
	}
	defer func() { p.settle(err) }()
	k.parker = p
	if err := k.registerUpdates(ctx); err != nil {
		return nil, err
	}
	k.byVersion = workflow.GetVersion(ctx, keyMaterialChange, workflow.DefaultVersion, 1) >= 1
	if k.byVersion {
		k.listen(ctx)
	}
	upsert(ctx, contract.ProviderKey.ValueSet(in.Provider))

	var res *contract.KeyRotationResult
	provider, _ := providers.Lookup(in.Provider)
	switch provider.Rotation {
	case providers.RotationAutomatic:
		res, err = k.rotateResend(ctx)
	case providers.RotationToken:
		if k.byVersion {
			res, err = k.rotateTokenInStore(ctx)
		} else {
			res, err = k.rotateToken(ctx)
		}
	default:
		res, err = k.rotateByHand(ctx)
	}
	awaitHandlers(ctx)
	if errors.Is(err, errSkipped) {
		return k.finish(ctx, "skipped", "an operator skipped a step the rotation could not go on without"), nil
	}
	return res, err
}

// keyRotationDefaults fills in the input's defaults and rejects a provider
// no mode rotates, before anything is registered or recorded.
func keyRotationDefaults(in contract.KeyRotationInput) (contract.KeyRotationInput, error) {
	if err := contract.ValidateKey("provider", in.Provider); err != nil {
		return in, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", nil)
	}
	provider, ok := providers.Lookup(in.Provider)
	if !ok || !provider.Rotated() {
		return in, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("provider %q has no key rotation", in.Provider), "InvalidInput", nil)
	}
	if in.Name == "" {
		in.Name = provider.Key.Name
	}
	if in.Grace <= 0 {
		in.Grace = contract.DefaultKeyRotationGrace
	}
	if in.ReminderEvery <= 0 {
		in.ReminderEvery = contract.DefaultKeyRotationReminderEvery
	}
	if r := in.Resume; r != nil {
		// Only a wait for an operator continues as new.
		switch {
		case provider.Rotation != providers.RotationManual:
			return in, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("the %s rotation does not wait for operators, so it cannot resume", in.Provider), "InvalidInput", nil)
		case r.Phase != phaseAwaitKey && r.Phase != phaseAwaitProof && r.Phase != phaseAwaitRevocation:
			return in, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("a rotation cannot resume in phase %q", r.Phase), "InvalidInput", nil)
		}
	}
	return in, nil
}

// registerUpdates registers the Update handlers of every mode on every run,
// whatever its mode: an Update of another mode then gets its validator's
// answer ("not waiting"), not an unknown-Update error. The handlers and
// validators live with their mode.
func (k *keyRotation) registerUpdates(ctx workflow.Context) error {
	updates := []struct {
		name               string
		handler, validator any
	}{
		{contract.KeyRotationTokenUpdate, k.handOutToken, k.validateTokenRequest},
		{contract.KeyRotationSubmitKeyUpdate, k.submitKey, k.validateKey},
		{contract.KeyRotationRevokedUpdate, k.confirmRevoked, k.validateRevoked},
		{contract.KeyRotationTokenAckUpdate, k.acknowledgeToken, k.validateTokenAck},
		{contract.KeyRotationCancelUpdate, k.cancel, k.validateCancel},
	}
	for _, u := range updates {
		err := workflow.SetUpdateHandlerWithOptions(ctx, u.name, u.handler,
			workflow.UpdateHandlerOptions{Validator: u.validator})
		if err != nil {
			return fmt.Errorf("register %s: %w", u.name, err)
		}
	}
	return nil
}

// await opens phase, in which the run accepts that phase's Update, and
// shows it as the run's state and step.
func (k *keyRotation) await(ctx workflow.Context, phase, step string) {
	k.phase = phase
	k.status.State = phase
	k.parker.setStep(ctx, step)
}

// readActive notes the version in use now, the one the rotation retires.
func (k *keyRotation) readActive(ctx workflow.Context) error {
	in := activities.ActiveCredentialInput{Provider: k.input.Provider, Name: k.input.Name}
	var out activities.ActiveCredentialOutput
	err := k.parker.step(ctx, "read-active", storeOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, rotationCreds.ActiveCredential, in).Get(ctx, &out)
	})
	if err != nil {
		return err
	}
	k.oldVersion, k.oldExternalID = out.Version, out.ExternalID
	return nil
}

// storeAndActivate stores secret as a pending version and activates it,
// for runs started before keys stayed out of histories. The dead letter of
// a failed step records where, never the secret.
func (k *keyRotation) storeAndActivate(ctx workflow.Context, secret, externalID string) error {
	in := activities.StoreCredentialInput{Provider: k.input.Provider, Name: k.input.Name, Secret: secret, ExternalID: externalID}
	redacted := map[string]string{"provider": k.input.Provider, "name": k.input.Name, "external_id": externalID}
	var stored activities.StoreCredentialOutput
	err := k.parker.step(ctx, "store-key", storeOptions, redacted, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, rotationCreds.StoreCredential, in).Get(ctx, &stored)
	})
	if err != nil {
		return err
	}
	return k.activate(ctx, stored.Version)
}

// activate makes a stored version the active one; the version active until
// now turns retiring for the grace period.
func (k *keyRotation) activate(ctx workflow.Context, version int) error {
	ref := k.ref(version)
	err := k.parker.step(ctx, "activate-key", storeOptions, ref, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, rotationCreds.ActivateCredential, ref).Get(ctx, nil)
	})
	if err != nil {
		return err
	}
	k.newVersion = version
	k.status.State = "activated"
	return nil
}

// revokePending revokes a stored version the rotation will not use (an
// invalid or cancelled submission, an unused token), so it is never
// accepted; skipping it leaves it pending, which nothing uses.
func (k *keyRotation) revokePending(ctx workflow.Context, step string, version int) error {
	ref := k.ref(version)
	err := k.parker.step(ctx, step, storeOptions, ref, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, rotationCreds.RevokeCredential, ref).Get(ctx, nil)
	})
	if errors.Is(err, errSkipped) {
		return nil
	}
	return err
}

// listen takes the rotation's signals for as long as the run lives: the
// edge tells it when a new start-API token is first used and when a
// submitted webhook secret verified a genuine delivery. Each only sets
// state the main flow waits on; a stale version is ignored.
func (k *keyRotation) listen(ctx workflow.Context) {
	k.tokenSeen = workflow.GetSignalChannel(ctx, contract.KeyRotationTokenSeenSignal)
	k.secretProven = workflow.GetSignalChannel(ctx, contract.KeyRotationSecretProvenSignal)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var v contract.KeyVersion
			sel := workflow.NewSelector(ctx)
			sel.AddReceive(k.tokenSeen, func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(ctx, &v)
				k.onTokenSeen(v)
			})
			sel.AddReceive(k.secretProven, func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(ctx, &v)
				k.onSecretProven(v)
			})
			sel.Select(ctx)
		}
	})
}

// onTokenSeen notes the first use of the new start-API token.
func (k *keyRotation) onTokenSeen(v contract.KeyVersion) {
	if v.Version != 0 && v.Version == k.handout.version {
		k.handout.seen = true
	}
}

// onSecretProven notes a genuine delivery verified with the submitted
// webhook secret.
func (k *keyRotation) onSecretProven(v contract.KeyVersion) {
	if v.Version != 0 && v.Version == k.manual.version {
		k.manual.proven = true
	}
}

// drainSignals takes the signals delivered but not yet received, as listen
// would, before the run continues as new and they would be lost with it.
func (k *keyRotation) drainSignals() {
	if k.tokenSeen == nil {
		return
	}
	var v contract.KeyVersion
	for k.tokenSeen.ReceiveAsync(&v) {
		k.onTokenSeen(v)
	}
	for k.secretProven.ReceiveAsync(&v) {
		k.onSecretProven(v)
	}
}

// validateCancel admits KeyRotationCancelUpdate only while the run waits
// for an operator's key or for a submitted secret's proof: before anything
// was activated, so cancelling changes nothing.
func (k *keyRotation) validateCancel(_ workflow.Context, in contract.KeyRevokedInput) error {
	if err := contract.ValidateOperator(in.Operator); err != nil {
		return err
	}
	if !k.byVersion || (k.phase != phaseAwaitKey && k.phase != phaseAwaitProof) || k.cancelled {
		return errors.New("the rotation is not waiting for a key or its proof, so it cannot be cancelled")
	}
	return nil
}

// cancel records an operator's decision to end the rotation; the main flow
// revokes what was submitted and ends.
func (k *keyRotation) cancel(_ workflow.Context, in contract.KeyRevokedInput) error {
	k.cancelled, k.cancelledBy = true, in.Operator
	return nil
}

// grace waits while clients still holding the old key move over.
func (k *keyRotation) grace(ctx workflow.Context) error {
	k.status.State = "grace"
	k.parker.setStep(ctx, "grace")
	return workflow.Sleep(ctx, k.input.Grace)
}

// revokeOld revokes the version that was active when the rotation began.
func (k *keyRotation) revokeOld(ctx workflow.Context) error {
	if k.oldVersion == 0 || k.oldVersion == k.newVersion {
		return nil
	}
	ref := k.ref(k.oldVersion)
	err := k.parker.step(ctx, "revoke-old", storeOptions, ref, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, rotationCreds.RevokeCredential, ref).Get(ctx, nil)
	})
	if errors.Is(err, errSkipped) {
		return nil
	}
	return err
}

// notify tells operators; a failed notification parks, and a skipped one is
// not an error. Reminders use it too, so a broken Knock shows up at once.
// extra holds more template data as key, value pairs.
func (k *keyRotation) notify(ctx workflow.Context, step, knockWorkflow string, extra ...any) {
	data := map[string]any{
		"provider": k.input.Provider, "name": k.input.Name, "workflow_id": contract.KeyRotationID(k.input.Provider),
		"requested_by": k.input.RequestedBy, "old_version": k.oldVersion, "new_version": k.newVersion,
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if key, ok := extra[i].(string); ok {
			data[key] = extra[i+1]
		}
	}
	in := activities.NotifyInput{
		Workflow:       knockWorkflow,
		Recipients:     []string{OperatorsRecipient},
		Data:           data,
		IdempotencyKey: k.key(ctx, step),
	}
	err := k.parker.step(ctx, step, knockOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, knock.Notify, in).Get(ctx, nil)
	})
	if err != nil && !errors.Is(err, errSkipped) {
		workflow.GetLogger(ctx).Error("Could not notify operators", "step", step, "error", err)
	}
}

// rotated ends a rotation whose new key is active and whose old key may go:
// it revokes the old version, tells operators and finishes with detail.
// extra is notify's.
func (k *keyRotation) rotated(ctx workflow.Context, detail string, extra ...any) (*contract.KeyRotationResult, error) {
	if err := k.revokeOld(ctx); err != nil {
		return nil, err
	}
	k.notify(ctx, "notify-rotated", KnockKeyRotated, extra...)
	return k.finish(ctx, "rotated", detail), nil
}

// key is a step's idempotency key: workflow ID, run ID (the workflow ID is
// reused by every rotation of the provider) and step.
func (k *keyRotation) key(ctx workflow.Context, step string) string {
	return contract.KeyRotationID(k.input.Provider) + "/" + workflow.GetInfo(ctx).WorkflowExecution.RunID + "/" + step
}

// ref names one version of the run's credential.
func (k *keyRotation) ref(version int) activities.CredentialRef {
	return activities.CredentialRef{Provider: k.input.Provider, Name: k.input.Name, Version: version}
}

// finish records the run's end state in its status and result.
func (k *keyRotation) finish(ctx workflow.Context, state, detail string) *contract.KeyRotationResult {
	k.status.State, k.status.Detail = state, detail
	k.parker.setStep(ctx, "done")
	return &contract.KeyRotationResult{State: state, NewVersion: k.newVersion}
}
