-- Bounded storage (the data-retention Schedule). A handed-off inbox row
-- loses its payload and route after retention.inbox but stays as a compact
-- record (provider, event_id, received_at, status), so that a redelivery
-- inside retention.dedup still hits unique (provider, event_id) and is a
-- duplicate; after retention.dedup the record goes too. Closed dead letters
-- and audit entries are deleted after their own retention.
--
-- Written to run on a large, live inbox without stopping webhooks: outside a
-- transaction, indexes built CONCURRENTLY (a plain CREATE INDEX blocks the
-- inbox's INSERTs while it runs) and constraints added NOT VALID, then
-- validated under a lock that lets writes through. Every statement can run
-- again, so a migration interrupted half-way is finished by the next start.

-- +goose NO TRANSACTION
-- +goose Up

-- Catalog-only changes: no rewrite, no scan.
ALTER TABLE webhook_inbox ALTER COLUMN payload DROP NOT NULL;
ALTER TABLE webhook_inbox ADD COLUMN IF NOT EXISTS purged_at timestamptz;
COMMENT ON COLUMN webhook_inbox.purged_at IS
    'When retention removed the row''s payload and route (NULL: still whole). A purged row is a compact record that only makes a redelivery a duplicate; it cannot be replayed, and it is deleted after retention.dedup.';

-- Only a purged row lacks its payload, and a purged row is never pending
-- again: a replay of a purged row is refused by the database too, since the
-- dispatcher could not deliver it.
ALTER TABLE webhook_inbox DROP CONSTRAINT IF EXISTS webhook_inbox_payload_kept;
ALTER TABLE webhook_inbox ADD CONSTRAINT webhook_inbox_payload_kept
    CHECK (payload IS NOT NULL OR purged_at IS NOT NULL) NOT VALID;
ALTER TABLE webhook_inbox VALIDATE CONSTRAINT webhook_inbox_payload_kept;
ALTER TABLE webhook_inbox DROP CONSTRAINT IF EXISTS webhook_inbox_purged_done;
ALTER TABLE webhook_inbox ADD CONSTRAINT webhook_inbox_purged_done
    CHECK (purged_at IS NULL OR status <> 'pending') NOT VALID;
ALTER TABLE webhook_inbox VALIDATE CONSTRAINT webhook_inbox_purged_done;

-- The purge walks whole handed-off rows oldest first; the delete walks
-- purged records oldest first. Disjoint partial indexes: together no
-- bigger than one index on received_at, and neither batch re-reads the
-- rows the other kind of batch is about.
CREATE INDEX CONCURRENTLY IF NOT EXISTS webhook_inbox_unpurged_idx ON webhook_inbox (received_at)
    WHERE purged_at IS NULL AND status <> 'pending';
CREATE INDEX CONCURRENTLY IF NOT EXISTS webhook_inbox_purged_idx ON webhook_inbox (received_at)
    WHERE purged_at IS NOT NULL;

-- The dispatcher's claim takes the oldest due pending rows in id order.
-- With only webhook_inbox_due_idx (next_attempt_at, id), once a backlog
-- makes pending rows look common PostgreSQL walks the primary key from the
-- oldest row, reading every handed-off row (30 to 90 days of them, and all
-- of them before retention) to find the pending ones. Pending rows in id
-- order fix that (TestClaimAndBacklogUseIndexes); the index holds only the
-- backlog, so it costs next to nothing.
CREATE INDEX CONCURRENTLY IF NOT EXISTS webhook_inbox_pending_id_idx ON webhook_inbox (id)
    WHERE handed_off_at IS NULL;

-- Closed dead letters by the time they were closed (created, for one never
-- decided); open ones are never deleted.
CREATE INDEX CONCURRENTLY IF NOT EXISTS dead_letters_closed_idx ON dead_letters ((coalesce(decided_at, created_at)))
    WHERE status IN ('resolved', 'skipped', 'aborted');

-- audit_log_subject_idx leads with the subject; the retention reads by age.
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_log_at_idx ON audit_log (at);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS audit_log_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS dead_letters_closed_idx;
DROP INDEX CONCURRENTLY IF EXISTS webhook_inbox_pending_id_idx;
DROP INDEX CONCURRENTLY IF EXISTS webhook_inbox_purged_idx;
DROP INDEX CONCURRENTLY IF EXISTS webhook_inbox_unpurged_idx;
ALTER TABLE webhook_inbox DROP CONSTRAINT IF EXISTS webhook_inbox_purged_done;
ALTER TABLE webhook_inbox DROP CONSTRAINT IF EXISTS webhook_inbox_payload_kept;
-- Purged records keep their dedup role with an empty payload rather than
-- being deleted: older code never reads the payload of a handed-off row.
UPDATE webhook_inbox SET payload = '\x'::bytea WHERE payload IS NULL;
ALTER TABLE webhook_inbox DROP COLUMN IF EXISTS purged_at;
ALTER TABLE webhook_inbox ALTER COLUMN payload SET NOT NULL;
