/*
 * oidc_keys.c: the OpenID provider's signing keys per org (oidc_keys),
 * discovery (/.well-known/openid-configuration), the JWKS and key
 * rotation. A new key is published at once and signs only after the
 * configured delay (oidc_key_publish_delay_s), so that relying parties
 * have fetched it first; the keys it replaces stay published until every
 * token they signed has expired.
 *
 * Keys are per algorithm: ES256 by default, RS256 and EdDSA for the
 * clients that ask for them (id_token_signed_response_alg), each made on
 * first use.
 *
 * Untrusted input: tokens presented back to us (oidc_verify: the kid
 * selects one of our own keys, whose algorithm decides). Secrets: the
 * private keys, stored only encrypted through src/kms (AAD org,
 * "oidc_key", "private_pem", kid) and decrypted into secret buffers.
 *
 * The key cache: decrypting and parsing a PEM key costs about 5M
 * instructions, ten times the rest of a token request, so loaded keys
 * (private and public) are kept in memory per (org, kid). The database
 * still decides on every request which kid is in force or published
 * (rotation, retirement, a revoked customer key all take effect on the
 * next request); the cache only maps a kid it names to its key. A kid's
 * key never changes (keys are only inserted), so an entry cannot go
 * stale; it is dropped after KEYCACHE_TTL_MS anyway, which bounds how
 * long an unused private key stays decrypted in memory.
 */
#include "api/oidc_int.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define PEM_MAX 8192
#define CT_MAX (PEM_MAX + GH_KMS_OVERHEAD + 64)
#define KEYCACHE_N 64
#define KEYCACHE_TTL_MS (5 * 60 * 1000)
#define ISS_MAX 400

struct keycache_slot {
	char org_id[GH_ID_LEN + 1];
	char kid[OIDC_KID_LEN + 1];
	bool priv;			/* a private (signing) key */
	int64_t loaded_at;		/* ms; 0: free slot */
	struct gh_jose_key *k;
};

/* A discovery document, a pure function of the issuer (the routes and
 * capabilities are compiled in; keys are in the JWKS, not here). */
struct disc_slot {
	char iss[ISS_MAX];
	char *body;			/* NULL: free slot */
	size_t len;
	uint64_t used;
};

#define SEEN_BITS 12		/* 4096 verified access tokens */

struct oidc_keycache {
	pthread_mutex_t mu;
	struct keycache_slot s[KEYCACHE_N];
	struct disc_slot d[KEYCACHE_N];
	uint64_t tick;
	/* Access tokens whose signature verified (introspection, userinfo
	 * and revocation check the same token many times), with their
	 * parsed header and claims (a few MB at most): the database still
	 * decides each time that the kid may verify, and whether the token
	 * is active. */
	struct gh_jose_seen *seen;
};

gh_err
oidc_keycache_new(struct oidc_keycache **out)
{
	struct oidc_keycache *c;

	*out = NULL;
	c = calloc(1, sizeof *c);
	if (c == NULL)
		return GH_ERR_NOMEM;
	if (gh_jose_seen_new(SEEN_BITS, &c->seen) != GH_OK) {
		free(c);
		return GH_ERR_NOMEM;
	}
	if (pthread_mutex_init(&c->mu, NULL) != 0) {
		gh_jose_seen_free(c->seen);
		free(c);
		return GH_ERR_INTERNAL;
	}
	*out = c;
	return GH_OK;
}

void
oidc_keycache_free(struct oidc_keycache *c)
{
	if (c == NULL)
		return;
	for (int i = 0; i < KEYCACHE_N; i++) {
		gh_jose_key_free(c->s[i].k);
		free(c->d[i].body);
	}
	gh_jose_seen_free(c->seen);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static bool
slot_is(const struct keycache_slot *sl, const char *org_id, const char *kid,
    bool priv)
{
	return sl->loaded_at != 0 && sl->priv == priv &&
	    strcmp(sl->kid, kid) == 0 && strcmp(sl->org_id, org_id) == 0;
}

/* A handle on the cached key of (org, kid) and of alg, or NULL. */
static struct gh_jose_key *
keycache_get(struct gh_app *app, const char *org_id, const char *kid,
    bool priv, enum gh_jose_alg alg)
{
	struct oidc_keycache *c = app->oidc_keys;
	struct gh_jose_key *k = NULL;
	int64_t now = gh_now_ms();

	if (c == NULL)
		return NULL;
	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < KEYCACHE_N; i++) {
		struct keycache_slot *sl = &c->s[i];

		if (!slot_is(sl, org_id, kid, priv))
			continue;
		if (now - sl->loaded_at >= KEYCACHE_TTL_MS ||
		    now < sl->loaded_at || gh_jose_key_alg(sl->k) != alg) {
			gh_jose_key_free(sl->k);
			memset(sl, 0, sizeof *sl);
		} else if (gh_jose_key_dup(sl->k, &k) != GH_OK) {
			k = NULL;
		}
		break;
	}
	pthread_mutex_unlock(&c->mu);
	return k;
}

