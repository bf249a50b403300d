/*
 * oidc_device.c: the device authorization grant (RFC 8628) for TVs and
 * CLIs: POST /oidc/device_authorization gives the device a device code and
 * the user a short user code; the user signs in on another device at
 * /oidc/device, enters the code and allows or denies; the device polls the
 * token endpoint with the device code.
 *
 * Untrusted input: the user code typed by people (normalised, 8 letters
 * of a 20-letter alphabet: about 2^34.6, and every try takes from the
 * sign-in rate budgets), device codes and the consent form (session CSRF
 * token). Secrets: device codes (256 random bits, stored as digests).
 */
#include "api/oidc_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define DEVICE_TTL_S 600
#define DEVICE_INTERVAL_S 5

static const char letters[] = "BCDFGHJKLMNPQRSTVWXZ";	/* no vowels */

static gh_err
user_code_new(char out[static OIDC_USER_CODE_LEN + 1])
{
	uint8_t b;
	size_t n = 0;
	gh_err err;

	while (n < OIDC_USER_CODE_LEN) {
		err = gh_rand_bytes(&b, 1);
		if (err != GH_OK)
			return err;
		if (b >= 240)	/* 240 = 12 * 20: no modulo bias */
			continue;
		out[n++] = letters[b % 20];
	}
	out[n] = '\0';
	return GH_OK;
}

