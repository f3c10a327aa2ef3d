package worker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/internal/testsupport/testenv"
	"github.com/crmflow/crmflow/worker"
	"github.com/crmflow/crmflow/workflows"
)

// cardSecret stands in for a secret in an activity's input; it must never
// reach Sentry.
const cardSecret = "sk_live_never_in_sentry"

type chargeInput struct {
	CardKey string
	// FailAttempts fails the first n attempts with a retryable error.
	FailAttempts int32
	// Auth fails every attempt with a non-retryable error.
	Auth bool
	// FailWorkflow makes the workflow fail with the activity's error
	// instead of parking it.
	FailWorkflow bool
}

type chargeActivities struct{}

// ChargeCard fails the way crmflow's provider activities classify failures.
func (*chargeActivities) ChargeCard(ctx context.Context, in chargeInput) (string, error) {
	switch {
	case in.Auth:
		return "", temporal.NewNonRetryableApplicationError("stripe: invalid API key", "StripeAuthFailed", nil)
	case activity.GetInfo(ctx).Attempt <= in.FailAttempts:
		return "", temporal.NewApplicationError("knock: 503 Service Unavailable", "KnockUnavailable")
	}
	return "ch_1", nil
}

// chargeWorkflow runs ChargeCard as the step "charge-card" with three
// attempts, like a crmflow step.
func chargeWorkflow(ctx workflow.Context, in chargeInput) (string, error) {
	workflows.RecordStep(ctx, "charge-card")
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 50 * time.Millisecond, BackoffCoefficient: 1, MaximumAttempts: 3},
	})
	var out string
	err := workflow.ExecuteActivity(ctx, "ChargeCard", in).Get(ctx, &out)
	if err != nil && !in.FailWorkflow {
		return "parked", nil
	}
	return out, err
}

// TestSentryInterceptorReportsFinalFailuresOnly runs activities against a
// real Temporal with the interceptor and a Sentry stand-in: a transient
// failure that a retry gets past sends nothing; an exhausted retry policy
// and a non-retryable error send one event each, at the last attempt; a
// failed workflow sends its own event. No input reaches Sentry.
func TestSentryInterceptorReportsFinalFailuresOnly(t *testing.T) {
	peer := newSentryPeer(t)
	rep := peer.reporter()
	c := testenv.TemporalClient(t)
	queue := testenv.TaskQueue(t)
	w := sdkworker.New(c, queue, sdkworker.Options{Interceptors: worker.Interceptors(rep)})
	w.RegisterWorkflowWithOptions(chargeWorkflow, workflow.RegisterOptions{Name: "ChargeCardTest"})
	w.RegisterActivity(&chargeActivities{})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	cases := map[string]chargeInput{
		"retried-then-ok": {FailAttempts: 2},
		"exhausted":       {FailAttempts: 99},
		"non-retryable":   {Auth: true},
		"workflow-fails":  {Auth: true, FailWorkflow: true},
	}
	runs := map[string]client.WorkflowRun{}
	for name, in := range cases {
		in.CardKey = cardSecret
		id := fmt.Sprintf("charge/%s/%d", name, time.Now().UnixNano())
		run, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: id, TaskQueue: queue}, "ChargeCardTest", in)
		require.NoError(t, err)
		runs[name] = run
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for name, run := range runs {
		var out string
		err := run.Get(ctx, &out)
		if name == "workflow-fails" {
			require.Error(t, err, name)
		} else {
			require.NoError(t, err, name)
		}
	}
	rep.Flush(5 * time.Second)

	assert.Empty(t, peer.eventsFor(runs["retried-then-ok"].GetID()), "a failure a retry got past is not reported")

	exhausted := peer.eventsFor(runs["exhausted"].GetID())
	require.Len(t, exhausted, 1, "one event when the retry policy is spent, not one per attempt")
	assert.Equal(t, map[string]string{
		"workflow_id": runs["exhausted"].GetID(), "run_id": runs["exhausted"].GetRunID(),
		"workflow_type": "ChargeCardTest", "activity_type": "ChargeCard", "step": "charge-card",
		"provider": "knock", "attempt": "3", "error_type": "KnockUnavailable",
	}, exhausted[0].Tags)
	assert.Equal(t, "test", exhausted[0].Environment)
	assert.Equal(t, "crmflow@1.2.3", exhausted[0].Release)
	assert.Equal(t, []string{"ChargeCardTest", "charge-card", "KnockUnavailable"}, exhausted[0].Fingerprint)

	nonRetryable := peer.eventsFor(runs["non-retryable"].GetID())
	require.Len(t, nonRetryable, 1)
	assert.Equal(t, "1", nonRetryable[0].Tags["attempt"])
	assert.Equal(t, "stripe", nonRetryable[0].Tags["provider"])
	assert.Equal(t, "StripeAuthFailed", nonRetryable[0].Tags["error_type"])
	assert.Contains(t, nonRetryable[0].Message, "stripe: invalid API key")

	failed := peer.eventsFor(runs["workflow-fails"].GetID())
	require.Len(t, failed, 2, "the activity's final failure and the workflow's")
	var wf sentryEvent
	for _, ev := range failed {
		if ev.Tags["activity_type"] == "" {
			wf = ev
		}
	}
	assert.Equal(t, map[string]string{
		"workflow_id": runs["workflow-fails"].GetID(), "run_id": runs["workflow-fails"].GetRunID(),
		"workflow_type": "ChargeCardTest", "step": "charge-card", "provider": "stripe", "attempt": "1",
		"error_type": "StripeAuthFailed",
	}, wf.Tags)

	assert.Len(t, peer.all(), 4, "no other events")
	assert.NotContains(t, peer.rawBytes(), cardSecret, "activity input never goes to Sentry")
}
