/*
 * oidc.c: the OpenID Connect provider's protocol endpoints under
 * /o/{org}/oidc/: authorize (code flow with PKCE, consent for third-party
 * apps), token (authorization_code, refresh_token, client_credentials),
 * userinfo, introspect (RFC 7662) and revoke (RFC 7009). RP-initiated
 * logout is in oidc_logout.c, /me/grants in oidc_grants.c.
 *
 * Untrusted input: every query and form parameter, bearer tokens, codes,
 * refresh tokens and PKCE verifiers. A bad client_id or redirect_uri is an
 * error page, never a redirect (no open redirector). Secrets: codes,
 * refresh tokens and opaque access tokens (256 random bits, returned once,
 * stored only as SHA-256 digests, looked up by digest), client secrets
 * (oidc_clients.c) and signing keys (oidc_keys.c).
 */
#include "api/oidc_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static const char *const known_scopes[] = { "openid", "profile", "email",
    "groups", "offline_access", NULL };

/* True when the space-separated scope holds word. */
bool
oidc_scope_has(const char *scope, const char *word)
{
	size_t n = strlen(word);
	const char *p = scope;

	while ((p = strstr(p, word)) != NULL) {
		if ((p == scope || p[-1] == ' ') && (p[n] == ' ' ||
		    p[n] == '\0'))
			return true;
		p += n;
	}
	return false;
}

/* Keeps the known scope words of in, in order, without repeats. */
void
oidc_scope_filter(const char *in, char out[static SCOPE_MAX])
{
	out[0] = '\0';
	for (const char *const *k = known_scopes; *k != NULL; k++) {
		if (!oidc_scope_has(in, *k))
			continue;
		if (out[0] != '\0')
			strcat(out, " ");
		strcat(out, *k);
	}
}

/* A fresh token (base64url of 256 random bits) and its digest. */
gh_err
oidc_token_new(char out[static TOKEN_STR_LEN + 1],
    uint8_t dg[static GH_SHA256_LEN])
{
	uint8_t raw[OIDC_TOKEN_BYTES];
	gh_err err = gh_rand_bytes(raw, sizeof raw);

	if (err != GH_OK)
		return err;
	gh_b64url_encode(raw, sizeof raw, out);
	gh_wipe(raw, sizeof raw);
	gh_sha256(out, TOKEN_STR_LEN, dg);
	return GH_OK;
}

gh_err
oidc_digest_row(struct api_ctx *ctx, const char *token, const char *sql,
    uint8_t dg[static GH_SHA256_LEN], struct gh_stmt **st_out, bool *row_out)
{
	gh_err err;

	*st_out = NULL;
	*row_out = false;
	gh_sha256(token, TOKEN_STR_LEN, dg);
	err = gh_db_begin(ctx->db);
	if (err == GH_OK)
		err = gh_db_prepare(ctx->db, sql, st_out);
	if (err == GH_OK)
		err = gh_stmt_bind(*st_out, "b", dg, GH_SHA256_LEN);
	if (err == GH_OK)
		err = gh_stmt_step(*st_out, row_out);
	return err;
}

/* Appends s percent-encoded (all but the unreserved characters). */
void
oidc_pct_put(struct gh_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			gh_buf_put(b, s, 1);
		} else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };

			gh_buf_put(b, e, 3);
		}
	}
}

static void
no_store(struct gh_http_req *req)
{
	/* The server sends Cache-Control: no-store on every answer. */
	if (gh_http_resp_header(req, "Pragma", "no-cache") != GH_OK)
		GH_LOG_WARN(GH_ERR_INTERNAL, "Pragma not set");
}

void
oidc_error_page(struct api_ctx *ctx, unsigned status, const char *msg)
{
	struct gh_buf b;

	gh_buf_init(&b, 16 * 1024, 0);
	page_open(&b, "Sign-in error");
	gh_buf_put_str(&b, "<h1>This sign-in request cannot go on</h1>"
	    "<p class=\"error\" role=\"alert\">");
	put_escaped(&b, msg);
	gh_buf_put_str(&b, "</p>");
	page_send(ctx->req, status, &b);
}

/* ---- authorization requests ---------------------------------------------- */

struct authz {
	const char *client_id, *redirect_uri, *response_type, *scope_in;
	const char *state, *nonce, *challenge, *method, *prompt, *max_age;
	const char *auth_after, *acr_values;
	char scope[SCOPE_MAX];
};

typedef const char *(*param_fn)(struct gh_http_req *, const char *);

static const char *
from_query(struct gh_http_req *req, const char *name)
{
	return gh_http_req_query(req, name);
}

static const char *
from_form(struct gh_http_req *req, const char *name)
{
	return gh_http_req_form(req, name);
}

static void
authz_read(struct gh_http_req *req, param_fn get, struct authz *r)
{
	memset(r, 0, sizeof *r);
	r->client_id = get(req, "client_id");
	r->redirect_uri = get(req, "redirect_uri");
	r->response_type = get(req, "response_type");
	r->scope_in = get(req, "scope");
	r->state = get(req, "state");
	r->nonce = get(req, "nonce");
	r->challenge = get(req, "code_challenge");
	r->method = get(req, "code_challenge_method");
	r->prompt = get(req, "prompt");
	r->max_age = get(req, "max_age");
	r->auth_after = get(req, "auth_after");
	r->acr_values = get(req, "acr_values");
	oidc_scope_filter(r->scope_in ? r->scope_in : "", r->scope);
}

static void
param_put(struct gh_buf *b, const char *name, const char *v, bool *first)
{
	if (v == NULL)
		return;
	gh_buf_put_str(b, *first ? "?" : "&");
	*first = false;
	gh_buf_put_str(b, name);
	gh_buf_put_str(b, "=");
	oidc_pct_put(b, v);
}

/* The authorize URL (a path) of r; with fresh, prompt and max_age give
 * way to auth_after=now: the sign-in just asked for satisfies them. */
static void
authz_url(const struct api_ctx *ctx, const struct authz *r, bool fresh,
    struct gh_buf *b)
{
	char now[24];
	bool first = true;

	gh_buf_printf(b, "/o/%s/oidc/authorize", ctx->org.slug);
	param_put(b, "client_id", r->client_id, &first);
	param_put(b, "redirect_uri", r->redirect_uri, &first);
	param_put(b, "response_type", r->response_type, &first);
	param_put(b, "scope", r->scope_in, &first);
	param_put(b, "state", r->state, &first);
	param_put(b, "nonce", r->nonce, &first);
	param_put(b, "code_challenge", r->challenge, &first);
	param_put(b, "code_challenge_method", r->method, &first);
	param_put(b, "acr_values", r->acr_values, &first);
	if (fresh) {
		snprintf(now, sizeof now, "%lld",
		    (long long)(gh_now_ms() / 1000));
		param_put(b, "auth_after", now, &first);
	} else {
		param_put(b, "prompt", r->prompt, &first);
		param_put(b, "max_age", r->max_age, &first);
		param_put(b, "auth_after", r->auth_after, &first);
	}
}

/* Sends the user agent back to the client with an error (RFC 6749
 * 4.1.2.1); only after the redirect_uri was found registered. */
static void
redirect_error(struct api_ctx *ctx, const struct authz *r, const char *code,
    const char *desc)
{
	struct gh_buf b;

	gh_buf_init(&b, 8192, 0);
	gh_buf_put_str(&b, r->redirect_uri);
	gh_buf_put_str(&b, strchr(r->redirect_uri, '?') ? "&" : "?");
	gh_buf_put_str(&b, "error=");
	gh_buf_put_str(&b, code);
	gh_buf_put_str(&b, "&error_description=");
	oidc_pct_put(&b, desc);
	if (r->state != NULL) {
		gh_buf_put_str(&b, "&state=");
		oidc_pct_put(&b, r->state);
	}
	if (gh_buf_err(&b) != GH_OK)
		respond_err(ctx->req, GH_ERR_INTERNAL);
	else
		gh_http_redirect(ctx->req, gh_buf_cstr(&b));
	gh_buf_free(&b);
}

static bool
b64url_chars(const char *s, size_t lo, size_t hi)
{
	size_t n = strlen(s);

	if (n < lo || n > hi)
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		    (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
		    *s == '.' || *s == '~'))
			return false;
	return true;
}

/* Checks what may be answered by redirect; NULL when fine, else the
 * error code, with *desc. */
