package worker_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/appmetrics"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
	"github.com/crmflow/crmflow/worker"
)

// TestDataRetentionScheduleRunsTheRemovals: the worker creates the
// data-retention Schedule (daily, the configured windows as its input;
// creating it again converges rather than failing), and a run the Schedule
// starts executes the retention activities the worker built from config:
// due rows are gone or purged, young and pending rows and open dead letters
// stay, and the metric counts what went.
func TestDataRetentionScheduleRunsTheRemovals(t *testing.T) {
	ctx := t.Context()
	cfg, err := config.Load(config.LoadOptions{Dev: true, Environ: []string{"CRMFLOW_RETENTION_AUDIT=48h"}})
	require.NoError(t, err)
	st := testenv.Store(t)
	c := testenv.TemporalClient(t)
	queue := testenv.TaskQueue(t)

	ids := map[string]int64{}
	seed := func(name, q string, args ...any) {
		t.Helper()
		var id int64
		require.NoError(t, st.Pool().QueryRow(ctx, q+" RETURNING id", args...).Scan(&id))
		ids[name] = id
	}
	const inboxRow = `INSERT INTO webhook_inbox (provider, event_id, event_type, workflow_id, route, payload, status,
    handed_off_at, received_at)
VALUES ('stripe', $1, 'payment_intent.succeeded', 'order-confirmation/o-1', '{}', '{"id":1}'::bytea, $2,
        CASE WHEN $2 <> 'pending' THEN now() END, now() - $3::interval)`
	seed("inbox due", inboxRow, "evt_due", "delivered", "31 days")
	seed("inbox young", inboxRow, "evt_young", "delivered", "29 days")
	seed("inbox pending", inboxRow, "evt_pending", "pending", "200 days")
	const deadLetter = `INSERT INTO dead_letters (workflow_id, run_id, workflow_type, step, error, status, decided_at, created_at)
VALUES ($1, 'run', 'OrderConfirmation', 'notify', 'boom', $2, CASE WHEN $2 <> 'parked' THEN now() - $3::interval END,
        now() - $3::interval)`
	seed("dead letter resolved", deadLetter, "wf-1", "resolved", "181 days")
	seed("dead letter parked", deadLetter, "wf-2", "parked", "500 days")
	const audit = `INSERT INTO audit_log (at, actor, action, subject) VALUES (now() - $1::interval, 'alice', 'test', 'x')`
	seed("audit due", audit, "49 hours")
	seed("audit young", audit, "47 hours")

	for range 2 {
		require.NoError(t, worker.EnsureDataRetentionSchedule(ctx, c, queue, cfg.Retention))
	}
	handle := c.ScheduleClient().GetHandle(ctx, contract.DataRetentionScheduleID)
	t.Cleanup(func() { _ = handle.Delete(context.Background()) })
	desc, err := handle.Describe(ctx)
	require.NoError(t, err)
	spec := desc.Schedule.Spec
	require.Len(t, spec.Calendars, 1, "daily")
	assert.Equal(t, []client.ScheduleRange{{Start: 3, End: 3, Step: 1}}, spec.Calendars[0].Hour)
	action, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.True(t, ok)
	assert.Equal(t, contract.DataRetentionType, action.Workflow)
	assert.Equal(t, queue, action.TaskQueue)

	reg := prometheus.NewRegistry()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	keys, err := credentials.KeyringOf(cfg.MasterKeys())
	require.NoError(t, err)
	acts := worker.NewActivities(cfg, st, credentials.NewStore(st, keys, credentials.Options{}), logger, nil, nil,
		worker.WithRetentionMetrics(appmetrics.NewRetentionMetrics(reg, activities.RetentionTables...)))
	w := worker.New(c, worker.Options{TaskQueue: queue, Activities: acts})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	require.NoError(t, handle.Trigger(ctx, client.ScheduleTriggerOptions{}))
	var started *client.ScheduleWorkflowExecution
	require.Eventually(t, func() bool {
		d, err := handle.Describe(ctx)
		if err != nil || len(d.Info.RecentActions) == 0 {
			return false
		}
		started = d.Info.RecentActions[0].StartWorkflowResult
		return started != nil
	}, 30*time.Second, 50*time.Millisecond, "the Schedule started a run")
	runCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var res contract.DataRetentionResult
	require.NoError(t, c.GetWorkflow(runCtx, started.WorkflowID, started.FirstExecutionRunID).Get(runCtx, &res))
	assert.Equal(t, contract.DataRetentionResult{InboxPurged: 1, DeadLettersDeleted: 1, AuditDeleted: 1}, res)

	gone := func(table string, id int64) bool {
		var n int
		require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM `+table+` WHERE id = $1`, id).Scan(&n))
		return n == 0
	}
	purged := func(id int64) bool {
		var p bool
		require.NoError(t, st.Pool().QueryRow(ctx, `SELECT purged_at IS NOT NULL FROM webhook_inbox WHERE id = $1`, id).Scan(&p))
		return p
	}
	assert.True(t, purged(ids["inbox due"]))
	assert.False(t, purged(ids["inbox young"]))
	assert.False(t, purged(ids["inbox pending"]))
	assert.True(t, gone("dead_letters", ids["dead letter resolved"]))
	assert.False(t, gone("dead_letters", ids["dead letter parked"]))
	assert.True(t, gone("audit_log", ids["audit due"]))
	assert.False(t, gone("audit_log", ids["audit young"]))

	metric := func(table string) float64 { return retentionDeleted(t, reg, table) }
	assert.Equal(t, 1.0, metric(activities.RetentionInboxPayloads))
	assert.Equal(t, 0.0, metric(activities.RetentionInboxRecords))
	assert.Equal(t, 1.0, metric(activities.RetentionDeadLetters))
	assert.Equal(t, 1.0, metric(activities.RetentionAudit))
}

// retentionDeleted is crmflow_retention_deleted_total{table} in reg.
func retentionDeleted(t *testing.T, reg *prometheus.Registry, table string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "crmflow_retention_deleted_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "table" && l.GetValue() == table {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no crmflow_retention_deleted_total{table=%q}", table)
	return 0
}
