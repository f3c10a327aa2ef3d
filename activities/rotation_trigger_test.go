package activities_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
)

// fakeRotationStarter records the starts it is asked for.
type fakeRotationStarter struct {
	asked []string
	err   error
}

func (f *fakeRotationStarter) StartOrJoinKeyRotation(_ context.Context, provider, requestedBy string) (string, error) {
	f.asked = append(f.asked, provider+" by "+requestedBy)
	return "run-" + provider, f.err
}

// TestStartOrJoinKeyRotationActivity: the activity starts through its
// starter; a failed start is retryable, a bad provider is not.
func TestStartOrJoinKeyRotationActivity(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	f := &fakeRotationStarter{}
	env := ts.NewTestActivityEnvironment()
	a := &activities.RotationTriggerActivities{Starter: f}
	env.RegisterActivity(a)
	v, err := env.ExecuteActivity(a.StartOrJoinKeyRotation, activities.StartKeyRotationInput{Provider: "resend", RequestedBy: "schedule"})
	require.NoError(t, err)
	var out activities.StartKeyRotationOutput
	require.NoError(t, v.Get(&out))
	require.Equal(t, activities.StartKeyRotationOutput{WorkflowID: "key-rotation/resend", RunID: "run-resend"}, out)
	require.Equal(t, []string{"resend by schedule"}, f.asked)

	_, err = env.ExecuteActivity(a.StartOrJoinKeyRotation, activities.StartKeyRotationInput{Provider: "a/b"})
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr))
	require.True(t, appErr.NonRetryable())

	f.err = errors.New("unavailable")
	_, err = env.ExecuteActivity(a.StartOrJoinKeyRotation, activities.StartKeyRotationInput{Provider: "resend"})
	require.True(t, errors.As(err, &appErr))
	require.False(t, appErr.NonRetryable())
	require.Equal(t, "TemporalUnavailable", appErr.Type())
}
