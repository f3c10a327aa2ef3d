package workflows

import (
	"errors"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/providerhttp"
	"github.com/crmflow/crmflow/internal/providers"
)

// activityPolicy is how a kind of activity runs: its options (timeouts and
// retry policy) and the provider whose task queue carries it ("" for the
// workflow's own queue: the database and Temporal itself).
type activityPolicy struct {
	provider string
	options  workflow.ActivityOptions
	// local runs the activity as a local activity, in the worker that runs
	// the workflow task, with options' timeouts and retry policy: no task
	// queue round trip and no activity task, which spares the engine a
	// workflow task per step. Only for short PostgreSQL steps on the
	// workflow's own queue (provider "").
	local bool
}

// context returns ctx with the policy's options and task queue applied; it
// is the one place an activity's task queue is chosen.
func (p activityPolicy) context(ctx workflow.Context) workflow.Context {
	if p.local {
		return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout:    p.options.StartToCloseTimeout,
			ScheduleToCloseTimeout: p.options.ScheduleToCloseTimeout,
			RetryPolicy:            p.options.RetryPolicy,
		})
	}
	opts := p.options
	if p.provider != "" {
		opts.TaskQueue = contract.ProviderTaskQueue(workflow.GetInfo(ctx).TaskQueueName, p.provider)
	}
	return workflow.WithActivityOptions(ctx, opts)
}

// execute runs activity in ctx (from context) as the policy says: a local
// activity or an activity task.
func (p activityPolicy) execute(ctx workflow.Context, activity any, args ...any) workflow.Future {
	if p.local {
		return workflow.ExecuteLocalActivity(ctx, activity, args...)
	}
	return workflow.ExecuteActivity(ctx, activity, args...)
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
	// storeLocalOptions are storeOptions as a local activity, for the short
	// PostgreSQL steps of runs from localStoreSteps on.
	storeLocalOptions = activityPolicy{local: true, options: storeOptions.options}
	// stripeOptions: one call (RetrievePaymentIntent) of at most
	// providers.StripeHTTPTimeout.
	stripeOptions = activityPolicy{provider: contract.ProviderStripe, options: workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         backoff(8),
	}}
	// stripeMoneyOptions: a credit or clawback looks before it creates,
	// paging through the customer's balance transactions, so it makes
	// several calls; it heartbeats at each, so a dead worker is noticed
	// after one call's deadline and a long look-up still has room.
	stripeMoneyOptions = activityPolicy{provider: contract.ProviderStripe, options: workflow.ActivityOptions{
		StartToCloseTimeout: callsTimeout(stripeMoneyCalls, providers.StripeHTTPTimeout),
		HeartbeatTimeout:    heartbeatTimeout(providers.StripeHTTPTimeout),
		RetryPolicy:         backoff(8),
	}}
	knockOptions = activityPolicy{provider: contract.ProviderKnock, options: workflow.ActivityOptions{
		StartToCloseTimeout: 15 * time.Second,
		RetryPolicy:         backoff(8),
	}}
	// simpleLoginOptions: creation looks before it creates and enable/disable
	// set state, so a retry is safe; a 429 waits for the activity's
	// NextRetryDelay. CreateAlias makes up to seven calls, each heartbeating.
	simpleLoginOptions = activityPolicy{provider: contract.ProviderSimpleLogin, options: workflow.ActivityOptions{
		StartToCloseTimeout: callsTimeout(simpleLoginCalls, providerhttp.DefaultTimeout),
		HeartbeatTimeout:    heartbeatTimeout(providerhttp.DefaultTimeout),
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

// The most calls a multi-call provider activity makes in the worst case
// short of a pathological search. A SimpleLogin creation: look, mailboxes,
// options, create, and options and create again after an expired signed
// suffix, then a look after a raced address. A Stripe money step: five pages
// of balance transactions (500; a referral's step is near the top) and the
// creation. A look-up that pages further may use up StartToClose; its retry
// looks again before creating, so nothing happens twice.
const (
	simpleLoginCalls = 7
	stripeMoneyCalls = 6
)

// callsTimeout is StartToClose for an activity of calls calls, each bounded
// by perCall (the HTTP client's timeout, worker/activities.go), with room for
// the work between them.
func callsTimeout(calls int, perCall time.Duration) time.Duration {
	return time.Duration(calls)*perCall + 10*time.Second
}

// heartbeatTimeout is the heartbeat timeout of an activity that heartbeats
// before each call (activities.HeartbeatEachCall): one call's deadline and a
// margin, so a slow call does not time it out but a dead worker is noticed.
func heartbeatTimeout(perCall time.Duration) time.Duration {
	return perCall + 5*time.Second
}

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
