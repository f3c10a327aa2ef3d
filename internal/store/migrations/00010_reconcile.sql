-- Gap-fill reconciliation: how far each provider's events have been listed
-- and stored, so the next run lists only what came after (less an overlap).

-- +goose Up
CREATE TABLE reconcile_checkpoints (
    provider   text PRIMARY KEY,
    checkpoint timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE reconcile_checkpoints IS
    'Per provider, the time up to which its events were listed and every one stored in webhook_inbox; the stripe-reconcile Schedule continues from there.';
COMMENT ON COLUMN reconcile_checkpoints.checkpoint IS
    'Events created before this (in the provider''s clock) were all stored; the next run lists from it less an overlap.';

-- +goose Down
DROP TABLE reconcile_checkpoints;
