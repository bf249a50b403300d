/*
 * apps.c: the admin API for apps, their roles and assignments:
 * GET/POST /o/{org}/api/v1/apps, GET/PATCH/DELETE /apps/{id},
 * GET/POST /apps/{id}/roles, DELETE /apps/{id}/roles/{name},
 * GET/POST /apps/{id}/assignments, DELETE /apps/{id}/assignments/{aid},
 * GET /users/{id}/apps; and GET /me/apps for any signed-in user. Reads
 * need apps.read, changes apps.write, over the app (creating one:
 * org-wide); assigning a user or group also needs users.read over the user
 * or groups.read over the group, so that an app admin cannot widen its
 * own users.read scope (which covers its apps' assignees) to anyone. Every
 * change is audited in its own transaction.
 *
 * Untrusted input: app and role bodies, ids in paths, list filters and
 * cursors, validated by src/access. Secrets: none.
 */
#include "access/access.h"
#include "api/api_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
respond_app_exists(struct gh_http_req *req)
{
	gh_http_respond_error(req, 409, "app_exists",
	    "An app with that name exists (names ignore case).");
}

/* Reads the app members of body over a. Responds and returns false when
 * one is invalid. */
static bool
app_fields_read(struct gh_http_req *req, json_t *body, struct gh_access_app *a)
{
	const char *name = NULL, *desc = NULL, *kind = NULL, *state = NULL;
	json_t *fp = json_object_get(body, "first_party");

	if (!member_str(req, body, "name", &name) ||
	    !member_str(req, body, "description", &desc) ||
	    !member_str(req, body, "kind", &kind) ||
	    !member_str(req, body, "state", &state))
		return false;
	if (name != NULL && !gh_access_app_name_valid(name)) {
		respond_invalid(req, "name: 1 to %d bytes of text without "
		    "control characters, not starting or ending with a space",
		    GH_APP_NAME_MAX);
		return false;
	}
	if (desc != NULL && !gh_access_app_desc_valid(desc)) {
		respond_invalid(req, "description: at most %d bytes of text "
		    "without control characters", GH_APP_DESC_MAX);
		return false;
	}
	if (kind != NULL && !gh_access_app_kind_valid(kind)) {
		respond_invalid(req, "kind: one of oidc, saml, other");
		return false;
	}
	if (state != NULL && !gh_access_app_state_valid(state)) {
		respond_invalid(req, "state: active or disabled");
		return false;
	}
	if (fp != NULL && !json_is_boolean(fp)) {
		respond_invalid(req, "first_party: must be true or false");
		return false;
	}
	if (name != NULL)
		gh_strlcpy(a->name, name, sizeof a->name);
	if (desc != NULL)
		gh_strlcpy(a->description, desc, sizeof a->description);
	if (kind != NULL)
		gh_strlcpy(a->kind, kind, sizeof a->kind);
	if (state != NULL)
		gh_strlcpy(a->state, state, sizeof a->state);
	if (fp != NULL)
		a->first_party = json_is_true(fp);
	return true;
}

/* Keeps the apps of a page that the caller holds apps.read over; a page
 * may then hold fewer than limit while next_cursor pages on. */
static void
apps_filter(struct api_ctx *ctx, json_t *apps)
{
	size_t i = 0;

	while (i < json_array_size(apps)) {
		if (ctx_sees_app(ctx, "apps.read", json_string_value(
		    json_object_get(json_array_get(apps, i), "id"))))
			i++;
		else
			json_array_remove(apps, i);
	}
}

static const char *const app_keys[] = { "name", "description", "kind",
	"first_party", "state", NULL };

