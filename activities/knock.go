package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/log"

	"github.com/crmflow/crmflow/internal/knock"
	"github.com/crmflow/crmflow/internal/providerhttp"
)

// providerKnock names Knock in error types: "KnockRateLimited".
const providerKnock = "Knock"

// KnockActivities sends notifications through Knock.
//
// The worker injects a console client when Knock has no configured key at
// start, so the activities run the same way with or without Knock; a
// configured Knock's client reads its key at each call, and a call with no
// active key fails with a non-retryable KnockCredentialMissing.
type KnockActivities struct {
	// Knock is the API client, or a console client that only records calls.
	Knock *knock.Client
}

// NotifyInput is one Knock workflow trigger.
type NotifyInput struct {
	// Workflow is the Knock workflow key, such as "order-confirmation".
	Workflow string `json:"Workflow"`
	// Recipients are Knock user ids; at least one.
	Recipients []string `json:"Recipients"`
	// ActorID is the Knock user id of who caused the notification, if anyone.
	ActorID string `json:"ActorID"`
	// Data is the Knock workflow's template data.
	Data map[string]any `json:"Data"`
	// IdempotencyKey is required and must be derived from the workflow (ID +
	// step), so a Temporal retry is answered with Knock's first run instead
	// of notifying twice. At most 255 characters.
	IdempotencyKey string `json:"IdempotencyKey"`
}

// NotifyOutput names the run Knock queued.
type NotifyOutput struct {
	// WorkflowRunID is Knock's run id, or "console-<n>" in console mode.
	WorkflowRunID string `json:"WorkflowRunID"`
	// Console is true when nothing was sent to Knock.
	Console bool `json:"Console"`
}

// Notify triggers a Knock workflow for the recipients. Knock runs the
// workflow asynchronously: success means Knock accepted the trigger, not that
// a message was delivered.
func (a *KnockActivities) Notify(ctx context.Context, in NotifyInput) (*NotifyOutput, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	logger := log.With(activity.GetLogger(ctx),
		"knockWorkflow", in.Workflow, "recipients", len(in.Recipients), "idempotencyKey", in.IdempotencyKey)

	params := knock.TriggerParams{
		Recipients: make([]knock.Recipient, 0, len(in.Recipients)),
		Data:       in.Data,
	}
	for _, id := range in.Recipients {
		params.Recipients = append(params.Recipients, knock.UserID(id))
	}
	if in.ActorID != "" {
		params.Actor = knock.UserID(in.ActorID)
	}
	runID, err := a.Knock.Workflows.Trigger(ctx, in.Workflow, params, knock.WithIdempotencyKey(in.IdempotencyKey))
	if err != nil {
		// As for any provider (providerhttp.Classify); a 429 carries Knock's
		// Retry-After, if it sent one, as the next delay, and no active key
		// is KnockCredentialMissing. A call that got no answer is retried:
		// the idempotency key makes that safe even if Knock did act on the
		// lost request.
		return nil, classified(providerKnock, providerhttp.Classify(err), err)
	}
	// With a key func the client sends while a key is active and records
	// otherwise, so the run id, not the client, says which this call did.
	console := knock.IsConsoleRun(runID)
	logger.Info("knock: workflow triggered", "knockRunID", runID, "console", console)
	return &NotifyOutput{WorkflowRunID: runID, Console: console}, nil
}

// validate rejects triggers Knock would refuse and triggers crmflow must not
// send: every trigger from crmflow is idempotent.
func (in NotifyInput) validate() error {
	switch {
	case strings.TrimSpace(in.Workflow) == "":
		return invalidKnockInput("knock workflow key is empty")
	case len(in.Recipients) == 0:
		return invalidKnockInput("no recipients")
	case strings.TrimSpace(in.IdempotencyKey) == "":
		return invalidKnockInput("idempotency key is empty")
	}
	for i, r := range in.Recipients {
		if strings.TrimSpace(r) == "" {
			return invalidKnockInput(fmt.Sprintf("recipient %d is empty", i))
		}
	}
	return nil
}

// invalidKnockInput is a permanent KnockInvalidRequest for a bad input.
func invalidKnockInput(msg string) error {
	return permanent(providerKnock, ErrTypeInvalid, errors.New(msg))
}
