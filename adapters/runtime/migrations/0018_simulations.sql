-- Rules simulations (测算, `dipgw rules simulate`): a year of a city's stored cases scored under
-- draft rules, next to the published results. Never touches scored_cases. Rows are never
-- changed; `seq` numbers the simulations of one (city, clearing_year).
CREATE TABLE simulation_runs (
    sim_id             bigserial   PRIMARY KEY,
    city               text        NOT NULL CHECK (city ~ '^[0-9]{4}00$'),
    clearing_year      integer     NOT NULL CHECK (clearing_year BETWEEN 2000 AND 2100),
    seq                integer     NOT NULL CHECK (seq >= 1),
    -- the rules in force when simulated (NULL: the city had none) and the draft's identity
    current_ruleset_id bigint      REFERENCES dip_rulesets (ruleset_id),
    current_version    text,
    draft_version      text        NOT NULL,  -- city/year/version@hash12 of the draft
    draft_sha256       text        NOT NULL,
    draft_sources      jsonb       NOT NULL DEFAULT '[]',  -- [{file, sha256}] simulated
    -- {"current": {fund: yuan}, "draft": {fund: yuan}, "method": {...}} as decimal strings
    point_values       jsonb       NOT NULL,
    cases              integer     NOT NULL,
    skipped            integer     NOT NULL DEFAULT 0,  -- stored without facts: not simulated
    points_current     numeric     NOT NULL,
    points_draft       numeric     NOT NULL,
    payment_current    numeric(16,2) NOT NULL,
    payment_draft      numeric(16,2) NOT NULL,
    delta              numeric(16,2) NOT NULL,
    delta_pct          numeric(9,2),           -- NULL when nothing is paid today
    kinds_current      jsonb       NOT NULL,   -- {deviation kind: cases}, 'unscored' included
    kinds_draft        jsonb       NOT NULL,
    seconds            double precision NOT NULL,
    created_by         text        NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (city, clearing_year, seq)
);

-- One line per hospital (the treating hospital; cross-city cases under the treating city).
CREATE TABLE simulation_lines (
    sim_id          bigint        NOT NULL REFERENCES simulation_runs (sim_id) ON DELETE CASCADE,
    fixmedins_code  text          NOT NULL,
    cases           integer       NOT NULL,
    points_current  numeric       NOT NULL,
    points_draft    numeric       NOT NULL,
    payment_current numeric(16,2) NOT NULL,
    payment_draft   numeric(16,2) NOT NULL,
    delta           numeric(16,2) NOT NULL,
    delta_pct       numeric(9,2),
    kinds_current   jsonb         NOT NULL,
    kinds_draft     jsonb         NOT NULL,
    PRIMARY KEY (sim_id, fixmedins_code)
);
CREATE INDEX simulation_lines_hospital ON simulation_lines (fixmedins_code, sim_id);
