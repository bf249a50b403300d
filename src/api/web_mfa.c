/*
 * web_mfa.c: the HTML pages of multi-factor authentication. The second
 * step of the form sign-in (security key, authenticator code, recovery
 * code), TOTP enrolment forced at sign-in ("enrol now", bound to the
 * pending sign-in of the gh_mfa cookie), and the signed-in security page
 * /o/{org}/account/security: TOTP enrolment and removal, recovery codes,
 * security keys (list, rename, remove; registration runs in
 * /static/webauthn.js).
 *
 * Plain server-rendered forms; the only script is /static/webauthn.js for
 * WebAuthn. The QR code is our own SVG (gh_auth_qr_svg: rectangles only)
 * shown as an <img> of a data: URL, which the CSP allows (img-src data:)
 * and in which no script could ever run.
 *
 * Untrusted input: form fields (codes, names, CSRF tokens), cookies,
 * credential ids in paths. Secrets: the pending sign-in token (cookie,
 * borrowed), the TOTP secret and recovery codes (sent once in the page,
 * then wiped), codes in forms (wiped by the http layer with the body),
 * session tokens (wiped after the cookie is set).
 */
#include "api/api_int.h"
#include "auth/webauthn.h"

#include <stdio.h>
#include <string.h>

#define PAGE_MAX (96 * 1024)

/* ---- page pieces ----------------------------------------------------- */

static void
put_error(struct gh_buf *b, const char *error)
{
	if (error == NULL)
		return;
	gh_buf_put_str(b, "<p class=\"error\" id=\"form-error\" "
	    "role=\"alert\">");
	put_escaped(b, error);
	gh_buf_put_str(b, "</p>");
}

/* aria-describedby tying an input to the page's error, when there is
 * one. */
static const char *
described(const char *error)
{
	return error != NULL ? " aria-describedby=\"form-error\"" : "";
}

/* Opens a POST form to action with the hidden CSRF token (escaped: it may
 * have come back from the client). */
static void
form_open(struct gh_buf *b, const char *action, const char *csrf)
{
	gh_buf_put_str(b, "<form method=\"post\" action=\"");
	put_escaped(b, action);
	gh_buf_put_str(b, "\"><input type=\"hidden\" name=\"csrf_token\" "
	    "value=\"");
	put_escaped(b, csrf);
	gh_buf_put_str(b, "\">");
}

/* The QR code as an <img> of a percent-encoded data: URL. */
static void
put_qr(struct gh_buf *b, const char *svg)
{
	static const char hex[] = "0123456789ABCDEF";
	char enc[3] = { '%', 0, 0 };

	gh_buf_put_str(b, "<img class=\"qr\" id=\"totp-qr\" width=\"224\" "
	    "height=\"224\" alt=\"QR code of the authenticator key (the "
	    "same key is written below)\" src=\"data:image/svg+xml,");
	for (; *svg != '\0'; svg++) {
		unsigned char ch = (unsigned char)*svg;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == ' ' || ch == '.' ||
		    ch == '-' || ch == '/' || ch == ':' || ch == '=') {
			gh_buf_put(b, svg, 1);
			continue;
		}
		enc[1] = hex[ch >> 4];
		enc[2] = hex[ch & 15];
		gh_buf_put(b, enc, 3);
	}
	gh_buf_put_str(b, "\">");
}

/* The code field of a TOTP form. */
static void
put_code_input(struct gh_buf *b, const char *id, const char *label,
    const char *error, bool autofocus)
{
	gh_buf_printf(b, "<label for=\"%s\">%s</label><input id=\"%s\" "
	    "name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" "
	    "pattern=\"[0-9]{6}\" maxlength=\"6\" required%s%s>", id, label,
	    id, autofocus ? " autofocus" : "", described(error));
}

/* What an enrolment page offers. */
enum {
	ENROL_REQUIRED = 1,	/* forced at sign-in: says why */
	ENROL_TOTP = 2,		/* the authenticator app part */
	ENROL_KEY = 4,		/* the security key button (webauthn.js) */
};

/* The security key part of the enrolment page: a button that
 * /static/webauthn.js turns into a registration bound to the pending
 * sign-in (gh_mfa cookie), then /login/continue. */
static void
put_enrol_key(struct gh_buf *b, bool instead)
{
	gh_buf_printf(b, "<h2>Security key or passkey</h2><p class=\"error\" "
	    "id=\"wa-error\" role=\"alert\" hidden></p><button type=\"button\" "
	    "id=\"wa-enrol\"%s>Use a security key or passkey%s</button>",
	    instead ? " class=\"secondary\"" : " autofocus",
	    instead ? " instead" : "");
}

