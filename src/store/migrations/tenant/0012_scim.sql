-- SCIM bearer tokens (src/scim/token.c): credentials for identity
-- providers' provisioning clients, good for the SCIM endpoints only and
-- not tied to a user. token_hash is hex(SHA-256) of the whole token
-- string; the token itself is shown once and never stored. created_by is
-- the id of the admin who made it (kept when that user goes).
CREATE TABLE scim_tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);

-- The externalId an identity provider gave a group (users keep theirs in
-- the custom attribute scim_external_id). It goes with its group.
CREATE TABLE scim_group_external_ids (
    group_id TEXT PRIMARY KEY REFERENCES groups (id) ON DELETE CASCADE,
    external_id TEXT NOT NULL
);
