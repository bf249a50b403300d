/*
 * account.c: password sign-in (JSON), sign-out, the signed-in user, their
 * sessions and their own password change.
 * A password sign-in of a user who needs a second factor ends in a pending
 * sign-in (src/api/mfa.c completes it) instead of a session.
 * Untrusted input: sign-in bodies and session ids in paths. Secrets:
 * passwords (borrowed from the parsed body, wiped with it), session and
 * pending MFA tokens (wiped after the cookie is set). Password work runs on the worker
 * pool through gh_http_defer so that hashing never stalls other requests.
 */
#include "api/api_int.h"
#include "auth/webauthn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *
session_json(const struct gh_session *s, bool current)
{
	char created[25], seen[25], expires[25];

	gh_time_rfc3339(s->created_at, created);
	gh_time_rfc3339(s->last_seen_at, seen);
	gh_time_rfc3339(s->expires_at, expires);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "id", s->id,
	    "created_at", created, "last_seen_at", seen, "expires_at", expires,
	    "source_ip", s->source_ip, "user_agent", s->user_agent, "current",
	    current);
}

static gh_err
set_session_cookie(struct api_ctx *ctx, const char *value, int64_t max_age)
{
	char path[GH_SLUG_MAX + 5];

	snprintf(path, sizeof path, "/o/%s/", ctx->org.slug);
	return gh_http_set_cookie(ctx->req, SESSION_COOKIE, value, path,
	    max_age, GH_COOKIE_HTTPONLY | GH_COOKIE_SAMESITE_LAX);
}

gh_err
session_start(struct api_ctx *ctx, const struct gh_user *u,
    char csrf_out[static GH_TOKEN_LEN + 1], struct gh_session *s_out)
{
	const char *ua = gh_http_req_header(ctx->req, "User-Agent");
	char token[GH_TOKEN_LEN + 1];
	struct gh_session_limits lim;
	const char *refusal;
	int64_t max_sessions;
	json_t *changes;
	gh_err err;

	/* The user's security policy: shorter limits, a cap on sessions,
	 * and (a backstop: every sign-in path checks first) the network. */
	err = policy_session_limits(ctx, u->id, &lim, &max_sessions,
	    &refusal);
	if (err == GH_OK && refusal != NULL)
		err = GH_ERR_DENIED;
	if (err != GH_OK)
		return err;
	err = gh_auth_session_create(ctx->db, u->id, &lim,
	    gh_http_req_client_ip(ctx->req), ua ? ua : "", token, s_out);
	if (err != GH_OK)
		return err;
	changes = json_pack("{s:s}", "user_id", u->id);
	err = gh_audit_append(ctx->db, &ctx->actor, "session.create",
	    "session", s_out->id, changes);
	json_decref(changes);
	if (err == GH_OK)
		err = policy_sessions_trim(ctx, u->id, max_sessions);
	if (err == GH_OK)
		err = set_session_cookie(ctx, token, lim.absolute_ms / 1000);
	if (err == GH_OK)
		gh_auth_session_csrf(token, csrf_out);
	gh_wipe(token, sizeof token);
	return err;
}

static gh_err
record_attempt(struct api_ctx *ctx, const char *user_id, const char *username,
    bool success, const char *reason)
{
	const char *ua = gh_http_req_header(ctx->req, "User-Agent");
	struct gh_signin_record rec = { user_id, username,
		gh_http_req_client_ip(ctx->req), ua ? ua : "", success, reason };

	gh_http_metrics_signin(ctx->req, success ? "success" : "failure");
	return gh_audit_signin_record(ctx->db, &rec);
}

/* Records a failed attempt in its own transaction. */
void
record_failure(struct api_ctx *ctx, const char *user_id, const char *username,
    const char *reason)
{
	gh_err err;

	err = gh_db_begin(ctx->db);
	if (err == GH_OK)
		err = record_attempt(ctx, user_id, username, false, reason);
	if (err == GH_OK)
		err = gh_db_commit(ctx->db);
	if (err != GH_OK) {
		gh_db_rollback(ctx->db);
		GH_LOG_ERR(err, "org %s: sign-in failure not recorded",
		    ctx->org.id);
	}
}

