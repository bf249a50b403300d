/*
 * rbac.c (api): the permission check every admin route starts with
 * (ctx_open_perm and the scope checks), and the delegation API: custom
 * roles (GET/POST /o/{org}/api/v1/roles, GET/PATCH/DELETE /roles/{id}),
 * role assignments (GET/POST /role-assignments, DELETE
 * /role-assignments/{id}) and GET /users/{id}/permissions. Every change is
 * audited in its own transaction (role.create, role.update, role.delete,
 * role_assignment.create, role_assignment.delete).
 *
 * Delegation rules: nobody grants (or revokes, or puts into a custom role)
 * a permission they do not hold over the whole scope of the grant; nobody
 * grants anything to themselves; owner and admin stay the users.role
 * field's (PATCH /users/{id}), where the last-owner rule lives.
 *
 * Untrusted input: bodies, ids in paths and queries. Secrets: none.
 */
#include "api/api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the check --------------------------------------------------------------- */

static uint32_t
perm_bit(const char *perm)
{
	uint32_t bit = gh_rbac_perm_bit(perm);

	if (bit == 0)
		GH_PANIC("unknown permission in a route");
	return bit;
}

static void
respond_denied(struct gh_http_req *req, const char *perm)
{
	char msg[128];

	snprintf(msg, sizeof msg, "This needs the permission %s.", perm);
	gh_http_respond_error(req, 403, "permission_denied", msg);
}

static void
respond_out_of_scope(struct gh_http_req *req, const char *perm,
    const char *what)
{
	char msg[160];

	snprintf(msg, sizeof msg, "Your %s permission does not cover %s.",
	    perm, what);
	gh_http_respond_error(req, 403, "out_of_scope", msg);
}

/* Authenticates and loads the caller's grants; responds on failure. */
static bool
ctx_auth_grants(struct api_ctx *ctx)
{
	gh_err err;

	if (!ctx_auth(ctx, false))
		return false;
	err = gh_rbac_grants_load(ctx->db, ctx->user.id, ctx->user.role,
	    &ctx->grants);
	if (err != GH_OK) {
		respond_err(ctx->req, err);
		return false;
	}
	return true;
}

bool
ctx_open_perm(struct gh_app *app, struct gh_http_req *req,
    struct api_ctx *ctx, const char *perm)
{
	uint32_t bit = perm_bit(perm);

	if (!ctx_open(app, req, ctx))
		return false;
	if (!ctx_auth_grants(ctx))
		goto fail;
	if (!gh_rbac_holds(&ctx->grants, bit)) {
		respond_denied(req, perm);
		goto fail;
	}
	return true;
fail:
	ctx_close(ctx);
	return false;
}

bool
ctx_open_grants(struct gh_app *app, struct gh_http_req *req,
    struct api_ctx *ctx)
{
	if (!ctx_open(app, req, ctx))
		return false;
	if (ctx_auth_grants(ctx))
		return true;
	ctx_close(ctx);
	return false;
}

bool
ctx_holds(struct api_ctx *ctx, const char *perm)
{
	if (gh_rbac_holds(&ctx->grants, perm_bit(perm)))
		return true;
	respond_denied(ctx->req, perm);
	return false;
}

bool
ctx_sees_app(struct api_ctx *ctx, const char *perm, const char *app_id)
{
	return gh_rbac_covers_app(&ctx->grants, perm_bit(perm), app_id);
}

bool
ctx_sees_user(struct api_ctx *ctx, const char *perm, const char *user_id,
    gh_err *err_out)
{
	bool in = false;

	*err_out = GH_OK;
	if (gh_rbac_holds_org(&ctx->grants, perm_bit(perm)))
		return true;
	if (user_id == NULL)
		return false;
	*err_out = gh_rbac_covers_user(ctx->db, &ctx->grants, perm_bit(perm),
	    user_id, &in);
	return *err_out == GH_OK && in;
}

bool
ctx_may_user(struct api_ctx *ctx, const char *perm, const char *user_id)
{
	bool privileged = false;
	gh_err err;

	if (gh_rbac_holds_org(&ctx->grants, perm_bit(perm)))
		return true;
	if (!ctx_sees_user(ctx, perm, user_id, &err)) {
		if (err != GH_OK)
			respond_err(ctx->req, err);
		else
			respond_out_of_scope(ctx->req, perm, "this user");
		return false;
	}
	/* Writes by a scoped holder stop at users who hold a role. */
	if (strstr(perm, ".write") != NULL) {
		err = gh_rbac_user_privileged(ctx->db, user_id, &privileged);
		if (err != GH_OK) {
			respond_err(ctx->req, err);
			return false;
		}
		if (privileged) {
			respond_out_of_scope(ctx->req, perm,
			    "a user who holds a role");
			return false;
		}
	}
	return true;
}

