/*
 * web.c: the plain HTML sign-in form, the account page and sign-out, the
 * page that approves a sign-in from its QR code, and the page helpers and
 * stylesheet shared with web_mfa.c (the MFA pages). The CSP forbids inline
 * code, so the pages carry none; the second step and the account page
 * load /static/approval.js (src/api/approval.c) for approval from another
 * device, and work without it.
 * Untrusted input: form fields and cookies. Secrets: the password and the
 * MFA code (wiped by the http layer with the body), the pending MFA token
 * (set as a cookie, then wiped) and the login CSRF token (public to the
 * browser, compared in constant time).
 */
#include "api/api_int.h"

#include <stdio.h>
#include <string.h>

static const char css[] =
    "body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;"
    "color:#1d2330}\n"
    "main{max-width:22rem;margin:10vh auto;padding:1.5rem;background:#fff;"
    "border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.12)}\n"
    "@media (max-width:400px){main{margin:0;border-radius:0;min-height:100vh;"
    "box-sizing:border-box}}\n"
    "h1{font-size:1.25rem;margin:0 0 1rem}\n"
    "h2{font-size:1.1rem;margin:1.5rem 0 .5rem}\n"
    "label{display:block;margin:.75rem 0 .25rem;font-weight:600}\n"
    "input{width:100%;box-sizing:border-box;padding:.6rem;font-size:1rem;"
    "border:1px solid #8a93a3;border-radius:4px}\n"
    "input:focus,button:focus{outline:3px solid #2f6fde;outline-offset:1px}\n"
    "button{margin-top:1.25rem;width:100%;padding:.7rem;font-size:1rem;"
    "border:0;border-radius:4px;background:#1f5bc6;color:#fff;"
    "cursor:pointer}\n"
    ".error{background:#fde8e8;color:#8a1111;padding:.6rem;border-radius:4px}"
    "\n"
    "dl{margin:0}dt{font-weight:600;margin-top:.5rem}dd{margin:0;"
    "overflow-wrap:anywhere}\n"
    "a:focus{outline:3px solid #2f6fde;outline-offset:1px}\n"
    "h2{font-size:1.05rem;margin:1.5rem 0 .5rem}\n"
    "form{margin:0 0 1rem}\n"
    "img.qr{display:block;width:100%;max-width:14rem;height:auto;"
    "margin:.5rem auto;background:#fff}\n"
    "code{font-family:ui-monospace,monospace;overflow-wrap:anywhere;"
    "word-break:break-all}\n"
    ".codes{padding-left:1.5rem;columns:2;font-size:1.05rem}\n"
    ".codes li{margin:.2rem 0}\n"
    ".note{color:#4a5366;font-size:.9rem}\n"
    ".cred{border-top:1px solid #d8dce3;padding-top:.5rem;margin-top:.5rem}"
    "\n"
    "button.secondary{background:#e8ebf0;color:#1d2330}\n"
    "[hidden]{display:none}\n"
    "button.deny{background:#a11d1d}\n"
    "ul.approvals{list-style:none;padding:0}\n"
    ".number{font-size:2.5rem;font-weight:700;text-align:center;"
    "letter-spacing:.2em;margin:.5rem 0}\n"
    "img{display:block;margin:0 auto;max-width:100%;height:auto}\n";

void
put_escaped(struct gh_buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&':
			gh_buf_put_str(b, "&amp;");
			break;
		case '<':
			gh_buf_put_str(b, "&lt;");
			break;
		case '>':
			gh_buf_put_str(b, "&gt;");
			break;
		case '"':
			gh_buf_put_str(b, "&quot;");
			break;
		case '\'':
			gh_buf_put_str(b, "&#39;");
			break;
		default:
			gh_buf_put(b, s, 1);
		}
	}
}