bool
oidc_user_code_norm(const char *in, char out[static OIDC_USER_CODE_LEN + 1])
{
	size_t n = 0;

	if (in == NULL || strlen(in) > 32)
		return false;
	for (; *in != '\0'; in++) {
		char c = (char)toupper((unsigned char)*in);

		if (c == '-' || c == ' ')
			continue;
		if (n == OIDC_USER_CODE_LEN || strchr(letters, c) == NULL ||
		    c == '\0')
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	return n == OIDC_USER_CODE_LEN;
}

static void
h_device_authorization(void *app, struct gh_http_req *req)
{
	char device[TOKEN_STR_LEN + 1], code[OIDC_USER_CODE_LEN + 1];
	char iss[400], uri[480], full[520], scope[SCOPE_MAX];
	const char *sc = gh_http_req_form(req, "scope");
	uint8_t dg[GH_SHA256_LEN];
	struct oidc_client c;
	struct api_ctx ctx;
	int64_t now = gh_now_ms();
	gh_err err;

	memset(&c, 0, sizeof c);
	if (!guard_signin_rate(app, req))
		return;
	if (!ctx_open(app, req, &ctx))
		return;
	if (!oidc_client_auth(&ctx, &c))
		goto out;
	if (!oidc_client_has(&c, "grant_types", DEVICE_GRANT)) {
		oauth_error(req, 400, "unauthorized_client",
		    "This client may not use the device grant.");
		goto out;
	}
	if (sc != NULL && strlen(sc) > PARAM_MAX) {
		oauth_error(req, 400, "invalid_scope", "scope is too long.");
		goto out;
	}
	oidc_scope_filter(sc ? sc : "", scope);
	err = oidc_token_new(device, dg);
	if (err == GH_OK)
		err = user_code_new(code);
	if (err == GH_OK)
		err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_db_run(ctx.db, "DELETE FROM oidc_device_codes WHERE "
		    "expires_at <= ?", "i", now);
	if (err == GH_OK)
		err = gh_db_run(ctx.db, "INSERT INTO oidc_device_codes "
		    "(digest, user_code, client_id, scope, state, created_at, "
		    "expires_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)", "bttt"
		    "ii", dg, sizeof dg, code, c.app.id, scope, now,
		    now + (int64_t)DEVICE_TTL_S * 1000);
	if (!finish(&ctx, err))
		goto out;
	oidc_issuer(&ctx, iss, sizeof iss);
	snprintf(uri, sizeof uri, "%s/oidc/device", iss);
	snprintf(full, sizeof full, "%s?user_code=%.4s-%.4s", uri, code,
	    code + 4);
	snprintf(iss, sizeof iss, "%.4s-%.4s", code, code + 4);
	gh_http_respond_json(req, 200, json_pack("{s:s, s:s, s:s, s:s, s:i, "
	    "s:i}", "device_code", device, "user_code", iss,
	    "verification_uri", uri, "verification_uri_complete", full,
	    "expires_in", DEVICE_TTL_S, "interval", DEVICE_INTERVAL_S));
out:
	gh_wipe(device, sizeof device);
	oidc_client_free(&c);
	ctx_close(&ctx);
}

static void
device_page(struct api_ctx *ctx, unsigned status, const char *msg,
    const char *code)
{
	char csrf[GH_TOKEN_LEN + 1];
	struct gh_buf b;

	gh_auth_session_csrf(ctx->session_token, csrf);
	gh_buf_init(&b, 16 * 1024, 0);
	page_open(&b, "Connect a device");
	gh_buf_put_str(&b, "<h1>Connect a device</h1>");
	if (msg != NULL) {
		gh_buf_put_str(&b, "<p class=\"error\" role=\"alert\">");
		put_escaped(&b, msg);
		gh_buf_put_str(&b, "</p>");
	}
	gh_buf_put_str(&b, "<p class=\"note\">Signed in as ");
	put_escaped(&b, ctx->user.username);
	gh_buf_printf(&b, "</p><form method=\"post\" action=\"/o/%s/oidc/"
	    "device\"><input type=\"hidden\" name=\"csrf_token\" value=\"%s\">"
	    "<label for=\"user_code\">Code shown on the device</label>"
	    "<input id=\"user_code\" name=\"user_code\" autocomplete=\"off\" "
	    "required value=\"", ctx->org.slug, csrf);
	put_escaped(&b, code ? code : "");
	gh_buf_put_str(&b, "\"><button type=\"submit\" name=\"decision\" "
	    "value=\"allow\">Allow</button><button type=\"submit\" "
	    "class=\"secondary\" name=\"decision\" value=\"deny\">Deny"
	    "</button></form>");
	gh_wipe(csrf, sizeof csrf);
	page_send(ctx->req, status, &b);
}

static void
device_to_login(struct api_ctx *ctx, const char *code)
{
	struct gh_buf back, loc;
	char norm[OIDC_USER_CODE_LEN + 1];

	gh_buf_init(&back, 256, 0);
	gh_buf_init(&loc, 1024, 0);
	gh_buf_printf(&back, "/o/%s/oidc/device", ctx->org.slug);
	if (oidc_user_code_norm(code, norm))
		gh_buf_printf(&back, "?user_code=%s", norm);
	gh_buf_printf(&loc, "/o/%s/login?return_to=", ctx->org.slug);
	oidc_pct_put(&loc, gh_buf_cstr(&back));
	if (gh_buf_err(&loc) != GH_OK)
		respond_err(ctx->req, GH_ERR_INTERNAL);
	else
		gh_http_redirect(ctx->req, gh_buf_cstr(&loc));
	gh_buf_free(&back);
	gh_buf_free(&loc);
}

static void
h_device_get(void *app, struct gh_http_req *req)
{
	const char *code = gh_http_req_query(req, "user_code");
	struct api_ctx ctx;

	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth_quiet(&ctx))
		device_to_login(&ctx, code);
	else
		device_page(&ctx, 200, NULL, code);
	ctx_close(&ctx);
}

static void
done_page(struct api_ctx *ctx, bool allowed)
{
	struct gh_buf b;

	gh_buf_init(&b, 4096, 0);
	page_open(&b, "Device");
	gh_buf_put_str(&b, allowed ? "<h1>Device connected</h1><p>You can "
	    "return to your device.</p>" : "<h1>Access denied</h1><p>The "
	    "device was not let in.</p>");
	page_send(ctx->req, 200, &b);
}