bool
ctx_sees_group(struct api_ctx *ctx, const char *perm, const char *group_id,
    const char *parent_id)
{
	return gh_rbac_covers_group(&ctx->grants, perm_bit(perm), group_id,
	    parent_id);
}

bool
ctx_may_group(struct api_ctx *ctx, const char *perm, const char *group_id)
{
	struct gh_group g;
	gh_err err;

	if (gh_rbac_holds_org(&ctx->grants, perm_bit(perm)))
		return true;
	err = gh_identity_group_get(ctx->db, group_id, &g);
	if (err != GH_OK && err != GH_ERR_NOTFOUND) {
		respond_err(ctx->req, err);
		return false;
	}
	if (!ctx_sees_group(ctx, perm, group_id, err == GH_OK ? g.parent_id :
	    NULL)) {
		respond_out_of_scope(ctx->req, perm, "this group");
		return false;
	}
	return true;
}

bool
ctx_may_app(struct api_ctx *ctx, const char *perm, const char *app_id)
{
	if (gh_rbac_covers_app(&ctx->grants, perm_bit(perm), app_id))
		return true;
	respond_out_of_scope(ctx->req, perm, "this app");
	return false;
}

bool
ctx_may_org(struct api_ctx *ctx, const char *perm)
{
	if (gh_rbac_holds_org(&ctx->grants, perm_bit(perm)))
		return true;
	respond_out_of_scope(ctx->req, perm, "the whole organisation");
	return false;
}

gh_err
ctx_filter_users(struct api_ctx *ctx, const char *perm, json_t *arr,
    const char *key)
{
	const char *id;
	size_t i = 0;
	gh_err err = GH_OK;

	if (gh_rbac_holds_org(&ctx->grants, perm_bit(perm)))
		return GH_OK;
	while (i < json_array_size(arr)) {
		id = json_string_value(json_object_get(json_array_get(arr, i),
		    key));
		if (ctx_sees_user(ctx, perm, id, &err))
			i++;
		else if (err != GH_OK)
			return err;
		else
			json_array_remove(arr, i);
	}
	return GH_OK;
}

/* ---- custom roles ---------------------------------------------------------- */

/* Reads "permissions" (an array of names) of body; absent: *set_out false.
 * Responds 400 and returns false when malformed or unknown. */
static bool
perms_member(struct gh_http_req *req, json_t *body, uint32_t *perms_out,
    bool *set_out)
{
	json_t *arr = json_object_get(body, "permissions"), *v;
	const char *names[GH_RBAC_PERM_COUNT * 2], *bad = NULL;
	char shown[65];
	size_t i;

	*perms_out = 0;
	*set_out = arr != NULL;
	if (arr == NULL)
		return true;
	if (!json_is_array(arr) || json_array_size(arr) > GH_RBAC_PERM_COUNT *
	    2) {
		respond_invalid(req, "permissions: an array of at most %d "
		    "permission names", GH_RBAC_PERM_COUNT);
		return false;
	}
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v)) {
			respond_invalid(req, "permissions: names are strings");
			return false;
		}
		names[i] = json_string_value(v);
	}
	if (gh_rbac_perms_parse(names, json_array_size(arr), perms_out,
	    &bad) != GH_OK) {
		char msg[128];

		gh_strlcpy(shown, bad, sizeof shown);
		snprintf(msg, sizeof msg, "permissions: unknown permission "
		    "\"%s\"", shown);
		gh_http_respond_error(req, 400, "unknown_permission", msg);
		return false;
	}
	return true;
}

/* A custom role may only hold what its author holds org-wide. */
static bool
may_define(struct api_ctx *ctx, uint32_t perms)
{
	for (unsigned b = 0; b < GH_RBAC_PERM_COUNT; b++) {
		uint32_t bit = 1u << b;

		if ((perms & bit) && !gh_rbac_holds_org(&ctx->grants, bit)) {
			respond_denied(ctx->req, gh_rbac_perm_name(bit));
			return false;
		}
	}
	return true;
}

