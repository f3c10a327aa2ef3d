package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
)

// Automatic rotation of the Resend API key: crmflow creates the new key at
// Resend itself, so no operator takes part. It needs no state of its own
// beyond the core's: the old key's Resend id comes from readActive.

// keyRotationStateFailed ends a rotation whose new key the provider refused;
// the old key stays active.
const keyRotationStateFailed = "failed_verification"

// keyRotationResendOptions: CreateAPIKey cleans up an earlier attempt's key
// before creating, and DeleteAPIKey takes 404 as done, so retries are safe.
var keyRotationResendOptions = activityPolicy{provider: contract.ProviderResend, options: workflow.ActivityOptions{
	StartToCloseTimeout: 90 * time.Second,
	RetryPolicy:         backoff(8),
}}

var rotationResend *activities.ResendActivities

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
	if k.byVersion {
		// The new key goes from Resend's answer straight into the store.
		create.StoreAs = &activities.CredentialRef{Provider: k.input.Provider, Name: k.input.Name}
	}
	var created activities.CreateAPIKeyOutput
	err := k.parker.step(ctx, "create-key", keyRotationResendOptions, create, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, rotationResend.CreateAPIKey, create).Get(ctx, &created)
	})
	if err != nil {
		return nil, err
	}

	check := activities.VerifyAPIKeyInput{Token: created.Token}
	if created.Version != 0 {
		check = activities.VerifyAPIKeyInput{Key: &activities.CredentialRef{
			Provider: k.input.Provider, Name: k.input.Name, Version: created.Version}}
	}
	var verdict activities.VerifyAPIKeyOutput
	err = k.parker.step(ctx, "verify-key", keyRotationResendOptions, map[string]string{"key_id": created.KeyID},
		func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(ctx, rotationResend.VerifyAPIKey, check).Get(ctx, &verdict)
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
		if created.Version != 0 {
			if err := k.revokePending(ctx, "revoke-new", created.Version); err != nil {
				return nil, err
			}
		}
		k.notify(ctx, "notify-failed", KnockKeyRotationFailed, "reason", reason)
		return k.finish(ctx, keyRotationStateFailed, "Resend did not accept the new key ("+reason+"); the old key stays active"), nil
	}

	if created.Version != 0 {
		err = k.activate(ctx, created.Version)
	} else {
		err = k.storeAndActivate(ctx, created.Token.Reveal(), created.KeyID)
	}
	if err != nil {
		return nil, k.abandonResendKey(ctx, created.KeyID, err)
	}
	if err := k.grace(ctx); err != nil {
		return nil, err
	}
	extra, err := k.deleteOldResendKey(ctx)
	if err != nil {
		return nil, err
	}
	return k.rotated(ctx, "", extra...)
}

// deleteOldResendKey deletes the retired key at Resend. Where that cannot
// be done (no id recorded, or an operator skipped it) the rotation still
// ends, and the returned notify data tells operators to do it by hand.
func (k *keyRotation) deleteOldResendKey(ctx workflow.Context) ([]any, error) {
	switch {
	case k.oldVersion == 0:
		return nil, nil
	case k.oldExternalID == "":
		return []any{"manual_action", "the old Resend key has no recorded id: delete it in the Resend dashboard"}, nil
	}
	err := k.deleteResendKey(ctx, "delete-old-key", k.oldExternalID)
	if errors.Is(err, errSkipped) {
		return []any{"manual_action", "deleting the old Resend key was skipped: delete it in the Resend dashboard"}, nil
	}
	return nil, err
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

// deleteResendKey deletes one key at Resend as the named step.
func (k *keyRotation) deleteResendKey(ctx workflow.Context, step, keyID string) error {
	in := activities.DeleteAPIKeyInput{KeyID: keyID}
	return k.parker.step(ctx, step, keyRotationResendOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, rotationResend.DeleteAPIKey, in).Get(ctx, nil)
	})
}
