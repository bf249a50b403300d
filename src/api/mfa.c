/*
 * mfa.c: the second step of sign-in and the MFA endpoints: completing a
 * pending sign-in with a TOTP or recovery code, TOTP enrolment and removal,
 * recovery codes, the org MFA policy and an admin's reset of a user's
 * factors.
 *
 * A user who must have MFA but has none after the grace window gets, at
 * sign-in, a pending sign-in of purpose "enrol" instead of a session: its
 * token (gh_mfa cookie or "mfa_token" member) is accepted only by
 * POST /me/mfa/totp and POST /me/mfa/totp/confirm, and the confirmation
 * ends the sign-in with a session.
 *
 * Untrusted input: codes, methods and tokens in JSON bodies and cookies,
 * the policy body, user ids in paths. Secrets: pending tokens (borrowed,
 * hashed by src/auth), TOTP and recovery codes (wiped with the body),
 * the enrolment secret and URI and new recovery codes (sent once, then
 * wiped), session tokens (wiped after the cookie is set).
 */
#include "api/api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

gh_err
mfa_policy_load(struct gh_db *db, struct gh_mfa_policy *out)
{
	char msg[128];
	json_t *j = NULL;
	gh_err err;

	gh_auth_mfa_policy_default(out);
	err = gh_identity_setting_get(db, "mfa_policy", &j);
	if (err == GH_ERR_NOTFOUND)
		return GH_OK;
	if (err != GH_OK)
		return err;
	/* Validated on the way in; a damaged row falls back to the default
	 * with a warning rather than locking everyone out. */
	if (gh_auth_mfa_policy_parse(j, false, out, msg, sizeof msg) != GH_OK) {
		GH_LOG_WARN(GH_ERR_INVALID, "org %s: mfa_policy unreadable: %s",
		    gh_db_org_id(db), msg);
		gh_auth_mfa_policy_default(out);
	}
	json_decref(j);
	return GH_OK;
}

/* Records a sign-in attempt of the MFA step in the caller's transaction. */
static gh_err
signin_record(struct api_ctx *ctx, const struct gh_user *u, bool success,
    const char *reason)
{
	const char *ua = gh_http_req_header(ctx->req, "User-Agent");
	struct gh_signin_record rec = { u->id, u->username,
		gh_http_req_client_ip(ctx->req), ua ? ua : "", success, reason };

	gh_http_metrics_signin(ctx->req, success ? "success" : "failure");
	return gh_audit_signin_record(ctx->db, &rec);
}

gh_err
audit_mfa(struct api_ctx *ctx, const char *action, const char *user_id,
    const char *method, const char *reason)
{
	json_t *changes;
	gh_err err;

	changes = json_pack("{s:s}", "method", method);
	if (changes != NULL && reason != NULL)
		json_object_set_new(changes, "reason", json_string(reason));
	err = gh_audit_append(ctx->db, &ctx->actor, action, "user", user_id,
	    changes);
	json_decref(changes);
	if (err == GH_OK)
		err = notify_for_action(ctx, action, user_id, method);
	return err;
}

void
mfa_cookie_clear(struct api_ctx *ctx)
{
	char path[GH_SLUG_MAX + 5];

	snprintf(path, sizeof path, "/o/%s/", ctx->org.slug);
	if (gh_http_set_cookie(ctx->req, MFA_COOKIE, "", path, -1,
	    GH_COOKIE_HTTPONLY | GH_COOKIE_SAMESITE_STRICT) != GH_OK)
		GH_LOG_WARN(GH_ERR_INTERNAL, "gh_mfa cookie not cleared");
}

/*
 * Counts a wrong second factor in its own transaction: the pending
 * sign-in's count (may kill it), the user's consecutive failures (may lock
 * MFA), the audit event and the sign-in record.
 */
static gh_err
count_failure(struct api_ctx *ctx, const struct gh_user *u,
    const char *pending_id, const char *method, const char *reason,
    bool *killed_out, bool *locked_out)
{
	int64_t now = gh_now_ms();
	gh_err err;

	*killed_out = false;
	*locked_out = false;
	err = gh_db_begin(ctx->db);
	if (err == GH_OK && pending_id != NULL)
		err = gh_auth_mfa_pending_fail(ctx->db, pending_id, killed_out);
	if (err == GH_OK)
		err = gh_auth_mfa_fail(ctx->db, u->id, now, locked_out);
	if (err == GH_OK)
		err = audit_mfa(ctx, "mfa.failure", u->id, method, reason);
	if (err == GH_OK && pending_id != NULL)
		err = signin_record(ctx, u, false, reason);
	if (err == GH_OK && *locked_out)
		err = audit_mfa(ctx, "mfa.lock", u->id, method, NULL);
	if (err == GH_OK)
		err = gh_db_commit(ctx->db);
	if (err != GH_OK) {
		gh_db_rollback(ctx->db);
		GH_LOG_ERR(err, "org %s: MFA failure not recorded", ctx->org.id);
	}
	return err;
}

/* Seconds until until_ms, at least 1, as text for Retry-After. */
static int64_t
retry_after_s(int64_t until_ms)
{
	int64_t s = (until_ms - gh_now_ms() + 999) / 1000;

	return s < 1 ? 1 : s;
}

void
mfa_respond_not_allowed(struct gh_http_req *req, const char *method)
{
	char msg[128];

	snprintf(msg, sizeof msg, "The organisation's MFA policy does not "
	    "allow %s.", method);
	gh_http_respond_error(req, 403, "mfa_method_not_allowed", msg);
}

