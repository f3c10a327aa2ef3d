package store

import (
	"context"
	"fmt"
	"time"
)

// Retention: each method removes one bounded batch of what is older than
// olderThan (measured with the database's clock, which also wrote the
// timestamps) and returns how many rows it removed; a caller loops until a
// batch comes back short. A batch is one statement and one commit, so locks
// are short and WAL comes in small pieces, and rows another session holds
// (a replay, a concurrent run) are skipped rather than waited for: the
// next run gets them. olderThan must be positive: "keep for ever" is the
// caller's decision not to call.

// Statements of the retention batches, by what they remove. Each takes the
// age in milliseconds ($1) and the batch size ($2), and walks an index
// oldest first (migration 00011), so a batch reads about as many rows as it
// removes however large the table is. The rows are picked in an ARRAY()
// rather than "id IN (subquery)": for the latter PostgreSQL plans a hash
// join against a sequential scan of the whole table, while "id = ANY" is
// an index scan of the primary key (TestRetentionStatementsUseIndexes).
const (
	// purgeInboxPayloadsSQL keeps a handed-off row as a compact record:
	// provider, event id, target, status, note and times stay, so unique
	// (provider, event_id) still makes a redelivery a duplicate.
	purgeInboxPayloadsSQL = `
UPDATE webhook_inbox SET payload = NULL, route = NULL, purged_at = now()
WHERE id = ANY (ARRAY(
    SELECT id FROM webhook_inbox
    WHERE purged_at IS NULL AND status <> 'pending' AND received_at < now() - $1 * interval '1 millisecond'
    ORDER BY received_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED))`

	// deleteInboxRecordsSQL deletes compact records: only purged rows, so a
	// row is never deleted with its payload (retention.inbox = 0 keeps
	// rows whole, and so for ever).
	deleteInboxRecordsSQL = `
DELETE FROM webhook_inbox
WHERE id = ANY (ARRAY(
    SELECT id FROM webhook_inbox
    WHERE purged_at IS NOT NULL AND status <> 'pending' AND received_at < now() - $1 * interval '1 millisecond'
    ORDER BY received_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED))`

	// deleteClosedDeadLettersSQL deletes dead letters decided for good
	// (resolved, skipped, aborted), aged from the decision; parked and
	// retrying ones still hold a run up and are never deleted.
	deleteClosedDeadLettersSQL = `
DELETE FROM dead_letters
WHERE id = ANY (ARRAY(
    SELECT id FROM dead_letters
    WHERE status IN ('resolved', 'skipped', 'aborted')
      AND coalesce(decided_at, created_at) < now() - $1 * interval '1 millisecond'
    ORDER BY coalesce(decided_at, created_at)
    LIMIT $2
    FOR UPDATE SKIP LOCKED))`

	// deleteAuditEntriesSQL deletes audit entries by age.
	deleteAuditEntriesSQL = `
DELETE FROM audit_log
WHERE id = ANY (ARRAY(
    SELECT id FROM audit_log
    WHERE at < now() - $1 * interval '1 millisecond'
    ORDER BY at
    LIMIT $2
    FOR UPDATE SKIP LOCKED))`
)

// PurgeInboxPayloads removes the payload and route of up to limit inbox
// rows that were handed off (any status but pending) and received more than
// olderThan ago, keeping each row as a compact record for deduplication.
func (s *Store) PurgeInboxPayloads(ctx context.Context, olderThan time.Duration, limit int) (int64, error) {
	return s.removeBatch(ctx, "purge inbox payloads", purgeInboxPayloadsSQL, olderThan, limit)
}

// DeleteInboxRecords deletes up to limit purged inbox records received more
// than olderThan ago; a redelivery of their events is then new again.
func (s *Store) DeleteInboxRecords(ctx context.Context, olderThan time.Duration, limit int) (int64, error) {
	return s.removeBatch(ctx, "delete inbox records", deleteInboxRecordsSQL, olderThan, limit)
}

// DeleteClosedDeadLetters deletes up to limit dead letters that were
// resolved, skipped or aborted more than olderThan ago.
func (s *Store) DeleteClosedDeadLetters(ctx context.Context, olderThan time.Duration, limit int) (int64, error) {
	return s.removeBatch(ctx, "delete closed dead letters", deleteClosedDeadLettersSQL, olderThan, limit)
}

// DeleteAuditEntries deletes up to limit audit_log entries written more
// than olderThan ago.
func (s *Store) DeleteAuditEntries(ctx context.Context, olderThan time.Duration, limit int) (int64, error) {
	return s.removeBatch(ctx, "delete audit entries", deleteAuditEntriesSQL, olderThan, limit)
}

// removeBatch runs one retention statement. An age that rounds to zero
// milliseconds would remove everything up to now, so it is refused rather
// than trusted.
func (s *Store) removeBatch(ctx context.Context, what, q string, olderThan time.Duration, limit int) (int64, error) {
	if olderThan < time.Millisecond {
		return 0, fmt.Errorf("%s: age must be positive, got %s", what, olderThan)
	}
	if limit <= 0 {
		return 0, fmt.Errorf("%s: batch size must be positive, got %d", what, limit)
	}
	tag, err := s.pool.Exec(ctx, q, olderThan.Milliseconds(), limit)
	if err != nil {
		return 0, fmt.Errorf("%s older than %s: %w", what, olderThan, err)
	}
	return tag.RowsAffected(), nil
}