static const char *
authz_check(const struct authz *r, const struct oidc_client *c,
    const char **desc)
{
	if (r->response_type == NULL || strcmp(r->response_type, "code") != 0) {
		*desc = "Only response_type=code is supported.";
		return "unsupported_response_type";
	}
	if (!oidc_client_has(c, "grant_types", "authorization_code")) {
		*desc = "This client may not use the code flow.";
		return "unauthorized_client";
	}
	if ((r->state && strlen(r->state) > PARAM_MAX) ||
	    (r->nonce && strlen(r->nonce) > PARAM_MAX) ||
	    (r->scope_in && strlen(r->scope_in) > PARAM_MAX)) {
		*desc = "A parameter is too long.";
		return "invalid_request";
	}
	if (r->challenge != NULL) {
		if (r->method == NULL || strcmp(r->method, "S256") != 0) {
			*desc = "code_challenge_method must be S256.";
			return "invalid_request";
		}
		if (strlen(r->challenge) != 43 ||
		    !b64url_chars(r->challenge, 43, 43)) {
			*desc = "code_challenge must be a base64url SHA-256.";
			return "invalid_request";
		}
	} else if (json_is_true(json_object_get(c->s, "pkce_required"))) {
		*desc = "This client must use PKCE (S256).";
		return "invalid_request";
	}
	if (r->prompt != NULL && strcmp(r->prompt, "none") != 0 &&
	    strcmp(r->prompt, "login") != 0 &&
	    strcmp(r->prompt, "consent") != 0) {
		*desc = "Unsupported prompt value.";
		return "invalid_request";
	}
	if (r->max_age != NULL && (strlen(r->max_age) == 0 ||
	    strlen(r->max_age) > 9 ||
	    strspn(r->max_age, "0123456789") != strlen(r->max_age))) {
		*desc = "max_age must be a number of seconds.";
		return "invalid_request";
	}
	if (r->acr_values != NULL && strlen(r->acr_values) > PARAM_MAX) {
		*desc = "acr_values is too long.";
		return "invalid_request";
	}
	if (r->auth_after != NULL && (strlen(r->auth_after) == 0 ||
	    strlen(r->auth_after) > 12 ||
	    strspn(r->auth_after, "0123456789") != strlen(r->auth_after))) {
		*desc = "auth_after must be a time in seconds.";
		return "invalid_request";
	}
	return NULL;
}

/* True when the session's sign-in is recent enough for r. */
static bool
auth_fresh(const struct api_ctx *ctx, const struct authz *r)
{
	int64_t auth_time = ctx->session.created_at / 1000;
	int64_t now = gh_now_ms() / 1000;

	if (r->auth_after != NULL &&
	    auth_time < strtoll(r->auth_after, NULL, 10))
		return false;
	if (r->auth_after == NULL && r->prompt != NULL &&
	    strcmp(r->prompt, "login") == 0)
		return false;
	if (r->max_age != NULL && now - auth_time > strtoll(r->max_age, NULL,
	    10))
		return false;
	return true;
}

/* Sends the browser to the sign-in form, coming back to r after it. */
static void
to_login(struct api_ctx *ctx, const struct authz *r, bool fresh)
{
	struct gh_buf back, loc;

	gh_buf_init(&back, RETURN_TO_MAX, 0);
	gh_buf_init(&loc, 3 * RETURN_TO_MAX, 0);
	authz_url(ctx, r, fresh, &back);
	gh_buf_printf(&loc, "/o/%s/login?return_to=", ctx->org.slug);
	oidc_pct_put(&loc, gh_buf_cstr(&back));
	if (gh_buf_err(&back) != GH_OK || gh_buf_err(&loc) != GH_OK)
		oidc_error_page(ctx, 400, "The request is too long.");
	else
		gh_http_redirect(ctx->req, gh_buf_cstr(&loc));
	gh_buf_free(&back);
	gh_buf_free(&loc);
}