/* True when method names a known second factor the policy refuses. */
static bool
method_refused(const struct gh_mfa_policy *pol, const char *method)
{
	return (strcmp(method, "totp") == 0 && !pol->allow_totp) ||
	    (strcmp(method, "recovery") == 0 && !pol->allow_recovery) ||
	    (strcmp(method, "webauthn") == 0 && !pol->allow_webauthn);
}

static gh_err
audit_device(struct api_ctx *ctx, const char *action, const char *user_id,
    const char *device_id, const char *reason, int64_t count)
{
	json_t *changes = json_object();
	gh_err err;

	if (changes == NULL)
		return GH_ERR_NOMEM;
	if (device_id != NULL)
		json_object_set_new(changes, "device", json_string(device_id));
	if (reason != NULL)
		json_object_set_new(changes, "reason", json_string(reason));
	if (count > 0)
		json_object_set_new(changes, "count", json_integer(count));
	err = gh_audit_append(ctx->db, &ctx->actor, action, "user", user_id,
	    changes);
	json_decref(changes);
	return err;
}

gh_err
mfa_device_remember(struct api_ctx *ctx, const struct gh_user *u,
    const struct gh_mfa_policy *pol, bool *done_out)
{
	const char *ua = gh_http_req_header(ctx->req, "User-Agent");
	char token[GH_TOKEN_LEN + 1], path[GH_SLUG_MAX + 5];
	struct gh_mfa_device d;
	gh_err err;

	*done_out = false;
	if (pol->remember_device_days <= 0)
		return GH_OK;
	err = gh_auth_mfa_device_create(ctx->db, u->id,
	    pol->remember_device_days, gh_http_req_cookie(ctx->req,
	    DEVICE_COOKIE), gh_http_req_client_ip(ctx->req), ua ? ua : "",
	    gh_now_ms(), token, &d);
	if (err == GH_OK)
		err = audit_device(ctx, "mfa.device.remember", u->id, d.id,
		    NULL, 0);
	snprintf(path, sizeof path, "/o/%s/", ctx->org.slug);
	if (err == GH_OK)
		err = gh_http_set_cookie(ctx->req, DEVICE_COOKIE, token, path,
		    (int64_t)pol->remember_device_days * 86400,
		    GH_COOKIE_HTTPONLY | GH_COOKIE_SAMESITE_LAX);
	gh_wipe(token, sizeof token);
	*done_out = err == GH_OK;
	return err;
}

gh_err
mfa_devices_revoke_all(struct api_ctx *ctx, const char *user_id,
    const char *reason)
{
	int64_t n = 0;
	gh_err err;

	err = gh_auth_mfa_device_revoke_user(ctx->db, user_id, gh_now_ms(),
	    &n);
	if (err == GH_OK && n > 0)
		err = audit_device(ctx, "mfa.device.revoke", user_id, NULL,
		    reason, n);
	return err;
}

/*
 * Checks a second factor of u (method "totp" or "recovery") inside the
 * caller's transaction. GH_OK when right; GH_ERR_DENIED (with *reason_out)
 * when wrong; GH_ERR_INVALID when malformed.
 */
static gh_err
factor_check(struct api_ctx *ctx, const struct gh_user *u,
    const struct gh_mfa_policy *pol, const char *method, const char *code,
    const char **reason_out)
{
	bool replay = false;
	gh_err err;

	if (strcmp(method, "totp") == 0 && pol->allow_totp) {
		if (ctx->app->kms == NULL)
			return GH_ERR_CRYPTO;
		err = gh_auth_totp_verify(ctx->db, ctx->app->kms, ctx->org.id,
		    u->id, code, gh_now_ms(), &replay);
		if (err == GH_ERR_NOTFOUND)
			err = GH_ERR_DENIED;
		*reason_out = replay ? "mfa_totp_replayed" :
		    err == GH_ERR_INVALID ? "mfa_code_malformed" :
		    "mfa_totp_invalid";
		return err;
	}
	if (strcmp(method, "recovery") == 0 && pol->allow_recovery) {
		err = gh_auth_recovery_use(ctx->db, u->id, code, gh_now_ms());
		*reason_out = err == GH_ERR_INVALID ? "mfa_code_malformed" :
		    "mfa_recovery_invalid";
		return err;
	}
	*reason_out = "mfa_method_refused";
	return GH_ERR_INVALID;
}

