/*
 * rules.c: the admin API for conditional assignment rules:
 * GET/POST /o/{org}/api/v1/rules, GET/PATCH/DELETE /rules/{id},
 * POST /rules/dry-run and POST /rules/{id}/dry-run; and
 * access_rules_apply_user, which the user, attribute and group routes call
 * in their transaction whenever a user's facts change.
 *
 * A rule change re-evaluates every rule for every user in the same
 * transaction as the change and its audit event; the grants it makes and
 * takes back are audited as actor "system" with the rule's id and name.
 *
 * Permissions: a rule is read with apps.read (an app action) or
 * groups.read (a group action) over its target, and changed with
 * apps.write or groups.write over it plus users.write org-wide: a rule
 * reaches every user of the org, so a scoped admin could otherwise pull
 * users from outside its scope into its app or group, and with them into
 * its scope. A dry run lists matching users from the whole org: it needs
 * users.read org-wide besides the read permission.
 *
 * Untrusted input: rule bodies and their expressions (parsed by
 * src/access), ids in paths. Secrets: none.
 */
#include "access/access.h"
#include "api/api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

gh_err
access_rules_apply_user(struct api_ctx *ctx, const char *user_id)
{
	return gh_access_rules_apply_user(ctx->db, ctx->app->kms, user_id,
	    ctx->actor.request_id);
}

gh_err
access_rules_apply_all(struct api_ctx *ctx)
{
	return gh_access_rules_apply_all(ctx->db, ctx->app->kms,
	    ctx->actor.request_id);
}

static void
respond_keys_unavailable(struct gh_http_req *req)
{
	gh_http_respond_error(req, 503, "keys_unavailable",
	    "The encryption keys of this organisation are unavailable.");
}

/* finish() where keys that are unavailable answer 503. */
static bool
finish_rule(struct api_ctx *ctx, gh_err err)
{
	if (err != GH_ERR_DENIED)
		return finish(ctx, err);
	gh_db_rollback(ctx->db);
	respond_keys_unavailable(ctx->req);
	return false;
}

/* Opens a rules route for a caller who holds the app or the group
 * permission (read or write) in some scope; which one the target needs is
 * decided by may_rule once the rule's action is known. */
static bool
open_rules(void *app, struct gh_http_req *req, struct api_ctx *ctx,
    bool write)
{
	uint32_t need = write ? GH_PERM_APPS_WRITE | GH_PERM_GROUPS_WRITE :
	    GH_PERM_APPS_READ | GH_PERM_GROUPS_READ;

	if (!ctx_open_grants(app, req, ctx))
		return false;
	if ((ctx->grants.any & need) != 0)
		return true;
	gh_http_respond_error(req, 403, "permission_denied", write ?
	    "This needs the permission apps.write or groups.write." :
	    "This needs the permission apps.read or groups.read.");
	ctx_close(ctx);
	return false;
}

/* The permission of r's action: apps.* or groups.*, read or write. */
static const char *
rule_perm(const struct gh_access_rule_row *r, bool write)
{
	if (r->app_id[0] != '\0')
		return write ? "apps.write" : "apps.read";
	return write ? "groups.write" : "groups.read";
}

/* May the caller read (write false) or change the rule r? Responds 403
 * when not. A change also needs users.write org-wide (see the top). */
static bool
may_rule(struct api_ctx *ctx, const struct gh_access_rule_row *r, bool write)
{
	const char *perm = rule_perm(r, write);

	if (!ctx_holds(ctx, perm))
		return false;
	if (r->app_id[0] != '\0' ? !ctx_may_app(ctx, perm, r->app_id) :
	    !ctx_may_group(ctx, perm, r->group_id))
		return false;
	return !write || (ctx_holds(ctx, "users.write") &&
	    ctx_may_org(ctx, "users.write"));
}

/* For the list: true when the caller may read the rule whose JSON is j. */
static bool
sees_rule(struct api_ctx *ctx, json_t *j, gh_err *err_out)
{
	json_t *action = json_object_get(j, "action");
	const char *app_id = json_string_value(json_object_get(action,
	    "app_id"));
	const char *group_id = json_string_value(json_object_get(action,
	    "group_id"));
	struct gh_group g;

	*err_out = GH_OK;
	if (app_id != NULL)
		return ctx_sees_app(ctx, "apps.read", app_id);
	if (group_id == NULL)
		return false;
	*err_out = gh_identity_group_get(ctx->db, group_id, &g);
	if (*err_out == GH_ERR_NOTFOUND) {
		*err_out = GH_OK;
		return ctx_sees_group(ctx, "groups.read", group_id, NULL);
	}
	if (*err_out != GH_OK)
		return false;
	return ctx_sees_group(ctx, "groups.read", g.id, g.parent_id);
}

