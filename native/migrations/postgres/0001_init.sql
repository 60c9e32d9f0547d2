-- The host's store on PostgreSQL (`serve --database-url`): the same records as the embedded
-- SQLite store, with the queue's lease and fencing columns. Times are the database's clock.

CREATE TABLE predictions (
    seq              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- queue order, list cursor
    id               text NOT NULL UNIQUE,
    owner            text NOT NULL,
    model            text NOT NULL,
    version          text NOT NULL,
    status           text NOT NULL
                     CHECK (status IN ('starting', 'processing', 'succeeded', 'failed', 'canceled')),
    input            jsonb NOT NULL,
    face_file        text,
    keep_face        boolean NOT NULL DEFAULT false,
    outputs          jsonb NOT NULL DEFAULT '[]',
    output_metadata  jsonb NOT NULL DEFAULT '[]',
    candidates       jsonb,
    error            text,
    logs             text NOT NULL DEFAULT '',
    metrics          jsonb NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    completed_at     timestamptz,
    -- The queue and the lease.
    priority         smallint NOT NULL DEFAULT 0,
    run_after        timestamptz NOT NULL DEFAULT now(),
    attempts         int NOT NULL DEFAULT 0,          -- the fencing token: every worker write names it
    max_attempts     int NOT NULL DEFAULT 2,
    worker_id        text,
    lease_until      timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    events_reserved  bigint NOT NULL DEFAULT 0        -- event ids a process may hand out
) WITH (fillfactor = 80);                             -- room on the page for HOT heartbeats
CREATE INDEX predictions_queue ON predictions (priority, seq) WHERE status = 'starting';
CREATE INDEX predictions_running ON predictions (seq) WHERE status = 'processing';
CREATE INDEX predictions_owner ON predictions (owner, seq);
CREATE INDEX predictions_done ON predictions (completed_at) WHERE completed_at IS NOT NULL;

-- The durable part of each prediction's event stream, with the ids it went out with. No
-- foreign key: a stream's first event is stored just before its prediction (so that no worker
-- can run the job before the event exists); events go with their prediction in its delete.
CREATE TABLE prediction_events (
    prediction text   NOT NULL,
    seq        bigint NOT NULL,
    kind       text   NOT NULL,
    data       text   NOT NULL,                       -- as sent (byte for byte on replay)
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (prediction, seq)
);

-- Uploads and output images; the bytes are in the blob store under `object_key`.
CREATE TABLE files (
    id           text PRIMARY KEY,
    sha256       text NOT NULL,
    owner        text NOT NULL,
    name         text NOT NULL,
    content_type text NOT NULL,
    size         bigint NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('upload', 'output')),
    prediction   text,
    source       text,                               -- the upload a prediction's copy came from
    object_key   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX files_prediction ON files (prediction);
CREATE INDEX files_source ON files (source);

CREATE TABLE shares (
    share_id     text PRIMARY KEY,
    prediction   text NOT NULL REFERENCES predictions (id) ON DELETE CASCADE,
    include_face boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shares_prediction ON shares (prediction);
