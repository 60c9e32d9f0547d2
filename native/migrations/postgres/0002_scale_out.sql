-- Worker processes as the others see them: each writes its row every heartbeat, so API
-- processes report the workers, their devices and whether any is ready in /v1/health.
CREATE TABLE workers (
    id         text PRIMARY KEY,
    device     text NOT NULL DEFAULT '',
    -- loading, ready, failed or draining
    status     text NOT NULL,
    detail     text NOT NULL DEFAULT '',
    busy       boolean NOT NULL DEFAULT false,
    started_at timestamptz NOT NULL DEFAULT now(),
    last_seen  timestamptz NOT NULL DEFAULT now()
);

-- The latest preview of each running job, when too large for a NOTIFY payload (8000 bytes):
-- listeners read it from here. Unlogged: a preview is worth nothing after a crash.
CREATE UNLOGGED TABLE previews (
    prediction text PRIMARY KEY,
    seq        bigint NOT NULL,
    data       text NOT NULL
);

-- When a process took on announcing the end of a job whose worker stopped before it could
-- (so that the reapers of several processes announce it once).
ALTER TABLE predictions ADD COLUMN announce_claimed timestamptz;

-- The rate limit shared by the API processes: a token bucket per client address.
CREATE UNLOGGED TABLE rate_limits (
    key     text PRIMARY KEY,
    tokens  float8 NOT NULL,
    -- whether the last take was allowed
    allowed boolean NOT NULL,
    at      timestamptz NOT NULL
);