/*
 * The enrolment page. With ENROL_TOTP: with e, the QR code and the key;
 * always the code form posting to action; after a wrong code (no e), a
 * form that starts over with a new key (restart: "restart" field). With
 * ENROL_KEY, the security key button and the script.
 */
static void
enrol_page(struct api_ctx *ctx, unsigned status, const char *error,
    const struct gh_mfa_enrolment *e, const char *action, const char *csrf,
    unsigned offer)
{
	const char *title = offer == (ENROL_REQUIRED | ENROL_TOTP) ||
	    !(offer & ENROL_REQUIRED) ? "Set up an authenticator app" :
	    "Set up two-step verification";
	struct gh_buf b;

	gh_buf_init(&b, PAGE_MAX, GH_BUF_SECRET);
	if (offer & ENROL_KEY)
		page_open_script(&b, title);
	else
		page_open(&b, title);
	gh_buf_printf(&b, "<h1>%s</h1>", title);
	if (offer & ENROL_REQUIRED)
		gh_buf_put_str(&b, "<p>Your organisation requires two-step "
		    "verification. Set it up to finish signing in.</p>");
	/* Policies always hold totp or webauthn; should one not: */
	if (!(offer & (ENROL_TOTP | ENROL_KEY)))
		gh_buf_put_str(&b, "<p id=\"no-method\">Your organisation's "
		    "policy allows no method that can be set up here. Ask "
		    "your administrator.</p>");
	put_error(&b, error);
	if ((offer & ENROL_TOTP) && (offer & ENROL_KEY))
		gh_buf_put_str(&b, "<h2>Authenticator app</h2>");
	if ((offer & ENROL_TOTP) && e != NULL) {
		gh_buf_put_str(&b, "<p>Scan this code with your authenticator "
		    "app:</p>");
		put_qr(&b, e->qr_svg);
		gh_buf_put_str(&b, "<p>Or enter this key by hand:</p><p>"
		    "<code id=\"totp-secret\">");
		put_escaped(&b, e->secret);
		gh_buf_put_str(&b, "</code></p>");
	}
	if (offer & ENROL_TOTP) {
		form_open(&b, action, csrf);
		put_code_input(&b, "code", "Six-digit code from the app", error,
		    true);
		gh_buf_put_str(&b, "<button type=\"submit\">Confirm</button>"
		    "</form>");
	}
	if ((offer & ENROL_TOTP) && e == NULL) {
		form_open(&b, action, csrf);
		gh_buf_put_str(&b, "<input type=\"hidden\" name=\"restart\" "
		    "value=\"1\"><button type=\"submit\" class=\"secondary\">"
		    "Show a new key</button></form>");
	}
	if (offer & ENROL_KEY)
		put_enrol_key(&b, (offer & ENROL_TOTP) != 0);
	page_send(ctx->req, status, &b);
}

/* The recovery codes, shown once, with a link to next. */
static void
codes_page(struct api_ctx *ctx,
    char codes[static GH_MFA_RECOVERY_COUNT][GH_MFA_RECOVERY_LEN + 1],
    const char *next, const char *next_label)
{
	struct gh_buf b;

	gh_buf_init(&b, PAGE_MAX, GH_BUF_SECRET);
	page_open(&b, "Your recovery codes");
	gh_buf_put_str(&b, "<h1>Your recovery codes</h1><p>Each code signs "
	    "you in once if you lose your authenticator. Save them somewhere "
	    "safe now: they are not shown again.</p><ol class=\"codes\" "
	    "id=\"recovery-codes\">");
	for (int i = 0; i < GH_MFA_RECOVERY_COUNT; i++)
		gh_buf_printf(&b, "<li><code>%s</code></li>", codes[i]);
	gh_buf_printf(&b, "</ol><p><a id=\"continue\" href=\"/o/%s/%s\" "
	    "autofocus>%s</a></p>", ctx->org.slug, next, next_label);
	page_send(ctx->req, 200, &b);
}

/* ---- the second step of the form sign-in ---------------------------- */

/* The user of the pending second step of token into user_id ("" when
 * there is none: the page then offers by the org's policy, and the POST
 * refuses anyway). */
