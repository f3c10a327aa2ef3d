package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
)

// Rotation of crmflow's own start-API token. Runs that keep keys out of
// their history (rotateTokenInStore) have the token made and stored pending
// by an activity; operators fetch it from the store through the API (the
// Update answers only its version), as often as they need, until the token
// is first used or acknowledged; only then does the old token start its
// grace period. Older runs (rotateToken) handed the token out once through
// the Update.

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
	// version is the new token's, while it waits to be used; seen and
	// acknowledged end that wait.
	version      int
	seen         bool
	acknowledged bool
	ackBy        string
}

// rotateTokenInStore: make and store the new token (pending, accepted by
// the API) → wait until it is used, or an operator acknowledges it → activate
// it (the old token turns retiring) → grace → revoke the old version →
// notify. A token neither used nor acknowledged within
// KeyRotationTokenPickupTimeout is revoked, and the old token, never
// retired, stays as it was.
func (k *keyRotation) rotateTokenInStore(ctx workflow.Context) (*contract.KeyRotationResult, error) {
	if err := k.readActive(ctx); err != nil {
		return nil, err
	}
	in := activities.CreateTokenInput{Provider: k.input.Provider, Name: k.input.Name, Bytes: startTokenBytes}
	var created activities.CreateTokenOutput
	err := k.parker.step(ctx, "create-token", storeOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, rotationCreds.CreateToken, in).Get(ctx, &created)
	})
	if err != nil {
		return nil, err
	}
	h := &k.handout
	h.version = created.Version
	k.await(ctx, phaseAwaitTokenUse, "await-token-use")
	k.status.Detail = fmt.Sprintf("new token version %d waits to be used; fetch it with an operator token", h.version)
	used, err := workflow.AwaitWithTimeout(ctx, KeyRotationTokenPickupTimeout, func() bool { return h.seen || h.acknowledged })
	k.phase = phaseNone
	if err != nil {
		return nil, err
	}
	if !used {
		if err := k.revokePending(ctx, "revoke-new", h.version); err != nil {
			return nil, err
		}
		k.notify(ctx, "notify-failed", KnockKeyRotationFailed, "reason", "the new token was neither used nor acknowledged")
		return k.finish(ctx, "token_not_collected", "nobody used or acknowledged the new token; the old one stays active"), nil
	}
	if h.acknowledged {
		k.status.Detail = "new token acknowledged by " + h.ackBy
	} else {
		k.status.Detail = "new token in use"
	}
	if err := k.activate(ctx, h.version); err != nil {
		return nil, err
	}
	if err := k.grace(ctx); err != nil {
		return nil, err
	}
	return k.rotated(ctx, "")
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
// token waits: to be used (any number of times), or, in older runs, to be
// collected once.
func (k *keyRotation) validateTokenRequest(_ workflow.Context, req contract.KeyRotationTokenRequest) error {
	if err := contract.ValidateOperator(req.Operator); err != nil {
		return err
	}
	if k.phase == phaseAwaitTokenUse {
		return nil
	}
	switch {
	case k.handout.handedOut:
		return errors.New("the new token was already handed out")
	case k.phase != phaseAwaitTokenPickup:
		return errors.New("no new token is waiting to be handed out")
	}
	return nil
}

// handOutToken answers KeyRotationTokenUpdate with the new token's version
// (the caller reads the token from the store), or, in older runs, with the
// token itself, once.
func (k *keyRotation) handOutToken(_ workflow.Context, req contract.KeyRotationTokenRequest) (contract.KeyRotationToken, error) {
	if k.byVersion {
		k.status.Detail = fmt.Sprintf("new token version %d fetched by %s; waits to be used", k.handout.version, req.Operator)
		return contract.KeyRotationToken{Version: k.handout.version}, nil
	}
	if k.handout.handedOut {
		return contract.KeyRotationToken{}, errors.New("the new token was already handed out")
	}
	k.handout.handedOut = true
	k.status.Detail = "new token handed out to " + req.Operator
	return contract.KeyRotationToken{Token: k.handout.token, Version: k.newVersion}, nil
}

// validateTokenAck admits KeyRotationTokenAckUpdate while a new token waits
// to be used.
func (k *keyRotation) validateTokenAck(_ workflow.Context, req contract.KeyRotationTokenRequest) error {
	if err := contract.ValidateOperator(req.Operator); err != nil {
		return err
	}
	if k.phase != phaseAwaitTokenUse {
		return errors.New("no new token waits to be used")
	}
	return nil
}

// acknowledgeToken records an operator's word that the new token is in
// place, which ends the wait for its first use.
func (k *keyRotation) acknowledgeToken(_ workflow.Context, req contract.KeyRotationTokenRequest) error {
	k.handout.acknowledged, k.handout.ackBy = true, req.Operator
	return nil
}
