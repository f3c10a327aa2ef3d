-- The operator console: what crmflow's processes measured of their calls
-- to each integration, the state of their provider queues, and the
-- console's sign-in sessions.

-- +goose Up

-- One row per integration and minute, summed over every process that
-- called it in that minute (each adds its own counts): the console reads
-- the last 24 hours of it, whichever process made the calls.
CREATE TABLE provider_call_minutes (
    provider         text        NOT NULL,
    minute           timestamptz NOT NULL,
    requests         bigint      NOT NULL DEFAULT 0 CHECK (requests >= 0),
    errors           bigint      NOT NULL DEFAULT 0 CHECK (errors >= 0),
    latency          bigint[]    NOT NULL,
    last_error_class text,
    last_error_at    timestamptz,
    PRIMARY KEY (provider, minute)
);
COMMENT ON TABLE provider_call_minutes IS
    'Calls crmflow made to each integration (and Clerk''s deliveries to it) per minute, added up by every process; rows older than a day are deleted.';
COMMENT ON COLUMN provider_call_minutes.latency IS
    'Calls per latency bucket; the bucket bounds are internal/callstats.LatencyBounds, the last bucket is unbounded.';
CREATE INDEX provider_call_minutes_minute_idx ON provider_call_minutes (minute);

-- Each process's view of its provider activity queues (the breaker), as it
-- last reported it; a row not refreshed for a minute belongs to a process
-- that stopped.
CREATE TABLE provider_queue_states (
    replica      text        NOT NULL,
    provider     text        NOT NULL,
    paused       boolean     NOT NULL,
    paused_since timestamptz,
    pauses       integer     NOT NULL DEFAULT 0,
    failures     integer     NOT NULL DEFAULT 0,
    reported_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (replica, provider)
);

-- A signed-in operator: the cookie holds a random id, this table its
-- SHA-256, so reading the table gives no usable cookie. The session is
-- bound to the operator token's credential version and ends when that
-- version is no longer valid (revoked, or retired after a rotation).
CREATE TABLE console_sessions (
    id_hash            bytea       PRIMARY KEY,
    operator           text        NOT NULL,
    credential_version integer     NOT NULL,
    csrf               text        NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz NOT NULL
);
CREATE INDEX console_sessions_expires_idx ON console_sessions (expires_at);

-- +goose Down
DROP TABLE console_sessions;
DROP TABLE provider_queue_states;
DROP TABLE provider_call_minutes;
