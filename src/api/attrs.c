/*
 * attrs.c: the admin API for custom user attribute definitions:
 * GET/POST /o/{org}/api/v1/attributes and GET/PATCH/DELETE
 * /o/{org}/api/v1/attributes/{name}. Reading needs users.read, changing
 * attributes.write (src/api/rbac.c); every change is audited in its own transaction. Users' values are set
 * through the user endpoints (admin.c).
 *
 * Untrusted input: definition bodies and the {name} path parameter, both
 * validated by src/identity. Secrets: none here; an encrypted attribute's
 * values never pass through this file.
 */
#include "api/api_int.h"

#include <stdio.h>
#include <string.h>

static void
respond_keys_unavailable(struct gh_http_req *req)
{
	gh_http_respond_error(req, 503, "keys_unavailable",
	    "The encryption keys of this organisation are unavailable.");
}

/* Encrypted attributes need the org's keys: refuses (answering 503) when
 * the server has none or the org's are revoked or gone. */
static bool
keys_ready(struct api_ctx *ctx)
{
	if (ctx->app->kms == NULL ||
	    gh_kms_org_available(ctx->app->kms, ctx->org.id) != GH_OK) {
		respond_keys_unavailable(ctx->req);
		return false;
	}
	return true;
}

/* The definition without its times, as audit changes record it. */
static json_t *
def_changes(const struct gh_attr_def *d)
{
	json_t *j = gh_identity_attr_def_json(d);

	json_object_del(j, "created_at");
	json_object_del(j, "updated_at");
	return j;
}

static void
h_attrs_list(void *app, struct gh_http_req *req)
{
	struct gh_attr_defs defs;
	struct api_ctx ctx;
	json_t *arr;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "users.read"))
		return;
	err = gh_identity_attr_def_list(ctx.db, &defs);
	if (err != GH_OK) {
		respond_err(req, err);
		goto out;
	}
	arr = json_array();
	for (size_t i = 0; i < defs.len; i++)
		json_array_append_new(arr, gh_identity_attr_def_json(&defs.v[i]));
	gh_identity_attr_defs_free(&defs);
	gh_http_respond_json(req, 200, json_pack("{s:o}", "attributes", arr));
out:
	ctx_close(&ctx);
}

static const char *const def_keys[] = { "name", "type", "enum_values",
	"required", "unique", "classification", "encrypted", NULL };

static void
h_attrs_create(void *app, struct gh_http_req *req)
{
	struct gh_attr_def d;
	struct api_ctx ctx;
	json_t *body, *changes;
	char msg[200];
	gh_err err;

	memset(&d, 0, sizeof d);
	if (!ctx_open_perm(app, req, &ctx, "attributes.write"))
		return;
	if ((body = body_object(req, def_keys)) == NULL)
		goto out;
	err = gh_identity_attr_def_apply(body, true, &d, msg, sizeof msg);
	if (err == GH_ERR_INVALID) {
		gh_http_respond_error(req, 400, "invalid_request", msg);
		goto out;
	}
	if (err != GH_OK) {
		respond_err(req, err);
		goto out;
	}
	if (d.encrypted && !keys_ready(&ctx))
		goto out;
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_identity_attr_def_insert(ctx.db, &d);
	if (err == GH_OK) {
		changes = def_changes(&d);
		err = gh_audit_append(ctx.db, &ctx.actor, "attribute.create",
		    "attribute", d.id, changes);
		json_decref(changes);
	}
	if (err == GH_ERR_CONFLICT) {
		gh_db_rollback(ctx.db);
		gh_http_respond_error(req, 409, "attribute_exists",
		    "An attribute with that name exists.");
	} else if (err == GH_ERR_LIMIT) {
		gh_db_rollback(ctx.db);
		respond_invalid(req, "an organisation has at most %d attributes",
		    GH_ATTR_DEFS_MAX);
	} else if (finish(&ctx, err)) {
		gh_http_respond_json(req, 201, gh_identity_attr_def_json(&d));
	}
out:
	gh_identity_attr_def_clear(&d);
	json_decref(body);
	ctx_close(&ctx);
}

/* Loads {name}; answers 404 when absent. */
static bool
target_def(struct api_ctx *ctx, struct gh_attr_def *d)
{
	gh_err err;

	err = gh_identity_attr_def_get(ctx->db,
	    gh_http_req_param(ctx->req, "name"), d);
	if (err != GH_OK) {
		respond_err(ctx->req, err);
		return false;
	}
	return true;
}

static void
h_attr_get(void *app, struct gh_http_req *req)
{
	struct gh_attr_def d;
	struct api_ctx ctx;

	memset(&d, 0, sizeof d);
	if (!ctx_open_perm(app, req, &ctx, "users.read"))
		return;
	if (target_def(&ctx, &d))
		gh_http_respond_json(req, 200, gh_identity_attr_def_json(&d));
	gh_identity_attr_def_clear(&d);
	ctx_close(&ctx);
}

