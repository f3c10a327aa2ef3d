package workflows_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/workflows"
)

var retention *activities.RetentionActivities

// retentionCall is one retention activity the workflow ran.
type retentionCall struct {
	activity string
	in       activities.RetentionInput
}

// runRetentionWorkflow runs DataRetention with every activity answering removed
// rows (failing the one named fail), and returns what ran, in order.
func runRetentionWorkflow(t *testing.T, in contract.DataRetentionInput, removed int64, fail string) (*contract.DataRetentionResult, []retentionCall, contract.Status, error) {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(workflows.DataRetention)
	env.RegisterActivity(retention)
	var calls []retentionCall
	answer := func(name string) func(context.Context, activities.RetentionInput) (*activities.RetentionOutput, error) {
		return func(_ context.Context, in activities.RetentionInput) (*activities.RetentionOutput, error) {
			calls = append(calls, retentionCall{name, in})
			if name == fail {
				return nil, temporal.NewNonRetryableApplicationError("boom", "StoreInvalidRequest", errors.New("boom"))
			}
			return &activities.RetentionOutput{Removed: removed, Batches: 1}, nil
		}
	}
	env.OnActivity(retention.PurgeInboxPayloads, mock.Anything, mock.Anything).Return(answer("purge")).Maybe()
	env.OnActivity(retention.DeleteInboxRecords, mock.Anything, mock.Anything).Return(answer("records")).Maybe()
	env.OnActivity(retention.DeleteClosedDeadLetters, mock.Anything, mock.Anything).Return(answer("dead-letters")).Maybe()
	env.OnActivity(retention.DeleteAuditEntries, mock.Anything, mock.Anything).Return(answer("audit")).Maybe()
	env.ExecuteWorkflow(workflows.DataRetention, in)
	require.True(t, env.IsWorkflowCompleted())
	v, err := env.QueryWorkflow(contract.StatusQuery)
	require.NoError(t, err)
	var st contract.Status
	require.NoError(t, v.Get(&st))
	if err := env.GetWorkflowError(); err != nil {
		return nil, calls, st, err
	}
	var res contract.DataRetentionResult
	require.NoError(t, env.GetWorkflowResult(&res))
	return &res, calls, st, nil
}

func TestDataRetentionRunsEachConfiguredRemovalInOrder(t *testing.T) {
	const day = 24 * time.Hour
	in := contract.DataRetentionInput{Inbox: 30 * day, Dedup: 90 * day, DeadLetters: 180 * day, Audit: 400 * day, BatchSize: 500}
	res, calls, st, err := runRetentionWorkflow(t, in, 7, "")
	require.NoError(t, err)
	assert.Equal(t, []retentionCall{
		{"purge", activities.RetentionInput{OlderThan: 30 * day, BatchSize: 500}},
		{"records", activities.RetentionInput{OlderThan: 90 * day, BatchSize: 500}},
		{"dead-letters", activities.RetentionInput{OlderThan: 180 * day, BatchSize: 500}},
		{"audit", activities.RetentionInput{OlderThan: 400 * day, BatchSize: 500}},
	}, calls, "the purge runs before the records it makes are deleted")
	assert.Equal(t, &contract.DataRetentionResult{InboxPurged: 7, InboxDeleted: 7, DeadLettersDeleted: 7, AuditDeleted: 7}, res)
	assert.Equal(t, "done", st.Step)
	assert.Contains(t, st.Detail, "purged 7 inbox payloads")
}

func TestDataRetentionZeroKeepsForEver(t *testing.T) {
	const day = 24 * time.Hour
	res, calls, _, err := runRetentionWorkflow(t, contract.DataRetentionInput{}, 7, "")
	require.NoError(t, err)
	assert.Empty(t, calls, "the zero input removes nothing")
	assert.Equal(t, &contract.DataRetentionResult{}, res)

	// Payloads kept for ever: no record is deleted either, since only
	// purged rows are.
	_, calls, _, err = runRetentionWorkflow(t, contract.DataRetentionInput{Dedup: 90 * day, Audit: 400 * day}, 1, "")
	require.NoError(t, err)
	assert.Equal(t, []retentionCall{{"audit", activities.RetentionInput{OlderThan: 400 * day}}}, calls)

	// Records kept for ever: payloads are still purged.
	_, calls, _, err = runRetentionWorkflow(t, contract.DataRetentionInput{Inbox: 30 * day}, 1, "")
	require.NoError(t, err)
	assert.Equal(t, []retentionCall{{"purge", activities.RetentionInput{OlderThan: 30 * day}}}, calls)

	// A dedup window shorter than the payload's (config refuses it) cannot
	// delete a row before its purge.
	_, calls, _, err = runRetentionWorkflow(t, contract.DataRetentionInput{Inbox: 30 * day, Dedup: day}, 1, "")
	require.NoError(t, err)
	assert.Equal(t, activities.RetentionInput{OlderThan: 30 * day}, calls[1].in)
}

func TestDataRetentionFailedStepFailsTheRun(t *testing.T) {
	const day = 24 * time.Hour
	in := contract.DataRetentionInput{Inbox: 30 * day, Dedup: 90 * day, DeadLetters: 180 * day, Audit: 400 * day}
	_, calls, st, err := runRetentionWorkflow(t, in, 1, "records")
	require.Error(t, err, "no park: the next day's run retries")
	assert.Len(t, calls, 2, "nothing after the failed step")
	assert.Equal(t, "failed", st.State)
	assert.Equal(t, "delete-inbox-records", st.Step)
}
