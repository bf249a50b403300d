/*
 * oidc_clients.c: OpenID Connect client settings of apps of kind "oidc"
 * (GET/PUT /apps/{id}/oidc), client secrets (POST /apps/{id}/oidc/secret,
 * shown once) and client authentication at the token, introspection and
 * revocation endpoints: client_secret_basic, client_secret_post,
 * private_key_jwt (RFC 7523 assertions signed by a registered public key,
 * each jti accepted once) and none for public clients.
 *
 * Untrusted input: the settings an admin sends (validated member by
 * member: exact redirect URIs, known grant types and methods, bounded
 * lifetimes, importable public JWKs), the Authorization header, the
 * client_id/client_secret form fields and client assertions (strict JWS
 * parsing in src/jose; the key is the client's, chosen by kid).
 * Secrets: client secrets (256 random bits, returned once, stored as
 * their SHA-256 digest and compared in constant time).
 */
#include "api/oidc_int.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

void
oauth_error(struct gh_http_req *req, unsigned status, const char *code,
    const char *desc)
{
	gh_http_respond_json(req, status, json_pack("{s:s, s:s, s:s}",
	    "error", code, "error_description", desc, "message", desc));
}

/* ---- settings ------------------------------------------------------------ */

/*
 * Parsed settings, shared: every token, introspection and revocation
 * request loads its client, and parsing the settings JSON was most of
 * that. This remembers the parse of the exact settings text last read for
 * a few (org, client) pairs; the text is still read from the database on
 * every load and compared whole, so a change is seen on the next request
 * (nothing to invalidate). The parsed object is handed out by reference:
 * it is never modified (client_json deep-copies it; a PUT builds new settings).
 */
#define PARSED_N 32
#define PARSED_TEXT_MAX (64 * 1024)

struct parsed_slot {
	char org_id[GH_ID_LEN + 1];
	char app_id[GH_ID_LEN + 1];
	char *text;
	json_t *s;
	uint64_t used;
};

static struct {
	pthread_mutex_t mu;
	struct parsed_slot slot[PARSED_N];
	uint64_t tick;
} parsed = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* A new reference to the parse of text, an object, or NULL. */
static json_t *
settings_parse(const char *org_id, const char *app_id, const char *text)
{
	struct parsed_slot *sl, *old = &parsed.slot[0];
	json_t *s = NULL;
	size_t len = strlen(text);
	char *copy;

	if (org_id == NULL)
		org_id = "";
	pthread_mutex_lock(&parsed.mu);
	for (int i = 0; i < PARSED_N; i++) {
		sl = &parsed.slot[i];
		if (sl->text != NULL && strcmp(sl->app_id, app_id) == 0 &&
		    strcmp(sl->org_id, org_id) == 0 &&
		    strcmp(sl->text, text) == 0) {
			sl->used = ++parsed.tick;
			s = json_incref(sl->s);
			break;
		}
		if (sl->used < old->used)
			old = sl;
	}
	pthread_mutex_unlock(&parsed.mu);
	if (s != NULL)
		return s;
	s = json_loads(text, 0, NULL);
	if (!json_is_object(s)) {
		json_decref(s);
		return NULL;
	}
	if (len > PARSED_TEXT_MAX || (copy = strdup(text)) == NULL)
		return s;
	pthread_mutex_lock(&parsed.mu);
	free(old->text);
	json_decref(old->s);
	gh_strlcpy(old->org_id, org_id, sizeof old->org_id);
	gh_strlcpy(old->app_id, app_id, sizeof old->app_id);
	old->text = copy;
	old->s = json_incref(s);
	old->used = ++parsed.tick;
	pthread_mutex_unlock(&parsed.mu);
	return s;
}

void
oidc_client_free(struct oidc_client *c)
{
	json_decref(c->s);
	c->s = NULL;
	gh_wipe(c->secret_digest, sizeof c->secret_digest);
}

gh_err
oidc_client_load(struct gh_db *db, const char *id, struct oidc_client *out)
{
	struct gh_stmt *st = NULL;
	const void *dg;
	size_t dg_len = 0;
	gh_err err;
	bool row;

	memset(out, 0, sizeof *out);
	if (id == NULL || !gh_id_valid(id))
		return GH_ERR_NOTFOUND;
	err = gh_access_app_get(db, id, &out->app);
	if (err == GH_OK && strcmp(out->app.kind, "oidc") != 0)
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK)
		err = gh_db_prepare(db, "SELECT settings, secret_digest FROM "
		    "oidc_clients WHERE app_id = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", id);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && !row)
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK) {
		out->s = settings_parse(gh_db_org_id(db), id,
		    gh_stmt_text(st, 0));
		if (out->s == NULL)
			err = GH_ERR_STORE;
		dg = gh_stmt_blob(st, 1, &dg_len);
		if (dg != NULL && dg_len == GH_SHA256_LEN) {
			memcpy(out->secret_digest, dg, GH_SHA256_LEN);
			out->has_secret = true;
		}
	}
	gh_stmt_free(st);
	if (err != GH_OK)
		oidc_client_free(out);
	return err;
}

