/*
 * approval.c: approving a sign-in from another device. The new device,
 * holding a pending sign-in (gh_mfa cookie or "mfa_token"), asks for an
 * approval and polls for the answer; a device where the same user is
 * signed in with a second factor lists the requests (long poll) and
 * approves one by typing the number the new device shows, or by opening
 * the QR code the new device shows (its secret proves the approver saw the
 * screen), or denies it, which is recorded as a possible attack.
 *
 * Untrusted input: pending tokens (borrowed, hashed by src/auth), JSON
 * bodies (decision, number, QR secret), request ids in paths, the wait
 * query parameter. Secrets: pending tokens and QR secrets (wiped with the
 * body; the QR secret is sent once to the new device, then wiped), session
 * tokens (wiped after the cookie is set).
 */
#include "api/api_int.h"
#include "notify/notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MAX_S 25

static const char *
pending_token(struct gh_http_req *req, json_t *body)
{
	const char *t = json_string_value(json_object_get(body, "mfa_token"));

	return t != NULL ? t : gh_http_req_cookie(req, MFA_COOKIE);
}

static void
wipe_member(json_t *body, const char *key)
{
	json_t *v = json_object_get(body, key);

	if (json_is_string(v))
		gh_wipe((char *)json_string_value(v), json_string_length(v));
}

/* Reads an optional JSON body (an empty one is {}). */
static json_t *
optional_body(struct gh_http_req *req, const char *const *keys)
{
	size_t len = 0;

	(void)gh_http_req_body(req, &len);
	if (len == 0)
		return json_object();
	return body_object(req, keys);
}

static int64_t
ttl_ms(const struct api_ctx *ctx)
{
	return ctx->app->cfg.approval_ttl_ms > 0 ?
	    ctx->app->cfg.approval_ttl_ms : GH_APPROVAL_TTL_MS;
}

static int64_t
expires_in_s(const struct gh_approval *a)
{
	int64_t s = (a->expires_at - gh_now_ms() + 999) / 1000;

	return s < 0 ? 0 : s;
}

static gh_err
audit_approval(struct api_ctx *ctx, const char *action, const char *user_id,
    const char *approval_id, const char *reason)
{
	json_t *changes;
	gh_err err;

	changes = json_pack("{s:s, s:s}", "method", "approval", "approval_id",
	    approval_id);
	if (changes != NULL && reason != NULL)
		json_object_set_new(changes, "reason", json_string(reason));
	err = gh_audit_append(ctx->db, &ctx->actor, action, "user", user_id,
	    changes);
	json_decref(changes);
	return err;
}

/* Records a sign-in attempt completed or refused through an approval, with
 * the requesting device's address and agent. */
static gh_err
signin_record(struct api_ctx *ctx, const struct gh_user *u, bool success,
    const char *reason, const char *ip, const char *ua)
{
	struct gh_signin_record rec = { u->id, u->username, ip, ua, success,
		reason };

	gh_http_metrics_signin(ctx->req, success ? "success" : "failure");
	return gh_audit_signin_record(ctx->db, &rec);
}

static void
clear_mfa_cookie(struct api_ctx *ctx)
{
	char path[GH_SLUG_MAX + 5];

	snprintf(path, sizeof path, "/o/%s/", ctx->org.slug);
	if (gh_http_set_cookie(ctx->req, MFA_COOKIE, "", path, -1,
	    GH_COOKIE_HTTPONLY | GH_COOKIE_SAMESITE_STRICT) != GH_OK)
		GH_LOG_WARN(GH_ERR_INTERNAL, "gh_mfa cookie not cleared");
}

static void
respond_token_invalid(struct gh_http_req *req)
{
	gh_http_respond_error(req, 401, "mfa_token_invalid",
	    "The sign-in expired or was refused; sign in again.");
}

/*
 * Finds the caller's pending sign-in (purpose verify) and its user. On
 * refusal responds and returns false.
 */
static bool
pending_of(struct api_ctx *ctx, json_t *body, struct gh_mfa_pending *p,
    struct gh_user *u)
{
	gh_err err;

