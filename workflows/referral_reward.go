package workflows

import (
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// ReferralRewardInput starts a referral's reward; the order confirmation
// starts it for a referred customer's first paid order.
type ReferralRewardInput struct {
	ReferralID         string `json:"referral_id"`
	OrderID            string `json:"order_id"`
	ReferredCustomerID string `json:"referred_customer_id"`
}

// ReferralRewardResult is how the reward ended.
type ReferralRewardResult struct {
	State string `json:"state"`
}

// ReferralReward records that a referral qualified for a reward, under the
// referral's workflow ID, so the order confirmation's child contract (ID,
// type, input) is in place. Eligibility, the refund window, the Stripe credit
// and the ledger come with the referral-reward work.
func ReferralReward(ctx workflow.Context, in ReferralRewardInput) (*ReferralRewardResult, error) {
	if err := ValidateKey("referral ID", in.ReferralID); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", nil)
	}
	status := Status{Step: "requested", State: "requested", Detail: "qualified by order " + in.OrderID}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (Status, error) { return status, nil }); err != nil {
		return nil, err
	}
	upsert(ctx, CustomerIDKey.ValueSet(in.ReferredCustomerID), OrderIDKey.ValueSet(in.OrderID), StepKey.ValueSet(status.Step))
	return &ReferralRewardResult{State: status.State}, nil
}
