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
)

// Knock workflows of key rotation; all go to OperatorsRecipient.
const (
	KnockKeyRotated          = "key-rotated"
	KnockKeyRotationNeeded   = "key-rotation-needed"
	KnockKeyRotationReminder = "key-rotation-reminder"
	KnockKeyRotationFailed   = "key-rotation-failed"
)

// hitlProviders rotate with an operator: they submit the new key and confirm
// the old one was revoked. Each maps to the prefixes a key of it starts with
// (none: any).
var hitlProviders = []struct {
	provider string
	prefixes []string
}{
	{"stripe", []string{"sk_", "rk_"}},
	{"knock", []string{"sk_"}},
	{"simplelogin", nil},
	{"stripe_webhook", []string{"whsec_"}},
	{"clerk_webhook", []string{"whsec_"}},
}

// Defaults of KeyRotationInput and the token handout.
const (
	// KeyRotationTokenPickupTimeout is how long a new start-API token waits
	// for an operator to collect it; uncollected, the rotation is rolled back.
	KeyRotationTokenPickupTimeout = time.Hour
	defaultCredentialName         = "api_key"
	crmflowCredentialName         = "api_token"
	startTokenBytes               = 32
)

// keyRotationResendOptions: CreateAPIKey cleans up an earlier attempt's key
// before creating, and DeleteAPIKey takes 404 as done, so retries are safe.
var keyRotationResendOptions = activityPolicy{provider: contract.ProviderResend, options: workflow.ActivityOptions{
	StartToCloseTimeout: 90 * time.Second,
	RetryPolicy:         backoff(8),
}}

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

var (
	rotationCreds  *activities.CredentialActivities
	rotationResend *activities.ResendActivities
	verify         *activities.KeyVerifier
)

// Phases in which the run accepts an Update.
const (
	phaseNone              = ""
	phaseAwaitKey          = "awaiting-key"
	phaseAwaitRevocation   = "awaiting-revocation"
	phaseAwaitTokenPickup  = "awaiting-token-pickup"
	keyRotationStateFailed = "failed_verification"
)

// keyRotation is one run's state; its methods are the steps. Secrets live
// only in fields no query, memo, search attribute or log reads.
type keyRotation struct {
	input  contract.KeyRotationInput
	status contract.Status
	steps  *parker
	phase  string

	oldVersion    int
	oldExternalID string
	newVersion    int
	reminders     int

	// crmflow token handout.
	token     string
	handedOut bool

	// human-in-the-loop key submission.
	verifying    bool
	submitted    string
	submittedBy  string
	revokedBy    string
	revokedKnown bool
}

// KeyRotation rotates one provider's key (workflow ID KeyRotationID):
// automatically for Resend and crmflow's start-API token, with an operator
// for Stripe, Knock, SimpleLogin and the webhook signing secrets. Nothing is
// activated before the new key is verified, so any failure before activation
// keeps the old key in use; failed steps park for an operator.
func KeyRotation(ctx workflow.Context, in contract.KeyRotationInput) (*contract.KeyRotationResult, error) {
	if err := contract.ValidateKey("provider", in.Provider); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", nil)
	}
	if in.Name == "" {
		in.Name = defaultCredentialName
		if in.Provider == contract.KeyRotationCrmflow {
			in.Name = crmflowCredentialName
		}
	}
	if in.Grace <= 0 {
		in.Grace = contract.DefaultKeyRotationGrace
	}
	if in.ReminderEvery <= 0 {
		in.ReminderEvery = contract.DefaultKeyRotationReminderEvery
	}
	_, hitl := keyPrefixes(in.Provider)
	if !hitl && in.Provider != contract.KeyRotationResend && in.Provider != contract.KeyRotationCrmflow {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("provider %q has no key rotation", in.Provider), "InvalidInput", nil)
	}

	k := &keyRotation{input: in, status: contract.Status{Step: "start", State: "pending"}}
	if err := workflow.SetQueryHandler(ctx, contract.StatusQuery, func() (contract.Status, error) { return k.status, nil }); err != nil {
		return nil, err
	}
	steps, err := newParker(ctx, &k.status)
	if err != nil {
		return nil, err
	}
	k.steps = steps
	if err := k.registerUpdates(ctx); err != nil {
		return nil, err
	}
	upsert(ctx, contract.ProviderKey.ValueSet(in.Provider))

	var res *contract.KeyRotationResult
	switch {
	case in.Provider == contract.KeyRotationResend:
		res, err = k.rotateResend(ctx)
	case in.Provider == contract.KeyRotationCrmflow:
		res, err = k.rotateToken(ctx)
	default:
		res, err = k.rotateByHand(ctx)
	}
	if errors.Is(err, errSkipped) {
		return k.finish(ctx, "skipped", "an operator skipped a step the rotation could not go on without"), nil
	}
	return res, err
}

