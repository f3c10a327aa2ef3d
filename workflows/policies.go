package workflows

import (
	"errors"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Activity options per provider, declared once. Transient errors (network,
// 5xx, 429) retry with backoff, a 429's Retry-After overriding the next delay
// (activities set NextRetryDelay); errors classified non-retryable stop at
// once. When a step finally fails the workflow parks it for an operator, so
// MaximumAttempts bounds how long a broken provider is hammered, not whether
// the work is done.
var (
	storeOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		// A database outage is waited out for an hour before parking.
		ScheduleToCloseTimeout: time.Hour,
		RetryPolicy:            backoff(0),
	}
	stripeOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         backoff(8),
	}
	knockOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 15 * time.Second,
		RetryPolicy:         backoff(8),
	}
	// simpleLoginOptions: creation looks before it creates and enable/disable
	// set state, so a retry is safe; a 429 waits for the activity's
	// NextRetryDelay. CreateAlias makes up to four calls.
	simpleLoginOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         backoff(8),
	}
	// parkOptions are for recording a dead letter itself: it must not give up.
	parkOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         backoff(0),
	}
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
func attemptsOf(opts workflow.ActivityOptions, err error) int {
	var actErr *temporal.ActivityError
	if opts.RetryPolicy != nil && opts.RetryPolicy.MaximumAttempts > 0 && errors.As(err, &actErr) &&
		actErr.RetryState() == enumspb.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED {
		return int(opts.RetryPolicy.MaximumAttempts)
	}
	return 1
}
