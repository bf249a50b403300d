-- Multi-factor authentication: TOTP credentials, recovery codes, pending
-- second-factor sign-ins and the per-user failure counter.
--
-- seed_ct is the AES-256-GCM ciphertext of the 20-byte TOTP seed from
-- src/kms (purpose secrets), bound to (org, 'mfa_totp', 'seed', user id);
-- key_version is the data-key version that made it. last_counter is the
-- RFC 6238 time step of the last accepted code: a code whose step is not
-- greater is a replay. Recovery codes and pending sign-in tokens are kept
-- only as hex SHA-256 digests. The org's MFA policy is the settings row
-- 'mfa_policy'. Booleans are 0/1 integers; BYTEA as in 0002.
CREATE TABLE mfa_totp (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    seed_ct BYTEA NOT NULL,
    key_version BIGINT NOT NULL,
    confirmed INTEGER NOT NULL CHECK (confirmed IN (0, 1)),
    last_counter BIGINT NOT NULL DEFAULT -1,
    created_at BIGINT NOT NULL,
    confirmed_at BIGINT
);

CREATE TABLE mfa_recovery_codes (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT,
    UNIQUE (user_id, code_hash)
);

-- purpose 'verify': the password was right, a second factor is due;
-- 'enrol': MFA is required, the grace window is over and the user has
-- none: the token only allows TOTP enrolment, whose confirmation ends
-- the sign-in.
CREATE TABLE mfa_pending (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL CHECK (purpose IN ('verify', 'enrol')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    source_ip TEXT NOT NULL,
    user_agent TEXT NOT NULL
);
CREATE INDEX mfa_pending_user ON mfa_pending (user_id);

CREATE TABLE mfa_lockouts (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    failures INTEGER NOT NULL,
    locked_until BIGINT NOT NULL DEFAULT 0
);