static void
page_head(struct gh_buf *b, const char *title, bool script)
{
	gh_buf_put_str(b, "<!doctype html>\n<html lang=\"en\"><head>"
	    "<meta charset=\"utf-8\"><meta name=\"viewport\" "
	    "content=\"width=device-width,initial-scale=1\"><title>");
	put_escaped(b, title);
	gh_buf_put_str(b, "</title><link rel=\"stylesheet\" "
	    "href=\"/static/gatehouse.css\">");
	if (script)
		gh_buf_put_str(b, "<script type=\"module\" "
		    "src=\"/static/webauthn.js\"></script>");
	gh_buf_put_str(b, "</head><body><main>");
}

void
page_open(struct gh_buf *b, const char *title)
{
	page_head(b, title, false);
}

void
page_open_script(struct gh_buf *b, const char *title)
{
	page_head(b, title, true);
}

void
page_send(struct gh_http_req *req, unsigned status, struct gh_buf *b)
{
	gh_buf_put_str(b, "</main></body></html>\n");
	if (gh_buf_err(b) != GH_OK) {
		gh_buf_free(b);
		respond_err(req, GH_ERR_INTERNAL);
		return;
	}
	gh_http_respond(req, status, "text/html; charset=utf-8", b->data,
	    b->len);
	gh_buf_free(b);
}

void
redirect_to(struct api_ctx *ctx, const char *page)
{
	char loc[GH_SLUG_MAX + 32];

	snprintf(loc, sizeof loc, "/o/%s/%s", ctx->org.slug, page);
	gh_http_redirect(ctx->req, loc);
}

void
login_page(struct api_ctx *ctx, unsigned status, const char *error,
    const char *username)
{
	char raw[32], csrf[GH_TOKEN_LEN + 1], path[GH_SLUG_MAX + 16];
	struct gh_buf b;

	if (gh_rand_bytes(raw, sizeof raw) != GH_OK) {
		respond_err(ctx->req, GH_ERR_CRYPTO);
		return;
	}
	gh_b64url_encode((const uint8_t *)raw, sizeof raw, csrf);
	snprintf(path, sizeof path, "/o/%s/login", ctx->org.slug);
	if (gh_http_set_cookie(ctx->req, LOGIN_CSRF_COOKIE, csrf, path, 3600,
	    GH_COOKIE_HTTPONLY | GH_COOKIE_SAMESITE_STRICT) != GH_OK) {
		respond_err(ctx->req, GH_ERR_INTERNAL);
		return;
	}
	gh_buf_init(&b, 64 * 1024, 0);
	page_open(&b, "Sign in");
	gh_buf_put_str(&b, "<h1>Sign in to ");
	put_escaped(&b, ctx->org.name);
	gh_buf_put_str(&b, "</h1>");
	if (error != NULL) {
		gh_buf_put_str(&b, "<p class=\"error\" role=\"alert\">");
		put_escaped(&b, error);
		gh_buf_put_str(&b, "</p>");
	}
	gh_buf_printf(&b, "<form method=\"post\" action=\"%s\">"
	    "<input type=\"hidden\" name=\"csrf_token\" value=\"%s\">"
	    "<label for=\"username\">Username</label>"
	    "<input id=\"username\" name=\"username\" autocomplete=\"username\" "
	    "required autofocus value=\"", path, csrf);
	put_escaped(&b, username ? username : "");
	gh_buf_put_str(&b, "\"><label for=\"password\">Password</label>"
	    "<input id=\"password\" name=\"password\" type=\"password\" "
	    "autocomplete=\"current-password\" required>"
	    "<button type=\"submit\">Sign in</button></form>");
	page_send(ctx->req, status, &b);
}

bool
return_to_safe(const struct api_ctx *ctx, const char *s)
{
	char prefix[GH_SLUG_MAX + 5];
	size_t n;

	if (s == NULL)
		return false;
	n = (size_t)snprintf(prefix, sizeof prefix, "/o/%s/", ctx->org.slug);
	if (strlen(s) > RETURN_TO_MAX || strncmp(s, prefix, n) != 0)
		return false;
	/* Printable ASCII only: no header splitting, no backslash tricks;
	 * the fixed prefix keeps it on this origin and this org. */
	for (; *s != '\0'; s++)
		if (*s < 0x21 || *s > 0x7e || *s == '\\')
			return false;
	return true;
}

