-- +goose Up
-- What the edge worked out about an event (its target and the facts the
-- hand-off needs), so the dispatcher delivers it without parsing the
-- payload again. NULL for rows stored before the column existed: the
-- dispatcher works their route out from the payload.
ALTER TABLE webhook_inbox ADD COLUMN route jsonb;

-- +goose Down
ALTER TABLE webhook_inbox DROP COLUMN route;
