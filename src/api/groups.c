/*
 * groups.c: the admin API for groups (nested one level) and their
 * members: GET/POST /o/{org}/api/v1/groups, GET/PATCH/DELETE
 * /groups/{id}, GET /groups/{id}/members, PUT/DELETE
 * /groups/{id}/members/{user_id} and GET /users/{id}/groups. Each route
 * checks its permission and group scope (src/api/rbac.c); every change is
 * audited in its own transaction.
 * Deleting a group also drops it from the MFA policy's required groups.
 *
 * Untrusted input: group bodies, ids in paths, list filters and cursors,
 * all validated by src/identity. Secrets: none.
 */
#include "access/access.h"
#include "api/api_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Answers a refusal of src/identity's group rules. */
static void
respond_group_err(struct gh_http_req *req, gh_err err, const char *why)
{
	if (why == NULL) {
		respond_err(req, err);
	} else if (strcmp(why, "group_exists") == 0) {
		gh_http_respond_error(req, 409, why,
		    "A group with that name exists (names ignore case).");
	} else if (strcmp(why, "parent_not_found") == 0) {
		gh_http_respond_error(req, 400, why,
		    "parent_id: no such group.");
	} else if (strcmp(why, "group_cycle") == 0) {
		gh_http_respond_error(req, 400, why,
		    "parent_id: a group cannot be its own parent or its "
		    "child's child.");
	} else if (strcmp(why, "nesting_too_deep") == 0) {
		gh_http_respond_error(req, 400, why,
		    "parent_id: the parent has a parent itself; groups nest "
		    "one level only.");
	} else if (strcmp(why, "group_has_children") == 0) {
		gh_http_respond_error(req, 400, why,
		    "parent_id: this group has child groups and cannot get a "
		    "parent; groups nest one level only.");
	} else {
		respond_err(req, err);
	}
}

/* Reads name, description and parent_id of body over g. A null
 * parent_id makes g top-level. Responds and returns false when invalid. */
static bool
group_fields_read(struct gh_http_req *req, json_t *body, struct gh_group *g)
{
	const char *name = NULL, *desc = NULL;
	json_t *parent;

	if (!member_str(req, body, "name", &name) ||
	    !member_str(req, body, "description", &desc))
		return false;
	if (name != NULL && !gh_identity_group_name_valid(name)) {
		respond_invalid(req, "name: 1 to %d characters of letters, "
		    "digits, space, '.', '_' and '-', not starting or ending "
		    "with a space", GH_GROUP_NAME_MAX);
		return false;
	}
	if (desc != NULL && !gh_identity_group_description_valid(desc)) {
		respond_invalid(req, "description: at most %d bytes of text "
		    "without control characters", GH_GROUP_DESC_MAX);
		return false;
	}
	parent = json_object_get(body, "parent_id");
	if (parent != NULL && !json_is_null(parent) &&
	    !json_is_string(parent)) {
		respond_invalid(req, "parent_id: must be a group id or null");
		return false;
	}
	if (json_is_string(parent) && !gh_id_valid(json_string_value(parent))) {
		gh_http_respond_error(req, 400, "parent_not_found",
		    "parent_id: no such group.");
		return false;
	}
	if (name != NULL)
		gh_strlcpy(g->name, name, sizeof g->name);
	if (desc != NULL)
		gh_strlcpy(g->description, desc, sizeof g->description);
	if (parent != NULL)
		gh_strlcpy(g->parent_id, json_is_string(parent) ?
		    json_string_value(parent) : "", sizeof g->parent_id);
	return true;
}

/* Drops the groups (views with "id" and "parent_id") outside the caller's
 * groups.read scope. */
static void
groups_filter(struct api_ctx *ctx, json_t *groups)
{
	json_t *g;
	size_t i = 0;

	while (i < json_array_size(groups)) {
		g = json_array_get(groups, i);
		if (ctx_sees_group(ctx, "groups.read",
		    json_string_value(json_object_get(g, "id")),
		    json_string_value(json_object_get(g, "parent_id"))))
			i++;
		else
			json_array_remove(groups, i);
	}
}