gh_err
return_to_set(struct api_ctx *ctx, const char *target)
{
	char path[GH_SLUG_MAX + 5];

	snprintf(path, sizeof path, "/o/%s/", ctx->org.slug);
	return gh_http_set_cookie(ctx->req, RETURN_COOKIE, target, path,
	    RETURN_TO_TTL_S, GH_COOKIE_HTTPONLY | GH_COOKIE_SAMESITE_LAX);
}

void
signin_done_redirect(struct api_ctx *ctx)
{
	const char *target = gh_http_req_cookie(ctx->req, RETURN_COOKIE);
	char path[GH_SLUG_MAX + 5];

	if (!return_to_safe(ctx, target)) {
		redirect_to(ctx, "account");
		return;
	}
	snprintf(path, sizeof path, "/o/%s/", ctx->org.slug);
	if (gh_http_set_cookie(ctx->req, RETURN_COOKIE, "", path, -1,
	    GH_COOKIE_HTTPONLY | GH_COOKIE_SAMESITE_LAX) != GH_OK)
		GH_LOG_WARN(GH_ERR_INTERNAL, "return cookie not cleared");
	gh_http_redirect(ctx->req, target);
}

static void
h_login_get(void *app, struct gh_http_req *req)
{
	const char *ret = gh_http_req_query(req, "return_to");
	struct api_ctx ctx;

	if (!ctx_open(app, req, &ctx))
		return;
	if (ret != NULL && !return_to_safe(&ctx, ret))
		ret = NULL;	/* another origin or org: ignored */
	if (ctx_auth_quiet(&ctx)) {
		if (ret != NULL)
			gh_http_redirect(req, ret);
		else
			redirect_to(&ctx, "account");
	} else if (ret != NULL && return_to_set(&ctx, ret) != GH_OK) {
		respond_err(req, GH_ERR_INTERNAL);
	} else {
		login_page(&ctx, 200, NULL, NULL);
	}
	ctx_close(&ctx);
}

/* Where a sign-in finished outside the form's own answer (after the
 * recovery codes of an enrolment, or in webauthn.js) continues: the
 * remembered return_to, else the account page. */
static void
h_login_continue(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;

	if (!ctx_open(app, req, &ctx))
		return;
	if (ctx_auth_quiet(&ctx)) {
		clear_login_csrf(&ctx);
		signin_done_redirect(&ctx);
	} else {
		redirect_to(&ctx, "login");
	}
	ctx_close(&ctx);
}

static bool
field_ok(const char *s, size_t max)
{
	return s != NULL && s[0] != '\0' && strlen(s) <= max;
}

/* Clears the login CSRF cookie once the sign-in is over. */
void
clear_login_csrf(struct api_ctx *ctx)
{
	char path[GH_SLUG_MAX + 16];

	snprintf(path, sizeof path, "/o/%s/login", ctx->org.slug);
	if (gh_http_set_cookie(ctx->req, LOGIN_CSRF_COOKIE, "", path, -1,
	    GH_COOKIE_HTTPONLY | GH_COOKIE_SAMESITE_STRICT) != GH_OK)
		GH_LOG_WARN(GH_ERR_INTERNAL, "login cookie not cleared");
}

bool
csrf_form_ok(const char *form_csrf, const char *cookie_csrf)
{
	return form_csrf != NULL && cookie_csrf != NULL &&
	    strlen(form_csrf) == GH_TOKEN_LEN &&
	    strlen(cookie_csrf) == GH_TOKEN_LEN &&
	    gh_ct_eq(form_csrf, cookie_csrf, GH_TOKEN_LEN);
}

