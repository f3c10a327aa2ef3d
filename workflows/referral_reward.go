package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
)

// KnockReferralReward is the Knock workflow that tells the referrer.
const KnockReferralReward = "referral-reward"

var referrals *activities.ReferralActivities

type referralReward struct {
	input   contract.ReferralRewardInput
	status  contract.Status
	parker  *parker
	elig    activities.Eligibility
	refunds workflow.ReceiveChannel
	seen    []string
}

// ReferralReward pays a referrer for a referred customer's first paid order:
// it checks eligibility, holds the reward through the refund window (a
// charge.refunded for the order voids it), credits the referrer's Stripe
// customer balance, records the ledger row and tells the referrer through
// Knock. For a while after payout it still listens for refunds, and asks an
// operator whether to claw the reward back rather than doing nothing.
func ReferralReward(ctx workflow.Context, in contract.ReferralRewardInput) (_ *contract.ReferralRewardResult, err error) {
	if err := contract.ValidateKey("referral ID", in.ReferralID); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", nil)
	}
	if err := contract.ValidateKey("order ID", in.OrderID); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", nil)
	}
	r := &referralReward{input: in, status: contract.Status{Step: "start", State: "pending"}}
	p, err := newParker(ctx, &r.status, nil)
	if err != nil {
		return nil, err
	}
	defer func() { p.settle(err) }()
	r.parker = p
	r.refunds = workflow.GetSignalChannel(ctx, contract.RefundSignal)
	upsert(ctx, contract.CustomerIDKey.ValueSet(in.ReferredCustomerID), contract.OrderIDKey.ValueSet(in.OrderID))
	res, err := r.run(ctx)
	awaitHandlers(ctx)
	if errors.Is(err, errSkipped) {
		return r.finish(ctx, "skipped", "an operator skipped a step the reward could not go on without"), nil
	}
	return res, err
}

func (r *referralReward) run(ctx workflow.Context) (*contract.ReferralRewardResult, error) {
	in := activities.CheckEligibilityInput{ReferralID: r.input.ReferralID, OrderID: r.input.OrderID}
	err := r.parker.step(ctx, "check-eligibility", storeOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, referrals.CheckEligibility, in).Get(ctx, &r.elig)
	})
	if err != nil {
		return nil, err
	}
	if err := workflow.UpsertMemo(ctx, map[string]any{"referral_id": r.input.ReferralID,
		"referrer_id": r.elig.ReferrerID, "eligible": r.elig.Eligible, "reason": r.elig.Reason}); err != nil {
		workflow.GetLogger(ctx).Error("Could not set memo", "error", err)
	}
	if !r.elig.Eligible {
		return r.finish(ctx, "ineligible", r.elig.Reason), nil
	}

	r.status.State = "holding"
	r.parker.setStep(ctx, "refund-window")
	if refund, err := r.awaitRefund(ctx, r.elig.RefundWindow); err != nil {
		return nil, err
	} else if refund != nil {
		if err := r.setReferralStatus(ctx, "voided"); err != nil {
			return nil, err
		}
		return r.finish(ctx, "voided", r.refundReason(refund)), nil
	}

	credit := activities.CreditCustomerBalanceInput{
		CustomerID:     r.elig.ReferrerStripeCustomerID,
		AmountCents:    r.elig.RewardCents,
		Currency:       r.elig.Currency,
		Description:    "Referral reward for referral " + r.input.ReferralID,
		Metadata:       map[string]string{"referral_id": r.input.ReferralID, "order_id": r.input.OrderID},
		IdempotencyKey: r.key("credit"),
	}
	var credited activities.CreditCustomerBalanceOutput
	err = r.parker.step(ctx, "credit-referrer", stripeOptions, credit, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, stripe.CreditCustomerBalance, credit).Get(ctx, &credited)
	})
	if err != nil {
		return nil, err
	}
	record := activities.RecordRewardInput{
		ReferralID: r.input.ReferralID, ReferrerID: r.elig.ReferrerID, AmountCents: r.elig.RewardCents,
		Currency: r.elig.Currency, BalanceTransactionID: credited.BalanceTransactionID,
	}
	err = r.parker.step(ctx, "record-reward", storeOptions, record, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, referrals.RecordReward, record).Get(ctx, nil)
	})
	if err != nil && !errors.Is(err, errSkipped) {
		return nil, err
	}
	r.status.State = "rewarded"
	if err := r.notifyReferrer(ctx); err != nil {
		return nil, err
	}
	return r.watchForClawback(ctx)
}

// awaitRefund waits up to window for a refund that voids the reward and
// returns it, or nil when the window passes. Refunds too small to void are
// noted and the wait goes on.
func (r *referralReward) awaitRefund(ctx workflow.Context, window time.Duration) (*contract.RefundEvent, error) {
	timerCtx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	timer := workflow.NewTimer(timerCtx, window)
	for {
		var ev contract.RefundEvent
		expired := false
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(r.refunds, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &ev) })
		sel.AddFuture(timer, func(workflow.Future) { expired = true })
		sel.Select(ctx)
		switch {
		case expired:
			return nil, nil
		case r.seenBefore(ev.EventID):
		case r.voids(ev):
			return &ev, nil
		default:
			r.status.Detail = fmt.Sprintf("partial refund of %d cents does not void the reward", ev.AmountRefundedCents)
		}
	}
}