/* Keeps a handle on k for (org, kid), in place of the oldest entry when
 * full. Best effort: a failure only means the next request loads it. */
static void
keycache_put(struct gh_app *app, const char *org_id, const char *kid,
    bool priv, const struct gh_jose_key *k)
{
	struct oidc_keycache *c = app->oidc_keys;
	struct keycache_slot *sl = NULL;
	struct gh_jose_key *d = NULL;

	if (c == NULL || gh_jose_key_dup(k, &d) != GH_OK)
		return;
	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < KEYCACHE_N; i++) {
		struct keycache_slot *x = &c->s[i];

		if (slot_is(x, org_id, kid, priv)) {
			sl = x;		/* another thread loaded it too */
			break;
		}
		if (sl == NULL || x->loaded_at < sl->loaded_at)
			sl = x;
	}
	gh_jose_key_free(sl->k);
	gh_strlcpy(sl->org_id, org_id, sizeof sl->org_id);
	gh_strlcpy(sl->kid, kid, sizeof sl->kid);
	sl->priv = priv;
	sl->loaded_at = gh_now_ms();
	sl->k = d;
	pthread_mutex_unlock(&c->mu);
}

void
oidc_issuer(const struct api_ctx *ctx, char *out, size_t cap)
{
	snprintf(out, cap, "%s/o/%s", ctx->app->cfg.base_url, ctx->org.slug);
}

static void
key_aad(struct gh_kms_aad *aad, const struct api_ctx *ctx, const char *kid)
{
	aad->org_id = ctx->org.id;
	aad->table = "oidc_key";
	aad->column = "private_pem";
	aad->row_id = kid;
}

/* Makes a key of alg active from activates_at and inserts it, audited
 * as action, in the caller's transaction. */
static gh_err
key_create(struct api_ctx *ctx, enum gh_jose_alg alg, int64_t activates_at,
    const char *action, char kid_out[static OIDC_KID_LEN + 1])
{
	struct gh_jose_key *k = NULL;
	struct gh_kms_aad aad;
	struct gh_buf pem, ct;
	json_t *jwk = NULL, *changes = NULL;
	char *jwk_s = NULL;
	gh_err err;

	gh_buf_init(&pem, PEM_MAX, GH_BUF_SECRET);
	gh_buf_init(&ct, CT_MAX, 0);
	if (ctx->app->kms == NULL) {
		err = GH_ERR_CRYPTO;
		goto out;
	}
	err = gh_id_new(kid_out);
	if (err == GH_OK)
		err = gh_jose_key_generate(alg, &k);
	if (err == GH_OK)
		err = gh_jose_key_private_pem(k, &pem);
	if (err != GH_OK)
		goto out;
	key_aad(&aad, ctx, kid_out);
	err = gh_kms_encrypt(ctx->app->kms, GH_KMS_SECRETS, &aad, pem.data,
	    pem.len, &ct);
	if (err != GH_OK) {
		GH_LOG_ERR(err, "org %s: signing key not encrypted",
		    ctx->org.id);
		goto out;
	}
	jwk = gh_jose_key_public_jwk(k, kid_out);
	jwk_s = jwk ? json_dumps(jwk, JSON_COMPACT) : NULL;
	if (jwk_s == NULL) {
		err = GH_ERR_NOMEM;
		goto out;
	}
	err = gh_db_run(ctx->db, "INSERT INTO oidc_keys (kid, alg, "
	    "public_jwk, private_ct, created_at, activates_at) VALUES "
	    "(?, ?, ?, ?, ?, ?)", "tttbii", kid_out, gh_jose_alg_name(alg),
	    jwk_s, ct.data, ct.len, gh_now_ms(), activates_at);
	if (err == GH_OK) {
		changes = json_pack("{s:s, s:I}", "alg", gh_jose_alg_name(alg),
		    "activates_at", (json_int_t)activates_at);
		err = gh_audit_append(ctx->db, &ctx->actor, action, "oidc_key",
		    kid_out, changes);
	}
out:
	json_decref(changes);
	json_decref(jwk);
	free(jwk_s);
	gh_jose_key_free(k);
	gh_buf_free(&pem);
	gh_buf_free(&ct);
	return err;
}