static bool
role_text(struct gh_http_req *req, json_t *body, const char **name,
    const char **desc)
{
	if (!member_str(req, body, "name", name) ||
	    !member_str(req, body, "description", desc))
		return false;
	if (*name != NULL && !gh_rbac_role_name_valid(*name)) {
		respond_invalid(req, "name: 1 to %d characters of letters, "
		    "digits, space, '.', '_' and '-', not a built-in role name",
		    GH_RBAC_ROLE_NAME_MAX);
		return false;
	}
	if (*desc != NULL && (strlen(*desc) > 256 ||
	    !gh_identity_display_name_valid(*desc))) {
		respond_invalid(req, "description: at most 256 bytes of text");
		return false;
	}
	return true;
}

static void
h_roles_list(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	json_t *roles;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "roles.read"))
		return;
	err = gh_rbac_role_list(ctx.db, &roles);
	if (err != GH_OK)
		respond_err(req, err);
	else
		gh_http_respond_json(req, 200, json_pack("{s:o}", "roles",
		    roles));
	ctx_close(&ctx);
}

static const char *const role_keys[] = { "name", "description",
	"permissions", NULL };

static void
h_roles_create(void *app, struct gh_http_req *req)
{
	char id[GH_ID_LEN + 1];
	const char *name = NULL, *desc = NULL;
	struct api_ctx ctx;
	json_t *body = NULL, *view = NULL, *changes;
	uint32_t perms;
	bool set;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "roles.write"))
		return;
	if (!ctx_may_org(&ctx, "roles.write") ||
	    (body = body_object(req, role_keys)) == NULL ||
	    !role_text(req, body, &name, &desc) ||
	    !perms_member(req, body, &perms, &set))
		goto out;
	if (name == NULL || !set || perms == 0) {
		respond_invalid(req, "%s: required", name == NULL ? "name" :
		    "permissions");
		goto out;
	}
	if (!may_define(&ctx, perms))
		goto out;
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_rbac_role_create(ctx.db, name, desc, perms, ctx.user.id,
		    id);
	if (err == GH_ERR_CONFLICT) {
		gh_db_rollback(ctx.db);
		gh_http_respond_error(req, 409, "role_exists",
		    "A role with that name exists (names ignore case).");
		goto out;
	}
	if (err == GH_OK) {
		changes = json_pack("{s:s, s:o}", "name", name, "permissions",
		    gh_rbac_perms_json(perms));
		err = gh_audit_append(ctx.db, &ctx.actor, "role.create", "role",
		    id, changes);
		json_decref(changes);
	}
	if (err == GH_OK)
		err = gh_rbac_role_json(ctx.db, id, &view);
	if (finish(&ctx, err)) {
		gh_http_respond_json(req, 201, view);
		view = NULL;
	}
out:
	json_decref(view);
	json_decref(body);
	ctx_close(&ctx);
}

/* Answers 404 role_not_found or the store error. */
static void
respond_role_err(struct gh_http_req *req, gh_err err)
{
	if (err == GH_ERR_NOTFOUND)
		gh_http_respond_error(req, 404, "role_not_found",
		    "No such role.");
	else
		respond_err(req, err);
}

static void
h_role_get(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	json_t *view;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "roles.read"))
		return;
	err = gh_rbac_role_json(ctx.db, gh_http_req_param(req, "id"), &view);
	if (err != GH_OK)
		respond_role_err(req, err);
	else
		gh_http_respond_json(req, 200, view);
	ctx_close(&ctx);
}

/* Loads the custom role {id} in the open transaction with its
 * permissions; answers 404 or 409 builtin_role. */
static bool
target_role(struct api_ctx *ctx, uint32_t *perms)
{
	const char *id = gh_http_req_param(ctx->req, "id");
	bool builtin = false;
	gh_err err;

	err = gh_rbac_role_perms(ctx->db, id, perms, &builtin, NULL);
	if (err != GH_OK) {
		respond_role_err(ctx->req, err);
		return false;
	}
	if (builtin) {
		gh_http_respond_error(ctx->req, 409, "builtin_role",
		    "Built-in roles cannot be changed or deleted.");
		return false;
	}
	return true;
}

