/*
 * oidc_grants.c: /me/grants, the third-party apps (OIDC clients that ask
 * for consent) the signed-in user let in: the list, and the revocation of
 * one grant together with every token issued under it.
 *
 * Untrusted input: the client_id path parameter (bound, never parsed).
 */
#include "api/oidc_int.h"

static void
h_me_grants(void *app, struct gh_http_req *req)
{
	struct gh_stmt *st = NULL;
	struct api_ctx ctx;
	json_t *list = NULL;
	char at[25];
	gh_err err;
	bool row;

	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth(&ctx, false))
		goto out;
	list = json_array();
	err = gh_db_prepare(ctx.db, "SELECT g.client_id, a.name, g.scope, "
	    "g.created_at FROM oidc_grants g JOIN apps a ON a.id = "
	    "g.client_id WHERE g.user_id = ? ORDER BY a.name_key", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", ctx.user.id);
	while (err == GH_OK && (err = gh_stmt_step(st, &row)) == GH_OK &&
	    row) {
		gh_time_rfc3339(gh_stmt_int(st, 3), at);
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s}",
		    "client_id", gh_stmt_text(st, 0), "app_name",
		    gh_stmt_text(st, 1), "scope", gh_stmt_text(st, 2),
		    "created_at", at));
	}
	gh_stmt_free(st);
	if (err != GH_OK) {
		respond_err(req, err);
		goto out;
	}
	gh_http_respond_json(req, 200, json_pack("{s:O}", "grants", list));
out:
	json_decref(list);
	ctx_close(&ctx);
}

static void
h_me_grant_delete(void *app, struct gh_http_req *req)
{
	const char *client_id = gh_http_req_param(req, "client_id");
	struct api_ctx ctx;
	json_t *changes;
	int64_t tokens;
	gh_err err;

	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth(&ctx, false))
		goto out;
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_db_run(ctx.db, "DELETE FROM oidc_grants WHERE "
		    "user_id = ? AND client_id = ?", "tt", ctx.user.id,
		    client_id);
	if (err == GH_OK && gh_db_changes(ctx.db) == 0) {
		gh_db_rollback(ctx.db);
		gh_http_respond_error(req, 404, "grant_not_found",
		    "You have not granted this app access.");
		goto out;
	}
	/* Without the grant, nothing issued under it may live on. */
	if (err == GH_OK)
		err = gh_db_run(ctx.db, "UPDATE oidc_tokens SET revoked_at = ? "
		    "WHERE user_id = ? AND client_id = ? AND revoked_at IS "
		    "NULL", "itt", gh_now_ms(), ctx.user.id, client_id);
	if (err == GH_OK) {
		tokens = gh_db_changes(ctx.db);
		changes = json_pack("{s:s, s:I}", "client_id", client_id,
		    "tokens", (json_int_t)tokens);
		err = gh_audit_append(ctx.db, &ctx.actor, "oidc.grant.revoke",
		    "user", ctx.user.id, changes);
		json_decref(changes);
	}
	if (finish(&ctx, err))
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	ctx_close(&ctx);
}

gh_err
routes_oidc_grants(struct gh_http_router *r)
{
	static const struct gh_http_route_def defs[] = {
		{ "GET", "/o/{org}/api/v1/me/grants", h_me_grants },
		{ "DELETE", "/o/{org}/api/v1/me/grants/{client_id}",
		    h_me_grant_delete },
	};

	return gh_http_routes(r, defs, sizeof defs / sizeof defs[0]);
}