gh_err
mfa_signin_complete(struct api_ctx *ctx, const char *token,
    const char *method, const char *code, bool remember,
    struct gh_user *u_out, struct gh_session *s_out,
    char csrf_out[static GH_TOKEN_LEN + 1], const char **error_out,
    int64_t *retry_after_out, bool *remembered_out)
{
	struct gh_mfa_pending p;
	struct gh_mfa_policy pol;
	const char *reason = NULL;
	int64_t until = 0;
	bool killed, locked;
	struct gh_user u;
	gh_err err, ferr;

	*error_out = NULL;
	*retry_after_out = 0;
	*remembered_out = false;
	memset(&u, 0, sizeof u);
	err = gh_auth_mfa_pending_check(ctx->db, token, &p);
	if (err == GH_ERR_DENIED) {
		*error_out = "mfa_token_invalid";
		record_failure(ctx, NULL, "", "mfa_token_invalid");
		return err;
	}
	if (err == GH_OK)
		err = gh_identity_user_get(ctx->db, p.user_id, &u);
	if (err == GH_OK)
		err = mfa_policy_for(ctx, p.user_id, &pol);
	if (err == GH_OK)
		err = policy_signin_gate(ctx, p.user_id, &reason);
	if (err != GH_OK)
		return err;
	ctx->actor.type = "user";
	ctx->actor.id = p.user_id;
	if (reason != NULL) {
		/* The second step from a place the policy refuses. */
		record_failure(ctx, u.id, u.username, reason);
		*error_out = reason;
		err = GH_ERR_DENIED;
		goto out;
	}
	reason = "mfa_code_malformed";
	if (p.purpose == GH_MFA_PURPOSE_ENROL) {
		*error_out = "mfa_enrolment_required";
		err = GH_ERR_DENIED;
		goto out;
	}
	if (method == NULL || code == NULL) {
		err = GH_ERR_INVALID;
		goto out;
	}
	if (method_refused(&pol, method)) {
		/* Not a guess at a code: refused without counting. */
		record_failure(ctx, u.id, u.username, "mfa_method_refused");
		*error_out = "mfa_method_not_allowed";
		err = GH_ERR_DENIED;
		goto out;
	}
	err = gh_auth_mfa_lock_check(ctx->db, u.id, gh_now_ms(), &until);
	if (err == GH_ERR_LIMIT) {
		*retry_after_out = retry_after_s(until);
		record_failure(ctx, u.id, u.username, "mfa_locked");
		goto out;
	}
	if (err == GH_OK)
		err = gh_db_begin(ctx->db);
	if (err == GH_OK)
		err = factor_check(ctx, &u, &pol, method, code, &reason);
	if (err == GH_ERR_DENIED || err == GH_ERR_INVALID) {
		gh_db_rollback(ctx->db);
		/* A malformed code counts too: brute force comes in all
		 * shapes. */
		ferr = count_failure(ctx, &u, p.id, method[0] == 't' ? "totp" :
		    "recovery", reason, &killed, &locked);
		if (ferr != GH_OK) {
			err = ferr;
		} else if (locked) {
			*retry_after_out = GH_MFA_LOCK_MS / 1000;
			err = GH_ERR_LIMIT;
		} else if (err == GH_ERR_DENIED) {
			*error_out = killed ? "mfa_token_invalid" :
			    "invalid_mfa_code";
		}
		goto out;
	}
	if (err == GH_OK)
		err = gh_auth_mfa_pending_delete(ctx->db, p.id);
	if (err == GH_OK)
		err = gh_auth_mfa_succeed(ctx->db, u.id);
	if (err == GH_OK)
		err = audit_mfa(ctx, strcmp(method, "totp") == 0 ?
		    "mfa.totp.use" : "mfa.recovery_code.use", u.id, method,
		    NULL);
	if (err == GH_OK) {
		u.last_signin_at = gh_now_ms();
		err = gh_identity_user_touch_signin(ctx->db, u.id,
		    u.last_signin_at);
	}
	if (err == GH_OK)
		err = session_start(ctx, &u, csrf_out, s_out);
	if (err == GH_OK)
		err = gh_auth_session_mark_mfa(ctx->db, s_out->id, gh_now_ms());
	if (err == GH_OK)
		err = signin_record(ctx, &u, true, strcmp(method, "totp") == 0 ?
		    "mfa_totp" : "mfa_recovery");
	if (err == GH_OK && remember)
		err = mfa_device_remember(ctx, &u, &pol, remembered_out);
	if (err == GH_OK)
		err = gh_db_commit(ctx->db);
	if (err != GH_OK) {
		gh_db_rollback(ctx->db);
		goto out;
	}
	mfa_cookie_clear(ctx);
	*u_out = u;
out:
	if (err != GH_OK)
		ctx->actor.id = NULL;
	gh_wipe(u_out->password_hash, sizeof u_out->password_hash);
	gh_wipe(&u, sizeof u);
	return err;
}

/* Sends the answer for a refused MFA step. */
static void
respond_mfa_refused(struct gh_http_req *req, gh_err err, const char *error,
    int64_t retry_after)
{
	char ra[24];

	if (err == GH_ERR_LIMIT) {
		snprintf(ra, sizeof ra, "%lld", (long long)retry_after);
		if (gh_http_resp_header(req, "Retry-After", ra) != GH_OK)
			GH_LOG_WARN(GH_ERR_INTERNAL, "Retry-After not set");
		gh_http_respond_error(req, 429, "mfa_locked", "Too many wrong "
		    "codes; multi-factor sign-in is locked for a while.");
	} else if (err == GH_ERR_INVALID) {
		gh_http_respond_error(req, 400, "invalid_request", "Send "
		    "\"method\" (\"totp\" or \"recovery\") and \"code\": six "
		    "digits, or a recovery code XXXX-XXXX-XXXX-XXXX.");
	} else if (err == GH_ERR_DENIED && error != NULL &&
	    strcmp(error, "invalid_mfa_code") == 0) {
		gh_http_respond_error(req, 401, error,
		    "The code is wrong or was used already.");
	} else if (err == GH_ERR_DENIED && error != NULL &&
	    strcmp(error, "mfa_method_not_allowed") == 0) {
		gh_http_respond_error(req, 403, error, "The organisation's "
		    "MFA policy does not allow this method.");
	} else if (err == GH_ERR_DENIED && error != NULL &&
	    (strcmp(error, "ip_not_allowed") == 0 ||
	    strcmp(error, "country_not_allowed") == 0)) {
		policy_respond_refusal(req, error);
	} else if (err == GH_ERR_DENIED && error != NULL &&
	    strcmp(error, "mfa_enrolment_required") == 0) {
		gh_http_respond_error(req, 403, error, "Enrol a second "
		    "factor first (POST /me/mfa/totp or /me/webauthn/register).");
	} else if (err == GH_ERR_DENIED) {
		gh_http_respond_error(req, 401, "mfa_token_invalid", "The "
		    "sign-in expired or was refused; sign in again.");
	} else {
		respond_err(req, err);
	}
}