// keyPrefixes returns the prefixes a human-in-the-loop provider's keys start
// with, and whether provider is one.
func keyPrefixes(provider string) ([]string, bool) {
	for _, p := range hitlProviders {
		if p.provider == provider {
			return p.prefixes, true
		}
	}
	return nil, false
}

// rotateResend: create → verify → store → activate → grace → delete the
// old key at Resend → revoke the old version → notify.
func (k *keyRotation) rotateResend(ctx workflow.Context) (*contract.KeyRotationResult, error) {
	if err := k.readActive(ctx); err != nil {
		return nil, err
	}
	create := activities.CreateAPIKeyInput{
		Name:       activities.ResendKeyName(workflow.GetInfo(ctx).WorkflowExecution.RunID),
		Permission: activities.ResendFullAccess,
	}
	var created activities.CreateAPIKeyOutput
	err := k.steps.step(ctx, "create-key", keyRotationResendOptions, create, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, rotationResend.CreateAPIKey, create).Get(ctx, &created)
	})
	if err != nil {
		return nil, err
	}

	var verdict activities.VerifyAPIKeyOutput
	err = k.steps.step(ctx, "verify-key", keyRotationResendOptions, map[string]string{"key_id": created.KeyID},
		func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(ctx, rotationResend.VerifyAPIKey,
				activities.VerifyAPIKeyInput{Token: created.Token}).Get(ctx, &verdict)
		})
	if err != nil {
		return nil, k.abandonResendKey(ctx, created.KeyID, err)
	}
	if !verdict.Valid || verdict.Restricted {
		reason := verdict.Reason
		if verdict.Valid {
			reason = "the new key is restricted to sending"
		}
		if err := k.deleteResendKey(ctx, "delete-new-key", created.KeyID); err != nil && !errors.Is(err, errSkipped) {
			return nil, err
		}
		k.notify(ctx, "notify-failed", KnockKeyRotationFailed, "reason", reason)
		return k.finish(ctx, keyRotationStateFailed, "Resend did not accept the new key ("+reason+"); the old key stays active"), nil
	}

	if err := k.storeAndActivate(ctx, created.Token.Reveal(), created.KeyID); err != nil {
		return nil, k.abandonResendKey(ctx, created.KeyID, err)
	}
	if err := k.grace(ctx); err != nil {
		return nil, err
	}
	var extra []any
	switch {
	case k.oldVersion == 0:
	case k.oldExternalID == "":
		extra = []any{"manual_action", "the old Resend key has no recorded id: delete it in the Resend dashboard"}
	default:
		if err := k.deleteResendKey(ctx, "delete-old-key", k.oldExternalID); errors.Is(err, errSkipped) {
			extra = []any{"manual_action", "deleting the old Resend key was skipped: delete it in the Resend dashboard"}
		} else if err != nil {
			return nil, err
		}
	}
	if err := k.revokeOld(ctx); err != nil {
		return nil, err
	}
	k.notify(ctx, "notify-rotated", KnockKeyRotated, extra...)
	return k.finish(ctx, "rotated", ""), nil
}

// abandonResendKey deletes a created key that will not be used, when the
// rotation cannot go on (err is errSkipped), so no unknown key is left at
// Resend. Other errors (cancellation, abort) are returned unchanged.
func (k *keyRotation) abandonResendKey(ctx workflow.Context, keyID string, err error) error {
	if !errors.Is(err, errSkipped) || k.newVersion != 0 {
		return err
	}
	if derr := k.deleteResendKey(ctx, "delete-new-key", keyID); derr != nil && !errors.Is(derr, errSkipped) {
		return derr
	}
	return err
}

