-- Receipts: one row per accepted upload revision; the gateway's answer to "where is it?".
CREATE TABLE receipts (
    receipt_id      uuid PRIMARY KEY,
    fixmedins_code  text        NOT NULL,
    setl_id         text        NOT NULL,
    revision        integer     NOT NULL CHECK (revision >= 1),
    content_sha256  bytea       NOT NULL,
    status          text        NOT NULL CHECK (status IN ('pending', 'accepted', 'stored')),
    mdtrtarea_admvs text        NOT NULL,
    insuplc_admdvs  text,
    received_at     timestamptz NOT NULL,
    accepted_at     timestamptz,
    stored_at       timestamptz,
    kafka_topic     text,
    kafka_partition integer,
    kafka_offset    bigint,
    UNIQUE (fixmedins_code, setl_id, revision),
    UNIQUE (fixmedins_code, setl_id, content_sha256)
);
CREATE INDEX receipts_received_at ON receipts (received_at);

-- Cases: the latest revision of each settlement list (case key = fixmedins_code + setl_id).
CREATE TABLE cases (
    fixmedins_code  text        NOT NULL,
    setl_id         text        NOT NULL,
    revision        integer     NOT NULL,
    receipt_id      uuid        NOT NULL,
    mdtrtarea_admvs text        NOT NULL,
    insuplc_admdvs  text,
    record          jsonb       NOT NULL,
    received_at     timestamptz NOT NULL,
    stored_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (fixmedins_code, setl_id)
);
CREATE INDEX cases_mdtrtarea ON cases (mdtrtarea_admvs);