static void
pending_user(struct api_ctx *ctx, const char *token,
    char user_id[static GH_ID_LEN + 1])
{
	struct gh_mfa_pending p;

	user_id[0] = '\0';
	if (token != NULL &&
	    gh_auth_mfa_pending_check(ctx->db, token, &p) == GH_OK &&
	    p.purpose == GH_MFA_PURPOSE_VERIFY)
		gh_strlcpy(user_id, p.user_id, GH_ID_LEN + 1);
}

/* Whether user_id has a security key. */
static bool
has_key(struct api_ctx *ctx, const char *user_id)
{
	int64_t n = 0;

	return user_id[0] != '\0' &&
	    gh_auth_webauthn_cred_count(ctx->db, user_id, &n) == GH_OK && n > 0;
}

void
web_mfa_page(struct api_ctx *ctx, unsigned status, const char *error,
    const char *csrf, const char *token)
{
	char action[GH_SLUG_MAX + 16], remember[192] = "";
	char user_id[GH_ID_LEN + 1];
	struct gh_mfa_policy pol;
	bool key;
	struct gh_buf b;
	gh_err err;

	/* The user's effective methods: a security policy of one of their
	 * groups may narrow the org's. */
	pending_user(ctx, token, user_id);
	err = mfa_policy_for(ctx, user_id, &pol);
	if (err != GH_OK) {
		respond_err(ctx->req, err);
		return;
	}
	key = pol.allow_webauthn && has_key(ctx, user_id);
	/* The checkbox only when the org allows remembering devices. */
	if (pol.remember_device_days > 0)
		snprintf(remember, sizeof remember, "<label><input "
		    "type=\"checkbox\" name=\"remember_device\" value=\"1\"> "
		    "Remember this device for %d days</label>",
		    pol.remember_device_days);
	snprintf(action, sizeof action, "/o/%s/login/mfa", ctx->org.slug);
	gh_buf_init(&b, PAGE_MAX, 0);
	if (key)
		page_open_script(&b, "Two-step verification");
	else
		page_open(&b, "Two-step verification");
	gh_buf_put_str(&b, "<h1>Two-step verification</h1>");
	put_error(&b, error);
	if (key)
		gh_buf_put_str(&b, "<h2>Security key</h2><p class=\"error\" "
		    "id=\"wa-error\" role=\"alert\" hidden></p>"
		    "<button type=\"button\" id=\"wa-second\" autofocus>Use your "
		    "security key</button>");
	if (pol.allow_totp) {
		if (key)
			gh_buf_put_str(&b, "<h2>Authenticator app</h2>");
		form_open(&b, action, csrf);
		gh_buf_put_str(&b, "<input type=\"hidden\" name=\"method\" "
		    "value=\"totp\">");
		put_code_input(&b, "code", "Code from your authenticator app",
		    error, !key);
		gh_buf_put_str(&b, remember);
		gh_buf_put_str(&b, "<button type=\"submit\">Verify</button>"
		    "</form>");
	}
	if (pol.allow_recovery) {
		form_open(&b, action, csrf);
		gh_buf_printf(&b, "<input type=\"hidden\" name=\"method\" "
		    "value=\"recovery\"><label for=\"rcode\">Or a recovery "
		    "code</label><input id=\"rcode\" name=\"code\" "
		    "autocomplete=\"off\" maxlength=\"24\" required%s>",
		    described(error));
		gh_buf_put_str(&b, remember);
		gh_buf_put_str(&b, "<button type=\"submit\">Use recovery "
		    "code</button></form>");
	}
	/* Filled by /static/approval.js: asks a signed-in device. */
	if (pol.allow_approval)
		gh_buf_printf(&b, "<section id=\"approval-request\" "
		    "data-org=\"%s\"></section><script src=\"/static/"
		    "approval.js\" defer></script>", ctx->org.slug);
	page_send(ctx->req, status, &b);
}

/* ---- enrolment forced at sign-in ------------------------------------ */

/* Starts (or restarts) TOTP enrolment for ctx->user in its own
 * transaction. */
static gh_err
enrol_begin(struct api_ctx *ctx, struct gh_mfa_enrolment *e)
{
	gh_err err;

	if (ctx->app->kms == NULL ||
	    gh_kms_org_available(ctx->app->kms, ctx->org.id) != GH_OK)
		return GH_ERR_CRYPTO;
	err = gh_db_begin(ctx->db);
	if (err == GH_OK)
		err = gh_auth_totp_begin(ctx->db, ctx->app->kms, ctx->org.id,
		    ctx->user.id, ctx->org.name, ctx->user.username, e);
	if (err == GH_OK)
		err = gh_db_commit(ctx->db);
	if (err != GH_OK)
		gh_db_rollback(ctx->db);
	return err;
}

