/*
 * notices.c: the notices a user gets about their own account's MFA, and
 * the account's notice feed:
 *   GET  /o/{org}/api/v1/me/notifications
 *   POST /o/{org}/api/v1/me/notifications/read
 */
#include "api/api_int.h"

#include <string.h>

#include "notify/notify.h"

/* Which audited MFA actions owe their user a notice. */
static const struct {
	const char *action;
	const char *kind;
} owed[] = {
	{ "mfa.recovery_code.use", GH_NOTICE_RECOVERY_CODE_USED },
	{ "mfa.reset", GH_NOTICE_MFA_RESET },
	{ "mfa.totp.enrol", GH_NOTICE_FACTOR_ADDED },
	{ "mfa.webauthn.add", GH_NOTICE_FACTOR_ADDED },
	{ "mfa.totp.remove", GH_NOTICE_FACTOR_REMOVED },
	{ "mfa.webauthn.remove", GH_NOTICE_FACTOR_REMOVED },
	{ "webauthn.counter_regression", GH_NOTICE_CLONED_KEY },
};

gh_err
notify_kind(struct api_ctx *ctx, const char *user_id, const char *kind,
    const char *method, const char *ip, const char *ua)
{
	json_t *data;
	gh_err err;

	data = json_pack("{s:s, s:s, s:s%}", "method", method ? method : "",
	    "source_ip", ip ? ip : "", "user_agent", ua ? ua : "",
	    ua ? strnlen(ua, 256) : (size_t)0);
	if (data == NULL)
		return GH_ERR_NOMEM;
	/* Done to the user by someone else (an admin reset): say who. */
	if (ctx->authed && strcmp(ctx->user.id, user_id) != 0)
		json_object_set_new(data, "by", json_string(ctx->user.username));
	err = gh_notify_user(ctx->db, user_id, kind, data);
	json_decref(data);
	if (err == GH_OK)
		ctx->notified = true;
	return err;
}

gh_err
notify_for_action(struct api_ctx *ctx, const char *action,
    const char *user_id, const char *method)
{
	for (size_t i = 0; i < sizeof owed / sizeof owed[0]; i++)
		if (strcmp(owed[i].action, action) == 0)
			return notify_kind(ctx, user_id, owed[i].kind, method,
			    gh_http_req_client_ip(ctx->req),
			    gh_http_req_header(ctx->req, "User-Agent"));
	return GH_OK;
}

static void
h_list(void *app, struct gh_http_req *req)
{
	const char *unread = gh_http_req_query(req, "unread");
	struct api_ctx ctx;
	json_t *list = NULL;
	int64_t limit, count = 0;
	gh_err err;

	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth(&ctx, false))
		goto out;
	if (unread != NULL && strcmp(unread, "true") != 0 &&
	    strcmp(unread, "false") != 0) {
		respond_invalid(req, "unread: must be true or false");
		goto out;
	}
	if (!query_int(req, "limit", 1, GH_NOTIFY_LIST_MAX, 20, &limit))
		goto out;
	err = gh_notify_list(ctx.db, ctx.user.id, unread != NULL &&
	    strcmp(unread, "true") == 0, (int)limit, &list, &count);
	if (err != GH_OK) {
		respond_err(req, err);
		goto out;
	}
	gh_http_respond_json(req, 200, json_pack("{s:o, s:I}",
	    "notifications", list, "unread", (json_int_t)count));
out:
	ctx_close(&ctx);
}

static void
h_read(void *app, struct gh_http_req *req)
{
	static const char *const allowed[] = { "id", NULL };
	const char *id = NULL;
	struct api_ctx ctx;
	json_t *body = NULL;
	int64_t count = 0;
	size_t body_len = 0;
	gh_err err;

	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth(&ctx, false))
		goto out;
	(void)gh_http_req_body(req, &body_len);
	if (body_len > 0) {
		body = body_object(req, allowed);
		if (body == NULL || !member_str(req, body, "id", &id))
			goto out;
	}
	if (id != NULL && !gh_id_valid(id)) {
		respond_err(req, GH_ERR_NOTFOUND);
		goto out;
	}
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_notify_mark_read(ctx.db, ctx.user.id, id, gh_now_ms(),
		    &count);
	if (finish(&ctx, err))
		gh_http_respond_json(req, 200, json_pack("{s:I}", "marked",
		    (json_int_t)count));
out:
	json_decref(body);
	ctx_close(&ctx);
}

gh_err
routes_notices(struct gh_http_router *r)
{
	static const struct gh_http_route_def routes[] = {
		{ "GET", "/o/{org}/api/v1/me/notifications", h_list },
		{ "POST", "/o/{org}/api/v1/me/notifications/read", h_read },
	};

	return gh_http_routes(r, routes, sizeof routes / sizeof *routes);
}