static void
h_role_patch(void *app, struct gh_http_req *req)
{
	const char *id = gh_http_req_param(req, "id");
	const char *name = NULL, *desc = NULL;
	struct api_ctx ctx;
	json_t *body = NULL, *view = NULL, *changes = NULL;
	uint32_t old = 0, perms = 0;
	bool set = false;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "roles.write"))
		return;
	if (!ctx_may_org(&ctx, "roles.write") ||
	    (body = body_object(req, role_keys)) == NULL ||
	    !role_text(req, body, &name, &desc) ||
	    !perms_member(req, body, &perms, &set))
		goto out;
	if (set && perms == 0) {
		respond_invalid(req, "permissions: at least one");
		goto out;
	}
	err = gh_db_begin(ctx.db);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	/* Changing a role changes what its holders hold: the author must
	 * hold both the old and the new permissions. */
	if (!target_role(&ctx, &old) || !may_define(&ctx, old | perms)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	err = gh_rbac_role_update(ctx.db, id, name, desc, set, perms);
	if (err == GH_ERR_CONFLICT) {
		gh_db_rollback(ctx.db);
		gh_http_respond_error(req, 409, "role_exists",
		    "A role with that name exists (names ignore case).");
		goto out;
	}
	changes = json_object();
	if (name != NULL)
		json_object_set_new(changes, "name", json_string(name));
	if (desc != NULL)
		json_object_set_new(changes, "description", json_string(desc));
	if (set && perms != old)
		json_object_set_new(changes, "permissions", json_pack(
		    "{s:o, s:o}", "from", gh_rbac_perms_json(old), "to",
		    gh_rbac_perms_json(perms)));
	if (err == GH_OK)
		err = gh_audit_append(ctx.db, &ctx.actor, "role.update", "role",
		    id, changes);
	if (err == GH_OK)
		err = gh_rbac_role_json(ctx.db, id, &view);
	if (finish(&ctx, err)) {
		gh_http_respond_json(req, 200, view);
		view = NULL;
	}
out:
	json_decref(changes);
	json_decref(view);
	json_decref(body);
	ctx_close(&ctx);
}

static void
h_role_delete(void *app, struct gh_http_req *req)
{
	const char *id = gh_http_req_param(req, "id");
	struct api_ctx ctx;
	json_t *before = NULL;
	uint32_t old = 0;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "roles.write"))
		return;
	if (!ctx_may_org(&ctx, "roles.write"))
		goto out;
	err = gh_db_begin(ctx.db);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	if (!target_role(&ctx, &old) || !may_define(&ctx, old)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	err = gh_rbac_role_json(ctx.db, id, &before);
	if (err == GH_OK)
		err = gh_rbac_role_delete(ctx.db, id);
	if (err == GH_ERR_CONFLICT) {
		gh_db_rollback(ctx.db);
		gh_http_respond_error(req, 409, "role_in_use",
		    "The role is assigned; delete its assignments first.");
		goto out;
	}
	if (err == GH_OK) {
		json_object_del(before, "created_at");
		json_object_del(before, "updated_at");
		err = gh_audit_append(ctx.db, &ctx.actor, "role.delete", "role",
		    id, before);
	}
	if (finish(&ctx, err))
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	json_decref(before);
	ctx_close(&ctx);
}

/* ---- assignments ------------------------------------------------------------- */

static void
h_assignments_list(void *app, struct gh_http_req *req)
{
	const char *user_id = gh_http_req_query(req, "user_id");
	struct api_ctx ctx;
	json_t *list = NULL;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "roles.read"))
		return;
	if (user_id != NULL && !gh_id_valid(user_id)) {
		respond_invalid(req, "user_id: not a user id");
		goto out;
	}
	err = gh_rbac_assignment_list(ctx.db, user_id, &list);
	if (err == GH_OK)
		err = ctx_filter_users(&ctx, "roles.read", list, "user_id");
	if (err != GH_OK)
		respond_err(req, err);
	else
		gh_http_respond_json(req, 200, json_pack("{s:O}",
		    "assignments", list));
out:
	json_decref(list);
	ctx_close(&ctx);
}

/* Reads "scope_ids" into a and fills the targets (groups must exist: their
 * parents come from the database). Responds and returns false when bad. */
static bool
scope_ids_read(struct api_ctx *ctx, json_t *body, struct gh_rbac_assignment *a,
    struct gh_group *groups, struct gh_rbac_target *targets)
{
	json_t *arr = json_object_get(body, "scope_ids"), *v;
	size_t i;
	gh_err err;