/* The pending token of a request: the gh_mfa cookie, else the body's
 * "mfa_token" member (borrowed from body). */
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

static void
h_session_mfa(void *app, struct gh_http_req *req)
{
	static const char *const keys[] = { "method", "code", "mfa_token",
		"remember_device", NULL };
	const char *method = NULL, *code = NULL, *error = NULL, *tok = NULL;
	char csrf[GH_TOKEN_LEN + 1];
	bool remember = false, remembered = false;
	json_t *rj, *out_body;
	int64_t retry = 0;
	struct gh_session s;
	struct api_ctx ctx;
	struct gh_user u;
	json_t *body;
	gh_err err;

	if (!guard_signin_rate(app, req))
		return;
	if (!ctx_open(app, req, &ctx))
		return;
	body = body_object(req, keys);
	if (body == NULL)
		goto out;
	if (!member_str(req, body, "method", &method) ||
	    !member_str(req, body, "code", &code) ||
	    !member_str(req, body, "mfa_token", &tok))
		goto out;
	rj = json_object_get(body, "remember_device");
	if (rj != NULL && !json_is_boolean(rj)) {
		respond_invalid(req, "remember_device: must be a boolean");
		goto out;
	}
	remember = json_is_true(rj);
	memset(&u, 0, sizeof u);
	err = mfa_signin_complete(&ctx, pending_token(req, body), method, code,
	    remember, &u, &s, csrf, &error, &retry, &remembered);
	if (err == GH_OK) {
		out_body = json_pack("{s:o, s:o, s:s}", "user",
		    gh_identity_user_json(&u), "session", session_json(&s,
		    true), "csrf_token", csrf);
		if (out_body != NULL && remember)
			json_object_set_new(out_body, "device_remembered",
			    json_boolean(remembered));
		gh_http_respond_json(req, 200, out_body);
	} else
		respond_mfa_refused(req, err, error, retry);
	gh_wipe(csrf, sizeof csrf);
out:
	wipe_member(body, "code");
	wipe_member(body, "mfa_token");
	json_decref(body);
	ctx_close(&ctx);
}

/* ---- the user's factors --------------------------------------------------- */

bool
mfa_enrol_auth(struct api_ctx *ctx, json_t *body, char pending_id[static
    GH_ID_LEN + 1])
{
	const char *token = pending_token(ctx->req, body);
	struct gh_mfa_pending p;
	gh_err err;

	pending_id[0] = '\0';
	if (token == NULL || gh_http_req_header(ctx->req, "Authorization") !=
	    NULL || gh_http_req_cookie(ctx->req, SESSION_COOKIE) != NULL)
		return ctx_auth(ctx, false);
	err = gh_auth_mfa_pending_check(ctx->db, token, &p);
	if (err == GH_OK && p.purpose != GH_MFA_PURPOSE_ENROL)
		err = GH_ERR_DENIED;
	if (err == GH_OK)
		err = gh_identity_user_get(ctx->db, p.user_id, &ctx->user);
	if (err == GH_ERR_DENIED) {
		gh_http_respond_error(ctx->req, 401, "mfa_token_invalid",
		    "The sign-in expired or was refused; sign in again.");
		return false;
	}
	if (err != GH_OK) {
		respond_err(ctx->req, err);
		return false;
	}
	gh_strlcpy(pending_id, p.id, GH_ID_LEN + 1);
	ctx->actor.type = "user";
	ctx->actor.id = ctx->user.id;
	ctx->authed = true;
	return true;
}

gh_err
mfa_enrol_signin(struct api_ctx *ctx, const char *pending_id,
    const char *reason, char csrf_out[static GH_TOKEN_LEN + 1],
    struct gh_session *s_out)
{
	gh_err err;

	err = gh_auth_mfa_pending_delete(ctx->db, pending_id);
	if (err == GH_OK)
		err = gh_identity_user_touch_signin(ctx->db, ctx->user.id,
		    gh_now_ms());
	if (err == GH_OK)
		err = session_start(ctx, &ctx->user, csrf_out, s_out);
	/* Enrolling was this sign-in's second factor. */
	if (err == GH_OK)
		err = gh_auth_session_mark_mfa(ctx->db, s_out->id, gh_now_ms());
	if (err == GH_OK)
		err = signin_record(ctx, &ctx->user, true, reason);
	return err;
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

static bool
kms_ready(struct api_ctx *ctx)
{
	if (ctx->app->kms != NULL &&
	    gh_kms_org_available(ctx->app->kms, ctx->org.id) == GH_OK)
		return true;
	gh_http_respond_error(ctx->req, 503, "keys_unavailable",
	    "The encryption keys of this organisation are unavailable.");
	return false;
}

static void
h_mfa_get(void *app, struct gh_http_req *req)
{
	struct gh_mfa_factors f;
	struct gh_mfa_policy pol;
	struct api_ctx ctx;
	char at[25], rc[25];
	enum gh_mfa_need need;
	gh_err err;

	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth(&ctx, false))
		goto out;
	err = gh_auth_mfa_factors(ctx.db, ctx.user.id, &f);
	if (err == GH_OK)
		err = mfa_policy_for(&ctx, ctx.user.id, &pol);
	if (err == GH_OK)
		err = gh_auth_mfa_need(ctx.db, &pol, ctx.user.id, gh_now_ms(),
		    &need);
	if (err != GH_OK) {
		respond_err(req, err);
		goto out;
	}
	gh_time_rfc3339(f.totp_confirmed_at, at);
	gh_time_rfc3339(f.recovery_created_at, rc);
	gh_http_respond_json(req, 200, json_pack("{s:{s:b, s:b, s:s?}, "
	    "s:{s:i, s:s?}, s:b, s:o}", "totp", "enabled", f.totp, "pending",
	    f.totp_pending, "confirmed_at", f.totp ? at : NULL,
	    "recovery_codes", "remaining", f.recovery_remaining, "created_at",
	    f.recovery_created_at > 0 ? rc : NULL, "enrolment_required",
	    need == GH_MFA_NEED_ENROL_GRACE || need == GH_MFA_NEED_ENROL_NOW,
	    "policy", gh_auth_mfa_policy_json(&pol)));
out:
	ctx_close(&ctx);
}

