/*
 * oidc_logout.c: RP-initiated logout (OpenID Connect RP-Initiated Logout
 * 1.0, the end_session_endpoint) at /o/{org}/oidc/logout: with a valid
 * id_token_hint of the signed-in user, revokes the tokens bound to the
 * session and ends it; without one, asks the user first. Back-channel
 * logout notices are oidc_bcl.c's.
 *
 * Untrusted input: id_token_hint (verified against the org's keys),
 * client_id, post_logout_redirect_uri (only an exact registered value is
 * followed: no open redirector) and state (percent-encoded into it).
 */
#include "api/oidc_int.h"

#include <string.h>

/* The sign-out question, posting to /o/{org}/logout (src/api/web.c). */
static void
logout_confirm(struct api_ctx *ctx)
{
	char csrf[GH_TOKEN_LEN + 1];
	struct gh_buf b;

	gh_auth_session_csrf(ctx->session_token, csrf);
	gh_buf_init(&b, 8192, 0);
	page_open(&b, "Sign out");
	gh_buf_printf(&b, "<h1>Sign out?</h1><p class=\"note\">Signed in as ");
	put_escaped(&b, ctx->user.username);
	gh_buf_printf(&b, "</p><form method=\"post\" action=\"/o/%s/logout\">"
	    "<input type=\"hidden\" name=\"csrf_token\" value=\"%s\">"
	    "<button type=\"submit\">Sign out</button></form>",
	    ctx->org.slug, csrf);
	gh_wipe(csrf, sizeof csrf);
	page_send(ctx->req, 200, &b);
}

static void
h_logout(void *app, struct gh_http_req *req)
{
	const char *hint = gh_http_req_query(req, "id_token_hint");
	const char *post = gh_http_req_query(req,
	    "post_logout_redirect_uri");
	const char *state = gh_http_req_query(req, "state");
	const char *client_id = gh_http_req_query(req, "client_id");
	const char *aud = NULL, *sub = NULL;
	struct oidc_client c;
	struct api_ctx ctx;
	json_t *claims = NULL, *a;
	struct gh_buf b;
	gh_err err;

	memset(&c, 0, sizeof c);
	gh_buf_init(&b, 8192, 0);
	if (!ctx_open(app, req, &ctx))
		return;
	if (hint != NULL) {
		if (oidc_verify(&ctx, hint, NULL, &claims) != GH_OK) {
			oidc_error_page(&ctx, 400, "The id_token_hint is not a "
			    "token of this provider.");
			goto out;
		}
		a = json_object_get(claims, "aud");
		aud = json_is_array(a) ? json_string_value(json_array_get(a,
		    0)) : json_string_value(a);
		sub = json_string_value(json_object_get(claims, "sub"));
		if (client_id != NULL && (aud == NULL ||
		    strcmp(aud, client_id) != 0)) {
			oidc_error_page(&ctx, 400, "client_id does not match "
			    "the id_token_hint.");
			goto out;
		}
		client_id = aud;
	}
	if (post != NULL) {
		err = oidc_client_load(ctx.db, client_id, &c);
		if (err != GH_OK || !oidc_client_has(&c,
		    "post_logout_redirect_uris", post)) {
			oidc_error_page(&ctx, 400, "The "
			    "post_logout_redirect_uri is not registered for "
			    "this client.");
			goto out;
		}
	}
	if (ctx_auth_quiet(&ctx) && hint == NULL) {
		/* Without a hint any page could sign the user out: ask. */
		logout_confirm(&ctx);
		goto out;
	}
	if (ctx.authed && sub != NULL && strcmp(sub, ctx.user.id) == 0) {
		/* Tokens bound to the session end with it. */
		err = gh_db_begin(ctx.db);
		if (err == GH_OK)
			err = gh_db_run(ctx.db, "UPDATE oidc_tokens SET "
			    "revoked_at = ? WHERE session_id = ? AND "
			    "revoked_at IS NULL", "it", gh_now_ms(),
			    ctx.session.id);
		if (err == GH_OK && gh_db_changes(ctx.db) > 0) {
			json_t *ch = json_pack("{s:s}", "reason", "logout");

			err = gh_audit_append(ctx.db, &ctx.actor,
			    "oidc.token.revoke", "session", ctx.session.id, ch);
			json_decref(ch);
		}
		if (err == GH_OK)
			err = gh_db_commit(ctx.db);
		if (err != GH_OK)
			gh_db_rollback(ctx.db);
		if (err == GH_OK)
			err = session_end(&ctx);
		if (err != GH_OK) {
			respond_err(req, err);
			goto out;
		}
	}
	if (post != NULL) {
		gh_buf_put_str(&b, post);
		if (state != NULL) {
			gh_buf_put_str(&b, strchr(post, '?') ? "&" : "?");
			gh_buf_put_str(&b, "state=");
			oidc_pct_put(&b, state);
		}
		if (gh_buf_err(&b) != GH_OK)
			respond_err(req, GH_ERR_INVALID);
		else
			gh_http_redirect(req, gh_buf_cstr(&b));
		goto out;
	}
	page_open(&b, "Signed out");
	gh_buf_printf(&b, "<h1>You are signed out</h1><p><a "
	    "href=\"/o/%s/login\">Sign in again</a></p>", ctx.org.slug);
	page_send(req, 200, &b);
out:
	gh_buf_free(&b);
	json_decref(claims);
	oidc_client_free(&c);
	ctx_close(&ctx);
}

gh_err
routes_oidc_logout(struct gh_http_router *r)
{
	static const struct gh_http_route_def defs[] = {
		{ "GET", "/o/{org}/oidc/logout", h_logout },
	};

	return gh_http_routes(r, defs, sizeof defs / sizeof defs[0]);
}