/* True when the user granted the client every scope word of r. */
static gh_err
grant_covers(struct api_ctx *ctx, const struct authz *r, bool *out)
{
	char word[32];
	struct gh_stmt *st = NULL;
	const char *p, *sp, *granted;
	gh_err err;
	bool row;

	*out = false;
	err = gh_db_prepare(ctx->db, "SELECT scope FROM oidc_grants WHERE "
	    "user_id = ? AND client_id = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "tt", ctx->user.id, r->client_id);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err != GH_OK || !row)
		goto out;
	granted = gh_stmt_text(st, 0);
	*out = true;
	for (p = r->scope; *p != '\0'; p = *sp ? sp + 1 : sp) {
		sp = strchr(p, ' ');
		if (sp == NULL)
			sp = p + strlen(p);
		snprintf(word, sizeof word, "%.*s", (int)(sp - p), p);
		if (!oidc_scope_has(granted, word))
			*out = false;
	}
out:
	gh_stmt_free(st);
	return err;
}

static void
hidden(struct gh_buf *b, const char *name, const char *v)
{
	if (v == NULL)
		return;
	gh_buf_printf(b, "<input type=\"hidden\" name=\"%s\" value=\"", name);
	put_escaped(b, v);
	gh_buf_put_str(b, "\">");
}

static void
consent_page(struct api_ctx *ctx, const struct authz *r,
    const struct oidc_client *c)
{
	char csrf[GH_TOKEN_LEN + 1];
	struct gh_buf b;

	gh_auth_session_csrf(ctx->session_token, csrf);
	gh_buf_init(&b, 64 * 1024, 0);
	page_open(&b, "Allow access");
	gh_buf_put_str(&b, "<h1>Allow ");
	put_escaped(&b, c->app.name);
	gh_buf_put_str(&b, " to use your account?</h1><p>It asks for: <code>");
	put_escaped(&b, r->scope[0] ? r->scope : "(nothing)");
	gh_buf_put_str(&b, "</code></p><p class=\"note\">Signed in as ");
	put_escaped(&b, ctx->user.username);
	gh_buf_printf(&b, "</p><form method=\"post\" "
	    "action=\"/o/%s/oidc/authorize\">", ctx->org.slug);
	hidden(&b, "csrf_token", csrf);
	hidden(&b, "client_id", r->client_id);
	hidden(&b, "redirect_uri", r->redirect_uri);
	hidden(&b, "response_type", r->response_type);
	hidden(&b, "scope", r->scope_in);
	hidden(&b, "state", r->state);
	hidden(&b, "nonce", r->nonce);
	hidden(&b, "code_challenge", r->challenge);
	hidden(&b, "code_challenge_method", r->method);
	gh_buf_put_str(&b, "<button type=\"submit\" name=\"decision\" "
	    "value=\"allow\">Allow</button><button type=\"submit\" "
	    "class=\"secondary\" name=\"decision\" value=\"deny\">Deny"
	    "</button></form>");
	gh_wipe(csrf, sizeof csrf);
	page_send(ctx->req, 200, &b);
}

/* Issues the code for r and redirects to the client with it. */
static void
code_redirect(struct api_ctx *ctx, const struct authz *r, bool grant)
{
	char code[TOKEN_STR_LEN + 1], family[GH_ID_LEN + 1];
	uint8_t dg[GH_SHA256_LEN];
	const char *amr = ctx->session.mfa_at ? "[\"pwd\",\"mfa\"]" :
	    "[\"pwd\"]";
	json_t *changes;
	struct gh_buf loc;
	gh_err err;

	gh_buf_init(&loc, 8192, GH_BUF_SECRET);
	err = oidc_token_new(code, dg);
	if (err == GH_OK)
		err = gh_id_new_ordered(family);
	if (err == GH_OK)
		err = gh_db_begin(ctx->db);
	if (err != GH_OK) {
		respond_err(ctx->req, err);
		goto out;
	}
	if (grant) {
		err = gh_db_run(ctx->db, "INSERT INTO oidc_grants (user_id, "
		    "client_id, scope, created_at) VALUES (?, ?, ?, ?) ON "
		    "CONFLICT (user_id, client_id) DO UPDATE SET scope = "
		    "excluded.scope, created_at = excluded.created_at", "ttti",
		    ctx->user.id, r->client_id, r->scope, gh_now_ms());
		if (err == GH_OK) {
			changes = json_pack("{s:s, s:s}", "client_id",
			    r->client_id, "scope", r->scope);
			err = gh_audit_append(ctx->db, &ctx->actor,
			    "oidc.grant", "user", ctx->user.id, changes);
			json_decref(changes);
		}
	}
	if (err == GH_OK)
		err = gh_db_run(ctx->db, "INSERT INTO oidc_codes (digest, "
		    "client_id, redirect_uri, code_challenge, nonce, scope, "
		    "user_id, session_id, auth_time, amr, family, expires_at) "
		    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		    "btttttttitti", dg, sizeof dg, r->client_id,
		    r->redirect_uri, r->challenge, r->nonce, r->scope,
		    ctx->user.id, ctx->session.id,
		    ctx->session.created_at / 1000, amr, family,
		    gh_now_ms() + OIDC_CODE_TTL_MS);
	if (!finish(ctx, err))
		goto out;
	gh_buf_put_str(&loc, r->redirect_uri);
	gh_buf_put_str(&loc, strchr(r->redirect_uri, '?') ? "&" : "?");
	gh_buf_put_str(&loc, "code=");
	gh_buf_put_str(&loc, code);
	if (r->state != NULL) {
		gh_buf_put_str(&loc, "&state=");
		oidc_pct_put(&loc, r->state);
	}
	if (gh_buf_err(&loc) != GH_OK)
		respond_err(ctx->req, GH_ERR_INTERNAL);
	else
		gh_http_redirect(ctx->req, gh_buf_cstr(&loc));
out:
	gh_wipe(code, sizeof code);
	gh_buf_free(&loc);
}

/* Whether the signed-in session's second factor still counts for a
 * step-up (acr_values=mfa): the session was made with one, less than the
 * user's security-policy reauth_interval_s ago when that is set. */
static gh_err
mfa_fresh(struct api_ctx *ctx, bool *fresh_out)
{
	struct gh_mfa_policy pol;
	gh_err err;

	*fresh_out = false;
	if (ctx->session.mfa_at == 0)
		return GH_OK;
	err = mfa_policy_for(ctx, ctx->user.id, &pol);
	if (err == GH_OK)
		*fresh_out = pol.reauth_interval_s <= 0 || gh_now_ms() -
		    ctx->session.mfa_at < pol.reauth_interval_s * 1000;
	return err;
}

static void
authorize(void *app, struct gh_http_req *req, param_fn get, bool post)
{
	const char *code, *desc = NULL, *decision;
	struct oidc_client c;
	struct api_ctx ctx;
	struct authz r;
	bool covered = false, assigned = false, fresh = false;
	gh_err err;

	memset(&c, 0, sizeof c);
	if (!ctx_open(app, req, &ctx))
		return;
	authz_read(req, get, &r);
	err = oidc_client_load(ctx.db, r.client_id, &c);
	if (err == GH_ERR_NOTFOUND || (err == GH_OK &&
	    strcmp(c.app.state, "active") != 0)) {
		oidc_error_page(&ctx, 400, "Unknown or disabled client_id.");
		goto out;
	}
	if (err != GH_OK) {
		respond_err(req, err);
		goto out;
	}
	if (!oidc_client_has(&c, "redirect_uris", r.redirect_uri)) {
		oidc_error_page(&ctx, 400, "The redirect_uri is not "
		    "registered for this client.");
		goto out;
	}
	if ((code = authz_check(&r, &c, &desc)) != NULL) {
		redirect_error(&ctx, &r, code, desc);
		goto out;
	}
	if (!ctx_auth_quiet(&ctx) || !auth_fresh(&ctx, &r)) {
		if (r.prompt != NULL && strcmp(r.prompt, "none") == 0) {
			redirect_error(&ctx, &r, "login_required",
			    "The user is not signed in.");
		} else if (ctx.authed) {
			/* prompt=login or max_age: sign in again. */
			err = session_end(&ctx);
			if (err != GH_OK)
				respond_err(req, err);
			else
				to_login(&ctx, &r, true);
		} else {
			to_login(&ctx, &r, false);
		}
		goto out;
	}
	if (r.acr_values != NULL && oidc_scope_has(r.acr_values, "mfa") &&
	    (err = mfa_fresh(&ctx, &fresh)) == GH_OK && !fresh) {
		/* Step-up: one fresh sign-in (which asks for the second
		 * factor of users who have one); still without it, refuse. */
		if (r.auth_after != NULL || (r.prompt != NULL &&
		    strcmp(r.prompt, "none") == 0)) {
			redirect_error(&ctx, &r,
			    "unmet_authentication_requirements",
			    "This app needs a sign-in with a second factor.");
		} else if ((err = session_end(&ctx)) != GH_OK) {
			respond_err(req, err);
		} else {
			to_login(&ctx, &r, true);
		}
		goto out;
	}
	if (err != GH_OK) {
		respond_err(req, err);
		goto out;
	}
	err = gh_access_user_assigned(ctx.db, ctx.user.id, c.app.id,
	    &assigned);
	if (err != GH_OK) {
		respond_err(req, err);
		goto out;
	}
	if (!assigned || strcmp(ctx.user.state, "active") != 0) {
		redirect_error(&ctx, &r, "access_denied",
		    "You are not assigned to this app.");
		goto out;
	}
	if (post) {
		decision = get(req, "decision");
		if (!gh_auth_session_csrf_ok(ctx.session_token,
		    get(req, "csrf_token") ? get(req, "csrf_token") : "")) {
			oidc_error_page(&ctx, 403, "The form expired; start "
			    "the sign-in again from the app.");
		} else if (c.app.first_party || (decision != NULL &&
		    strcmp(decision, "allow") == 0)) {
			code_redirect(&ctx, &r, !c.app.first_party);
		} else {
			redirect_error(&ctx, &r, "access_denied",
			    "The user denied access.");
		}
		goto out;
	}
	if (!c.app.first_party) {
		err = grant_covers(&ctx, &r, &covered);
		if (err != GH_OK) {
			respond_err(req, err);
			goto out;
		}
		if (r.prompt != NULL && strcmp(r.prompt, "consent") == 0)
			covered = false;
		if (!covered && r.prompt != NULL &&
		    strcmp(r.prompt, "none") == 0) {
			redirect_error(&ctx, &r, "consent_required",
			    "The user has not granted access yet.");
			goto out;
		}
		if (!covered) {
			consent_page(&ctx, &r, &c);
			goto out;
		}
	}
	code_redirect(&ctx, &r, false);
out:
	oidc_client_free(&c);
	ctx_close(&ctx);
}

static void
h_authorize_get(void *app, struct gh_http_req *req)
{
	authorize(app, req, from_query, false);
}

static void
h_authorize_post(void *app, struct gh_http_req *req)
{
	authorize(app, req, from_form, true);
}

/* ---- tokens -------------------------------------------------------------- */


/* Whether the client's claim settings cfg (NULL: none) let member key
 * (groups, roles) in: absent means yes. */
static bool
claim_on(json_t *cfg, const char *key)
{
	return !json_is_false(json_object_get(cfg, key));
}

/* Adds the attribute claims of cfg ({claim: attribute}) that user_id has
 * a value for. Attributes classified sensitive are never read, even when
 * reclassified after the client was configured. */
static gh_err
attr_claims(struct api_ctx *ctx, const char *user_id, json_t *cfg,
    json_t *claims)
{
	json_t *map = json_object_get(cfg, "attributes"), *vals = NULL, *v;
	const char *claim;
	gh_err err;

	if (json_object_size(map) == 0)
		return GH_OK;
	err = gh_identity_attr_values_json(ctx->db, ctx->app->kms, user_id,
	    GH_ATTR_PERSONAL, &vals);
	if (err != GH_OK)
		return err;
	json_object_foreach(map, claim, v) {
		json_t *val = json_object_get(vals,
		    json_string_value(v) ? json_string_value(v) : "");

		if (val != NULL && !json_is_null(val))
			json_object_set(claims, claim, val);
	}
	json_decref(vals);
	return GH_OK;
}

static gh_err
user_claims(struct api_ctx *ctx, const char *user_id, const char *scope,
    const char *client_id, json_t *cfg, json_t *claims)
{
	struct gh_stmt *st = NULL;
	struct gh_user u;
	json_t *groups, *roles = NULL;
	gh_err err;
	bool row;

	err = gh_identity_user_get(ctx->db, user_id, &u);
	if (err != GH_OK)
		return err;
	if (oidc_scope_has(scope, "profile")) {
		json_object_set_new(claims, "name", json_string(
		    u.display_name[0] ? u.display_name : u.username));
		json_object_set_new(claims, "preferred_username",
		    json_string(u.username));
	}
	if (oidc_scope_has(scope, "email") && u.email[0] != '\0')
		json_object_set_new(claims, "email", json_string(u.email));
	err = attr_claims(ctx, user_id, cfg, claims);
	if (err != GH_OK || !oidc_scope_has(scope, "groups"))
		goto out;
	if (!claim_on(cfg, "groups"))
		goto roles;
	groups = json_array();
	json_object_set_new(claims, "groups", groups);
	err = gh_db_prepare(ctx->db, "SELECT g.name FROM groups g JOIN "
	    "group_members m ON m.group_id = g.id WHERE m.user_id = ? "
	    "ORDER BY g.name_key", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", user_id);
	while (err == GH_OK && (err = gh_stmt_step(st, &row)) == GH_OK && row)
		json_array_append_new(groups, json_string(gh_stmt_text(st,
		    0)));
	gh_stmt_free(st);
roles:
	if (err == GH_OK && claim_on(cfg, "roles"))
		err = gh_access_user_app_roles(ctx->db, user_id, client_id,
		    &roles);
	if (err == GH_OK && roles != NULL)
		json_object_set_new(claims, "roles", roles);
out:
	gh_wipe(&u, sizeof u);
	return err;
}

static gh_err
sign_into(struct api_ctx *ctx, const struct oidc_issue *is, const char *typ,
    json_t *claims, json_t *resp, const char *member)
{
	char *jws = NULL;
	gh_err err;

	err = gh_jose_sign(is->key, is->kid, typ, claims, &jws);
	if (err == GH_OK)
		json_object_set_new(resp, member, json_string(jws));
	free(jws);
	return err;
}

/* The token row of an access token, decided before it is stored. */
struct access_row {
	char id[GH_ID_LEN + 1];		/* the row, and the JWT's jti */
	uint8_t dg[GH_SHA256_LEN];	/* opaque tokens: their digest */
	bool jwt;
	int64_t now;			/* ms */
	int64_t ttl;			/* s */
};

/* Signs the claims of an RFC 9068 access token (written directly, as
 * json_dumps would: a tenth of the signing cost through jansson) into
 * resp's access_token. */
static gh_err
access_claims_sign(const struct oidc_issue *is, const char *iss,
    const struct access_row *row, json_t *resp)
{
	struct gh_buf b;
	char num[24], *jws = NULL;
	gh_err err;

	gh_buf_init(&b, GH_JOSE_MAX_LEN, 0);
	gh_buf_put_str(&b, "{\"iss\":");
	gh_json_put_str(&b, iss);
	gh_buf_put_str(&b, ",\"sub\":");
	gh_json_put_str(&b, is->user_id ? is->user_id : is->c->app.id);
	gh_buf_put_str(&b, ",\"aud\":");
	gh_json_put_str(&b, is->c->app.id);
	gh_buf_put_str(&b, ",\"client_id\":");
	gh_json_put_str(&b, is->c->app.id);
	snprintf(num, sizeof num, "%" PRId64, row->now / 1000);
	gh_buf_put_str(&b, ",\"iat\":");
	gh_buf_put_str(&b, num);
	snprintf(num, sizeof num, "%" PRId64, row->now / 1000 + row->ttl);
	gh_buf_put_str(&b, ",\"exp\":");
	gh_buf_put_str(&b, num);
	gh_buf_put_str(&b, ",\"jti\":");
	gh_json_put_str(&b, row->id);
	gh_buf_put_str(&b, ",\"scope\":");
	gh_json_put_str(&b, is->scope);
	if (is->user_id != NULL) {
		snprintf(num, sizeof num, "%" PRId64, (int64_t)is->auth_time);
		gh_buf_put_str(&b, ",\"auth_time\":");
		gh_buf_put_str(&b, num);
	}
	gh_buf_put_str(&b, "}");
	err = gh_buf_err(&b);
	if (err == GH_OK)
		err = gh_jose_sign_payload(is->key, is->kid, "at+jwt",
		    (const char *)b.data, b.len, &jws);
	if (err == GH_OK && json_object_set_new(resp, "access_token",
	    json_string(jws)) != 0)
		err = GH_ERR_NOMEM;
	free(jws);
	gh_buf_free(&b);
	return err;
}

/* Makes the access token of is into resp (signed, for a JWT) and the row
 * that stands for it; stores nothing. */
static gh_err
access_make(struct api_ctx *ctx, const struct oidc_issue *is, const char *iss,
    json_t *resp, struct access_row *row)
{
	char tok[TOKEN_STR_LEN + 1];
	gh_err err;

	(void)ctx;
	memset(row, 0, sizeof *row);
	row->now = gh_now_ms();
	row->ttl = oidc_client_int(is->c, "access_token_lifetime_s");
	row->jwt = strcmp(oidc_client_str(is->c, "access_token_format"),
	    "jwt") == 0;
	err = gh_id_new_ordered(row->id);
	if (err == GH_OK && !row->jwt)
		err = oidc_token_new(tok, row->dg);
	if (err != GH_OK)
		goto out;
	if (!row->jwt) {
		json_object_set_new(resp, "access_token", json_string(tok));
	} else {
		err = access_claims_sign(is, iss, row, resp);	/* RFC 9068 */
	}
	json_object_set_new(resp, "token_type", json_string("Bearer"));
	json_object_set_new(resp, "expires_in", json_integer(row->ttl));
	json_object_set_new(resp, "scope", json_string(is->scope));
out:
	gh_wipe(tok, sizeof tok);
	return err;
}

/* Stores the row of an access token in the caller's transaction. */
static gh_err
access_store(struct gh_db *db, const struct oidc_issue *is,
    const struct access_row *row)
{
	return gh_db_run(db, "INSERT INTO oidc_tokens (id, kind, "
	    "digest, client_id, user_id, session_id, scope, family, "
	    "auth_time, amr, created_at, expires_at) VALUES (?, 'access', ?, "
	    "?, ?, ?, ?, ?, ?, ?, ?, ?)", "tbtttttitii", row->id,
	    row->jwt ? NULL : row->dg, row->jwt ? 0 : sizeof row->dg,
	    is->c->app.id, is->user_id, is->session_id, is->scope, is->family,
	    is->auth_time, is->amr, row->now, row->now + row->ttl * 1000);
}

static gh_err
access_issue(struct api_ctx *ctx, const struct oidc_issue *is, const char *iss,
    json_t *resp)
{
	struct access_row row;
	gh_err err;

	err = access_make(ctx, is, iss, resp, &row);
	if (err == GH_OK)
		err = access_store(ctx->db, is, &row);
	return err;
}

static gh_err
refresh_issue(struct api_ctx *ctx, const struct oidc_issue *is, json_t *resp)
{
	int64_t now = gh_now_ms(), ttl = oidc_client_int(is->c,
	    "refresh_token_lifetime_s");
	char id[GH_ID_LEN + 1], tok[TOKEN_STR_LEN + 1];
	uint8_t dg[GH_SHA256_LEN];
	gh_err err;

	err = gh_id_new_ordered(id);
	if (err == GH_OK)
		err = oidc_token_new(tok, dg);
	if (err == GH_OK)
		err = gh_db_run(ctx->db, "INSERT INTO oidc_tokens (id, kind, "
		    "digest, client_id, user_id, session_id, scope, family, "
		    "auth_time, amr, created_at, expires_at) VALUES (?, "
		    "'refresh', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "tbtttttitii",
		    id, dg, sizeof dg, is->c->app.id, is->user_id,
		    is->session_id, is->scope, is->family, is->auth_time,
		    is->amr, now, now + ttl * 1000);
	if (err == GH_OK)
		json_object_set_new(resp, "refresh_token", json_string(tok));
	gh_wipe(tok, sizeof tok);
	return err;
}

static gh_err
id_issue(struct api_ctx *ctx, const struct oidc_issue *is, const char *iss,
    json_t *resp)
{
	int64_t now = gh_now_ms() / 1000, ttl = oidc_client_int(is->c,
	    "id_token_lifetime_s");
	json_t *claims;
	gh_err err;

	claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "iss", iss,
	    "sub", is->user_id, "aud", is->c->app.id, "azp", is->c->app.id,
	    "iat", (json_int_t)now, "exp", (json_int_t)(now + ttl),
	    "auth_time", (json_int_t)is->auth_time);
	if (claims == NULL)
		return GH_ERR_NOMEM;
	if (is->nonce != NULL)
		json_object_set_new(claims, "nonce", json_string(is->nonce));
	/* The session's public id (never its token): what back-channel
	 * logout tokens name (src/api/oidc_bcl.c). */
	if (is->session_id != NULL)
		json_object_set_new(claims, "sid",
		    json_string(is->session_id));
	json_object_set_new(claims, "acr", json_string(strstr(is->amr,
	    "\"mfa\"") ? "mfa" : "pwd"));
	json_object_set_new(claims, "amr", json_loads(is->amr, 0, NULL));
	err = user_claims(ctx, is->user_id, is->scope, is->c->app.id,
	    json_object_get(is->c->s, "claims"), claims);
	if (err == GH_OK)
		err = sign_into(ctx, is, "JWT", claims, resp, "id_token");
	json_decref(claims);
	return err;
}

/* The oidc.token.issue event of is, in the caller's transaction. */
static gh_err
issue_audit(struct gh_db *db, const struct gh_audit_actor *actor,
    const struct oidc_issue *is, const char *grant_type)
{
	json_t *changes;
	gh_err err;

	changes = json_pack("{s:s, s:s, s:s, s:s}", "client_id",
	    is->c->app.id, "grant_type", grant_type, "scope", is->scope,
	    "family", is->family);
	if (changes == NULL)
		return GH_ERR_NOMEM;
	err = gh_audit_append(db, actor, "oidc.token.issue",
	    is->user_id ? "user" : "app", is->user_id ? is->user_id :
	    is->c->app.id, changes);
	json_decref(changes);
	return err;
}

/* Issues the tokens of is into a new response in the caller's
 * transaction, audited as oidc.token.issue. */
gh_err
oidc_tokens_issue(struct api_ctx *ctx, const struct oidc_issue *is,
    const char *grant_type, json_t **resp_out)
{
	char iss[400];
	json_t *resp = json_object();
	gh_err err;

	oidc_issuer(ctx, iss, sizeof iss);
	err = access_issue(ctx, is, iss, resp);
	if (err == GH_OK && is->user_id != NULL &&
	    oidc_scope_has(is->scope, "openid"))
		err = id_issue(ctx, is, iss, resp);
	if (err == GH_OK && is->refresh)
		err = refresh_issue(ctx, is, resp);
	if (err == GH_OK)
		err = issue_audit(ctx->db, &ctx->actor, is, grant_type);
	if (err != GH_OK) {
		json_decref(resp);
		return err;
	}
	*resp_out = resp;
	return GH_OK;
}

/* Revokes everything of family in the caller's transaction, audited. */
static gh_err
family_revoke(struct api_ctx *ctx, const char *family, const char *reason)
{
	json_t *changes;
	gh_err err;

	err = gh_db_run(ctx->db, "UPDATE oidc_tokens SET revoked_at = ? WHERE "
	    "family = ? AND revoked_at IS NULL", "it", gh_now_ms(), family);
	if (err == GH_OK) {
		changes = json_pack("{s:s, s:I}", "reason", reason, "tokens",
		    (json_int_t)gh_db_changes(ctx->db));
		err = gh_audit_append(ctx->db, &ctx->actor, "oidc.token.revoke",
		    "oidc_family", family, changes);
		json_decref(changes);
	}
	return err;
}

/* The user behind a grant still may use the client. */
gh_err
oidc_user_may(struct api_ctx *ctx, const char *user_id, const char *client_id,
    bool *out)
{
	struct gh_user u;
	gh_err err;

	*out = false;
	err = gh_identity_user_get(ctx->db, user_id, &u);
	if (err == GH_ERR_NOTFOUND)
		return GH_OK;
	if (err == GH_OK && strcmp(u.state, "active") == 0)
		err = gh_access_user_assigned(ctx->db, user_id, client_id, out);
	gh_wipe(&u, sizeof u);
	return err;
}

/* Answers a finished token request: commits, then sends resp or the
 * OAuth error (code != NULL: the transaction is committed too, so that
 * revocations on reuse stick). */
void
oidc_token_answer(struct api_ctx *ctx, gh_err err, json_t *resp,
    const char *code, const char *desc)
{
	if (!finish(ctx, err)) {
		json_decref(resp);
		return;
	}
	no_store(ctx->req);
	if (code != NULL) {
		json_decref(resp);
		oauth_error(ctx->req, 400, code, desc);
		return;
	}
	gh_http_respond_json(ctx->req, 200, resp);
}

static bool
pkce_ok(const char *challenge, const char *verifier)
{
	uint8_t dg[GH_SHA256_LEN];
	char enc[TOKEN_STR_LEN + 1];

	if (challenge == NULL)
		return verifier == NULL;	/* no downgrade either way */
	if (verifier == NULL || !b64url_chars(verifier, 43, 128))
		return false;
	gh_sha256(verifier, strlen(verifier), dg);
	gh_b64url_encode(dg, sizeof dg, enc);
	return strlen(challenge) == TOKEN_STR_LEN &&
	    gh_ct_eq(enc, challenge, TOKEN_STR_LEN);
}

static void
grant_code(struct api_ctx *ctx, const struct oidc_client *c,
    struct oidc_issue *is)
{
	const char *code = gh_http_req_form(ctx->req, "code");
	const char *uri = gh_http_req_form(ctx->req, "redirect_uri");
	const char *verifier = gh_http_req_form(ctx->req, "code_verifier");
	char user[GH_ID_LEN + 1], session[GH_ID_LEN + 1], family[GH_ID_LEN + 1];
	char scope[SCOPE_MAX], amr[64], nonce[PARAM_MAX + 1];
	uint8_t dg[GH_SHA256_LEN];
	struct gh_stmt *st = NULL;
	const char *bad = NULL, *why = NULL;
	json_t *resp = NULL;
	bool row, may = false, has_nonce;
	gh_err err;

	if (code == NULL || strlen(code) != TOKEN_STR_LEN || uri == NULL) {
		oauth_error(ctx->req, 400, "invalid_request",
		    "code and redirect_uri are required.");
		return;
	}
	err = oidc_digest_row(ctx, code, "SELECT client_id, redirect_uri, "
	    "code_challenge, nonce, scope, user_id, session_id, auth_time, "
	    "amr, family, expires_at, used_at FROM oidc_codes WHERE digest = ?",
	    dg, &st, &row);
	if (err != GH_OK)
		goto out;
	if (!row || strcmp(gh_stmt_text(st, 0), c->app.id) != 0) {
		bad = "invalid_grant";
		why = "Unknown code.";
		goto out;
	}
	gh_strlcpy(family, gh_stmt_text(st, 9), sizeof family);
	gh_strlcpy(user, gh_stmt_text(st, 5), sizeof user);
	ctx->actor.type = "user";
	ctx->actor.id = user;
	if (!gh_stmt_is_null(st, 11)) {
		/* A replayed code: whoever holds it is not the client alone;
		 * everything the first exchange issued goes. */
		bad = "invalid_grant";
		why = "The code was already used.";
		gh_stmt_free(st);
		st = NULL;
		err = family_revoke(ctx, family, "code_reuse");
		goto out;
	}
	if (gh_stmt_int(st, 10) <= gh_now_ms()) {
		bad = "invalid_grant";
		why = "The code has expired.";
	} else if (strcmp(gh_stmt_text(st, 1), uri) != 0) {
		bad = "invalid_grant";
		why = "redirect_uri differs from the authorization request.";
	} else if (!pkce_ok(gh_stmt_is_null(st, 2) ? NULL :
	    gh_stmt_text(st, 2), verifier)) {
		bad = "invalid_grant";
		why = "PKCE verification failed.";
	}
	has_nonce = !gh_stmt_is_null(st, 3);
	gh_strlcpy(nonce, has_nonce ? gh_stmt_text(st, 3) : "", sizeof nonce);
	gh_strlcpy(scope, gh_stmt_text(st, 4), sizeof scope);
	gh_strlcpy(session, gh_stmt_text(st, 6), sizeof session);
	is->auth_time = gh_stmt_int(st, 7);
	gh_strlcpy(amr, gh_stmt_text(st, 8), sizeof amr);
	gh_stmt_free(st);
	st = NULL;
	/* One use only, even when this one fails. */
	err = gh_db_run(ctx->db, "UPDATE oidc_codes SET used_at = ? WHERE "
	    "digest = ?", "ib", gh_now_ms(), dg, sizeof dg);
	if (err != GH_OK || bad != NULL)
		goto out;
	err = oidc_user_may(ctx, user, c->app.id, &may);
	if (err == GH_OK && !may) {
		bad = "invalid_grant";
		why = "The user may no longer use this app.";
		goto out;
	}
	is->user_id = user;
	is->scope = scope;
	is->family = family;
	is->session_id = session;
	is->nonce = has_nonce ? nonce : NULL;
	is->amr = amr;
	is->refresh = oidc_client_has(c, "grant_types", "refresh_token");
	if (err == GH_OK)
		err = oidc_tokens_issue(ctx, is, "authorization_code", &resp);
out:
	gh_stmt_free(st);
	oidc_token_answer(ctx, err, resp, bad, why);
}

static void
grant_refresh(struct api_ctx *ctx, const struct oidc_client *c,
    struct oidc_issue *is)
{
	const char *tok = gh_http_req_form(ctx->req, "refresh_token");
	char user[GH_ID_LEN + 1], session[GH_ID_LEN + 1], family[GH_ID_LEN + 1];
	char id[GH_ID_LEN + 1], scope[SCOPE_MAX], amr[64];
	uint8_t dg[GH_SHA256_LEN];
	struct gh_stmt *st = NULL;
	const char *bad = NULL, *why = NULL;
	json_t *resp = NULL;
	bool row, may = false;
	gh_err err;

	if (tok == NULL || strlen(tok) != TOKEN_STR_LEN) {
		oauth_error(ctx->req, 400, tok ? "invalid_grant" :
		    "invalid_request", "A valid refresh_token is required.");
		return;
	}
	err = oidc_digest_row(ctx, tok, "SELECT id, client_id, user_id, "
	    "session_id, scope, family, auth_time, amr, expires_at, used_at, "
	    "revoked_at FROM oidc_tokens WHERE digest = ? AND kind = 'refresh'",
	    dg, &st, &row);
	if (err != GH_OK)
		goto out;
	if (!row || strcmp(gh_stmt_text(st, 1), c->app.id) != 0) {
		bad = "invalid_grant";
		why = "Unknown refresh token.";
		goto out;
	}
	gh_strlcpy(id, gh_stmt_text(st, 0), sizeof id);
	gh_strlcpy(user, gh_stmt_text(st, 2), sizeof user);
	ctx->actor.type = "user";
	ctx->actor.id = user;
	gh_strlcpy(session, gh_stmt_text(st, 3), sizeof session);
	gh_strlcpy(scope, gh_stmt_text(st, 4), sizeof scope);
	gh_strlcpy(family, gh_stmt_text(st, 5), sizeof family);
	is->auth_time = gh_stmt_int(st, 6);
	gh_strlcpy(amr, gh_stmt_text(st, 7), sizeof amr);
	if (!gh_stmt_is_null(st, 10)) {
		bad = "invalid_grant";
		why = "The refresh token was revoked.";
	} else if (!gh_stmt_is_null(st, 9)) {
		/* An old token of the family came back: stolen or replayed;
		 * the whole family goes. */
		bad = "invalid_grant";
		why = "The refresh token was already used.";
		gh_stmt_free(st);
		st = NULL;
		err = family_revoke(ctx, family, "refresh_reuse");
		goto out;
	} else if (gh_stmt_int(st, 8) <= gh_now_ms()) {
		bad = "invalid_grant";
		why = "The refresh token has expired.";
	}
	gh_stmt_free(st);
	st = NULL;
	if (bad != NULL)
		goto out;
	err = gh_db_run(ctx->db, "UPDATE oidc_tokens SET used_at = ? WHERE "
	    "id = ?", "it", gh_now_ms(), id);
	if (err == GH_OK)
		err = oidc_user_may(ctx, user, c->app.id, &may);
	if (err == GH_OK && !may) {
		bad = "invalid_grant";
		why = "The user may no longer use this app.";
		goto out;
	}
	is->user_id = user;
	is->scope = scope;
	is->family = family;
	is->session_id = session;
	is->amr = amr;
	is->refresh = true;
	if (err == GH_OK)
		err = oidc_tokens_issue(ctx, is, "refresh_token", &resp);
out:
	gh_stmt_free(st);
	oidc_token_answer(ctx, err, resp, bad, why);
}

/*
 * A client credentials grant, parked (batch.c): the handler authenticates
 * the client, decides the row and signs the token, then parks the
 * connection with everything the writes need; the writer thread stores
 * the row and its audit event, group-committed with other requests', and
 * only after the commit sends the token (cc_done). Signing before the
 * commit keeps the signature off the writer thread; the token never
 * leaves the process before its row is durable, and is dropped unsent
 * when the commit fails.
 */
struct cc_job {
	struct oidc_client c;		/* app.id only */
	struct oidc_issue is;
	struct access_row row;
	char scope[PARAM_MAX + 1];
	char family[GH_ID_LEN + 1];
	char ip[64];
	char request_id[GH_ID_LEN + 1];
	struct gh_audit_actor actor;
	char *body;			/* the answer (JSON), token included */
	size_t body_len;
};

static void
cc_job_free(struct cc_job *j)
{
	if (j == NULL)
		return;
	if (j->body != NULL)
		gh_wipe(j->body, j->body_len);
	free(j->body);
	gh_wipe(j, sizeof *j);
	free(j);
}

static gh_err
cc_write(struct gh_db *db, void *arg)
{
	struct cc_job *j = arg;
	gh_err err;

	err = access_store(db, &j->is, &j->row);
	if (err == GH_OK)
		err = issue_audit(db, &j->actor, &j->is, "client_credentials");
	return err;
}

static void
cc_done(struct gh_http_req *req, void *arg, gh_err err)
{
	struct cc_job *j = arg;

	if (err != GH_OK) {
		/* The server's failure, whatever the store said (a constraint
		 * is not the client's doing here): 500, or 503/507. */
		respond_err(req, err == GH_ERR_BUSY || err == GH_ERR_FULL ?
		    err : GH_ERR_STORE);
	} else {
		no_store(req);
		gh_http_respond(req, 200, "application/json", j->body,
		    j->body_len);
	}
	cc_job_free(j);
}

/* True when s needs no escaping in a JSON string. */
static bool
json_plain(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e ||
		    *s == '"' || *s == '\\')
			return false;
	return true;
}

