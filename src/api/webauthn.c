/*
 * webauthn.c: passkeys and security keys over HTTP. Registration of a
 * credential by a signed-in user, listing, renaming and removing it, the
 * WebAuthn second factor of a pending sign-in, usernameless passkey
 * sign-in. The page that runs the browser side is webauthn_page.c.
 *
 * The relying party is the request's host: RP ID is the Host header
 * without its port, the one allowed origin is scheme://host[:port] as the
 * server sees it (https only when gh_http_req_secure says so). The
 * verification itself is src/auth/webauthn.c; challenges and credentials
 * are stored by src/auth/webauthn_store.c.
 *
 * Untrusted input: every member of the JSON bodies (base64url fields are
 * length-checked before decoding, the clientDataJSON is parsed only to
 * find the challenge that is looked up; the library checks everything
 * else), credential names, ids in paths, the Host header (restricted to
 * [a-z0-9.-] and a port). Secrets: session and pending sign-in tokens
 * (wiped after use); nothing else here is secret.
 */
#include "api/api_int.h"
#include "auth/webauthn.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WA_HOST_MAX 253
#define WA_ORIGIN_MAX (WA_HOST_MAX + 16)

/* The relying party of a request. */
struct rp {
	char id[WA_HOST_MAX + 1];
	char origin[WA_ORIGIN_MAX + 1];
};

/* Fills *rp from the Host header. False for a missing or odd host. */
static bool
rp_of(struct gh_http_req *req, struct rp *rp)
{
	const char *host = gh_http_req_header(req, "Host");
	size_t n = 0, i;

	if (host == NULL)
		return false;
	for (i = 0; host[i] != '\0' && host[i] != ':'; i++) {
		char ch = (char)tolower((unsigned char)host[i]);

		if (!(isalnum((unsigned char)ch) || ch == '.' || ch == '-') ||
		    n >= WA_HOST_MAX)
			return false;
		rp->id[n++] = ch;
	}
	rp->id[n] = '\0';
	if (n == 0)
		return false;
	if (host[i] == ':') {
		size_t d = 0;

		for (i++; host[i] != '\0'; i++, d++)
			if (!isdigit((unsigned char)host[i]) || d >= 5)
				return false;
		if (d == 0)
			return false;
	}
	snprintf(rp->origin, sizeof rp->origin, "%s://%s%s",
	    gh_http_req_secure(req) ? "https" : "http", rp->id,
	    strchr(host, ':') != NULL ? strchr(host, ':') : "");
	return true;
}

static void
respond_refused(struct gh_http_req *req, unsigned status, const char *error,
    const char *reason)
{
	char msg[160];

	snprintf(msg, sizeof msg, "The WebAuthn response was refused (%s).",
	    reason);
	gh_http_respond_json(req, status, json_pack("{s:s, s:s, s:s, s:s}",
	    "error", error, "reason", reason, "message", msg, "request_id",
	    gh_http_req_id(req)));
}

/* A JSON body that may be empty (then an empty object). */
static json_t *
opt_body(struct gh_http_req *req, const char *const *allowed)
{
	size_t len = 0;

	(void)gh_http_req_body(req, &len);
	return len == 0 ? json_object() : body_object(req, allowed);
}

static void
b64_member(json_t *obj, const char *key, const uint8_t *p, size_t n)
{
	char *s = malloc(gh_b64url_len(n) + 1);

	if (s == NULL)
		return;	/* the member is missing: the client fails */
	gh_b64url_encode(p, n, s);
	json_object_set_new(obj, key, json_string(s));
	free(s);
}

/* ---- decoding a browser response ----------------------------------------- */

struct wa_input {
	uint8_t *raw_id, *client_data, *att_obj, *auth_data, *sig, *handle;
	size_t raw_id_len, client_data_len, att_obj_len, auth_data_len;
	size_t sig_len, handle_len;
	uint8_t challenge[GH_WA_CHALLENGE_MAX];
	size_t challenge_len;
};

static void
wa_input_free(struct wa_input *in)
{
	free(in->raw_id);
	free(in->client_data);
	free(in->att_obj);
	free(in->auth_data);
	free(in->sig);
	free(in->handle);
	memset(in, 0, sizeof *in);
}

/* Decodes obj[key] (base64url, at most cap bytes) into a new buffer.
 * Absent or null: *out NULL, GH_OK unless required. */
static gh_err
b64_decode_member(json_t *obj, const char *key, size_t cap, bool required,
    uint8_t **out, size_t *len_out)
{
	json_t *v = json_object_get(obj, key);
	const char *s;
	size_t n;
	gh_err err;

	*out = NULL;
	*len_out = 0;
	if (v == NULL || json_is_null(v))
		return required ? GH_ERR_INVALID : GH_OK;
	if (!json_is_string(v))
		return GH_ERR_INVALID;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n > gh_b64url_len(cap))
		return GH_ERR_LIMIT;
	if (n == 0)
		return required ? GH_ERR_INVALID : GH_OK;
	*out = malloc(cap);
	if (*out == NULL)
		return GH_ERR_NOMEM;
	err = gh_b64url_decode(s, n, *out, cap, len_out);
	if (err != GH_OK) {
		free(*out);
		*out = NULL;
		*len_out = 0;
		return GH_ERR_INVALID;
	}
	return GH_OK;
}

/* Finds the challenge the clientDataJSON claims; the library checks it
 * again against the issued one. Leaves challenge_len 0 when there is
 * none that could be ours. */