static const char *const group_keys[] = { "name", "description",
	"parent_id", NULL };

static void
h_groups_list(void *app, struct gh_http_req *req)
{
	struct gh_group_filter f = { 0 };
	struct api_ctx ctx;
	json_t *groups = NULL;
	char *next = NULL;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "groups.read"))
		return;
	if (!query_limit(req, GH_GROUP_LIST_MAX, &f.limit))
		goto out;
	f.q = gh_http_req_query(req, "q");
	f.parent_id = gh_http_req_query(req, "parent_id");
	f.cursor = gh_http_req_query(req, "cursor");
	if (f.q != NULL && strlen(f.q) > 128) {
		respond_invalid(req, "q: at most 128 bytes");
		goto out;
	}
	if (f.parent_id != NULL && !gh_id_valid(f.parent_id)) {
		respond_invalid(req, "parent_id: not a group id");
		goto out;
	}
	err = gh_identity_group_list(ctx.db, &f, &groups, &next);
	/* Scoped callers see their groups only (a page may hold fewer). */
	if (err == GH_OK)
		groups_filter(&ctx, groups);
	if (err == GH_ERR_INVALID)
		respond_invalid(req, "cursor: not a cursor from this API");
	else if (err != GH_OK)
		respond_err(req, err);
	else
		gh_http_respond_json(req, 200, json_pack("{s:O, s:o}", "groups",
		    groups, "next_cursor", next ? json_string(next) :
		    json_null()));
	json_decref(groups);
	free(next);
out:
	ctx_close(&ctx);
}

static void
h_groups_create(void *app, struct gh_http_req *req)
{
	struct gh_group g;
	struct api_ctx ctx;
	const char *why = NULL, *name = NULL;
	json_t *body = NULL, *changes = NULL;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "groups.write"))
		return;
	if ((body = body_object(req, group_keys)) == NULL ||
	    !member_str(req, body, "name", &name))
		goto out;
	if (name == NULL) {
		respond_invalid(req, "name: required");
		goto out;
	}
	if (gh_identity_group_init(&g, name) != GH_OK) {
		respond_invalid(req, "name: 1 to %d characters of letters, "
		    "digits, space, '.', '_' and '-', not starting or ending "
		    "with a space", GH_GROUP_NAME_MAX);
		goto out;
	}
	if (!group_fields_read(req, body, &g))
		goto out;
	/* A scoped group admin may create child groups of their groups. */
	if (g.parent_id[0] == '\0' ? !ctx_may_org(&ctx, "groups.write") :
	    !ctx_may_group(&ctx, "groups.write", g.parent_id))
		goto out;
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_identity_group_insert(ctx.db, &g, &why);
	if (err == GH_OK) {
		changes = gh_identity_group_json(&g);
		json_object_del(changes, "created_at");
		json_object_del(changes, "updated_at");
		err = gh_audit_append(ctx.db, &ctx.actor, "group.create",
		    "group", g.id, changes);
	}
	if (err != GH_OK && why != NULL) {
		gh_db_rollback(ctx.db);
		respond_group_err(req, err, why);
	} else if (finish(&ctx, err)) {
		gh_http_respond_json(req, 201, gh_identity_group_json(&g));
	}
out:
	json_decref(changes);
	json_decref(body);
	ctx_close(&ctx);
}

/* Loads the group named by {id}; answers 404 group_not_found. */
static bool
target_group(struct api_ctx *ctx, struct gh_group *g)
{
	gh_err err;

	err = gh_identity_group_get(ctx->db, gh_http_req_param(ctx->req, "id"),
	    g);
	if (err == GH_ERR_NOTFOUND)
		gh_http_respond_error(ctx->req, 404, "group_not_found",
		    "No such group.");
	else if (err != GH_OK)
		respond_err(ctx->req, err);
	return err == GH_OK;
}

static void
h_group_get(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	struct gh_group g;

	if (!ctx_open_perm(app, req, &ctx, "groups.read"))
		return;
	if (target_group(&ctx, &g) &&
	    ctx_may_group(&ctx, "groups.read", g.id))
		gh_http_respond_json(req, 200, gh_identity_group_json(&g));
	ctx_close(&ctx);
}

