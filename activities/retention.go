package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/crmflow/crmflow/internal/store"
)

// Retention batch bounds: one statement removes at most a batch, so locks
// stay short and WAL comes in small pieces however much is due.
const (
	DefaultRetentionBatch = 1000
	MaxRetentionBatch     = 10000
)

// retentionBatchTimeout bounds one batch statement: a batch takes
// milliseconds, and a hung one must fail the attempt (to be retried)
// rather than hold it until the heartbeat times out.
const retentionBatchTimeout = 30 * time.Second

// What retention removes, as crmflow_retention_deleted_total's table label
// and the logs name it.
const (
	// RetentionInboxPayloads counts inbox rows whose payload and route were
	// purged (the row stays as a compact record).
	RetentionInboxPayloads = "webhook_inbox_payload"
	// RetentionInboxRecords counts inbox records deleted.
	RetentionInboxRecords = "webhook_inbox"
	// RetentionDeadLetters counts closed dead letters deleted.
	RetentionDeadLetters = "dead_letters"
	// RetentionAudit counts audit_log entries deleted.
	RetentionAudit = "audit_log"
)

// RetentionTables lists every table label, for metrics that expose each
// from the start.
var RetentionTables = []string{RetentionInboxPayloads, RetentionInboxRecords, RetentionDeadLetters, RetentionAudit}

// RetentionCounter counts what retention removed
// (appmetrics.RetentionMetrics implements it).
type RetentionCounter interface {
	// Removed adds n rows removed from table (a Retention* label).
	Removed(table string, n int64)
}

// retentionStore is what retention needs of the database: one bounded batch
// of each kind of removal (internal/store/retention.go).
type retentionStore interface {
	PurgeInboxPayloads(ctx context.Context, olderThan time.Duration, limit int) (int64, error)
	DeleteInboxRecords(ctx context.Context, olderThan time.Duration, limit int) (int64, error)
	DeleteClosedDeadLetters(ctx context.Context, olderThan time.Duration, limit int) (int64, error)
	DeleteAuditEntries(ctx context.Context, olderThan time.Duration, limit int) (int64, error)
}

var _ retentionStore = (*store.Store)(nil)

// RetentionActivities remove what the retention configuration no longer
// keeps, in bounded batches.
type RetentionActivities struct {
	Store retentionStore
	// Counter counts the rows removed; nil counts nothing.
	Counter RetentionCounter
}

// RetentionInput is one removal: rows older than OlderThan, BatchSize per
// statement.
type RetentionInput struct {
	// OlderThan must be positive: keeping for ever is the workflow's
	// decision not to run the activity, never a zero here.
	OlderThan time.Duration `json:"older_than"`
	// BatchSize is rows per statement; zero means DefaultRetentionBatch,
	// and it is at most MaxRetentionBatch.
	BatchSize int `json:"batch_size,omitempty"`
}

// RetentionOutput is what one removal did. It is also the heartbeat, so a
// retried attempt reports the batches of the attempts before it too.
type RetentionOutput struct {
	Removed int64 `json:"removed"`
	Batches int   `json:"batches"`
}

// PurgeInboxPayloads drops the payload and route of handed-off inbox rows
// received more than OlderThan ago; the rows stay for deduplication.
func (a *RetentionActivities) PurgeInboxPayloads(ctx context.Context, in RetentionInput) (*RetentionOutput, error) {
	return a.drain(ctx, RetentionInboxPayloads, a.Store.PurgeInboxPayloads, in)
}

// DeleteInboxRecords deletes purged inbox rows received more than
// OlderThan ago.
func (a *RetentionActivities) DeleteInboxRecords(ctx context.Context, in RetentionInput) (*RetentionOutput, error) {
	return a.drain(ctx, RetentionInboxRecords, a.Store.DeleteInboxRecords, in)
}

// DeleteClosedDeadLetters deletes dead letters resolved, skipped or aborted
// more than OlderThan ago.
func (a *RetentionActivities) DeleteClosedDeadLetters(ctx context.Context, in RetentionInput) (*RetentionOutput, error) {
	return a.drain(ctx, RetentionDeadLetters, a.Store.DeleteClosedDeadLetters, in)
}

// DeleteAuditEntries deletes audit_log entries written more than OlderThan
// ago.
func (a *RetentionActivities) DeleteAuditEntries(ctx context.Context, in RetentionInput) (*RetentionOutput, error) {
	return a.drain(ctx, RetentionAudit, a.Store.DeleteAuditEntries, in)
}

// drain runs batch until one comes back short of the batch size: then
// nothing more was due when it ran. Each batch is committed on its own and
// counted at once, and the heartbeat carries the totals, so a retry after a
// crash or a timeout just carries on: removing is idempotent.
func (a *RetentionActivities) drain(ctx context.Context, table string,
	batch func(context.Context, time.Duration, int) (int64, error), in RetentionInput) (*RetentionOutput, error) {
	if in.OlderThan < time.Millisecond {
		return nil, permanent(providerStore, ErrTypeInvalid,
			fmt.Errorf("retention of %s: age must be positive, got %s", table, in.OlderThan))
	}
	limit := in.BatchSize
	switch {
	case limit <= 0:
		limit = DefaultRetentionBatch
	case limit > MaxRetentionBatch:
		limit = MaxRetentionBatch
	}
	logger := activity.GetLogger(ctx)
	var out RetentionOutput
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &out); err != nil {
			// Only the reported totals suffer; what was removed stays removed.
			logger.Warn("retention: unreadable heartbeat, counting from zero", "table", table, "error", err)
			out = RetentionOutput{}
		}
	}
	for {
		bctx, cancel := context.WithTimeout(ctx, retentionBatchTimeout)
		n, err := batch(bctx, in.OlderThan, limit)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				// Cancelled or timed out as a whole: the SDK reports that.
				return nil, errors.Join(ctx.Err(), err)
			}
			return nil, classifyStore(err)
		}
		out.Removed += n
		out.Batches++
		if n > 0 && a.Counter != nil {
			a.Counter.Removed(table, n)
		}
		activity.RecordHeartbeat(ctx, out)
		if n < int64(limit) {
			break
		}
	}
	logger.Info("retention: removed rows", "table", table, "removed", out.Removed, "batches", out.Batches,
		"olderThan", in.OlderThan.String())
	return &out, nil
}