/* Loads the key of alg in force into *key_out; GH_ERR_NOTFOUND when
 * none. */
static gh_err
signer_load(struct api_ctx *ctx, enum gh_jose_alg want,
    struct gh_jose_key **key_out, char kid_out[static OIDC_KID_LEN + 1])
{
	struct gh_stmt *st = NULL;
	struct gh_kms_aad aad;
	enum gh_jose_alg alg;
	struct gh_buf pem;
	const void *ct;
	size_t ct_len = 0;
	int64_t now = gh_now_ms();
	gh_err err;
	bool row;

	gh_buf_init(&pem, PEM_MAX, GH_BUF_SECRET);
	err = gh_db_prepare(ctx->db, "SELECT kid, alg, private_ct FROM "
	    "oidc_keys WHERE alg = ? AND activates_at <= ? AND (retires_at "
	    "IS NULL OR retires_at > ?) ORDER BY activates_at DESC, "
	    "created_at DESC LIMIT 1", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "tii", gh_jose_alg_name(want), now, now);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && !row)
		err = GH_ERR_NOTFOUND;
	if (err != GH_OK)
		goto out;
	gh_strlcpy(kid_out, gh_stmt_text(st, 0), OIDC_KID_LEN + 1);
	err = gh_jose_alg_parse(gh_stmt_text(st, 1), &alg);
	if (err == GH_OK && (*key_out = keycache_get(ctx->app, ctx->org.id,
	    kid_out, true, alg)) != NULL)
		goto out;
	ct = gh_stmt_blob(st, 2, &ct_len);
	if (err == GH_OK && ctx->app->kms == NULL)
		err = GH_ERR_CRYPTO;
	if (err == GH_OK) {
		key_aad(&aad, ctx, kid_out);
		err = gh_kms_decrypt(ctx->app->kms, GH_KMS_SECRETS, &aad, ct,
		    ct_len, &pem);
	}
	if (err == GH_OK)
		err = gh_jose_key_from_pem(alg, pem.data, pem.len, key_out);
	if (err == GH_OK)
		keycache_put(ctx->app, ctx->org.id, kid_out, true, *key_out);
	if (err != GH_OK)
		GH_LOG_ERR(err, "org %s: signing key %s unusable", ctx->org.id,
		    kid_out);
out:
	gh_stmt_free(st);
	gh_buf_free(&pem);
	return err;
}

gh_err
oidc_signer(struct api_ctx *ctx, enum gh_jose_alg alg,
    struct gh_jose_key **key_out, char kid_out[static OIDC_KID_LEN + 1])
{
	gh_err err;

	*key_out = NULL;
	err = signer_load(ctx, alg, key_out, kid_out);
	if (err != GH_ERR_NOTFOUND)
		return err;
	/* The org's first key of alg, in force at once. */
	if (ctx->actor.type == NULL)
		ctx->actor.type = "system";
	err = gh_db_begin(ctx->db);
	if (err != GH_OK)
		return err;
	err = key_create(ctx, alg, gh_now_ms(), "oidc.key.create", kid_out);
	if (err == GH_OK)
		err = gh_db_commit(ctx->db);
	if (err != GH_OK) {
		gh_db_rollback(ctx->db);
		return err;
	}
	return signer_load(ctx, alg, key_out, kid_out);
}

/* The key of a presented token, found by oidc_verify's key_fn. */
struct verify_key {
	struct api_ctx *ctx;
	struct gh_jose_key *k;
	gh_err db_err;			/* the store failed, not the token */
};

/* The published, unretired key the header's kid names (the database
 * decides on every call), bound to (org, kid). */