/* Keeps the rules the caller may read. */
static gh_err
rules_filter(struct api_ctx *ctx, json_t *rules)
{
	size_t i = 0;
	gh_err err;

	if (gh_rbac_holds_org(&ctx->grants, GH_PERM_APPS_READ |
	    GH_PERM_GROUPS_READ))
		return GH_OK;
	while (i < json_array_size(rules)) {
		if (sees_rule(ctx, json_array_get(rules, i), &err))
			i++;
		else if (err != GH_OK)
			return err;
		else
			json_array_remove(rules, i);
	}
	return GH_OK;
}

/* Reads "action" into r: {"app_id", "role"?} or {"group_id"}, each
 * naming something that exists. Responds and returns false otherwise. */
static bool
action_read(struct api_ctx *ctx, json_t *action, struct gh_access_rule_row *r)
{
	const char *app_id = NULL, *role = NULL, *group_id = NULL, *key;
	struct gh_access_app a;
	struct gh_group g;
	json_t *v;
	bool exists = false;
	gh_err err;

	if (!json_is_object(action)) {
		respond_invalid(ctx->req, "action: an object {\"app_id\", "
		    "\"role\"?} or {\"group_id\"}");
		return false;
	}
	json_object_foreach(action, key, v) {
		if (strcmp(key, "app_id") != 0 && strcmp(key, "role") != 0 &&
		    strcmp(key, "group_id") != 0) {
			respond_invalid(ctx->req, "action.%.64s: unknown "
			    "member", key);
			return false;
		}
		if (!json_is_string(v) && !(json_is_null(v) &&
		    strcmp(key, "role") == 0)) {
			respond_invalid(ctx->req, "action.%s: must be a "
			    "string", key);
			return false;
		}
	}
	app_id = json_string_value(json_object_get(action, "app_id"));
	role = json_string_value(json_object_get(action, "role"));
	group_id = json_string_value(json_object_get(action, "group_id"));
	if ((app_id == NULL) == (group_id == NULL) ||
	    (role != NULL && app_id == NULL)) {
		respond_invalid(ctx->req, "action: either app_id (with an "
		    "optional role) or group_id");
		return false;
	}
	memset(r->app_id, 0, sizeof r->app_id);
	memset(r->app_role, 0, sizeof r->app_role);
	memset(r->group_id, 0, sizeof r->group_id);
	if (group_id != NULL) {
		err = gh_identity_group_get(ctx->db, group_id, &g);
		if (err == GH_ERR_NOTFOUND) {
			gh_http_respond_error(ctx->req, 400, "group_not_found",
			    "action.group_id: no such group.");
			return false;
		}
		if (err != GH_OK) {
			respond_err(ctx->req, err);
			return false;
		}
		gh_strlcpy(r->group_id, g.id, sizeof r->group_id);
		return true;
	}
	err = gh_access_app_get(ctx->db, app_id, &a);
	if (err == GH_ERR_NOTFOUND) {
		gh_http_respond_error(ctx->req, 400, "app_not_found",
		    "action.app_id: no such app.");
		return false;
	}
	if (err == GH_OK && role != NULL && gh_access_role_name_valid(role))
		err = gh_access_role_exists(ctx->db, a.id, role, &exists);
	if (err != GH_OK) {
		respond_err(ctx->req, err);
		return false;
	}
	if (role != NULL && !exists) {
		gh_http_respond_error(ctx->req, 400, "role_not_found",
		    "action.role: the app has no such role.");
		return false;
	}
	gh_strlcpy(r->app_id, a.id, sizeof r->app_id);
	if (role != NULL)
		gh_strlcpy(r->app_role, role, sizeof r->app_role);
	return true;
}

/* Compiles expr; on failure answers 400 invalid_rule (with "position"),
 * unknown_attribute or unknown_group (with "name"), or 503. */
static bool
expr_compile(struct api_ctx *ctx, const char *expr,
    struct gh_access_rule **out)
{
	struct gh_access_rule_error e;
	json_t *j;
	gh_err err;