/* Loads the user of an "enrol" pending sign-in into ctx->user. */
static gh_err
enrol_pending(struct api_ctx *ctx, const char *token,
    char pending_id[static GH_ID_LEN + 1])
{
	struct gh_mfa_pending p;
	gh_err err;

	if (token == NULL)
		return GH_ERR_DENIED;
	err = gh_auth_mfa_pending_check(ctx->db, token, &p);
	if (err == GH_OK && p.purpose != GH_MFA_PURPOSE_ENROL)
		err = GH_ERR_DENIED;
	if (err == GH_OK)
		err = gh_identity_user_get(ctx->db, p.user_id, &ctx->user);
	if (err != GH_OK)
		return err;
	gh_strlcpy(pending_id, p.id, GH_ID_LEN + 1);
	ctx->actor.type = "user";
	ctx->actor.id = ctx->user.id;
	return GH_OK;
}

/* What the enrolment page may offer ctx->user: the methods of their
 * effective policy that can be set up (TOTP, a security key). */
static gh_err
enrol_offer(struct api_ctx *ctx, unsigned *offer)
{
	struct gh_mfa_policy pol;
	gh_err err;

	*offer = ENROL_REQUIRED;
	err = mfa_policy_for(ctx, ctx->user.id, &pol);
	if (err != GH_OK)
		return err;
	if (pol.allow_totp)
		*offer |= ENROL_TOTP;
	if (pol.allow_webauthn)
		*offer |= ENROL_KEY;
	return GH_OK;
}

void
web_enrol_now(struct api_ctx *ctx, const char *mfa_token, const char *csrf)
{
	char path[GH_SLUG_MAX + 5], action[GH_SLUG_MAX + 20];
	char pending[GH_ID_LEN + 1];
	struct gh_mfa_enrolment e;
	unsigned offer = 0;
	gh_err err;

	memset(&e, 0, sizeof e);
	snprintf(path, sizeof path, "/o/%s/", ctx->org.slug);
	snprintf(action, sizeof action, "/o/%s/login/enrol", ctx->org.slug);
	if (gh_http_set_cookie(ctx->req, MFA_COOKIE, mfa_token, path,
	    GH_MFA_PENDING_TTL_MS / 1000, GH_COOKIE_HTTPONLY |
	    GH_COOKIE_SAMESITE_STRICT) != GH_OK) {
		respond_err(ctx->req, GH_ERR_INTERNAL);
		return;
	}
	err = enrol_pending(ctx, mfa_token, pending);
	if (err == GH_OK)
		err = enrol_offer(ctx, &offer);
	/* A TOTP enrolment only when the policy allows TOTP. */
	if (err == GH_OK && (offer & ENROL_TOTP))
		err = enrol_begin(ctx, &e);
	if (err == GH_OK)
		enrol_page(ctx, offer & (ENROL_TOTP | ENROL_KEY) ? 200 : 403,
		    NULL, &e, action, csrf, offer);
	else
		respond_err(ctx->req, err);
	ctx->actor.id = NULL;
	gh_auth_mfa_enrolment_free(&e);
}