/* Appends n bytes of s at *p. */
static void
put(char **p, const char *s, size_t n)
{
	memcpy(*p, s, n);
	*p += n;
}

/* The text of the token response resp (made by access_make): written
 * out directly, since its strings (a JWS or a base64url token, and a
 * scope of [A-Za-z0-9 .:_-/]) need no escaping; jansson otherwise.
 * Sized first, so no copy of the token is left behind by growth; copied
 * rather than formatted (snprintf twice over a JWS was a tenth of the
 * handler's own work). */
static gh_err
cc_body(json_t *resp, char **out, size_t *len_out)
{
	static const char a[] = "{\"access_token\":\"",
	    b[] = "\",\"token_type\":\"Bearer\",\"expires_in\":",
	    c[] = ",\"scope\":\"", d[] = "\"}";
	const char *tok = json_string_value(json_object_get(resp,
	    "access_token"));
	const char *scope = json_string_value(json_object_get(resp, "scope"));
	json_int_t ttl = json_integer_value(json_object_get(resp,
	    "expires_in"));
	char num[24], *p;
	size_t tl, sl, nl;
	int n;

	if (tok == NULL || scope == NULL || !json_plain(tok) ||
	    !json_plain(scope)) {
		*out = json_dumps(resp, JSON_COMPACT);
		*len_out = *out != NULL ? strlen(*out) : 0;
		return *out != NULL ? GH_OK : GH_ERR_NOMEM;
	}
	n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, ttl);
	if (n < 0 || (size_t)n >= sizeof num)
		return GH_ERR_INTERNAL;
	tl = strlen(tok);
	sl = strlen(scope);
	nl = (size_t)n;
	*len_out = sizeof a - 1 + tl + sizeof b - 1 + nl + sizeof c - 1 + sl +
	    sizeof d - 1;
	if ((*out = malloc(*len_out + 1)) == NULL)
		return GH_ERR_NOMEM;
	p = *out;
	put(&p, a, sizeof a - 1);
	put(&p, tok, tl);
	put(&p, b, sizeof b - 1);
	put(&p, num, nl);
	put(&p, c, sizeof c - 1);
	put(&p, scope, sl);
	put(&p, d, sizeof d - 1);
	*p = '\0';
	return GH_OK;
}