bool
oidc_client_has(const struct oidc_client *c, const char *key,
    const char *value)
{
	json_t *a = json_object_get(c->s, key), *v;
	size_t i;

	if (value == NULL)
		return false;
	json_array_foreach(a, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), value) ==
		    0)
			return true;
	return false;
}

int64_t
oidc_client_int(const struct oidc_client *c, const char *key)
{
	return json_integer_value(json_object_get(c->s, key));
}

const char *
oidc_client_str(const struct oidc_client *c, const char *key)
{
	const char *s = json_string_value(json_object_get(c->s, key));

	return s ? s : "";
}

bool
oidc_redirect_uri_valid(const char *u)
{
	size_t n = strlen(u);

	if (n == 0 || n > OIDC_URI_MAX || strchr(u, '#') != NULL)
		return false;
	for (const char *p = u; *p != '\0'; p++)
		if (*p < 0x21 || *p > 0x7e)
			return false;
	if (strncmp(u, "https://", 8) == 0)
		return n > 8 && u[8] != '/';
	return strncmp(u, "http://127.0.0.1", 16) == 0 ||
	    strncmp(u, "http://localhost", 16) == 0 ||
	    strncmp(u, "http://[::1]", 12) == 0;
}

/* Where validation says why it refused (the API answers it as 400
 * invalid_request, the CLI prints it). */
struct chk {
	char *msg;
	size_t cap;
};

static bool GH_PRINTF(2, 3)
refuse(struct chk *k, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(k->msg, k->cap, fmt, ap);
	va_end(ap);
	return false;
}

static bool
uris_read(struct chk *k, json_t *body, const char *key,
    bool required, json_t *out)
{
	json_t *a = json_object_get(body, key), *v, *copy = json_array();
	size_t i;

	if (a == NULL && !required) {
		json_object_set_new(out, key, copy);
		return true;
	}
	if (!json_is_array(a) || (required && json_array_size(a) == 0) ||
	    json_array_size(a) > OIDC_URIS_MAX) {
		json_decref(copy);
		refuse(k, "%s must be an array of 1 to %d URIs", key,
		    OIDC_URIS_MAX);
		return false;
	}
	json_array_foreach(a, i, v) {
		if (!json_is_string(v) ||
		    !oidc_redirect_uri_valid(json_string_value(v))) {
			json_decref(copy);
			refuse(k, "%s[%zu] must be an https URI "
			    "(http only for loopback) without a fragment", key,
			    i);
			return false;
		}
		json_array_append(copy, v);
	}
	json_object_set_new(out, key, copy);
	return true;
}

static bool
str_member(struct chk *k, json_t *body, const char *key,
    const char *const *allowed, const char *def, json_t *out)
{
	const char *v = def;
	json_t *j = json_object_get(body, key);

	if (j != NULL && !json_is_string(j))
		return refuse(k, "%s: must be a string", key);
	if (j != NULL)
		v = json_string_value(j);
	for (; *allowed != NULL; allowed++)
		if (strcmp(*allowed, v) == 0) {
			json_object_set_new(out, key, json_string(v));
			return true;
		}
	refuse(k, "%s: unsupported value", key);
	return false;
}

static bool
int_member(struct chk *k, json_t *body, const char *key,
    int64_t lo, int64_t hi, int64_t def, json_t *out)
{
	json_t *v = json_object_get(body, key);
	int64_t n = def;

	if (v != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < lo ||
		    json_integer_value(v) > hi) {
			refuse(k, "%s must be an integer from %lld "
			    "to %lld", key, (long long)lo, (long long)hi);
			return false;
		}
		n = json_integer_value(v);
	}
	json_object_set_new(out, key, json_integer(n));
	return true;
}

static bool
grants_read(struct chk *ck, json_t *body, json_t *out)
{
	static const char *const known[] = { "authorization_code",
	    "refresh_token", "client_credentials", DEVICE_GRANT };
	const size_t nknown = sizeof known / sizeof known[0];
	json_t *a = json_object_get(body, "grant_types"), *v, *copy;
	size_t i, k;

	if (a == NULL) {
		json_object_set_new(out, "grant_types", json_pack("[s, s]",
		    "authorization_code", "refresh_token"));
		return true;
	}
	if (!json_is_array(a) || json_array_size(a) == 0 ||
	    json_array_size(a) > nknown)
		goto bad;
	copy = json_array();
	json_array_foreach(a, i, v) {
		for (k = 0; k < nknown; k++)
			if (json_is_string(v) &&
			    strcmp(json_string_value(v), known[k]) == 0)
				break;
		if (k == nknown) {
			json_decref(copy);
			goto bad;
		}
		json_array_append(copy, v);
	}
	json_object_set_new(out, "grant_types", copy);
	return true;
bad:
	refuse(ck, "grant_types must be a non-empty array of "
	    "authorization_code, refresh_token, client_credentials, "
	    DEVICE_GRANT);
	return false;
}

