-- Groups of users, nested at most one level: a group may have a parent,
-- and a group with a parent cannot itself be a parent (src/identity
-- enforces this; SQL cannot say it in a CHECK). A member of a child group
-- counts as a member of its parent ("effective" membership).
--
-- name_key is the name lowercased (names are ASCII, see
-- gh_identity_group_name_valid), so names are unique ignoring case.
-- Deleting a group is refused while it has children; deleting a user or a
-- group drops its memberships.
CREATE TABLE groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    parent_id TEXT REFERENCES groups (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK (parent_id IS NULL OR parent_id <> id)
);

CREATE INDEX groups_parent ON groups (parent_id);
CREATE INDEX groups_created ON groups (created_at, id);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);

CREATE INDEX group_members_user ON group_members (user_id);
