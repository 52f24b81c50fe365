-- Settlement (issue 16: workers/settlement.py, workers/dip/_settle*.py, docs/settlement.md).
--
-- settlement_policies: one row per import of a city's settlement policy for a clearing year
-- (`dipgw rules import CITY YEAR settlement.toml`, a TOML with `kind = "settlement"`). Rows
-- are never changed; the highest `seq` of (city, clearing_year) is in force. `document` is the
-- canonical JSON as text (jsonb would reorder keys and break the hash).
-- `special_review_quota_permille` is copied out of the document for the special-review quota.
CREATE TABLE settlement_policies (
    policy_id       bigserial   PRIMARY KEY,
    city            text        NOT NULL CHECK (city ~ '^[0-9]{4}00$'),
    clearing_year   integer     NOT NULL CHECK (clearing_year BETWEEN 2000 AND 2100),
    seq             integer     NOT NULL CHECK (seq >= 1),
    version         text        NOT NULL,
    content_sha256  text        NOT NULL,
    document        text        NOT NULL,
    sources         jsonb       NOT NULL DEFAULT '[]',
    special_review_quota_permille numeric NOT NULL CHECK (special_review_quota_permille >= 0),
    imported_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (city, clearing_year, seq)
);

-- settlement_runs: one row per `dipgw settle month|year`. Runs are never changed: running a
-- period again stores the next `seq`, with the adjustments against the previous run.
-- `inputs`: the policy and rule-set versions used, the input file's hash, counts;
-- `point_values`: per fund; `totals`: the city's figures per fund and overall (money as text).
CREATE TABLE settlement_runs (
    run_id          bigserial   PRIMARY KEY,
    city            text        NOT NULL CHECK (city ~ '^[0-9]{4}00$'),
    period          text        NOT NULL CHECK (period ~ '^[0-9]{4}(-[0-9]{2})?$'),
    kind            text        NOT NULL CHECK (kind IN ('month', 'year')),
    seq             integer     NOT NULL CHECK (seq >= 1),
    clearing_year   integer     NOT NULL,
    policy_id       bigint      NOT NULL REFERENCES settlement_policies (policy_id),
    inputs          jsonb       NOT NULL,
    point_values    jsonb       NOT NULL,
    totals          jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (city, period, kind, seq),
    CHECK ((kind = 'month') = (period ~ '-'))
);

-- settlement_lines: one per (run, hospital, fund). `settled`: what the hospital is due for the
-- period (month: the prepay before deductions and deposit; year: the amount after assessment,
-- special review, deductions and surplus/overspend bands); `payable`: what the fund pays now
-- (month: settled − deposit − deductions; year: the clearing balance after the months' prepay
-- and the deposit returned). `adjustment`: `payable` minus the previous run's for the same line.
-- `figures`: every intermediate figure, as text.
CREATE TABLE settlement_lines (
    run_id          bigint      NOT NULL REFERENCES settlement_runs (run_id),
    fixmedins_code  text        NOT NULL,
    fund            text        NOT NULL,
    cases           integer     NOT NULL,
    points          numeric(20,4) NOT NULL,
    dip_amount      numeric(16,2) NOT NULL,
    other_payments  numeric(16,2) NOT NULL,
    deductions      numeric(16,2) NOT NULL,
    deposit         numeric(16,2) NOT NULL,
    settled         numeric(16,2) NOT NULL,
    payable         numeric(16,2) NOT NULL,
    adjustment      numeric(16,2) NOT NULL,
    figures         jsonb       NOT NULL,
    PRIMARY KEY (run_id, fixmedins_code, fund)
);

-- settlement_cases: the case set a run settled (key, revision, points), so the next run of
-- the period reports what changed since (new, changed, gone) instead of rewriting this one.
CREATE TABLE settlement_cases (
    run_id          bigint      NOT NULL REFERENCES settlement_runs (run_id),
    fixmedins_code  text        NOT NULL,
    setl_id         text        NOT NULL,
    revision        integer     NOT NULL,
    fund            text        NOT NULL,
    points          numeric(20,4) NOT NULL,
    PRIMARY KEY (run_id, fixmedins_code, setl_id)
);
CREATE INDEX settlement_runs_period ON settlement_runs (city, kind, period, seq);