static void
h_apps_list(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	json_t *apps = NULL;
	const char *q;
	char *next = NULL;
	int limit;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "apps.read"))
		return;
	if (!query_limit(req, GH_APP_LIST_MAX, &limit))
		goto out;
	q = gh_http_req_query(req, "q");
	if (q != NULL && strlen(q) > 128) {
		respond_invalid(req, "q: at most 128 bytes");
		goto out;
	}
	err = gh_access_app_list(ctx.db, q, gh_http_req_query(req, "cursor"),
	    limit, &apps, &next);
	if (err == GH_OK)
		apps_filter(&ctx, apps);
	if (err == GH_ERR_INVALID)
		respond_invalid(req, "cursor: not a cursor from this API");
	else if (err != GH_OK)
		respond_err(req, err);
	else
		gh_http_respond_json(req, 200, json_pack("{s:O, s:o}", "apps",
		    apps, "next_cursor", next ? json_string(next) :
		    json_null()));
	json_decref(apps);
	free(next);
out:
	ctx_close(&ctx);
}

static void
h_apps_create(void *app, struct gh_http_req *req)
{
	struct gh_access_app a;
	struct api_ctx ctx;
	const char *name = NULL;
	json_t *body = NULL, *changes = NULL;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "apps.write"))
		return;
	if (!ctx_may_org(&ctx, "apps.write") ||
	    (body = body_object(req, app_keys)) == NULL ||
	    !member_str(req, body, "name", &name))
		goto out;
	if (name == NULL) {
		respond_invalid(req, "name: required");
		goto out;
	}
	if (gh_access_app_init(&a, name) != GH_OK) {
		respond_invalid(req, "name: 1 to %d bytes of text without "
		    "control characters, not starting or ending with a space",
		    GH_APP_NAME_MAX);
		goto out;
	}
	if (!app_fields_read(req, body, &a))
		goto out;
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_access_app_insert(ctx.db, &a);
	if (err == GH_ERR_CONFLICT) {
		gh_db_rollback(ctx.db);
		respond_app_exists(req);
		goto out;
	}
	if (err == GH_OK) {
		changes = gh_access_app_json(&a);
		json_object_del(changes, "id");
		json_object_del(changes, "created_at");
		json_object_del(changes, "updated_at");
		err = gh_audit_append(ctx.db, &ctx.actor, "app.create", "app",
		    a.id, changes);
	}
	if (finish(&ctx, err))
		gh_http_respond_json(req, 201, gh_access_app_json(&a));
out:
	json_decref(changes);
	json_decref(body);
	ctx_close(&ctx);
}

/* ctx_open_perm for perm, then over the app {id}: a scoped caller learns
 * nothing of apps outside its scope, not even whether they exist. */
static bool
open_app(void *app, struct gh_http_req *req, struct api_ctx *ctx,
    const char *perm)
{
	if (!ctx_open_perm(app, req, ctx, perm))
		return false;
	if (ctx_may_app(ctx, perm, gh_http_req_param(req, "id")))
		return true;
	ctx_close(ctx);
	return false;
}

/* Loads the app named by {id}; answers 404 app_not_found. */
static bool
target_app(struct api_ctx *ctx, struct gh_access_app *a)
{
	gh_err err;

	err = gh_access_app_get(ctx->db, gh_http_req_param(ctx->req, "id"), a);
	if (err == GH_ERR_NOTFOUND)
		gh_http_respond_error(ctx->req, 404, "app_not_found",
		    "No such app.");
	else if (err != GH_OK)
		respond_err(ctx->req, err);
	return err == GH_OK;
}

static void
h_app_get(void *app, struct gh_http_req *req)
{
	struct gh_access_app a;
	struct api_ctx ctx;
	json_t *j, *roles = NULL;
	gh_err err;

	if (!open_app(app, req, &ctx, "apps.read"))
		return;
	if (target_app(&ctx, &a)) {
		err = gh_access_role_list(ctx.db, a.id, &roles);
		if (err != GH_OK) {
			respond_err(req, err);
		} else {
			j = gh_access_app_json(&a);
			json_object_set_new(j, "roles", roles);
			gh_http_respond_json(req, 200, j);
		}
	}
	ctx_close(&ctx);
}

static void
diff_field(json_t *changes, const char *field, json_t *from, json_t *to)
{
	if (json_equal(from, to))
		return;
	json_object_set_new(changes, field, json_pack("{s:O, s:O}", "from",
	    from, "to", to));
}