func (k *keyRotation) deleteResendKey(ctx workflow.Context, step, keyID string) error {
	in := activities.DeleteAPIKeyInput{KeyID: keyID}
	return k.steps.step(ctx, step, keyRotationResendOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, rotationResend.DeleteAPIKey, in).Get(ctx, nil)
	})
}

// rotateToken: generate → store → activate (the old token turns retiring)
// → hand the token out once through KeyRotationTokenUpdate → grace →
// revoke the old version → notify. A token nobody collects within
// KeyRotationTokenPickupTimeout is rolled back: the old token is active
// again and the new one revoked.
func (k *keyRotation) rotateToken(ctx workflow.Context) (*contract.KeyRotationResult, error) {
	if err := k.readActive(ctx); err != nil {
		return nil, err
	}
	var gen activities.GenerateTokenOutput
	in := activities.GenerateTokenInput{Bytes: startTokenBytes}
	err := k.steps.step(ctx, "generate-token", storeOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, rotationCreds.GenerateToken, in).Get(ctx, &gen)
	})
	if err != nil {
		return nil, err
	}
	if err := k.storeAndActivate(ctx, gen.Token, ""); err != nil {
		return nil, err
	}
	k.token = gen.Token
	k.phase = phaseAwaitTokenPickup
	k.status.State = phaseAwaitTokenPickup
	k.steps.setStep(ctx, "await-token-pickup")
	collected, err := workflow.AwaitWithTimeout(ctx, KeyRotationTokenPickupTimeout, func() bool { return k.handedOut })
	k.phase, k.token = phaseNone, ""
	if err != nil {
		return nil, err
	}
	if !collected {
		return k.rollBackToken(ctx)
	}
	if err := k.grace(ctx); err != nil {
		return nil, err
	}
	if err := k.revokeOld(ctx); err != nil {
		return nil, err
	}
	k.notify(ctx, "notify-rotated", KnockKeyRotated)
	return k.finish(ctx, "rotated", ""), nil
}

// rollBackToken makes the old token active again and revokes the new one,
// which nobody holds.
func (k *keyRotation) rollBackToken(ctx workflow.Context) (*contract.KeyRotationResult, error) {
	if k.oldVersion != 0 {
		old := k.ref(k.oldVersion)
		err := k.steps.step(ctx, "reactivate-old", storeOptions, old, func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(ctx, rotationCreds.ActivateCredential, old).Get(ctx, nil)
		})
		if err != nil {
			return nil, err
		}
	}
	nv := k.ref(k.newVersion)
	err := k.steps.step(ctx, "revoke-new", storeOptions, nv, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, rotationCreds.RevokeCredential, nv).Get(ctx, nil)
	})
	if err != nil && !errors.Is(err, errSkipped) {
		return nil, err
	}
	k.newVersion = 0
	k.notify(ctx, "notify-failed", KnockKeyRotationFailed, "reason", "the new token was not collected")
	return k.finish(ctx, "token_not_collected", "nobody collected the new token; the old one is active again"), nil
}

// rotateByHand: ask operators for the new key, verify and activate it, then
// wait for their confirmation that the old key is revoked at the provider.
func (k *keyRotation) rotateByHand(ctx workflow.Context) (*contract.KeyRotationResult, error) {
	if err := k.readActive(ctx); err != nil {
		return nil, err
	}
	k.notify(ctx, "notify-needed", KnockKeyRotationNeeded)

	k.phase = phaseAwaitKey
	k.status.State = phaseAwaitKey
	k.steps.setStep(ctx, "await-key")
	if err := k.awaitOperator(ctx, "a new key", func() bool { return k.submitted != "" }); err != nil {
		return nil, err
	}
	k.phase = phaseNone
	secret := k.submitted
	k.submitted = ""
	k.status.Detail = "key submitted by " + k.submittedBy
	if err := k.storeAndActivate(ctx, secret, ""); err != nil {
		return nil, err
	}

	k.phase = phaseAwaitRevocation
	k.status.State = phaseAwaitRevocation
	k.steps.setStep(ctx, "await-old-key-revoked")
	if err := k.awaitOperator(ctx, "revocation of the old key", func() bool { return k.revokedKnown }); err != nil {
		return nil, err
	}
	k.phase = phaseNone
	k.status.Detail = "old key revoked at the provider, confirmed by " + k.revokedBy
	if err := k.revokeOld(ctx); err != nil {
		return nil, err
	}
	k.notify(ctx, "notify-rotated", KnockKeyRotated, "confirmed_by", k.revokedBy)
	return k.finish(ctx, "rotated", k.status.Detail), nil
}