static void
w_login_post(void *appv, struct gh_http_req *req)
{
	const char *username = gh_http_req_form(req, "username");
	const char *password = gh_http_req_form(req, "password");
	const char *form_csrf = gh_http_req_form(req, "csrf_token");
	const char *cookie_csrf = gh_http_req_cookie(req, LOGIN_CSRF_COOKIE);
	char csrf[GH_TOKEN_LEN + 1], mfa_token[GH_TOKEN_LEN + 1];
	char path[GH_SLUG_MAX + 5];
	enum gh_mfa_need need;
	const char *reason;
	struct gh_session s;
	struct api_ctx ctx;
	struct gh_user u;
	gh_err err;

	if (!ctx_open_signin(appv, req, &ctx, username))
		return;
	if (!csrf_form_ok(form_csrf, cookie_csrf)) {
		record_failure(&ctx, NULL, username ? username : "",
		    "csrf_failed");
		login_page(&ctx, 403, "The form expired. Please try again.",
		    NULL);
		goto out;
	}
	if (!field_ok(username, GH_USERNAME_MAX) ||
	    !field_ok(password, GH_PW_MAX_LEN)) {
		record_failure(&ctx, NULL, username ? username : "",
		    "invalid_request");
		login_page(&ctx, 400, "Enter your username and password.",
		    NULL);
		goto out;
	}
	err = signin_password(&ctx, username, password, &u, &s, csrf, &reason,
	    &need, mfa_token);
	gh_wipe(csrf, sizeof csrf);
	if (err == GH_ERR_DENIED && reason != NULL &&
	    strcmp(reason, "ip_not_allowed") == 0) {
		login_page(&ctx, 403, "Your organisation's security policy does "
		    "not allow sign-in from this network.", username);
	} else if (err == GH_ERR_DENIED && reason != NULL &&
	    strcmp(reason, "country_not_allowed") == 0) {
		login_page(&ctx, 403, "Your organisation's security policy does "
		    "not allow sign-in from this country.", username);
	} else if (err == GH_ERR_DENIED) {
		login_page(&ctx, 401, "Wrong username or password.", username);
	} else if (err == GH_ERR_LIMIT) {
		char secs[24];

		snprintf(secs, sizeof secs, "%lld", (long long)ctx.retry_after_s);
		if (gh_http_resp_header(req, "Retry-After", secs) != GH_OK)
			GH_LOG_WARN(GH_ERR_INTERNAL, "Retry-After not set");
		login_page(&ctx, 429, "Too many failed sign-ins. Wait a few "
		    "minutes and try again.", username);
	} else if (err != GH_OK) {
		respond_err(req, err);
	} else if (need == GH_MFA_NEED_VERIFY) {
		snprintf(path, sizeof path, "/o/%s/", ctx.org.slug);
		if (gh_http_set_cookie(req, MFA_COOKIE, mfa_token, path,
		    GH_MFA_PENDING_TTL_MS / 1000, GH_COOKIE_HTTPONLY |
		    GH_COOKIE_SAMESITE_STRICT) != GH_OK)
			respond_err(req, GH_ERR_INTERNAL);
		else
			web_mfa_page(&ctx, 200, NULL, cookie_csrf, mfa_token);
	} else if (need == GH_MFA_NEED_ENROL_NOW) {
		web_enrol_now(&ctx, mfa_token, cookie_csrf);
	} else {
		clear_login_csrf(&ctx);
		signin_done_redirect(&ctx);
	}
	gh_wipe(mfa_token, sizeof mfa_token);
out:
	ctx_close(&ctx);
}