/* The public keys of a private_key_jwt client: {"keys": [JWK with "kid"
 * and "alg"]}, 1 to OIDC_JWKS_MAX, each importable for its alg. */
static bool
jwks_read(struct chk *ck, json_t *body, bool required, json_t *out)
{
	json_t *set = json_object_get(body, "jwks"), *keys, *k;
	struct gh_jose_key *key = NULL;
	enum gh_jose_alg alg;
	const char *kid;
	size_t i;

	if (set == NULL && !required)
		return true;
	if (!required) {
		refuse(ck, "jwks is only for private_key_jwt "
		    "clients");
		return false;
	}
	keys = json_object_get(set, "keys");
	if (!json_is_object(set) || !json_is_array(keys) ||
	    json_array_size(keys) == 0 ||
	    json_array_size(keys) > OIDC_JWKS_MAX) {
		refuse(ck, "jwks must be {\"keys\": [1 to %d public "
		    "JWKs]} for private_key_jwt", OIDC_JWKS_MAX);
		return false;
	}
	json_array_foreach(keys, i, k) {
		kid = json_string_value(json_object_get(k, "kid"));
		if (kid == NULL || kid[0] == '\0' ||
		    strlen(kid) > GH_JOSE_KID_MAX ||
		    json_object_get(k, "d") != NULL ||
		    gh_jose_alg_parse(json_string_value(json_object_get(k,
		    "alg")), &alg) != GH_OK ||
		    gh_jose_key_from_jwk(alg, k, &key) != GH_OK) {
			refuse(ck, "jwks.keys[%zu] must be a public "
			    "ES256, RS256 or EdDSA JWK with kid and alg", i);
			return false;
		}
		gh_jose_key_free(key);
		key = NULL;
	}
	json_object_set(out, "jwks", set);
	return true;
}

/* Claims that a configured attribute claim may not take: the registered
 * and standard ones (RFC 7519 4.1, OpenID Connect Core 2 and 5.1) and
 * the ones Gatehouse sets itself. */
static const char *const reserved_claims[] = { "iss", "sub", "aud", "exp",
	"nbf", "iat", "jti", "auth_time", "nonce", "acr", "amr", "azp",
	"at_hash", "c_hash", "s_hash", "sid", "name", "given_name",
	"family_name", "middle_name", "nickname", "preferred_username",
	"profile", "picture", "website", "email", "email_verified", "gender",
	"birthdate", "zoneinfo", "locale", "phone_number",
	"phone_number_verified", "address", "updated_at", "groups", "roles",
	"scope", "client_id", "cnf", "events", "typ", NULL };

bool
oidc_claim_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > OIDC_CLAIM_NAME_MAX ||
	    !((name[0] >= 'a' && name[0] <= 'z') ||
	    (name[0] >= 'A' && name[0] <= 'Z')))
		return false;
	for (const char *p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("_.:/-", *p) != NULL))
			return false;
	for (const char *const *r = reserved_claims; *r != NULL; r++)
		if (strcmp(*r, name) == 0)
			return false;
	return true;
}

/* The attribute claims: {claim name: attribute name}, each attribute
 * defined and not classified sensitive. */
static bool
attr_claims_read(struct chk *k, struct gh_db *db, json_t *m, json_t *out)
{
	struct gh_attr_def d;
	const char *claim;
	json_t *v;
	gh_err err;

	if (!json_is_object(m) || json_object_size(m) > OIDC_ATTR_CLAIMS_MAX)
		return refuse(k, "claims.attributes must be an object of at "
		    "most %d claim names to attribute names",
		    OIDC_ATTR_CLAIMS_MAX);
	json_object_foreach(m, claim, v) {
		if (!oidc_claim_name_valid(claim))
			return refuse(k, "claims.attributes: '%.64s' is not a "
			    "claim name an attribute may take (1 to %d of "
			    "A-Z a-z 0-9 _ . : / -, starting with a letter, "
			    "not a registered or standard claim)", claim,
			    OIDC_CLAIM_NAME_MAX);
		if (!json_is_string(v) ||
		    !gh_identity_attr_name_valid(json_string_value(v)))
			return refuse(k, "claims.attributes.%s must name an "
			    "attribute", claim);
		memset(&d, 0, sizeof d);
		err = gh_identity_attr_def_get(db, json_string_value(v), &d);
		if (err == GH_OK && d.classification >= GH_ATTR_SENSITIVE) {
			gh_identity_attr_def_clear(&d);
			return refuse(k, "claims.attributes.%s: attribute %s "
			    "is classified sensitive and never goes into "
			    "tokens", claim, json_string_value(v));
		}
		gh_identity_attr_def_clear(&d);
		if (err != GH_OK)
			return refuse(k, "claims.attributes.%s: no attribute "
			    "named %s", claim, json_string_value(v));
		json_object_set(out, claim, v);
	}
	return true;
}

