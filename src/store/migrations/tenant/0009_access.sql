-- Apps (the org's registered applications, later OIDC clients and SAML
-- service providers), their roles, who is assigned to them, and the
-- conditional assignment rules that assign apps and group memberships
-- automatically (src/access).
--
-- name_key is the name with ASCII letters lowercased, so names are unique
-- ignoring case.
CREATE TABLE apps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL DEFAULT 'other' CHECK (kind IN ('oidc', 'saml', 'other')),
    first_party INTEGER NOT NULL DEFAULT 0 CHECK (first_party IN (0, 1)),
    state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'disabled')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX apps_created ON apps (created_at, id);

CREATE TABLE app_roles (
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, name)
);

-- Rules: expression (docs/api.md, "Assignment rules") and one action:
-- assign app_id (with app_role, or none) or add to group_id.
CREATE TABLE rules (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    expression TEXT NOT NULL,
    app_id TEXT REFERENCES apps (id) ON DELETE CASCADE,
    app_role TEXT,
    group_id TEXT REFERENCES groups (id) ON DELETE CASCADE,
    enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK ((app_id IS NULL) <> (group_id IS NULL)),
    CHECK (app_role IS NULL OR app_id IS NOT NULL),
    FOREIGN KEY (app_id, app_role) REFERENCES app_roles (app_id, name)
);
CREATE INDEX rules_created ON rules (created_at, id);

-- An app (and optionally one of its roles) assigned to a user or a group,
-- by an admin (rule_id NULL) or by a rule. The principal is user_id or
-- group_id (exactly the one principal_type names), each a real foreign
-- key, so that deleting the user or group drops its assignments.
CREATE TABLE app_assignments (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    principal_type TEXT NOT NULL CHECK (principal_type IN ('user', 'group')),
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    group_id TEXT REFERENCES groups (id) ON DELETE CASCADE,
    role TEXT,
    rule_id TEXT REFERENCES rules (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    created_by TEXT,
    CHECK ((principal_type = 'user') = (user_id IS NOT NULL)),
    CHECK ((principal_type = 'group') = (group_id IS NOT NULL)),
    FOREIGN KEY (app_id, role) REFERENCES app_roles (app_id, name)
);
CREATE UNIQUE INDEX app_assignments_unique ON app_assignments (app_id,
    principal_type, COALESCE(user_id, group_id), COALESCE(role, ''),
    COALESCE(rule_id, ''));
CREATE INDEX app_assignments_user ON app_assignments (user_id);
CREATE INDEX app_assignments_group ON app_assignments (group_id);
CREATE INDEX app_assignments_rule ON app_assignments (rule_id);

-- The group memberships a rule made, so that a rule only ever undoes
-- what it added (a membership an admin made has no row here).
CREATE TABLE rule_memberships (
    rule_id TEXT NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (rule_id, group_id, user_id)
);
CREATE INDEX rule_memberships_user ON rule_memberships (user_id);

-- Every (assignment, user) pair an assignment reaches: a user assignment
-- its user, a group assignment the group's direct members and the members
-- of its child groups (effective membership, one level of nesting).
CREATE VIEW app_user_grants AS
SELECT a.id AS assignment_id, a.app_id, a.user_id, a.role, NULL AS group_id,
       a.rule_id
  FROM app_assignments a WHERE a.principal_type = 'user'
UNION ALL
SELECT a.id, a.app_id, m.user_id, a.role, a.group_id, a.rule_id
  FROM app_assignments a JOIN group_members m ON m.group_id = a.group_id
 WHERE a.principal_type = 'group'
UNION ALL
SELECT a.id, a.app_id, m.user_id, a.role, a.group_id, a.rule_id
  FROM app_assignments a JOIN groups c ON c.parent_id = a.group_id
  JOIN group_members m ON m.group_id = c.id
 WHERE a.principal_type = 'group';

-- The effective assignees of each app (direct, through groups, by rules):
-- rbac scopes app admins with it.
CREATE VIEW app_assignees AS
SELECT DISTINCT app_id, user_id FROM app_user_grants;