static void
claimed_challenge(struct wa_input *in)
{
	json_t *cd;
	const char *s;

	in->challenge_len = 0;
	cd = json_loadb((const char *)in->client_data, in->client_data_len,
	    JSON_REJECT_DUPLICATES, NULL);
	s = json_string_value(json_object_get(cd, "challenge"));
	if (s == NULL || strlen(s) > gh_b64url_len(GH_WA_CHALLENGE_MAX) ||
	    gh_b64url_decode(s, strlen(s), in->challenge,
	    sizeof in->challenge, &in->challenge_len) != GH_OK)
		in->challenge_len = 0;
	json_decref(cd);
}

/* Decodes a PublicKeyCredential body: rawId and, from "response",
 * clientDataJSON plus attestationObject (register) or authenticatorData,
 * signature and userHandle (assertion). */
static gh_err
wa_input_parse(json_t *body, bool attestation, struct wa_input *in)
{
	json_t *r = json_object_get(body, "response");
	gh_err err;

	memset(in, 0, sizeof *in);
	if (!json_is_object(r))
		return GH_ERR_INVALID;
	err = b64_decode_member(body, "rawId", GH_WA_CRED_ID_MAX, true,
	    &in->raw_id, &in->raw_id_len);
	if (err == GH_OK)
		err = b64_decode_member(r, "clientDataJSON",
		    GH_WA_CLIENT_DATA_MAX, true, &in->client_data,
		    &in->client_data_len);
	if (err == GH_OK && attestation)
		err = b64_decode_member(r, "attestationObject",
		    GH_WA_ATT_OBJ_MAX, true, &in->att_obj, &in->att_obj_len);
	if (err == GH_OK && !attestation)
		err = b64_decode_member(r, "authenticatorData",
		    GH_WA_AUTH_DATA_MAX, true, &in->auth_data,
		    &in->auth_data_len);
	if (err == GH_OK && !attestation)
		err = b64_decode_member(r, "signature", GH_WA_SIG_MAX, true,
		    &in->sig, &in->sig_len);
	if (err == GH_OK && !attestation)
		err = b64_decode_member(r, "userHandle", GH_WA_USER_HANDLE_MAX,
		    false, &in->handle, &in->handle_len);
	if (err == GH_OK)
		claimed_challenge(in);
	if (err != GH_OK)
		wa_input_free(in);
	return err;
}

/* Uses up the claimed challenge in its own transaction, so that even a
 * refused ceremony cannot try it again. */
static gh_err
challenge_consume(struct api_ctx *ctx, enum gh_wa_purpose purpose,
    const char *user_id, const struct wa_input *in)
{
	gh_err err;

	err = gh_db_begin(ctx->db);
	if (err == GH_OK)
		err = gh_auth_webauthn_challenge_consume(ctx->db, purpose,
		    user_id, in->challenge, in->challenge_len, gh_now_ms());
	if (err == GH_OK)
		err = gh_db_commit(ctx->db);
	if (err != GH_OK)
		gh_db_rollback(ctx->db);
	return err;
}

static gh_err
audit_wa(struct api_ctx *ctx, const char *action, const char *target_type,
    const char *target_id, const char *method, const char *reason,
    const char *cred_id)
{
	json_t *changes;
	gh_err err;

	changes = json_pack("{s:s}", "method", method);
	if (changes != NULL && reason != NULL)
		json_object_set_new(changes, "reason", json_string(reason));
	if (changes != NULL && cred_id != NULL)
		json_object_set_new(changes, "credential",
		    json_string(cred_id));
	err = gh_audit_append(ctx->db, &ctx->actor, action, target_type,
	    target_id, changes);
	json_decref(changes);
	if (err == GH_OK && strcmp(target_type, "user") == 0)
		err = notify_for_action(ctx, action, target_id, method);
	return err;
}

static gh_err
signin_rec(struct api_ctx *ctx, const struct gh_user *u, bool success,
    const char *reason)
{
	const char *ua = gh_http_req_header(ctx->req, "User-Agent");
	struct gh_signin_record rec = { u->id, u->username,
		gh_http_req_client_ip(ctx->req), ua ? ua : "", success,
		reason };

	gh_http_metrics_signin(ctx->req, success ? "success" : "failure");
	return gh_audit_signin_record(ctx->db, &rec);
}

static json_t *
cred_json(const struct gh_wa_cred_row *c)
{
	char created[25], used[25];
	json_t *j;

	gh_time_rfc3339(c->created_at, created);
	j = json_pack("{s:s, s:s, s:s, s:i, s:b, s:b, s:b, s:s, s:s, s:I}",
	    "id", c->id, "credential_id", c->cred_id, "name", c->name, "alg",
	    c->alg, "user_verified", c->uv, "backup_eligible",
	    c->backup_eligible, "backed_up", c->backup_state, "aaguid",
	    c->aaguid, "created_at", created, "sign_count",
	    (json_int_t)c->sign_count);
	if (j != NULL && c->last_used_at != 0) {
		gh_time_rfc3339(c->last_used_at, used);
		json_object_set_new(j, "last_used_at", json_string(used));
	} else if (j != NULL) {
		json_object_set_new(j, "last_used_at", json_null());
	}
	return j;
}

static void
collect_cred(const struct gh_wa_cred_row *c, void *arg)
{
	json_array_append_new(arg, cred_json(c));
}

/* {"type": "public-key", "id": ...} for each credential of the user. */
static void
collect_descriptor(const struct gh_wa_cred_row *c, void *arg)
{
	json_array_append_new(arg, json_pack("{s:s, s:s}", "type",
	    "public-key", "id", c->cred_id));
}

