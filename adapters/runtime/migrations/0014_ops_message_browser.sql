-- The /ops message browser (gateway/ops/messages.py).
--
-- Rejected lists as the quality worker consumed them from dip.settlement.rejected.v1: the
-- findings and the document exactly as that topic carries it (contracts.redact_document:
-- only the contract's fields, personal ones masked), so nothing here is less masked than
-- the topic. Keyed by the message's original Kafka position (a replayed message keeps it);
-- kept for quality.events_keep_days after it was stored, then pruned by the worker.
CREATE TABLE rejected_messages (
    topic          text        NOT NULL,
    "partition"    integer     NOT NULL,
    "offset"       bigint      NOT NULL,
    fixmedins_code text        NOT NULL,
    city           text        NOT NULL,
    case_key       text,
    received_at    timestamptz NOT NULL,
    rules          text[]      NOT NULL,
    -- JSON as the topic carries it, in text: jsonb refuses a "\u0000" a document may hold,
    -- and keeping a list for the browser must never stop it being counted
    errors         text        NOT NULL,
    document       text,
    kept_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, "partition", "offset")
);
CREATE INDEX rejected_messages_received ON rejected_messages (received_at DESC);
CREATE INDEX rejected_messages_hospital ON rejected_messages (fixmedins_code, received_at DESC);
CREATE INDEX rejected_messages_rules ON rejected_messages USING gin (rules);
CREATE INDEX rejected_messages_kept ON rejected_messages (kept_at);

-- A dead letter is replayed at most once by an ops action: when, and how it went.
ALTER TABLE dead_letters ADD COLUMN replayed_at timestamptz;
ALTER TABLE dead_letters ADD COLUMN replayed_to text;  -- topic/partition/offset written
CREATE INDEX dead_letters_at ON dead_letters (at DESC);

-- Who did what from /ops (replays so far): actor is the token's label, never a secret.
CREATE TABLE ops_audit (
    id      bigserial   PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text        NOT NULL,
    action  text        NOT NULL,
    target  text        NOT NULL,
    result  text        NOT NULL,
    detail  text        NOT NULL DEFAULT ''
);
CREATE INDEX ops_audit_at ON ops_audit (at DESC);