static void
w_login_enrol(void *appv, struct gh_http_req *req)
{
	const char *code = gh_http_req_form(req, "code");
	const char *form_csrf = gh_http_req_form(req, "csrf_token");
	const char *cookie_csrf = gh_http_req_cookie(req, LOGIN_CSRF_COOKIE);
	const char *token = gh_http_req_cookie(req, MFA_COOKIE);
	char codes[GH_MFA_RECOVERY_COUNT][GH_MFA_RECOVERY_LEN + 1];
	char pending[GH_ID_LEN + 1], csrf[GH_TOKEN_LEN + 1];
	char action[GH_SLUG_MAX + 20];
	struct gh_mfa_enrolment e;
	struct gh_session s;
	struct api_ctx ctx;
	unsigned offer = 0;
	bool fresh = false;
	gh_err err;

	memset(codes, 0, sizeof codes);
	memset(&e, 0, sizeof e);
	csrf[0] = '\0';
	if (!ctx_open(appv, req, &ctx))
		return;
	snprintf(action, sizeof action, "/o/%s/login/enrol", ctx.org.slug);
	if (!csrf_form_ok(form_csrf, cookie_csrf)) {
		record_failure(&ctx, NULL, "", "csrf_failed");
		login_page(&ctx, 403, "The form expired. Please try again.",
		    NULL);
		goto out;
	}
	err = enrol_pending(&ctx, token, pending);
	if (err == GH_OK)
		err = enrol_offer(&ctx, &offer);
	if (err == GH_ERR_DENIED) {
		record_failure(&ctx, NULL, "", "mfa_token_invalid");
		login_page(&ctx, 401, "The sign-in expired. Please sign in "
		    "again.", NULL);
		goto out;
	}
	if (err == GH_OK && !(offer & ENROL_TOTP)) {
		enrol_page(&ctx, 403, "Your organisation does not allow the "
		    "authenticator app.", NULL, action, cookie_csrf, offer);
		goto out;
	}
	if (err == GH_OK && gh_http_req_form(req, "restart") != NULL) {
		err = enrol_begin(&ctx, &e);
		if (err == GH_OK)
			enrol_page(&ctx, 200, NULL, &e, action, cookie_csrf,
			    offer);
		else
			respond_err(req, err);
		goto out;
	}
	if (err == GH_OK && (code == NULL || ctx.app->kms == NULL))
		err = code == NULL ? GH_ERR_DENIED : GH_ERR_CRYPTO;
	if (err == GH_OK)
		err = mfa_totp_confirm(&ctx, pending, code, codes, &fresh, csrf,
		    &s);
	if (err == GH_ERR_DENIED) {
		enrol_page(&ctx, 400, "That code is wrong. Enter the six "
		    "digits your app shows now.", NULL, action, cookie_csrf,
		    offer);
	} else if (err == GH_ERR_NOTFOUND) {
		enrol_page(&ctx, 409, "No set-up is in progress. Ask for a new "
		    "key.", NULL, action, cookie_csrf, offer);
	} else if (err != GH_OK) {
		respond_err(req, err);
	} else {
		clear_login_csrf(&ctx);
		if (fresh)
			codes_page(&ctx, codes, "login/continue", "Continue");
		else
			signin_done_redirect(&ctx);
	}
out:
	ctx.actor.id = NULL;
	gh_auth_mfa_enrolment_free(&e);
	gh_wipe(codes, sizeof codes);
	gh_wipe(csrf, sizeof csrf);
	ctx_close(&ctx);
}

static void
h_login_enrol(void *app, struct gh_http_req *req)
{
	if (guard_signin_rate(app, req))
		gh_http_defer(req, w_login_enrol);
}

/* ---- the security page ---------------------------------------------- */

struct cred_list {
	struct gh_buf *b;
	const char *slug;
	const char *csrf;
	int n;
};

static void
put_cred(const struct gh_wa_cred_row *c, void *arg)
{
	struct cred_list *l = arg;
	char created[25], used[25], action[GH_SLUG_MAX + GH_ID_LEN + 64];

	gh_time_rfc3339(c->created_at, created);
	gh_time_rfc3339(c->last_used_at, used);
	gh_buf_put_str(l->b, "<div class=\"cred\"><p>"
	    "<strong class=\"cred-name\">");
	put_escaped(l->b, c->name);
	gh_buf_printf(l->b, "</strong><br><span class=\"note\">Added %.10s; "
	    "%s%.10s</span></p>", created, c->last_used_at > 0 ?
	    "last used " : "never used", c->last_used_at > 0 ? used : "");
	snprintf(action, sizeof action, "/o/%s/account/security/webauthn/%s/"
	    "rename", l->slug, c->id);
	form_open(l->b, action, l->csrf);
	gh_buf_printf(l->b, "<label for=\"name-%d\">New name</label>"
	    "<input id=\"name-%d\" name=\"name\" maxlength=\"%d\" required "
	    "value=\"", l->n, l->n, GH_WA_NAME_MAX);
	put_escaped(l->b, c->name);
	gh_buf_put_str(l->b, "\"><button type=\"submit\" class=\"secondary\">"
	    "Rename</button></form>");
	snprintf(action, sizeof action, "/o/%s/account/security/webauthn/%s/"
	    "remove", l->slug, c->id);
	form_open(l->b, action, l->csrf);
	gh_buf_put_str(l->b, "<button type=\"submit\" class=\"secondary\">"
	    "Remove this key</button></form></div>");
	l->n++;
}

/* The security page of the signed-in ctx->user, with an optional error
 * (tied to the code fields). */
