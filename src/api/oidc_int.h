/*
 * oidc_int.h: shared by the OpenID Connect provider files of src/api
 * (oidc_keys.c: signing keys, discovery, JWKS; oidc_clients.c: client
 * settings, secrets and client authentication; oidc.c: the protocol
 * endpoints; oidc_logout.c: RP-initiated logout; oidc_grants.c:
 * /me/grants). Not for other capabilities.
 */
#ifndef GH_OIDC_INT_H
#define GH_OIDC_INT_H

#include "api/api_int.h"
#include "access/access.h"
#include "jose/jose.h"

#define OIDC_KID_LEN GH_ID_LEN
#define OIDC_SECRET_BYTES 32
#define OIDC_TOKEN_BYTES 32		/* codes, refresh and opaque tokens */
#define OIDC_TOKEN_TTL_MAX_S 86400	/* longest id or access token */
#define OIDC_CODE_TTL_MS 60000
#define OIDC_URI_MAX 2000
#define OIDC_URIS_MAX 20
#define PARAM_MAX 512			/* state, nonce, scope */
#define TOKEN_STR_LEN 43		/* base64url of OIDC_TOKEN_BYTES */
#define SCOPE_MAX 256
#define OIDC_USER_CODE_LEN 8
#define DEVICE_GRANT "urn:ietf:params:oauth:grant-type:device_code"
#define OIDC_JWKS_MAX 5		/* keys of a private_key_jwt client */
#define OIDC_CLAIM_NAME_MAX 64
#define OIDC_ATTR_CLAIMS_MAX 20	/* attribute claims of a client */

/* An app of kind "oidc" with its client settings. */
struct oidc_client {
	struct gh_access_app app;
	json_t *s;			/* settings (owned), all keys filled */
	bool has_secret;
	uint8_t secret_digest[GH_SHA256_LEN];
};

/* ---- oidc_keys.c ---- */
/* The issuer: {base_url}/o/{org}. */
void oidc_issuer(const struct api_ctx *ctx, char *out, size_t cap);
/* The signing key of alg in force (creating the org's first key of alg,
 * in its own transaction, when there is none). Call outside a
 * transaction. */
gh_err oidc_signer(struct api_ctx *ctx, enum gh_jose_alg alg,
    struct gh_jose_key **key_out, char kid_out[static OIDC_KID_LEN + 1])
    GH_MUST_CHECK;
/* Verifies a token signed by one of the org's published keys: header
 * kid names the key. GH_ERR_DENIED for anything not ours or tampered.
 * The header and claims may be shared with the verified-token cache:
 * read-only. */
gh_err oidc_verify(struct api_ctx *ctx, const char *jws, json_t **header_out,
    json_t **claims_out) GH_MUST_CHECK;
gh_err routes_oidc_keys(struct gh_http_router *r);

/* ---- oidc_clients.c ---- */
/* Loads client id; GH_ERR_NOTFOUND when no such app, not of kind oidc
 * or without client settings. Free with oidc_client_free. */
gh_err oidc_client_load(struct gh_db *db, const char *id,
    struct oidc_client *out) GH_MUST_CHECK;
void oidc_client_free(struct oidc_client *c);
/* True when uri is exactly one of the strings of settings member key. */
bool oidc_client_has(const struct oidc_client *c, const char *key,
    const char *value);
int64_t oidc_client_int(const struct oidc_client *c, const char *key);
const char *oidc_client_str(const struct oidc_client *c, const char *key);
/* Authenticates the client of a token, introspection or revocation
 * request (client_secret_basic, client_secret_post, private_key_jwt, or
 * none for public clients). On failure answers 401 invalid_client (or 400
 * invalid_request) and returns false. */
bool oidc_client_auth(struct api_ctx *ctx, struct oidc_client *out);
/* Pure parsers of untrusted bytes (fuzz/fuzz_oidc_request.c): */
/* Splits an Authorization value "Basic base64(id:secret)" into the client
 * id (exactly GH_ID_LEN characters) and the secret (shorter than
 * secret_cap), each form-decoded (RFC 6749 2.3.1); false for anything
 * else. The caller wipes secret. */
bool oidc_basic_parse(const char *h, char id[static GH_ID_LEN + 1],
    char *secret, size_t secret_cap);
/* An absolute http(s) URI without a fragment, of printable ASCII, at most
 * OIDC_URI_MAX bytes; plain http only for loopback hosts. */
