-- Token rows touch only the indexes that can find them. Every b-tree an
-- insert touches is one more page rewritten per commit (and sealed,
-- written to the WAL, checkpointed): a JWT access token has no digest and
-- a client credentials token no user and no session, yet each went into
-- those three indexes, as NULL keys. They become partial indexes of the
-- rows that have the key; every query on them names the key with = or IN,
-- which implies IS NOT NULL, so SQLite still uses them. The UNIQUE
-- constraint on digest becomes a unique partial index (NULLs were never
-- constrained), which needs the table rebuilt; nothing references it.
-- Rebuilt WITHOUT ROWID: rows are small and always found by id (or an
-- index, which then holds the id), so the table and its primary key are
-- one b-tree instead of two. Ids of new token rows are time-ordered
-- (gh_id_new_ordered), so inserts append at its right edge.

CREATE TABLE oidc_tokens_new (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    digest BLOB,
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
) WITHOUT ROWID;
INSERT INTO oidc_tokens_new (id, kind, digest, client_id, user_id,
    session_id, scope, family, auth_time, amr, created_at, expires_at,
    used_at, revoked_at)
SELECT id, kind, digest, client_id, user_id, session_id, scope, family,
    auth_time, amr, created_at, expires_at, used_at, revoked_at
FROM oidc_tokens;
DROP TABLE oidc_tokens;
ALTER TABLE oidc_tokens_new RENAME TO oidc_tokens;

CREATE UNIQUE INDEX oidc_tokens_digest ON oidc_tokens (digest)
    WHERE digest IS NOT NULL;
CREATE INDEX oidc_tokens_family ON oidc_tokens (family);
CREATE INDEX oidc_tokens_user ON oidc_tokens (user_id, client_id)
    WHERE user_id IS NOT NULL;
CREATE INDEX oidc_tokens_session ON oidc_tokens (session_id)
    WHERE session_id IS NOT NULL;