static void
security_page(struct api_ctx *ctx, unsigned status, const char *error,
    const char *notice)
{
	char csrf[GH_TOKEN_LEN + 1], action[GH_SLUG_MAX + 48], at[25];
	struct gh_mfa_factors f;
	struct gh_mfa_policy pol;
	struct cred_list l;
	enum gh_mfa_need need;
	struct gh_buf b;
	gh_err err;

	err = gh_auth_mfa_factors(ctx->db, ctx->user.id, &f);
	if (err == GH_OK)
		err = mfa_policy_for(ctx, ctx->user.id, &pol);
	if (err == GH_OK)
		err = gh_auth_mfa_need(ctx->db, &pol, ctx->user.id, gh_now_ms(),
		    &need);
	if (err != GH_OK) {
		respond_err(ctx->req, err);
		return;
	}
	gh_auth_session_csrf(ctx->session_token, csrf);
	gh_buf_init(&b, PAGE_MAX, 0);
	page_open_script(&b, "Security");
	/* The CSRF token for webauthn.js's API calls (X-CSRF-Token). */
	gh_buf_printf(&b, "<h1 id=\"security\" data-csrf=\"%s\">Security</h1>",
	    csrf);
	put_error(&b, error);
	if (notice != NULL) {
		gh_buf_put_str(&b, "<p role=\"status\" id=\"notice\">");
		put_escaped(&b, notice);
		gh_buf_put_str(&b, "</p>");
	}
	gh_buf_printf(&b, "<h2>Your organisation's policy</h2><p "
	    "id=\"policy\">Two-step verification is %s.%s</p>",
	    pol.required ? "required" : "optional",
	    need == GH_MFA_NEED_ENROL_GRACE || need == GH_MFA_NEED_ENROL_NOW ?
	    " Set up an authenticator app now." : "");

	gh_buf_put_str(&b, "<h2>Authenticator app</h2>");
	if (f.totp) {
		gh_time_rfc3339(f.totp_confirmed_at, at);
		gh_buf_printf(&b, "<p id=\"totp-state\">On since %.10s.</p>"
		    "<p id=\"recovery-state\">Recovery codes left: %d of %d."
		    "</p>", at, f.recovery_remaining, GH_MFA_RECOVERY_COUNT);
		snprintf(action, sizeof action,
		    "/o/%s/account/security/recovery-codes", ctx->org.slug);
		form_open(&b, action, csrf);
		gh_buf_put_str(&b, "<button type=\"submit\" class=\"secondary\">"
		    "Make new recovery codes</button></form>");
		snprintf(action, sizeof action,
		    "/o/%s/account/security/totp/remove", ctx->org.slug);
		form_open(&b, action, csrf);
		put_code_input(&b, "remove-code", "Current code, to turn the "
		    "app off", error, error != NULL);
		gh_buf_put_str(&b, "<button type=\"submit\" class=\"secondary\">"
		    "Turn off the authenticator app</button></form>");
	} else {
		gh_buf_put_str(&b, "<p id=\"totp-state\">Off.</p>");
		snprintf(action, sizeof action, "/o/%s/account/security/totp",
		    ctx->org.slug);
		form_open(&b, action, csrf);
		gh_buf_put_str(&b, "<button type=\"submit\" autofocus>Set up an "
		    "authenticator app</button></form>");
	}

	gh_buf_put_str(&b, "<h2>Security keys and passkeys</h2>"
	    "<div id=\"credentials\">");
	l = (struct cred_list){ &b, ctx->org.slug, csrf, 0 };
	err = gh_auth_webauthn_cred_list(ctx->db, ctx->user.id, put_cred, &l);
	if (err != GH_OK) {
		gh_buf_free(&b);
		respond_err(ctx->req, err);
		return;
	}
	if (l.n == 0)
		gh_buf_put_str(&b, "<p>None yet.</p>");
	gh_buf_printf(&b, "</div><p class=\"error\" id=\"wa-error\" "
	    "role=\"alert\" hidden></p><label for=\"wa-name\">Name of the new "
	    "key</label><input id=\"wa-name\" maxlength=\"%d\" "
	    "value=\"Security key\"><button type=\"button\" "
	    "id=\"wa-register\">Add a passkey or security key</button>",
	    GH_WA_NAME_MAX);
	gh_buf_printf(&b, "<p><a href=\"/o/%s/account\">Back to your account"
	    "</a></p>", ctx->org.slug);
	page_send(ctx->req, status, &b);
}

static void
h_security(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;

	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth_quiet(&ctx))
		redirect_to(&ctx, "login");
	else
		security_page(&ctx, 200, NULL, NULL);
	ctx_close(&ctx);
}

