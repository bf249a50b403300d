/*
 * app.c: the serving context, organisation resolution, caller
 * authentication (session cookie or API token, CSRF), error mapping and
 * JSON body helpers shared by every route.
 * Untrusted input: the {org} slug, cookies, Authorization and X-CSRF-Token
 * headers, JSON bodies. Secrets: session and API tokens (copied into the
 * request context, wiped by ctx_close).
 */
#include "api/api_int.h"
#include "notify/notify.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

gh_err
gh_api_app_new(struct gh_store *store, struct gh_kms *kms,
    const struct gh_app_config *cfg, struct gh_app **out)
{
	struct gh_app *app;
	gh_err err;

	*out = NULL;
	app = calloc(1, sizeof *app);
	if (app == NULL)
		return GH_ERR_NOMEM;
	app->store = store;
	app->kms = kms;
	app->cfg = *cfg;
	err = guard_new(app);
	if (err != GH_OK) {
		free(app);
		return err;
	}
	err = oidc_keycache_new(&app->oidc_keys);
	if (err == GH_OK)
		err = batch_new(store, &app->batch);
	if (err == GH_OK)
		err = gh_identity_org_cache_new(&app->orgs);
	if (err != GH_OK) {
		batch_free(app->batch);
		oidc_keycache_free(app->oidc_keys);
		guard_free(app);
		free(app);
		return err;
	}
	*out = app;
	return GH_OK;
}

void
gh_api_app_set_mailer(struct gh_app *app, struct gh_mailer *mailer)
{
	app->mailer = mailer;
}

void
gh_api_app_free(struct gh_app *app)
{
	if (app != NULL) {
		gh_api_bcl_stop(app);
		guard_free(app);
		oidc_keycache_free(app->oidc_keys);
		batch_free(app->batch);
		gh_identity_org_cache_free(app->orgs);
	}
	free(app);
}

gh_err
gh_api_routes(struct gh_http_router *r)
{
	gh_err err;

	err = routes_health(r);
	if (err == GH_OK)
		err = routes_account(r);
	if (err == GH_OK)
		err = routes_admin(r);
	if (err == GH_OK)
		err = routes_attrs(r);
	if (err == GH_OK)
		err = routes_web(r);
	if (err == GH_OK)
		err = routes_web_mfa(r);
	if (err == GH_OK)
		err = routes_keys(r);
	if (err == GH_OK)
		err = routes_mfa(r);
	if (err == GH_OK)
		err = routes_webauthn(r);
	if (err == GH_OK)
		err = routes_notices(r);
	if (err == GH_OK)
		err = routes_groups(r);
	if (err == GH_OK)
		err = routes_policy(r);
	if (err == GH_OK)
		err = routes_rbac(r);
	if (err == GH_OK)
		err = routes_approval(r);
	if (err == GH_OK)
		err = routes_apps(r);
	if (err == GH_OK)
		err = routes_rules(r);
	if (err == GH_OK)
		err = routes_scim(r);
	if (err == GH_OK)
		err = routes_scim_tokens(r);
	if (err == GH_OK)
		err = routes_oidc(r);
	return err;
}

void
respond_err(struct gh_http_req *req, gh_err err)
{
	switch (err) {
	case GH_OK:
		GH_PANIC("respond_err called without an error");
	case GH_ERR_INVALID:
		gh_http_respond_error(req, 400, "invalid_request",
		    "The request is not valid.");
		break;
	case GH_ERR_NOTFOUND:
		gh_http_respond_error(req, 404, "not_found",
		    "No such object.");
		break;
	case GH_ERR_DENIED:
		gh_http_respond_error(req, 403, "forbidden",
		    "You are not allowed to do this.");
		break;
	case GH_ERR_CONFLICT:
		gh_http_respond_error(req, 409, "conflict",
		    "The object exists already.");
		break;
	case GH_ERR_LIMIT:
		gh_http_respond_error(req, 413, "too_large",
		    "A size limit was exceeded.");
		break;
	case GH_ERR_BUSY:
		if (gh_http_resp_header(req, "Retry-After", "1") != GH_OK)
			GH_LOG_WARN(GH_ERR_INTERNAL, "Retry-After not set");
		gh_http_respond_error(req, 503, "busy",
		    "The database is busy; retry shortly.");
		break;
	case GH_ERR_FULL:
		gh_http_respond_error(req, 507, "storage_full",
		    "The storage is full; nothing was written.");
		break;
	default:
		gh_http_respond_error(req, 500, "internal",
		    "Internal error; see the server log for the request id.");
		break;
	}
}

