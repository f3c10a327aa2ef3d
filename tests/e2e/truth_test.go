package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
)

// These tests hold the edge to the truth: a start for a business key whose
// run is over says so, a console alias made after a restart does not take
// an id the last process handed out, an aborted run's status says aborted,
// and a dead letter names the error that parked it.

// closedRun waits for the latest run of workflowID to close and returns its
// run id.
func (f *fixture) closedRun(workflowID string) string {
	f.t.Helper()
	var runID string
	require.Eventually(f.t, func() bool {
		desc, err := f.temporal.DescribeWorkflowExecution(context.Background(), workflowID, "")
		if err != nil {
			return false
		}
		info := desc.GetWorkflowExecutionInfo()
		runID = info.GetExecution().GetRunId()
		return info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	}, 60*time.Second, 100*time.Millisecond, "%s never closed", workflowID)
	return runID
}

// requireClosedConflict checks a 409 that names the closed run.
func requireClosedConflict(t *testing.T, status int, body map[string]any, code, workflowID, runID string) {
	t.Helper()
	require.Equal(t, http.StatusConflict, status, "a start for a key whose run is over is refused: %v", body)
	assert.Equal(t, code, errorCode(body))
	e, _ := body["error"].(map[string]any)
	assert.Equal(t, workflowID, e["workflow_id"], "the answer names the run that ended")
	assert.Equal(t, runID, e["run_id"], "the answer names the run that ended")
	assert.Contains(t, errorMessage(body), runID)
}

// TestEndedAliasIsNotStartedAgain: an alias whose lifecycle ended (it was
// deleted) cannot be created again under the same alias ID, even for
// another customer: the API says 409 alias_ended instead of 202 with the
// old run's id and nothing done.
func TestEndedAliasIsNotStartedAgain(t *testing.T) {
	f := newFixture(t, fixtureOptions{worker: true})
	ctx := context.Background()
	for _, c := range []string{"cus_end1", "cus_end2"} {
		require.NoError(t, f.store.UpsertCustomer(ctx, store.Customer{ID: c, Email: c + "@example.com"}))
	}
	post := func(path, body string) (int, map[string]any) {
		return f.api(http.MethodPost, path, apiToken, strings.NewReader(body))
	}
	status, body := post("/v1/aliases", `{"alias_id":"al-ended","customer_id":"cus_end1"}`)
	require.Equal(t, http.StatusAccepted, status, body)
	runID := body["run_id"]
	status, body = post("/v1/aliases", `{"alias_id":"al-ended","customer_id":"cus_end1"}`)
	require.Equal(t, http.StatusAccepted, status, body)
	assert.Equal(t, runID, body["run_id"], "a start while the alias lives joins its run")
	require.Eventually(t, func() bool {
		a, err := f.store.GetAlias(ctx, "al-ended")
		return err == nil && a.State == store.AliasActive
	}, 30*time.Second, 100*time.Millisecond)

	status, body = post("/v1/aliases/al-ended/delete", "")
	require.Equal(t, http.StatusAccepted, status, body)
	id := contract.AliasID("al-ended")
	require.Equal(t, runID, f.closedRun(id))

	status, body = post("/v1/aliases", `{"alias_id":"al-ended","customer_id":"cus_end2"}`)
	requireClosedConflict(t, status, body, "alias_ended", id, runID.(string))
	desc, err := f.temporal.DescribeWorkflowExecution(ctx, id, "")
	require.NoError(t, err)
	assert.Equal(t, runID, desc.GetWorkflowExecutionInfo().GetExecution().GetRunId(), "no new run was started")
	a, err := f.store.GetAlias(ctx, "al-ended")
	require.NoError(t, err)
	assert.Equal(t, store.AliasDeleted, a.State, "the ended alias stays ended")
}