// voids: a full refund, or one that leaves less than the minimum order.
func (r *referralReward) voids(ev contract.RefundEvent) bool {
	return ev.FullyRefunded || r.elig.OrderAmountCents-ev.AmountRefundedCents < r.elig.MinimumOrderCents
}

func (r *referralReward) refundReason(ev *contract.RefundEvent) string {
	if ev.FullyRefunded {
		return "order refunded in full (charge " + ev.ChargeID + ")"
	}
	return fmt.Sprintf("order refunded to %d cents, below the minimum of %d (charge %s)",
		r.elig.OrderAmountCents-ev.AmountRefundedCents, r.elig.MinimumOrderCents, ev.ChargeID)
}

// watchForClawback keeps listening for refunds after payout. A voiding
// refund parks the run with a clawback question: retry claws the reward back
// (a debit to the referrer's balance, the ledger row reversed), skip keeps it.
func (r *referralReward) watchForClawback(ctx workflow.Context) (*contract.ReferralRewardResult, error) {
	r.parker.setStep(ctx, "clawback-window")
	refund, err := r.awaitRefund(ctx, r.elig.ClawbackWindow)
	if err != nil {
		return nil, err
	}
	if refund == nil {
		return r.finish(ctx, "rewarded", ""), nil
	}
	question := r.refundReason(refund) + " after the reward was paid: retry claws it back, skip keeps it"
	action, deadLetter, err := r.parker.ask(ctx, "clawback-decision", "RefundAfterPayout", question, refund)
	if err != nil {
		return nil, err
	}
	if action == contract.DecisionSkip {
		return r.finish(ctx, "rewarded", "refunded after payout; an operator kept the reward"), nil
	}
	debit := activities.CreditCustomerBalanceInput{
		CustomerID:     r.elig.ReferrerStripeCustomerID,
		AmountCents:    r.elig.RewardCents,
		Currency:       r.elig.Currency,
		Description:    "Clawback of the reward for referral " + r.input.ReferralID,
		Metadata:       map[string]string{"referral_id": r.input.ReferralID, "order_id": r.input.OrderID},
		IdempotencyKey: r.key("clawback"),
	}
	err = r.parker.step(ctx, "clawback", stripeOptions, debit, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, stripe.DebitCustomerBalance, debit).Get(ctx, nil)
	})
	if err != nil {
		return nil, err
	}
	reverse := activities.ReverseRewardInput{ReferralID: r.input.ReferralID}
	err = r.parker.step(ctx, "reverse-reward", storeOptions, reverse, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, referrals.ReverseReward, reverse).Get(ctx, nil)
	})
	if err != nil && !errors.Is(err, errSkipped) {
		return nil, err
	}
	r.parker.close(ctx, deadLetter, "resolved", "")
	return r.finish(ctx, "clawed_back", r.refundReason(refund)), nil
}

func (r *referralReward) notifyReferrer(ctx workflow.Context) error {
	in := activities.NotifyInput{
		Workflow:   KnockReferralReward,
		Recipients: []string{r.elig.ReferrerID},
		Data: map[string]any{"referral_id": r.input.ReferralID, "amount_cents": r.elig.RewardCents,
			"currency": r.elig.Currency},
		IdempotencyKey: r.key("notify-referrer"),
	}
	err := r.parker.step(ctx, "notify-referrer", knockOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, knock.Notify, in).Get(ctx, nil)
	})
	if errors.Is(err, errSkipped) {
		return nil
	}
	return err
}

func (r *referralReward) setReferralStatus(ctx workflow.Context, status string) error {
	in := activities.SetReferralStatusInput{ReferralID: r.input.ReferralID, Status: status}
	err := r.parker.step(ctx, "mark-referral", storeOptions, in, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, referrals.SetReferralStatus, in).Get(ctx, nil)
	})
	if errors.Is(err, errSkipped) {
		return nil
	}
	return err
}

// key is the idempotency key of a step: workflow ID plus step, so retries
// and replays of the step reach the provider once.
func (r *referralReward) key(step string) string {
	return contract.ReferralRewardID(r.input.ReferralID) + "/" + step
}

func (r *referralReward) seenBefore(eventID string) bool {
	for _, id := range r.seen {
		if id == eventID {
			return true
		}
	}
	r.seen = append(r.seen, eventID)
	return false
}

func (r *referralReward) finish(ctx workflow.Context, state, reason string) *contract.ReferralRewardResult {
	r.status.State, r.status.Detail = state, reason
	r.parker.setStep(ctx, "done")
	return &contract.ReferralRewardResult{State: state, Reason: reason}
}