/* The client's claim settings: {"groups": bool, "roles": bool,
 * "attributes": {claim: attribute}}; absent members keep the defaults
 * (groups and roles with the groups scope, no attribute claims). */
static bool
claims_read(struct chk *k, struct gh_db *db, json_t *body, json_t *out)
{
	json_t *c = json_object_get(body, "claims"), *v, *attrs;
	const char *key;
	bool ok = true;

	if (c == NULL)
		return true;
	if (!json_is_object(c))
		return refuse(k, "claims must be an object with groups, roles "
		    "and attributes");
	json_object_foreach(c, key, v)
		if (strcmp(key, "groups") != 0 && strcmp(key, "roles") != 0 &&
		    strcmp(key, "attributes") != 0)
			return refuse(k, "claims: unknown member '%.64s'", key);
	attrs = json_object();
	for (size_t i = 0; i < 2; i++) {
		key = i == 0 ? "groups" : "roles";
		v = json_object_get(c, key);
		if (v != NULL && !json_is_boolean(v))
			ok = refuse(k, "claims.%s must be a boolean", key);
	}
	v = json_object_get(c, "attributes");
	if (ok && v != NULL)
		ok = attr_claims_read(k, db, v, attrs);
	if (ok)
		json_object_set_new(out, "claims", json_pack("{s:b, s:b, s:O}",
		    "groups", !json_is_false(json_object_get(c, "groups")),
		    "roles", !json_is_false(json_object_get(c, "roles")),
		    "attributes", attrs));
	json_decref(attrs);
	return ok;
}

/* backchannel_logout_uri (null or absent: none) and
 * backchannel_logout_session_required (default false) into out. */
static bool
bcl_read(struct chk *k, json_t *body, json_t *out)
{
	json_t *u = json_object_get(body, "backchannel_logout_uri");
	json_t *r = json_object_get(body, "backchannel_logout_session_required");

	if (u != NULL && !json_is_null(u) && (!json_is_string(u) ||
	    !oidc_redirect_uri_valid(json_string_value(u))))
		return refuse(k, "backchannel_logout_uri must be an absolute "
		    "https URL without a fragment (plain http only to "
		    "127.0.0.1, localhost or [::1]), at most %d bytes, or null",
		    OIDC_URI_MAX);
	if (r != NULL && !json_is_boolean(r))
		return refuse(k, "backchannel_logout_session_required must "
		    "be a boolean");
	json_object_set_new(out, "backchannel_logout_uri", u != NULL &&
	    json_is_string(u) ? json_string(json_string_value(u)) :
	    json_null());
	json_object_set_new(out, "backchannel_logout_session_required",
	    json_boolean(json_is_true(r)));
	return true;
}

/* Validates a PUT body into complete settings; NULL after saying why in
 * k. */
static json_t *
settings_read(struct chk *k, struct gh_db *db, json_t *body)
{
	static const char *const types[] = { "public", "confidential", NULL };
	static const char *const methods[] = { "client_secret_basic",
	    "client_secret_post", "private_key_jwt", "none", NULL };
	static const char *const formats[] = { "jwt", "opaque", NULL };
	static const char *const algs[] = { "ES256", "RS256", "EdDSA", NULL };
	json_t *s = json_object(), *pk;
	const char *type, *method;
	bool public;

	if (!uris_read(k, body, "redirect_uris", true, s) ||
	    !uris_read(k, body, "post_logout_redirect_uris", false, s) ||
	    !grants_read(k, body, s) ||
	    !str_member(k, body, "client_type", types, "confidential", s))
		goto bad;
	type = json_string_value(json_object_get(s, "client_type"));
	public = strcmp(type, "public") == 0;
	if (!str_member(k, body, "token_endpoint_auth_method", methods,
	    public ? "none" : "client_secret_basic", s) ||
	    !str_member(k, body, "access_token_format", formats, "jwt", s) ||
	    !str_member(k, body, "id_token_signed_response_alg", algs,
	    "ES256", s) ||
	    !int_member(k, body, "id_token_lifetime_s", 60,
	    OIDC_TOKEN_TTL_MAX_S, 3600, s) ||
	    !int_member(k, body, "access_token_lifetime_s", 60,
	    OIDC_TOKEN_TTL_MAX_S, 900, s) ||
	    !int_member(k, body, "refresh_token_lifetime_s", 300,
	    90 * 86400, 30 * 86400, s))
		goto bad;
	method = json_string_value(json_object_get(s,
	    "token_endpoint_auth_method"));
	if (public != (strcmp(method, "none") == 0)) {
		refuse(k, "token_endpoint_auth_method must be none "
		    "for public clients and a client_secret method otherwise");
		goto bad;
	}
	if (public && oidc_client_has(&(struct oidc_client){ .s = s },
	    "grant_types", "client_credentials")) {
		refuse(k, "client_credentials needs a confidential "
		    "client");
		goto bad;
	}
	if (!jwks_read(k, body, strcmp(method, "private_key_jwt") == 0, s) ||
	    !claims_read(k, db, body, s) || !bcl_read(k, body, s))
		goto bad;
	pk = json_object_get(body, "pkce_required");
	if (pk != NULL && !json_is_boolean(pk)) {
		refuse(k, "pkce_required must be a boolean");
		goto bad;
	}
	/* Public clients cannot keep a secret: PKCE is their proof. */
	json_object_set_new(s, "pkce_required", json_boolean(public ||
	    json_is_true(pk)));
	return s;
bad:
	json_decref(s);
	return NULL;
}