/* Wipes the body's "mfa_token" member, if any. */
static void
wipe_token(json_t *body)
{
	json_t *v = json_object_get(body, "mfa_token");

	if (json_is_string(v))
		gh_wipe((char *)json_string_value(v), json_string_length(v));
}

/* True when the org's MFA policy allows WebAuthn; else responds 403. */
static bool
webauthn_allowed(struct api_ctx *ctx)
{
	struct gh_mfa_policy pol;
	gh_err err;

	err = mfa_policy_for(ctx, ctx->authed ? ctx->user.id : NULL, &pol);
	if (err != GH_OK) {
		respond_err(ctx->req, err);
		return false;
	}
	if (!pol.allow_webauthn) {
		mfa_respond_not_allowed(ctx->req, "webauthn");
		return false;
	}
	return true;
}

/* ---- registration -------------------------------------------------------- */

static void
h_register_options(void *app, struct gh_http_req *req)
{
	static const char *const keys[] = { "authenticator", "mfa_token",
		NULL };
	uint8_t challenge[GH_WA_CHALLENGE_LEN], handle[GH_WA_HANDLE_LEN];
	char pending[GH_ID_LEN + 1];
	const char *kind = NULL;
	json_t *body = NULL, *out = NULL, *exclude, *user, *sel, *rpj;
	struct api_ctx ctx;
	bool passkey;
	struct rp rp;
	gh_err err;

	if (!ctx_open(app, req, &ctx))
		return;
	body = opt_body(req, keys);
	if (body == NULL || !mfa_enrol_auth(&ctx, body, pending) ||
	    !webauthn_allowed(&ctx) ||
	    !member_str(req, body, "authenticator", &kind))
		goto out;
	if (kind != NULL && strcmp(kind, "passkey") != 0 &&
	    strcmp(kind, "security_key") != 0) {
		respond_invalid(req, "authenticator: \"passkey\" or "
		    "\"security_key\"");
		goto out;
	}
	if (!rp_of(req, &rp)) {
		respond_invalid(req, "Host: not usable as a WebAuthn RP ID");
		goto out;
	}
	passkey = kind == NULL || strcmp(kind, "passkey") == 0;
	exclude = json_array();
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_auth_webauthn_handle_get(ctx.db, ctx.user.id, true,
		    handle);
	if (err == GH_OK)
		err = gh_auth_webauthn_challenge_issue(ctx.db,
		    GH_WA_PURPOSE_REGISTER, ctx.user.id, gh_now_ms(),
		    challenge);
	if (err == GH_OK)
		err = gh_auth_webauthn_cred_list(ctx.db, ctx.user.id,
		    collect_descriptor, exclude);
	if (!finish(&ctx, err)) {
		json_decref(exclude);
		goto out;
	}
	rpj = json_pack("{s:s, s:s}", "id", rp.id, "name", ctx.org.name);
	user = json_pack("{s:s, s:s}", "name", ctx.user.username,
	    "displayName", ctx.user.display_name[0] != '\0' ?
	    ctx.user.display_name : ctx.user.username);
	if (user != NULL)
		b64_member(user, "id", handle, sizeof handle);
	sel = json_pack("{s:s, s:b, s:s}", "residentKey", passkey ?
	    "required" : "discouraged", "requireResidentKey", passkey,
	    "userVerification", passkey ? "required" : "discouraged");
	out = json_pack("{s:o, s:o, s:[{s:s, s:i}, {s:s, s:i}, {s:s, s:i}], "
	    "s:o, s:o, s:i, s:s}", "rp", rpj, "user", user,
	    "pubKeyCredParams", "type", "public-key", "alg", GH_WA_ALG_ES256,
	    "type", "public-key", "alg", GH_WA_ALG_EDDSA, "type", "public-key",
	    "alg", GH_WA_ALG_RS256, "authenticatorSelection", sel,
	    "excludeCredentials", exclude, "timeout",
	    GH_WA_CHALLENGE_TTL_MS, "attestation", "none");
	if (out != NULL)
		b64_member(out, "challenge", challenge, sizeof challenge);
	gh_http_respond_json(req, 200, out);
out:
	wipe_token(body);
	json_decref(body);
	ctx_close(&ctx);
}

static const char *const cred_keys[] = { "id", "rawId", "type", "response",
	"name", "authenticatorAttachment", "clientExtensionResults",
	"mfa_token", NULL };
/* The second factor's body: the credential and "remember_device". */
static const char *const mfa_keys[] = { "id", "rawId", "type", "response",
	"authenticatorAttachment", "clientExtensionResults", "mfa_token",
	"remember_device", NULL };