	err = gh_auth_mfa_pending_check(ctx->db, pending_token(ctx->req, body),
	    p);
	if (err == GH_ERR_DENIED) {
		record_failure(ctx, NULL, "", "mfa_token_invalid");
		respond_token_invalid(ctx->req);
		return false;
	}
	if (err == GH_OK)
		err = gh_identity_user_get(ctx->db, p->user_id, u);
	if (err != GH_OK) {
		respond_err(ctx->req, err);
		return false;
	}
	ctx->actor.type = "user";
	ctx->actor.id = u->id;
	if (p->purpose == GH_MFA_PURPOSE_ENROL) {
		gh_http_respond_error(ctx->req, 403, "mfa_enrolment_required",
		    "Enrol a TOTP authenticator first (POST /me/mfa/totp).");
		return false;
	}
	return true;
}

/* Ends the pending sign-in p after a denial (its own transaction). */
static void
pending_kill(struct api_ctx *ctx, const struct gh_mfa_pending *p)
{
	gh_err err;

	err = gh_auth_mfa_pending_delete(ctx->db, p->id);
	if (err != GH_OK)
		GH_LOG_ERR(err, "org %s: denied sign-in %s not removed",
		    ctx->org.id, p->id);
}

/* Checks that u may ask for an approval now; responds when not. */
static bool
approval_allowed(struct api_ctx *ctx, const struct gh_user *u)
{
	struct gh_mfa_policy pol;
	int64_t until = 0;
	bool live = false;
	gh_err err;

	err = mfa_policy_for(ctx, u->id, &pol);
	if (err == GH_OK && !pol.allow_approval) {
		gh_http_respond_error(ctx->req, 403, "mfa_method_refused",
		    "This organisation does not allow approval from another "
		    "device.");
		return false;
	}
	if (err == GH_OK)
		err = gh_auth_mfa_lock_check(ctx->db, u->id, gh_now_ms(), &until);
	if (err == GH_ERR_LIMIT) {
		char ra[24];

		snprintf(ra, sizeof ra, "%lld", (long long)((until -
		    gh_now_ms()) / 1000 + 1));
		if (gh_http_resp_header(ctx->req, "Retry-After", ra) != GH_OK)
			GH_LOG_WARN(GH_ERR_INTERNAL, "Retry-After not set");
		gh_http_respond_error(ctx->req, 429, "mfa_locked", "Too many "
		    "failures; multi-factor sign-in is locked for a while.");
		return false;
	}
	if (err == GH_OK)
		err = gh_auth_session_mfa_live(ctx->db, u->id,
		    &ctx->app->cfg.session, &live);
	if (err != GH_OK) {
		respond_err(ctx->req, err);
		return false;
	}
	if (!live) {
		gh_http_respond_error(ctx->req, 409, "approval_unavailable",
		    "No device is signed in with a second factor to approve "
		    "this sign-in.");
		return false;
	}
	return true;
}

#define QR_URL_MAX 512