/* The job of a client credentials grant for c, scope: its row decided and
 * its token signed into j->body. */
static gh_err
cc_job_make(struct api_ctx *ctx, const struct oidc_client *c,
    const struct oidc_issue *is0, const char *scope, struct cc_job **out)
{
	const char *ip = gh_http_req_client_ip(ctx->req);
	char iss[400];
	struct oidc_issue is = *is0;
	struct cc_job *j;
	json_t *resp = NULL;
	gh_err err;

	*out = NULL;
	j = calloc(1, sizeof *j);
	if (j == NULL)
		return GH_ERR_NOMEM;
	gh_strlcpy(j->c.app.id, c->app.id, sizeof j->c.app.id);
	gh_strlcpy(j->scope, scope, sizeof j->scope);
	gh_strlcpy(j->ip, ip != NULL ? ip : "", sizeof j->ip);
	gh_strlcpy(j->request_id, gh_http_req_id(ctx->req),
	    sizeof j->request_id);
	j->actor.type = "system";
	j->actor.source_ip = ip != NULL ? j->ip : NULL;
	j->actor.request_id = j->request_id;
	err = gh_id_new_ordered(j->family);
	is.scope = j->scope;
	is.family = j->family;
	is.amr = "[]";
	oidc_issuer(ctx, iss, sizeof iss);
	if (err == GH_OK && (resp = json_object()) == NULL)
		err = GH_ERR_NOMEM;
	/* Signed with the full client (its settings); the job keeps only
	 * what the writes need. */
	if (err == GH_OK)
		err = access_make(ctx, &is, iss, resp, &j->row);
	if (err == GH_OK)
		err = cc_body(resp, &j->body, &j->body_len);
	json_decref(resp);
	is.c = &j->c;
	is.key = NULL;
	is.kid = NULL;
	j->is = is;
	if (err != GH_OK) {
		cc_job_free(j);
		return err;
	}
	*out = j;
	return GH_OK;
}

