-- Tenant database: everything one organisation owns.
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    username_key TEXT NOT NULL UNIQUE,
    email TEXT,
    display_name TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL CHECK (state IN ('active', 'disabled')),
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    password_hash TEXT,
    password_changed_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_signin_at BIGINT
);
CREATE INDEX users_created ON users (created_at, id);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    source_ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- seq orders events exactly; at may repeat within a millisecond.
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL UNIQUE,
    at BIGINT NOT NULL,
    actor_type TEXT NOT NULL CHECK (actor_type IN ('user', 'api_token', 'operator', 'system')),
    actor_id TEXT,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT,
    changes TEXT NOT NULL,
    source_ip TEXT,
    request_id TEXT
);
CREATE INDEX audit_events_at ON audit_events (at);

CREATE TABLE signin_events (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL UNIQUE,
    at BIGINT NOT NULL,
    user_id TEXT,
    username TEXT NOT NULL,
    source_ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    result TEXT NOT NULL CHECK (result IN ('success', 'failure')),
    reason TEXT NOT NULL
);
CREATE INDEX signin_events_at ON signin_events (at);
