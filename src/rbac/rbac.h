/*
 * rbac.h: permissions, built-in and custom roles, and who holds what in
 * which scope. The permission vocabulary is fixed; a permission is one bit
 * of a uint32_t mask. A caller's grants are resolved once per request
 * (gh_rbac_grants_load) and every admin route asks them one question:
 * held anywhere (gh_rbac_holds), then for its target (gh_rbac_covers_*).
 *
 * The legacy users.role column keeps its meaning: "owner" and "admin" are
 * implicit org-wide assignments of those built-in roles. Everything else
 * comes from the role_assignments table (migration 0009_rbac.sql).
 *
 * Untrusted input: permission and role names from request bodies (looked
 * up, never formatted into SQL). Secrets: none.
 */
#ifndef GH_RBAC_H
#define GH_RBAC_H

#include "core/core.h"
#include "store/store.h"

#include <jansson.h>

/* Permissions, in bit order (gh_rbac_perm_name gives the name). */
enum {
	GH_PERM_USERS_READ = 1u << 0,
	GH_PERM_USERS_WRITE = 1u << 1,
	GH_PERM_GROUPS_READ = 1u << 2,
	GH_PERM_GROUPS_WRITE = 1u << 3,
	GH_PERM_APPS_READ = 1u << 4,
	GH_PERM_APPS_WRITE = 1u << 5,
	GH_PERM_POLICIES_READ = 1u << 6,
	GH_PERM_POLICIES_WRITE = 1u << 7,
	GH_PERM_ROLES_READ = 1u << 8,
	GH_PERM_ROLES_WRITE = 1u << 9,
	GH_PERM_AUDIT_READ = 1u << 10,
	GH_PERM_SIGNINS_READ = 1u << 11,
	GH_PERM_ORG_READ = 1u << 12,
	GH_PERM_ORG_WRITE = 1u << 13,
	GH_PERM_KEYS_WRITE = 1u << 14,
	GH_PERM_ATTRIBUTES_WRITE = 1u << 15,
	GH_PERM_TOKENS_WRITE = 1u << 16,
	GH_PERM_SCIM_WRITE = 1u << 17,
};
#define GH_RBAC_PERM_COUNT 18
#define GH_PERM_ALL ((uint32_t)((1u << GH_RBAC_PERM_COUNT) - 1))

#define GH_RBAC_ROLE_NAME_MAX 64
#define GH_RBAC_SCOPE_MAX 64	/* scope ids per assignment */

enum gh_rbac_scope { GH_SCOPE_ORG, GH_SCOPE_GROUPS, GH_SCOPE_APPS };

/* The name of the single permission bit perm; NULL if perm is not one. */
const char *gh_rbac_perm_name(uint32_t perm);
/* The bit of a permission name; 0 when the name is unknown. */
uint32_t gh_rbac_perm_bit(const char *name);
/* "org", "groups", "apps"; and back (false for anything else). */
const char *gh_rbac_scope_name(enum gh_rbac_scope kind);
bool gh_rbac_scope_parse(const char *s, enum gh_rbac_scope *out);
/* The permissions that mean something within a scope of kind: all of them
 * for the org; users, groups, sign-ins and roles for groups; apps, users.read
 * and roles for apps. Scoped assignments carry only these. */
uint32_t gh_rbac_scopable(enum gh_rbac_scope kind);

/* True when name is a built-in role: owner, admin, user_admin, app_admin,
 * auditor. Then *perms_out gets its permissions and *kind_out the scope
 * kind it is assigned with (either may be NULL). */
bool gh_rbac_builtin(const char *name, uint32_t *perms_out,
    enum gh_rbac_scope *kind_out);

/* One scoped grant: perms over one group (and its child groups) or app. */
struct gh_rbac_scoped {
	uint32_t perms;
	enum gh_rbac_scope kind;
	char id[GH_ID_LEN + 1];
};

