-- Clerk users' lifecycle (UserLifecycle). A customer row is the Clerk user
-- (customers.id is the Clerk user id): user.created and user.updated write
-- its email and name, user.deleted scrubs them and leaves a tombstone.
--
-- The tombstone is deleted_at. The row itself stays, because orders,
-- referrals and the reward ledger point at it (order history is kept), but
-- it holds nothing personal any more: email and name become fixed
-- placeholders, which a check makes a rule of the table. A user.created or
-- user.updated that arrives after the deletion (redelivered, out of order,
-- or replayed after the workflow's history was gone) finds the tombstone
-- and changes nothing: a deleted user stays deleted.

-- +goose Up
ALTER TABLE customers ADD COLUMN deleted_at timestamptz;
ALTER TABLE customers ADD CONSTRAINT customers_deleted_scrubbed
    CHECK (deleted_at IS NULL OR (email = 'deleted-user@scrubbed.invalid' AND name = '[deleted]'));
COMMENT ON COLUMN customers.deleted_at IS
    'When the Clerk user was deleted: the row is a tombstone whose email and name are scrubbed placeholders; later user events for it change nothing.';

-- +goose Down
ALTER TABLE customers DROP CONSTRAINT customers_deleted_scrubbed;
ALTER TABLE customers DROP COLUMN deleted_at;