// awaitOperator waits for done, reminding operators every ReminderEvery.
func (k *keyRotation) awaitOperator(ctx workflow.Context, what string, done func() bool) error {
	for {
		ok, err := workflow.AwaitWithTimeout(ctx, k.input.ReminderEvery, done)
		if err != nil || ok {
			return err
		}
		k.reminders++
		k.notify(ctx, fmt.Sprintf("reminder-%d", k.reminders), KnockKeyRotationReminder,
			"waiting_for", what, "reminder", k.reminders)
	}
}

// registerUpdates registers the Update handlers of every mode; each
// validator rejects an Update the run is not waiting for.
func (k *keyRotation) registerUpdates(ctx workflow.Context) error {
	err := workflow.SetUpdateHandlerWithOptions(ctx, contract.KeyRotationTokenUpdate,
		func(_ workflow.Context, req contract.KeyRotationTokenRequest) (contract.KeyRotationToken, error) {
			if k.handedOut {
				return contract.KeyRotationToken{}, errors.New("the new token was already handed out")
			}
			k.handedOut = true
			k.status.Detail = "new token handed out to " + req.Operator
			return contract.KeyRotationToken{Token: k.token, Version: k.newVersion}, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, req contract.KeyRotationTokenRequest) error {
			if err := contract.ValidateOperator(req.Operator); err != nil {
				return err
			}
			switch {
			case k.handedOut:
				return errors.New("the new token was already handed out")
			case k.phase != phaseAwaitTokenPickup:
				return errors.New("no new token is waiting to be handed out")
			}
			return nil
		}})
	if err != nil {
		return fmt.Errorf("register %s: %w", contract.KeyRotationTokenUpdate, err)
	}

	err = workflow.SetUpdateHandlerWithOptions(ctx, contract.KeyRotationSubmitKeyUpdate, k.submitKey,
		workflow.UpdateHandlerOptions{Validator: k.validateKey})
	if err != nil {
		return fmt.Errorf("register %s: %w", contract.KeyRotationSubmitKeyUpdate, err)
	}

	err = workflow.SetUpdateHandlerWithOptions(ctx, contract.KeyRotationRevokedUpdate,
		func(_ workflow.Context, in contract.KeyRevokedInput) error {
			k.revokedKnown, k.revokedBy = true, in.Operator
			return nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, in contract.KeyRevokedInput) error {
			if err := contract.ValidateOperator(in.Operator); err != nil {
				return err
			}
			switch {
			case k.phase != phaseAwaitRevocation || k.revokedKnown:
				return errors.New("the rotation is not waiting for the old key's revocation")
			}
			return nil
		}})
	if err != nil {
		return fmt.Errorf("register %s: %w", contract.KeyRotationRevokedUpdate, err)
	}
	return nil
}

