-- Approval of a sign-in from another device where the user is signed in
-- with a second factor.
--
-- sessions.mfa_at: when the session was made with a second factor (NULL
-- for a password-only session); only such sessions may approve.
--
-- mfa_approvals: one request per pending sign-in (a new one replaces the
-- old). number is the two-digit number (10..99) shown on the new device
-- and typed on the approving one; code_hash is hex(SHA-256) of the 256-bit
-- secret in the QR code; failures counts wrong numbers.
ALTER TABLE sessions ADD COLUMN mfa_at BIGINT;

CREATE TABLE mfa_approvals (
    id TEXT PRIMARY KEY,
    pending_id TEXT NOT NULL UNIQUE REFERENCES mfa_pending (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    number INTEGER NOT NULL CHECK (number BETWEEN 10 AND 99),
    code_hash TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied')),
    failures INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    decided_at BIGINT,
    source_ip TEXT NOT NULL,
    user_agent TEXT NOT NULL
);
CREATE INDEX mfa_approvals_user ON mfa_approvals (user_id, state);
