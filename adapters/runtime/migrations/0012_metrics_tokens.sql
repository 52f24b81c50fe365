-- A token of role 'metrics' may read /metrics and nothing else (a Prometheus scraper): the
-- metrics name hospitals, volumes and rejection rules, so they are not public.
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
    CHECK (role IN ('city', 'ops', 'metrics'));
