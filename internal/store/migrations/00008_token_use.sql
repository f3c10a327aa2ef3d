-- +goose Up
-- When a token (a start-API or operator token) was last accepted, so a
-- rotation can tell that its new token is in use before it retires the old
-- one, and operators can see which tokens are still used. Written at most
-- once a minute per version.
ALTER TABLE credentials ADD COLUMN last_used_at timestamptz;

-- +goose Down
ALTER TABLE credentials DROP COLUMN last_used_at;