/* Adds {"key": {"from", "to"}} to changes when a and b differ. */
static void
diff_json(json_t *changes, const char *key, json_t *a, json_t *b)
{
	if (json_equal(a, b))
		return;
	json_object_set_new(changes, key, json_pack("{s:O, s:O}", "from",
	    a ? a : json_null(), "to", b ? b : json_null()));
}

static json_t *
changes_between(const struct gh_attr_def *a, const struct gh_attr_def *b)
{
	json_t *ja = def_changes(a), *jb = def_changes(b), *changes;
	static const char *const keys[] = { "type", "enum_values", "required",
		"unique", "classification", "encrypted" };

	changes = json_object();
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
		diff_json(changes, keys[i], json_object_get(ja, keys[i]),
		    json_object_get(jb, keys[i]));
	json_decref(ja);
	json_decref(jb);
	return changes;
}

static void
h_attr_patch(void *app, struct gh_http_req *req)
{
	struct gh_attr_def before, after;
	const char *conflict = NULL;
	struct api_ctx ctx;
	json_t *body, *changes = NULL;
	char msg[200];
	gh_err err;

	memset(&before, 0, sizeof before);
	memset(&after, 0, sizeof after);
	if (!ctx_open_perm(app, req, &ctx, "attributes.write"))
		return;
	if ((body = body_object(req, def_keys)) == NULL)
		goto out;
	err = gh_db_begin(ctx.db);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	if (!target_def(&ctx, &before)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	after = before;
	after.enum_values = json_deep_copy(before.enum_values);
	err = gh_identity_attr_def_apply(body, false, &after, msg, sizeof msg);
	if (err != GH_OK) {
		gh_db_rollback(ctx.db);
		if (err == GH_ERR_INVALID)
			gh_http_respond_error(req, 400, "invalid_request", msg);
		else
			respond_err(req, err);
		goto out;
	}
	changes = changes_between(&before, &after);
	if (json_object_size(changes) == 0) {
		gh_db_rollback(ctx.db);
		gh_http_respond_json(req, 200, gh_identity_attr_def_json(&after));
		goto out;
	}
	/* Turning encryption on needs keys for the values to come; finding a
	 * removed member of an encrypted enum by its blind index needs them
	 * too (the update then answers GH_ERR_DENIED). */
	if (after.encrypted && !before.encrypted && !keys_ready(&ctx)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	err = gh_identity_attr_def_update(ctx.db, ctx.app->kms, &before, &after,
	    &conflict);
	if (err == GH_OK)
		err = gh_audit_append(ctx.db, &ctx.actor, "attribute.update",
		    "attribute", after.id, changes);
	if (err == GH_ERR_CONFLICT && conflict != NULL) {
		gh_db_rollback(ctx.db);
		gh_http_respond_error(req, 409, conflict,
		    strcmp(conflict, "attribute_not_unique") == 0 ?
		    "Users share values of this attribute; it cannot be made "
		    "unique." : "Users hold values of this attribute that the "
		    "change would invalidate; clear them first.");
	} else if (err == GH_ERR_DENIED) {
		gh_db_rollback(ctx.db);
		respond_keys_unavailable(req);
	} else if (finish(&ctx, err)) {
		gh_http_respond_json(req, 200, gh_identity_attr_def_json(&after));
	}
out:
	json_decref(changes);
	gh_identity_attr_def_clear(&before);
	gh_identity_attr_def_clear(&after);
	json_decref(body);
	ctx_close(&ctx);
}

static void
h_attr_delete(void *app, struct gh_http_req *req)
{
	struct gh_attr_def d;
	struct api_ctx ctx;
	int64_t values = 0;
	json_t *changes;
	gh_err err;

	memset(&d, 0, sizeof d);
	if (!ctx_open_perm(app, req, &ctx, "attributes.write"))
		return;
	err = gh_db_begin(ctx.db);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	if (!target_def(&ctx, &d)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	err = gh_identity_attr_def_delete(ctx.db, &d, &values);
	if (err == GH_OK) {
		changes = json_pack("{s:s, s:I}", "name", d.name,
		    "values_deleted", (json_int_t)values);
		err = gh_audit_append(ctx.db, &ctx.actor, "attribute.delete",
		    "attribute", d.id, changes);
		json_decref(changes);
	}
	/* A rule over the deleted attribute matches nobody any more. */
	if (err == GH_OK)
		err = access_rules_apply_all(&ctx);
	if (finish(&ctx, err))
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	gh_identity_attr_def_clear(&d);
	ctx_close(&ctx);
}

gh_err
routes_attrs(struct gh_http_router *r)
{
	static const struct gh_http_route_def routes[] = {
		{ "GET", "/o/{org}/api/v1/attributes", h_attrs_list },
		{ "POST", "/o/{org}/api/v1/attributes", h_attrs_create },
		{ "GET", "/o/{org}/api/v1/attributes/{name}", h_attr_get },
		{ "PATCH", "/o/{org}/api/v1/attributes/{name}", h_attr_patch },
		{ "DELETE", "/o/{org}/api/v1/attributes/{name}", h_attr_delete },
	};

	return gh_http_routes(r, routes, sizeof routes / sizeof *routes);
}