static json_t *
client_json(const struct oidc_client *c)
{
	json_t *j = json_deep_copy(c->s);

	json_object_set_new(j, "client_id", json_string(c->app.id));
	json_object_set_new(j, "has_secret", json_boolean(c->has_secret));
	return j;
}

/* Opens an app route under perm; responds and returns false on failure,
 * including 404 app_not_found and 409 app_not_oidc. */
static bool
client_route_open(void *app, struct gh_http_req *req, struct api_ctx *ctx,
    const char *perm, struct gh_access_app *a)
{
	const char *id = gh_http_req_param(req, "id");
	gh_err err;

	if (!ctx_open_perm(app, req, ctx, perm))
		return false;
	if (!ctx_may_app(ctx, perm, id))
		goto fail;
	err = gh_access_app_get(ctx->db, id, a);
	if (err == GH_ERR_NOTFOUND) {
		gh_http_respond_error(req, 404, "app_not_found",
		    "No such app.");
		goto fail;
	}
	if (err != GH_OK) {
		respond_err(req, err);
		goto fail;
	}
	if (strcmp(a->kind, "oidc") != 0) {
		gh_http_respond_error(req, 409, "app_not_oidc", "Only apps of "
		    "kind oidc have OpenID Connect client settings.");
		goto fail;
	}
	return true;
fail:
	ctx_close(ctx);
	return false;
}

static void
h_client_get(void *app, struct gh_http_req *req)
{
	struct gh_access_app a;
	struct oidc_client c;
	struct api_ctx ctx;
	gh_err err;

	if (!client_route_open(app, req, &ctx, "apps.read", &a))
		return;
	err = oidc_client_load(ctx.db, a.id, &c);
	if (err == GH_ERR_NOTFOUND)
		gh_http_respond_error(req, 404, "oidc_client_not_found",
		    "This app has no client settings yet.");
	else if (err != GH_OK)
		respond_err(req, err);
	else
		gh_http_respond_json(req, 200, client_json(&c));
	oidc_client_free(&c);
	ctx_close(&ctx);
}

gh_err
gh_api_oidc_client_check(struct gh_db *db, json_t *body,
    json_t **settings_out, char *msg, size_t msg_cap)
{
	struct chk k = { msg, msg_cap };

	*settings_out = settings_read(&k, db, body);
	return *settings_out != NULL ? GH_OK : GH_ERR_INVALID;
}

gh_err
gh_api_oidc_client_save(struct gh_db *db, const struct gh_audit_actor *actor,
    const char *app_id, json_t *settings)
{
	char *text = json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS);
	gh_err err = text ? GH_OK : GH_ERR_NOMEM;

	if (err == GH_OK)
		err = gh_db_run(db, "INSERT INTO oidc_clients (app_id, "
		    "settings, updated_at) VALUES (?, ?, ?) ON CONFLICT "
		    "(app_id) DO UPDATE SET settings = excluded.settings, "
		    "updated_at = excluded.updated_at", "tti", app_id, text,
		    gh_now_ms());
	if (err == GH_OK)
		err = gh_audit_append(db, actor, "oidc.client.update", "app",
		    app_id, settings);
	free(text);
	return err;
}

gh_err
gh_api_oidc_client_json(struct gh_db *db, const char *app_id, json_t **out)
{
	struct oidc_client c;
	gh_err err;

	*out = NULL;
	err = oidc_client_load(db, app_id, &c);
	if (err == GH_OK)
		*out = client_json(&c);
	oidc_client_free(&c);
	return err;
}