static void
h_totp_begin(void *app, struct gh_http_req *req)
{
	static const char *const keys[] = { "mfa_token", NULL };
	char pending[GH_ID_LEN + 1];
	struct gh_mfa_policy pol;
	struct gh_mfa_enrolment e;
	struct api_ctx ctx;
	json_t *body = NULL;
	gh_err err;

	memset(&e, 0, sizeof e);
	if (!ctx_open(app, req, &ctx))
		return;
	if ((body = optional_body(req, keys)) == NULL ||
	    !mfa_enrol_auth(&ctx, body, pending) || !kms_ready(&ctx))
		goto out;
	err = mfa_policy_for(&ctx, ctx.user.id, &pol);
	if (err == GH_OK && !pol.allow_totp) {
		mfa_respond_not_allowed(req, "totp");
		goto out;
	}
	if (err == GH_OK)
		err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_auth_totp_begin(ctx.db, ctx.app->kms, ctx.org.id,
		    ctx.user.id, ctx.org.name, ctx.user.username, &e);
	if (err == GH_ERR_CONFLICT) {
		gh_db_rollback(ctx.db);
		gh_http_respond_error(req, 409, "mfa_already_enrolled",
		    "TOTP is enrolled already; remove it first.");
		goto out;
	}
	if (finish(&ctx, err))
		gh_http_respond_json(req, 200, json_pack("{s:s, s:s, s:s, "
		    "s:s, s:i, s:i}", "otpauth_uri", e.otpauth_uri, "qr_svg",
		    e.qr_svg, "secret", e.secret, "algorithm", "SHA1",
		    "digits", GH_MFA_TOTP_DIGITS, "period",
		    GH_MFA_TOTP_STEP_S));
out:
	gh_auth_mfa_enrolment_free(&e);
	wipe_member(body, "mfa_token");
	json_decref(body);
	ctx_close(&ctx);
}

static json_t *
codes_json(char codes[static GH_MFA_RECOVERY_COUNT][GH_MFA_RECOVERY_LEN + 1])
{
	json_t *arr = json_array();

	for (int i = 0; arr != NULL && i < GH_MFA_RECOVERY_COUNT; i++)
		json_array_append_new(arr, json_string(codes[i]));
	return arr;
}

gh_err
mfa_totp_confirm(struct api_ctx *ctx, const char *pending, const char *code,
    char codes[static GH_MFA_RECOVERY_COUNT][GH_MFA_RECOVERY_LEN + 1],
    bool *fresh_out, char csrf_out[static GH_TOKEN_LEN + 1],
    struct gh_session *s_out)
{
	struct gh_mfa_factors f;
	bool killed, locked;
	gh_err err;

	*fresh_out = false;
	err = gh_db_begin(ctx->db);
	if (err == GH_OK)
		err = gh_auth_totp_confirm(ctx->db, ctx->app->kms, ctx->org.id,
		    ctx->user.id, code, gh_now_ms());
	if (err == GH_ERR_DENIED || err == GH_ERR_INVALID) {
		gh_db_rollback(ctx->db);
		if (pending[0] != '\0' && count_failure(ctx, &ctx->user,
		    pending, "totp", "mfa_totp_invalid", &killed, &locked) !=
		    GH_OK)
			return GH_ERR_STORE;
		return GH_ERR_DENIED;
	}
	if (err == GH_ERR_NOTFOUND) {
		gh_db_rollback(ctx->db);
		return err;
	}
	if (err == GH_OK)
		err = audit_mfa(ctx, "mfa.totp.enrol", ctx->user.id, "totp",
		    NULL);
	if (err == GH_OK)
		err = gh_auth_mfa_factors(ctx->db, ctx->user.id, &f);
	if (err == GH_OK && f.recovery_remaining == 0) {
		*fresh_out = true;
		err = gh_auth_recovery_generate(ctx->db, ctx->user.id, codes);
		if (err == GH_OK)
			err = audit_mfa(ctx, "mfa.recovery_codes.generate",
			    ctx->user.id, "recovery", NULL);
	}
	if (err == GH_OK && pending[0] != '\0') {
		/* Enrolment was the second step of a sign-in: finish it. */
		err = mfa_enrol_signin(ctx, pending, "mfa_totp_enrolled",
		    csrf_out, s_out);
	}
	if (err == GH_OK)
		err = gh_db_commit(ctx->db);
	if (err != GH_OK) {
		gh_db_rollback(ctx->db);
		*fresh_out = false;
		return err;
	}
	if (pending[0] != '\0')
		mfa_cookie_clear(ctx);
	return GH_OK;
}