static gh_err
verify_key_fn(void *arg, json_t *hdr, const struct gh_jose_key **key_out,
    char binding[static GH_JOSE_BINDING_MAX])
{
	struct verify_key *vk = arg;
	struct api_ctx *ctx = vk->ctx;
	const char *kid = json_string_value(json_object_get(hdr, "kid"));
	struct gh_stmt *st = NULL;
	enum gh_jose_alg alg;
	json_t *jwk = NULL;
	gh_err err;
	bool row = false;

	if (kid == NULL || !gh_id_valid(kid))
		return GH_ERR_DENIED;
	err = gh_db_prepare(ctx->db, "SELECT alg, public_jwk FROM oidc_keys "
	    "WHERE kid = ? AND (retires_at IS NULL OR retires_at > ?)", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "ti", kid, gh_now_ms());
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err != GH_OK) {
		vk->db_err = err;
		goto out;
	}
	if (!row || gh_jose_alg_parse(gh_stmt_text(st, 0), &alg) != GH_OK) {
		err = GH_ERR_DENIED;
		goto out;
	}
	vk->k = keycache_get(ctx->app, ctx->org.id, kid, false, alg);
	if (vk->k == NULL) {
		if ((jwk = json_loads(gh_stmt_text(st, 1), 0, NULL)) == NULL ||
		    gh_jose_key_from_jwk(alg, jwk, &vk->k) != GH_OK) {
			err = GH_ERR_DENIED;
			goto out;
		}
		keycache_put(ctx->app, ctx->org.id, kid, false, vk->k);
	}
	*key_out = vk->k;
	/* A kid names one key for good: (org, kid) binds the signatures
	 * seen verified to it. */
	snprintf(binding, GH_JOSE_BINDING_MAX, "%s/%s", ctx->org.id, kid);
out:
	gh_stmt_free(st);
	json_decref(jwk);
	return err;
}

gh_err
oidc_verify(struct api_ctx *ctx, const char *jws, json_t **header_out,
    json_t **claims_out)
{
	struct verify_key vk = { ctx, NULL, GH_OK };
	gh_err err;

	err = gh_jose_verify_by(ctx->app->oidc_keys != NULL ?
	    ctx->app->oidc_keys->seen : NULL, jws, strlen(jws), verify_key_fn,
	    &vk, header_out, claims_out);
	gh_jose_key_free(vk.k);
	if (err != GH_OK)
		err = vk.db_err != GH_OK ? vk.db_err : GH_ERR_DENIED;
	return err;
}

/* ---- routes -------------------------------------------------------------- */

static json_t *
strs(const char *const *v)
{
	json_t *a = json_array();

	for (; *v != NULL; v++)
		json_array_append_new(a, json_string(*v));
	return a;
}

/* A malloc'd copy of the cached discovery document of iss, or NULL. */
static char *
disc_get(struct oidc_keycache *c, const char *iss, size_t *len_out)
{
	char *copy = NULL;

	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < KEYCACHE_N; i++) {
		struct disc_slot *sl = &c->d[i];

		if (sl->body == NULL || strcmp(sl->iss, iss) != 0)
			continue;
		copy = malloc(sl->len + 1);
		if (copy != NULL) {
			memcpy(copy, sl->body, sl->len + 1);
			*len_out = sl->len;
			sl->used = ++c->tick;
		}
		break;
	}
	pthread_mutex_unlock(&c->mu);
	return copy;
}

/* Keeps a copy of body for iss, in place of the least recently used
 * document when full. Best effort. */
static void
disc_put(struct oidc_keycache *c, const char *iss, const char *body,
    size_t len)
{
	struct disc_slot *sl = NULL;
	char *copy = malloc(len + 1);

	if (copy == NULL || strlen(iss) >= ISS_MAX) {
		free(copy);
		return;
	}
	memcpy(copy, body, len + 1);
	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < KEYCACHE_N; i++) {
		struct disc_slot *x = &c->d[i];

		if (x->body != NULL && strcmp(x->iss, iss) == 0) {
			sl = x;
			break;
		}
		if (sl == NULL || x->used < sl->used)
			sl = x;
	}
	free(sl->body);
	gh_strlcpy(sl->iss, iss, sizeof sl->iss);
	sl->body = copy;
	sl->len = len;
	sl->used = ++c->tick;
	pthread_mutex_unlock(&c->mu);
}