/* What one user holds. */
struct gh_rbac_grants {
	bool owner;		/* users.role is "owner": may manage owners */
	uint32_t org;		/* held org-wide */
	uint32_t any;		/* held in at least one scope (org included) */
	size_t len, cap;
	struct gh_rbac_scoped *v;
};

/* Adds perms (masked to what kind allows) over scope_id; for
 * GH_SCOPE_ORG scope_id is ignored. */
gh_err gh_rbac_grants_add(struct gh_rbac_grants *g, uint32_t perms,
    enum gh_rbac_scope kind, const char *scope_id) GH_MUST_CHECK;
/* Frees the scoped entries; the struct may be reused. NULL-safe. */
void gh_rbac_grants_free(struct gh_rbac_grants *g);

/* Resolves user_id's grants: legacy_role ("owner", "admin", "member")
 * plus every role assignment. A role assignment naming a custom role that
 * no longer exists grants nothing. Fills *out (free with
 * gh_rbac_grants_free) even on failure. */
gh_err gh_rbac_grants_load(struct gh_db *db, const char *user_id,
    const char *legacy_role, struct gh_rbac_grants *out) GH_MUST_CHECK;

/* Every bit of perms is held in some scope / org-wide. */
bool gh_rbac_holds(const struct gh_rbac_grants *g, uint32_t perms);
bool gh_rbac_holds_org(const struct gh_rbac_grants *g, uint32_t perms);

/* Every bit of perms is held over the group group_id, whose parent is
 * parent_id ("" or NULL when top-level): org-wide, or through a group
 * scope on the group itself or on its parent. */
bool gh_rbac_covers_group(const struct gh_rbac_grants *g, uint32_t perms,
    const char *group_id, const char *parent_id);
/* Every bit of perms is held over app app_id. */
bool gh_rbac_covers_app(const struct gh_rbac_grants *g, uint32_t perms,
    const char *app_id);
/* Every bit of perms is held over user_id: org-wide, or each bit through
 * a group scope the user is an effective member of, or an app scope the
 * user is assigned to (the app_assignees(app_id, user_id) view of the apps
 * capability; in a database without it, app scopes cover no user). */
gh_err gh_rbac_covers_user(struct gh_db *db, const struct gh_rbac_grants *g,
    uint32_t perms, const char *user_id, bool *out) GH_MUST_CHECK;

/* A scope target of a grant: a group (with its parent) or an app. */
struct gh_rbac_target {
	const char *id;
	const char *parent_id;	/* groups only; NULL or "" if top-level */
};

/*
 * The delegation rule: may granter give perms over kind and targets (n of
 * them; none for GH_SCOPE_ORG)? Each permission must be held over each
 * target (org-wide for an org grant), and so must roles.write. GH_OK when
 * it may; GH_ERR_DENIED with *missing_out naming a permission it lacks
 * (one it holds nowhere first, *out_of_scope_out false; else one it holds
 * but not over these targets, *out_of_scope_out true).
 */
gh_err gh_rbac_may_grant(const struct gh_rbac_grants *granter, uint32_t perms,
    enum gh_rbac_scope kind, const struct gh_rbac_target *targets, size_t n,
    const char **missing_out, bool *out_of_scope_out) GH_MUST_CHECK;

/* Parses a JSON-ish list of names into a mask: names[n]. GH_ERR_INVALID
 * with *bad_out the first unknown name. */
gh_err gh_rbac_perms_parse(const char *const *names, size_t n,
    uint32_t *perms_out, const char **bad_out) GH_MUST_CHECK;

/* True when user_id holds any role: a legacy owner or admin, or any role
 * assignment. Scoped admins may not write to such users. */
gh_err gh_rbac_user_privileged(struct gh_db *db, const char *user_id,
    bool *out) GH_MUST_CHECK;

/* ---- roles and assignments in the tenant database ------------------------- */

