package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/temporal"
)

// PLACEHOLDER, replaced by the Resend implementation (activities/email.go,
// built on another branch). It holds only what UserLifecycle needs to
// compile and be registered: the activity's name, its input and its output.
// Until the Resend implementation lands, every call fails non-retryably and
// the step parks; nothing is sent. The merge keeps the Resend file's types
// and deletes this one.

// ErrTypeEmailNotConfigured is the error type of the placeholder's refusal.
const ErrTypeEmailNotConfigured = "EmailNotConfigured"

// EmailActivities send templated email. This is the placeholder: see the
// note above.
type EmailActivities struct{}

// SendEmailInput is one templated email.
type SendEmailInput struct {
	// Template names the email's template, such as "welcome".
	Template string `json:"template"`
	// To is the recipient's address.
	To string `json:"to"`
	// Data fills the template.
	Data map[string]any `json:"data"`
	// IdempotencyKey, derived from the workflow and the step, makes a
	// retried send one email.
	IdempotencyKey string `json:"idempotency_key"`
	// BusinessKey names what the email is about (a workflow ID), for
	// operators.
	BusinessKey string `json:"business_key"`
}

// SendEmailOutput is the sent email.
type SendEmailOutput struct {
	EmailID string `json:"email_id"`
	Status  string `json:"status"`
}

// SendTemplatedEmail is the placeholder: it sends nothing and fails
// non-retryably, so the step parks until the Resend implementation is
// deployed and an operator retries it.
func (a *EmailActivities) SendTemplatedEmail(_ context.Context, _ SendEmailInput) (*SendEmailOutput, error) {
	return nil, temporal.NewNonRetryableApplicationError("email not configured: the Resend email activities are not built in yet",
		ErrTypeEmailNotConfigured, errors.New("email not configured"))
}