bool oidc_redirect_uri_valid(const char *u);
/* A claim name a client may map an attribute to: 1 to
 * OIDC_CLAIM_NAME_MAX of [A-Za-z0-9_.:/-] starting with a letter, not a
 * registered or standard claim (sub, iss, email, groups...). */
bool oidc_claim_name_valid(const char *name);
/* Uppercases a typed device user code and drops dashes and spaces; false
 * unless exactly OIDC_USER_CODE_LEN letters of its alphabet remain. */
bool oidc_user_code_norm(const char *in,
    char out[static OIDC_USER_CODE_LEN + 1]);

/* {"error", "error_description", "message"} (RFC 6749 5.2). */
void oauth_error(struct gh_http_req *req, unsigned status, const char *code,
    const char *desc);
/* What a token response is made from. */
struct oidc_issue {
	const struct oidc_client *c;
	const char *user_id;		/* NULL: client credentials */
	const char *scope;
	const char *family;
	const char *session_id;
	const char *nonce;
	int64_t auth_time;		/* seconds */
	const char *amr;		/* JSON array text */
	bool refresh;
	struct gh_jose_key *key;
	const char *kid;
};

/* ---- oidc.c: shared with oidc_device.c ---- */
/* True when the space-separated scope holds word. */
bool oidc_scope_has(const char *scope, const char *word);
/* Keeps the known scope words of in, in order, without repeats. */
void oidc_scope_filter(const char *in, char out[static SCOPE_MAX]);
/* A fresh token (base64url of 256 random bits) and its digest. */
/* Begins the token request's transaction and steps sql (its one "?" bound
 * to dg, the SHA-256 of token, TOKEN_STR_LEN chars, also left in dg for
 * the caller's later statements) to the first row: *st_out (the caller
 * frees it) and *row_out. */
gh_err oidc_digest_row(struct api_ctx *ctx, const char *token,
    const char *sql, uint8_t dg[static GH_SHA256_LEN],
    struct gh_stmt **st_out, bool *row_out) GH_MUST_CHECK;
gh_err oidc_token_new(char out[static TOKEN_STR_LEN + 1],
    uint8_t dg[static GH_SHA256_LEN]) GH_MUST_CHECK;
/* Appends s percent-encoded (all but the unreserved characters). */
void oidc_pct_put(struct gh_buf *b, const char *s);
/* A 400-or-so HTML page saying msg. */
void oidc_error_page(struct api_ctx *ctx, unsigned status, const char *msg);
/* Issues the tokens of is into a new response in the caller's
 * transaction, audited as oidc.token.issue. */
gh_err oidc_tokens_issue(struct api_ctx *ctx, const struct oidc_issue *is,
    const char *grant_type, json_t **resp_out) GH_MUST_CHECK;
/* Ends a token request's transaction: commits, then sends resp, or the
 * OAuth error code (400) when code is not NULL (committed too, so that
 * revocations stick). */
void oidc_token_answer(struct api_ctx *ctx, gh_err err, json_t *resp,
    const char *code, const char *desc);
/* Whether user_id (active) is still assigned to client_id. */
gh_err oidc_user_may(struct api_ctx *ctx, const char *user_id,
    const char *client_id, bool *out) GH_MUST_CHECK;

/* ---- oidc_bcl_post.c: back-channel logout delivery ---- */
/* POSTs body (application/x-www-form-urlencoded) to url (libcurl),
 * everything within timeout_s; https verifies the peer. *status_out gets
 * the answer's status. GH_ERR_IO when there was no HTTP answer,
 * GH_ERR_INVALID for a URL it cannot use; the cause goes to errbuf, never
 * the body. */
gh_err oidc_http_post_form(const char *url, const char *body,
    unsigned timeout_s, int *status_out, char *errbuf, size_t errcap)
    GH_MUST_CHECK;

/* ---- oidc_device.c ---- */
/* The device_code grant at the token endpoint (transaction and answer
 * included). */
void oidc_grant_device(struct api_ctx *ctx, const struct oidc_client *c,
    struct oidc_issue *is);
gh_err routes_oidc_device(struct gh_http_router *r);

/* ---- oidc_logout.c: GET /oidc/logout (RP-initiated logout) ---- */
gh_err routes_oidc_logout(struct gh_http_router *r);

/* ---- oidc_grants.c: the user's grants, /me/grants ---- */
gh_err routes_oidc_grants(struct gh_http_router *r);

#endif
