-- The dispatcher hands inbox rows to Temporal in id order per workflow: a row
-- is only claimed when no earlier row of the same workflow is still pending.
-- This index answers that question without scanning handed-off history.

-- +goose Up
CREATE INDEX webhook_inbox_pending_workflow_idx ON webhook_inbox (workflow_id, id)
    WHERE handed_off_at IS NULL;

-- +goose Down
DROP INDEX webhook_inbox_pending_workflow_idx;