static void
grant_client(struct api_ctx *ctx, const struct oidc_client *c,
    struct oidc_issue *is)
{
	const char *scope = gh_http_req_form(ctx->req, "scope");
	struct cc_job *j = NULL;
	gh_err err;

	if (strcmp(oidc_client_str(c, "client_type"), "confidential") != 0) {
		oauth_error(ctx->req, 400, "unauthorized_client",
		    "Only confidential clients may use client_credentials.");
		return;
	}
	if (scope == NULL)
		scope = "";
	if (strlen(scope) > PARAM_MAX || strspn(scope,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	    " .:_-/") != strlen(scope)) {
		oauth_error(ctx->req, 400, "invalid_scope",
		    "scope has characters outside [A-Za-z0-9 .:_-/].");
		return;
	}
	err = cc_job_make(ctx, c, is, scope, &j);
	if (err != GH_OK) {
		respond_err(ctx->req, err);
		return;
	}
	if (!batch_park(ctx, cc_write, cc_done, j)) {
		cc_job_free(j);
		if (gh_http_resp_header(ctx->req, "Retry-After", "1") != GH_OK)
			GH_LOG_WARN(GH_ERR_INTERNAL, "Retry-After not set");
		oauth_error(ctx->req, 503, "temporarily_unavailable",
		    "Too many token requests in flight; retry shortly.");
	}
}