static void
h_register(void *app, struct gh_http_req *req)
{
	enum gh_wa_reason reason = GH_WA_BAD_PARAMETER;
	struct gh_wa_credential *cred = NULL;
	struct gh_wa_cred_row row;
	const char *name = NULL, *origins[1];
	struct gh_wa_expect exp;
	char pending[GH_ID_LEN + 1], csrf[GH_TOKEN_LEN + 1];
	struct gh_session s;
	struct wa_input in;
	struct api_ctx ctx;
	json_t *body = NULL, *out_body;
	struct rp rp;
	gh_err err;

	memset(&in, 0, sizeof in);
	csrf[0] = '\0';
	if (!ctx_open(app, req, &ctx))
		return;
	body = body_object(req, cred_keys);
	if (body == NULL || !mfa_enrol_auth(&ctx, body, pending) ||
	    !webauthn_allowed(&ctx) || !member_str(req, body, "name", &name))
		goto out;
	if (name == NULL)
		name = "Security key";
	if (!gh_auth_webauthn_name_ok(name)) {
		respond_invalid(req, "name: 1-%d bytes, no control characters",
		    GH_WA_NAME_MAX);
		goto out;
	}
	if (!rp_of(req, &rp)) {
		respond_invalid(req, "Host: not usable as a WebAuthn RP ID");
		goto out;
	}
	err = wa_input_parse(body, true, &in);
	if (err != GH_OK) {
		if (err == GH_ERR_NOMEM)
			respond_err(req, err);
		else
			respond_invalid(req, "Send the PublicKeyCredential: "
			    "rawId and response.clientDataJSON and "
			    "response.attestationObject, base64url.");
		goto out;
	}
	err = challenge_consume(&ctx, GH_WA_PURPOSE_REGISTER, ctx.user.id,
	    &in);
	if (err == GH_ERR_DENIED) {
		if (gh_db_begin(ctx.db) == GH_OK && audit_wa(&ctx,
		    "mfa.webauthn.failure", "user", ctx.user.id, "webauthn",
		    "challenge_invalid", NULL) == GH_OK)
			(void)finish(&ctx, GH_OK);
		else
			gh_db_rollback(ctx.db);
		respond_refused(req, 400, "webauthn_refused",
		    "challenge_invalid");
		goto out;
	}
	if (err != GH_OK) {
		respond_err(req, err);
		goto out;
	}
	cred = malloc(sizeof *cred);
	if (cred == NULL) {
		respond_err(req, GH_ERR_NOMEM);
		goto out;
	}
	origins[0] = rp.origin;
	exp = (struct gh_wa_expect){ in.challenge, in.challenge_len, rp.id,
		origins, 1, false };
	err = gh_auth_webauthn_register_verify(&exp, in.att_obj,
	    in.att_obj_len, in.client_data, in.client_data_len, cred, &reason);
	if (err == GH_ERR_NOMEM || err == GH_ERR_INTERNAL) {
		respond_err(req, err);
		goto out;
	}
	if (err != GH_OK) {
		if (gh_db_begin(ctx.db) == GH_OK && audit_wa(&ctx,
		    "mfa.webauthn.failure", "user", ctx.user.id, "webauthn",
		    gh_wa_reason_str(reason), NULL) == GH_OK)
			(void)finish(&ctx, GH_OK);
		else
			gh_db_rollback(ctx.db);
		respond_refused(req, 400, "webauthn_refused",
		    gh_wa_reason_str(reason));
		goto out;
	}
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_auth_webauthn_cred_add(ctx.db, ctx.user.id, name, cred,
		    gh_now_ms(), &row);
	if (err == GH_OK)
		err = audit_wa(&ctx, "mfa.webauthn.add", "user", ctx.user.id,
		    "webauthn", NULL, row.cred_id);
	if (err == GH_ERR_CONFLICT) {
		gh_db_rollback(ctx.db);
		gh_http_respond_error(req, 409, "credential_exists",
		    "This authenticator is already registered.");
		goto out;
	}
	/* Enrolment was the second step of a sign-in: finish it. */
	if (err == GH_OK && pending[0] != '\0')
		err = mfa_enrol_signin(&ctx, pending, "mfa_webauthn_enrolled",
		    csrf, &s);
	if (!finish(&ctx, err))
		goto out;
	out_body = cred_json(&row);
	if (out_body != NULL && pending[0] != '\0') {
		mfa_cookie_clear(&ctx);
		json_object_set_new(out_body, "user",
		    gh_identity_user_json(&ctx.user));
		json_object_set_new(out_body, "session", session_json(&s,
		    true));
		json_object_set_new(out_body, "csrf_token", json_string(csrf));
	}
	gh_http_respond_json(req, 201, out_body);
out:
	gh_wipe(csrf, sizeof csrf);
	free(cred);
	wa_input_free(&in);
	wipe_token(body);
	json_decref(body);
	ctx_close(&ctx);
}

/* ---- the owner's credentials --------------------------------------------- */

static void
h_creds_list(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	json_t *arr;
	gh_err err;

	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth(&ctx, false))
		goto out;
	arr = json_array();
	err = gh_auth_webauthn_cred_list(ctx.db, ctx.user.id, collect_cred,
	    arr);
	if (err != GH_OK) {
		json_decref(arr);
		respond_err(req, err);
		goto out;
	}
	gh_http_respond_json(req, 200, json_pack("{s:o}", "credentials", arr));
out:
	ctx_close(&ctx);
}

static void
h_cred_patch(void *app, struct gh_http_req *req)
{
	static const char *const keys[] = { "name", NULL };
	const char *id = gh_http_req_param(req, "id"), *name = NULL;
	struct api_ctx ctx;
	json_t *body = NULL, *changes;
	gh_err err;

	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth(&ctx, false))
		goto out;
	body = body_object(req, keys);
	if (body == NULL || !member_str(req, body, "name", &name))
		goto out;
	if (!gh_auth_webauthn_name_ok(name)) {
		respond_invalid(req, "name: 1-%d bytes, no control characters",
		    GH_WA_NAME_MAX);
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
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	json_decref(body);
	ctx_close(&ctx);
}

static void
h_cred_delete(void *app, struct gh_http_req *req)
{
	const char *id = gh_http_req_param(req, "id");
	struct api_ctx ctx;
	gh_err err;

	if (!ctx_open(app, req, &ctx))
		return;
	if (!ctx_auth(&ctx, false))
		goto out;
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_auth_webauthn_cred_delete(ctx.db, ctx.user.id, id);
	if (err == GH_OK)
		err = audit_wa(&ctx, "mfa.webauthn.remove",
		    "webauthn_credential", id, "webauthn", NULL, NULL);
	if (err == GH_OK)
		err = notify_for_action(&ctx, "mfa.webauthn.remove",
		    ctx.user.id, "webauthn");
	if (finish(&ctx, err))
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	ctx_close(&ctx);
}