/* Resolves role (a built-in name or a custom role id) to its permissions.
 * GH_ERR_NOTFOUND when it is neither. *builtin_kind_out (may be NULL) gets
 * the scope kind a built-in role is assigned with; for a custom role it is
 * left alone (any kind may be chosen). *builtin_out tells which it was. */
gh_err gh_rbac_role_perms(struct gh_db *db, const char *role,
    uint32_t *perms_out, bool *builtin_out, enum gh_rbac_scope *builtin_kind_out)
    GH_MUST_CHECK;

/* Custom role names: 1 to GH_RBAC_ROLE_NAME_MAX of [A-Za-z0-9 ._-], not a
 * built-in role name (ignoring case). */
bool gh_rbac_role_name_valid(const char *name);

/* Inserts a custom role with a fresh id (id_out). GH_ERR_CONFLICT when
 * the name is taken (ignoring case). */
gh_err gh_rbac_role_create(struct gh_db *db, const char *name,
    const char *description, uint32_t perms, const char *created_by,
    char id_out[static GH_ID_LEN + 1]) GH_MUST_CHECK;
/* Replaces what is not NULL (name, description) and the permissions when
 * set_perms. GH_ERR_NOTFOUND, GH_ERR_CONFLICT (name taken). */
gh_err gh_rbac_role_update(struct gh_db *db, const char *id, const char *name,
    const char *description, bool set_perms, uint32_t perms) GH_MUST_CHECK;
/* GH_ERR_CONFLICT while the role is assigned; GH_ERR_NOTFOUND. */
gh_err gh_rbac_role_delete(struct gh_db *db, const char *id) GH_MUST_CHECK;
/* The role view {id, name, description, permissions, builtin, ...} of a
 * custom role id or a built-in name. GH_ERR_NOTFOUND. */
gh_err gh_rbac_role_json(struct gh_db *db, const char *role, json_t **out)
    GH_MUST_CHECK;
/* Every built-in role then every custom role (by name), as role views. */
gh_err gh_rbac_role_list(struct gh_db *db, json_t **out) GH_MUST_CHECK;
/* A permission mask as a JSON array of names in vocabulary order. */
json_t *gh_rbac_perms_json(uint32_t perms);

/* A role assignment as stored. */
struct gh_rbac_assignment {
	char id[GH_ID_LEN + 1];
	char user_id[GH_ID_LEN + 1];
	char role[GH_RBAC_ROLE_NAME_MAX + 1];
	enum gh_rbac_scope kind;
	size_t n_scopes;
	char scopes[GH_RBAC_SCOPE_MAX][GH_ID_LEN + 1];
};

/* Inserts a (fresh id) with its scope rows. */
gh_err gh_rbac_assignment_insert(struct gh_db *db,
    struct gh_rbac_assignment *a, const char *created_by) GH_MUST_CHECK;
gh_err gh_rbac_assignment_get(struct gh_db *db, const char *id,
    struct gh_rbac_assignment *out) GH_MUST_CHECK;
gh_err gh_rbac_assignment_delete(struct gh_db *db, const char *id)
    GH_MUST_CHECK;
/* Assignments (of user_id, or all when NULL) as JSON views, oldest first,
 * preceded by the implicit ones of users.role owner and admin (id null,
 * "source": "users.role"). */
gh_err gh_rbac_assignment_list(struct gh_db *db, const char *user_id,
    json_t **out) GH_MUST_CHECK;
/* Forgets scope_id (a deleted group or app) in every assignment, then
 * deletes the scoped assignments left without a scope; *dropped_out gets
 * how many went. In the caller's transaction. */
gh_err gh_rbac_scope_forget(struct gh_db *db, const char *scope_id,
    int64_t *dropped_out) GH_MUST_CHECK;
/* The view of a. */
json_t *gh_rbac_assignment_json(const struct gh_rbac_assignment *a);
/* The effective permissions view of grants. */
json_t *gh_rbac_grants_json(const struct gh_rbac_grants *g);

#endif
