-- OpenID Connect provider (src/api/oidc*.c, docs/api.md "OpenID
-- Connect"): the org's signing keys, client settings of apps of kind
-- 'oidc', authorization codes, remembered consent and issued tokens.
-- Codes, refresh tokens and opaque access tokens are stored only as
-- SHA-256 digests; private keys only encrypted through src/kms (AAD: org,
-- "oidc_key", "private_pem", kid).

CREATE TABLE oidc_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL CHECK (alg IN ('ES256', 'RS256', 'EdDSA')),
    public_jwk TEXT NOT NULL,
    private_ct BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    activates_at BIGINT NOT NULL,
    retires_at BIGINT
);

CREATE TABLE oidc_clients (
    app_id TEXT PRIMARY KEY REFERENCES apps (id) ON DELETE CASCADE,
    settings TEXT NOT NULL,          -- JSON, validated by the API
    secret_digest BLOB,              -- SHA-256 of the 256-bit secret
    secret_created_at BIGINT,
    updated_at BIGINT NOT NULL
);

CREATE TABLE oidc_codes (
    digest BLOB PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT,
    nonce TEXT,
    scope TEXT NOT NULL,
    user_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL,
    family TEXT NOT NULL,            -- the tokens issued from it
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

CREATE TABLE oidc_grants (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- kind 'access' (JWT: digest NULL, looked up by id = jti) or 'refresh'
-- and opaque access tokens (by digest). family groups everything issued
-- from one code or one client credentials request.
CREATE TABLE oidc_tokens (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    digest BLOB UNIQUE,
    client_id TEXT NOT NULL,
    user_id TEXT,
    session_id TEXT,
    scope TEXT NOT NULL,
    family TEXT NOT NULL,
    auth_time BIGINT,
    amr TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,                  -- a refresh token rotated
    revoked_at BIGINT
);
CREATE INDEX oidc_tokens_family ON oidc_tokens (family);
CREATE INDEX oidc_tokens_user ON oidc_tokens (user_id, client_id);

-- private_key_jwt client assertions seen, until they expire: each jti is
-- accepted once per client.
CREATE TABLE oidc_assertions (
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);

-- Device authorization grant (RFC 8628): the device code by digest, the
-- user code people type (8 letters), and its decision.
CREATE TABLE oidc_device_codes (
    digest BLOB PRIMARY KEY,
    user_code TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied',
                                         'used')),
    user_id TEXT,
    session_id TEXT,
    auth_time BIGINT,
    amr TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_poll_at BIGINT
);
