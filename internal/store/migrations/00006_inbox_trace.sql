-- The W3C traceparent of the request that delivered an inbox event, so the
-- hand-off to Temporal, which happens later and from any replica, joins the
-- delivery's trace. NULL when the request was not traced.

-- +goose Up
ALTER TABLE webhook_inbox ADD COLUMN trace_parent text;

-- +goose Down
ALTER TABLE webhook_inbox DROP COLUMN trace_parent;