// TestClosedOrderConfirmationIsNotStartedAgain: a start while the order's
// confirmation runs joins it (202, its run id); once it finished, a start
// answers 409 order_closed with the finished run's id instead of a 202 that
// pretends a confirmation is under way.
func TestClosedOrderConfirmationIsNotStartedAgain(t *testing.T) {
	f := newFixture(t, fixtureOptions{worker: true})
	f.seedOrder("o-closed", "cus_closed")
	status, body := f.api(http.MethodPost, "/v1/orders/o-closed/confirmation", apiToken, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	runID := body["run_id"].(string)
	status, body = f.api(http.MethodPost, "/v1/orders/o-closed/confirmation", apiToken, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	assert.Equal(t, runID, body["run_id"], "a start while the confirmation runs joins it")

	ev := stripeEvent("evt_closed", "payment_intent.succeeded", "o-closed")
	status, _ = f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	id := contract.OrderConfirmationID("o-closed")
	var res contract.OrderConfirmationResult
	require.NoError(t, f.result(id, &res))
	require.Equal(t, "confirmed", res.State)

	status, body = f.api(http.MethodPost, "/v1/orders/o-closed/confirmation", apiToken, nil)
	requireClosedConflict(t, status, body, "order_closed", id, runID)
}

// TestClosedReferralRewardIsNotStartedAgain: a backfill start for a
// referral whose reward already finished answers 409 reward_closed with the
// finished run's id.
func TestClosedReferralRewardIsNotStartedAgain(t *testing.T) {
	f := newFixture(t, fixtureOptions{worker: true, referrals: activities.ReferralDefaults{
		RewardCents: 1000, RefundWindow: time.Second, MinimumOrderCents: 1000, ClawbackWindow: time.Second}})
	f.seedReferral("ref-closed", "o-refclosed")
	ev := stripeEvent("evt_refclosed", "payment_intent.succeeded", "o-refclosed")
	status, _ := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "rewarded", f.rewardResult("ref-closed").State)
	id := contract.ReferralRewardID("ref-closed")
	runID := f.closedRun(id)

	status, body := f.api(http.MethodPost, "/v1/referrals/ref-closed/reward", apiToken, nil)
	requireClosedConflict(t, status, body, "reward_closed", id, runID)
}

// TestFinishedKeyRotationStartsAgain: rotations recur, so a start after a
// rotation ended is a new run (202), not a conflict.
func TestFinishedKeyRotationStartsAgain(t *testing.T) {
	f := newFixture(t, fixtureOptions{worker: true})
	status, body := f.api(http.MethodPost, "/v1/key-rotations/knock", operatorToken, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	first := body["run_id"]
	require.Eventually(t, func() bool {
		status, body = f.api(http.MethodPost, "/v1/key-rotations/knock/cancel", operatorToken, nil)
		return status == http.StatusAccepted
	}, 20*time.Second, 100*time.Millisecond, "the rotation is cancelled once it waits for a key: %v", body)
	f.closedRun(contract.KeyRotationID("knock"))

	status, body = f.api(http.MethodPost, "/v1/key-rotations/knock", operatorToken, nil)
	require.Equal(t, http.StatusAccepted, status, body)
	assert.NotEqual(t, first, body["run_id"], "a finished rotation is started again")
}

// TestConsoleAliasAfterRestartDoesNotPark: two worker processes (two
// console SimpleLogin clients, as before and after a restart of crmflow
// dev) each create an alias in console mode on the same database. The
// second must not get the first one's fake SimpleLogin id, which the
// aliases table's unique simplelogin_id would refuse (StoreConflict, a
// parked run).
func TestConsoleAliasAfterRestartDoesNotPark(t *testing.T) {
	first := newFixture(t, fixtureOptions{worker: true})
	ctx := context.Background()
	require.NoError(t, first.store.UpsertCustomer(ctx, store.Customer{ID: "cus_restart", Email: "restart@example.com"}))
	create := func(f *fixture, aliasID string) *store.Alias {
		status, body := f.api(http.MethodPost, "/v1/aliases", apiToken,
			strings.NewReader(`{"alias_id":"`+aliasID+`","customer_id":"cus_restart"}`))
		require.Equal(t, http.StatusAccepted, status, body)
		var a *store.Alias
		parked := f.waitParked(func() bool {
			var err error
			a, err = f.store.GetAlias(ctx, aliasID)
			return err == nil && a.State == store.AliasActive
		})
		require.Empty(t, parked, "creating %s parked", aliasID)
		return a
	}
	a := create(first, "al-before-restart")
	second := newFixture(t, fixtureOptions{worker: true, store: first.store})
	b := create(second, "al-after-restart")
	assert.NotEqual(t, a.SimpleLoginID, b.SimpleLoginID)
	assert.Positive(t, b.SimpleLoginID)
}

// TestAbortedRunSaysSoAndItsDeadLetterNamesTheError: a payment for an order
// the database does not know parks the order's run on load-order with a
// non-retryable StoreNotFound. The dead letter (GET /v1/dead-letters) names
// that error as it is, not the Go wrapper around its cause; an operator
// aborts, and the closed run's status says aborted, at which step and by
// whom.
func TestAbortedRunSaysSoAndItsDeadLetterNamesTheError(t *testing.T) {
	f := newFixture(t, fixtureOptions{worker: true})
	// Only a Go caller can start a run for a missing order now: the API
	// refuses it (404) and a payment for it ends unroutable.
	_, err := f.starter.StartOrderConfirmation(context.Background(), "o-ghost")
	require.NoError(t, err)

	dl := f.parkedDeadLetter("load-order")
	// What operators read: the API's list.
	_, body := f.api(http.MethodGet, "/v1/dead-letters?status=parked", operatorToken, nil)
	dead, _ := body["dead_letters"].([]any)
	require.Len(t, dead, 1)
	d := dead[0].(map[string]any)
	assert.Equal(t, "StoreNotFound", d["error_type"])
	msg, _ := d["error"].(string)
	assert.Contains(t, msg, "not found")
	assert.Contains(t, msg, "StoreNotFound")
	assert.Contains(t, msg, "not retryable")
	assert.NotContains(t, msg, "wrapError", "the dead letter names the error, not a Go wrapper type")
	assert.NotContains(t, msg, "retryable: true")
	assert.Equal(t, float64(1), d["attempts"], "a non-retryable error is tried once")

	t.Logf("dead letter: %s (error_type %s)", msg, d["error_type"])

	f.decide(dl, "abort")
	id := contract.OrderConfirmationID("o-ghost")
	f.closedRun(id)
	status, body := f.api(http.MethodGet, "/v1/workflows/"+id, apiToken, nil)
	require.Equal(t, http.StatusOK, status, body)
	st, _ := body["status"].(map[string]any)
	assert.Equal(t, "aborted", st["state"], "status: %v", st)
	assert.Equal(t, "load-order", st["step"])
	assert.Equal(t, false, st["parked"])
	assert.Equal(t, fmt.Sprintf("step load-order aborted by operator %s", operatorName), st["detail"])

	// A stale payment event for the order (now written) reaches the
	// aborted run: it ends late and starts nothing.
	desc, err := f.temporal.DescribeWorkflowExecution(context.Background(), id, "")
	require.NoError(t, err)
	aborted := desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	f.seedOrder("o-ghost", "cus_ghost")
	ev := stripeEvent("evt_ghost", "payment_intent.succeeded", "o-ghost")
	status, _ = f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	r := f.waitInboxEvent("evt_ghost", "late")
	assert.Contains(t, r.Note, "had ended failed (run "+aborted+"); order is pending")
	desc, err = f.temporal.DescribeWorkflowExecution(context.Background(), id, "")
	require.NoError(t, err)
	assert.Equal(t, aborted, desc.GetWorkflowExecutionInfo().GetExecution().GetRunId(), "no new run from a stale event")
	assert.Equal(t, store.OrderPending, f.orderStatus("o-ghost"))
}
