-- Hospital registry: who may push, for which institution code and treating region.
CREATE TABLE hospitals (
    fixmedins_code       text PRIMARY KEY CHECK (fixmedins_code ~ '^H[0-9]{11}$'),
    name                 text        NOT NULL,
    admdvs               text        NOT NULL CHECK (admdvs ~ '^[0-9]{6}$'),
    level                text        NOT NULL,
    status               text        NOT NULL DEFAULT 'active'
                                     CHECK (status IN ('active', 'disabled')),
    sign_type            text        NOT NULL DEFAULT 'HMAC-SHA256'
                                     CHECK (sign_type IN ('HMAC-SHA256', 'HMAC-SM3')),
    -- AES-256-GCM under the gateway's master key: HMAC needs the secret itself, so it is
    -- encrypted, never stored in clear.
    secret_enc           bytea       NOT NULL,
    previous_secret_enc  bytea,
    previous_valid_until timestamptz,
    cert_subject         text UNIQUE,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- Read-only bearer tokens for city bureaus (one city) and ops (everything). Only a hash is kept.
CREATE TABLE api_tokens (
    token_sha256 bytea PRIMARY KEY,
    role         text        NOT NULL CHECK (role IN ('city', 'ops')),
    admdvs       text        CHECK (admdvs ~ '^[0-9]{6}$'),
    label        text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    CHECK ((role = 'city') = (admdvs IS NOT NULL))
);

-- Single-use request nonces inside the signing window; rows older than the window are purged.
CREATE TABLE request_nonces (
    fixmedins_code text        NOT NULL,
    nonce          text        NOT NULL,
    seen_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (fixmedins_code, nonce)
);
CREATE INDEX request_nonces_seen_at ON request_nonces (seen_at);
