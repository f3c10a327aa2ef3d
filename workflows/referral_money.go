package workflows

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
)

// moneyOnceChange versions the money steps (the referral credit and the
// clawback) that look for the balance transaction they may already have
// made before they create one, with an idempotency key that is fresh after
// Stripe's 24 hours or a 5xx. It is asked once per attempt of a step, as
// moneyOnceChange/<step>/<attempt>, not once per run: a run parked on the
// step before the change replays its earlier attempts as they were
// (DefaultVersion: the old key, no look-up), while the operator's retry
// after the upgrade, which is the retry that could pay twice, runs the new
// way.
const moneyOnceChange = "stripe-money-once"

// Metadata that names a money step on its balance transaction, so that a
// retry finds the transaction however long after the first attempt it runs.
const (
	metaReferral = "crmflow_referral"
	metaStep     = "crmflow_step"
)

// keyWindow is how long a money step keeps sending one idempotency key: an
// hour short of the 24 hours after which Stripe may forget it. Past that a
// request with the key may or may not be new to Stripe; a fresh key makes
// it new for certain, and the look-up before it keeps that from paying
// twice.
const keyWindow = 23 * time.Hour

// maxFreshKeys bounds the fresh keys one attempt of a money step tries, one
// after another, when Stripe replays a failure it stored under the key;
// then the step parks.
const maxFreshKeys = 3

// moneyStep is one money-moving Stripe step of a run and the idempotency
// key it sends. Its fields change only on facts in the history (the
// workflow clock and the activities' results), so a replay decides the same
// keys.
type moneyStep struct {
	// name is the step in keys and metadata: credit or clawback.
	name string
	// base is the step's key without its number: workflow ID/name.
	base string
	// attempts counts the step's attempts (parker retries included).
	attempts int
	// since bounds the look-up: the referral's creation (see lookBackTo),
	// or when the step first ran in this run if that is earlier or the
	// creation is not known.
	since time.Time
	// epoch numbers the current key, 0 before the first.
	epoch int
	// keyFrom is when the current key was first scheduled. That is no
	// later than Stripe first saw it, so the window is never overrun.
	keyFrom time.Time
	// spent: Stripe answered the current key with a 5xx, which it stores
	// under the key and replays for as long as it keeps it.
	spent bool
}

// key returns the idempotency key for the next request: the current key,
// unless it is spent or a keyWindow old. A key changes only between
// executions of the activity, never within Temporal's retries of one, and
// only after Stripe answered it (spent) or a day passed: no request with
// the old key can still be running at Stripe, so the look-up that precedes
// the new key sees everything the old one did.
func (m *moneyStep) key(now time.Time) string {
	if m.epoch == 0 || m.spent || now.Sub(m.keyFrom) >= keyWindow {
		m.epoch, m.keyFrom, m.spent = m.epoch+1, now, false
	}
	return m.base + "/" + strconv.Itoa(m.epoch)
}

// moveMoney is one attempt of a money step, run by parker.step: the old
// way for attempts made before moneyOnceChange (legacy is the input they
// sent), else looking first, with the step's current key, and at once with
// a fresh key when Stripe replays a failure it stored under the key.
func (r *referralReward) moveMoney(ctx workflow.Context, m *moneyStep, act any,
	legacy activities.CreditCustomerBalanceInput, out *activities.CreditCustomerBalanceOutput) error {
	m.attempts++
	if m.since.IsZero() {
		m.since = lookBackTo(workflow.Now(ctx), r.elig.ReferralCreatedAt)
	}
	change := fmt.Sprintf("%s/%s/%d", moneyOnceChange, m.name, m.attempts)
	if workflow.GetVersion(ctx, change, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return workflow.ExecuteActivity(ctx, act, legacy).Get(ctx, out)
	}
	for fresh := 1; ; fresh++ {
		in := legacy
		in.IdempotencyKey = m.key(workflow.Now(ctx))
		in.LookFor = &activities.BalanceMatch{
			Metadata: map[string]string{metaReferral: r.input.ReferralID, metaStep: m.name},
			// Credits and clawbacks made before the look-up carry the
			// referral's id only; the sign tells them apart.
			Legacy: map[string]string{"referral_id": r.input.ReferralID},
			Since:  m.since,
		}
		err := workflow.ExecuteActivity(ctx, act, in).Get(ctx, out)
		if err == nil {
			return nil
		}
		ans, ok := stripeKeyAnswer(err)
		if !ok || ans.IdempotencyKey != in.IdempotencyKey {
			return err
		}
		m.spent = true
		if !ans.Replayed || fresh == maxFreshKeys {
			return err
		}
		workflow.GetLogger(ctx).Warn("Stripe replays a failure stored under the key; trying a fresh key",
			"step", m.name, "idempotencyKey", in.IdempotencyKey, "status", ans.Status)
	}
}

// lookBackTo is how far back a money step looks for what it may already
// have paid, when it first runs at now: to the referral's creation. Only
// that reaches a run started again after an operator aborted one whose
// money may have moved: the new run's own first attempt is later than the
// old run's transaction, and its key may be one Stripe has forgotten. A
// creation that is unknown (an eligibility recorded before it was part of
// it) or later than now leaves the bound at now, as before.
func lookBackTo(now, referralCreated time.Time) time.Time {
	if referralCreated.IsZero() || referralCreated.After(now) {
		return now
	}
	return referralCreated
}

// stripeKeyAnswer is the StripeKeyAnswer a money step's error carries, if
// any: Stripe answered the request with a 5xx.
func stripeKeyAnswer(err error) (activities.StripeKeyAnswer, bool) {
	var ans activities.StripeKeyAnswer
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.HasDetails() || appErr.Details(&ans) != nil || ans.Status == 0 {
		return ans, false
	}
	return ans, true
}