static void
h_client_put(void *app, struct gh_http_req *req)
{
	static const char *const keys[] = { "redirect_uris",
	    "post_logout_redirect_uris", "grant_types", "client_type",
	    "token_endpoint_auth_method", "id_token_lifetime_s",
	    "access_token_lifetime_s", "refresh_token_lifetime_s",
	    "access_token_format", "pkce_required",
	    "id_token_signed_response_alg", "jwks", "claims",
	    "backchannel_logout_uri", "backchannel_logout_session_required",
	    NULL };
	struct gh_access_app a;
	struct oidc_client c;
	struct api_ctx ctx;
	json_t *body = NULL, *s = NULL;
	char msg[256];
	gh_err err;

	memset(&c, 0, sizeof c);
	if (!client_route_open(app, req, &ctx, "apps.write", &a))
		return;
	if ((body = body_object(req, keys)) == NULL)
		goto out;
	if (gh_api_oidc_client_check(ctx.db, body, &s, msg, sizeof msg) !=
	    GH_OK) {
		respond_invalid(req, "%s", msg);
		goto out;
	}
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_api_oidc_client_save(ctx.db, &ctx.actor, a.id, s);
	if (!finish(&ctx, err))
		goto out;
	err = oidc_client_load(ctx.db, a.id, &c);
	if (err != GH_OK)
		respond_err(req, err);
	else
		gh_http_respond_json(req, 200, client_json(&c));
out:
	oidc_client_free(&c);
	json_decref(s);
	json_decref(body);
	ctx_close(&ctx);
}

gh_err
gh_api_oidc_secret_rotate(struct gh_db *db, const struct gh_audit_actor *actor,
    const char *app_id, char secret[static GH_API_OIDC_SECRET_LEN + 1])
{
	uint8_t raw[OIDC_SECRET_BYTES], dg[GH_SHA256_LEN];
	struct oidc_client c;
	gh_err err;

	_Static_assert(GH_API_OIDC_SECRET_LEN == TOKEN_STR_LEN,
	    "secret length");
	secret[0] = '\0';
	err = oidc_client_load(db, app_id, &c);
	if (err == GH_OK && strcmp(oidc_client_str(&c, "client_type"),
	    "confidential") != 0)
		err = GH_ERR_CONFLICT;
	if (err == GH_OK)
		err = gh_rand_bytes(raw, sizeof raw);
	if (err == GH_OK) {
		gh_b64url_encode(raw, sizeof raw, secret);
		gh_sha256(secret, strlen(secret), dg);
		err = gh_db_run(db, "UPDATE oidc_clients SET "
		    "secret_digest = ?, secret_created_at = ? WHERE app_id = "
		    "?", "bit", dg, sizeof dg, gh_now_ms(), app_id);
	}
	if (err == GH_OK)
		err = gh_audit_append(db, actor, "oidc.secret.rotate", "app",
		    app_id, NULL);
	if (err != GH_OK)
		gh_wipe(secret, GH_API_OIDC_SECRET_LEN + 1);
	gh_wipe(raw, sizeof raw);
	oidc_client_free(&c);
	return err;
}

static void
h_secret_post(void *app, struct gh_http_req *req)
{
	char secret[GH_API_OIDC_SECRET_LEN + 1];
	struct gh_access_app a;
	struct api_ctx ctx;
	gh_err err;

	if (!client_route_open(app, req, &ctx, "apps.write", &a))
		return;
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_api_oidc_secret_rotate(ctx.db, &ctx.actor, a.id,
		    secret);
	if (err == GH_ERR_NOTFOUND || err == GH_ERR_CONFLICT) {
		gh_db_rollback(ctx.db);
		if (err == GH_ERR_NOTFOUND)
			gh_http_respond_error(req, 404,
			    "oidc_client_not_found",
			    "Set the client settings first.");
		else
			gh_http_respond_error(req, 409, "public_client",
			    "Public clients have no secret.");
	} else if (finish(&ctx, err)) {
		gh_http_respond_json(req, 201, json_pack("{s:s, s:s}",
		    "client_id", a.id, "client_secret", secret));
	}
	gh_wipe(secret, sizeof secret);
	ctx_close(&ctx);
}

/* ---- client authentication ----------------------------------------------- */