/* Adds {"field": {"from", "to"}} when a and b differ ("" is null). */
static void
diff_str(json_t *changes, const char *field, const char *a, const char *b)
{
	if (strcmp(a, b) == 0)
		return;
	json_object_set_new(changes, field, json_pack("{s:o, s:o}", "from",
	    a[0] ? json_string(a) : json_null(), "to",
	    b[0] ? json_string(b) : json_null()));
}

static void
h_group_patch(void *app, struct gh_http_req *req)
{
	struct gh_group before, after;
	struct api_ctx ctx;
	const char *why = NULL;
	json_t *body = NULL, *changes = NULL;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "groups.write"))
		return;
	if ((body = body_object(req, group_keys)) == NULL)
		goto out;
	err = gh_db_begin(ctx.db);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	if (!target_group(&ctx, &before) ||
	    !ctx_may_group(&ctx, "groups.write", before.id)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	after = before;
	if (!group_fields_read(req, body, &after)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	/* Moving a group moves its members into the new parent: the new
	 * parent (or the top level) must be within the caller's scope. */
	if (strcmp(before.parent_id, after.parent_id) != 0 &&
	    (after.parent_id[0] == '\0' ? !ctx_may_org(&ctx, "groups.write") :
	    !ctx_may_group(&ctx, "groups.write", after.parent_id))) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	changes = json_object();
	diff_str(changes, "name", before.name, after.name);
	diff_str(changes, "description", before.description,
	    after.description);
	diff_str(changes, "parent_id", before.parent_id, after.parent_id);
	if (json_object_size(changes) == 0) {
		gh_db_rollback(ctx.db);
		gh_http_respond_json(req, 200, gh_identity_group_json(&before));
		goto out;
	}
	err = gh_identity_group_update(ctx.db, &after, &why);
	if (err == GH_OK)
		err = gh_audit_append(ctx.db, &ctx.actor, "group.update",
		    "group", after.id, changes);
	/* A new name or parent changes who group("...") matches. */
	if (err == GH_OK)
		err = access_rules_apply_all(&ctx);
	if (err != GH_OK && why != NULL) {
		gh_db_rollback(ctx.db);
		respond_group_err(req, err, why);
	} else if (finish(&ctx, err)) {
		gh_http_respond_json(req, 200, gh_identity_group_json(&after));
	}
out:
	json_decref(changes);
	json_decref(body);
	ctx_close(&ctx);
}

/* Drops group_id from the MFA policy's required groups; *dropped_out
 * tells whether it was there (then the policy was rewritten). */
static gh_err
mfa_policy_forget(struct api_ctx *ctx, const char *group_id,
    bool *dropped_out)
{
	struct gh_mfa_policy pol;
	json_t *stored;
	gh_err err;

	*dropped_out = false;
	err = mfa_policy_load(ctx->db, &pol);
	if (err != GH_OK || !gh_auth_mfa_policy_drop_group(&pol, group_id))
		return err;
	stored = gh_auth_mfa_policy_json(&pol);
	if (stored == NULL)
		return GH_ERR_NOMEM;
	err = gh_identity_setting_put(ctx->db, "mfa_policy", stored);
	json_decref(stored);
	*dropped_out = err == GH_OK;
	return err;
}

static void
h_group_delete(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	struct gh_group g;
	int64_t members = 0, dropped_roles = 0;
	bool dropped = false;
	json_t *changes;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "groups.write"))
		return;
	err = gh_db_begin(ctx.db);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	if (!target_group(&ctx, &g) ||
	    !ctx_may_group(&ctx, "groups.write", g.id)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	err = gh_identity_group_delete(ctx.db, g.id, &members);
	if (err == GH_ERR_CONFLICT) {
		gh_db_rollback(ctx.db);
		gh_http_respond_error(req, 409, "group_has_children",
		    "The group has child groups; delete them or move them "
		    "first.");
		goto out;
	}
	if (err == GH_OK)
		err = mfa_policy_forget(&ctx, g.id, &dropped);
	/* Role assignments scoped to the group lose it; those left with no
	 * scope at all go. */
	if (err == GH_OK)
		err = gh_rbac_scope_forget(ctx.db, g.id, &dropped_roles);
	if (err == GH_OK) {
		changes = json_pack("{s:s, s:o, s:I, s:b, s:I}", "name",
		    g.name, "parent_id", g.parent_id[0] ?
		    json_string(g.parent_id) : json_null(), "members_removed",
		    (json_int_t)members, "mfa_required_group_dropped", dropped,
		    "role_assignments_removed", (json_int_t)dropped_roles);
		err = gh_audit_append(ctx.db, &ctx.actor, "group.delete",
		    "group", g.id, changes);
		json_decref(changes);
	}
	if (err == GH_OK)
		err = access_rules_apply_all(&ctx);
	if (finish(&ctx, err))
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	ctx_close(&ctx);
}

