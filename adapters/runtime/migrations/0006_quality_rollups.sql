-- Ingestion-quality rollups (workers/quality.py), per hospital and day (China Standard Time).
--
-- Exact under redelivery: every consumed message first claims its key in quality_events
-- (accepted: the receipt id; rejected: its Kafka topic/partition/offset) with
-- ON CONFLICT DO NOTHING, in the same transaction as the rollup upserts; only messages whose
-- key was new are counted. No personal data is kept: codes, counts, receipt ids, rule ids.
CREATE TABLE quality_events (
    event_key   text        PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now()
);
-- Pruned after quality.events_keep_days (longer than Kafka could still redeliver them).
CREATE INDEX quality_events_at ON quality_events (at);

-- The city is the hospital's registered city (admdvs, first 4 digits + '00').
CREATE TABLE quality_daily (
    day            date        NOT NULL,
    fixmedins_code text        NOT NULL,
    city           text        NOT NULL,
    received       integer     NOT NULL DEFAULT 0,
    accepted       integer     NOT NULL DEFAULT 0,
    rejected       integer     NOT NULL DEFAULT 0,
    warned         integer     NOT NULL DEFAULT 0,  -- accepted with at least one warning
    revisions      integer     NOT NULL DEFAULT 0,  -- accepted corrections (revision > 1)
    resubmissions  integer     NOT NULL DEFAULT 0,  -- accepted after the same case was rejected
    -- discharge → receipt, hours, counts per fixed bucket (workers/quality.LAG_BUCKETS_H):
    -- mergeable across days, hospitals and cities by adding element-wise.
    lag_hist       integer[]   NOT NULL,
    last_seen      timestamptz NOT NULL,
    PRIMARY KEY (day, fixmedins_code)
);
CREATE INDEX quality_daily_city ON quality_daily (city, day);

-- Findings by rule; records = lists with at least one finding of the rule.
CREATE TABLE quality_rule_daily (
    day            date    NOT NULL,
    fixmedins_code text    NOT NULL,
    city           text    NOT NULL,
    rule           text    NOT NULL,
    severity       text    NOT NULL,
    dimension      text    NOT NULL,
    findings       integer NOT NULL DEFAULT 0,
    records        integer NOT NULL DEFAULT 0,
    -- up to 5 references: a receipt id (accepted) or rejected:<partition>/<offset>
    examples       text[]  NOT NULL DEFAULT '{}',
    PRIMARY KEY (day, fixmedins_code, rule, severity)
);
CREATE INDEX quality_rule_daily_city ON quality_rule_daily (city, day);

-- Lists with at least one finding in a dimension (及时性, 完整性, 规范性, 合理性).
CREATE TABLE quality_dimension_daily (
    day            date    NOT NULL,
    fixmedins_code text    NOT NULL,
    city           text    NOT NULL,
    dimension      text    NOT NULL,
    severity       text    NOT NULL,
    records        integer NOT NULL DEFAULT 0,
    findings       integer NOT NULL DEFAULT 0,
    PRIMARY KEY (day, fixmedins_code, dimension, severity)
);

-- Case keys that were rejected once, so a later acceptance counts as a resubmission.
CREATE TABLE quality_rejected_cases (
    case_key    text        PRIMARY KEY,
    rejected_at timestamptz NOT NULL
);
CREATE INDEX quality_rejected_cases_at ON quality_rejected_cases (rejected_at);

CREATE TABLE quality_hospitals (
    fixmedins_code text        PRIMARY KEY,
    city           text        NOT NULL,
    first_seen     timestamptz NOT NULL,
    last_seen      timestamptz NOT NULL
);

-- Alerts raised by the evaluator; alert_key makes one alert per condition and window, so
-- several gateway processes evaluating at once raise it once.
CREATE TABLE quality_alerts (
    alert_key      text        PRIMARY KEY,
    kind           text        NOT NULL,
    city           text,
    fixmedins_code text,
    value          double precision,
    threshold      double precision,
    message        text        NOT NULL,
    message_en     text        NOT NULL,
    raised_at      timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz
);
CREATE INDEX quality_alerts_raised ON quality_alerts (raised_at DESC);

-- Consumer lag as the workers last saw it, for alerts and /ops (any process can read it).
CREATE TABLE quality_consumer_lag (
    worker      text        NOT NULL,
    topic       text        NOT NULL,
    "partition" integer     NOT NULL,
    lag         bigint      NOT NULL,
    end_offset  bigint      NOT NULL,
    at          timestamptz NOT NULL,
    PRIMARY KEY (worker, topic, "partition")
);
