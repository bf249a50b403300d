/*
 * scim_tokens.c: the bearer tokens of SCIM provisioning clients, managed
 * through the admin API (scim.write):
 *   POST   /o/{org}/api/v1/scim-tokens        make one, secret shown once
 *   GET    /o/{org}/api/v1/scim-tokens        the live ones
 *   DELETE /o/{org}/api/v1/scim-tokens/{id}   revoke
 * Secrets: the token is returned once and stored as its digest
 * (src/scim/token.c).
 */
#include "api/api_int.h"
#include "scim/scim.h"

#include <string.h>

static json_t *
scim_token_json(const struct gh_scim_token *t)
{
	char created[25], expires[25], used[25];

	gh_time_rfc3339(t->created_at, created);
	gh_time_rfc3339(t->expires_at, expires);
	gh_time_rfc3339(t->last_used_at, used);
	return json_pack("{s:s, s:s, s:o, s:s, s:s, s:o}", "id", t->id, "name",
	    t->name, "created_by", t->created_by[0] ?
	    json_string(t->created_by) : json_null(), "created_at", created,
	    "expires_at", expires, "last_used_at", t->last_used_at > 0 ?
	    json_string(used) : json_null());
}

static void
h_scim_tokens_create(void *app, struct gh_http_req *req)
{
	static const char *const keys[] = { "name", "expires_in_days", NULL };
	char secret[GH_SCIM_TOKEN_LEN + 1];
	struct gh_scim_token t;
	const char *name = NULL;
	json_int_t days = 365;
	struct api_ctx ctx;
	json_t *body, *v, *out, *changes;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "scim.write"))
		return;
	body = body_object(req, keys);
	if (body == NULL || !member_str(req, body, "name", &name))
		goto out;
	v = json_object_get(body, "expires_in_days");
	if (v != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 731) {
			respond_invalid(req, "expires_in_days: an integer from "
			    "1 to 731");
			goto out;
		}
		days = json_integer_value(v);
	}
	if (name == NULL || name[0] == '\0' ||
	    strlen(name) > GH_SCIM_TOKEN_NAME_MAX ||
	    !gh_identity_display_name_valid(name)) {
		respond_invalid(req, "name: required, 1 to 64 bytes of text");
		goto out;
	}
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_scim_token_create(ctx.db, name, ctx.user.id,
		    gh_now_ms() + (int64_t)days * 86400000, secret, &t);
	if (err == GH_OK) {
		changes = json_pack("{s:s, s:I}", "name", name,
		    "expires_in_days", days);
		err = gh_audit_append(ctx.db, &ctx.actor, "scim_token.create",
		    "scim_token", t.id, changes);
		json_decref(changes);
	}
	if (finish(&ctx, err)) {
		out = scim_token_json(&t);
		json_object_set_new(out, "token", json_string(secret));
		gh_http_respond_json(req, 201, out);
	}
	gh_wipe(secret, sizeof secret);
out:
	json_decref(body);
	ctx_close(&ctx);
}

static void
collect_scim_token(const struct gh_scim_token *t, void *arg)
{
	json_array_append_new(arg, scim_token_json(t));
}

static void
h_scim_tokens_list(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	json_t *arr;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "scim.write"))
		return;
	arr = json_array();
	err = arr ? gh_scim_token_list(ctx.db, collect_scim_token, arr) :
	    GH_ERR_NOMEM;
	if (err != GH_OK) {
		json_decref(arr);
		respond_err(req, err);
	} else {
		gh_http_respond_json(req, 200, json_pack("{s:o}",
		    "scim_tokens", arr));
	}
	ctx_close(&ctx);
}

static void
h_scim_tokens_delete(void *app, struct gh_http_req *req)
{
	const char *id = gh_http_req_param(req, "id");
	char name[GH_SCIM_TOKEN_NAME_MAX + 1];
	struct api_ctx ctx;
	json_t *changes;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "scim.write"))
		return;
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_scim_token_revoke(ctx.db, id, name);
	if (err == GH_ERR_NOTFOUND) {
		gh_db_rollback(ctx.db);
		gh_http_respond_error(req, 404, "not_found",
		    "No such SCIM token.");
		goto out;
	}
	if (err == GH_OK) {
		changes = json_pack("{s:s}", "name", name);
		err = gh_audit_append(ctx.db, &ctx.actor, "scim_token.revoke",
		    "scim_token", id, changes);
		json_decref(changes);
	}
	if (finish(&ctx, err))
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	ctx_close(&ctx);
}

gh_err
routes_scim_tokens(struct gh_http_router *r)
{
	static const struct gh_http_route_def defs[] = {
		{ "POST", "/o/{org}/api/v1/scim-tokens", h_scim_tokens_create },
		{ "GET", "/o/{org}/api/v1/scim-tokens", h_scim_tokens_list },
		{ "DELETE", "/o/{org}/api/v1/scim-tokens/{id}",
		    h_scim_tokens_delete },
	};

	return gh_http_routes(r, defs, sizeof defs / sizeof *defs);
}
