package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
)

// Rotation of crmflow's own start-API token: crmflow generates the token,
// and the only copy outside the credential store is the one handed out,
// once, through KeyRotationTokenUpdate.

// KeyRotationTokenPickupTimeout is how long a new start-API token waits for
// an operator to collect it; uncollected, the rotation is rolled back.
const KeyRotationTokenPickupTimeout = time.Hour

// startTokenBytes is the new token's length in random bytes.
const startTokenBytes = 32

// tokenHandout is the token mode's state: the new token while it waits to
// be collected (cleared once the wait ends), and whether it was.
type tokenHandout struct {
	token     string
	handedOut bool
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
	err := k.parker.step(ctx, "generate-token", storeOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, rotationCreds.GenerateToken, in).Get(ctx, &gen)
	})
	if err != nil {
		return nil, err
	}
	if err := k.storeAndActivate(ctx, gen.Token, ""); err != nil {
		return nil, err
	}
	k.handout.token = gen.Token
	k.await(ctx, phaseAwaitTokenPickup, "await-token-pickup")
	collected, err := workflow.AwaitWithTimeout(ctx, KeyRotationTokenPickupTimeout, func() bool { return k.handout.handedOut })
	k.phase, k.handout.token = phaseNone, ""
	if err != nil {
		return nil, err
	}
	if !collected {
		return k.rollBackToken(ctx)
	}
	if err := k.grace(ctx); err != nil {
		return nil, err
	}
	return k.rotated(ctx, "")
}

// rollBackToken makes the old token active again and revokes the new one,
// which nobody holds.
func (k *keyRotation) rollBackToken(ctx workflow.Context) (*contract.KeyRotationResult, error) {
	if k.oldVersion != 0 {
		old := k.ref(k.oldVersion)
		err := k.parker.step(ctx, "reactivate-old", storeOptions, old, func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(ctx, rotationCreds.ActivateCredential, old).Get(ctx, nil)
		})
		if err != nil {
			return nil, err
		}
	}
	nv := k.ref(k.newVersion)
	err := k.parker.step(ctx, "revoke-new", storeOptions, nv, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, rotationCreds.RevokeCredential, nv).Get(ctx, nil)
	})
	if err != nil && !errors.Is(err, errSkipped) {
		return nil, err
	}
	k.newVersion = 0
	k.notify(ctx, "notify-failed", KnockKeyRotationFailed, "reason", "the new token was not collected")
	return k.finish(ctx, "token_not_collected", "nobody collected the new token; the old one is active again"), nil
}

// validateTokenRequest admits a KeyRotationTokenUpdate only while a new
// token waits to be collected and has not been.
func (k *keyRotation) validateTokenRequest(_ workflow.Context, req contract.KeyRotationTokenRequest) error {
	if err := contract.ValidateOperator(req.Operator); err != nil {
		return err
	}
	switch {
	case k.handout.handedOut:
		return errors.New("the new token was already handed out")
	case k.phase != phaseAwaitTokenPickup:
		return errors.New("no new token is waiting to be handed out")
	}
	return nil
}

// handOutToken answers KeyRotationTokenUpdate with the new token, once.
func (k *keyRotation) handOutToken(_ workflow.Context, req contract.KeyRotationTokenRequest) (contract.KeyRotationToken, error) {
	if k.handout.handedOut {
		return contract.KeyRotationToken{}, errors.New("the new token was already handed out")
	}
	k.handout.handedOut = true
	k.status.Detail = "new token handed out to " + req.Operator
	return contract.KeyRotationToken{Token: k.handout.token, Version: k.newVersion}, nil
}
