package activities_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// fakeRetentionStore plays one table: due rows, removed a batch at a time.
type fakeRetentionStore struct {
	due     int64
	limits  []int
	ages    []time.Duration
	failAt  int // batch number (1-based) that fails; 0 never
	batches int
}

func (f *fakeRetentionStore) batch(_ context.Context, olderThan time.Duration, limit int) (int64, error) {
	f.batches++
	if f.batches == f.failAt {
		return 0, errors.New("connection reset")
	}
	f.limits, f.ages = append(f.limits, limit), append(f.ages, olderThan)
	n := min(f.due, int64(limit))
	f.due -= n
	return n, nil
}

func (f *fakeRetentionStore) PurgeInboxPayloads(ctx context.Context, d time.Duration, l int) (int64, error) {
	return f.batch(ctx, d, l)
}

func (f *fakeRetentionStore) DeleteInboxRecords(ctx context.Context, d time.Duration, l int) (int64, error) {
	return f.batch(ctx, d, l)
}

func (f *fakeRetentionStore) DeleteClosedDeadLetters(ctx context.Context, d time.Duration, l int) (int64, error) {
	return f.batch(ctx, d, l)
}

func (f *fakeRetentionStore) DeleteAuditEntries(ctx context.Context, d time.Duration, l int) (int64, error) {
	return f.batch(ctx, d, l)
}

// countingRetention records what the activities counted, by table.
type countingRetention struct {
	mu  sync.Mutex
	got map[string]int64
}

func (c *countingRetention) Removed(table string, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.got == nil {
		c.got = map[string]int64{}
	}
	c.got[table] += n
}

func runRetention(t *testing.T, a *activities.RetentionActivities, fn any, in activities.RetentionInput, heartbeat any) (*activities.RetentionOutput, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	if heartbeat != nil {
		env.SetHeartbeatDetails(heartbeat)
	}
	v, err := env.ExecuteActivity(fn, in)
	if err != nil {
		return nil, err
	}
	var out activities.RetentionOutput
	require.NoError(t, v.Get(&out))
	return &out, nil
}

func TestRetentionDrainsInBoundedBatches(t *testing.T) {
	f := &fakeRetentionStore{due: 2500}
	c := &countingRetention{}
	a := &activities.RetentionActivities{Store: f, Counter: c}
	out, err := runRetention(t, a, a.DeleteAuditEntries, activities.RetentionInput{OlderThan: time.Hour}, nil)
	require.NoError(t, err)
	assert.Equal(t, &activities.RetentionOutput{Removed: 2500, Batches: 3}, out, "until a batch comes back short")
	assert.Equal(t, []int{activities.DefaultRetentionBatch, activities.DefaultRetentionBatch, activities.DefaultRetentionBatch}, f.limits)
	assert.Equal(t, []time.Duration{time.Hour, time.Hour, time.Hour}, f.ages)
	assert.Equal(t, map[string]int64{activities.RetentionAudit: 2500}, c.got)

	// An exact multiple of the batch ends with an empty batch.
	f = &fakeRetentionStore{due: 200}
	out, err = runRetention(t, &activities.RetentionActivities{Store: f}, a.PurgeInboxPayloads,
		activities.RetentionInput{OlderThan: time.Hour, BatchSize: 100}, nil)
	require.NoError(t, err)
	assert.Equal(t, &activities.RetentionOutput{Removed: 200, Batches: 3}, out)

	// The batch is capped.
	f = &fakeRetentionStore{due: 1}
	_, err = runRetention(t, &activities.RetentionActivities{Store: f}, a.DeleteInboxRecords,
		activities.RetentionInput{OlderThan: time.Hour, BatchSize: 1 << 20}, nil)
	require.NoError(t, err)
	assert.Equal(t, []int{activities.MaxRetentionBatch}, f.limits)
}

func TestRetentionResumesFromItsHeartbeat(t *testing.T) {
	f := &fakeRetentionStore{due: 150}
	a := &activities.RetentionActivities{Store: f}
	out, err := runRetention(t, a, a.DeleteClosedDeadLetters, activities.RetentionInput{OlderThan: time.Hour, BatchSize: 100},
		activities.RetentionOutput{Removed: 300, Batches: 3})
	require.NoError(t, err)
	assert.Equal(t, &activities.RetentionOutput{Removed: 450, Batches: 5}, out, "the earlier attempts' batches count")
}

func TestRetentionErrorsAreClassified(t *testing.T) {
	// A database error is retried; what was removed before it stays counted.
	f := &fakeRetentionStore{due: 5000, failAt: 2}
	c := &countingRetention{}
	a := &activities.RetentionActivities{Store: f, Counter: c}
	_, err := runRetention(t, a, a.DeleteAuditEntries, activities.RetentionInput{OlderThan: time.Hour}, nil)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	assert.Equal(t, "StoreUnavailable", appErr.Type())
	assert.False(t, appErr.NonRetryable())
	assert.Equal(t, map[string]int64{activities.RetentionAudit: 1000}, c.got)

	// An age of zero would remove everything: refused, never retried.
	for _, age := range []time.Duration{0, -time.Hour} {
		f = &fakeRetentionStore{due: 10}
		_, err = runRetention(t, &activities.RetentionActivities{Store: f}, a.PurgeInboxPayloads,
			activities.RetentionInput{OlderThan: age}, nil)
		require.ErrorAs(t, err, &appErr)
		assert.Equal(t, "StoreInvalidRequest", appErr.Type())
		assert.True(t, appErr.NonRetryable())
		assert.Zero(t, f.batches, "nothing ran")
	}
}

// TestRetentionRemovesEveryDueRowAgainstPostgreSQL: with more due rows
// than one batch, one run of the activity on the real store removes them
// all, and nothing younger.
func TestRetentionRemovesEveryDueRowAgainstPostgreSQL(t *testing.T) {
	st := testenv.Store(t)
	_, err := st.Pool().Exec(t.Context(), `
INSERT INTO audit_log (at, actor, action, subject)
SELECT now() - interval '2 days' - g * interval '1 second', 'alice', 'test', 'x' FROM generate_series(1, 2345) g;
INSERT INTO audit_log (at, actor, action, subject) VALUES (now() - interval '47 hours', 'alice', 'test', 'kept')`)
	require.NoError(t, err)
	a := &activities.RetentionActivities{Store: st}
	out, err := runRetention(t, a, a.DeleteAuditEntries, activities.RetentionInput{OlderThan: 48 * time.Hour, BatchSize: 500}, nil)
	require.NoError(t, err)
	assert.Equal(t, &activities.RetentionOutput{Removed: 2345, Batches: 5}, out)
	var subjects []string
	rows, err := st.Pool().Query(t.Context(), `SELECT subject FROM audit_log`)
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		subjects = append(subjects, s)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []string{"kept"}, subjects)
}
