-- OpenID Connect Back-Channel Logout 1.0 (src/api/oidc_bcl.c, docs/api.md
-- "Back-channel logout"). When a session ends (src/auth/session.c), one
-- row per client that got tokens in it (oidc_tokens.session_id) is queued
-- here in the same transaction; the sender thread posts a signed logout
-- token to the client's backchannel_logout_uri and deletes the row once
-- it is delivered or given up (each outcome is audited). No token is
-- stored: it is made and signed at each attempt.

CREATE INDEX oidc_tokens_session ON oidc_tokens (session_id);

CREATE TABLE oidc_logout_outbox (
    session_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_error TEXT,
    PRIMARY KEY (session_id, client_id)
);
CREATE INDEX oidc_logout_outbox_due ON oidc_logout_outbox (next_at);