/* Verifies the password; on success sets *rehash_out to a new hash the
 * caller frees, when the stored one is weaker than the configured one. */
static const char *
check_password(struct api_ctx *ctx, const struct gh_user *u, bool found,
    const char *password, char **rehash_out)
{
	const struct gh_pw_params *pp = &ctx->app->cfg.pw;
	bool rehash = false;
	gh_err err;

	*rehash_out = NULL;
	if (!found || u->password_hash[0] == '\0') {
		/* Same work as a real check: the answer must not tell
		 * whether the user exists. */
		gh_auth_pw_verify_dummy(pp, password);
		return "bad_credentials";
	}
	err = gh_auth_pw_verify(pp, u->password_hash, password, &rehash);
	if (err != GH_OK) {
		if (err != GH_ERR_DENIED)
			GH_LOG_WARN(err, "org %s: user %s: stored hash unusable",
			    ctx->org.id, u->id);
		return "bad_credentials";
	}
	if (strcmp(u->state, "active") != 0)
		return "user_disabled";
	if (rehash && gh_auth_pw_hash(pp, password, rehash_out) != GH_OK) {
		GH_LOG_WARN(GH_ERR_CRYPTO, "org %s: user %s: re-hash failed",
		    ctx->org.id, u->id);
		*rehash_out = NULL;
	}
	return NULL;
}

static gh_err
rehash_store(struct api_ctx *ctx, const struct gh_user *u, const char *hash)
{
	struct gh_audit_actor sys = ctx->actor;
	json_t *changes;
	gh_err err;

	err = gh_identity_user_swap_hash(ctx->db, u->id, u->password_hash,
	    hash);
	if (err == GH_ERR_CONFLICT)
		return GH_OK;	/* changed meanwhile: keep the newer one */
	if (err != GH_OK)
		return err;
	sys.type = "system";
	sys.id = NULL;
	changes = json_pack("{s:s, s:s}", "password_hash", "upgraded",
	    "algorithm", "argon2id");
	err = gh_audit_append(ctx->db, &sys, "user.password_rehash", "user",
	    u->id, changes);
	json_decref(changes);
	return err;
}

/* Answers whether u needs a second factor, by the one decision in
 * src/auth (gh_auth_mfa_need) under the org's policy. A second factor
 * (not enrolment) is waived when the browser's gh_device cookie names a
 * live remembered device of u within the policy's days, and within the
 * security policy's reauth_interval_s when that is shorter:
 * *remembered_out. */
static gh_err
mfa_need_of(struct api_ctx *ctx, const struct gh_user *u,
    enum gh_mfa_need *need_out, bool *remembered_out)
{
	char device[GH_ID_LEN + 1];
	struct gh_mfa_policy pol;
	int64_t max_age_s;
	gh_err err;

	*remembered_out = false;
	err = mfa_policy_for(ctx, u->id, &pol);
	if (err == GH_OK)
		err = gh_auth_mfa_need(ctx->db, &pol, u->id, gh_now_ms(),
		    need_out);
	if (err != GH_OK || *need_out != GH_MFA_NEED_VERIFY ||
	    pol.remember_device_days <= 0 ||
	    gh_http_req_cookie(ctx->req, DEVICE_COOKIE) == NULL)
		return err;
	max_age_s = (int64_t)pol.remember_device_days * 86400;
	if (pol.reauth_interval_s > 0 && pol.reauth_interval_s < max_age_s)
		max_age_s = pol.reauth_interval_s;
	err = gh_auth_mfa_device_check(ctx->db, u->id,
	    gh_http_req_cookie(ctx->req, DEVICE_COOKIE), max_age_s,
	    gh_now_ms(), device);
	if (err == GH_ERR_DENIED)
		return GH_OK;
	if (err == GH_OK) {
		*remembered_out = true;
		*need_out = GH_MFA_NEED_NONE;
	}
	return err;
}