static void
h_approval_create(void *app, struct gh_http_req *req)
{
	static const char *const keys[] = { "mfa_token", NULL };
	char code[GH_TOKEN_LEN + 1], url[QR_URL_MAX];
	struct gh_mfa_pending p;
	struct gh_approval a, prev;
	const char *ua = gh_http_req_header(req, "User-Agent");
	struct api_ctx ctx;
	struct gh_user u;
	char *svg = NULL;
	json_t *body = NULL;
	gh_err err;

	if (!guard_signin_rate(app, req))
		return;
	code[0] = url[0] = '\0';
	memset(&u, 0, sizeof u);
	if (!ctx_open(app, req, &ctx))
		return;
	if ((body = optional_body(req, keys)) == NULL ||
	    !pending_of(&ctx, body, &p, &u) || !approval_allowed(&ctx, &u))
		goto out;
	/* A denied request ends its sign-in: no asking again and again. */
	err = gh_auth_approval_of_pending(ctx.db, p.id, &prev);
	if (err == GH_OK && prev.state == GH_APPROVAL_DENIED) {
		pending_kill(&ctx, &p);
		gh_http_respond_error(req, 401, "approval_denied", "The "
		    "sign-in was denied from a signed-in device.");
		goto out;
	}
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_auth_approval_create(ctx.db, &p, ttl_ms(&ctx),
		    gh_http_req_client_ip(req), ua ? ua : "", code, &a);
	if (err == GH_OK)
		err = audit_approval(&ctx, "mfa.approval.request", u.id, a.id,
		    NULL);
	if (err == GH_OK && (size_t)snprintf(url, sizeof url,
	    "%s/o/%s/approve?c=%s", ctx.app->cfg.base_url, ctx.org.slug,
	    code) >= sizeof url)
		err = GH_ERR_INTERNAL;
	if (err == GH_OK)
		err = gh_auth_qr_svg(url, &svg);
	if (!finish(&ctx, err))
		goto out;
	gh_http_wake(req);
	gh_http_respond_json(req, 201, json_pack("{s:s, s:i, s:I, s:s, s:s}",
	    "approval_id", a.id, "number", a.number, "expires_in",
	    (json_int_t)expires_in_s(&a), "qr_url", url, "qr_svg", svg));
out:
	if (svg != NULL) {
		gh_wipe(svg, strlen(svg));
		free(svg);
	}
	gh_wipe(code, sizeof code);
	gh_wipe(url, sizeof url);
	gh_wipe(&u, sizeof u);
	wipe_member(body, "mfa_token");
	json_decref(body);
	ctx_close(&ctx);
}

/* Completes the pending sign-in p of u approved through a: a session as
 * after POST /session/mfa. Commits; on failure rolls back. */
static gh_err
approval_signin(struct api_ctx *ctx, const struct gh_mfa_pending *p,
    const struct gh_approval *a, struct gh_user *u, struct gh_session *s,
    char csrf[static GH_TOKEN_LEN + 1])
{
	const char *ua = gh_http_req_header(ctx->req, "User-Agent");
	gh_err err;

	err = gh_db_begin(ctx->db);
	if (err == GH_OK)	/* the approval goes with it (cascade) */
		err = gh_auth_mfa_pending_delete(ctx->db, p->id);
	/* Two polls racing: only the one that removed it signs in. */
	if (err == GH_OK && gh_db_changes(ctx->db) != 1)
		err = GH_ERR_DENIED;
	if (err == GH_OK)
		err = gh_auth_mfa_succeed(ctx->db, u->id);
	if (err == GH_OK)
		err = audit_approval(ctx, "mfa.approval.use", u->id, a->id,
		    NULL);
	if (err == GH_OK) {
		u->last_signin_at = gh_now_ms();
		err = gh_identity_user_touch_signin(ctx->db, u->id,
		    u->last_signin_at);
	}
	if (err == GH_OK)
		err = session_start(ctx, u, csrf, s);
	if (err == GH_OK)
		err = gh_auth_session_mark_mfa(ctx->db, s->id, gh_now_ms());
	if (err == GH_OK)
		err = signin_record(ctx, u, true, "mfa_approval",
		    gh_http_req_client_ip(ctx->req), ua ? ua : "");
	if (err == GH_OK)
		err = gh_db_commit(ctx->db);
	if (err != GH_OK)
		gh_db_rollback(ctx->db);
	return err;
}

