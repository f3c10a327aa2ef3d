-- crmflow's own bookkeeping: the webhook inbox (transactional outbox towards
-- Temporal), parked workflow steps, encrypted provider credentials and the
-- audit trail.

-- +goose Up

CREATE TABLE webhook_inbox (
    id              bigserial PRIMARY KEY,
    provider        text NOT NULL,
    event_id        text NOT NULL,
    event_type      text NOT NULL,
    workflow_id     text,
    payload         jsonb NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    handed_off_at   timestamptz,
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      text,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_inbox_provider_event_id_key UNIQUE (provider, event_id)
);
-- The dispatcher's work queue: rows not yet handed off, in commit order.
CREATE INDEX webhook_inbox_pending_idx ON webhook_inbox (id) WHERE handed_off_at IS NULL;
COMMENT ON TABLE webhook_inbox IS
    'Every accepted webhook event and start-API inventory update, committed before the provider gets its 200. unique (provider, event_id) turns a redelivery into a no-op; the dispatcher hands rows to Temporal in id order per workflow_id and sets handed_off_at.';
COMMENT ON COLUMN webhook_inbox.workflow_id IS
    'Workflow the event is for; NULL for event types crmflow ignores.';
COMMENT ON COLUMN webhook_inbox.next_attempt_at IS
    'Hand-off backoff: the dispatcher skips the row until then.';

CREATE TABLE dead_letters (
    id            bigserial PRIMARY KEY,
    workflow_id   text NOT NULL,
    run_id        text NOT NULL,
    workflow_type text NOT NULL,
    step          text NOT NULL,
    error         text NOT NULL,
    error_type    text NOT NULL DEFAULT '',
    attempts      integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    input         jsonb,
    status        text NOT NULL DEFAULT 'parked'
        CHECK (status IN ('parked', 'retrying', 'skipped', 'aborted', 'resolved')),
    decided_by    text,
    decided_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_status_idx ON dead_letters (status);
-- A step of a run has at most one open dead letter: recording it again (a
-- retried activity) finds the existing row, and a retry that fails again
-- moves that row back to parked rather than adding another.
CREATE UNIQUE INDEX dead_letters_open_step_idx ON dead_letters (workflow_id, run_id, step)
    WHERE status IN ('parked', 'retrying');
COMMENT ON TABLE dead_letters IS
    'Workflow steps that failed for good and wait for an operator: retry, skip or abort. The workflow stays alive (CrmflowParked=true) until decided; nothing is dropped.';
COMMENT ON COLUMN dead_letters.input IS 'The failed step''s input, never containing secrets.';

CREATE TABLE credentials (
    id            bigserial PRIMARY KEY,
    provider      text NOT NULL,
    name          text NOT NULL,
    version       integer NOT NULL CHECK (version > 0),
    ciphertext    bytea NOT NULL,
    nonce         bytea NOT NULL,
    master_key_id text NOT NULL,
    external_id   text,
    status        text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'active', 'retiring', 'revoked')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    activated_at  timestamptz,
    retire_after  timestamptz,
    revoked_at    timestamptz,
    CONSTRAINT credentials_provider_name_version_key UNIQUE (provider, name, version)
);
-- Activities read the active credential at call time; two would be ambiguous.
CREATE UNIQUE INDEX credentials_one_active_idx ON credentials (provider, name) WHERE status = 'active';
COMMENT ON TABLE credentials IS
    'Provider secrets by version, encrypted with AES-256-GCM under the master key named by master_key_id. Key rotation adds a pending version, activates it (the previous one becomes retiring for its grace period until retire_after) and finally revokes the old one.';
COMMENT ON COLUMN credentials.external_id IS
    'The provider''s own id for the key, where it has one (a Resend API key id), so it can be deleted when revoked.';

CREATE TABLE audit_log (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL,
    action  text NOT NULL,
    subject text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_subject_idx ON audit_log (subject, at);
COMMENT ON TABLE audit_log IS
    'Append-only record of operator decisions and security-relevant changes (key rotations, dead-letter decisions, API token use). Never holds secrets.';

-- +goose Down
DROP TABLE audit_log;
DROP TABLE credentials;
DROP TABLE dead_letters;
DROP TABLE webhook_inbox;