	err = gh_access_rule_compile(ctx->db, ctx->app->kms, expr, true, out,
	    &e);
	if (err == GH_OK)
		return true;
	if (err == GH_ERR_DENIED) {
		respond_keys_unavailable(ctx->req);
	} else if (err == GH_ERR_INVALID || err == GH_ERR_NOTFOUND) {
		j = json_pack("{s:s, s:s, s:I, s:s}", "error", e.code,
		    "message", e.msg, "position", (json_int_t)e.pos,
		    "request_id", gh_http_req_id(ctx->req));
		if (j != NULL && strcmp(e.code, "invalid_rule") != 0)
			json_object_set_new(j, "name", json_string(e.name));
		gh_http_respond_json(ctx->req, 400, j);
	} else {
		respond_err(ctx->req, err);
	}
	return false;
}

/* Reads name, expression, action and enabled of body over r, checking the
 * expression. Responds and returns false when one is invalid. */
static bool
rule_fields_read(struct api_ctx *ctx, json_t *body,
    struct gh_access_rule_row *r)
{
	const char *name = NULL, *expr = NULL;
	struct gh_access_rule *compiled = NULL;
	json_t *enabled = json_object_get(body, "enabled");
	json_t *action = json_object_get(body, "action");

	if (!member_str(ctx->req, body, "name", &name) ||
	    !member_str(ctx->req, body, "expression", &expr))
		return false;
	if (name != NULL && !gh_access_rule_name_valid(name)) {
		respond_invalid(ctx->req, "name: 1 to %d bytes of text without "
		    "control characters", GH_RULE_NAME_MAX);
		return false;
	}
	if (expr != NULL && strlen(expr) > GH_RULE_EXPR_MAX) {
		gh_http_respond_json(ctx->req, 400, json_pack(
		    "{s:s, s:s, s:i, s:s}", "error", "invalid_rule",
		    "message", "expression too long (at most 2048 bytes)",
		    "position", GH_RULE_EXPR_MAX, "request_id",
		    gh_http_req_id(ctx->req)));
		return false;
	}
	if (enabled != NULL && !json_is_boolean(enabled)) {
		respond_invalid(ctx->req, "enabled: must be true or false");
		return false;
	}
	if (action != NULL && !action_read(ctx, action, r))
		return false;
	if (expr != NULL && !expr_compile(ctx, expr, &compiled))
		return false;
	gh_access_rule_free(compiled);
	if (name != NULL)
		gh_strlcpy(r->name, name, sizeof r->name);
	if (expr != NULL)
		gh_strlcpy(r->expression, expr, sizeof r->expression);
	if (enabled != NULL)
		r->enabled = json_is_true(enabled);
	return true;
}

static const char *const rule_keys[] = { "name", "expression", "action",
	"enabled", NULL };

static void
respond_rule_exists(struct gh_http_req *req)
{
	gh_http_respond_error(req, 409, "rule_exists",
	    "A rule with that name exists (names ignore case).");
}

static void
h_rules_list(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	json_t *rules = NULL;
	gh_err err;

	if (!open_rules(app, req, &ctx, false))
		return;
	err = gh_access_rule_list(ctx.db, &rules);
	if (err == GH_OK)
		err = rules_filter(&ctx, rules);
	if (err != GH_OK) {
		json_decref(rules);
		respond_err(req, err);
	} else {
		gh_http_respond_json(req, 200, json_pack("{s:o}", "rules",
		    rules));
	}
	ctx_close(&ctx);
}

