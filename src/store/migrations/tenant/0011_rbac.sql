-- Roles, permissions and delegated admins (src/rbac).
--
-- The legacy users.role column stays: "owner" and "admin" there are
-- implicit org-wide assignments of the built-in roles of those names (so
-- `gatehouse init` and PATCH /users/{id} role keep working, and the
-- last-owner rule keeps counting users.role). Every other role is given
-- through role_assignments.
--
-- Custom roles are named sets of permissions; their names are unique
-- ignoring case and may not shadow a built-in role name (src/rbac checks).
CREATE TABLE roles (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE role_permissions (
    role_id TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    permission TEXT NOT NULL,
    PRIMARY KEY (role_id, permission)
);

-- role is a built-in role name or a custom role id. A custom role is not
-- deleted while assigned (src/api/rbac.c answers 409 role_in_use).
-- scope_kind 'org' has no scope rows; 'groups' and 'apps' have one row per
-- group or app id (a group scope also covers the group's child groups).
CREATE TABLE role_assignments (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    scope_kind TEXT NOT NULL CHECK (scope_kind IN ('org', 'groups', 'apps')),
    created_by TEXT,
    created_at BIGINT NOT NULL
);

CREATE INDEX role_assignments_user ON role_assignments (user_id);
CREATE INDEX role_assignments_role ON role_assignments (role);

CREATE TABLE role_assignment_scopes (
    assignment_id TEXT NOT NULL REFERENCES role_assignments (id)
        ON DELETE CASCADE,
    scope_id TEXT NOT NULL,
    PRIMARY KEY (assignment_id, scope_id)
);
