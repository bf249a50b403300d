-- Security policies (src/policy): named sets of sign-in rules attached to
-- groups. A user's effective policy merges, field by field, the policies
-- of their effective groups by priority (the lowest number wins), then the
-- default policy, then the org-level settings (password and MFA policy).
--
-- settings is the normalised JSON that gh_policy_settings_parse wrote.
-- Priorities are unique (ties are refused). Exactly one row is the
-- default: it is made here with a fixed id, carries the highest priority
-- number (it always comes last), cannot be deleted and is never attached
-- to a group.
--
-- sessions.idle_ms: the idle timeout a policy gave the session when it was
-- made (NULL: only the server-wide one).
CREATE TABLE security_policies (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    priority INTEGER NOT NULL UNIQUE,
    is_default INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
    settings TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE UNIQUE INDEX security_policies_one_default ON security_policies
    (is_default) WHERE is_default = 1;

INSERT INTO security_policies (id, name, name_key, priority, is_default,
    settings, created_at, updated_at)
VALUES ('00000000000000000000000000000001', 'Default', 'default',
    2147483647, 1, '{}', 0, 0);

CREATE TABLE policy_groups (
    policy_id TEXT NOT NULL REFERENCES security_policies (id)
        ON DELETE CASCADE,
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (policy_id, group_id)
);

CREATE INDEX policy_groups_group ON policy_groups (group_id);

ALTER TABLE sessions ADD COLUMN idle_ms BIGINT;