static void
h_totp_confirm(void *app, struct gh_http_req *req)
{
	static const char *const keys[] = { "code", "mfa_token", NULL };
	char codes[GH_MFA_RECOVERY_COUNT][GH_MFA_RECOVERY_LEN + 1];
	char pending[GH_ID_LEN + 1], csrf[GH_TOKEN_LEN + 1];
	struct gh_session s;
	struct api_ctx ctx;
	const char *code = NULL;
	json_t *body = NULL, *out_body;
	bool fresh = false;
	gh_err err;

	memset(codes, 0, sizeof codes);
	csrf[0] = '\0';
	if (!ctx_open(app, req, &ctx))
		return;
	if ((body = body_object(req, keys)) == NULL ||
	    !member_str(req, body, "code", &code) ||
	    !mfa_enrol_auth(&ctx, body, pending) || !kms_ready(&ctx))
		goto out;
	err = mfa_totp_confirm(&ctx, pending, code, codes, &fresh, csrf, &s);
	if (err == GH_ERR_DENIED) {
		gh_http_respond_error(req, 400, "invalid_mfa_code", "The code "
		    "is wrong: enter the six digits your authenticator shows.");
		goto out;
	}
	if (err == GH_ERR_NOTFOUND) {
		gh_http_respond_error(req, 409, "mfa_not_started", "No TOTP "
		    "enrolment is waiting for confirmation.");
		goto out;
	}
	if (err != GH_OK) {
		respond_err(req, err);
		goto out;
	}
	out_body = json_pack("{s:b}", "enabled", true);
	if (out_body != NULL && fresh)
		json_object_set_new(out_body, "recovery_codes",
		    codes_json(codes));
	if (out_body != NULL && pending[0] != '\0') {
		json_object_set_new(out_body, "user",
		    gh_identity_user_json(&ctx.user));
		json_object_set_new(out_body, "session", session_json(&s,
		    true));
		json_object_set_new(out_body, "csrf_token", json_string(csrf));
	}
	gh_http_respond_json(req, 200, out_body);
out:
	gh_wipe(codes, sizeof codes);
	gh_wipe(csrf, sizeof csrf);
	wipe_member(body, "code");
	wipe_member(body, "mfa_token");
	json_decref(body);
	ctx_close(&ctx);
}

gh_err
mfa_proof(struct api_ctx *ctx, const char *method, const char *code,
    int64_t *retry_after_out)
{
	struct gh_mfa_policy pol;
	const char *reason = NULL;
	bool killed, locked;
	int64_t until = 0;
	gh_err err;

	*retry_after_out = 0;
	err = gh_auth_mfa_lock_check(ctx->db, ctx->user.id, gh_now_ms(),
	    &until);
	if (err == GH_ERR_LIMIT) {
		*retry_after_out = retry_after_s(until);
		return err;
	}
	if (err == GH_OK)
		err = mfa_policy_for(ctx, ctx->user.id, &pol);
	if (err == GH_OK)
		pol.allow_recovery = pol.allow_totp = true; /* a proof */
	if (err == GH_OK)
		err = gh_db_begin(ctx->db);
	if (err == GH_OK)
		err = factor_check(ctx, &ctx->user, &pol, method, code,
		    &reason);
	if (err == GH_ERR_DENIED || err == GH_ERR_INVALID) {
		gh_db_rollback(ctx->db);
		if (count_failure(ctx, &ctx->user, NULL, method, reason,
		    &killed, &locked) != GH_OK)
			return GH_ERR_STORE;
		if (locked) {
			*retry_after_out = GH_MFA_LOCK_MS / 1000;
			return GH_ERR_LIMIT;
		}
		return GH_ERR_DENIED;
	}
	if (err == GH_OK && strcmp(method, "recovery") == 0)
		err = audit_mfa(ctx, "mfa.recovery_code.use", ctx->user.id,
		    "recovery", NULL);
	if (err == GH_OK)
		err = gh_auth_mfa_succeed(ctx->db, ctx->user.id);
	if (err != GH_OK)
		gh_db_rollback(ctx->db);
	return err;
}

/*
 * Checks the current code or a recovery code of the caller before a change
 * to their factors, counting failures towards the lockout. On refusal
 * responds and returns false; on success the caller's transaction is
 * open.
 */
static bool
proof_check(struct api_ctx *ctx, json_t *body)
{
	const char *code = NULL, *rcode = NULL;
	int64_t retry = 0;
	gh_err err;

	if (!member_str(ctx->req, body, "code", &code) ||
	    !member_str(ctx->req, body, "recovery_code", &rcode))
		return false;
	if ((code == NULL) == (rcode == NULL)) {
		respond_invalid(ctx->req, "send \"code\" (TOTP) or "
		    "\"recovery_code\"");
		return false;
	}
	err = mfa_proof(ctx, code != NULL ? "totp" : "recovery",
	    code != NULL ? code : rcode, &retry);
	if (err == GH_ERR_LIMIT)
		respond_mfa_refused(ctx->req, err, NULL, retry);
	else if (err == GH_ERR_DENIED)
		gh_http_respond_error(ctx->req, 403, "invalid_mfa_code",
		    "The code is wrong or was used already.");
	else if (err != GH_OK)
		respond_err(ctx->req, err);
	return err == GH_OK;
}