static void
h_token(void *app, struct gh_http_req *req)
{
	const char *grant;
	char kid[OIDC_KID_LEN + 1];
	struct oidc_client c;
	enum gh_jose_alg alg;
	struct api_ctx ctx;
	struct oidc_issue is;
	gh_err err;

	memset(&c, 0, sizeof c);
	memset(&is, 0, sizeof is);
	if (!guard_signin_rate(app, req))
		return;
	if (!ctx_open(app, req, &ctx))
		return;
	ctx.actor.type = "system";	/* the user, once the grant names one */
	if (!oidc_client_auth(&ctx, &c))
		goto out;
	grant = gh_http_req_form(req, "grant_type");
	if (grant == NULL) {
		oauth_error(req, 400, "invalid_request",
		    "grant_type is required.");
		goto out;
	}
	if (strcmp(grant, "authorization_code") != 0 &&
	    strcmp(grant, "refresh_token") != 0 &&
	    strcmp(grant, "client_credentials") != 0 &&
	    strcmp(grant, DEVICE_GRANT) != 0) {
		oauth_error(req, 400, "unsupported_grant_type",
		    "Supported: authorization_code, refresh_token, "
		    "client_credentials, " DEVICE_GRANT ".");
		goto out;
	}
	if (!oidc_client_has(&c, "grant_types", grant)) {
		oauth_error(req, 400, "unauthorized_client",
		    "This client may not use this grant type.");
		goto out;
	}
	if (gh_jose_alg_parse(oidc_client_str(&c,
	    "id_token_signed_response_alg"), &alg) != GH_OK)
		alg = GH_JOSE_ES256;
	err = oidc_signer(&ctx, alg, &is.key, kid);
	if (err != GH_OK) {
		respond_err(req, err);
		goto out;
	}
	is.kid = kid;
	is.c = &c;
	if (strcmp(grant, "authorization_code") == 0)
		grant_code(&ctx, &c, &is);
	else if (strcmp(grant, "refresh_token") == 0)
		grant_refresh(&ctx, &c, &is);
	else if (strcmp(grant, DEVICE_GRANT) == 0)
		oidc_grant_device(&ctx, &c, &is);
	else
		grant_client(&ctx, &c, &is);
out:
	gh_jose_key_free(is.key);
	oidc_client_free(&c);
	ctx_close(&ctx);
}

/* ---- presented tokens ---------------------------------------------------- */

struct tok {
	char id[GH_ID_LEN + 1];
	char kind[8];
	char client_id[GH_ID_LEN + 1];
	char user_id[GH_ID_LEN + 1];	/* "" for client credentials */
	char family[GH_ID_LEN + 1];
	char scope[PARAM_MAX + 1];
	int64_t iat, exp;		/* seconds */
	bool active;
};

/* Finds a token we issued: a JWT access token by its verified jti, else
 * an opaque one by digest. GH_ERR_NOTFOUND when not ours (or tampered). */
static gh_err
tok_find(struct api_ctx *ctx, const char *token, struct tok *t)
{
	struct gh_stmt *st = NULL;
	uint8_t dg[GH_SHA256_LEN];
	json_t *hdr = NULL, *claims = NULL;
	const char *typ, *jti, *iss;
	char want_iss[400];
	gh_err err;
	bool row, jwt = strchr(token, '.') != NULL;

	memset(t, 0, sizeof *t);
	if (jwt) {
		if (oidc_verify(ctx, token, &hdr, &claims) != GH_OK)
			return GH_ERR_NOTFOUND;
		oidc_issuer(ctx, want_iss, sizeof want_iss);
		typ = json_string_value(json_object_get(hdr, "typ"));
		jti = json_string_value(json_object_get(claims, "jti"));
		iss = json_string_value(json_object_get(claims, "iss"));
		if (typ == NULL || strcmp(typ, "at+jwt") != 0 || jti == NULL ||
		    !gh_id_valid(jti) || iss == NULL ||
		    strcmp(iss, want_iss) != 0) {
			err = GH_ERR_NOTFOUND;
			goto out;
		}
		err = gh_db_prepare(ctx->db, "SELECT id, kind, client_id, "
		    "user_id, family, scope, created_at, expires_at, used_at, "
		    "revoked_at FROM oidc_tokens WHERE id = ? AND kind = "
		    "'access' AND digest IS NULL", &st);
		if (err == GH_OK)
			err = gh_stmt_bind(st, "t", jti);
	} else {
		if (strlen(token) != TOKEN_STR_LEN)
			return GH_ERR_NOTFOUND;
		gh_sha256(token, TOKEN_STR_LEN, dg);
		err = gh_db_prepare(ctx->db, "SELECT id, kind, client_id, "
		    "user_id, family, scope, created_at, expires_at, used_at, "
		    "revoked_at FROM oidc_tokens WHERE digest = ?", &st);
		if (err == GH_OK)
			err = gh_stmt_bind(st, "b", dg, sizeof dg);
	}
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && !row)
		err = GH_ERR_NOTFOUND;
	if (err != GH_OK)
		goto out;
	gh_strlcpy(t->id, gh_stmt_text(st, 0), sizeof t->id);
	gh_strlcpy(t->kind, gh_stmt_text(st, 1), sizeof t->kind);
	gh_strlcpy(t->client_id, gh_stmt_text(st, 2), sizeof t->client_id);
	if (!gh_stmt_is_null(st, 3))
		gh_strlcpy(t->user_id, gh_stmt_text(st, 3), sizeof t->user_id);
	gh_strlcpy(t->family, gh_stmt_text(st, 4), sizeof t->family);
	gh_strlcpy(t->scope, gh_stmt_text(st, 5), sizeof t->scope);
	t->iat = gh_stmt_int(st, 6) / 1000;
	t->exp = gh_stmt_int(st, 7) / 1000;
	t->active = gh_stmt_int(st, 7) > gh_now_ms() &&
	    gh_stmt_is_null(st, 8) && gh_stmt_is_null(st, 9);
