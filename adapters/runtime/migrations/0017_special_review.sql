-- Special review (特病单议 / 特例单议), issue 16 point 3: a hospital or its city bureau asks that
-- one scored case be paid on its own merits; a reviewer (the bureau, or ops) approves points or
-- rejects, with a reason. The year's clearing (dipgw settle year) adds the approved points:
--   SELECT fixmedins_code, sum(approved_points) FROM special_reviews
--   WHERE status = 'approved' AND treating_city = $1 AND clearing_year = $2 GROUP BY 1
-- A case has at most one request that is open or approved; after a rejection it may be asked
-- again (new evidence), as a new request.
CREATE TABLE special_reviews (
    review_id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fixmedins_code   text        NOT NULL,
    setl_id          text        NOT NULL,
    treating_city    text        NOT NULL,  -- the case's, as scored (its rules, its quota)
    clearing_year    integer     NOT NULL,
    status           text        NOT NULL DEFAULT 'open'
                                 CHECK (status IN ('open', 'approved', 'rejected')),
    request_reason   text        NOT NULL,  -- why the requester asks
    approved_points  numeric     CHECK (approved_points > 0),
    reason           text,                  -- the decision's reason
    requested_by     text        NOT NULL,
    requested_at     timestamptz NOT NULL,
    decided_by       text,
    decided_at       timestamptz,
    CHECK ((status = 'open') = (decided_at IS NULL)),
    CHECK ((status = 'open') = (decided_by IS NULL)),
    CHECK ((status = 'approved') = (approved_points IS NOT NULL)),
    CHECK (status = 'open' OR reason IS NOT NULL)
);
CREATE UNIQUE INDEX special_reviews_one_live_per_case
    ON special_reviews (fixmedins_code, setl_id) WHERE status <> 'rejected';
CREATE INDEX special_reviews_city_year ON special_reviews (treating_city, clearing_year, status);
CREATE INDEX special_reviews_hospital ON special_reviews (fixmedins_code, review_id);

-- Every change of a request, in the transaction that makes it: who, when, the row before
-- (NULL when opened) and after, as the API shows it.
CREATE TABLE special_review_audit (
    audit_id   bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    review_id  bigint      NOT NULL REFERENCES special_reviews (review_id),
    action     text        NOT NULL CHECK (action IN ('open', 'approve', 'reject')),
    actor      text        NOT NULL,
    acted_at   timestamptz NOT NULL,
    before     jsonb,
    after      jsonb       NOT NULL
);
CREATE INDEX special_review_audit_review ON special_review_audit (review_id, audit_id);