gh_err
signin_password(struct api_ctx *ctx, const char *username,
    const char *password, struct gh_user *u_out, struct gh_session *s_out,
    char csrf_out[static GH_TOKEN_LEN + 1], const char **reason_out,
    enum gh_mfa_need *need_out, char mfa_token_out[static GH_TOKEN_LEN + 1])
{
	const char *ua = gh_http_req_header(ctx->req, "User-Agent");
	enum gh_mfa_need need = GH_MFA_NEED_NONE;
	bool pending, remembered = false, password_ok = false;
	struct gh_user u;
	char *rehash = NULL;
	const char *reason;
	bool found;
	gh_err err;

	*reason_out = NULL;
	*need_out = GH_MFA_NEED_NONE;
	mfa_token_out[0] = '\0';
	memset(s_out, 0, sizeof *s_out);
	/* An account waiting after failed attempts from here is refused
	 * before its password is even checked. */
	if (guard_account_locked(ctx, username, &ctx->retry_after_s)) {
		record_failure(ctx, NULL, username, "too_many_attempts");
		*reason_out = "too_many_attempts";
		return GH_ERR_LIMIT;
	}
	err = gh_identity_user_find(ctx->db, username, &u);
	if (err != GH_OK && err != GH_ERR_NOTFOUND)
		return err;
	found = err == GH_OK;
	reason = check_password(ctx, &u, found, password, &rehash);
	/* The right password from a place the user's security policy
	 * refuses: no session, no second step. */
	if (reason == NULL) {
		password_ok = true;
		err = policy_signin_gate(ctx, u.id, &reason);
		if (err != GH_OK) {
			gh_str_wipe_free(rehash);
			gh_wipe(&u, sizeof u);
			return err;
		}
	}
	if (reason != NULL) {
		if (!password_ok)
			guard_account_failed(ctx, username);
		gh_str_wipe_free(rehash);
		rehash = NULL;
		record_failure(ctx, found ? u.id : NULL, username, reason);
		*reason_out = reason;
		gh_wipe(&u, sizeof u);
		return GH_ERR_DENIED;
	}
	guard_account_succeeded(ctx, username);
	ctx->actor.type = "user";
	ctx->actor.id = u.id;
	err = gh_db_begin(ctx->db);
	if (err == GH_OK && rehash != NULL)
		err = rehash_store(ctx, &u, rehash);
	if (err == GH_OK)
		err = mfa_need_of(ctx, &u, &need, &remembered);
	pending = need == GH_MFA_NEED_VERIFY || need == GH_MFA_NEED_ENROL_NOW;
	if (err == GH_OK && pending) {
		/* The password was right, but no session yet: a pending
		 * sign-in waits for the second factor (or the enrolment). */
		err = gh_auth_mfa_pending_create(ctx->db, u.id,
		    need == GH_MFA_NEED_VERIFY ? GH_MFA_PURPOSE_VERIFY :
		    GH_MFA_PURPOSE_ENROL, gh_http_req_client_ip(ctx->req),
		    ua ? ua : "", mfa_token_out, NULL);
		if (err == GH_OK)
			err = record_attempt(ctx, u.id, u.username, false,
			    need == GH_MFA_NEED_VERIFY ? "mfa_required" :
			    "mfa_enrolment_required");
	} else {
		if (err == GH_OK) {
			u.last_signin_at = gh_now_ms();
			err = gh_identity_user_touch_signin(ctx->db, u.id,
			    u.last_signin_at);
		}
		if (err == GH_OK)
			err = session_start(ctx, &u, csrf_out, s_out);
		if (err == GH_OK)
			err = record_attempt(ctx, u.id, u.username, true,
			    remembered ? "mfa_remembered_device" : "ok");
	}
	if (err == GH_OK)
		err = gh_db_commit(ctx->db);
	if (err != GH_OK) {
		gh_db_rollback(ctx->db);
		ctx->actor.id = NULL;
		gh_wipe(mfa_token_out, GH_TOKEN_LEN + 1);
	} else {
		*need_out = need;
		*u_out = u;
		if (remembered)
			*reason_out = "mfa_remembered_device";
		gh_wipe(u_out->password_hash, sizeof u_out->password_hash);
	}
	gh_str_wipe_free(rehash);
	gh_wipe(&u, sizeof u);
	return err;
}