static int
hex_nibble(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Undoes application/x-www-form-urlencoded in place (RFC 6749 2.3.1: the
 * client id and secret are form-encoded before base64): "%XX" becomes the
 * byte, '+' a space. False for a bad escape or an escaped NUL. */
static bool
form_unescape(char *s)
{
	char *d = s;

	for (; *s != '\0'; s++) {
		if (*s == '+') {
			*d++ = ' ';
		} else if (*s == '%') {
			int hi = hex_nibble((unsigned char)s[1]);
			int lo = hi < 0 ? -1 : hex_nibble((unsigned char)s[2]);

			if (lo < 0 || (hi == 0 && lo == 0))
				return false;
			*d++ = (char)(hi << 4 | lo);
			s += 2;
		} else {
			*d++ = *s;
		}
	}
	*d = '\0';
	return true;
}

bool
oidc_basic_parse(const char *h, char id[static GH_ID_LEN + 1],
    char *secret, size_t secret_cap)
{
	char dec[256];
	const char *b64;
	char *colon;
	size_t n;
	int len;

	if (strncasecmp(h, "Basic ", 6) != 0)
		return false;
	b64 = h + 6;
	n = strlen(b64);
	if (n == 0 || n % 4 != 0 || n / 4 * 3 >= sizeof dec)
		return false;
	len = EVP_DecodeBlock((unsigned char *)dec, (const unsigned char *)b64,
	    (int)n);
	if (len < 0)
		return false;
	/* EVP_DecodeBlock counts the padding as bytes. */
	if (n >= 1 && b64[n - 1] == '=')
		len--;
	if (n >= 2 && b64[n - 2] == '=')
		len--;
	dec[len] = '\0';
	colon = memchr(dec, ':', (size_t)len);
	if (colon == NULL || memchr(dec, '\0', (size_t)len))
		goto fail;
	*colon = '\0';
	if (!form_unescape(dec) || !form_unescape(colon + 1) ||
	    strlen(dec) != GH_ID_LEN || strlen(colon + 1) >= secret_cap)
		goto fail;
	memcpy(id, dec, GH_ID_LEN);
	id[GH_ID_LEN] = '\0';
	gh_strlcpy(secret, colon + 1, secret_cap);
	gh_wipe(dec, sizeof dec);
	return true;
fail:
	gh_wipe(dec, sizeof dec);
	return false;
}

static bool
secret_ok(const struct oidc_client *c, const char *secret)
{
	uint8_t dg[GH_SHA256_LEN];
	bool ok;

	if (!c->has_secret || secret == NULL)
		return false;
	gh_sha256(secret, strlen(secret), dg);
	ok = gh_ct_eq(dg, c->secret_digest, sizeof dg);
	gh_wipe(dg, sizeof dg);
	return ok;
}

static bool
auth_fail(struct api_ctx *ctx, bool basic)
{
	if (basic && gh_http_resp_header(ctx->req, "WWW-Authenticate",
	    "Basic realm=\"oidc\"") != GH_OK)
		GH_LOG_WARN(GH_ERR_INTERNAL, "WWW-Authenticate not set");
	oauth_error(ctx->req, 401, "invalid_client",
	    "Client authentication failed.");
	return false;
}

#define ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define ASSERTION_MAX_S 600	/* longest assertion lifetime accepted */

/* True when aud (string or array) names the token endpoint or the
 * issuer. */
static bool
aud_ok(struct api_ctx *ctx, json_t *aud)
{
	char iss[400], tok[440];
	json_t *v;
	size_t i;

	oidc_issuer(ctx, iss, sizeof iss);
	snprintf(tok, sizeof tok, "%s/oidc/token", iss);
	if (json_is_string(aud))
		return strcmp(json_string_value(aud), iss) == 0 ||
		    strcmp(json_string_value(aud), tok) == 0;
	json_array_foreach(aud, i, v)
		if (aud_ok(ctx, v))
			return true;
	return false;
}

/* Verifies a private_key_jwt assertion (RFC 7523) for client c: signed by
 * one of its registered keys (by kid), iss = sub = client id, aud ours,
 * not expired nor too long-lived, and its jti never seen before (recorded
 * in its own transaction). */
static bool
assertion_ok(struct api_ctx *ctx, const struct oidc_client *c,
    const char *assertion)
{
	struct gh_jose_key *key = NULL;
	enum gh_jose_alg alg;
	json_t *hdr = NULL, *claims = NULL, *k;
	const char *kid, *jti, *iss, *sub;
	int64_t now = gh_now_ms(), exp;
	bool ok = false;
	size_t i;
	gh_err err;

	if (gh_jose_header(assertion, strlen(assertion), &hdr) != GH_OK)
		return false;
	kid = json_string_value(json_object_get(hdr, "kid"));
	json_array_foreach(json_object_get(json_object_get(c->s, "jwks"),
	    "keys"), i, k) {
		if (kid != NULL && strcmp(kid, json_string_value(
		    json_object_get(k, "kid"))) != 0)
			continue;
		if (gh_jose_alg_parse(json_string_value(json_object_get(k,
		    "alg")), &alg) != GH_OK ||
		    gh_jose_key_from_jwk(alg, k, &key) != GH_OK)
			continue;
		err = gh_jose_verify(key, assertion, strlen(assertion), NULL,
		    &claims);
		gh_jose_key_free(key);
		key = NULL;
		if (err == GH_OK)
			break;
	}
	if (claims == NULL)
		goto out;
	iss = json_string_value(json_object_get(claims, "iss"));
	sub = json_string_value(json_object_get(claims, "sub"));
	jti = json_string_value(json_object_get(claims, "jti"));
	exp = json_integer_value(json_object_get(claims, "exp")) * 1000;
	if (iss == NULL || sub == NULL || strcmp(iss, c->app.id) != 0 ||
	    strcmp(sub, c->app.id) != 0 ||
	    !aud_ok(ctx, json_object_get(claims, "aud")) || jti == NULL ||
	    jti[0] == '\0' || strlen(jti) > 128 || exp <= now ||
	    exp > now + ASSERTION_MAX_S * 1000)
		goto out;
	err = gh_db_begin(ctx->db);
	if (err == GH_OK)
		err = gh_db_run(ctx->db, "DELETE FROM oidc_assertions WHERE "
		    "expires_at <= ?", "i", now);
	if (err == GH_OK)
		err = gh_db_run(ctx->db, "INSERT INTO oidc_assertions "
		    "(client_id, jti, expires_at) VALUES (?, ?, ?)", "tti",
		    c->app.id, jti, exp);
	if (err == GH_OK)
		err = gh_db_commit(ctx->db);
	if (err != GH_OK)
		gh_db_rollback(ctx->db);	/* a replay: GH_ERR_CONFLICT */
	ok = err == GH_OK;
out:
	json_decref(hdr);
	json_decref(claims);
	return ok;
}

/* The client id of an assertion: the form's client_id, else its (not yet
 * verified) iss, only to find which keys to verify it with. */
static bool
assertion_client(struct api_ctx *ctx, const char *assertion,
    const char *form_id, char id[static GH_ID_LEN + 1])
{
	json_t *claims = NULL;
	const char *iss;
	bool ok;

	if (form_id != NULL)
		return gh_strlcpy(id, form_id, GH_ID_LEN + 1);
	if (gh_jose_claims_unverified(assertion, strlen(assertion),
	    &claims) != GH_OK)
		return false;
	iss = json_string_value(json_object_get(claims, "iss"));
	ok = iss != NULL && gh_strlcpy(id, iss, GH_ID_LEN + 1);
	json_decref(claims);
	return ok;
}

bool
oidc_client_auth(struct api_ctx *ctx, struct oidc_client *out)
{
	const char *h = gh_http_req_header(ctx->req, "Authorization");
	const char *form_id = gh_http_req_form(ctx->req, "client_id");
	const char *form_secret = gh_http_req_form(ctx->req, "client_secret");
	const char *atype = gh_http_req_form(ctx->req, "client_assertion_type");
	const char *assertion = gh_http_req_form(ctx->req, "client_assertion");
	char id[GH_ID_LEN + 1], secret[128];
	const char *method, *use_id, *use_secret = NULL, *used;
	bool ok = false;
	gh_err err;

	memset(out, 0, sizeof *out);
	memset(secret, 0, sizeof secret);
	if (atype != NULL || assertion != NULL) {
		if (h != NULL || form_secret != NULL || atype == NULL ||
		    strcmp(atype, ASSERTION_TYPE) != 0 || assertion == NULL) {
			oauth_error(ctx->req, 400, "invalid_request",
			    "client_assertion_type must be jwt-bearer, with a "
			    "client_assertion and no other credentials.");
			goto out;
		}
		if (!assertion_client(ctx, assertion, form_id, id))
			return auth_fail(ctx, false);
		use_id = id;
		used = "private_key_jwt";
	} else if (h != NULL) {
		if (form_secret != NULL || !oidc_basic_parse(h, id, secret,
		    sizeof secret))
			return auth_fail(ctx, true);
		if (form_id != NULL && strcmp(form_id, id) != 0) {
			oauth_error(ctx->req, 400, "invalid_request",
			    "client_id differs from the authenticated one.");
			goto out;
		}
		use_id = id;
		use_secret = secret;
		used = "client_secret_basic";
	} else if (form_secret != NULL) {
		use_id = form_id;
		use_secret = form_secret;
		used = "client_secret_post";
	} else if (form_id != NULL) {
		use_id = form_id;
		used = "none";
	} else {
		oauth_error(ctx->req, 401, "invalid_client",
		    "No client authentication.");
		goto out;
	}
	err = oidc_client_load(ctx->db, use_id, out);
	if (err != GH_OK && err != GH_ERR_NOTFOUND) {
		respond_err(ctx->req, err);
		goto out;
	}
	method = err == GH_OK ? oidc_client_str(out,
	    "token_endpoint_auth_method") : "";
	if (err != GH_OK || strcmp(out->app.state, "active") != 0 ||
	    strcmp(method, used) != 0 ||
	    (use_secret != NULL && !secret_ok(out, use_secret)) ||
	    (assertion != NULL && !assertion_ok(ctx, out, assertion))) {
		oidc_client_free(out);
		auth_fail(ctx, h != NULL);
		goto out;
	}
	ok = true;
out:
	gh_wipe(secret, sizeof secret);
	return ok;
}

gh_err
routes_oidc_admin(struct gh_http_router *r)
{
	static const struct gh_http_route_def defs[] = {
		{ "GET", "/o/{org}/api/v1/apps/{id}/oidc", h_client_get },
		{ "PUT", "/o/{org}/api/v1/apps/{id}/oidc", h_client_put },
		{ "POST", "/o/{org}/api/v1/apps/{id}/oidc/secret",
		    h_secret_post },
	};
	gh_err err = routes_oidc_keys(r);

	if (err == GH_OK)
		err = gh_http_routes(r, defs, sizeof defs / sizeof defs[0]);
	return err;
}