// validateKey rejects a submitted key before it reaches history: wrong
// phase, empty or obviously malformed. Messages never quote the key.
func (k *keyRotation) validateKey(_ workflow.Context, in contract.SubmitKeyInput) error {
	prefixes, _ := keyPrefixes(k.input.Provider)
	switch {
	case k.phase != phaseAwaitKey || k.submitted != "":
		return errors.New("the rotation is not waiting for a key")
	case k.verifying:
		return errors.New("another key is being verified")
	case contract.ValidateOperator(in.Operator) != nil:
		return contract.ValidateOperator(in.Operator)
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
	if len(prefixes) == 0 {
		return nil
	}
	for _, p := range prefixes {
		if strings.HasPrefix(in.Secret, p) {
			return nil
		}
	}
	return fmt.Errorf("a %s key starts with %s", k.input.Provider, strings.Join(prefixes, " or "))
}

// submitKey verifies the key with the provider. A valid key is taken for the
// main flow to store and activate; an invalid one is forgotten.
func (k *keyRotation) submitKey(ctx workflow.Context, in contract.SubmitKeyInput) (contract.SubmitKeyResult, error) {
	if k.verifying || k.submitted != "" || k.phase != phaseAwaitKey {
		return contract.SubmitKeyResult{}, errors.New("the rotation is not waiting for a key")
	}
	k.verifying = true
	defer func() { k.verifying = false }()
	var out activities.VerifyKeyOutput
	err := workflow.ExecuteActivity(keyVerifyOptions.context(ctx), verify.VerifyKey,
		activities.VerifyKeyInput{Provider: k.input.Provider, Secret: in.Secret}).Get(ctx, &out)
	if err != nil {
		return contract.SubmitKeyResult{}, fmt.Errorf("could not verify the key: %w", err)
	}
	if !out.Valid {
		k.status.Detail = "a key submitted by " + in.Operator + " was rejected: " + out.Reason
		return contract.SubmitKeyResult{Reason: out.Reason}, nil
	}
	k.submitted, k.submittedBy = in.Secret, in.Operator
	return contract.SubmitKeyResult{Valid: true}, nil
}

// readActive notes the version in use now, the one the rotation retires.
func (k *keyRotation) readActive(ctx workflow.Context) error {
	in := activities.ActiveCredentialInput{Provider: k.input.Provider, Name: k.input.Name}
	var out activities.ActiveCredentialOutput
	err := k.steps.step(ctx, "read-active", storeOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, rotationCreds.ActiveCredential, in).Get(ctx, &out)
	})
	if err != nil {
		return err
	}
	k.oldVersion, k.oldExternalID = out.Version, out.ExternalID
	return nil
}

// storeAndActivate stores secret as a pending version and activates it. The
// dead letter of a failed step records where, never the secret.
func (k *keyRotation) storeAndActivate(ctx workflow.Context, secret, externalID string) error {
	in := activities.StoreCredentialInput{Provider: k.input.Provider, Name: k.input.Name, Secret: secret, ExternalID: externalID}
	redacted := map[string]string{"provider": k.input.Provider, "name": k.input.Name, "external_id": externalID}
	var stored activities.StoreCredentialOutput
	err := k.steps.step(ctx, "store-key", storeOptions, redacted, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, rotationCreds.StoreCredential, in).Get(ctx, &stored)
	})
	if err != nil {
		return err
	}
	ref := k.ref(stored.Version)
	err = k.steps.step(ctx, "activate-key", storeOptions, ref, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, rotationCreds.ActivateCredential, ref).Get(ctx, nil)
	})
	if err != nil {
		return err
	}
	k.newVersion = stored.Version
	k.status.State = "activated"
	return nil
}

// grace waits while clients still holding the old key move over.
func (k *keyRotation) grace(ctx workflow.Context) error {
	k.status.State = "grace"
	k.steps.setStep(ctx, "grace")
	return workflow.Sleep(ctx, k.input.Grace)
}

// revokeOld revokes the version that was active when the rotation began.
func (k *keyRotation) revokeOld(ctx workflow.Context) error {
	if k.oldVersion == 0 || k.oldVersion == k.newVersion {
		return nil
	}
	ref := k.ref(k.oldVersion)
	err := k.steps.step(ctx, "revoke-old", storeOptions, ref, func(ctx workflow.Context) error {
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
	err := k.steps.step(ctx, step, knockOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, knock.Notify, in).Get(ctx, nil)
	})
	if err != nil && !errors.Is(err, errSkipped) {
		workflow.GetLogger(ctx).Error("Could not notify operators", "step", step, "error", err)
	}
}

// key is a step's idempotency key: workflow ID, run ID (the workflow ID is
// reused by every rotation of the provider) and step.
func (k *keyRotation) key(ctx workflow.Context, step string) string {
	return contract.KeyRotationID(k.input.Provider) + "/" + workflow.GetInfo(ctx).WorkflowExecution.RunID + "/" + step
}

func (k *keyRotation) ref(version int) activities.CredentialRef {
	return activities.CredentialRef{Provider: k.input.Provider, Name: k.input.Name, Version: version}
}

func (k *keyRotation) finish(ctx workflow.Context, state, detail string) *contract.KeyRotationResult {
	k.status.State, k.status.Detail = state, detail
	k.steps.setStep(ctx, "done")
	return &contract.KeyRotationResult{State: state, NewVersion: k.newVersion}
}