static void
h_group_members(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	struct gh_group g;
	json_t *members = NULL;
	char *next = NULL;
	int limit;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "groups.read"))
		return;
	if (!query_limit(req, GH_USER_LIST_MAX, &limit) ||
	    !target_group(&ctx, &g) ||
	    !ctx_may_group(&ctx, "groups.read", g.id))
		goto out;
	err = gh_identity_group_member_list(ctx.db, g.id,
	    gh_http_req_query(req, "cursor"), limit, &members, &next);
	if (err == GH_ERR_INVALID)
		respond_invalid(req, "cursor: not a cursor from this API");
	else if (err != GH_OK)
		respond_err(req, err);
	else
		gh_http_respond_json(req, 200, json_pack("{s:O, s:o}",
		    "members", members, "next_cursor", next ?
		    json_string(next) : json_null()));
	json_decref(members);
	free(next);
out:
	ctx_close(&ctx);
}

/* Loads {id} as a group and {user_id} as a user in the open transaction;
 * answers 404 group_not_found or user_not_found. */
static bool
target_member(struct api_ctx *ctx, struct gh_group *g, struct gh_user *u)
{
	gh_err err;

	if (!target_group(ctx, g))
		return false;
	err = gh_identity_user_get(ctx->db, gh_http_req_param(ctx->req,
	    "user_id"), u);
	if (err == GH_ERR_NOTFOUND)
		gh_http_respond_error(ctx->req, 404, "user_not_found",
		    "No such user.");
	else if (err != GH_OK)
		respond_err(ctx->req, err);
	return err == GH_OK;
}

static gh_err
audit_member(struct api_ctx *ctx, const char *action,
    const struct gh_group *g, const struct gh_user *u)
{
	json_t *changes;
	gh_err err;

	changes = json_pack("{s:s, s:s, s:s}", "group_name", g->name,
	    "user_id", u->id, "username", u->username);
	if (changes == NULL)
		return GH_ERR_NOMEM;
	err = gh_audit_append(ctx->db, &ctx->actor, action, "group", g->id,
	    changes);
	json_decref(changes);
	return err;
}

static void
h_member_put(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	struct gh_group g;
	struct gh_user u;
	bool added = false;
	gh_err err;

	memset(&u, 0, sizeof u);
	if (!ctx_open_perm(app, req, &ctx, "groups.write"))
		return;
	err = gh_db_begin(ctx.db);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	/* Adding a user brings them into the scope of the group's admins:
	 * a scoped caller must already have write access to that user. */
	if (!target_member(&ctx, &g, &u) ||
	    !ctx_may_group(&ctx, "groups.write", g.id) ||
	    (!gh_rbac_holds_org(&ctx.grants, GH_PERM_GROUPS_WRITE) &&
	    !ctx_may_user(&ctx, "users.write", u.id))) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	err = gh_identity_group_member_add(ctx.db, g.id, u.id, gh_now_ms(),
	    &added);
	/* Adding a member twice changes nothing and records nothing. */
	if (err == GH_OK && added)
		err = audit_member(&ctx, "group.member.add", &g, &u);
	/* Rules over group() may now match or stop matching. */
	if (err == GH_OK && added)
		err = access_rules_apply_user(&ctx, u.id);
	if (finish(&ctx, err))
		gh_http_respond_json(req, added ? 201 : 200, json_pack(
		    "{s:s, s:s, s:b}", "group_id", g.id, "user_id", u.id,
		    "added", added));
out:
	gh_wipe(&u, sizeof u);
	ctx_close(&ctx);
}

