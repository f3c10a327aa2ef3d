package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
	"github.com/crmflow/crmflow/worker"
)

// TestHistoryDataRetention: a retention run with every window set removes
// something at every step (an inbox payload purged, an older record
// deleted, a closed dead letter, an audit entry) through the production
// converters, and its history is recorded for the replay test.
func TestHistoryDataRetention(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	c := sealedClient(t)
	queue := testenv.TaskQueue(t)
	w := worker.New(c, worker.Options{TaskQueue: queue, Activities: worker.Activities{
		Retention: &activities.RetentionActivities{Store: st},
	}})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	for _, q := range []string{
		`INSERT INTO webhook_inbox (provider, event_id, event_type, workflow_id, route, payload, status, handed_off_at, received_at)
VALUES ('stripe', 'evt_ret_1', 'payment_intent.succeeded', 'order-confirmation/o-ret', '{}', '{}'::bytea, 'delivered',
        now() - interval '31 days', now() - interval '31 days')`,
		`INSERT INTO webhook_inbox (provider, event_id, event_type, workflow_id, status, handed_off_at, received_at, purged_at)
VALUES ('stripe', 'evt_ret_0', 'payment_intent.succeeded', 'order-confirmation/o-ret', 'delivered',
        now() - interval '91 days', now() - interval '91 days', now() - interval '61 days')`,
		`INSERT INTO dead_letters (workflow_id, run_id, workflow_type, step, error, status, decided_by, decided_at)
VALUES ('order-confirmation/o-ret', 'run', 'OrderConfirmation', 'notify', 'boom', 'skipped', 'alice', now() - interval '181 days')`,
		`INSERT INTO audit_log (at, actor, action, subject) VALUES (now() - interval '401 days', 'alice', 'test', 'x')`,
	} {
		_, err := st.Pool().Exec(ctx, q)
		require.NoError(t, err)
	}
	const day = 24 * time.Hour
	const id = "data-retention-test-1"
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, contract.DataRetentionType,
		contract.DataRetentionInput{Inbox: 30 * day, Dedup: 90 * day, DeadLetters: 180 * day, Audit: 400 * day})
	require.NoError(t, err)
	runCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var res contract.DataRetentionResult
	require.NoError(t, run.Get(runCtx, &res))
	assert.Equal(t, contract.DataRetentionResult{InboxPurged: 1, InboxDeleted: 1, DeadLettersDeleted: 1, AuditDeleted: 1}, res)
	saveHistory(t, c, id, "data_retention_removed.json")
}