static void
w_login_mfa_post(void *appv, struct gh_http_req *req)
{
	const char *method = gh_http_req_form(req, "method");
	const char *code = gh_http_req_form(req, "code");
	const char *form_csrf = gh_http_req_form(req, "csrf_token");
	const char *cookie_csrf = gh_http_req_cookie(req, LOGIN_CSRF_COOKIE);
	const char *token = gh_http_req_cookie(req, MFA_COOKIE);
	const char *remember = gh_http_req_form(req, "remember_device");
	char csrf[GH_TOKEN_LEN + 1];
	const char *error = NULL;
	bool remembered = false;
	int64_t retry = 0;
	struct gh_session s;
	struct api_ctx ctx;
	struct gh_user u;
	gh_err err;

	if (!ctx_open(appv, req, &ctx))
		return;
	if (!csrf_form_ok(form_csrf, cookie_csrf)) {
		record_failure(&ctx, NULL, "", "csrf_failed");
		login_page(&ctx, 403, "The form expired. Please try again.",
		    NULL);
		goto out;
	}
	memset(&u, 0, sizeof u);
	err = mfa_signin_complete(&ctx, token, method, code,
	    remember != NULL && strcmp(remember, "1") == 0, &u, &s, csrf,
	    &error, &retry, &remembered);
	gh_wipe(csrf, sizeof csrf);
	if (err == GH_OK) {
		clear_login_csrf(&ctx);
		signin_done_redirect(&ctx);
	} else if (err == GH_ERR_LIMIT) {
		login_page(&ctx, 429, "Too many wrong codes. Try again in 15 "
		    "minutes.", NULL);
	} else if (err == GH_ERR_INVALID || (err == GH_ERR_DENIED &&
	    error != NULL && strcmp(error, "invalid_mfa_code") == 0)) {
		web_mfa_page(&ctx, err == GH_ERR_INVALID ? 400 : 401,
		    "That code is wrong or was used already.", cookie_csrf,
		    token);
	} else if (err == GH_ERR_DENIED && error != NULL &&
	    strcmp(error, "mfa_method_not_allowed") == 0) {
		web_mfa_page(&ctx, 403, "Your organisation does not allow that "
		    "method.", cookie_csrf, token);
	} else if (err == GH_ERR_DENIED && error != NULL &&
	    (strcmp(error, "ip_not_allowed") == 0 ||
	    strcmp(error, "country_not_allowed") == 0)) {
		login_page(&ctx, 403, error[0] == 'i' ? "Your organisation's "
		    "security policy does not allow sign-in from this "
		    "network." : "Your organisation's security policy does "
		    "not allow sign-in from this country.", NULL);
	} else if (err == GH_ERR_DENIED) {
		login_page(&ctx, 401, "The sign-in expired. Please sign in "
		    "again.", NULL);
	} else {
		respond_err(req, err);
	}
out:
	ctx_close(&ctx);
}

static void
h_login_mfa_post(void *app, struct gh_http_req *req)
{
	if (guard_signin_rate(app, req))
		gh_http_defer(req, w_login_mfa_post);
}

static void
h_login_post(void *app, struct gh_http_req *req)
{
	if (guard_signin_rate(app, req))
		gh_http_defer(req, w_login_post);
}

static void
h_account(void *app, struct gh_http_req *req)
{
	char csrf[GH_TOKEN_LEN + 1];
	struct api_ctx ctx;
	struct gh_buf b;

	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth_quiet(&ctx)) {
		redirect_to(&ctx, "login");
		goto out;
	}
	gh_auth_session_csrf(ctx.session_token, csrf);
	gh_buf_init(&b, 64 * 1024, 0);
	page_open(&b, "Your account");
	gh_buf_put_str(&b, "<h1>");
	put_escaped(&b, ctx.org.name);
	gh_buf_put_str(&b, "</h1><p>You are signed in.</p><dl><dt>Username</dt>"
	    "<dd id=\"username\">");
	put_escaped(&b, ctx.user.username);
	gh_buf_put_str(&b, "</dd><dt>Name</dt><dd>");
	put_escaped(&b, ctx.user.display_name);
	gh_buf_put_str(&b, "</dd><dt>Role</dt><dd>");
	put_escaped(&b, ctx.user.role);
	gh_buf_printf(&b, "</dd></dl><p><a href=\"/o/%s/account/security\">"
	    "Security: two-step verification and security keys</a></p>",
	    ctx.org.slug);
	gh_buf_printf(&b, "<form method=\"post\" action=\"/o/%s/logout\">"
	    "<input type=\"hidden\" name=\"csrf_token\" value=\"%s\">"
	    "<button type=\"submit\">Sign out</button></form>",
	    ctx.org.slug, csrf);
	/* Sign-in requests to approve: only a session made with a second
	 * factor may, and /static/approval.js lists them. */
	if (approval_session_ok(&ctx))
		gh_buf_printf(&b, "<section id=\"approvals\" data-org=\"%s\" "
		    "data-csrf=\"%s\"></section><script "
		    "src=\"/static/approval.js\" defer></script>",
		    ctx.org.slug, csrf);
	page_send(req, 200, &b);
