package e2e_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/testsupport/doctortest"
	"github.com/crmflow/crmflow/worker"
)

// scheduledFixture is a fixture with a worker on a namespace of its own,
// where the rotation Schedules are made as a worker start makes them
// (their IDs and the rotations' are the contract's, so they must not meet
// another test's).
func scheduledFixture(t *testing.T) *fixture {
	t.Helper()
	_, c := doctortest.Namespace(t, true)
	f := newFixture(t, fixtureOptions{worker: true, temporal: c})
	cfg, err := config.Load(config.LoadOptions{Dev: true, Environ: []string{"CRMFLOW_STRIPE_WEBHOOK_SECRET=" + stripeSecret}})
	require.NoError(t, err)
	require.Subset(t, cfg.RotatedProviders(), []string{contract.KeyRotationCrmflow, contract.KeyRotationStripeWebhook})
	doctortest.Eventually(t, "create the rotation schedules", func(ctx context.Context) error {
		return worker.EnsureKeyRotationSchedules(ctx, c, cfg, f.queue)
	})
	return f
}

// trigger runs provider's rotation Schedule now, as its interval would, and
// returns the rotation run its trigger started or joined.
func (f *fixture) trigger(provider string) contract.KeyRotationTriggerResult {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := f.temporal.ScheduleClient().GetHandle(ctx, contract.KeyRotationScheduleID(provider))
	desc, err := h.Describe(ctx)
	require.NoError(f.t, err)
	before := len(desc.Info.RecentActions)
	require.NoError(f.t, h.Trigger(ctx, client.ScheduleTriggerOptions{}))
	var started *client.ScheduleWorkflowExecution
	require.Eventually(f.t, func() bool {
		desc, err := h.Describe(ctx)
		if err != nil || len(desc.Info.RecentActions) <= before {
			return false
		}
		started = desc.Info.RecentActions[len(desc.Info.RecentActions)-1].StartWorkflowResult
		return started != nil
	}, 30*time.Second, 100*time.Millisecond, "the schedule started its action")
	assert.True(f.t, strings.HasPrefix(started.WorkflowID, contract.KeyRotationTriggerID(provider)+"-"),
		"the Schedule's own run is the trigger, at a time-suffixed ID: %s", started.WorkflowID)
	var res contract.KeyRotationTriggerResult
	require.NoError(f.t, f.temporal.GetWorkflow(ctx, started.WorkflowID, started.FirstExecutionRunID).Get(ctx, &res))
	require.Equal(f.t, contract.KeyRotationID(provider), res.WorkflowID)
	return res
}

// runningRotation is the run at provider's rotation ID, which must be
// running.
func (f *fixture) runningRotation(provider string) string {
	f.t.Helper()
	desc, err := f.temporal.DescribeWorkflowExecution(context.Background(), contract.KeyRotationID(provider), "")
	require.NoError(f.t, err)
	info := desc.GetWorkflowExecutionInfo()
	require.Equal(f.t, "Running", info.GetStatus().String())
	require.Equal(f.t, contract.KeyRotationType, info.GetType().GetName())
	return info.GetExecution().GetRunId()
}

// TestScheduledHumanInTheLoopRotationAtItsID: the Schedule's rotation of
// Stripe's webhook signing secret runs at key-rotation/stripe_webhook, so
// an operator drives it to the end through the API (submit the key, a
// genuine delivery proves it, confirm the old one revoked). An on-demand
// start and a second scheduled one while it waits join it.
func TestScheduledHumanInTheLoopRotationAtItsID(t *testing.T) {
	f := scheduledFixture(t)
	ctx := context.Background()
	const provider, newSecret = contract.KeyRotationStripeWebhook, "whsec_good_scheduled_secret_01"
	id := contract.KeyRotationID(provider)

	scheduled := f.trigger(provider)
	assert.Equal(t, scheduled.RunID, f.runningRotation(provider))
	f.waitStatus(id, "awaiting-key")

	status, body := f.api(http.MethodPost, "/v1/key-rotations/"+provider, operatorToken, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	assert.Equal(t, id, body["workflow_id"])
	assert.Equal(t, scheduled.RunID, body["run_id"], "an on-demand start joins the scheduled rotation")
	assert.Equal(t, scheduled.RunID, f.trigger(provider).RunID, "the next scheduled start joins it too")

	status, body = f.api(http.MethodPost, "/v1/key-rotations/"+provider+"/key", operatorToken,
		strings.NewReader(`{"key":"`+newSecret+`"}`))
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, true, body["valid"])
	f.waitStatus(id, "awaiting-proof")
	f.seedOrder("o-sched", "c-sched")
	genuine := stripeEvent("evt_sched_both", "payment_intent.succeeded", "o-sched")
	status, _ = f.postStripe(genuine, signBoth(genuine, stripeSecret, newSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	f.waitStatus(id, "awaiting-revocation")
	status, body = f.api(http.MethodPost, "/v1/key-rotations/"+provider+"/revoked", operatorToken, nil)
	require.Equal(t, http.StatusAccepted, status, body)

	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var res contract.KeyRotationResult
	require.NoError(t, f.temporal.GetWorkflow(waitCtx, id, scheduled.RunID).Get(waitCtx, &res))
	assert.Equal(t, "rotated", res.State)
	active, err := f.creds.Active(ctx, provider, "api_key")
	require.NoError(t, err)
	assert.Equal(t, newSecret, active.Secret.Reveal())
	assert.Equal(t, 1, f.knock.countWorkflow("key-rotation-needed"), "one rotation, asked for once")
	f.requireAudited(operatorName, "key_rotation.submit_key", id)
}

// TestScheduledTokenRotationAtItsID: the Schedule's rotation of crmflow's
// start-API token hands its new token to an operator through the API, and
// an on-demand start while it runs joins it.
func TestScheduledTokenRotationAtItsID(t *testing.T) {
	f := scheduledFixture(t)
	const provider = contract.KeyRotationCrmflow
	id := contract.KeyRotationID(provider)

	status, body := f.api(http.MethodPost, "/v1/key-rotations/"+provider, operatorToken, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	onDemand, _ := body["run_id"].(string)
	require.NotEmpty(t, onDemand)
	assert.Equal(t, onDemand, f.trigger(provider).RunID, "a scheduled start joins the operator's rotation")

	var tok string
	require.Eventually(t, func() bool {
		st, b := f.api(http.MethodPost, "/v1/key-rotations/crmflow/token", operatorToken, nil)
		tok, _ = b["token"].(string)
		return st == http.StatusOK
	}, 20*time.Second, 100*time.Millisecond, "the token is collected at %s", id)
	require.NotEmpty(t, tok)
	status, _ = f.api(http.MethodGet, "/v1/workflows/order-confirmation/o-none", tok, nil)
	assert.Equal(t, http.StatusNotFound, status, "the new token works")
	f.waitStatus(id, "grace")
	assert.Equal(t, onDemand, f.runningRotation(provider))
	saveTriggerHistory(t, f, provider)
}

// saveTriggerHistory records the latest trigger run of provider's Schedule
// for the replay test.
func saveTriggerHistory(t *testing.T, f *fixture, provider string) {
	t.Helper()
	desc, err := f.temporal.ScheduleClient().GetHandle(context.Background(), contract.KeyRotationScheduleID(provider)).Describe(context.Background())
	require.NoError(t, err)
	require.NotEmpty(t, desc.Info.RecentActions)
	last := desc.Info.RecentActions[len(desc.Info.RecentActions)-1].StartWorkflowResult
	saveRunHistory(t, f.temporal, last.WorkflowID, last.FirstExecutionRunID, "key_rotation_trigger_joined.json")
}