out:
	gh_stmt_free(st);
	json_decref(hdr);
	json_decref(claims);
	return err;
}

static void
bearer_fail(struct gh_http_req *req, const char *desc)
{
	if (gh_http_resp_header(req, "WWW-Authenticate",
	    "Bearer error=\"invalid_token\"") != GH_OK)
		GH_LOG_WARN(GH_ERR_INTERNAL, "WWW-Authenticate not set");
	oauth_error(req, 401, "invalid_token", desc);
}

static void
h_userinfo(void *app, struct gh_http_req *req)
{
	const char *h = gh_http_req_header(req, "Authorization");
	struct oidc_client c;
	struct api_ctx ctx;
	struct tok t;
	json_t *claims;
	bool may = false;
	gh_err err;

	memset(&c, 0, sizeof c);
	if (!ctx_open(app, req, &ctx))
		return;
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0) {
		bearer_fail(req, "A Bearer access token is required.");
		goto out;
	}
	err = tok_find(&ctx, h + 7, &t);
	if (err != GH_OK && err != GH_ERR_NOTFOUND) {
		respond_err(req, err);
		goto out;
	}
	if (err == GH_ERR_NOTFOUND || !t.active ||
	    strcmp(t.kind, "access") != 0 || t.user_id[0] == '\0' ||
	    !oidc_scope_has(t.scope, "openid")) {
		bearer_fail(req, "The access token is invalid, expired or "
		    "revoked, or lacks the openid scope.");
		goto out;
	}
	err = oidc_user_may(&ctx, t.user_id, t.client_id, &may);
	if (err == GH_OK && !may) {
		bearer_fail(req, "The user may no longer use this app.");
		goto out;
	}
	claims = json_pack("{s:s}", "sub", t.user_id);
	if (err == GH_OK)
		err = oidc_client_load(ctx.db, t.client_id, &c);
	if (err == GH_ERR_NOTFOUND) {
		json_decref(claims);
		bearer_fail(req, "The client of this token is gone.");
		goto out;
	}
	if (err == GH_OK)
		err = user_claims(&ctx, t.user_id, t.scope, t.client_id,
		    json_object_get(c.s, "claims"), claims);
	oidc_client_free(&c);
	if (err != GH_OK) {
		json_decref(claims);
		respond_err(req, err);
	} else {
		no_store(req);
		gh_http_respond_json(req, 200, claims);
	}
out:
	ctx_close(&ctx);
}

/* The answer about the active token t (RFC 7662), written directly in
 * the order and form json_dumps gave it. */
static void
introspect_answer(struct gh_http_req *req, const struct tok *t,
    const char *iss)
{
	struct gh_buf b;
	char num[24];

	gh_buf_init(&b, 4096, 0);
	gh_buf_put_str(&b, "{\"active\":true,\"scope\":");
	gh_json_put_str(&b, t->scope);
	gh_buf_put_str(&b, ",\"client_id\":");
	gh_json_put_str(&b, t->client_id);
	gh_buf_put_str(&b, strcmp(t->kind, "refresh") == 0 ?
	    ",\"token_type\":\"refresh_token\"" :
	    ",\"token_type\":\"Bearer\"");
	snprintf(num, sizeof num, "%" PRId64, t->exp);
	gh_buf_put_str(&b, ",\"exp\":");
	gh_buf_put_str(&b, num);
	snprintf(num, sizeof num, "%" PRId64, t->iat);
	gh_buf_put_str(&b, ",\"iat\":");
	gh_buf_put_str(&b, num);
	gh_buf_put_str(&b, ",\"iss\":");
	gh_json_put_str(&b, iss);
	gh_buf_put_str(&b, ",\"aud\":");
	gh_json_put_str(&b, t->client_id);
	gh_buf_put_str(&b, ",\"sub\":");
	gh_json_put_str(&b, t->user_id[0] ? t->user_id : t->client_id);
	gh_buf_put_str(&b, "}");
	if (gh_buf_err(&b) != GH_OK)
		respond_err(req, gh_buf_err(&b));
	else
		gh_http_respond(req, 200, "application/json", b.data, b.len);
	gh_buf_free(&b);
}

static void
h_introspect(void *app, struct gh_http_req *req)
{
	const char *token = gh_http_req_form(req, "token");
	struct oidc_client c;
	struct api_ctx ctx;
	char iss[400];
	struct tok t;
	gh_err err;

	memset(&c, 0, sizeof c);
	if (!ctx_open(app, req, &ctx))
		return;
	if (!oidc_client_auth(&ctx, &c))
		goto out;
	if (strcmp(oidc_client_str(&c, "client_type"), "confidential") != 0) {
		oauth_error(req, 401, "invalid_client",
		    "Introspection needs a confidential client.");
		goto out;
	}
	if (token == NULL) {
		oauth_error(req, 400, "invalid_request", "token is required.");
		goto out;
	}
	err = tok_find(&ctx, token, &t);
	if (err != GH_OK && err != GH_ERR_NOTFOUND) {
		respond_err(req, err);
		goto out;
	}
	no_store(req);
	if (err == GH_ERR_NOTFOUND || !t.active) {
		gh_http_respond(req, 200, "application/json",
		    "{\"active\":false}", sizeof "{\"active\":false}" - 1);
		goto out;
	}
	oidc_issuer(&ctx, iss, sizeof iss);
	introspect_answer(req, &t, iss);
out:
	oidc_client_free(&c);
	ctx_close(&ctx);
}

static void
h_revoke(void *app, struct gh_http_req *req)
{
	const char *token = gh_http_req_form(req, "token");
	struct oidc_client c;
	struct api_ctx ctx;
	struct tok t;
	json_t *changes;
	gh_err err;

	memset(&c, 0, sizeof c);
	if (!ctx_open(app, req, &ctx))
		return;
	if (!oidc_client_auth(&ctx, &c))
		goto out;
	if (token == NULL) {
		oauth_error(req, 400, "invalid_request", "token is required.");
		goto out;
	}
	err = tok_find(&ctx, token, &t);
	/* RFC 7009 2.2: an unknown token, or another client's, is answered
	 * like a revoked one. */
	if (err == GH_ERR_NOTFOUND || (err == GH_OK &&
	    strcmp(t.client_id, c.app.id) != 0)) {
		gh_http_respond(req, 200, NULL, NULL, 0);
		goto out;
	}
	ctx.actor.type = t.user_id[0] ? "user" : "system";
	ctx.actor.id = t.user_id[0] ? t.user_id : NULL;
	if (err == GH_OK)
		err = gh_db_begin(ctx.db);
	if (err == GH_OK && strcmp(t.kind, "refresh") == 0) {
		err = family_revoke(&ctx, t.family, "revoked_by_client");
	} else if (err == GH_OK) {
		err = gh_db_run(ctx.db, "UPDATE oidc_tokens SET revoked_at = ? "
		    "WHERE id = ? AND revoked_at IS NULL", "it", gh_now_ms(),
		    t.id);
		changes = json_pack("{s:s, s:s}", "reason", "revoked_by_client",
		    "kind", "access");
		if (err == GH_OK)
			err = gh_audit_append(ctx.db, &ctx.actor,
			    "oidc.token.revoke", "oidc_token", t.id, changes);
		json_decref(changes);
	}
	if (finish(&ctx, err))
		gh_http_respond(req, 200, NULL, NULL, 0);
out:
	oidc_client_free(&c);
	ctx_close(&ctx);
}

gh_err
routes_oidc(struct gh_http_router *r)
{
	static const struct gh_http_route_def defs[] = {
		{ "GET", "/o/{org}/oidc/authorize", h_authorize_get },
		{ "POST", "/o/{org}/oidc/authorize", h_authorize_post },
		{ "POST", "/o/{org}/oidc/token", h_token },
		{ "GET", "/o/{org}/oidc/userinfo", h_userinfo },
		{ "POST", "/o/{org}/oidc/userinfo", h_userinfo },
		{ "POST", "/o/{org}/oidc/introspect", h_introspect },
		{ "POST", "/o/{org}/oidc/revoke", h_revoke },
	};
	gh_err err = routes_oidc_admin(r);

	if (err == GH_OK)
		err = routes_oidc_device(r);
	if (err == GH_OK)
		err = gh_http_routes(r, defs, sizeof defs / sizeof defs[0]);
	if (err == GH_OK)
		err = routes_oidc_logout(r);
	if (err == GH_OK)
		err = routes_oidc_grants(r);
	return err;
}