bool
query_int(struct gh_http_req *req, const char *name, int64_t lo, int64_t hi,
    int64_t def, int64_t *out)
{
	const char *s = gh_http_req_query(req, name);
	char *end;
	long long v;

	*out = def;
	if (s == NULL)
		return true;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (s[0] == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi) {
		respond_invalid(req, "%s: must be an integer from %" PRId64
		    " to %" PRId64, name, lo, hi);
		return false;
	}
	*out = v;
	return true;
}

bool
query_limit(struct gh_http_req *req, int max, int *out)
{
	int64_t v;

	if (!query_int(req, "limit", 1, max, 50, &v))
		return false;
	*out = (int)v;
	return true;
}

void
respond_invalid(struct gh_http_req *req, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	gh_http_respond_error(req, 400, "invalid_request", msg);
}

bool
finish(struct api_ctx *ctx, gh_err err)
{
	if (err == GH_OK)
		err = gh_db_commit(ctx->db);
	if (err == GH_OK)
		return true;
	gh_db_rollback(ctx->db);
	respond_err(ctx->req, err);
	return false;
}

bool
ctx_open(struct gh_app *app, struct gh_http_req *req, struct api_ctx *ctx)
{
	const char *slug = gh_http_req_param(req, "org");
	gh_err err;

	memset(ctx, 0, sizeof *ctx);
	ctx->app = app;
	ctx->req = req;
	/* In memory unless an organisation changed (any process): a
	 * suspension or deletion holds from the next request on. */
	err = gh_identity_org_cache_get(app->orgs, app->store,
	    slug ? slug : "", &ctx->org);
	if (err == GH_OK && strcmp(ctx->org.state, "deleted") == 0)
		err = GH_ERR_NOTFOUND;
	if (err == GH_ERR_NOTFOUND) {
		gh_http_respond_error(req, 404, "org_not_found",
		    "No such organisation.");
		return false;
	}
	if (err != GH_OK) {
		respond_err(req, err);
		return false;
	}
	err = gh_store_tenant(app->store, ctx->org.id, ctx->org.region, false,
	    &ctx->db);
	if (err == GH_ERR_DENIED) {
		/* Its customer key is revoked: the data stays unreadable, and
		 * nothing is served in its place. */
		gh_http_respond_error(req, 503, "org_keys_unavailable",
		    "This organisation's data is locked: its customer key is "
		    "revoked.");
		return false;
	}
	if (err != GH_OK) {
		GH_LOG_ERR(err, "org %s: tenant database unavailable",
		    ctx->org.id);
		respond_err(req, err == GH_ERR_NOTFOUND ? GH_ERR_STORE : err);
		return false;
	}
	ctx->actor.source_ip = gh_http_req_client_ip(req);
	ctx->actor.request_id = gh_http_req_id(req);
	if (strcmp(ctx->org.state, "suspended") == 0) {
		gh_http_respond_error(req, 403, "org_suspended",
		    "This organisation is suspended.");
		ctx_close(ctx);
		return false;
	}
	return true;
}

bool
ctx_open_signin(struct gh_app *app, struct gh_http_req *req,
    struct api_ctx *ctx, const char *username)
{
	const char *ua = gh_http_req_header(req, "User-Agent");
	struct gh_signin_record rec;
	gh_err err;

	if (ctx_open(app, req, ctx))
		return true;
	/* A refused suspended organisation still logs the attempt. */
	if (strcmp(ctx->org.state, "suspended") != 0 ||
	    gh_store_tenant(app->store, ctx->org.id, ctx->org.region, false,
	    &ctx->db) != GH_OK)
		return false;
	memset(&rec, 0, sizeof rec);
	rec.username = username ? username : "";
	rec.source_ip = gh_http_req_client_ip(req);
	rec.user_agent = ua ? ua : "";
	rec.reason = "org_suspended";
	gh_http_metrics_signin(req, "failure");
	err = gh_db_begin(ctx->db);
	if (err == GH_OK)
		err = gh_audit_signin_record(ctx->db, &rec);
	if (err == GH_OK)
		err = gh_db_commit(ctx->db);
	if (err != GH_OK)
		gh_db_rollback(ctx->db);
	ctx_close(ctx);
	return false;
}

void
ctx_close(struct api_ctx *ctx)
{
	/* A notice written by a transaction that rolled back is simply not
	 * found by the mailer. */
	if (ctx->notified)
		gh_mailer_kick(ctx->app->mailer, ctx->org.id);
	ctx->notified = false;
	/* Likewise for logouts queued by a session revocation. */
	if (ctx->sessions_ended)
		oidc_bcl_kick(ctx->app, ctx->org.id);
	ctx->sessions_ended = false;
	gh_rbac_grants_free(&ctx->grants);
	free(ctx->policy);
	ctx->policy = NULL;
	ctx->policy_user[0] = '\0';
	gh_db_release(ctx->db);
	ctx->db = NULL;
	gh_wipe(ctx->session_token, sizeof ctx->session_token);
	gh_wipe(ctx->user.password_hash, sizeof ctx->user.password_hash);
}