static void
respond_signed_in(struct api_ctx *ctx, const struct gh_user *u,
    const struct gh_session *s, const char *csrf, enum gh_mfa_need need,
    bool remembered)
{
	json_t *body;

	body = json_pack("{s:o, s:o, s:s}", "user", gh_identity_user_json(u),
	    "session", session_json(s, true), "csrf_token", csrf);
	if (body != NULL && remembered)
		json_object_set_new(body, "mfa_remembered_device",
		    json_true());
	if (body != NULL && need == GH_MFA_NEED_ENROL_GRACE)
		json_object_set_new(body, "mfa_enrolment_required",
		    json_true());
	gh_http_respond_json(ctx->req, 200, body);
}

/* Answers a password sign-in that needs a second factor: the pending
 * token in the body and in the gh_mfa cookie, and the methods the user
 * may complete it with. */
static void
respond_mfa_required(struct api_ctx *ctx, const struct gh_user *u,
    enum gh_mfa_need need, const char *token)
{
	struct gh_mfa_factors f;
	struct gh_mfa_policy pol;
	char path[GH_SLUG_MAX + 5];
	json_t *body, *methods;
	int64_t keys = 0;
	bool live = false;
	gh_err err;

	err = mfa_policy_for(ctx, u->id, &pol);
	if (err == GH_OK)
		err = gh_auth_mfa_factors(ctx->db, u->id, &f);
	snprintf(path, sizeof path, "/o/%s/", ctx->org.slug);
	if (err == GH_OK)
		err = gh_http_set_cookie(ctx->req, MFA_COOKIE, token, path,
		    GH_MFA_PENDING_TTL_MS / 1000,
		    GH_COOKIE_HTTPONLY | GH_COOKIE_SAMESITE_STRICT);
	if (err != GH_OK) {
		respond_err(ctx->req, err);
		return;
	}
	methods = json_array();
	if (need == GH_MFA_NEED_VERIFY && f.totp && pol.allow_totp)
		json_array_append_new(methods, json_string("totp"));
	if (need == GH_MFA_NEED_VERIFY && f.recovery_remaining > 0 &&
	    pol.allow_recovery)
		json_array_append_new(methods, json_string("recovery"));
	/* A passkey or security key completes it through
	 * POST /session/mfa/webauthn (options first). */
	if (need == GH_MFA_NEED_VERIFY && pol.allow_webauthn &&
	    gh_auth_webauthn_cred_count(ctx->db, u->id, &keys) == GH_OK &&
	    keys > 0)
		json_array_append_new(methods, json_string("webauthn"));
	/* Approval from another device: only when one is signed in with a
	 * second factor (POST /session/mfa/approval). */
	if (need == GH_MFA_NEED_VERIFY && pol.allow_approval &&
	    gh_auth_session_mfa_live(ctx->db, u->id, &ctx->app->cfg.session,
	    &live) == GH_OK && live)
		json_array_append_new(methods, json_string("approval"));
	body = json_pack("{s:b, s:o, s:s, s:i}", "mfa_required", true,
	    "methods", methods, "mfa_token", token, "expires_in",
	    GH_MFA_PENDING_TTL_MS / 1000);
	if (body != NULL && need == GH_MFA_NEED_ENROL_NOW)
		json_object_set_new(body, "mfa_enrolment_required",
		    json_true());
	gh_http_respond_json(ctx->req, 200, body);
}

/* The username of a sign-in body, if it has one, for the record of an
 * attempt refused before the body is fully read. The password in the
 * parsed copy is wiped. */
static void
peek_username(struct gh_http_req *req, char out[static GH_USERNAME_MAX + 1])
{
	json_t *peek = NULL, *pw;
	char msg[8];

	out[0] = '\0';
	if (gh_http_req_json(req, &peek, msg, sizeof msg) != GH_OK)
		return;
	if (json_is_string(json_object_get(peek, "username")))
		gh_strlcpy(out, json_string_value(json_object_get(peek,
		    "username")), GH_USERNAME_MAX + 1);
	pw = json_object_get(peek, "password");
	if (json_is_string(pw))
		gh_wipe((char *)json_string_value(pw), json_string_length(pw));
	json_decref(peek);
}

