-- Remembered devices: a browser that completed a second factor with
-- "remember this device" may skip the second factor (not enrolment) at
-- later password sign-ins of the same user, while the org's MFA policy
-- keeps remember_device_days above 0 and the row is younger than that.
--
-- The gh_device cookie holds 32 random bytes (base64url); only the hex
-- SHA-256 of it is kept. expires_at is set from the policy at creation;
-- the check also applies the current policy's days to created_at, so
-- shortening the option shortens existing rows. A revoked row keeps its
-- revoked_at until the user row goes.
CREATE TABLE mfa_devices (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_used_at BIGINT,
    ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX mfa_devices_user ON mfa_devices (user_id);