gh_err
mfa_totp_remove(struct api_ctx *ctx)
{
	gh_err err;

	err = gh_auth_totp_remove(ctx->db, ctx->user.id);
	/* Recovery codes back up a factor: with none left they go too. */
	if (err == GH_OK)
		err = gh_db_run(ctx->db, "DELETE FROM mfa_recovery_codes WHERE "
		    "user_id = ?", "t", ctx->user.id);
	if (err == GH_OK)
		err = audit_mfa(ctx, "mfa.totp.remove", ctx->user.id, "totp",
		    NULL);
	return err;
}

static void
h_totp_delete(void *app, struct gh_http_req *req)
{
	static const char *const keys[] = { "code", "recovery_code", NULL };
	struct api_ctx ctx;
	json_t *body = NULL;

	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth(&ctx, false) || (body = body_object(req, keys)) == NULL)
		goto out;
	if (!proof_check(&ctx, body))
		goto out;
	if (finish(&ctx, mfa_totp_remove(&ctx)))
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	wipe_member(body, "code");
	wipe_member(body, "recovery_code");
	json_decref(body);
	ctx_close(&ctx);
}

gh_err
mfa_recovery_regenerate(struct api_ctx *ctx,
    char codes[static GH_MFA_RECOVERY_COUNT][GH_MFA_RECOVERY_LEN + 1])
{
	struct gh_mfa_factors f;
	gh_err err;

	err = gh_auth_mfa_factors(ctx->db, ctx->user.id, &f);
	if (err == GH_OK && !f.totp)
		err = GH_ERR_CONFLICT;
	if (err == GH_OK)
		err = gh_auth_recovery_generate(ctx->db, ctx->user.id, codes);
	if (err == GH_OK)
		err = audit_mfa(ctx, "mfa.recovery_codes.generate",
		    ctx->user.id, "recovery", NULL);
	return err;
}

static void
h_recovery_generate(void *app, struct gh_http_req *req)
{
	char codes[GH_MFA_RECOVERY_COUNT][GH_MFA_RECOVERY_LEN + 1];
	struct api_ctx ctx;
	gh_err err;

	memset(codes, 0, sizeof codes);
	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth(&ctx, false))
		goto out;
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = mfa_recovery_regenerate(&ctx, codes);
	if (err == GH_ERR_CONFLICT) {
		gh_db_rollback(ctx.db);
		gh_http_respond_error(req, 409, "mfa_not_enrolled", "Enrol "
		    "TOTP before making recovery codes.");
		goto out;
	}
	if (finish(&ctx, err))
		gh_http_respond_json(req, 200, json_pack("{s:o}",
		    "recovery_codes", codes_json(codes)));
out:
	gh_wipe(codes, sizeof codes);
	ctx_close(&ctx);
}

/* ---- remembered devices ---------------------------------------------------- */

static void
collect_device(const struct gh_mfa_device *d, void *arg)
{
	char created[25], expires[25], used[25];
	json_t *j;

	gh_time_rfc3339(d->created_at, created);
	gh_time_rfc3339(d->expires_at, expires);
	j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", d->id, "created_at",
	    created, "expires_at", expires, "ip", d->ip, "user_agent",
	    d->user_agent);
	if (j != NULL && d->last_used_at > 0) {
		gh_time_rfc3339(d->last_used_at, used);
		json_object_set_new(j, "last_used_at", json_string(used));
	} else if (j != NULL) {
		json_object_set_new(j, "last_used_at", json_null());
	}
	json_array_append_new(arg, j);
}

static void
h_devices_list(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	json_t *arr = NULL;
	gh_err err;

	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth(&ctx, false))
		goto out;
	arr = json_array();
	err = arr != NULL ? GH_OK : GH_ERR_NOMEM;
	if (err == GH_OK)
		err = gh_auth_mfa_device_list(ctx.db, ctx.user.id, gh_now_ms(),
		    collect_device, arr);
	if (err != GH_OK) {
		respond_err(req, err);
		goto out;
	}
	gh_http_respond_json(req, 200, json_pack("{s:O}", "devices", arr));
out:
	json_decref(arr);
	ctx_close(&ctx);
}

static void
h_device_delete(void *app, struct gh_http_req *req)
{
	const char *id = gh_http_req_param(req, "id");
	struct api_ctx ctx;
	gh_err err;

	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth(&ctx, false))
		goto out;
	if (!gh_id_valid(id)) {
		respond_err(req, GH_ERR_NOTFOUND);
		goto out;
	}
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_auth_mfa_device_revoke(ctx.db, ctx.user.id, id,
		    gh_now_ms());
	if (err == GH_OK)
		err = audit_device(&ctx, "mfa.device.revoke", ctx.user.id, id,
		    "user", 0);
	if (finish(&ctx, err))
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	ctx_close(&ctx);
}

static void
h_devices_delete(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	gh_err err;

	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth(&ctx, false))
		goto out;
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = mfa_devices_revoke_all(&ctx, ctx.user.id, "user");
	if (finish(&ctx, err))
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	ctx_close(&ctx);
}

/* ---- administration ------------------------------------------------------- */

static void
h_policy_get(void *app, struct gh_http_req *req)
{
	struct gh_mfa_policy pol;
	struct api_ctx ctx;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "org.read"))
		return;
	err = mfa_policy_load(ctx.db, &pol);
	if (err != GH_OK)
		respond_err(req, err);
	else
		gh_http_respond_json(req, 200, gh_auth_mfa_policy_json(&pol));
	ctx_close(&ctx);
}