static void
w_session_create(void *appv, struct gh_http_req *req)
{
	static const char *const keys[] = { "username", "password", NULL };
	char csrf[GH_TOKEN_LEN + 1], name[GH_USERNAME_MAX + 1];
	char mfa_token[GH_TOKEN_LEN + 1];
	const char *username = NULL, *password = NULL, *reason;
	enum gh_mfa_need need;
	struct gh_session s;
	struct api_ctx ctx;
	struct gh_user u;
	json_t *body;
	gh_err err;

	peek_username(req, name);
	if (!ctx_open_signin(appv, req, &ctx, name))
		return;
	body = body_object(req, keys);
	if (body == NULL || !member_str(req, body, "username", &username) ||
	    !member_str(req, body, "password", &password))
		goto refused;
	if (username == NULL || password == NULL) {
		respond_invalid(req, "%s: required",
		    username == NULL ? "username" : "password");
		goto refused;
	}
	err = signin_password(&ctx, username, password, &u, &s, csrf, &reason,
	    &need, mfa_token);
	if (err == GH_ERR_DENIED && reason != NULL &&
	    (strcmp(reason, "ip_not_allowed") == 0 ||
	    strcmp(reason, "country_not_allowed") == 0))
		policy_respond_refusal(req, reason);
	else if (err == GH_ERR_DENIED)
		gh_http_respond_error(req, 401, "invalid_credentials",
		    "Wrong username or password.");
	else if (err == GH_ERR_LIMIT)
		guard_respond_locked(req, ctx.retry_after_s);
	else if (err != GH_OK)
		respond_err(req, err);
	else if (mfa_token[0] != '\0')
		respond_mfa_required(&ctx, &u, need, mfa_token);
	else
		respond_signed_in(&ctx, &u, &s, csrf, need, reason != NULL);
	gh_wipe(csrf, sizeof csrf);
	gh_wipe(mfa_token, sizeof mfa_token);
	goto out;
refused:
	/* Malformed attempts are attempts too: record them. */
	record_failure(&ctx, NULL, name, "invalid_request");
out:
	if (password != NULL)
		gh_wipe((char *)password, strlen(password));
	json_decref(body);
	ctx_close(&ctx);
}

static void
h_session_create(void *app, struct gh_http_req *req)
{
	if (guard_signin_rate(app, req))
		gh_http_defer(req, w_session_create);
}

/* Revokes ctx's current session with its audit event and clears the
 * cookie. */
gh_err
session_end(struct api_ctx *ctx)
{
	gh_err err;

	ctx->sessions_ended = true;
	err = gh_db_begin(ctx->db);
	if (err == GH_OK)
		err = gh_auth_session_revoke(ctx->db, ctx->session.id, NULL);
	if (err == GH_OK)
		err = gh_audit_append(ctx->db, &ctx->actor, "session.revoke",
		    "session", ctx->session.id, NULL);
	if (err == GH_OK)
		err = gh_db_commit(ctx->db);
	if (err != GH_OK) {
		gh_db_rollback(ctx->db);
		return err;
	}
	return set_session_cookie(ctx, "", -1);
}

static void
h_session_delete(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	gh_err err;

	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth(&ctx, false))
		goto out;
	if (!ctx.via_session) {
		respond_invalid(req, "sign-out needs a session cookie");
		goto out;
	}
	err = session_end(&ctx);
	if (err != GH_OK)
		respond_err(req, err);
	else
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	ctx_close(&ctx);
}

/*
 * GET /me is the request a signed-in page makes most: its body is written
 * straight into a buffer (gh_json_put_*) instead of a jansson tree that
 * was serialised at once. The bytes are those gh_identity_user_json and
 * session_json give (same keys, same order, same escapes); only the
 * attributes, a variable object, still go through jansson.
 */
#define ME_BODY_MAX (4u << 20)