/*
 * The start of every signed-in form POST: opens ctx, requires a session
 * (else redirects to the sign-in form) and the session's CSRF token in the
 * form (else 403 csrf_failed). On failure it has responded and closed.
 */
static bool
form_open_signed_in(void *app, struct gh_http_req *req, struct api_ctx *ctx)
{
	const char *form_csrf = gh_http_req_form(req, "csrf_token");

	if (!ctx_open(app, req, ctx))
		return false;
	if (!ctx_auth_quiet(ctx)) {
		redirect_to(ctx, "login");
		ctx_close(ctx);
		return false;
	}
	if (form_csrf == NULL ||
	    !gh_auth_session_csrf_ok(ctx->session_token, form_csrf)) {
		gh_http_respond_error(req, 403, "csrf_failed",
		    "The form expired; reload the page.");
		ctx_close(ctx);
		return false;
	}
	return true;
}

static void
h_totp_begin(void *app, struct gh_http_req *req)
{
	char csrf[GH_TOKEN_LEN + 1], action[GH_SLUG_MAX + 48];
	struct gh_mfa_enrolment e;
	struct gh_mfa_factors f;
	struct api_ctx ctx;
	gh_err err;

	memset(&e, 0, sizeof e);
	if (!form_open_signed_in(app, req, &ctx))
		return;
	err = gh_auth_mfa_factors(ctx.db, ctx.user.id, &f);
	if (err == GH_OK && f.totp) {
		security_page(&ctx, 409, "The authenticator app is on already; "
		    "turn it off first.", NULL);
		goto out;
	}
	if (err == GH_OK)
		err = enrol_begin(&ctx, &e);
	if (err != GH_OK) {
		respond_err(req, err);
		goto out;
	}
	gh_auth_session_csrf(ctx.session_token, csrf);
	snprintf(action, sizeof action, "/o/%s/account/security/totp/confirm",
	    ctx.org.slug);
	enrol_page(&ctx, 200, NULL, &e, action, csrf, ENROL_TOTP);
out:
	gh_auth_mfa_enrolment_free(&e);
	ctx_close(&ctx);
}

static void
h_totp_confirm(void *app, struct gh_http_req *req)
{
	const char *code = gh_http_req_form(req, "code");
	char codes[GH_MFA_RECOVERY_COUNT][GH_MFA_RECOVERY_LEN + 1];
	char csrf[GH_TOKEN_LEN + 1], action[GH_SLUG_MAX + 48];
	struct gh_mfa_enrolment e;
	struct gh_session s;
	struct api_ctx ctx;
	bool fresh = false;
	gh_err err;

	memset(codes, 0, sizeof codes);
	memset(&e, 0, sizeof e);
	if (!form_open_signed_in(app, req, &ctx))
		return;
	gh_auth_session_csrf(ctx.session_token, csrf);
	snprintf(action, sizeof action, "/o/%s/account/security/totp/confirm",
	    ctx.org.slug);
	if (gh_http_req_form(req, "restart") != NULL) {
		err = enrol_begin(&ctx, &e);
		if (err == GH_OK)
			enrol_page(&ctx, 200, NULL, &e, action, csrf,
			    ENROL_TOTP);
		else
			respond_err(req, err);
		goto out;
	}
	if (ctx.app->kms == NULL)
		err = GH_ERR_CRYPTO;
	else if (code == NULL)
		err = GH_ERR_DENIED;
	else
		err = mfa_totp_confirm(&ctx, "", code, codes, &fresh, csrf,
		    &s);
	if (err == GH_ERR_DENIED)
		enrol_page(&ctx, 400, "That code is wrong. Enter the six "
		    "digits your app shows now.", NULL, action, csrf,
		    ENROL_TOTP);
	else if (err == GH_ERR_NOTFOUND)
		security_page(&ctx, 409, "No set-up is in progress; start "
		    "again.", NULL);
	else if (err != GH_OK)
		respond_err(req, err);
	else if (fresh)
		codes_page(&ctx, codes, "account/security", "Back to security");
	else
		security_page(&ctx, 200, NULL, "The authenticator app is on.");
out:
	gh_auth_mfa_enrolment_free(&e);
	gh_wipe(codes, sizeof codes);
	ctx_close(&ctx);
}