/* Every required group must exist; answers 400 unknown_group. */
static bool
required_groups_exist(struct api_ctx *ctx, const struct gh_mfa_policy *p)
{
	struct gh_group g;
	gh_err err;

	for (size_t i = 0; i < p->n_groups; i++) {
		err = gh_identity_group_get(ctx->db, p->groups[i].group_id, &g);
		if (err == GH_ERR_NOTFOUND) {
			char msg[96];

			snprintf(msg, sizeof msg, "required_groups: no group "
			    "with id %s.", p->groups[i].group_id);
			gh_http_respond_error(ctx->req, 400, "unknown_group",
			    msg);
			return false;
		}
		if (err != GH_OK) {
			respond_err(ctx->req, err);
			return false;
		}
	}
	return true;
}

static void
h_policy_patch(void *app, struct gh_http_req *req)
{
	static const char *const keys[] = { "required", "grace_days",
		"methods", "remember_device_days",
		"required_groups", NULL };
	struct gh_mfa_policy before, after;
	int64_t revoked = 0;
	struct api_ctx ctx;
	json_t *body = NULL, *stored = NULL, *changes = NULL;
	char msg[128];
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "org.write"))
		return;
	if ((body = body_object(req, keys)) == NULL)
		goto out;
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = mfa_policy_load(ctx.db, &before);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	after = before;
	if (gh_auth_mfa_policy_parse(body, true, &after, msg, sizeof msg) !=
	    GH_OK) {
		gh_db_rollback(ctx.db);
		respond_invalid(req, "%s", msg);
		goto out;
	}
	if (!required_groups_exist(&ctx, &after)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	/* The grace window runs from the moment MFA became required, for
	 * the org or for a group. */
	gh_auth_mfa_policy_stamp(&before, &after, gh_now_ms());
	stored = gh_auth_mfa_policy_json(&after);
	changes = json_pack("{s:o, s:o}", "from",
	    gh_auth_mfa_policy_json(&before), "to",
	    gh_auth_mfa_policy_json(&after));
	err = stored != NULL && changes != NULL ? GH_OK : GH_ERR_NOMEM;
	/* Turning the option off forgets every remembered device; turning
	 * it on again must not bring them back. */
	if (err == GH_OK && before.remember_device_days > 0 &&
	    after.remember_device_days == 0)
		err = gh_auth_mfa_device_revoke_all(ctx.db, gh_now_ms(),
		    &revoked);
	if (err == GH_OK && revoked > 0)
		json_object_set_new(changes, "devices_revoked",
		    json_integer(revoked));
	if (err == GH_OK)
		err = gh_identity_setting_put(ctx.db, "mfa_policy", stored);
	if (err == GH_OK)
		err = gh_audit_append(ctx.db, &ctx.actor, "mfa_policy.update",
		    "org", ctx.org.id, changes);
	if (finish(&ctx, err))
		gh_http_respond_json(req, 200, json_incref(stored));
out:
	json_decref(stored);
	json_decref(changes);
	json_decref(body);
	ctx_close(&ctx);
}

static void
h_user_mfa_reset(void *app, struct gh_http_req *req)
{
	const char *id = gh_http_req_param(req, "id");
	struct api_ctx ctx;
	struct gh_user u;
	gh_err err;

	memset(&u, 0, sizeof u);
	if (!ctx_open_perm(app, req, &ctx, "users.write"))
		return;
	if (!gh_id_valid(id)) {
		respond_err(req, GH_ERR_NOTFOUND);
		goto out;
	}
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_identity_user_get(ctx.db, id, &u);
	if (err == GH_OK && !ctx_may_user(&ctx, "users.write", id)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	if (err == GH_OK)
		err = mfa_devices_revoke_all(&ctx, id, "mfa_reset");
	if (err == GH_OK)
		err = gh_auth_mfa_reset(ctx.db, id);
	if (err == GH_OK)
		err = audit_mfa(&ctx, "mfa.reset", id, "all", NULL);
	if (finish(&ctx, err))
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	gh_wipe(&u, sizeof u);
	ctx_close(&ctx);
}

gh_err
routes_mfa(struct gh_http_router *r)
{
	static const struct gh_http_route_def routes[] = {
		{ "POST", "/o/{org}/api/v1/session/mfa", h_session_mfa },
		{ "GET", "/o/{org}/api/v1/me/mfa", h_mfa_get },
		{ "POST", "/o/{org}/api/v1/me/mfa/totp", h_totp_begin },
		{ "POST", "/o/{org}/api/v1/me/mfa/totp/confirm",
		    h_totp_confirm },
		{ "DELETE", "/o/{org}/api/v1/me/mfa/totp", h_totp_delete },
		{ "POST", "/o/{org}/api/v1/me/mfa/recovery-codes",
		    h_recovery_generate },
		{ "GET", "/o/{org}/api/v1/me/mfa/devices", h_devices_list },
		{ "DELETE", "/o/{org}/api/v1/me/mfa/devices", h_devices_delete },
		{ "DELETE", "/o/{org}/api/v1/me/mfa/devices/{id}",
		    h_device_delete },
		{ "GET", "/o/{org}/api/v1/mfa-policy", h_policy_get },
		{ "PATCH", "/o/{org}/api/v1/mfa-policy", h_policy_patch },
		{ "DELETE", "/o/{org}/api/v1/users/{id}/mfa",
		    h_user_mfa_reset },
	};

	return gh_http_routes(r, routes, sizeof routes / sizeof *routes);
}