/* "key": and ,"key": (key is a literal: no escaping needed). */
#define PUT_KEY(b, k) gh_buf_put((b), "\"" k "\":", sizeof(k) + 2)
#define ME_CURRENT_CSRF ",\"current\":true},\"csrf_token\":"
#define PUT_NEXT(b, k) gh_buf_put((b), ",\"" k "\":", sizeof(k) + 3)

static int
me_dump_cb(const char *p, size_t n, void *arg)
{
	struct gh_buf *b = arg;

	gh_buf_put(b, p, n);
	return gh_buf_err(b) == GH_OK ? 0 : -1;
}

/* A session time: always a string, as session_json writes it. */
static void
me_put_session_time(struct gh_buf *b, int64_t ms)
{
	char t[26];

	t[0] = '"';
	gh_time_rfc3339(ms, t + 1);
	t[25] = '"';
	gh_buf_put(b, t, sizeof t);
}

static void
me_put_user(struct gh_buf *b, const struct gh_user *u, json_t *attrs)
{
	PUT_KEY(b, "user");
	gh_buf_put(b, "{", 1);
	PUT_KEY(b, "id");
	gh_json_put_str(b, u->id);
	PUT_NEXT(b, "username");
	gh_json_put_str(b, u->username);
	PUT_NEXT(b, "email");
	if (u->email[0] != '\0')
		gh_json_put_str(b, u->email);
	else
		gh_buf_put(b, "null", 4);
	PUT_NEXT(b, "display_name");
	gh_json_put_str(b, u->display_name);
	PUT_NEXT(b, "state");
	gh_json_put_str(b, u->state);
	PUT_NEXT(b, "role");
	gh_json_put_str(b, u->role);
	PUT_NEXT(b, "created_at");
	gh_json_put_time(b, u->created_at);
	PUT_NEXT(b, "updated_at");
	gh_json_put_time(b, u->updated_at);
	PUT_NEXT(b, "last_signin_at");
	gh_json_put_time(b, u->last_signin_at);
	PUT_NEXT(b, "password_changed_at");
	gh_json_put_time(b, u->password_changed_at);
	PUT_NEXT(b, "attributes");
	if (json_object_size(attrs) == 0)
		gh_buf_put(b, "{}", 2);
	else if (json_dump_callback(attrs, me_dump_cb, b, JSON_COMPACT) != 0)
		gh_buf_fail(b, GH_ERR_INTERNAL);
	gh_buf_put(b, "}", 1);
}

static void
me_put_session(struct gh_buf *b, const struct gh_session *s,
    const char *csrf)
{
	PUT_NEXT(b, "session");
	gh_buf_put(b, "{", 1);
	PUT_KEY(b, "id");
	gh_json_put_str(b, s->id);
	PUT_NEXT(b, "created_at");
	me_put_session_time(b, s->created_at);
	PUT_NEXT(b, "last_seen_at");
	me_put_session_time(b, s->last_seen_at);
	PUT_NEXT(b, "expires_at");
	me_put_session_time(b, s->expires_at);
	PUT_NEXT(b, "source_ip");
	gh_json_put_str(b, s->source_ip);
	PUT_NEXT(b, "user_agent");
	gh_json_put_str(b, s->user_agent);
	gh_buf_put(b, ME_CURRENT_CSRF, sizeof ME_CURRENT_CSRF - 1);
	gh_json_put_str(b, csrf);
}

