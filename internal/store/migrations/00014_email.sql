-- Transactional email sent through Resend (one row per send, keyed by its
-- idempotency key), the addresses crmflow no longer sends to, and the view
-- that tells a customer's row why their email is not sent.

-- +goose Up

CREATE TABLE emails (
    id               bigserial PRIMARY KEY,
    idempotency_key  text NOT NULL UNIQUE,
    recipient        text NOT NULL,
    template         text NOT NULL,
    template_version text NOT NULL,
    business_key     text NOT NULL DEFAULT '',
    subject          text NOT NULL DEFAULT '',
    status           text NOT NULL DEFAULT 'sending'
        CHECK (status IN ('sending', 'sent', 'suppressed', 'delivery_delayed', 'delivered', 'bounced', 'complained')),
    status_detail    text NOT NULL DEFAULT '',
    provider_id      text UNIQUE,
    console          boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    status_at        timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT emails_sent_has_id CHECK (status IN ('sending', 'suppressed') OR provider_id IS NOT NULL)
);
CREATE INDEX emails_recipient_idx ON emails (lower(recipient), created_at);
CREATE INDEX emails_business_key_idx ON emails (business_key, created_at);
CREATE TRIGGER emails_set_updated_at BEFORE UPDATE ON emails
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
COMMENT ON TABLE emails IS
    'Every templated email crmflow sent (or skipped) through Resend. The unique idempotency_key (workflow ID + step) makes a retried send find its row; provider_id is Resend''s email id, which its webhooks name.';
COMMENT ON COLUMN emails.status IS
    'sending until Resend answered; sent, then what Resend''s webhooks said (delivery_delayed, delivered, bounced, complained; a status never moves back); suppressed when the address was on email_suppressions and nothing was sent.';
COMMENT ON COLUMN emails.status_detail IS
    'Why the status is what it is: the suppression''s reason, the bounce''s type and message.';
COMMENT ON COLUMN emails.console IS 'Resend ran in console mode: recorded, never sent.';

CREATE TABLE email_suppressions (
    address    text PRIMARY KEY CHECK (address = lower(address) AND address <> ''),
    reason     text NOT NULL CHECK (reason IN ('bounce', 'complaint')),
    detail     text NOT NULL DEFAULT '',
    email_id   text,
    event_id   text,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE email_suppressions IS
    'Addresses crmflow sends no more email to: a hard bounce or a spam complaint reported by Resend''s webhook. Removed only by an operator (audited).';
COMMENT ON COLUMN email_suppressions.email_id IS 'Resend''s id of the email whose bounce or complaint added the address.';
COMMENT ON COLUMN email_suppressions.event_id IS 'The Svix message id of that webhook delivery (webhook_inbox.event_id).';

-- A view rather than a column on customers: it cannot go stale when an
-- operator removes a suppression or a customer's address changes.
CREATE VIEW customer_email_status AS
SELECT c.id AS customer_id, c.email,
       s.address IS NOT NULL AS suppressed,
       s.reason AS suppression_reason, s.detail AS suppression_detail, s.created_at AS suppressed_at
FROM customers c
LEFT JOIN email_suppressions s ON s.address = lower(btrim(c.email));
COMMENT ON VIEW customer_email_status IS
    'Per customer: whether crmflow still sends them email, and if not why (email_suppressions).';

-- +goose Down
DROP VIEW customer_email_status;
DROP TABLE email_suppressions;
DROP TABLE emails;
