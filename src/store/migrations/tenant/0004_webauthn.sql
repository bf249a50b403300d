-- WebAuthn: passkeys and security keys, their per-user handles and the
-- ceremony challenges.
--
-- credential_id is the base64url (no padding) of the authenticator's
-- credential id, unique in the org. public_key is the key as libfido2
-- gives it (ES256 x||y, EdDSA 32 bytes, RS256 n||e) for alg (COSE).
-- sign_count is the last accepted signature counter; regressions counts
-- assertions refused for a counter that went back (a possibly cloned
-- authenticator). aaguid is 32 lowercase hex chars. The user handle is
-- 32 random bytes (base64url), stable per user and unrelated to the id.
-- A challenge is kept only as the hex SHA-256 of its random bytes; it
-- lives two minutes and is used once. user_id is NULL for usernameless
-- passkey sign-in. Booleans are 0/1 integers; BYTEA as in 0002.
CREATE TABLE webauthn_credentials (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    alg INTEGER NOT NULL,
    public_key BYTEA NOT NULL,
    sign_count BIGINT NOT NULL,
    uv INTEGER NOT NULL CHECK (uv IN (0, 1)),
    backup_eligible INTEGER NOT NULL CHECK (backup_eligible IN (0, 1)),
    backup_state INTEGER NOT NULL CHECK (backup_state IN (0, 1)),
    aaguid TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    regressions INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id);

CREATE TABLE webauthn_user_handles (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    handle TEXT NOT NULL UNIQUE
);

CREATE TABLE webauthn_challenges (
    id TEXT PRIMARY KEY,
    challenge_hash TEXT NOT NULL UNIQUE,
    purpose TEXT NOT NULL CHECK (purpose IN ('register', 'authenticate')),
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used INTEGER NOT NULL DEFAULT 0 CHECK (used IN (0, 1))
);
CREATE INDEX webauthn_challenges_expiry ON webauthn_challenges (expires_at);
