package activities

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/crmflow/crmflow/internal/store"
)

// ReferralDefaults are the reward settings from config.
type ReferralDefaults struct {
	// RewardCents is credited to the referrer, in the order's currency.
	RewardCents int64
	// RefundWindow is how long the reward is held before it is paid.
	RefundWindow time.Duration
	// MinimumOrderCents: a partial refund that leaves the order below this
	// voids the reward.
	MinimumOrderCents int64
	// ClawbackWindow is how long after payout a refund still asks an
	// operator whether to claw the reward back.
	ClawbackWindow time.Duration
}

// ReferralActivities decide and record referral rewards in PostgreSQL.
type ReferralActivities struct {
	// Store is the CRM database (*store.Store in the worker).
	Store referralStore
	// Defaults are the reward settings every eligible referral records.
	Defaults ReferralDefaults
	// StripeConsole is true when Stripe runs in console mode (decided at
	// start, as StripeActivities.Console): only then may a reward whose
	// credit was made up in console mode (a console: balance transaction
	// id) enter the ledger. The zero value refuses them.
	StripeConsole bool
}

// referralStore is what deciding and recording a referral reward needs of
// the CRM database: the referral and its order, the referral's status, and
// the reward ledger.
type referralStore interface {
	GetReferral(ctx context.Context, id string) (*store.Referral, error)
	ReferralForFirstPaidOrder(ctx context.Context, orderID string) (string, error)
	GetOrder(ctx context.Context, id string) (*store.Order, error)
	SetReferralStatus(ctx context.Context, id, status, orderID string) error
	RecordReward(ctx context.Context, r store.Reward) (*store.Reward, error)
	ReverseReward(ctx context.Context, referralID string) error
}

var _ referralStore = (*store.Store)(nil)

// CheckEligibilityInput names the referral and the order that may qualify it.
type CheckEligibilityInput struct {
	ReferralID string `json:"ReferralID"`
	OrderID    string `json:"OrderID"`
}

// Eligibility is the verdict and everything the reward needs afterwards, so
// the workflow's history records the settings it ran with.
type Eligibility struct {
	Eligible bool `json:"Eligible"`
	// Reason says why not, when not eligible.
	Reason                   string        `json:"Reason"`
	ReferrerID               string        `json:"ReferrerID"`
	ReferrerStripeCustomerID string        `json:"ReferrerStripeCustomerID"`
	OrderAmountCents         int64         `json:"OrderAmountCents"`
	Currency                 string        `json:"Currency"`
	RewardCents              int64         `json:"RewardCents"`
	MinimumOrderCents        int64         `json:"MinimumOrderCents"`
	RefundWindow             time.Duration `json:"RefundWindow"`
	ClawbackWindow           time.Duration `json:"ClawbackWindow"`
	// ReferralCreatedAt is when the referral was written. No balance
	// transaction crmflow made for it is older, so the money steps look
	// back to it: a run started again after an operator aborted one finds
	// what the aborted run paid. Zero in results recorded before it was.
	ReferralCreatedAt time.Time `json:"referral_created_at,omitzero"`
}

