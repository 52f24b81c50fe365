-- Bureau, ops and metrics tokens expire: `dipgw tokens issue` sets expires_at from
-- auth.token_ttl_days (default 90). Tokens issued before this migration get 90 days from the
-- migration rather than no expiry (the default is evaluated for every existing row), so every
-- token in use is renewed at least once; see docs/operations.md, "Tokens".
ALTER TABLE api_tokens
    ADD COLUMN expires_at timestamptz NOT NULL DEFAULT now() + interval '90 days';
-- When a token was last seen, to the hour: written by a process's lookup (at most once per
-- auth.cache_ttl_s), and only when the stored value is over an hour old.
ALTER TABLE api_tokens ADD COLUMN last_used_at timestamptz;