out:
	ctx_close(&ctx);
}

static void
h_logout(void *app, struct gh_http_req *req)
{
	const char *form_csrf = gh_http_req_form(req, "csrf_token");
	struct api_ctx ctx;
	gh_err err;

	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth_quiet(&ctx)) {
		redirect_to(&ctx, "login");
		goto out;
	}
	if (form_csrf == NULL ||
	    !gh_auth_session_csrf_ok(ctx.session_token, form_csrf)) {
		gh_http_respond_error(req, 403, "csrf_failed",
		    "The sign-out form expired; reload the page.");
		goto out;
	}
	err = session_end(&ctx);
	if (err != GH_OK)
		respond_err(req, err);
	else
		redirect_to(&ctx, "login");
out:
	ctx_close(&ctx);
}

/* ---- approving a sign-in from its QR code ----------------------------------- */

/* A short page with a heading and a sentence. */
static void
approve_message(struct api_ctx *ctx, unsigned status, const char *title,
    const char *text, bool login_link)
{
	struct gh_buf b;

	gh_buf_init(&b, 16 * 1024, 0);
	page_open(&b, title);
	gh_buf_put_str(&b, "<h1>");
	put_escaped(&b, title);
	gh_buf_put_str(&b, "</h1><p role=\"status\">");
	put_escaped(&b, text);
	gh_buf_put_str(&b, "</p>");
	if (login_link)
		gh_buf_printf(&b, "<p><a href=\"/o/%s/login\">Sign in</a></p>",
		    ctx->org.slug);
	page_send(ctx->req, status, &b);
}

/* Authenticates the approver for the QR pages: a session signed in with a
 * second factor. Otherwise answers with a pointer to sign-in. */
static bool
approve_auth(struct api_ctx *ctx)
{
	if (ctx_auth_quiet(ctx) && approval_session_ok(ctx))
		return true;
	approve_message(ctx, 401, "Sign in to approve", "To approve or deny "
	    "this sign-in, sign in on this device with your second factor, "
	    "then open the code again.", true);
	return false;
}

static void
h_approve_get(void *app, struct gh_http_req *req)
{
	const char *code = gh_http_req_query(req, "c");
	char csrf[GH_TOKEN_LEN + 1], when[25];
	struct gh_approval a;
	struct api_ctx ctx;
	struct gh_buf b;
	gh_err err;

	if (!ctx_open(app, req, &ctx))
		return;
	if (!approve_auth(&ctx))
		goto out;
	err = gh_auth_approval_by_code(ctx.db, code, ctx.user.id, &a);
	if (err == GH_ERR_NOTFOUND) {
		approve_message(&ctx, 404, "Unknown sign-in", "This code is "
		    "not a sign-in request of yours.", false);
		goto out;
	}
	if (err != GH_OK) {
		respond_err(req, err);
		goto out;
	}
	if (a.state != GH_APPROVAL_PENDING) {
		approve_message(&ctx, a.state == GH_APPROVAL_EXPIRED ? 410 :
		    409, "Sign-in request closed", a.state ==
		    GH_APPROVAL_EXPIRED ? "This request expired." :
		    "This request was decided already.", false);
		goto out;
	}
	gh_auth_session_csrf(ctx.session_token, csrf);
	gh_time_rfc3339(a.created_at, when);
	gh_buf_init(&b, 64 * 1024, 0);
	page_open(&b, "Approve sign-in");
	gh_buf_put_str(&b, "<h1>Is this you signing in?</h1><p>Someone "
	    "with your password is signing in to ");
	put_escaped(&b, ctx.org.name);
	gh_buf_put_str(&b, " as ");
	put_escaped(&b, ctx.user.username);
	gh_buf_put_str(&b, ". Deny it if it is not you.</p><dl><dt>From"
	    "</dt><dd id=\"ip\">");
	put_escaped(&b, a.source_ip);
	gh_buf_put_str(&b, "</dd><dt>Browser</dt><dd id=\"agent\">");
	put_escaped(&b, a.user_agent);
	gh_buf_put_str(&b, "</dd><dt>Asked at (UTC)</dt><dd>");
	put_escaped(&b, when);
	gh_buf_printf(&b, "</dd></dl><form method=\"post\" "
	    "action=\"/o/%s/approve\"><input type=\"hidden\" "
	    "name=\"csrf_token\" value=\"%s\"><input type=\"hidden\" "
	    "name=\"c\" value=\"", ctx.org.slug, csrf);
	put_escaped(&b, code);
	gh_buf_put_str(&b, "\"><button type=\"submit\" name=\"decision\" "
	    "value=\"approve\">Approve, it is me</button><button "
	    "type=\"submit\" name=\"decision\" value=\"deny\" "
	    "class=\"deny\">Deny, it is not me</button></form>");
	page_send(req, 200, &b);
	gh_wipe(csrf, sizeof csrf);
out:
	ctx_close(&ctx);
}