/* Records the decision on the pending code in the caller's transaction.
 * GH_ERR_NOTFOUND when no pending, unexpired code has that value. An
 * allow by a user not assigned to the app is recorded as a denial, with
 * *refusal_out saying so. */
static gh_err
decide(struct api_ctx *ctx, const char *code, bool allow,
    const char **refusal_out)
{
	char client[GH_ID_LEN + 1], scope[SCOPE_MAX];
	struct gh_stmt *st = NULL;
	const char *amr = ctx->session.mfa_at ? "[\"pwd\",\"mfa\"]" :
	    "[\"pwd\"]";
	bool row, assigned = false;
	json_t *changes;
	gh_err err;

	*refusal_out = NULL;
	err = gh_db_prepare(ctx->db, "SELECT client_id, scope FROM "
	    "oidc_device_codes WHERE user_code = ? AND state = 'pending' AND "
	    "expires_at > ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "ti", code, gh_now_ms());
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && !row)
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK) {
		gh_strlcpy(client, gh_stmt_text(st, 0), sizeof client);
		gh_strlcpy(scope, gh_stmt_text(st, 1), sizeof scope);
	}
	gh_stmt_free(st);
	if (err != GH_OK)
		return err;
	err = gh_access_user_assigned(ctx->db, ctx->user.id, client,
	    &assigned);
	if (err == GH_OK && allow && !assigned) {
		*refusal_out = "You are not assigned to this app.";
		allow = false;
	}
	if (err == GH_OK)
		err = gh_db_run(ctx->db, "UPDATE oidc_device_codes SET state = "
		    "?, user_id = ?, session_id = ?, auth_time = ?, amr = ? "
		    "WHERE user_code = ?", "tttitt", allow ? "approved" :
		    "denied", ctx->user.id, ctx->session.id,
		    ctx->session.created_at / 1000, amr, code);
	if (err == GH_OK && allow) {
		changes = json_pack("{s:s, s:s, s:s}", "client_id", client,
		    "scope", scope, "grant_type", "device_code");
		err = gh_audit_append(ctx->db, &ctx->actor, "oidc.grant",
		    "user", ctx->user.id, changes);
		json_decref(changes);
	}
	return err;
}

static void
h_device_post(void *app, struct gh_http_req *req)
{
	const char *typed = gh_http_req_form(req, "user_code");
	const char *csrf = gh_http_req_form(req, "csrf_token");
	const char *decision = gh_http_req_form(req, "decision");
	char code[OIDC_USER_CODE_LEN + 1];
	const char *refusal = NULL;
	struct api_ctx ctx;
	bool allow;
	gh_err err;

	if (!guard_signin_rate(app, req))
		return;
	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth_quiet(&ctx)) {
		device_to_login(&ctx, typed);
		goto out;
	}
	if (!gh_auth_session_csrf_ok(ctx.session_token, csrf ? csrf : "")) {
		oidc_error_page(&ctx, 403, "The form expired; reload the "
		    "page.");
		goto out;
	}
	if (!oidc_user_code_norm(typed, code)) {
		device_page(&ctx, 400, "Enter the 8 letters the device shows.",
		    typed);
		goto out;
	}
	allow = decision != NULL && strcmp(decision, "allow") == 0;
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = decide(&ctx, code, allow, &refusal);
	if (err == GH_ERR_NOTFOUND) {
		gh_db_rollback(ctx.db);
		device_page(&ctx, 400, "That code is unknown, used or expired.",
		    typed);
		goto out;
	}
	if (!finish(&ctx, err))
		goto out;
	if (refusal != NULL)
		device_page(&ctx, 403, refusal, NULL);
	else
		done_page(&ctx, allow);
out:
	ctx_close(&ctx);
}