	if (a->kind == GH_SCOPE_ORG) {
		if (arr != NULL && (!json_is_array(arr) ||
		    json_array_size(arr) > 0)) {
			respond_invalid(ctx->req, "scope_ids: must be empty for "
			    "scope_kind org");
			return false;
		}
		return true;
	}
	if (!json_is_array(arr) || json_array_size(arr) == 0 ||
	    json_array_size(arr) > GH_RBAC_SCOPE_MAX) {
		respond_invalid(ctx->req, "scope_ids: 1 to %d %s ids",
		    GH_RBAC_SCOPE_MAX, gh_rbac_scope_name(a->kind));
		return false;
	}
	json_array_foreach(arr, i, v) {
		const char *id = json_string_value(v);

		if (id == NULL || !gh_id_valid(id)) {
			respond_invalid(ctx->req, "scope_ids: not an id");
			return false;
		}
		for (size_t j = 0; j < a->n_scopes; j++)
			if (strcmp(a->scopes[j], id) == 0) {
				respond_invalid(ctx->req, "scope_ids: "
				    "duplicate id");
				return false;
			}
		gh_strlcpy(a->scopes[a->n_scopes], id, sizeof a->scopes[0]);
		targets[a->n_scopes].id = a->scopes[a->n_scopes];
		targets[a->n_scopes].parent_id = NULL;
		if (a->kind == GH_SCOPE_GROUPS) {
			err = gh_identity_group_get(ctx->db, id,
			    &groups[a->n_scopes]);
			if (err == GH_ERR_NOTFOUND) {
				gh_http_respond_error(ctx->req, 400,
				    "unknown_group", "scope_ids: no such "
				    "group.");
				return false;
			}
			if (err != GH_OK) {
				respond_err(ctx->req, err);
				return false;
			}
			targets[a->n_scopes].parent_id =
			    groups[a->n_scopes].parent_id;
		}
		a->n_scopes++;
	}
	return true;
}

/* The delegation rule for a grant or revocation of perms by the caller:
 * responds 403 permission_denied or out_of_scope when it may not. */
static bool
may_delegate(struct api_ctx *ctx, uint32_t perms, enum gh_rbac_scope kind,
    const struct gh_rbac_target *targets, size_t n)
{
	const char *missing = NULL;
	bool oos = false;

	if (gh_rbac_may_grant(&ctx->grants, perms, kind, targets, n, &missing,
	    &oos) == GH_OK)
		return true;
	if (oos)
		respond_out_of_scope(ctx->req, missing, "that scope");
	else
		respond_denied(ctx->req, missing);
	return false;
}

/* Resolves the role and scope kind of a create body into a; *perms_out
 * what it grants. Responds and returns false when bad. */
static bool
assignment_role_read(struct api_ctx *ctx, json_t *body,
    struct gh_rbac_assignment *a, uint32_t *perms_out)
{
	const char *role = NULL, *kind = NULL;
	enum gh_rbac_scope bkind = GH_SCOPE_ORG;
	bool builtin = false;
	gh_err err;

	if (!member_str(ctx->req, body, "role", &role) ||
	    !member_str(ctx->req, body, "scope_kind", &kind))
		return false;
	if (role == NULL) {
		respond_invalid(ctx->req, "role: required");
		return false;
	}
	if (strcmp(role, "owner") == 0 || strcmp(role, "admin") == 0) {
		respond_invalid(ctx->req, "role: owner and admin are given by "
		    "the user's role field (PATCH /users/{id})");
		return false;
	}
	err = gh_rbac_role_perms(ctx->db, role, perms_out, &builtin, &bkind);
	if (err == GH_ERR_NOTFOUND) {
		gh_http_respond_error(ctx->req, 400, "unknown_role",
		    "role: neither a built-in role nor a custom role id.");
		return false;
	}
	if (err != GH_OK) {
		respond_err(ctx->req, err);
		return false;
	}
	gh_strlcpy(a->role, role, sizeof a->role);
	a->kind = builtin ? bkind : GH_SCOPE_ORG;
	if (kind != NULL && !gh_rbac_scope_parse(kind, &a->kind)) {
		respond_invalid(ctx->req, "scope_kind: org, groups or apps");
		return false;
	}
	if (builtin && a->kind != bkind) {
		respond_invalid(ctx->req, "scope_kind: %s is assigned with "
		    "scope_kind %s", role, gh_rbac_scope_name(bkind));
		return false;
	}
	*perms_out &= gh_rbac_scopable(a->kind);
	if (*perms_out == 0) {
		gh_http_respond_error(ctx->req, 400, "scope_not_applicable",
		    "None of the role's permissions apply within that scope "
		    "kind.");
		return false;
	}
	return true;
}