static json_t *
discovery_build(const char *iss)
{
	static const char *const responses[] = { "code", NULL };
	static const char *const grants[] = { "authorization_code",
	    "refresh_token", "client_credentials", DEVICE_GRANT, NULL };
	static const char *const auth[] = { "client_secret_basic",
	    "client_secret_post", "private_key_jwt", "none", NULL };
	static const char *const conf_auth[] = { "client_secret_basic",
	    "client_secret_post", "private_key_jwt", NULL };
	static const char *const assertion_algs[] = { "ES256", "RS256",
	    "EdDSA", NULL };
	static const char *const scopes[] = { "openid", "profile", "email",
	    "groups", "offline_access", NULL };
	static const char *const claims[] = { "iss", "sub", "aud", "exp",
	    "iat", "auth_time", "nonce", "acr", "amr", "azp", "name",
	    "preferred_username", "email", "groups", "roles", "sid", NULL };
	static const char *const algs[] = { "ES256", "RS256", "EdDSA",
	    NULL };
	static const char *const pkce[] = { "S256", NULL };
	static const char *const subjects[] = { "public", NULL };
	static const char *const modes[] = { "query", NULL };
	static const char *const prompts[] = { "none", "login", "consent",
	    NULL };
	static const char *const acrs[] = { "pwd", "mfa", NULL };
	char u[ISS_MAX + 80];
	json_t *d;

	d = json_pack("{s:s}", "issuer", iss);
	if (d == NULL)
		return NULL;
#define EP(name, path) \
	snprintf(u, sizeof u, "%s%s", iss, path); \
	json_object_set_new(d, name, json_string(u))
	EP("authorization_endpoint", "/oidc/authorize");
	EP("token_endpoint", "/oidc/token");
	EP("userinfo_endpoint", "/oidc/userinfo");
	EP("jwks_uri", "/oidc/jwks");
	EP("introspection_endpoint", "/oidc/introspect");
	EP("revocation_endpoint", "/oidc/revoke");
	EP("end_session_endpoint", "/oidc/logout");
	EP("device_authorization_endpoint", "/oidc/device_authorization");
#undef EP
	json_object_set_new(d, "response_types_supported", strs(responses));
	json_object_set_new(d, "response_modes_supported", strs(modes));
	json_object_set_new(d, "grant_types_supported", strs(grants));
	json_object_set_new(d, "subject_types_supported", strs(subjects));
	json_object_set_new(d, "id_token_signing_alg_values_supported",
	    strs(algs));
	json_object_set_new(d, "token_endpoint_auth_methods_supported",
	    strs(auth));
	json_object_set_new(d,
	    "introspection_endpoint_auth_methods_supported", strs(conf_auth));
	json_object_set_new(d,
	    "token_endpoint_auth_signing_alg_values_supported",
	    strs(assertion_algs));
	json_object_set_new(d, "revocation_endpoint_auth_methods_supported",
	    strs(auth));
	json_object_set_new(d, "scopes_supported", strs(scopes));
	json_object_set_new(d, "claims_supported", strs(claims));
	json_object_set_new(d, "code_challenge_methods_supported",
	    strs(pkce));
	json_object_set_new(d, "prompt_values_supported", strs(prompts));
	json_object_set_new(d, "acr_values_supported", strs(acrs));
	json_object_set_new(d, "request_parameter_supported", json_false());
	json_object_set_new(d, "request_uri_parameter_supported",
	    json_false());
	json_object_set_new(d, "claims_parameter_supported", json_false());
	json_object_set_new(d, "backchannel_logout_supported", json_true());
	json_object_set_new(d, "backchannel_logout_session_supported",
	    json_true());
	return d;
}

/* The document is the same for every request to an org (a function of
 * the issuer only), so it is serialised once and served from memory. */
static void
h_discovery(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	char iss[ISS_MAX];
	char *body;
	size_t len = 0;
	json_t *d;

	if (!ctx_open(app, req, &ctx))
		return;
	oidc_issuer(&ctx, iss, sizeof iss);
	body = disc_get(ctx.app->oidc_keys, iss, &len);
	if (body == NULL) {
		d = discovery_build(iss);
		body = d != NULL ? json_dumps(d, JSON_COMPACT) : NULL;
		json_decref(d);
		if (body == NULL) {
			respond_err(req, GH_ERR_NOMEM);
			goto out;
		}
		len = strlen(body);
		disc_put(ctx.app->oidc_keys, iss, body, len);
	}
	gh_http_respond(req, 200, "application/json", body, len);
out:
	free(body);
	ctx_close(&ctx);
}