static void
h_approval_poll(void *app, struct gh_http_req *req)
{
	static const char *const keys[] = { "mfa_token", NULL };
	char csrf[GH_TOKEN_LEN + 1];
	struct gh_mfa_pending p;
	struct gh_approval a;
	struct gh_session s;
	struct api_ctx ctx;
	struct gh_user u;
	json_t *body = NULL;
	gh_err err;

	csrf[0] = '\0';
	memset(&u, 0, sizeof u);
	if (!ctx_open(app, req, &ctx))
		return;
	if ((body = optional_body(req, keys)) == NULL ||
	    !pending_of(&ctx, body, &p, &u))
		goto out;
	err = gh_auth_approval_of_pending(ctx.db, p.id, &a);
	/* A poll that raced the one that completed the sign-in finds the
	 * approval gone with the pending sign-in: that is the 401 of a
	 * used token, not a sign-in that never asked. */
	if (err == GH_ERR_NOTFOUND && !pending_of(&ctx, body, &p, &u))
		goto out;
	if (err == GH_ERR_NOTFOUND) {
		gh_http_respond_error(req, 404, "approval_not_found", "No "
		    "approval was requested for this sign-in "
		    "(POST /session/mfa/approval).");
		goto out;
	}
	if (err != GH_OK) {
		respond_err(req, err);
		goto out;
	}
	switch (a.state) {
	case GH_APPROVAL_PENDING:
		gh_http_respond_json(req, 202, json_pack("{s:s, s:I}", "state",
		    "pending", "expires_in", (json_int_t)expires_in_s(&a)));
		break;
	case GH_APPROVAL_EXPIRED:
		gh_http_respond_error(req, 401, "approval_expired", "Nobody "
		    "approved in time; ask again or use another method.");
		break;
	case GH_APPROVAL_DENIED:
		pending_kill(&ctx, &p);
		clear_mfa_cookie(&ctx);
		gh_http_respond_error(req, 401, "approval_denied", "The "
		    "sign-in was denied from a signed-in device.");
		break;
	case GH_APPROVAL_APPROVED:
		err = approval_signin(&ctx, &p, &a, &u, &s, csrf);
		if (err == GH_ERR_DENIED) {
			respond_token_invalid(req);
			break;
		}
		if (err != GH_OK) {
			respond_err(req, err);
			break;
		}
		clear_mfa_cookie(&ctx);
		gh_http_respond_json(req, 200, json_pack("{s:o, s:o, s:s}",
		    "user", gh_identity_user_json(&u), "session",
		    session_json(&s, true), "csrf_token", csrf));
		break;
	}
out:
	gh_wipe(csrf, sizeof csrf);
	gh_wipe(&u, sizeof u);
	wipe_member(body, "mfa_token");
	json_decref(body);
	ctx_close(&ctx);
}

/* ---- the approving device ------------------------------------------------- */

bool
approval_session_ok(const struct api_ctx *ctx)
{
	return ctx->authed && ctx->via_session && ctx->session.mfa_at > 0;
}

static bool
require_mfa_session(struct api_ctx *ctx)
{
	if (approval_session_ok(ctx))
		return true;
	gh_http_respond_error(ctx->req, 403, "mfa_session_required", "Only a "
	    "session signed in with a second factor may see or approve "
	    "sign-ins.");
	return false;
}

json_t *
approval_json(const struct gh_approval *a)
{
	char created[25], expires[25];

	gh_time_rfc3339(a->created_at, created);
	gh_time_rfc3339(a->expires_at, expires);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "id", a->id,
	    "created_at", created, "expires_at", expires, "ip", a->source_ip,
	    "user_agent", a->user_agent, "expires_in",
	    (json_int_t)expires_in_s(a));
}

static void
list_one(const struct gh_approval *a, void *arg)
{
	json_array_append_new(arg, approval_json(a));
}

/* Lists the user's pending requests; with only_if_any answers only when
 * there is one (true), else answers nothing and returns false. */
static bool
list_answer(struct api_ctx *ctx, const char *user_id, bool only_if_any)
{
	json_t *arr = json_array();
	gh_err err;

	if (arr == NULL) {
		respond_err(ctx->req, GH_ERR_NOMEM);
		return true;
	}
	err = gh_auth_approval_list(ctx->db, user_id, gh_now_ms(), list_one,
	    arr);
	if (err != GH_OK) {
		json_decref(arr);
		respond_err(ctx->req, err);
		return true;
	}
	if (only_if_any && json_array_size(arr) == 0) {
		json_decref(arr);
		return false;
	}
	gh_http_respond_json(ctx->req, 200, json_pack("{s:o}", "approvals",
	    arr));
	return true;
}

/* The park check of a long-polling list: answers once a request is pending
 * or at the deadline. Another process may have made it, so each check reads
 * the database; the session is checked again, as it may have ended. */
static bool
list_park(void *app, struct gh_http_req *req, void *arg, bool final)
{
	struct api_ctx ctx;
	bool done = true;

	(void)arg;
	if (!ctx_open(app, req, &ctx))
		return true;
	if (ctx_auth(&ctx, false) && require_mfa_session(&ctx))
		done = list_answer(&ctx, ctx.user.id, !final);
	ctx_close(&ctx);
	return done;
}