static void
w_rules_create(void *app, struct gh_http_req *req)
{
	struct gh_access_rule_row r;
	struct api_ctx ctx;
	json_t *body = NULL, *changes = NULL;
	gh_err err;

	memset(&r, 0, sizeof r);
	r.enabled = true;
	if (!open_rules(app, req, &ctx, true))
		return;
	if ((body = body_object(req, rule_keys)) == NULL)
		goto out;
	if (json_object_get(body, "name") == NULL ||
	    json_object_get(body, "expression") == NULL ||
	    json_object_get(body, "action") == NULL) {
		respond_invalid(req, "name, expression and action are "
		    "required");
		goto out;
	}
	err = gh_db_begin(ctx.db);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	if (!rule_fields_read(&ctx, body, &r) || !may_rule(&ctx, &r, true)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	err = gh_access_rule_insert(ctx.db, &r);
	if (err == GH_ERR_CONFLICT) {
		gh_db_rollback(ctx.db);
		respond_rule_exists(req);
		goto out;
	}
	if (err == GH_OK) {
		changes = gh_access_rule_row_json(&r);
		json_object_del(changes, "id");
		json_object_del(changes, "created_at");
		json_object_del(changes, "updated_at");
		err = gh_audit_append(ctx.db, &ctx.actor, "rule.create", "rule",
		    r.id, changes);
	}
	if (err == GH_OK)
		err = access_rules_apply_all(&ctx);
	if (finish_rule(&ctx, err))
		gh_http_respond_json(req, 201, gh_access_rule_row_json(&r));
out:
	json_decref(changes);
	json_decref(body);
	ctx_close(&ctx);
}

static void
h_rules_create(void *app, struct gh_http_req *req)
{
	gh_http_defer(req, w_rules_create);
}

/* Loads the rule named by {id}; answers 404 rule_not_found. */
static bool
target_rule(struct api_ctx *ctx, struct gh_access_rule_row *r)
{
	gh_err err;

	err = gh_access_rule_get(ctx->db, gh_http_req_param(ctx->req, "id"),
	    r);
	if (err == GH_ERR_NOTFOUND)
		gh_http_respond_error(ctx->req, 404, "rule_not_found",
		    "No such rule.");
	else if (err != GH_OK)
		respond_err(ctx->req, err);
	return err == GH_OK;
}

static void
h_rule_get(void *app, struct gh_http_req *req)
{
	struct gh_access_rule_row r;
	struct api_ctx ctx;

	if (!open_rules(app, req, &ctx, false))
		return;
	if (target_rule(&ctx, &r) && may_rule(&ctx, &r, false))
		gh_http_respond_json(req, 200, gh_access_rule_row_json(&r));
	ctx_close(&ctx);
}

static void
w_rule_patch(void *app, struct gh_http_req *req)
{
	static const char *const fields[] = { "name", "expression", "action",
		"enabled" };
	struct gh_access_rule_row before, after;
	struct api_ctx ctx;
	json_t *body = NULL, *changes = NULL, *jb = NULL, *ja = NULL;
	size_t i;
	gh_err err;

	if (!open_rules(app, req, &ctx, true))
		return;
	if ((body = body_object(req, rule_keys)) == NULL)
		goto out;
	err = gh_db_begin(ctx.db);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	if (!target_rule(&ctx, &before) || !may_rule(&ctx, &before, true)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	after = before;
	if (!rule_fields_read(&ctx, body, &after)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	jb = gh_access_rule_row_json(&before);
	ja = gh_access_rule_row_json(&after);
	changes = json_object();
	for (i = 0; i < sizeof fields / sizeof *fields; i++) {
		json_t *from = json_object_get(jb, fields[i]);
		json_t *to = json_object_get(ja, fields[i]);

		if (!json_equal(from, to))
			json_object_set_new(changes, fields[i], json_pack(
			    "{s:O, s:O}", "from", from, "to", to));
	}
	if (json_object_size(changes) == 0) {
		gh_db_rollback(ctx.db);
		gh_http_respond_json(req, 200, gh_access_rule_row_json(&before));
		goto out;
	}
	err = gh_access_rule_update(ctx.db, &after);
	if (err == GH_ERR_CONFLICT) {
		gh_db_rollback(ctx.db);
		respond_rule_exists(req);
		goto out;
	}
	/* A new action: what the old one granted is taken back first. */
	if (err == GH_OK && (strcmp(before.app_id, after.app_id) != 0 ||
	    strcmp(before.app_role, after.app_role) != 0 ||
	    strcmp(before.group_id, after.group_id) != 0))
		err = GH_ERR_CONFLICT;
	if (err == GH_ERR_CONFLICT) {
		gh_db_rollback(ctx.db);
		gh_http_respond_error(req, 409, "action_immutable",
		    "A rule's action cannot change; make a new rule and "
		    "delete this one.");
		goto out;
	}
	if (err == GH_OK)
		err = gh_audit_append(ctx.db, &ctx.actor, "rule.update", "rule",
		    after.id, changes);
	if (err == GH_OK)
		err = access_rules_apply_all(&ctx);
	if (finish_rule(&ctx, err))
		gh_http_respond_json(req, 200, gh_access_rule_row_json(&after));
out:
	json_decref(jb);
	json_decref(ja);
	json_decref(changes);
	json_decref(body);
	ctx_close(&ctx);
}

static void
h_rule_patch(void *app, struct gh_http_req *req)
{
	gh_http_defer(req, w_rule_patch);
}

static void
w_rule_delete(void *app, struct gh_http_req *req)
{
	struct gh_access_rule_row r;
	struct api_ctx ctx;
	json_t *changes;
	gh_err err;

	if (!open_rules(app, req, &ctx, true))
		return;
	err = gh_db_begin(ctx.db);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	if (!target_rule(&ctx, &r) || !may_rule(&ctx, &r, true)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	/* Disabled, it matches nobody: applying it takes back (audited)
	 * everything it granted; then the row goes. */
	changes = gh_access_rule_row_json(&r);
	r.enabled = false;
	err = gh_access_rule_update(ctx.db, &r);
	if (err == GH_OK)
		err = access_rules_apply_all(&ctx);
	if (err == GH_OK)
		err = gh_access_rule_delete(ctx.db, r.id);
	if (err == GH_OK) {
		json_object_del(changes, "id");
		json_object_del(changes, "created_at");
		json_object_del(changes, "updated_at");
		err = gh_audit_append(ctx.db, &ctx.actor, "rule.delete", "rule",
		    r.id, changes);
	}
	json_decref(changes);
	if (finish_rule(&ctx, err))
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	ctx_close(&ctx);
}

static void
h_rule_delete(void *app, struct gh_http_req *req)
{
	gh_http_defer(req, w_rule_delete);
}

/* Dry run of body's expression and action over base (a stored rule, or a
 * zeroed row for a new one). */
static void
dry_run(struct api_ctx *ctx, json_t *body, struct gh_access_rule_row *base)
{
	struct gh_access_rule *compiled = NULL;
	json_t *add = NULL, *remove = NULL;
	gh_err err;

	/* The answer names matching users from the whole org. */
	if (!rule_fields_read(ctx, body, base) || !may_rule(ctx, base, false) ||
	    !ctx_holds(ctx, "users.read") || !ctx_may_org(ctx, "users.read") ||
	    !expr_compile(ctx, base->expression, &compiled))
		return;
	err = gh_access_rule_dry_run(ctx->db, compiled, base, &add, &remove);
	gh_access_rule_free(compiled);
	if (err != GH_OK)
		respond_err(ctx->req, err);
	else
		gh_http_respond_json(ctx->req, 200, json_pack("{s:o, s:o}",
		    "add", add, "remove", remove));
}

static void
w_rules_dry_run(void *app, struct gh_http_req *req)
{
	static const char *const keys[] = { "expression", "action", NULL };
	struct gh_access_rule_row r;
	struct api_ctx ctx;
	json_t *body = NULL;

	memset(&r, 0, sizeof r);
	if (!open_rules(app, req, &ctx, false))
		return;
	if ((body = body_object(req, keys)) == NULL)
		goto out;
	if (json_object_get(body, "expression") == NULL ||
	    json_object_get(body, "action") == NULL) {
		respond_invalid(req, "expression and action are required");
		goto out;
	}
	dry_run(&ctx, body, &r);
out:
	json_decref(body);
	ctx_close(&ctx);
}

static void
h_rules_dry_run(void *app, struct gh_http_req *req)
{
	gh_http_defer(req, w_rules_dry_run);
}

static void
w_rule_dry_run(void *app, struct gh_http_req *req)
{
	static const char *const keys[] = { "expression", NULL };
	struct gh_access_rule_row r;
	struct api_ctx ctx;
	json_t *body = NULL;
	size_t len = 0;

	if (!open_rules(app, req, &ctx, false))
		return;
	/* An empty body runs the stored expression. */
	if (gh_http_req_body(req, &len) == NULL || len == 0)
		body = json_object();
	else
		body = body_object(req, keys);
	if (body != NULL && target_rule(&ctx, &r))
		dry_run(&ctx, body, &r);
	json_decref(body);
	ctx_close(&ctx);
}

static void
h_rule_dry_run(void *app, struct gh_http_req *req)
{
	gh_http_defer(req, w_rule_dry_run);
}

gh_err
routes_rules(struct gh_http_router *r)
{
	static const struct gh_http_route_def routes[] = {
		{ "GET", "/o/{org}/api/v1/rules", h_rules_list },
		{ "POST", "/o/{org}/api/v1/rules", h_rules_create },
		{ "POST", "/o/{org}/api/v1/rules/dry-run", h_rules_dry_run },
		{ "GET", "/o/{org}/api/v1/rules/{id}", h_rule_get },
		{ "PATCH", "/o/{org}/api/v1/rules/{id}", h_rule_patch },
		{ "DELETE", "/o/{org}/api/v1/rules/{id}", h_rule_delete },
		{ "POST", "/o/{org}/api/v1/rules/{id}/dry-run", h_rule_dry_run },
	};

	return gh_http_routes(r, routes, sizeof routes / sizeof *routes);
}