static bool
method_is_safe(const char *m)
{
	return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 ||
	    strcmp(m, "OPTIONS") == 0;
}

/* The user's columns after the session's, and for probe_attrs whether
 * the user has any attribute (the primary key's index: one probe). */
#define SESSION_USER_NCOLS 11
#define SESSION_USER_ATTRS_COLUMNS GH_IDENTITY_USER_COLUMNS_U ", EXISTS " \
	"(SELECT 1 FROM user_attributes a WHERE a.user_id = u.id)"

/* What the session check reads of the user (plain bytes: the check may
 * hand back a remembered copy, so the password hash is wiped as soon as it
 * is read: it never stays in the memo, and a handler that needs it reads
 * the user again). */
struct session_user {
	struct gh_user user;
	bool has_attrs;
};

static void
read_session_user(struct gh_stmt *st, int first, void *arg)
{
	struct session_user *su = arg;

	gh_identity_user_from_stmt(st, first, &su->user);
	gh_wipe(su->user.password_hash, sizeof su->user.password_hash);
	su->has_attrs = false;
}

static void
read_session_user_attrs(struct gh_stmt *st, int first, void *arg)
{
	struct session_user *su = arg;

	gh_identity_user_from_stmt(st, first, &su->user);
	gh_wipe(su->user.password_hash, sizeof su->user.password_hash);
	su->has_attrs = gh_stmt_int(st, first + SESSION_USER_NCOLS) != 0;
}

/* Finds the caller; 0 = nobody presented credentials, 1 = ok,
 * -1 = credentials presented but refused, -2 = store failure (err set). */
static int
authenticate(struct api_ctx *ctx, gh_err *err_out)
{
	const char *authz = gh_http_req_header(ctx->req, "Authorization");
	struct session_user su;
	const char *cookie;
	gh_err err;

	*err_out = GH_OK;
	if (authz != NULL) {
		if (strncmp(authz, "Bearer ", 7) != 0)
			return -1;
		err = gh_auth_api_token_check(ctx->db, authz + 7, &ctx->token);
		if (err == GH_ERR_DENIED || err == GH_ERR_INVALID)
			return -1;
		if (err == GH_OK)
			err = gh_identity_user_get(ctx->db, ctx->token.user_id,
			    &ctx->user);
		if (err != GH_OK) {
			*err_out = err;
			return -2;
		}
		ctx->has_attrs = true;
		ctx->actor.type = "api_token";
		ctx->actor.id = ctx->token.id;
		return 1;
	}
	cookie = gh_http_req_cookie(ctx->req, SESSION_COOKIE);
	if (cookie == NULL)
		return 0;
	if (strlen(cookie) != GH_TOKEN_LEN)
		return -1;
	/* The session and its user in one statement (one snapshot). */
	if (ctx->probe_attrs)
		err = gh_auth_session_check_with(ctx->db, cookie,
		    &ctx->app->cfg.session, &ctx->session,
		    SESSION_USER_ATTRS_COLUMNS, read_session_user_attrs, &su,
		    sizeof su);
	else
		err = gh_auth_session_check_with(ctx->db, cookie,
		    &ctx->app->cfg.session, &ctx->session,
		    GH_IDENTITY_USER_COLUMNS_U, read_session_user, &su,
		    sizeof su);
	if (err == GH_OK) {
		ctx->user = su.user;
		ctx->has_attrs = !ctx->probe_attrs || su.has_attrs;
	}
	gh_wipe(su.user.password_hash, sizeof su.user.password_hash);
	if (err == GH_ERR_DENIED || err == GH_ERR_INVALID)
		return -1;
	if (err != GH_OK) {
		*err_out = err;
		return -2;
	}
	gh_strlcpy(ctx->session_token, cookie, sizeof ctx->session_token);
	ctx->via_session = true;
	ctx->actor.type = "user";
	ctx->actor.id = ctx->user.id;
	return 1;
}

bool
ctx_auth_quiet(struct api_ctx *ctx)
{
	gh_err err;

	ctx->authed = authenticate(ctx, &err) == 1 && ctx->via_session;
	return ctx->authed;
}