static void
h_approvals_list(void *app, struct gh_http_req *req)
{
	const char *ws = gh_http_req_query(req, "wait");
	struct api_ctx ctx;
	char *end = NULL;
	long wait = 0;

	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth(&ctx, false) || !require_mfa_session(&ctx))
		goto out;
	if (ws != NULL) {
		wait = strtol(ws, &end, 10);
		if (ws[0] < '0' || ws[0] > '9' || *end != '\0' || wait < 0 ||
		    wait > WAIT_MAX_S) {
			respond_invalid(req, "wait: seconds, 0 to %d",
			    WAIT_MAX_S);
			goto out;
		}
	}
	if (list_answer(&ctx, ctx.user.id, wait > 0))
		goto out;
	/* The database goes back before the wait. */
	ctx_close(&ctx);
	(void)gh_http_park(req, list_park, NULL, gh_now_ms() + wait * 1000);
	return;
out:
	ctx_close(&ctx);
}

gh_err
approval_decide(struct api_ctx *ctx, const char *id, const char *code,
    bool approve, int number, const char **error_out,
    enum gh_approval_state *state_out)
{
	char idbuf[GH_ID_LEN + 1];
	struct gh_approval a;
	bool locked = false;
	gh_err err, derr;

	*error_out = NULL;
	*state_out = GH_APPROVAL_EXPIRED;
	if (code != NULL) {
		err = gh_auth_approval_by_code(ctx->db, code, ctx->user.id, &a);
		if (err != GH_OK)
			goto refused;
		/* a is overwritten below: keep the id apart. */
		gh_strlcpy(idbuf, a.id, sizeof idbuf);
		id = idbuf;
	}
	err = gh_db_begin(ctx->db);
	if (err != GH_OK)
		return err;
	derr = gh_auth_approval_decide(ctx->db, id, ctx->user.id, approve,
	    code != NULL, number, gh_now_ms(), &a);
	*state_out = a.state;
	if (derr == GH_ERR_NOTFOUND || derr == GH_ERR_CONFLICT) {
		gh_db_rollback(ctx->db);
		err = derr;
		goto refused;
	}
	err = derr == GH_ERR_DENIED ? GH_OK : derr;
	if (err == GH_OK && derr == GH_ERR_DENIED)
		err = audit_approval(ctx, "mfa.approval.mismatch", ctx->user.id,
		    a.id, NULL);
	if (err == GH_OK && a.state == GH_APPROVAL_APPROVED)
		err = audit_approval(ctx, "mfa.approval.approve", ctx->user.id,
		    a.id, NULL);
	if (err == GH_OK && a.state == GH_APPROVAL_DENIED) {
		/* Someone who knows the password is trying to sign in. */
		err = audit_approval(ctx, "mfa.approval.deny", ctx->user.id,
		    a.id, "possible_attack");
		if (err == GH_OK)
			err = signin_record(ctx, &ctx->user, false,
			    "mfa_approval_denied", a.source_ip, a.user_agent);
		if (err == GH_OK)
			err = notify_kind(ctx, ctx->user.id,
			    GH_NOTICE_SIGNIN_DENIED, "approval", a.source_ip,
			    a.user_agent);
		if (err == GH_OK)
			err = gh_auth_mfa_fail(ctx->db, ctx->user.id,
			    gh_now_ms(), &locked);
		if (err == GH_OK && locked)
			err = audit_approval(ctx, "mfa.lock", ctx->user.id,
			    a.id, NULL);
	}
	if (err == GH_OK)
		err = gh_db_commit(ctx->db);
	if (err != GH_OK) {
		gh_db_rollback(ctx->db);
		return err;
	}
	gh_http_wake(ctx->req);
	if (derr == GH_ERR_DENIED) {
		*error_out = "approval_number_mismatch";
		return GH_ERR_DENIED;
	}
	return GH_OK;
refused:
	if (err == GH_ERR_NOTFOUND)
		*error_out = "approval_not_found";
	else if (err == GH_ERR_CONFLICT)
		*error_out = a.state == GH_APPROVAL_EXPIRED ?
		    "approval_expired" : "approval_decided";
	return err;
}

