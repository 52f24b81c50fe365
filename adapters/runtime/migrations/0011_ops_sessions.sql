-- Sessions of the /ops page: a browser logs in with a bureau or ops token and gets a session
-- of its own (stored as a SHA-256 hash, like tokens), short-lived, ended by logging out or by
-- revoking the token it was opened with. The cookie never holds the long-lived token.
CREATE TABLE ops_sessions (
    session_sha256 bytea       PRIMARY KEY,
    token_sha256   bytea       NOT NULL REFERENCES api_tokens (token_sha256),
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz
);
CREATE INDEX ops_sessions_expires ON ops_sessions (expires_at);