static void
h_approve_post(void *app, struct gh_http_req *req)
{
	const char *form_csrf = gh_http_req_form(req, "csrf_token");
	const char *code = gh_http_req_form(req, "c");
	const char *decision = gh_http_req_form(req, "decision");
	const char *error = NULL;
	enum gh_approval_state state = GH_APPROVAL_EXPIRED;
	struct api_ctx ctx;
	gh_err err;

	if (!ctx_open(app, req, &ctx))
		return;
	if (!approve_auth(&ctx))
		goto out;
	if (form_csrf == NULL ||
	    !gh_auth_session_csrf_ok(ctx.session_token, form_csrf)) {
		gh_http_respond_error(req, 403, "csrf_failed",
		    "The form expired; open the code again.");
		goto out;
	}
	if (code == NULL || decision == NULL || (strcmp(decision, "approve")
	    != 0 && strcmp(decision, "deny") != 0)) {
		approve_message(&ctx, 400, "Not understood", "Choose approve "
		    "or deny.", false);
		goto out;
	}
	err = approval_decide(&ctx, NULL, code, strcmp(decision, "approve") ==
	    0, 0, &error, &state);
	if (err == GH_OK && state == GH_APPROVAL_APPROVED)
		approve_message(&ctx, 200, "Sign-in approved", "Approved: the "
		    "other device is signing in now.", false);
	else if (err == GH_OK)
		approve_message(&ctx, 200, "Sign-in denied", "Denied. It was "
		    "recorded; if it was not you, change your password.",
		    false);
	else if (err == GH_ERR_NOTFOUND)
		approve_message(&ctx, 404, "Unknown sign-in", "This code is "
		    "not a sign-in request of yours.", false);
	else if (err == GH_ERR_CONFLICT)
		approve_message(&ctx, state == GH_APPROVAL_EXPIRED ? 410 : 409,
		    "Sign-in request closed", state == GH_APPROVAL_EXPIRED ?
		    "This request expired." : "This request was decided "
		    "already.", false);
	else
		respond_err(req, err);
out:
	ctx_close(&ctx);
}

static void
h_css(void *app, struct gh_http_req *req)
{
	gh_http_respond(req, 200, "text/css; charset=utf-8", css,
	    sizeof css - 1);
}

gh_err
routes_web(struct gh_http_router *r)
{
	static const struct gh_http_route_def routes[] = {
		{ "GET", "/o/{org}/login", h_login_get },
		{ "POST", "/o/{org}/login", h_login_post },
		{ "POST", "/o/{org}/login/mfa", h_login_mfa_post },
		{ "GET", "/o/{org}/login/continue", h_login_continue },
		{ "GET", "/o/{org}/account", h_account },
		{ "POST", "/o/{org}/logout", h_logout },
		{ "GET", "/o/{org}/approve", h_approve_get },
		{ "POST", "/o/{org}/approve", h_approve_post },
		{ "GET", "/static/gatehouse.css", h_css },
	};

	return gh_http_routes(r, routes, sizeof routes / sizeof *routes);
}