static void
h_totp_remove(void *app, struct gh_http_req *req)
{
	const char *code = gh_http_req_form(req, "code");
	struct api_ctx ctx;
	int64_t retry = 0;
	gh_err err;

	if (!form_open_signed_in(app, req, &ctx))
		return;
	err = code == NULL ? GH_ERR_DENIED : mfa_proof(&ctx, "totp", code,
	    &retry);
	if (err == GH_OK) {
		err = mfa_totp_remove(&ctx);
		if (finish(&ctx, err))
			security_page(&ctx, 200, NULL, "The authenticator app "
			    "is off and its recovery codes are gone.");
	} else if (err == GH_ERR_DENIED) {
		security_page(&ctx, 403, "That code is wrong or was used "
		    "already.", NULL);
	} else if (err == GH_ERR_LIMIT) {
		security_page(&ctx, 429, "Too many wrong codes. Try again in "
		    "15 minutes.", NULL);
	} else {
		respond_err(req, err);
	}
	ctx_close(&ctx);
}

static void
h_recovery(void *app, struct gh_http_req *req)
{
	char codes[GH_MFA_RECOVERY_COUNT][GH_MFA_RECOVERY_LEN + 1];
	struct api_ctx ctx;
	gh_err err;

	memset(codes, 0, sizeof codes);
	if (!form_open_signed_in(app, req, &ctx))
		return;
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = mfa_recovery_regenerate(&ctx, codes);
	if (err == GH_ERR_CONFLICT) {
		gh_db_rollback(ctx.db);
		security_page(&ctx, 409, "Set up the authenticator app before "
		    "making recovery codes.", NULL);
	} else if (finish(&ctx, err)) {
		codes_page(&ctx, codes, "account/security", "Back to security");
	}
	gh_wipe(codes, sizeof codes);
	ctx_close(&ctx);
}

static void
h_cred_rename(void *app, struct gh_http_req *req)
{
	const char *id = gh_http_req_param(req, "id");
	const char *name = gh_http_req_form(req, "name");
	struct api_ctx ctx;
	json_t *changes;
	gh_err err;

	if (!form_open_signed_in(app, req, &ctx))
		return;
	if (name == NULL || !gh_auth_webauthn_name_ok(name)) {
		gh_http_respond_error(req, 400, "invalid_request", "name: "
		    "1-64 bytes, no control characters.");
		goto out;
	}
	if (!gh_id_valid(id)) {
		respond_err(req, GH_ERR_NOTFOUND);
		goto out;
	}
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_auth_webauthn_cred_rename(ctx.db, ctx.user.id, id,
		    name);
	if (err == GH_OK) {
		changes = json_pack("{s:s, s:s}", "method", "webauthn", "name",
		    name);
		err = gh_audit_append(ctx.db, &ctx.actor, "mfa.webauthn.rename",
		    "webauthn_credential", id, changes);
		json_decref(changes);
	}
	if (finish(&ctx, err))
		security_page(&ctx, 200, NULL, "The key was renamed.");
out:
	ctx_close(&ctx);
}

static void
h_cred_remove(void *app, struct gh_http_req *req)
{
	const char *id = gh_http_req_param(req, "id");
	struct api_ctx ctx;
	json_t *changes;
	gh_err err;

	if (!form_open_signed_in(app, req, &ctx))
		return;
	if (!gh_id_valid(id)) {
		respond_err(req, GH_ERR_NOTFOUND);
		goto out;
	}
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_auth_webauthn_cred_delete(ctx.db, ctx.user.id, id);
	if (err == GH_OK) {
		changes = json_pack("{s:s}", "method", "webauthn");
		err = gh_audit_append(ctx.db, &ctx.actor, "mfa.webauthn.remove",
		    "webauthn_credential", id, changes);
		json_decref(changes);
	}
	if (finish(&ctx, err))
		security_page(&ctx, 200, NULL, "The key was removed.");
out:
	ctx_close(&ctx);
}

gh_err
routes_web_mfa(struct gh_http_router *r)
{
	static const struct gh_http_route_def routes[] = {
		{ "POST", "/o/{org}/login/enrol", h_login_enrol },
		{ "GET", "/o/{org}/account/security", h_security },
		{ "POST", "/o/{org}/account/security/totp", h_totp_begin },
		{ "POST", "/o/{org}/account/security/totp/confirm",
		    h_totp_confirm },
		{ "POST", "/o/{org}/account/security/totp/remove",
		    h_totp_remove },
		{ "POST", "/o/{org}/account/security/recovery-codes",
		    h_recovery },
		{ "POST", "/o/{org}/account/security/webauthn/{id}/rename",
		    h_cred_rename },
		{ "POST", "/o/{org}/account/security/webauthn/{id}/remove",
		    h_cred_remove },
	};

	return gh_http_routes(r, routes, sizeof routes / sizeof *routes);
}