static void
h_me(void *app, struct gh_http_req *req)
{
	char csrf[GH_TOKEN_LEN + 1];
	struct api_ctx ctx;
	json_t *attrs = NULL;
	struct gh_buf b;
	gh_err err;

	gh_buf_init(&b, ME_BODY_MAX, 0);
	if (!ctx_open(app, req, &ctx))
		goto done;
	ctx.probe_attrs = true;
	if (!ctx_auth(&ctx, false))
		goto out;
	/* The user's own attributes, except those classified sensitive;
	 * the session check told whether there is any (most users have
	 * none: no second statement then). */
	err = ctx.has_attrs ? gh_identity_attr_values_json(ctx.db,
	    ctx.app->kms, ctx.user.id, GH_ATTR_PERSONAL, &attrs) : GH_OK;
	if (err == GH_ERR_DENIED) {
		gh_http_respond_error(req, 503, "keys_unavailable",
		    "The encryption keys of this organisation are unavailable.");
		goto out;
	} else if (err != GH_OK) {
		respond_err(req, err);
		goto out;
	}
	/* Most bodies fit: one allocation instead of doubling from 64. */
	(void)gh_buf_reserve(&b, 1024);
	gh_buf_put(&b, "{", 1);
	me_put_user(&b, &ctx.user, attrs);
	if (ctx.via_session) {
		gh_auth_session_csrf(ctx.session_token, csrf);
		me_put_session(&b, &ctx.session, csrf);
		gh_wipe(csrf, sizeof csrf);
	}
	gh_buf_put(&b, "}", 1);
	if (gh_buf_err(&b) != GH_OK) {
		GH_LOG_ERR(gh_buf_err(&b), "user %s: /me body", ctx.user.id);
		respond_err(req, GH_ERR_INTERNAL);
		goto out;
	}
	gh_http_respond(req, 200, "application/json", b.data, b.len);
out:
	json_decref(attrs);
	ctx_close(&ctx);
done:
	gh_buf_free(&b);
}

struct session_list {
	json_t *arr;
	const char *current;
};

static void
collect_session(const struct gh_session *s, void *arg)
{
	struct session_list *l = arg;

	json_array_append_new(l->arr, session_json(s,
	    l->current != NULL && strcmp(s->id, l->current) == 0));
}

/* Answers {"sessions": [...]} for user_id. */
void
respond_sessions(struct api_ctx *ctx, const char *user_id)
{
	struct session_list l = { json_array(),
		ctx->via_session ? ctx->session.id : NULL };
	gh_err err;

	err = gh_auth_session_list(ctx->db, user_id, &ctx->app->cfg.session,
	    collect_session, &l);
	if (err != GH_OK) {
		json_decref(l.arr);
		respond_err(ctx->req, err);
		return;
	}
	gh_http_respond_json(ctx->req, 200, json_pack("{s:o}", "sessions",
	    l.arr));
}

static void
h_me_sessions(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;

	if (!ctx_open(app, req, &ctx))
		return;
	if (ctx_auth(&ctx, false))
		respond_sessions(&ctx, ctx.user.id);
	ctx_close(&ctx);
}

static void
h_me_session_delete(void *app, struct gh_http_req *req)
{
	const char *sid = gh_http_req_param(req, "id");
	struct api_ctx ctx;
	gh_err err;

	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth(&ctx, false))
		goto out;
	if (!gh_id_valid(sid)) {
		respond_err(req, GH_ERR_NOTFOUND);
		goto out;
	}
	ctx.sessions_ended = true;
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_auth_session_revoke(ctx.db, sid, ctx.user.id);
	if (err == GH_OK)
		err = gh_audit_append(ctx.db, &ctx.actor, "session.revoke",
		    "session", sid, NULL);
	if (finish(&ctx, err))
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	ctx_close(&ctx);
}

struct keep_one {
	struct gh_db *db;
	const char *keep;
	gh_err err;
	int64_t revoked;
};

static void
revoke_other(const struct gh_session *s, void *arg)
{
	struct keep_one *k = arg;

	if (k->err != GH_OK || (k->keep != NULL && strcmp(s->id, k->keep) == 0))
		return;
	k->err = gh_auth_session_revoke(k->db, s->id, NULL);
	if (k->err == GH_OK)
		k->revoked++;
}

/* Revokes every session of user_id but keep (may be NULL). In the
 * caller's transaction. */
gh_err
revoke_sessions_except(struct api_ctx *ctx, const char *user_id,
    const char *keep, int64_t *count_out)
{
	struct keep_one k = { ctx->db, keep, GH_OK, 0 };
	gh_err err;

	ctx->sessions_ended = true;

	/* Collect first, then revoke: no writes while a read is open. */
	json_t *ids = json_array();
	struct session_list l = { ids, NULL };
	size_t i;
	json_t *v;

	if (ids == NULL)
		return GH_ERR_NOMEM;
	err = gh_auth_session_list(ctx->db, user_id, &ctx->app->cfg.session,
	    collect_session, &l);
	json_array_foreach(ids, i, v) {
		struct gh_session s;

		if (err != GH_OK || k.err != GH_OK)
			break;
		memset(&s, 0, sizeof s);
		gh_strlcpy(s.id, json_string_value(json_object_get(v, "id")),
		    sizeof s.id);
		revoke_other(&s, &k);
	}
	json_decref(ids);
	if (count_out != NULL)
		*count_out = k.revoked;
	return err != GH_OK ? err : k.err;
}