/* ---- assertions: second factor and passkey sign-in ----------------------- */

/* Answers request options for an assertion with a fresh challenge for
 * user_id (NULL: usernameless, UV required, no allow list). */
static void
respond_assert_options(struct api_ctx *ctx, const char *user_id)
{
	uint8_t challenge[GH_WA_CHALLENGE_LEN];
	json_t *allow = json_array(), *out;
	struct rp rp;
	gh_err err;

	if (!rp_of(ctx->req, &rp)) {
		json_decref(allow);
		respond_invalid(ctx->req, "Host: not usable as a WebAuthn "
		    "RP ID");
		return;
	}
	err = gh_db_begin(ctx->db);
	if (err == GH_OK)
		err = gh_auth_webauthn_challenge_issue(ctx->db,
		    GH_WA_PURPOSE_AUTHENTICATE, user_id, gh_now_ms(),
		    challenge);
	if (err == GH_OK && user_id != NULL)
		err = gh_auth_webauthn_cred_list(ctx->db, user_id,
		    collect_descriptor, allow);
	if (!finish(ctx, err)) {
		json_decref(allow);
		return;
	}
	out = json_pack("{s:s, s:o, s:i, s:s}", "rpId", rp.id,
	    "allowCredentials", allow, "timeout", GH_WA_CHALLENGE_TTL_MS,
	    "userVerification", user_id == NULL ? "required" : "discouraged");
	if (out != NULL)
		b64_member(out, "challenge", challenge, sizeof challenge);
	gh_http_respond_json(ctx->req, 200, out);
}

/*
 * Verifies the assertion in in for the credential it names, which must
 * belong to want_user when that is not NULL. On GH_OK fills *c and *res.
 * GH_ERR_DENIED with *reason_out for a refusal (the credential, when
 * found, is in *c: a counter regression is then recorded by the caller).
 */
static gh_err
assertion_check(struct api_ctx *ctx, const struct wa_input *in,
    const char *want_user, bool require_uv, struct gh_wa_cred_row *c,
    struct gh_wa_assert_result *res, const char **reason_out)
{
	enum gh_wa_reason reason = GH_WA_BAD_PARAMETER;
	uint8_t handle[GH_WA_HANDLE_LEN];
	const char *origins[1];
	struct gh_wa_expect exp;
	struct gh_wa_stored st;
	struct gh_wa_assertion as;
	struct rp rp;
	gh_err err;

	memset(res, 0, sizeof *res);
	err = gh_auth_webauthn_cred_find(ctx->db, in->raw_id, in->raw_id_len,
	    c);
	if (err == GH_OK && want_user != NULL &&
	    strcmp(c->user_id, want_user) != 0)
		err = GH_ERR_NOTFOUND;
	if (err == GH_ERR_NOTFOUND) {
		memset(c, 0, sizeof *c);
		*reason_out = "credential_unknown";
		return GH_ERR_DENIED;
	}
	if (err == GH_OK)
		err = gh_auth_webauthn_handle_get(ctx->db, c->user_id, false,
		    handle);
	if (err == GH_ERR_NOTFOUND)
		err = GH_ERR_STORE;	/* a credential without its handle */
	if (err != GH_OK)
		return err;
	if (!rp_of(ctx->req, &rp)) {
		*reason_out = "rp_id_mismatch";
		return GH_ERR_DENIED;
	}
	/* Usernameless sign-in names the user only by the handle. */
	if (want_user == NULL && in->handle == NULL) {
		*reason_out = "user_handle_missing";
		return GH_ERR_DENIED;
	}
	origins[0] = rp.origin;
	exp = (struct gh_wa_expect){ in->challenge, in->challenge_len, rp.id,
		origins, 1, require_uv };
	st = (struct gh_wa_stored){ c->alg, c->pubkey, c->pubkey_len,
		c->sign_count, handle, sizeof handle };
	as = (struct gh_wa_assertion){ in->auth_data, in->auth_data_len,
		in->client_data, in->client_data_len, in->sig, in->sig_len,
		in->handle, in->handle_len };
	err = gh_auth_webauthn_assert_verify(&exp, &st, &as, res, &reason);
	if (err == GH_ERR_NOMEM || err == GH_ERR_INTERNAL)
		return err;
	if (err != GH_OK) {
		*reason_out = gh_wa_reason_str(reason);
		return GH_ERR_DENIED;
	}
	return GH_OK;
}

/* Records a refused assertion in its own transaction: the audit event
 * (and, for a counter regression, the possibly cloned authenticator), the
 * sign-in record, and for a second factor the pending and lockout
 * counts. */
