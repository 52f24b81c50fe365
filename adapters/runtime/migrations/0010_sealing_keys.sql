-- The master keys the hospitals' secrets are sealed under (by key id, never the key): a
-- gateway host whose key ring lacks one refuses to start instead of answering every hospital
-- with an error (gateway.sealing.check_keys). A key is retired once `dipgw hospitals reseal`
-- has moved every secret off it.
CREATE TABLE sealing_keys (
    key_id        text PRIMARY KEY,
    first_used_at timestamptz NOT NULL DEFAULT now(),
    retired_at    timestamptz
);
