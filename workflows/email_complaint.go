package workflows

import (
	"errors"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
)

// KnockEmailComplaint is the Knock workflow that tells operators a
// recipient marked one of crmflow's emails as spam.
const KnockEmailComplaint = "email-complaint"

// EmailComplaint alerts operators to one spam complaint (Resend's
// email.complained), after the inbox has suppressed the address and marked
// the email: one Knock trigger to the operators, whose idempotency key is
// this run's ID (the email's) plus the step, so a replayed complaint never
// alerts twice. A failed trigger parks like any step.
func EmailComplaint(ctx workflow.Context, in contract.EmailComplaintInput) (_ *contract.EmailComplaintResult, err error) {
	if err := contract.ValidateKey("email id", in.EmailID); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", nil)
	}
	status := contract.Status{Step: "start", State: "pending"}
	p, err := newParker(ctx, &status, nil)
	if err != nil {
		return nil, err
	}
	defer func() { p.settle(err) }()
	memo := map[string]any{"email_id": in.EmailID, "template": in.Template, "business_key": in.BusinessKey}
	if err := workflow.UpsertMemo(ctx, memo); err != nil {
		workflow.GetLogger(ctx).Error("Could not set memo", "error", err)
	}

	alert := activities.NotifyInput{
		Workflow:   KnockEmailComplaint,
		Recipients: []string{OperatorsRecipient},
		Data: map[string]any{"email_id": in.EmailID, "addresses": in.Addresses, "template": in.Template,
			"business_key": in.BusinessKey, "complained_at": in.ComplainedAt, "event_id": in.EventID},
		IdempotencyKey: workflow.GetInfo(ctx).WorkflowExecution.ID + "/notify-operators",
	}
	err = p.step(ctx, "notify-operators", knockOptions, alert, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, knock.Notify, alert).Get(ctx, nil)
	})
	result := "alerted"
	switch {
	case errors.Is(err, errSkipped):
		result = "skipped"
	case err != nil:
		return nil, err
	}
	status.State = result
	p.setStep(ctx, "done")
	return &contract.EmailComplaintResult{Status: result}, nil
}