static void
w_me_password(void *appv, struct gh_http_req *req)
{
	static const char *const keys[] = { "current_password", "new_password",
		NULL };
	const char *cur = NULL, *next = NULL;
	struct api_ctx ctx;
	struct gh_user u = { 0 };
	json_t *body = NULL, *changes;
	char *hash = NULL;
	bool rehash;
	gh_err err;

	if (!ctx_open(appv, req, &ctx))
		return;
	if (!ctx_auth(&ctx, false) || (body = body_object(req, keys)) == NULL)
		goto out;
	if (!member_str(req, body, "current_password", &cur) ||
	    !member_str(req, body, "new_password", &next))
		goto out;
	if (cur == NULL || next == NULL) {
		respond_invalid(req, "%s: required",
		    cur == NULL ? "current_password" : "new_password");
		goto out;
	}
	/* The session check keeps no password hash: read it now. */
	err = gh_identity_user_get(ctx.db, ctx.user.id, &u);
	if (err != GH_OK) {
		respond_err(req, err);
		goto out;
	}
	if (u.password_hash[0] == '\0' ||
	    gh_auth_pw_verify(&ctx.app->cfg.pw, u.password_hash, cur,
	    &rehash) != GH_OK) {
		gh_http_respond_error(req, 403, "invalid_credentials",
		    "The current password is wrong.");
		goto out;
	}
	if (!password_acceptable(&ctx, next, ctx.user.username,
	    ctx.user.email))
		goto out;
	err = gh_auth_pw_hash(&ctx.app->cfg.pw, next, &hash);
	if (err == GH_OK)
		err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_identity_user_get(ctx.db, ctx.user.id, &u);
	if (err == GH_OK) {
		gh_strlcpy(u.password_hash, hash, sizeof u.password_hash);
		u.password_changed_at = gh_now_ms();
		err = gh_identity_user_update(ctx.db, &u);
	}
	if (err == GH_OK) {
		changes = json_pack("{s:s}", "password", "changed");
		err = gh_audit_append(ctx.db, &ctx.actor, "user.update", "user",
		    u.id, changes);
		json_decref(changes);
	}
	if (err == GH_OK)
		err = revoke_sessions_except(&ctx, u.id,
		    ctx.via_session ? ctx.session.id : NULL, NULL);
	if (err == GH_OK)
		err = mfa_devices_revoke_all(&ctx, u.id, "password_change");
	if (finish(&ctx, err))
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	gh_wipe(&u, sizeof u);
	if (cur != NULL)
		gh_wipe((char *)cur, strlen(cur));
	if (next != NULL)
		gh_wipe((char *)next, strlen(next));
	gh_str_wipe_free(hash);
	json_decref(body);
	ctx_close(&ctx);
}

static void
h_me_password(void *app, struct gh_http_req *req)
{
	gh_http_defer(req, w_me_password);
}

gh_err
routes_account(struct gh_http_router *r)
{
	static const struct gh_http_route_def routes[] = {
		{ "POST", "/o/{org}/api/v1/session", h_session_create },
		{ "DELETE", "/o/{org}/api/v1/session", h_session_delete },
		{ "GET", "/o/{org}/api/v1/me", h_me },
		{ "GET", "/o/{org}/api/v1/me/sessions", h_me_sessions },
		{ "DELETE", "/o/{org}/api/v1/me/sessions/{id}",
		    h_me_session_delete },
		{ "POST", "/o/{org}/api/v1/me/password", h_me_password },
	};

	return gh_http_routes(r, routes, sizeof routes / sizeof *routes);
}