static void
h_app_patch(void *app, struct gh_http_req *req)
{
	static const char *const fields[] = { "name", "description", "kind",
		"first_party", "state" };
	struct gh_access_app before, after;
	struct api_ctx ctx;
	json_t *body = NULL, *changes = NULL, *jb = NULL, *ja = NULL;
	size_t i;
	gh_err err;

	if (!open_app(app, req, &ctx, "apps.write"))
		return;
	if ((body = body_object(req, app_keys)) == NULL)
		goto out;
	err = gh_db_begin(ctx.db);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	if (!target_app(&ctx, &before)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	after = before;
	if (!app_fields_read(req, body, &after)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	jb = gh_access_app_json(&before);
	ja = gh_access_app_json(&after);
	changes = json_object();
	for (i = 0; i < sizeof fields / sizeof *fields; i++)
		diff_field(changes, fields[i], json_object_get(jb, fields[i]),
		    json_object_get(ja, fields[i]));
	if (json_object_size(changes) == 0) {
		gh_db_rollback(ctx.db);
		gh_http_respond_json(req, 200, gh_access_app_json(&before));
		goto out;
	}
	err = gh_access_app_update(ctx.db, &after);
	if (err == GH_ERR_CONFLICT) {
		gh_db_rollback(ctx.db);
		respond_app_exists(req);
		goto out;
	}
	if (err == GH_OK)
		err = gh_audit_append(ctx.db, &ctx.actor, "app.update", "app",
		    after.id, changes);
	if (finish(&ctx, err))
		gh_http_respond_json(req, 200, gh_access_app_json(&after));
out:
	json_decref(jb);
	json_decref(ja);
	json_decref(changes);
	json_decref(body);
	ctx_close(&ctx);
}

static void
h_app_delete(void *app, struct gh_http_req *req)
{
	struct gh_access_app a;
	struct api_ctx ctx;
	int64_t assignments = 0, rules = 0;
	json_t *changes;
	gh_err err;

	if (!open_app(app, req, &ctx, "apps.write"))
		return;
	err = gh_db_begin(ctx.db);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	if (!target_app(&ctx, &a)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	err = gh_access_app_delete(ctx.db, a.id, &assignments, &rules);
	if (err == GH_OK) {
		changes = json_pack("{s:s, s:I, s:I}", "name", a.name,
		    "assignments_removed", (json_int_t)assignments,
		    "rules_removed", (json_int_t)rules);
		err = gh_audit_append(ctx.db, &ctx.actor, "app.delete", "app",
		    a.id, changes);
		json_decref(changes);
	}
	if (finish(&ctx, err))
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	ctx_close(&ctx);
}

/* ---- roles ------------------------------------------------------------------ */

static void
h_roles_list(void *app, struct gh_http_req *req)
{
	struct gh_access_app a;
	struct api_ctx ctx;
	json_t *roles = NULL;
	gh_err err;

	if (!open_app(app, req, &ctx, "apps.read"))
		return;
	if (target_app(&ctx, &a)) {
		err = gh_access_role_list(ctx.db, a.id, &roles);
		if (err != GH_OK)
			respond_err(req, err);
		else
			gh_http_respond_json(req, 200, json_pack("{s:o}",
			    "roles", roles));
	}
	ctx_close(&ctx);
}

static void
h_roles_create(void *app, struct gh_http_req *req)
{
	static const char *const keys[] = { "name", "description", NULL };
	struct gh_access_app a;
	struct api_ctx ctx;
	const char *name = NULL, *desc = NULL;
	json_t *body = NULL, *changes;
	gh_err err;

	if (!open_app(app, req, &ctx, "apps.write"))
		return;
	if ((body = body_object(req, keys)) == NULL ||
	    !member_str(req, body, "name", &name) ||
	    !member_str(req, body, "description", &desc))
		goto out;
	if (name == NULL || !gh_access_role_name_valid(name)) {
		respond_invalid(req, "name: required, 1 to %d characters of "
		    "a-z, 0-9, '_', '.' and '-'", GH_APP_ROLE_MAX);
		goto out;
	}
	if (desc != NULL && !gh_access_app_desc_valid(desc)) {
		respond_invalid(req, "description: at most %d bytes of text "
		    "without control characters", GH_APP_DESC_MAX);
		goto out;
	}
	err = gh_db_begin(ctx.db);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	if (!target_app(&ctx, &a)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	err = gh_access_role_insert(ctx.db, a.id, name, desc ? desc : "");
	if (err == GH_ERR_CONFLICT || err == GH_ERR_LIMIT) {
		gh_db_rollback(ctx.db);
		if (err == GH_ERR_CONFLICT)
			gh_http_respond_error(req, 409, "role_exists",
			    "The app has a role of that name.");
		else
			gh_http_respond_error(req, 409, "too_many_roles",
			    "An app has at most 100 roles.");
		goto out;
	}
	if (err == GH_OK) {
		changes = json_pack("{s:s, s:s}", "role", name, "description",
		    desc ? desc : "");
		err = gh_audit_append(ctx.db, &ctx.actor, "app.role.create",
		    "app", a.id, changes);
		json_decref(changes);
	}
	if (finish(&ctx, err))
		gh_http_respond_json(req, 201, json_pack("{s:s, s:s, s:s}",
		    "app_id", a.id, "name", name, "description",
		    desc ? desc : ""));
out:
	json_decref(body);
	ctx_close(&ctx);
}

static void
h_role_delete(void *app, struct gh_http_req *req)
{
	struct gh_access_app a;
	struct api_ctx ctx;
	const char *name = gh_http_req_param(req, "name");
	json_t *changes;
	gh_err err;

	if (!open_app(app, req, &ctx, "apps.write"))
		return;
	err = gh_db_begin(ctx.db);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	if (!target_app(&ctx, &a)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	err = gh_access_role_delete(ctx.db, a.id, name);
	if (err == GH_ERR_NOTFOUND || err == GH_ERR_CONFLICT) {
		gh_db_rollback(ctx.db);
		if (err == GH_ERR_NOTFOUND)
			gh_http_respond_error(req, 404, "role_not_found",
			    "The app has no such role.");
		else
			gh_http_respond_error(req, 409, "role_in_use",
			    "Assignments or rules use this role; remove them "
			    "first.");
		goto out;
	}
	if (err == GH_OK) {
		changes = json_pack("{s:s}", "role", name);
		err = gh_audit_append(ctx.db, &ctx.actor, "app.role.delete",
		    "app", a.id, changes);
		json_decref(changes);
	}
	if (finish(&ctx, err))
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	ctx_close(&ctx);
}

/* ---- assignments --------------------------------------------------------------- */

static void
h_assignments_list(void *app, struct gh_http_req *req)
{
	struct gh_access_app a;
	struct api_ctx ctx;
	json_t *list = NULL;
	gh_err err;

	if (!open_app(app, req, &ctx, "apps.read"))
		return;
	if (target_app(&ctx, &a)) {
		err = gh_access_assignment_list(ctx.db, a.id, &list);
		if (err != GH_OK)
			respond_err(req, err);
		else
			gh_http_respond_json(req, 200, json_pack("{s:o}",
			    "assignments", list));
	}
	ctx_close(&ctx);
}

/* Reads {"user_id" | "group_id", "role"?}; responds on failure. */
static bool
assignment_body(struct gh_http_req *req, json_t *body, const char **type,
    const char **id, const char **role)
{
	const char *user = NULL, *group = NULL;

	if (!member_str(req, body, "user_id", &user) ||
	    !member_str(req, body, "group_id", &group) ||
	    !member_str(req, body, "role", role))
		return false;
	if ((user == NULL) == (group == NULL)) {
		respond_invalid(req, "exactly one of user_id and group_id is "
		    "required");
		return false;
	}
	*type = user ? "user" : "group";
	*id = user ? user : group;
	if (*role != NULL && !gh_access_role_name_valid(*role)) {
		gh_http_respond_error(req, 400, "role_not_found",
		    "role: the app has no such role.");
		return false;
	}
	if (!gh_id_valid(*id)) {
		gh_http_respond_error(req, 404, user ? "user_not_found" :
		    "group_not_found", user ? "No such user." :
		    "No such group.");
		return false;
	}
	return true;
}

/* Assigning needs read access to the principal: users.read over the user
 * or groups.read over the group. Responds 403 when the caller lacks it. */
static bool
principal_readable(struct api_ctx *ctx, const char *type, const char *id)
{
	if (strcmp(type, "user") == 0)
		return ctx_holds(ctx, "users.read") &&
		    ctx_may_user(ctx, "users.read", id);
	return ctx_holds(ctx, "groups.read") &&
	    ctx_may_group(ctx, "groups.read", id);
}

static void
h_assignments_create(void *app, struct gh_http_req *req)
{
	static const char *const keys[] = { "user_id", "group_id", "role",
		NULL };
	const char *type = NULL, *pid = NULL, *role = NULL;
	char id[GH_ID_LEN + 1];
	struct gh_access_app a;
	struct api_ctx ctx;
	json_t *body = NULL, *view = NULL, *changes = NULL;
	bool role_ok = true;
	gh_err err;

	if (!open_app(app, req, &ctx, "apps.write"))
		return;
	if ((body = body_object(req, keys)) == NULL ||
	    !assignment_body(req, body, &type, &pid, &role))
		goto out;
	err = gh_db_begin(ctx.db);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	/* Judged in the transaction that makes the assignment. */
	if (!target_app(&ctx, &a) || !principal_readable(&ctx, type, pid)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	if (role != NULL)
		err = gh_access_role_exists(ctx.db, a.id, role, &role_ok);
	if (err == GH_OK && !role_ok) {
		gh_db_rollback(ctx.db);
		gh_http_respond_error(req, 400, "role_not_found",
		    "role: the app has no such role.");
		goto out;
	}
	if (err == GH_OK)
		err = gh_access_assignment_add(ctx.db, a.id, type, pid, role,
		    NULL, ctx.actor.id, id);
	if (err == GH_ERR_NOTFOUND || err == GH_ERR_CONFLICT) {
		gh_db_rollback(ctx.db);
		if (err == GH_ERR_CONFLICT)
			gh_http_respond_error(req, 409, "assignment_exists",
			    "That assignment exists.");
		else if (strcmp(type, "user") == 0)
			gh_http_respond_error(req, 404, "user_not_found",
			    "No such user.");
		else
			gh_http_respond_error(req, 404, "group_not_found",
			    "No such group.");
		goto out;
	}
	if (err == GH_OK)
		err = gh_access_assignment_get(ctx.db, a.id, id, &view);
	if (err == GH_OK) {
		changes = json_pack("{s:s, s:s, s:s, s:s, s:o}",
		    "assignment_id", id, "principal_type", type, "principal_id",
		    pid, "principal_name", json_string_value(json_object_get(
		    view, "principal_name")), "role", role ? json_string(role) :
		    json_null());
		err = gh_audit_append(ctx.db, &ctx.actor,
		    "app.assignment.create", "app", a.id, changes);
	}
	if (finish(&ctx, err)) {
		gh_http_respond_json(req, 201, view);
		view = NULL;
	}
out:
	json_decref(changes);
	json_decref(view);
	json_decref(body);
	ctx_close(&ctx);
}

static void
h_assignment_delete(void *app, struct gh_http_req *req)
{
	struct gh_access_app a;
	struct api_ctx ctx;
	json_t *view = NULL, *changes = NULL;
	gh_err err;

	if (!open_app(app, req, &ctx, "apps.write"))
		return;
	err = gh_db_begin(ctx.db);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	if (!target_app(&ctx, &a)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	err = gh_access_assignment_get(ctx.db, a.id,
	    gh_http_req_param(req, "assignment_id"), &view);
	if (err == GH_ERR_NOTFOUND) {
		gh_db_rollback(ctx.db);
		gh_http_respond_error(req, 404, "assignment_not_found",
		    "The app has no such assignment.");
		goto out;
	}
	if (err == GH_OK && !json_is_null(json_object_get(view, "rule_id"))) {
		gh_db_rollback(ctx.db);
		gh_http_respond_error(req, 409, "assignment_by_rule",
		    "A rule made this assignment; change or delete the rule.");
		goto out;
	}
	if (err == GH_OK)
		err = gh_access_assignment_delete(ctx.db, a.id,
		    json_string_value(json_object_get(view, "id")));
	if (err == GH_OK) {
		changes = json_copy(view);
		json_object_del(changes, "id");
		json_object_del(changes, "app_id");
		json_object_del(changes, "rule_id");
		json_object_del(changes, "created_at");
		json_object_del(changes, "created_by");
		json_object_set(changes, "assignment_id",
		    json_object_get(view, "id"));
		err = gh_audit_append(ctx.db, &ctx.actor,
		    "app.assignment.delete", "app", a.id, changes);
	}
	if (finish(&ctx, err))
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	json_decref(changes);
	json_decref(view);
	ctx_close(&ctx);
}

/* ---- a user's apps ----------------------------------------------------------------- */

static void
respond_user_apps(struct api_ctx *ctx, const struct gh_user *u,
    bool active_only)
{
	json_t *apps = NULL;
	gh_err err;

	err = gh_access_user_apps(ctx->db, u->id, active_only, &apps);
	if (err != GH_OK)
		respond_err(ctx->req, err);
	else
		gh_http_respond_json(ctx->req, 200, json_pack("{s:s, s:o}",
		    "user_id", u->id, "apps", apps));
}

static void
h_user_apps(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	struct gh_user u;
	gh_err err;

	memset(&u, 0, sizeof u);
	if (!ctx_open_perm(app, req, &ctx, "users.read"))
		return;
	err = gh_identity_user_get(ctx.db, gh_http_req_param(req, "id"), &u);
	if (err == GH_ERR_NOTFOUND)
		gh_http_respond_error(req, 404, "user_not_found",
		    "No such user.");
	else if (err != GH_OK)
		respond_err(req, err);
	else if (ctx_may_user(&ctx, "users.read", u.id))
		respond_user_apps(&ctx, &u, false);
	gh_wipe(&u, sizeof u);
	ctx_close(&ctx);
}

static void
h_me_apps(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;

	if (!ctx_open(app, req, &ctx))
		return;
	if (ctx_auth(&ctx, false))
		respond_user_apps(&ctx, &ctx.user, true);
	ctx_close(&ctx);
}

gh_err
routes_apps(struct gh_http_router *r)
{
	static const struct gh_http_route_def routes[] = {
		{ "GET", "/o/{org}/api/v1/apps", h_apps_list },
		{ "POST", "/o/{org}/api/v1/apps", h_apps_create },
		{ "GET", "/o/{org}/api/v1/apps/{id}", h_app_get },
		{ "PATCH", "/o/{org}/api/v1/apps/{id}", h_app_patch },
		{ "DELETE", "/o/{org}/api/v1/apps/{id}", h_app_delete },
		{ "GET", "/o/{org}/api/v1/apps/{id}/roles", h_roles_list },
		{ "POST", "/o/{org}/api/v1/apps/{id}/roles", h_roles_create },
		{ "DELETE", "/o/{org}/api/v1/apps/{id}/roles/{name}",
		    h_role_delete },
		{ "GET", "/o/{org}/api/v1/apps/{id}/assignments",
		    h_assignments_list },
		{ "POST", "/o/{org}/api/v1/apps/{id}/assignments",
		    h_assignments_create },
		{ "DELETE",
		    "/o/{org}/api/v1/apps/{id}/assignments/{assignment_id}",
		    h_assignment_delete },
		{ "GET", "/o/{org}/api/v1/users/{id}/apps", h_user_apps },
		{ "GET", "/o/{org}/api/v1/me/apps", h_me_apps },
	};

	return gh_http_routes(r, routes, sizeof routes / sizeof *routes);
}