static gh_err
assertion_failed(struct api_ctx *ctx, const struct gh_user *u,
    const struct gh_wa_cred_row *c, const char *pending_id,
    const char *method, const char *reason, bool *killed_out,
    bool *locked_out)
{
	char rec[96];
	gh_err err;

	*killed_out = false;
	*locked_out = false;
	snprintf(rec, sizeof rec, "%s_%s", strcmp(method, "passkey") == 0 ?
	    "passkey" : "mfa_webauthn", reason);
	err = gh_db_begin(ctx->db);
	if (err == GH_OK && pending_id != NULL)
		err = gh_auth_mfa_pending_fail(ctx->db, pending_id, killed_out);
	if (err == GH_OK && pending_id != NULL)
		err = gh_auth_mfa_fail(ctx->db, u->id, gh_now_ms(), locked_out);
	if (err == GH_OK && strcmp(reason, "counter_regression") == 0 &&
	    c->id[0] != '\0') {
		err = gh_auth_webauthn_cred_regression(ctx->db, c->id);
		if (err == GH_OK)
			err = audit_wa(ctx, "webauthn.counter_regression",
			    "webauthn_credential", c->id, method,
			    "possible_cloned_authenticator", c->cred_id);
		if (err == GH_OK)
			err = notify_for_action(ctx,
			    "webauthn.counter_regression", u->id, method);
	}
	if (err == GH_OK)
		err = audit_wa(ctx, pending_id != NULL ? "mfa.failure" :
		    "webauthn.passkey.failure", "user", u->id, method, reason,
		    NULL);
	if (err == GH_OK && *locked_out)
		err = audit_wa(ctx, "mfa.lock", "user", u->id, method, NULL,
		    NULL);
	if (err == GH_OK)
		err = signin_rec(ctx, u, false, rec);
	if (err == GH_OK)
		err = gh_db_commit(ctx->db);
	if (err != GH_OK) {
		gh_db_rollback(ctx->db);
		GH_LOG_ERR(err, "org %s: WebAuthn failure not recorded",
		    ctx->org.id);
	}
	return err;
}

/* The session made, in the caller's open transaction, after an accepted
 * assertion; commits. */
static gh_err
assertion_signin(struct api_ctx *ctx, struct gh_user *u,
    const struct gh_wa_cred_row *c, const struct gh_wa_assert_result *res,
    const char *pending_id, const struct gh_mfa_policy *remember,
    struct gh_session *s, char csrf[static GH_TOKEN_LEN + 1],
    bool *remembered_out)
{
	const char *method = pending_id != NULL ? "webauthn" : "passkey";
	gh_err err;

	*remembered_out = false;

	err = gh_auth_webauthn_cred_used(ctx->db, c->id, res, gh_now_ms());
	if (err == GH_OK && pending_id != NULL)
		err = gh_auth_mfa_pending_delete(ctx->db, pending_id);
	if (err == GH_OK && pending_id != NULL)
		err = gh_auth_mfa_succeed(ctx->db, u->id);
	if (err == GH_OK)
		err = audit_wa(ctx, pending_id != NULL ? "mfa.webauthn.use" :
		    "webauthn.passkey.use", "user", u->id, method, NULL,
		    c->cred_id);
	if (err == GH_OK) {
		u->last_signin_at = gh_now_ms();
		err = gh_identity_user_touch_signin(ctx->db, u->id,
		    u->last_signin_at);
	}
	if (err == GH_OK)
		err = session_start(ctx, u, csrf, s);
	if (err == GH_OK)	/* a passkey is a second factor in itself */
		err = gh_auth_session_mark_mfa(ctx->db, s->id, gh_now_ms());
	if (err == GH_OK)
		err = signin_rec(ctx, u, true, pending_id != NULL ?
		    "mfa_webauthn" : "passkey");
	if (err == GH_OK && remember != NULL)
		err = mfa_device_remember(ctx, u, remember, remembered_out);
	if (err == GH_OK)
		err = gh_db_commit(ctx->db);
	if (err != GH_OK)
		gh_db_rollback(ctx->db);
	return err;
}

static void
respond_session(struct api_ctx *ctx, const struct gh_user *u,
    const struct gh_session *s, const char *csrf)
{
	gh_http_respond_json(ctx->req, 200, json_pack("{s:o, s:o, s:s}",
	    "user", gh_identity_user_json(u), "session", session_json(s, true),
	    "csrf_token", csrf));
}

static void
h_passkey_options(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;

	if (!guard_signin_rate(app, req))
		return;
	if (!ctx_open(app, req, &ctx))
		return;
	respond_assert_options(&ctx, NULL);
	ctx_close(&ctx);
}