/* The grantee (or the holder of a revoked assignment) must be within the
 * caller's roles.write scope. Responds when not. */
static bool
user_in_scope(struct api_ctx *ctx, const char *user_id)
{
	gh_err err;

	if (ctx_sees_user(ctx, "roles.write", user_id, &err))
		return true;
	if (err != GH_OK)
		respond_err(ctx->req, err);
	else
		respond_out_of_scope(ctx->req, "roles.write", "this user");
	return false;
}

static void
h_assignments_create(void *app, struct gh_http_req *req)
{
	static const char *const keys[] = { "user_id", "role", "scope_kind",
		"scope_ids", NULL };
	struct gh_rbac_target targets[GH_RBAC_SCOPE_MAX];
	struct gh_rbac_assignment a;
	const char *user_id = NULL;
	struct api_ctx ctx;
	struct gh_user u;
	json_t *body = NULL, *view = NULL;
	uint32_t perms = 0;
	gh_err err;

	memset(&a, 0, sizeof a);
	memset(&u, 0, sizeof u);
	if (!ctx_open_perm(app, req, &ctx, "roles.write"))
		return;
	if ((body = body_object(req, keys)) == NULL ||
	    !member_str(req, body, "user_id", &user_id))
		goto out;
	if (user_id == NULL) {
		respond_invalid(req, "user_id: required");
		goto out;
	}
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_identity_user_get(ctx.db, user_id, &u);
	if (err == GH_ERR_NOTFOUND) {
		gh_db_rollback(ctx.db);
		gh_http_respond_error(req, 404, "user_not_found",
		    "No such user.");
		goto out;
	}
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	if (strcmp(u.id, ctx.user.id) == 0) {
		gh_db_rollback(ctx.db);
		gh_http_respond_error(req, 403, "self_grant",
		    "Nobody can grant a role to themselves.");
		goto out;
	}
	gh_strlcpy(a.user_id, u.id, sizeof a.user_id);
	{
		struct gh_group *gs = calloc(GH_RBAC_SCOPE_MAX, sizeof *gs);
		bool ok = gs != NULL && assignment_role_read(&ctx, body, &a,
		    &perms) && scope_ids_read(&ctx, body, &a, gs, targets) &&
		    user_in_scope(&ctx, u.id) &&
		    may_delegate(&ctx, perms, a.kind, targets, a.n_scopes);

		if (gs == NULL)
			respond_err(req, GH_ERR_NOMEM);
		/* targets point into a, not into gs, past this point. */
		for (size_t i = 0; i < a.n_scopes; i++)
			targets[i].parent_id = NULL;
		free(gs);
		if (!ok) {
			gh_db_rollback(ctx.db);
			goto out;
		}
	}
	err = gh_rbac_assignment_insert(ctx.db, &a, ctx.user.id);
	if (err == GH_OK) {
		view = gh_rbac_assignment_json(&a);
		json_object_set_new(view, "username", json_string(u.username));
		err = gh_audit_append(ctx.db, &ctx.actor,
		    "role_assignment.create", "user", u.id, view);
		json_object_del(view, "username");
	}
	if (finish(&ctx, err)) {
		gh_http_respond_json(req, 201, view);
		view = NULL;
	}
out:
	json_decref(view);
	json_decref(body);
	gh_wipe(&u, sizeof u);
	ctx_close(&ctx);
}