void
oidc_grant_device(struct api_ctx *ctx, const struct oidc_client *c,
    struct oidc_issue *is)
{
	const char *tok = gh_http_req_form(ctx->req, "device_code");
	char user[GH_ID_LEN + 1] = "", session[GH_ID_LEN + 1] = "";
	char family[GH_ID_LEN + 1], scope[SCOPE_MAX], amr[64] = "[]";
	const char *bad = NULL, *why = NULL;
	uint8_t dg[GH_SHA256_LEN];
	struct gh_stmt *st = NULL;
	int64_t now = gh_now_ms(), last;
	char state[12];
	json_t *resp = NULL;
	bool row, may = false;
	gh_err err;

	if (tok == NULL || strlen(tok) != TOKEN_STR_LEN) {
		oauth_error(ctx->req, 400, "invalid_request",
		    "A valid device_code is required.");
		return;
	}
	err = oidc_digest_row(ctx, tok, "SELECT client_id, scope, state, "
	    "user_id, session_id, auth_time, amr, expires_at, last_poll_at "
	    "FROM oidc_device_codes WHERE digest = ?", dg, &st, &row);
	if (err != GH_OK)
		goto out;
	if (!row || strcmp(gh_stmt_text(st, 0), c->app.id) != 0) {
		bad = "invalid_grant";
		why = "Unknown device code.";
		goto out;
	}
	gh_strlcpy(scope, gh_stmt_text(st, 1), sizeof scope);
	gh_strlcpy(state, gh_stmt_text(st, 2), sizeof state);
	if (strcmp(state, "approved") == 0) {
		gh_strlcpy(user, gh_stmt_text(st, 3), sizeof user);
		gh_strlcpy(session, gh_stmt_text(st, 4), sizeof session);
		is->auth_time = gh_stmt_int(st, 5);
		gh_strlcpy(amr, gh_stmt_text(st, 6), sizeof amr);
	}
	last = gh_stmt_is_null(st, 8) ? 0 : gh_stmt_int(st, 8);
	if (gh_stmt_int(st, 7) <= now) {
		bad = "expired_token";
		why = "The device code has expired.";
	} else if (strcmp(state, "denied") == 0) {
		bad = "access_denied";
		why = "The user denied access.";
	} else if (strcmp(state, "used") == 0) {
		bad = "invalid_grant";
		why = "The device code was already used.";
	} else if (strcmp(state, "pending") == 0) {
		bad = last != 0 && now - last < DEVICE_INTERVAL_S * 1000 ?
		    "slow_down" : "authorization_pending";
		why = "The user has not decided yet.";
	}
	gh_stmt_free(st);
	st = NULL;
	err = gh_db_run(ctx->db, "UPDATE oidc_device_codes SET last_poll_at = "
	    "?, state = CASE state WHEN 'approved' THEN 'used' ELSE state END "
	    "WHERE digest = ?", "ib", now, dg, sizeof dg);
	if (err != GH_OK || bad != NULL)
		goto out;
	ctx->actor.type = "user";
	ctx->actor.id = user;
	err = oidc_user_may(ctx, user, c->app.id, &may);
	if (err == GH_OK && !may) {
		bad = "access_denied";
		why = "The user may no longer use this app.";
		goto out;
	}
	if (err == GH_OK)
		err = gh_id_new(family);
	is->user_id = user;
	is->scope = scope;
	is->family = family;
	is->session_id = session;
	is->amr = amr;
	is->refresh = oidc_client_has(c, "grant_types", "refresh_token");
	if (err == GH_OK)
		err = oidc_tokens_issue(ctx, is, "device_code", &resp);
out:
	gh_stmt_free(st);
	oidc_token_answer(ctx, err, resp, bad, why);
}

gh_err
routes_oidc_device(struct gh_http_router *r)
{
	static const struct gh_http_route_def defs[] = {
		{ "POST", "/o/{org}/oidc/device_authorization",
		    h_device_authorization },
		{ "GET", "/o/{org}/oidc/device", h_device_get },
		{ "POST", "/o/{org}/oidc/device", h_device_post },
	};

	return gh_http_routes(r, defs, sizeof defs / sizeof defs[0]);
}