// CheckEligibility applies the reward rules: no self-referral (same customer
// or same email), the referred customer's first paid order, not already
// rewarded or decided. An eligible referral is marked holding. A referrer
// without a Stripe customer cannot be credited: that is a non-retryable
// StoreInvalidRequest, which parks the run until an operator fixes the data
// and retries.
func (a *ReferralActivities) CheckEligibility(ctx context.Context, in CheckEligibilityInput) (*Eligibility, error) {
	r, err := a.Store.GetReferral(ctx, in.ReferralID)
	if err != nil {
		return nil, classifyStore(err)
	}
	e := &Eligibility{
		ReferrerID: r.ReferrerID, ReferrerStripeCustomerID: r.ReferrerStripeCustomerID,
		RewardCents: a.Defaults.RewardCents, MinimumOrderCents: a.Defaults.MinimumOrderCents,
		RefundWindow: a.Defaults.RefundWindow, ClawbackWindow: a.Defaults.ClawbackWindow,
		ReferralCreatedAt: r.CreatedAt,
	}
	first, err := a.Store.ReferralForFirstPaidOrder(ctx, in.OrderID)
	if err != nil {
		return nil, classifyStore(err)
	}
	switch {
	case r.Status == store.ReferralRewarded:
		e.Reason = "already rewarded"
	case r.Status == store.ReferralVoided || r.Status == store.ReferralIneligible:
		e.Reason = "already " + r.Status
	case r.ReferrerID == r.ReferredID || strings.EqualFold(strings.TrimSpace(r.ReferrerEmail), strings.TrimSpace(r.ReferredEmail)):
		e.Reason = "self-referral"
	case first != in.ReferralID:
		e.Reason = "order " + in.OrderID + " is not the referred customer's first paid order"
	}
	if e.Reason != "" {
		if r.Status == store.ReferralPending || r.Status == store.ReferralHolding {
			if err := a.Store.SetReferralStatus(ctx, r.ID, store.ReferralIneligible, ""); err != nil {
				return nil, classifyStore(err)
			}
		}
		return e, nil
	}
	if r.ReferrerStripeCustomerID == "" {
		return nil, permanent(providerStore, ErrTypeInvalid, fmt.Errorf("referrer %s has no Stripe customer to credit", r.ReferrerID))
	}
	o, err := a.Store.GetOrder(ctx, in.OrderID)
	if err != nil {
		return nil, classifyStore(err)
	}
	e.Eligible, e.OrderAmountCents, e.Currency = true, o.AmountCents, o.Currency
	if err := a.Store.SetReferralStatus(ctx, r.ID, store.ReferralHolding, in.OrderID); err != nil {
		return nil, classifyStore(err)
	}
	return e, nil
}

// SetReferralStatusInput moves a referral to a status.
type SetReferralStatusInput struct {
	ReferralID string `json:"ReferralID"`
	Status     string `json:"Status"`
}

// SetReferralStatus records a voided or ineligible referral.
func (a *ReferralActivities) SetReferralStatus(ctx context.Context, in SetReferralStatusInput) error {
	if err := a.Store.SetReferralStatus(ctx, in.ReferralID, in.Status, ""); err != nil {
		return classifyStore(err)
	}
	return nil
}

// RecordRewardInput is a credited reward for the ledger.
type RecordRewardInput struct {
	ReferralID           string `json:"ReferralID"`
	ReferrerID           string `json:"ReferrerID"`
	AmountCents          int64  `json:"AmountCents"`
	Currency             string `json:"Currency"`
	BalanceTransactionID string `json:"BalanceTransactionID"`
}

// RecordRewardOutput is the ledger's row for the referral.
type RecordRewardOutput struct {
	BalanceTransactionID string `json:"BalanceTransactionID"`
	// AlreadyRecorded is true when the ledger had the reward already.
	AlreadyRecorded bool `json:"AlreadyRecorded"`
}

// RecordReward writes the reward to the ledger; its unique referral id makes
// a second reward impossible. A console: balance transaction id while Stripe
// is configured is refused (StoreInvalidRequest, permanent): nothing was
// credited at Stripe, and the ledger row would mark the referral rewarded
// for good. That guards runs whose credit was faked before console mode
// was decided at start, and any other way such an id could get here.
func (a *ReferralActivities) RecordReward(ctx context.Context, in RecordRewardInput) (*RecordRewardOutput, error) {
	if strings.HasPrefix(in.BalanceTransactionID, consoleIDPrefix) && !a.StripeConsole {
		return nil, permanent(providerStore, ErrTypeInvalid, fmt.Errorf(
			"referral %s: balance transaction %q was made up in console mode, but Stripe is configured: nothing was credited at Stripe, so no reward is recorded",
			in.ReferralID, in.BalanceTransactionID))
	}
	got, err := a.Store.RecordReward(ctx, store.Reward{
		ReferralID: in.ReferralID, ReferrerID: in.ReferrerID, AmountCents: in.AmountCents,
		Currency: in.Currency, BalanceTransactionID: in.BalanceTransactionID,
	})
	if err != nil {
		return nil, classifyStore(err)
	}
	return &RecordRewardOutput{BalanceTransactionID: got.BalanceTransactionID,
		AlreadyRecorded: got.BalanceTransactionID != in.BalanceTransactionID}, nil
}

// ReverseRewardInput names a clawed-back reward.
type ReverseRewardInput struct {
	ReferralID string `json:"ReferralID"`
}

// ReverseReward marks the reward reversed and the referral voided.
func (a *ReferralActivities) ReverseReward(ctx context.Context, in ReverseRewardInput) error {
	if err := a.Store.ReverseReward(ctx, in.ReferralID); err != nil {
		return classifyStore(err)
	}
	return nil
}