static void
h_passkey(void *app, struct gh_http_req *req)
{
	struct gh_wa_assert_result res;
	struct gh_wa_cred_row *c = NULL;
	const char *reason = "invalid_request";
	char csrf[GH_TOKEN_LEN + 1];
	struct gh_session s;
	struct wa_input in;
	struct api_ctx ctx;
	struct gh_user u;
	json_t *body = NULL;
	bool killed, locked, remembered;
	gh_err err;

	if (!guard_signin_rate(app, req))
		return;
	memset(&in, 0, sizeof in);
	memset(&u, 0, sizeof u);
	if (!ctx_open_signin(app, req, &ctx, ""))
		return;
	body = body_object(req, cred_keys);
	if (body == NULL) {
		record_failure(&ctx, NULL, "", "invalid_request");
		goto out;
	}
	err = wa_input_parse(body, false, &in);
	if (err != GH_OK) {
		record_failure(&ctx, NULL, "", "invalid_request");
		respond_invalid(req, "Send the PublicKeyCredential: rawId and "
		    "response.clientDataJSON, authenticatorData, signature "
		    "and userHandle, base64url.");
		goto out;
	}
	err = challenge_consume(&ctx, GH_WA_PURPOSE_AUTHENTICATE, NULL, &in);
	if (err == GH_ERR_DENIED) {
		record_failure(&ctx, NULL, "", "passkey_challenge_invalid");
		respond_refused(req, 401, "passkey_refused",
		    "challenge_invalid");
		goto out;
	}
	c = malloc(sizeof *c);
	if (err == GH_OK && c == NULL)
		err = GH_ERR_NOMEM;
	if (err == GH_OK)
		err = assertion_check(&ctx, &in, NULL, true, c, &res, &reason);
	if (err == GH_ERR_DENIED && c->id[0] == '\0') {
		record_failure(&ctx, NULL, "", "passkey_credential_unknown");
		respond_refused(req, 401, "passkey_refused", reason);
		goto out;
	}
	if (err == GH_OK || err == GH_ERR_DENIED) {
		gh_err uerr = gh_identity_user_get(ctx.db, c->user_id, &u);

		if (uerr != GH_OK)
			err = uerr;
		else if (strcmp(u.state, "active") != 0 && err == GH_OK) {
			err = GH_ERR_DENIED;
			reason = "user_disabled";
		}
	}
	ctx.actor.type = "user";
	ctx.actor.id = u.id;
	if (err == GH_OK) {
		/* A good passkey from a place the policy refuses. */
		const char *refusal = NULL;

		err = policy_signin_gate(&ctx, u.id, &refusal);
		if (err == GH_OK && refusal != NULL) {
			record_failure(&ctx, u.id, u.username, refusal);
			policy_respond_refusal(req, refusal);
			goto out;
		}
		if (err != GH_OK) {
			respond_err(req, err);
			goto out;
		}
	}
	if (err == GH_ERR_DENIED) {
		err = assertion_failed(&ctx, &u, c, NULL, "passkey", reason,
		    &killed, &locked);
		if (err == GH_OK)
			respond_refused(req, 401, "passkey_refused", reason);
		else
			respond_err(req, err);
		goto out;
	}
	if (err == GH_OK)
		err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = assertion_signin(&ctx, &u, c, &res, NULL, NULL, &s, csrf,
		    &remembered);
	if (err == GH_ERR_DENIED) {
		/* Another use moved the counter past this one meanwhile. */
		if (assertion_failed(&ctx, &u, c, NULL, "passkey",
		    "counter_regression", &killed, &locked) == GH_OK)
			respond_refused(req, 401, "passkey_refused",
			    "counter_regression");
		else
			respond_err(req, GH_ERR_STORE);
	} else if (err != GH_OK) {
		respond_err(req, err);
	} else {
		gh_wipe(u.password_hash, sizeof u.password_hash);
		respond_session(&ctx, &u, &s, csrf);
	}
	gh_wipe(csrf, sizeof csrf);
out:
	ctx.actor.id = NULL;
	gh_wipe(&u, sizeof u);
	free(c);
	wa_input_free(&in);
	json_decref(body);
	ctx_close(&ctx);
}

/* The pending sign-in token: the body's "mfa_token", else the cookie. */
static const char *
pending_token_of(struct gh_http_req *req, json_t *body)
{
	const char *t = json_string_value(json_object_get(body, "mfa_token"));

	return t != NULL ? t : gh_http_req_cookie(req, MFA_COOKIE);
}

/* Checks the pending second-factor sign-in and that the policy (to
 * *pol) allows WebAuthn; on failure responds. */
static bool
pending_of(struct api_ctx *ctx, json_t *body, struct gh_mfa_pending *p,
    struct gh_user *u, struct gh_mfa_policy *pol)
{
	const char *refusal = NULL;
	gh_err err;

	err = gh_auth_mfa_pending_check(ctx->db, pending_token_of(ctx->req,
	    body), p);
	if (err == GH_OK && p->purpose != GH_MFA_PURPOSE_VERIFY)
		err = GH_ERR_DENIED;
	if (err == GH_OK)
		err = gh_identity_user_get(ctx->db, p->user_id, u);
	if (err == GH_OK)
		err = mfa_policy_for(ctx, p->user_id, pol);
	if (err == GH_OK)
		err = policy_signin_gate(ctx, p->user_id, &refusal);
	if (err == GH_OK && refusal != NULL) {
		record_failure(ctx, u->id, u->username, refusal);
		policy_respond_refusal(ctx->req, refusal);
		return false;
	}
	if (err == GH_OK && !pol->allow_webauthn) {
		record_failure(ctx, u->id, u->username, "mfa_method_refused");
		mfa_respond_not_allowed(ctx->req, "webauthn");
		return false;
	}
	if (err == GH_ERR_DENIED) {
		record_failure(ctx, NULL, "", "mfa_token_invalid");
		gh_http_respond_error(ctx->req, 401, "mfa_token_invalid", "The "
		    "sign-in expired or was refused; sign in again.");
		return false;
	}
	if (err != GH_OK) {
		respond_err(ctx->req, err);
		return false;
	}
	return true;
}

static void
h_mfa_options(void *app, struct gh_http_req *req)
{
	static const char *const keys[] = { "mfa_token", NULL };
	struct gh_mfa_policy pol;
	struct gh_mfa_pending p;
	struct api_ctx ctx;
	struct gh_user u;
	json_t *body;

	if (!guard_signin_rate(app, req))
		return;
	memset(&u, 0, sizeof u);
	if (!ctx_open(app, req, &ctx))
		return;
	body = opt_body(req, keys);
	if (body != NULL && pending_of(&ctx, body, &p, &u, &pol))
		respond_assert_options(&ctx, u.id);
	gh_wipe(&u, sizeof u);
	json_decref(body);
	ctx_close(&ctx);
}

