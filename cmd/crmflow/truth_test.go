package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// stubRuns leaves runs under crmflow's workflow IDs on the test binary's
// Temporal, standing in for runs crmflow's worker made: a finished one
// (the run returns at once) or one that runs until the test ends.
type stubRuns struct {
	t     *testing.T
	c     client.Client
	queue string
}

func newStubRuns(t *testing.T) *stubRuns {
	c := testenv.TemporalClient(t)
	queue := testenv.TaskQueue(t)
	w := sdkworker.New(c, queue, sdkworker.Options{})
	done := func(workflow.Context) error { return nil }
	for _, name := range []string{contract.OrderConfirmationType, contract.ReferralRewardType, contract.AliasLifecycleType} {
		w.RegisterWorkflowWithOptions(done, workflow.RegisterOptions{Name: name})
	}
	w.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		return workflow.Await(ctx, func() bool { return false })
	}, workflow.RegisterOptions{Name: "Running"})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return &stubRuns{t: t, c: c, queue: queue}
}

// finished leaves a completed run of workflowType under id.
func (s *stubRuns) finished(workflowType, id string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := s.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: s.queue}, workflowType)
	require.NoError(s.t, err)
	require.NoError(s.t, run.Get(ctx, nil))
	return run.GetRunID()
}

// running leaves a run under id that runs until the test ends.
func (s *stubRuns) running(id string) string {
	s.t.Helper()
	run, err := s.c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: id, TaskQueue: s.queue}, "Running")
	require.NoError(s.t, err)
	s.t.Cleanup(func() { _ = s.c.TerminateWorkflow(context.Background(), id, "", "test over") })
	return run.GetRunID()
}

// TestStartCommandsSayWhenTheRunEnded: `crmflow order confirm`, `crmflow
// referral reward` and `crmflow alias create` for a business key whose run
// has ended fail, naming the run, as the API's 409s do; they used to print
// the ended run as if it had been started. A running run is still joined.
func TestStartCommandsSayWhenTheRunEnded(t *testing.T) {
	clearOperatorEnv(t)
	dbURL := testenv.DatabaseURL(t)
	t.Setenv("CRMFLOW_DATABASE_URL", dbURL)
	t.Setenv("CRMFLOW_MASTER_KEY", testenv.MasterKey)
	t.Setenv("CRMFLOW_API_TOKENS", "cli-truth-token")
	t.Setenv("CRMFLOW_TEMPORAL_ADDRESS", testenv.Temporal(t).FrontendAddr())
	t.Setenv("CRMFLOW_TEMPORAL_NAMESPACE", testenv.Temporal(t).Namespace())

	ctx := context.Background()
	st, err := store.Open(ctx, dbURL)
	require.NoError(t, err)
	defer st.Close()
	for _, c := range []string{"cus_cli", "cus_cli_referrer"} {
		require.NoError(t, st.UpsertCustomer(ctx, store.Customer{ID: c, Email: c + "@example.com"}))
	}
	for _, o := range []string{"o-cli-done", "o-cli-running", "o-cli-paid"} {
		require.NoError(t, st.InsertOrder(ctx, store.Order{ID: o, CustomerID: "cus_cli", AmountCents: 4200, Currency: "eur"}))
	}
	require.NoError(t, st.InsertReferral(ctx, "ref-cli", "cus_cli_referrer", "cus_cli"))
	_, err = st.SetOrderOutcome(ctx, "o-cli-paid", store.OrderConfirmed, "pi_cli")
	require.NoError(t, err)

	stubs := newStubRuns(t)
	for _, c := range []struct {
		name, workflowType, workflowID, want string
		args                                 []string
	}{
		{"order", contract.OrderConfirmationType, contract.OrderConfirmationID("o-cli-done"),
			"the confirmation of order o-cli-done has finished", []string{"order", "confirm", "o-cli-done"}},
		{"referral", contract.ReferralRewardType, contract.ReferralRewardID("ref-cli"),
			"the reward of referral ref-cli has finished", []string{"referral", "reward", "ref-cli"}},
		{"alias", contract.AliasLifecycleType, contract.AliasID("al-cli"),
			"alias al-cli has ended", []string{"alias", "create", "al-cli", "--customer", "cus_cli"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			runID := stubs.finished(c.workflowType, c.workflowID)
			out, err := crmflowOperator(t, "", c.args...)
			require.Error(t, err, "a start for an ended run fails; it printed %s", out)
			assert.Contains(t, err.Error(), c.want)
			assert.Contains(t, err.Error(), runID, "the error names the ended run")
			assert.Contains(t, err.Error(), "crmflow status "+c.workflowID)
		})
	}

	runID := stubs.running(contract.OrderConfirmationID("o-cli-running"))
	out, err := crmflowOperator(t, "", "order", "confirm", "o-cli-running")
	require.NoError(t, err, out)
	var run map[string]string
	require.NoError(t, json.Unmarshal([]byte(out), &run), out)
	assert.Equal(t, runID, run["run_id"], "a running confirmation is joined")
}