static void
h_jwks(void *app, struct gh_http_req *req)
{
	struct gh_jose_key *k = NULL;
	struct gh_stmt *st = NULL;
	char kid[OIDC_KID_LEN + 1];
	struct api_ctx ctx;
	json_t *keys = NULL, *jwk;
	int64_t now = gh_now_ms();
	gh_err err;
	bool row;

	if (!ctx_open(app, req, &ctx))
		return;
	/* Makes the first key, so that the set is never empty. */
	err = oidc_signer(&ctx, GH_JOSE_ES256, &k, kid);
	gh_jose_key_free(k);
	if (err == GH_OK)
		err = gh_db_prepare(ctx.db, "SELECT public_jwk FROM oidc_keys "
		    "WHERE retires_at IS NULL OR retires_at > ? ORDER BY "
		    "activates_at DESC", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "i", now);
	keys = json_array();
	while (err == GH_OK && (err = gh_stmt_step(st, &row)) == GH_OK &&
	    row) {
		jwk = json_loads(gh_stmt_text(st, 0), 0, NULL);
		if (jwk == NULL)
			err = GH_ERR_STORE;
		else
			json_array_append_new(keys, jwk);
	}
	gh_stmt_free(st);
	if (err != GH_OK) {
		json_decref(keys);
		respond_err(req, err);
	} else {
		gh_http_respond_json(req, 200, json_pack("{s:o}", "keys",
		    keys));
	}
	ctx_close(&ctx);
}

/* The algorithms with a key not yet retired, ES256 always among them. */
static gh_err
algs_in_use(struct api_ctx *ctx, bool used[static 4])
{
	struct gh_stmt *st = NULL;
	enum gh_jose_alg alg;
	gh_err err;
	bool row;

	used[GH_JOSE_ES256] = true;
	err = gh_db_prepare(ctx->db, "SELECT DISTINCT alg FROM oidc_keys "
	    "WHERE retires_at IS NULL", &st);
	while (err == GH_OK && (err = gh_stmt_step(st, &row)) == GH_OK && row)
		if (gh_jose_alg_parse(gh_stmt_text(st, 0), &alg) == GH_OK)
			used[alg] = true;
	gh_stmt_free(st);
	return err;
}

static void
h_keys_rotate(void *app, struct gh_http_req *req)
{
	char kid[OIDC_KID_LEN + 1], at[25];
	struct gh_jose_key *k = NULL;
	bool used[4] = { false };
	struct api_ctx ctx;
	int64_t activates, retires;
	json_t *keys = NULL;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "org.write"))
		return;
	if (!ctx_may_org(&ctx, "org.write"))
		goto out;
	/* The first key must exist to be replaced. */
	err = oidc_signer(&ctx, GH_JOSE_ES256, &k, kid);
	gh_jose_key_free(k);
	if (err == GH_OK)
		err = algs_in_use(&ctx, used);
	if (err != GH_OK) {
		respond_err(req, err);
		goto out;
	}
	activates = gh_now_ms() + ctx.app->cfg.oidc_key_delay_ms;
	retires = activates + (int64_t)OIDC_TOKEN_TTL_MAX_S * 1000;
	gh_time_rfc3339(activates, at);
	keys = json_array();
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_db_run(ctx.db, "UPDATE oidc_keys SET retires_at = ? "
		    "WHERE retires_at IS NULL", "i", retires);
	for (enum gh_jose_alg a = GH_JOSE_ES256; a <= GH_JOSE_EDDSA; a++) {
		if (err != GH_OK || !used[a])
			continue;
		err = key_create(&ctx, a, activates, "oidc.key.rotate", kid);
		json_array_append_new(keys, json_pack("{s:s, s:s, s:s}", "kid",
		    kid, "alg", gh_jose_alg_name(a), "activates_at", at));
	}
	if (finish(&ctx, err)) {
		gh_http_respond_json(req, 201, json_pack("{s:O}", "keys",
		    keys));
	}
out:
	json_decref(keys);
	ctx_close(&ctx);
}

gh_err
routes_oidc_keys(struct gh_http_router *r)
{
	static const struct gh_http_route_def defs[] = {
		{ "GET", "/o/{org}/.well-known/openid-configuration",
		    h_discovery },
		{ "GET", "/o/{org}/oidc/jwks", h_jwks },
		{ "POST", "/o/{org}/api/v1/oidc/keys/rotate", h_keys_rotate },
	};

	return gh_http_routes(r, defs, sizeof defs / sizeof defs[0]);
}
