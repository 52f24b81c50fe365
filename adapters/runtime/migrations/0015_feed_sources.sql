-- Feed sources beyond HTTP push (issue 15: gateway/feeds.py, adapters/feeds): a HIS
-- intermediate database, a watched folder, an SFTP account.
--
-- One row per configured feed: its configuration (declared in settings, origin 'settings', or
-- by `dipgw feeds add`, origin 'cli'), whether an operator paused it, the source position the
-- runner stored after the last batch it made durable (opaque to the database: a cursor of the
-- source), and what the runner last saw, for `dipgw feeds status`, /ops and the silence
-- alert. Counters are totals since the feed was added, across processes and restarts
-- (Prometheus has the per-process rates).
CREATE TABLE feed_sources (
    name           text        PRIMARY KEY,
    kind           text        NOT NULL,
    hospitals      text[]      NOT NULL,
    config         jsonb       NOT NULL,
    origin         text        NOT NULL DEFAULT 'cli' CHECK (origin IN ('cli', 'settings')),
    paused         boolean     NOT NULL DEFAULT false,
    position       text,
    rows_read      bigint      NOT NULL DEFAULT 0,
    accepted       bigint      NOT NULL DEFAULT 0,
    duplicate      bigint      NOT NULL DEFAULT 0,
    rejected       bigint      NOT NULL DEFAULT 0,
    errors         bigint      NOT NULL DEFAULT 0,
    backlog_items  bigint,
    backlog_oldest timestamptz,
    last_poll_at   timestamptz,
    last_batch_at  timestamptz,
    last_error     text,
    failing_since  timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feed_sources_hospitals ON feed_sources USING gin (hospitals);