static void
h_assignment_delete(void *app, struct gh_http_req *req)
{
	char parents[GH_RBAC_SCOPE_MAX][GH_ID_LEN + 1];
	struct gh_rbac_target targets[GH_RBAC_SCOPE_MAX];
	struct gh_rbac_assignment a;
	struct gh_group g;
	struct api_ctx ctx;
	json_t *view = NULL;
	uint32_t perms = 0;
	bool builtin = false;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "roles.write"))
		return;
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_rbac_assignment_get(ctx.db, gh_http_req_param(req, "id"),
		    &a);
	if (err == GH_ERR_NOTFOUND) {
		gh_db_rollback(ctx.db);
		gh_http_respond_error(req, 404, "assignment_not_found",
		    "No such role assignment.");
		goto out;
	}
	/* A custom role deleted meanwhile cannot be: role_in_use. */
	if (err == GH_OK)
		err = gh_rbac_role_perms(ctx.db, a.role, &perms, &builtin, NULL);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	perms &= gh_rbac_scopable(a.kind);
	for (size_t i = 0; i < a.n_scopes; i++) {
		targets[i].id = a.scopes[i];
		targets[i].parent_id = NULL;
		/* Scoped revokers see a child group through its parent. */
		if (a.kind == GH_SCOPE_GROUPS &&
		    gh_identity_group_get(ctx.db, a.scopes[i], &g) == GH_OK) {
			gh_strlcpy(parents[i], g.parent_id, sizeof parents[i]);
			targets[i].parent_id = parents[i];
		}
	}
	/* Nobody revokes what they could not have granted. */
	if (!user_in_scope(&ctx, a.user_id) ||
	    !may_delegate(&ctx, perms, a.kind, targets, a.n_scopes)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	view = gh_rbac_assignment_json(&a);
	err = gh_rbac_assignment_delete(ctx.db, a.id);
	if (err == GH_OK)
		err = gh_audit_append(ctx.db, &ctx.actor,
		    "role_assignment.delete", "user", a.user_id, view);
	if (finish(&ctx, err))
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	json_decref(view);
	ctx_close(&ctx);
}

/* ---- effective permissions ------------------------------------------------------ */

static void
h_user_permissions(void *app, struct gh_http_req *req)
{
	struct gh_rbac_grants g = { 0 };
	struct api_ctx ctx;
	struct gh_user u;
	json_t *assignments = NULL;
	gh_err err;

	memset(&u, 0, sizeof u);
	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth_grants(&ctx))
		goto out;
	err = gh_identity_user_get(ctx.db, gh_http_req_param(req, "id"), &u);
	if (err == GH_ERR_NOTFOUND) {
		gh_http_respond_error(req, 404, "user_not_found",
		    "No such user.");
		goto out;
	}
	if (err != GH_OK) {
		respond_err(req, err);
		goto out;
	}
	/* Everyone may read their own; others need roles.read over them. */
	if (strcmp(u.id, ctx.user.id) != 0) {
		if (!gh_rbac_holds(&ctx.grants, GH_PERM_ROLES_READ)) {
			respond_denied(req, "roles.read");
			goto out;
		}
		if (!ctx_may_user(&ctx, "roles.read", u.id))
			goto out;
	}
	err = gh_rbac_grants_load(ctx.db, u.id, u.role, &g);
	if (err == GH_OK)
		err = gh_rbac_assignment_list(ctx.db, u.id, &assignments);
	if (err != GH_OK)
		respond_err(req, err);
	else
		gh_http_respond_json(req, 200, json_pack("{s:s, s:o, s:O}",
		    "user_id", u.id, "permissions", gh_rbac_grants_json(&g),
		    "assignments", assignments));
out:
	json_decref(assignments);
	gh_rbac_grants_free(&g);
	gh_wipe(&u, sizeof u);
	ctx_close(&ctx);
}

gh_err
routes_rbac(struct gh_http_router *r)
{
	static const struct gh_http_route_def routes[] = {
		{ "GET", "/o/{org}/api/v1/roles", h_roles_list },
		{ "POST", "/o/{org}/api/v1/roles", h_roles_create },
		{ "GET", "/o/{org}/api/v1/roles/{id}", h_role_get },
		{ "PATCH", "/o/{org}/api/v1/roles/{id}", h_role_patch },
		{ "DELETE", "/o/{org}/api/v1/roles/{id}", h_role_delete },
		{ "GET", "/o/{org}/api/v1/role-assignments",
		    h_assignments_list },
		{ "POST", "/o/{org}/api/v1/role-assignments",
		    h_assignments_create },
		{ "DELETE", "/o/{org}/api/v1/role-assignments/{id}",
		    h_assignment_delete },
		{ "GET", "/o/{org}/api/v1/users/{id}/permissions",
		    h_user_permissions },
	};

	return gh_http_routes(r, routes, sizeof routes / sizeof *routes);
}
