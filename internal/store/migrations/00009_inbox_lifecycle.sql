-- Every inbox row says where it ended (status), keeps the bytes its
-- signature covered (payload bytea), and the dispatcher's queries use
-- indexes. Orders learn about refunds.

-- +goose Up

-- The raw body as it was verified. jsonb reordered keys, folded duplicates
-- and refused some signed bodies (a \u0000 escape); rows stored before this
-- migration keep jsonb's rendering of their body.
ALTER TABLE webhook_inbox ALTER COLUMN payload TYPE bytea USING convert_to(payload::text, 'UTF8');

-- The route is JSON written by crmflow; as text it can hold any string the
-- edge read from a verified body (jsonb cannot hold \u0000).
ALTER TABLE webhook_inbox ALTER COLUMN route TYPE text USING route::text;

ALTER TABLE webhook_inbox ADD COLUMN status text;
UPDATE webhook_inbox SET status = CASE
    WHEN handed_off_at IS NULL THEN 'pending'
    WHEN workflow_id IS NULL THEN 'ignored'
    WHEN last_error IS NULL THEN 'delivered'
    WHEN last_error LIKE 'coalesced into %' THEN 'coalesced'
    WHEN last_error LIKE 'workflow had finished%' THEN 'late'
    ELSE 'dropped'
END;
ALTER TABLE webhook_inbox
    ALTER COLUMN status SET NOT NULL,
    ALTER COLUMN status SET DEFAULT 'pending',
    ADD CONSTRAINT webhook_inbox_status_check CHECK (status IN
        ('pending', 'delivered', 'ignored', 'unroutable', 'late', 'coalesced', 'dropped')),
    ADD CONSTRAINT webhook_inbox_pending_not_done CHECK ((status = 'pending') = (handed_off_at IS NULL));
COMMENT ON COLUMN webhook_inbox.status IS
    'pending: waiting for hand-off; delivered: Temporal has it; ignored: a type or target crmflow does not act on; unroutable: its target does not exist (replay once it does); late: its run had finished (last_error holds the outcome); coalesced: folded into a later stock level; dropped: can never be handed off (last_error says why).';
COMMENT ON COLUMN webhook_inbox.last_error IS
    'Why a pending row''s last hand-off failed, or the note of a finished row (its outcome, or what it was coalesced into).';

-- Set for events the gap-fill reconciliation found at the provider, which
-- its webhook never delivered.
ALTER TABLE webhook_inbox ADD COLUMN recovered boolean NOT NULL DEFAULT false;

-- When an operator last replayed the row, and who.
ALTER TABLE webhook_inbox ADD COLUMN replayed_at timestamptz, ADD COLUMN replayed_by text;

-- The claim query walks pending rows in due order; the backlog reads the
-- same few rows. The operator listing reads one status newest first.
CREATE INDEX webhook_inbox_due_idx ON webhook_inbox (next_attempt_at, id) WHERE handed_off_at IS NULL;
CREATE INDEX webhook_inbox_status_idx ON webhook_inbox (status, id DESC);
DROP INDEX webhook_inbox_pending_idx;

-- Refunds: the order keeps how much of it was refunded.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN
    ('pending', 'confirmed', 'payment_failed', 'mismatch', 'expired', 'cancelled', 'refunded', 'partially_refunded'));
ALTER TABLE orders ADD COLUMN refunded_cents bigint NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0);
COMMENT ON COLUMN orders.refunded_cents IS
    'Amount refunded on the order''s charge, as Stripe''s charge.amount_refunded last reported it (it only grows).';

-- +goose Down
ALTER TABLE orders DROP COLUMN refunded_cents;
UPDATE orders SET status = 'confirmed' WHERE status IN ('refunded', 'partially_refunded');
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN
    ('pending', 'confirmed', 'payment_failed', 'mismatch', 'expired', 'cancelled'));
CREATE INDEX webhook_inbox_pending_idx ON webhook_inbox (id) WHERE handed_off_at IS NULL;
DROP INDEX webhook_inbox_status_idx;
DROP INDEX webhook_inbox_due_idx;
ALTER TABLE webhook_inbox DROP COLUMN replayed_by, DROP COLUMN replayed_at;
ALTER TABLE webhook_inbox DROP COLUMN recovered;
ALTER TABLE webhook_inbox DROP CONSTRAINT webhook_inbox_pending_not_done, DROP CONSTRAINT webhook_inbox_status_check,
    DROP COLUMN status;
ALTER TABLE webhook_inbox ALTER COLUMN route TYPE jsonb USING route::jsonb;
ALTER TABLE webhook_inbox ALTER COLUMN payload TYPE jsonb USING convert_from(payload, 'UTF8')::jsonb;