static void
h_member_delete(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	struct gh_group g;
	struct gh_user u;
	bool by_rule = false;
	gh_err err;

	memset(&u, 0, sizeof u);
	if (!ctx_open_perm(app, req, &ctx, "groups.write"))
		return;
	err = gh_db_begin(ctx.db);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	if (!target_member(&ctx, &g, &u) ||
	    !ctx_may_group(&ctx, "groups.write", g.id)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	err = gh_access_membership_by_rule(ctx.db, g.id, u.id, &by_rule);
	if (err == GH_OK && by_rule) {
		gh_db_rollback(ctx.db);
		gh_http_respond_error(req, 409, "membership_by_rule",
		    "An assignment rule made this membership; change or "
		    "delete the rule.");
		goto out;
	}
	if (err == GH_OK)
		err = gh_identity_group_member_remove(ctx.db, g.id, u.id);
	if (err == GH_ERR_NOTFOUND) {
		gh_db_rollback(ctx.db);
		gh_http_respond_error(req, 404, "not_a_member",
		    "The user is not a direct member of the group.");
		goto out;
	}
	if (err == GH_OK)
		err = audit_member(&ctx, "group.member.remove", &g, &u);
	if (err == GH_OK)
		err = access_rules_apply_user(&ctx, u.id);
	if (finish(&ctx, err))
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	gh_wipe(&u, sizeof u);
	ctx_close(&ctx);
}

static void
h_user_groups(void *app, struct gh_http_req *req)
{
	json_t *direct = NULL, *effective = NULL;
	struct api_ctx ctx;
	struct gh_user u;
	gh_err err;

	memset(&u, 0, sizeof u);
	if (!ctx_open_perm(app, req, &ctx, "users.read"))
		return;
	err = gh_identity_user_get(ctx.db, gh_http_req_param(req, "id"), &u);
	if (err == GH_OK && !ctx_may_user(&ctx, "users.read", u.id))
		goto out;
	if (err == GH_OK)
		err = gh_identity_user_groups(ctx.db, u.id, &direct, &effective);
	/* A scoped caller sees the user's groups within its scope only. */
	if (err == GH_OK) {
		groups_filter(&ctx, direct);
		groups_filter(&ctx, effective);
	}
	if (err == GH_ERR_NOTFOUND)
		gh_http_respond_error(req, 404, "user_not_found",
		    "No such user.");
	else if (err != GH_OK)
		respond_err(req, err);
	else
		gh_http_respond_json(req, 200, json_pack("{s:s, s:o, s:o}",
		    "user_id", u.id, "direct", direct, "effective", effective));
out:
	gh_wipe(&u, sizeof u);
	ctx_close(&ctx);
}

gh_err
routes_groups(struct gh_http_router *r)
{
	static const struct gh_http_route_def routes[] = {
		{ "GET", "/o/{org}/api/v1/groups", h_groups_list },
		{ "POST", "/o/{org}/api/v1/groups", h_groups_create },
		{ "GET", "/o/{org}/api/v1/groups/{id}", h_group_get },
		{ "PATCH", "/o/{org}/api/v1/groups/{id}", h_group_patch },
		{ "DELETE", "/o/{org}/api/v1/groups/{id}", h_group_delete },
		{ "GET", "/o/{org}/api/v1/groups/{id}/members",
		    h_group_members },
		{ "PUT", "/o/{org}/api/v1/groups/{id}/members/{user_id}",
		    h_member_put },
		{ "DELETE", "/o/{org}/api/v1/groups/{id}/members/{user_id}",
		    h_member_delete },
		{ "GET", "/o/{org}/api/v1/users/{id}/groups", h_user_groups },
	};

	return gh_http_routes(r, routes, sizeof routes / sizeof *routes);
}
