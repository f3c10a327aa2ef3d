package workflows

import (
	"errors"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/contract"
)

// activityPolicy is how a kind of activity runs: its options (timeouts and
// retry policy) and the provider whose task queue carries it ("" for the
// workflow's own queue: the database and Temporal itself).
type activityPolicy struct {
	provider string
	options  workflow.ActivityOptions
}

// context returns ctx with the policy's options and task queue applied; it
// is the one place an activity's task queue is chosen.
func (p activityPolicy) context(ctx workflow.Context) workflow.Context {
	opts := p.options
	if p.provider != "" {
		opts.TaskQueue = contract.ProviderTaskQueue(workflow.GetInfo(ctx).TaskQueueName, p.provider)
	}
	return workflow.WithActivityOptions(ctx, opts)
}

// Activity policies per provider, declared once. Transient errors (network,
// 5xx, 429) retry with backoff, a 429's Retry-After overriding the next delay
// (activities set NextRetryDelay); errors classified non-retryable stop at
// once. When a step finally fails the workflow parks it for an operator, so
// MaximumAttempts bounds how long a broken provider is hammered, not whether
// the work is done. No provider policy has a ScheduleToClose timeout: while
// the worker has paused a failing provider's queue, retries wait there
// without spending attempts.
var (
	storeOptions = activityPolicy{options: workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		// A database outage is waited out for an hour before parking.
		ScheduleToCloseTimeout: time.Hour,
		RetryPolicy:            backoff(0),
	}}
	stripeOptions = activityPolicy{provider: contract.ProviderStripe, options: workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         backoff(8),
	}}
	knockOptions = activityPolicy{provider: contract.ProviderKnock, options: workflow.ActivityOptions{
		StartToCloseTimeout: 15 * time.Second,
		RetryPolicy:         backoff(8),
	}}
	// simpleLoginOptions: creation looks before it creates and enable/disable
	// set state, so a retry is safe; a 429 waits for the activity's
	// NextRetryDelay. CreateAlias makes up to four calls.
	simpleLoginOptions = activityPolicy{provider: contract.ProviderSimpleLogin, options: workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         backoff(8),
	}}
	// emailOptions: a send is idempotent (the emails row and Resend's
	// Idempotency-Key), so retries are safe; Resend's 2 requests a second
	// are the queue's limit, so a burst waits there, not in retries.
	emailOptions = activityPolicy{provider: contract.ProviderResend, options: workflow.ActivityOptions{
		StartToCloseTimeout: 45 * time.Second,
		RetryPolicy:         backoff(8),
	}}
	// parkOptions are for recording a dead letter itself: it must not give up.
	parkOptions = activityPolicy{options: workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         backoff(0),
	}}
)

// backoff is the retry policy every provider shares: from one second,
// doubling, at most a minute apart; maxAttempts 0 means no limit (the
// activity's ScheduleToClose, if any, bounds it instead).
func backoff(maxAttempts int32) *temporal.RetryPolicy {
	return &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    time.Minute,
		MaximumAttempts:    maxAttempts,
	}
}

// attemptsOf estimates how many attempts a failed activity made: the policy's
// maximum when retries ran out, else one (the error was non-retryable).
func attemptsOf(p activityPolicy, err error) int {
	var actErr *temporal.ActivityError
	rp := p.options.RetryPolicy
	if rp != nil && rp.MaximumAttempts > 0 && errors.As(err, &actErr) &&
		actErr.RetryState() == enumspb.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED {
		return int(rp.MaximumAttempts)
	}
	return 1
}
