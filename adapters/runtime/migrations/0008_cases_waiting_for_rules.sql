-- Cases stored `unscored` because their treating city had no DIP rules for their clearing
-- year wait here until the rules are imported; the scoring worker then scores them
-- (workers.rescore.rescore_waiting). The partial index keeps its periodic look cheap.
CREATE INDEX scored_cases_waiting_for_rules ON scored_cases (treating_city, clearing_year)
    WHERE unscored_rule = 'DIP_NO_RULES';