/* Answers the outcome of approval_decide. */
static void
respond_decision(struct gh_http_req *req, gh_err err, const char *error,
    enum gh_approval_state state)
{
	if (err == GH_OK)
		gh_http_respond_json(req, 200, json_pack("{s:s}", "state",
		    gh_auth_approval_state_str(state)));
	else if (err == GH_ERR_NOTFOUND)
		gh_http_respond_error(req, 404, "approval_not_found", "No such "
		    "sign-in request of yours.");
	else if (err == GH_ERR_CONFLICT && state == GH_APPROVAL_EXPIRED)
		gh_http_respond_error(req, 410, "approval_expired", "The "
		    "sign-in request expired.");
	else if (err == GH_ERR_CONFLICT)
		gh_http_respond_error(req, 409, "approval_decided", "The "
		    "sign-in request was decided already.");
	else if (err == GH_ERR_DENIED && state == GH_APPROVAL_DENIED)
		gh_http_respond_error(req, 400, error, "Wrong number, too many "
		    "times: the sign-in was denied.");
	else if (err == GH_ERR_DENIED)
		gh_http_respond_error(req, 400, error, "That is not the number "
		    "the signing-in device shows.");
	else
		respond_err(req, err);
}

/* Reads "decision" ("approve" or "deny"); responds when invalid. */
static bool
decision_of(struct gh_http_req *req, json_t *body, bool *approve)
{
	const char *d = json_string_value(json_object_get(body, "decision"));

	if (d != NULL && strcmp(d, "approve") == 0)
		*approve = true;
	else if (d != NULL && strcmp(d, "deny") == 0)
		*approve = false;
	else {
		respond_invalid(req, "decision: \"approve\" or \"deny\"");
		return false;
	}
	return true;
}

static void
h_approval_decide(void *app, struct gh_http_req *req)
{
	static const char *const keys[] = { "decision", "number", NULL };
	const char *id = gh_http_req_param(req, "id"), *error = NULL;
	enum gh_approval_state state = GH_APPROVAL_EXPIRED;
	struct api_ctx ctx;
	json_t *body = NULL, *n;
	bool approve = false;
	int number = 0;
	gh_err err;

	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth(&ctx, false) || !require_mfa_session(&ctx) ||
	    (body = body_object(req, keys)) == NULL ||
	    !decision_of(req, body, &approve))
		goto out;
	n = json_object_get(body, "number");
	if (approve && (!json_is_integer(n) || json_integer_value(n) < 0 ||
	    json_integer_value(n) > 99)) {
		respond_invalid(req, "number: the two-digit number the "
		    "signing-in device shows");
		goto out;
	}
	if (approve)
		number = (int)json_integer_value(n);
	if (!gh_id_valid(id)) {
		respond_decision(req, GH_ERR_NOTFOUND, NULL, state);
		goto out;
	}
	err = approval_decide(&ctx, id, NULL, approve, number, &error, &state);
	respond_decision(req, err, error, state);
out:
	json_decref(body);
	ctx_close(&ctx);
}

static void
h_approval_qr(void *app, struct gh_http_req *req)
{
	static const char *const keys[] = { "code", "decision", NULL };
	const char *code = NULL, *error = NULL;
	enum gh_approval_state state = GH_APPROVAL_EXPIRED;
	struct api_ctx ctx;
	json_t *body = NULL;
	bool approve = false;
	gh_err err;

	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth(&ctx, false) || !require_mfa_session(&ctx) ||
	    (body = body_object(req, keys)) == NULL ||
	    !member_str(req, body, "code", &code) ||
	    !decision_of(req, body, &approve))
		goto out;
	if (code == NULL) {
		respond_invalid(req, "code: the secret of the QR code");
		goto out;
	}
	err = approval_decide(&ctx, NULL, code, approve, 0, &error, &state);
	respond_decision(req, err, error, state);
out:
	wipe_member(body, "code");
	json_decref(body);
	ctx_close(&ctx);
}

/* ---- the browser side ------------------------------------------------------ */