bool
ctx_auth(struct api_ctx *ctx, bool admin)
{
	const char *csrf;
	gh_err err;
	int rc;

	rc = authenticate(ctx, &err);
	if (rc == -2) {
		respond_err(ctx->req, err);
		return false;
	}
	if (rc != 1) {
		gh_http_respond_error(ctx->req, 401, "unauthenticated",
		    "Sign in or present a valid API token.");
		return false;
	}
	if (ctx->via_session && !method_is_safe(gh_http_req_method(ctx->req))) {
		csrf = gh_http_req_header(ctx->req, "X-CSRF-Token");
		if (csrf == NULL ||
		    !gh_auth_session_csrf_ok(ctx->session_token, csrf)) {
			gh_http_respond_error(ctx->req, 403, "csrf_failed",
			    "Missing or wrong X-CSRF-Token header.");
			return false;
		}
	}
	if (admin && strcmp(ctx->user.role, "owner") != 0 &&
	    strcmp(ctx->user.role, "admin") != 0) {
		gh_http_respond_error(ctx->req, 403, "forbidden",
		    "Only organisation owners and admins may do this.");
		return false;
	}
	ctx->authed = true;
	return true;
}

json_t *
body_object(struct gh_http_req *req, const char *const *allowed)
{
	const char *ct = gh_http_req_header(req, "Content-Type");
	char msg[200];
	const char *key;
	json_t *obj, *v;

	if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0 ||
	    (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' ')) {
		gh_http_respond_error(req, 415, "unsupported_media_type",
		    "The body must be application/json.");
		return NULL;
	}
	if (gh_http_req_json(req, &obj, msg, sizeof msg) != GH_OK) {
		gh_http_respond_error(req, 400, "invalid_json", msg);
		return NULL;
	}
	json_object_foreach(obj, key, v) {
		bool known = false;

		for (size_t i = 0; allowed[i] != NULL; i++)
			if (strcmp(key, allowed[i]) == 0)
				known = true;
		if (!known) {
			char name[65];

			/* The key is client text: bound it in the message. */
			gh_strlcpy(name, key, sizeof name);
			respond_invalid(req, "%s: unknown field", name);
			json_decref(obj);
			return NULL;
		}
	}
	return obj;
}

bool
member_str(struct gh_http_req *req, json_t *obj, const char *key,
    const char **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (v == NULL)
		return true;
	if (!json_is_string(v)) {
		respond_invalid(req, "%s: must be a string", key);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

static const char *const policy_keys[] = { "min_length", "min_classes",
	"min_score", "reject_common", "reject_context", NULL };

gh_err
gh_api_pw_policy_load(struct gh_db *db, struct gh_pw_policy *out)
{
	json_t *j = NULL;
	int common, context;
	gh_err err;

	gh_auth_pw_policy_default(out);
	common = out->reject_common;
	context = out->reject_context;
	err = gh_identity_setting_get(db, "password_policy", &j);
	if (err == GH_ERR_NOTFOUND)
		return GH_OK;
	if (err != GH_OK)
		return err;
	/* Stored values were validated on the way in; unknown keys from a
	 * newer version are ignored. */
	(void)json_unpack(j, "{s?i, s?i, s?i, s?b, s?b}", policy_keys[0],
	    &out->min_length, policy_keys[1], &out->min_classes,
	    policy_keys[2], &out->min_score, policy_keys[3], &common,
	    policy_keys[4], &context);
	out->reject_common = common != 0;
	out->reject_context = context != 0;
	json_decref(j);
	return GH_OK;
}

bool
password_acceptable(struct api_ctx *ctx, const char *pw, const char *username,
    const char *email)
{
	struct gh_pw_context pc = { username, email, ctx->org.slug,
		ctx->org.name };
	struct gh_pw_policy pol;
	const char *code = "invalid";
	char reason[200];
	struct gh_user u;
	json_t *body;
	gh_err err;

	/* An existing user's security policy may set stricter password
	 * rules; a user being created has no groups yet: the org's. */
	err = gh_identity_user_find(ctx->db, username, &u);
	if (err == GH_OK)
		err = pw_policy_for(ctx, u.id, &pol);
	else if (err == GH_ERR_NOTFOUND)
		err = gh_api_pw_policy_load(ctx->db, &pol);
	gh_wipe(&u, sizeof u);
	if (err != GH_OK) {
		respond_err(ctx->req, err);
		return false;
	}
	err = gh_auth_pw_policy_check(&pol, pw, &pc, &code, reason,
	    sizeof reason);
	if (err == GH_OK)
		return true;
	body = json_pack("{s:s, s:s, s:s, s:s}", "error", "weak_password",
	    "reason", code, "message", reason, "request_id",
	    gh_http_req_id(ctx->req));
	gh_http_respond_json(ctx->req, 400, body);
	return false;
}
