-- DIP rule sets: one row per import of a city's rules for a clearing year. Rows are never
-- changed; the highest `seq` of (city, clearing_year) is the one in force.
CREATE TABLE dip_rulesets (
    ruleset_id      bigserial   PRIMARY KEY,
    city            text        NOT NULL CHECK (city ~ '^[0-9]{4}00$'),
    clearing_year   integer     NOT NULL CHECK (clearing_year BETWEEN 2000 AND 2100),
    seq             integer     NOT NULL CHECK (seq >= 1),
    version         text        NOT NULL,  -- the rules' own label, e.g. 2026.1
    catalog_version text        NOT NULL,
    content_sha256  text        NOT NULL,  -- SHA-256 of `document` (workers.dip.encode_ruleset)
    version_id      text        NOT NULL,  -- city/year/version@hash12, recorded in results
    -- Canonical JSON as text, not jsonb: jsonb would reorder keys and break the hash.
    document        text        NOT NULL,
    sources         jsonb       NOT NULL DEFAULT '[]',  -- [{file, sha256}] that were imported
    groups          integer     NOT NULL,
    imported_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (city, clearing_year, seq)
);

-- Scored cases: the latest revision of each case as grouped and scored under the treating
-- city's rules. No personal data: the case key, codes, money and provenance only.
CREATE SEQUENCE scored_cases_pos;
CREATE TABLE scored_cases (
    fixmedins_code    text        NOT NULL,
    setl_id           text        NOT NULL,
    revision          integer     NOT NULL,
    receipt_id        uuid        NOT NULL,
    received_at       timestamptz NOT NULL,
    scored_at         timestamptz NOT NULL,
    -- Change position: every insert or update takes the next value, so a subscriber that
    -- pages "after position N" sees each change once, in order.
    pos               bigint      NOT NULL DEFAULT nextval('scored_cases_pos'),
    treating_city     text        NOT NULL,
    insured_city      text        NOT NULL,
    treating_admdvs   text        NOT NULL,
    insured_admdvs    text        NOT NULL,
    scope             text        NOT NULL
                                  CHECK (scope IN ('same_city', 'cross_city', 'out_of_province')),
    clearing_year     integer,
    status            text        NOT NULL CHECK (status IN ('scored', 'unscored')),
    unscored_rule     text,
    group_status      text,
    group_code        text,
    deviation         text,
    case_score        double precision,
    estimated_payment numeric(16,2),
    special_review    boolean     NOT NULL DEFAULT false,
    total_cost        numeric(16,2),
    ruleset_id        bigint      REFERENCES dip_rulesets (ruleset_id),
    ruleset_version   text,
    catalog_version   text,
    facts             jsonb,      -- workers.dip.CaseFacts: what `dipgw rescore` re-scores from
    message           jsonb       NOT NULL,  -- the scored message as published (treating role)
    stored_at         timestamptz NOT NULL DEFAULT clock_timestamp(),  -- latency measurable
    PRIMARY KEY (fixmedins_code, setl_id)
);
CREATE UNIQUE INDEX scored_cases_pos_idx ON scored_cases (pos);
CREATE INDEX scored_cases_treating ON scored_cases (treating_city, pos);
CREATE INDEX scored_cases_insured ON scored_cases (insured_city, pos);
CREATE INDEX scored_cases_hospital ON scored_cases (fixmedins_code, pos);
CREATE INDEX scored_cases_stored_at ON scored_cases (stored_at);
CREATE INDEX scored_cases_rescore ON scored_cases (treating_city, clearing_year);