static void
h_mfa(void *app, struct gh_http_req *req)
{
	struct gh_wa_assert_result res;
	struct gh_wa_cred_row *c = NULL;
	const char *reason = "invalid_request";
	char csrf[GH_TOKEN_LEN + 1], ra[24];
	struct gh_mfa_pending p;
	struct gh_mfa_policy pol;
	struct gh_session s;
	struct wa_input in;
	struct api_ctx ctx;
	struct gh_user u;
	json_t *body = NULL, *rj, *out_body;
	int64_t until = 0;
	bool killed = false, locked = false, remember, remembered = false;
	gh_err err;

	if (!guard_signin_rate(app, req))
		return;
	memset(&in, 0, sizeof in);
	memset(&u, 0, sizeof u);
	if (!ctx_open(app, req, &ctx))
		return;
	body = body_object(req, mfa_keys);
	if (body == NULL)
		goto out;
	rj = json_object_get(body, "remember_device");
	if (rj != NULL && !json_is_boolean(rj)) {
		respond_invalid(req, "remember_device: must be a boolean");
		goto out;
	}
	remember = json_is_true(rj);
	if (!pending_of(&ctx, body, &p, &u, &pol))
		goto out;
	ctx.actor.type = "user";
	ctx.actor.id = u.id;
	err = gh_auth_mfa_lock_check(ctx.db, u.id, gh_now_ms(), &until);
	if (err == GH_ERR_LIMIT) {
		record_failure(&ctx, u.id, u.username, "mfa_locked");
		goto refused;
	}
	if (err == GH_OK)
		err = wa_input_parse(body, false, &in);
	if (err == GH_ERR_INVALID || err == GH_ERR_LIMIT) {
		err = GH_ERR_DENIED;
		reason = "malformed";
	} else if (err == GH_OK) {
		err = challenge_consume(&ctx, GH_WA_PURPOSE_AUTHENTICATE, u.id,
		    &in);
		if (err == GH_ERR_DENIED)
			reason = "challenge_invalid";
	}
	c = calloc(1, sizeof *c);
	if (c == NULL) {
		respond_err(req, GH_ERR_NOMEM);
		goto out;
	}
	if (err == GH_OK)
		err = assertion_check(&ctx, &in, u.id, false, c, &res, &reason);
	if (err == GH_OK)
		err = gh_db_begin(ctx.db);
	if (err == GH_OK) {
		err = assertion_signin(&ctx, &u, c, &res, p.id, remember ?
		    &pol : NULL, &s, csrf, &remembered);
		if (err == GH_ERR_DENIED)
			reason = "counter_regression";
	}
	if (err == GH_OK) {
		mfa_cookie_clear(&ctx);
		gh_wipe(u.password_hash, sizeof u.password_hash);
		out_body = json_pack("{s:o, s:o, s:s}", "user",
		    gh_identity_user_json(&u), "session", session_json(&s,
		    true), "csrf_token", csrf);
		if (out_body != NULL && remember)
			json_object_set_new(out_body, "device_remembered",
			    json_boolean(remembered));
		gh_http_respond_json(req, 200, out_body);
		gh_wipe(csrf, sizeof csrf);
		goto out;
	}
	if (err != GH_ERR_DENIED) {
		respond_err(req, err);
		goto out;
	}
	err = assertion_failed(&ctx, &u, c, p.id, "webauthn", reason, &killed,
	    &locked);
	if (err != GH_OK) {
		respond_err(req, err);
		goto out;
	}
	if (!locked) {
		respond_refused(req, 401, killed ? "mfa_token_invalid" :
		    "webauthn_refused", reason);
		goto out;
	}
	until = gh_now_ms() + GH_MFA_LOCK_MS;
refused:
	snprintf(ra, sizeof ra, "%lld", (long long)((until - gh_now_ms() +
	    999) / 1000 < 1 ? 1 : (until - gh_now_ms() + 999) / 1000));
	if (gh_http_resp_header(req, "Retry-After", ra) != GH_OK)
		GH_LOG_WARN(GH_ERR_INTERNAL, "Retry-After not set");
	gh_http_respond_error(req, 429, "mfa_locked", "Too many failed "
	    "attempts; multi-factor sign-in is locked for a while.");
	(void)locked;
out:
	ctx.actor.id = NULL;
	gh_wipe(&u, sizeof u);
	free(c);
	wa_input_free(&in);
	if (body != NULL && json_is_string(json_object_get(body, "mfa_token")))
		gh_wipe((char *)json_string_value(json_object_get(body,
		    "mfa_token")), json_string_length(json_object_get(body,
		    "mfa_token")));
	json_decref(body);
	ctx_close(&ctx);
}

gh_err
routes_webauthn(struct gh_http_router *r)
{
	static const struct gh_http_route_def routes[] = {
		{ "POST", "/o/{org}/api/v1/me/webauthn/register/options",
		    h_register_options },
		{ "POST", "/o/{org}/api/v1/me/webauthn/register", h_register },
		{ "GET", "/o/{org}/api/v1/me/webauthn/credentials",
		    h_creds_list },
		{ "PATCH", "/o/{org}/api/v1/me/webauthn/credentials/{id}",
		    h_cred_patch },
		{ "DELETE", "/o/{org}/api/v1/me/webauthn/credentials/{id}",
		    h_cred_delete },
		{ "POST", "/o/{org}/api/v1/session/mfa/webauthn/options",
		    h_mfa_options },
		{ "POST", "/o/{org}/api/v1/session/mfa/webauthn", h_mfa },
		{ "POST", "/o/{org}/api/v1/session/passkey/options",
		    h_passkey_options },
		{ "POST", "/o/{org}/api/v1/session/passkey", h_passkey },
	};

	gh_err err;

	err = gh_http_routes(r, routes, sizeof routes / sizeof *routes);
	return err == GH_OK ? routes_webauthn_page(r) : err;
}
