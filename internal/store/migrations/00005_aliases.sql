-- Privacy for ended aliases. A deleted or expired alias keeps only what the
-- audit needs (id, SimpleLogin id, mode, shadow flag, state, timestamps):
-- its address, the shadow owner's email and the owning customer are cleared.
-- The original owner check demanded a customer or a shadow email on every
-- row, which made that scrub impossible; it now applies to live rows only,
-- and a second check makes the scrub itself a rule of the table, so no code
-- path can end an alias and keep its personal data. Clearing customer_id
-- also releases the foreign key, so erasing a customer is not blocked by
-- their ended aliases.

-- +goose Up
UPDATE aliases SET customer_id = NULL, email = NULL, alias_email = NULL, expires_at = NULL
WHERE state IN ('deleted', 'expired');
ALTER TABLE aliases DROP CONSTRAINT aliases_has_owner;
ALTER TABLE aliases ADD CONSTRAINT aliases_has_owner
    CHECK (state IN ('deleted', 'expired') OR customer_id IS NOT NULL OR (shadow AND email IS NOT NULL));
ALTER TABLE aliases ADD CONSTRAINT aliases_ended_scrubbed
    CHECK (state NOT IN ('deleted', 'expired')
           OR (customer_id IS NULL AND email IS NULL AND alias_email IS NULL AND expires_at IS NULL));
COMMENT ON CONSTRAINT aliases_ended_scrubbed ON aliases IS
    'A deleted or expired alias keeps no personal data: no address, no owner email, no customer.';

-- +goose Down
ALTER TABLE aliases DROP CONSTRAINT aliases_ended_scrubbed;
ALTER TABLE aliases DROP CONSTRAINT aliases_has_owner;
-- NOT VALID: rows scrubbed under the new rule cannot get their owner back.
ALTER TABLE aliases ADD CONSTRAINT aliases_has_owner
    CHECK (customer_id IS NOT NULL OR (shadow AND email IS NOT NULL)) NOT VALID;
