package worker

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

func TestFinalFailure(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	policy := &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
		MaximumAttempts: 5, NonRetryableErrorTypes: []string{"StripeInvalidRequest"}}
	transient := temporal.NewApplicationError("knock: 503", "KnockUnavailable")
	cases := []struct {
		name  string
		info  activity.Info
		err   error
		final bool
	}{
		{"transient, attempts left", activity.Info{Attempt: 2, RetryPolicy: policy}, transient, false},
		{"transient, last attempt", activity.Info{Attempt: 5, RetryPolicy: policy}, transient, true},
		{"non-retryable error", activity.Info{Attempt: 1, RetryPolicy: policy},
			temporal.NewNonRetryableApplicationError("bad key", "KnockAuthFailed", nil), true},
		{"type the policy lists as non-retryable", activity.Info{Attempt: 1, RetryPolicy: policy},
			temporal.NewApplicationError("bad", "StripeInvalidRequest"), true},
		// Temporal looks at the returned error, not what it wraps.
		{"wrapped non-retryable retries", activity.Info{Attempt: 1, RetryPolicy: policy},
			fmt.Errorf("notify: %w", temporal.NewNonRetryableApplicationError("bad key", "KnockAuthFailed", nil)), false},
		{"unlimited attempts", activity.Info{Attempt: 40, RetryPolicy: &temporal.RetryPolicy{}}, errors.New("boom"), false},
		{"next try after schedule-to-close", activity.Info{Attempt: 3, RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2},
			ScheduledTime: now.Add(-58 * time.Second), ScheduleToCloseTimeout: time.Minute}, transient, true},
		{"next try before schedule-to-close", activity.Info{Attempt: 1, RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2},
			ScheduledTime: now.Add(-10 * time.Second), ScheduleToCloseTimeout: time.Minute}, transient, false},
		{"Retry-After past schedule-to-close", activity.Info{Attempt: 1, RetryPolicy: &temporal.RetryPolicy{},
			ScheduledTime: now.Add(-10 * time.Second), ScheduleToCloseTimeout: time.Minute},
			temporal.NewApplicationErrorWithOptions("429", "KnockRateLimited", temporal.ApplicationErrorOptions{NextRetryDelay: time.Minute}), true},
		{"no policy from the server", activity.Info{Attempt: 9}, transient, false},
	}
	for _, c := range cases {
		assert.Equal(t, c.final, finalFailure(c.info, c.err, now), c.name)
	}
}

func TestNextRetryDelay(t *testing.T) {
	rp := &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second}
	assert.Equal(t, time.Second, nextRetryDelay(rp, 1, nil))
	assert.Equal(t, 4*time.Second, nextRetryDelay(rp, 3, nil))
	assert.Equal(t, 10*time.Second, nextRetryDelay(rp, 9, nil), "capped at MaximumInterval")
	assert.Equal(t, 100*time.Second, nextRetryDelay(&temporal.RetryPolicy{}, 30, nil), "Temporal's defaults: 1 s, ×2, cap 100 s")
}

func TestActivityProvider(t *testing.T) {
	assert.Equal(t, "knock", activityProvider("Notify", "", ""), "from the activity's struct")
	assert.Equal(t, "stripe", activityProvider("RetrievePaymentIntent", "StoreUnavailable", ""), "the struct wins")
	assert.Equal(t, "simplelogin", activityProvider("CreateAlias", "", ""))
	assert.Equal(t, "resend", activityProvider("CreateAPIKey", "", ""))
	assert.Equal(t, "store", activityProvider("LoadOrder", "StoreUnavailable", ""), "from the error type")
	assert.Equal(t, "temporal", activityProvider("SignalStockLevels", "TemporalUnavailable", ""))
	assert.Equal(t, "resend", activityProvider("Unknown", "", "crmflow-resend"), "from the provider's task queue")
	assert.Equal(t, "", activityProvider("LoadOrder", "", "crmflow"))
}

func TestErrorTypes(t *testing.T) {
	app := temporal.NewApplicationError("x", "KnockAuthFailed")
	assert.Equal(t, "KnockAuthFailed", failureType(app))
	assert.Equal(t, "wrapError", failureType(fmt.Errorf("op: %w", app)))
	assert.Equal(t, "KnockAuthFailed", errorType(fmt.Errorf("op: %w", app)), "reports name the classified error")
	assert.Equal(t, "", failureType(errors.New("plain")))
}