/* Served as /static/approval.js: the pages carry no inline script (CSP
 * script-src 'self'). */
static const char script[] =
    "// approval.js: approving a sign-in from another device (docs/api.md,\n"
    "// Approval from a signed-in device). On the account page (#approvals) it\n"
    "// long-polls the caller's pending requests and offers a number field with\n"
    "// approve and deny; on the second sign-in step (#approval-request) it asks\n"
    "// for an approval, shows the number and the QR code and polls.\n"
    "'use strict';\n"
    "(function () {\n"
    "  function el(tag, attrs, text) {\n"
    "    const e = document.createElement(tag);\n"
    "    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);\n"
    "    if (text !== undefined) e.textContent = text;\n"
    "    return e;\n"
    "  }\n"
    "  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }\n"
    "  async function call(method, url, body, csrf) {\n"
    "    const h = { 'Accept': 'application/json' };\n"
    "    if (body !== undefined) h['Content-Type'] = 'application/json';\n"
    "    if (csrf) h['X-CSRF-Token'] = csrf;\n"
    "    const r = await fetch(url, { method: method, headers: h,\n"
    "      credentials: 'same-origin',\n"
    "      body: body === undefined ? undefined : JSON.stringify(body) });\n"
    "    let j = {};\n"
    "    try { j = await r.json(); } catch (e) { j = {}; }\n"
    "    return { status: r.status, body: j };\n"
    "  }\n"
    "\n"
    "  // ---- the signed-in device: list, match the number, decide ----\n"
    "  function approver(box) {\n"
    "    const api = '/o/' + box.dataset.org + '/api/v1';\n"
    "    const csrf = box.dataset.csrf;\n"
    "    const list = el('ul', { 'class': 'approvals' });\n"
    "    const status = el('p', { 'role': 'status' });\n"
    "    box.append(el('h2', {}, 'Sign-in requests'), status, list);\n"
    "    const shown = new Set();\n"
    "\n"
    "    function render(a) {\n"
    "      if (shown.has(a.id)) return;\n"
    "      shown.add(a.id);\n"
    "      const li = el('li');\n"
    "      const form = el('form');\n"
    "      const inputId = 'n-' + a.id;\n"
    "      li.append(el('p', {}, 'Someone is signing in from ' + a.ip +\n"
    "        ' (' + a.user_agent + '). If it is you, type the number shown ' +\n"
    "        'there.'));\n"
    "      form.append(el('label', { 'for': inputId }, 'Number shown'),\n"
    "        el('input', { 'id': inputId, 'inputmode': 'numeric',\n"
    "          'pattern': '[0-9]{2}', 'maxlength': '2', 'autocomplete': 'off',\n"
    "          'required': '' }),\n"
    "        el('button', { 'type': 'submit' }, 'Approve'));\n"
    "      const deny = el('button', { 'type': 'button', 'class': 'deny' },\n"
    "        'Deny, it is not me');\n"
    "      const out = el('p', { 'role': 'status' });\n"
    "      li.append(form, deny, out);\n"
    "      list.append(li);\n"
    "      form.addEventListener('submit', async function (ev) {\n"
    "        ev.preventDefault();\n"
    "        const n = parseInt(form.querySelector('input').value, 10);\n"
    "        const r = await call('POST', api + '/me/approvals/' + a.id,\n"
    "          { decision: 'approve', number: n }, csrf);\n"
    "        out.textContent = r.status === 200 ? 'Approved.' :\n"
    "          (r.body.message || 'Refused.');\n"
    "        if (r.status === 200 || r.body.error !== 'approval_number_mismatch')\n"
    "          form.remove();\n"
    "      });\n"
    "      deny.addEventListener('click', async function () {\n"
    "        const r = await call('POST', api + '/me/approvals/' + a.id,\n"
    "          { decision: 'deny' }, csrf);\n"
    "        out.textContent = r.status === 200 ? 'Denied and recorded.' :\n"
    "          (r.body.message || 'Refused.');\n"
    "        form.remove();\n"
    "        deny.remove();\n"
    "      });\n"
    "      form.querySelector('input').focus();\n"
    "    }\n"
    "\n"
    "    (async function loop() {\n"
    "      // The first look answers at once; then each waits for news.\n"
    "      for (let wait = 0; ; wait = 25) {\n"
    "        let r;\n"
    "        try {\n"
    "          r = await call('GET', api + '/me/approvals?wait=' + wait);\n"
    "        } catch (e) {\n"
    "          r = { status: 0, body: {} };\n"
    "        }\n"
    "        if (r.status === 200) {\n"
    "          status.textContent = r.body.approvals.length ? '' :\n"
    "            'No sign-in is waiting for approval.';\n"
    "          r.body.approvals.forEach(render);\n"
    "          if (r.body.approvals.length) await sleep(2000);\n"
    "        } else if (r.status === 403 || r.status === 401) {\n"
    "          status.textContent = r.body.message || 'Not available.';\n"
    "          return;\n"
    "        } else {\n"
    "          await sleep(5000);\n"
    "        }\n"
    "      }\n"
    "    })();\n"
    "  }\n"
    "\n"
    "  // ---- the new device: ask, show the number and the QR code, poll ----\n"
    "  function requester(box) {\n"
    "    const api = '/o/' + box.dataset.org + '/api/v1';\n"
    "    const button = el('button', { 'type': 'button' },\n"
    "      'Approve from another device');\n"
    "    const out = el('div', { 'aria-live': 'polite' });\n"
    "    box.append(button, out);\n"
    "    button.addEventListener('click', async function () {\n"
    "      button.disabled = true;\n"
    "      const r = await call('POST', api + '/session/mfa/approval', {});\n"
    "      if (r.status !== 201) {\n"
    "        out.textContent = r.body.message || 'Not available.';\n"
    "        button.disabled = false;\n"
    "        return;\n"
    "      }\n"
    "      out.replaceChildren(\n"
    "        el('p', {}, 'On a device where you are signed in, open your ' +\n"
    "          'account page and type this number, or scan the code:'),\n"
    "        el('p', { 'class': 'number', 'id': 'approval-number' },\n"
    "          String(r.body.number)),\n"
    "        el('img', { 'alt': 'QR code to approve this sign-in', 'width': '200',\n"
    "          'height': '200', 'src': 'data:image/svg+xml;charset=utf-8,' +\n"
    "            encodeURIComponent(r.body.qr_svg) }),\n"
    "        el('p', { 'role': 'status' }, 'Waiting for approval…'));\n"
    "      for (;;) {\n"
    "        await sleep(2000);\n"
    "        const p = await call('POST', api + '/session/mfa/approval/poll', {});\n"
    "        if (p.status === 200) {\n"
    "          location.assign('/o/' + box.dataset.org + '/account');\n"
    "          return;\n"
    "        }\n"
    "        if (p.status !== 202) {\n"
    "          out.lastChild.textContent = p.body.message || 'Refused.';\n"
    "          button.disabled = false;\n"
    "          return;\n"
    "        }\n"
    "      }\n"
    "    });\n"
    "  }\n"
    "\n"
    "  const a = document.getElementById('approvals');\n"
    "  if (a) approver(a);\n"
    "  const q = document.getElementById('approval-request');\n"
    "  if (q) requester(q);\n"
    "})();\n";

static void
h_script(void *app, struct gh_http_req *req)
{
	(void)app;
	gh_http_respond(req, 200, "text/javascript; charset=utf-8", script,
	    sizeof script - 1);
}

gh_err
routes_approval(struct gh_http_router *r)
{
	static const struct gh_http_route_def routes[] = {
		{ "POST", "/o/{org}/api/v1/session/mfa/approval",
		    h_approval_create },
		{ "POST", "/o/{org}/api/v1/session/mfa/approval/poll",
		    h_approval_poll },
		{ "GET", "/o/{org}/api/v1/me/approvals", h_approvals_list },
		{ "POST", "/o/{org}/api/v1/me/approvals/qr", h_approval_qr },
		{ "POST", "/o/{org}/api/v1/me/approvals/{id}",
		    h_approval_decide },
		{ "GET", "/static/approval.js", h_script },
	};

	return gh_http_routes(r, routes, sizeof routes / sizeof *routes);
}
