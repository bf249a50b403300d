/*
 * jose.c: compact JWS sign and verify, JWK export and import (jose.h).
 *
 * Untrusted input: compact JWS strings and JWK objects; every length is
 * bounded before decoding, the header is parsed strictly (known alg equal
 * to the key's, no crit) and the signature is checked with the key's own
 * algorithm only, so a token cannot choose how it is verified. Secrets:
 * private keys inside EVP_PKEY and their PEM (GH_BUF_SECRET).
 */
#include "jose/jose.h"

#include <pthread.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/crypto.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#define HEADER_MAX 1024		/* decoded protected header */
#define SIG_MAX 1024		/* decoded signature (RSA up to 8192 bits) */
#define RSA_MIN_BITS 2048
#define ES256_HALF 32

/* Contexts set up once per key and shared by its handles (refcounted):
 * each signature or verification works on a duplicate, so OpenSSL's
 * per-call algorithm fetch and key export (a tenth of an ES256
 * signature) happen once per key. Never used directly, only duplicated
 * (EVP_PKEY_CTX_dup reads its source). NULL: set up per call. */
struct key_ctxs {
	int refs;			/* atomic */
	EVP_PKEY_CTX *sign;		/* ES256, RS256 private keys */
	EVP_PKEY_CTX *verify;		/* ES256, RS256 */
};

struct gh_jose_key {
	enum gh_jose_alg alg;
	EVP_PKEY *pk;
	struct key_ctxs *cx;
};

const char *
gh_jose_alg_name(enum gh_jose_alg alg)
{
	switch (alg) {
	case GH_JOSE_ES256:
		return "ES256";
	case GH_JOSE_RS256:
		return "RS256";
	case GH_JOSE_EDDSA:
		return "EdDSA";
	}
	return "?";
}

gh_err
gh_jose_alg_parse(const char *name, enum gh_jose_alg *out)
{
	if (name == NULL)
		return GH_ERR_INVALID;
	if (strcmp(name, "ES256") == 0)
		*out = GH_JOSE_ES256;
	else if (strcmp(name, "RS256") == 0)
		*out = GH_JOSE_RS256;
	else if (strcmp(name, "EdDSA") == 0)
		*out = GH_JOSE_EDDSA;
	else
		return GH_ERR_INVALID;
	return GH_OK;
}

/* True when pk is a key of the type alg needs. */
static bool
pkey_fits(enum gh_jose_alg alg, EVP_PKEY *pk)
{
	char group[32];
	size_t glen = 0;

	switch (alg) {
	case GH_JOSE_ES256:
		if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC)
			return false;
		if (EVP_PKEY_get_group_name(pk, group, sizeof group,
		    &glen) != 1)
			return false;
		return strcmp(group, "prime256v1") == 0 ||
		    strcmp(group, "P-256") == 0;
	case GH_JOSE_RS256:
		return EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA &&
		    EVP_PKEY_get_bits(pk) >= RSA_MIN_BITS;
	case GH_JOSE_EDDSA:
		return EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519;
	}
	return false;
}

static void
ctxs_free(struct key_ctxs *cx)
{
	if (cx == NULL || __atomic_sub_fetch(&cx->refs, 1,
	    __ATOMIC_ACQ_REL) != 0)
		return;
	EVP_PKEY_CTX_free(cx->sign);
	EVP_PKEY_CTX_free(cx->verify);
	free(cx);
}

/* A context of pk for a signature over a SHA-256 digest (alg ES256 or
 * RS256) set up by init (EVP_PKEY_sign_init or EVP_PKEY_verify_init), or
 * NULL. */
static EVP_PKEY_CTX *
digest_ctx(enum gh_jose_alg alg, EVP_PKEY *pk,
    int (*init)(EVP_PKEY_CTX *))
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);

	if (c == NULL)
		return NULL;
	if (init(c) != 1 || (alg == GH_JOSE_RS256 &&
	    (EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) != 1))) {
		EVP_PKEY_CTX_free(c);
		ERR_clear_error();
		return NULL;
	}
	return c;
}

/* The shared contexts of a new key (priv: it has its private part); NULL
 * (everything set up per call) for EdDSA or when OpenSSL refuses. */
static struct key_ctxs *
ctxs_new(enum gh_jose_alg alg, EVP_PKEY *pk, bool priv)
{
	struct key_ctxs *cx;

	if (alg == GH_JOSE_EDDSA || (cx = calloc(1, sizeof *cx)) == NULL)
		return NULL;
	cx->refs = 1;
	cx->verify = digest_ctx(alg, pk, EVP_PKEY_verify_init);
	if (priv)
		cx->sign = digest_ctx(alg, pk, EVP_PKEY_sign_init);
	return cx;
}

static gh_err
key_wrap(enum gh_jose_alg alg, EVP_PKEY *pk, bool priv,
    struct gh_jose_key **out)
{
	struct gh_jose_key *k;

	if (!pkey_fits(alg, pk)) {
		EVP_PKEY_free(pk);
		return GH_ERR_INVALID;
	}
	k = calloc(1, sizeof *k);
	if (k == NULL) {
		EVP_PKEY_free(pk);
		return GH_ERR_NOMEM;
	}
	k->alg = alg;
	k->pk = pk;
	k->cx = ctxs_new(alg, pk, priv);
	*out = k;
	return GH_OK;
}

gh_err
gh_jose_key_generate(enum gh_jose_alg alg, struct gh_jose_key **out)
{
	EVP_PKEY *pk = NULL;

	*out = NULL;
	switch (alg) {
	case GH_JOSE_ES256:
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	case GH_JOSE_RS256:
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)RSA_MIN_BITS);
		break;
	case GH_JOSE_EDDSA:
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	}
	if (pk == NULL)
		return GH_ERR_CRYPTO;
	return key_wrap(alg, pk, true, out);
}

gh_err
gh_jose_key_private_pem(const struct gh_jose_key *k, struct gh_buf *out)
{
	BIO *bio = BIO_new(BIO_s_secmem());
	char *p = NULL;
	long n;
	gh_err err = GH_ERR_CRYPTO;

	if (bio == NULL)
		return GH_ERR_NOMEM;
	if (PEM_write_bio_PrivateKey(bio, k->pk, NULL, NULL, 0, NULL,
	    NULL) != 1)
		goto out;
	n = BIO_get_mem_data(bio, &p);
	if (n <= 0)
		goto out;
	gh_buf_put(out, p, (size_t)n);
	err = gh_buf_err(out);
out:
	BIO_free(bio);	/* secure memory BIO: cleansed on free */
	return err;
}

gh_err
gh_jose_key_from_pem(enum gh_jose_alg alg, const void *pem, size_t pem_len,
    struct gh_jose_key **out)
{
	EVP_PKEY *pk;
	BIO *bio;

	*out = NULL;
	if (pem_len > INT32_MAX)
		return GH_ERR_INVALID;
	bio = BIO_new_mem_buf(pem, (int)pem_len);
	if (bio == NULL)
		return GH_ERR_NOMEM;
	pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pk == NULL)
		return GH_ERR_INVALID;
	return key_wrap(alg, pk, true, out);
}

/* Decodes the base64url member name of jwk into buf (at most cap). */
static gh_err
jwk_bytes(json_t *jwk, const char *name, uint8_t *buf, size_t cap,
    size_t *len_out)
{
	const char *s = json_string_value(json_object_get(jwk, name));

	if (s == NULL || strlen(s) > (cap * 4 + 2) / 3 + 1)
		return GH_ERR_INVALID;
	return gh_b64url_decode(s, strlen(s), buf, cap, len_out);
}

static bool
jwk_member_is(json_t *jwk, const char *name, const char *want)
{
	const char *s = json_string_value(json_object_get(jwk, name));

	return s != NULL && strcmp(s, want) == 0;
}

static EVP_PKEY *
pkey_fromdata(const char *type, OSSL_PARAM *params)
{
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pk = NULL;

	if (pctx == NULL)
		return NULL;
	if (EVP_PKEY_fromdata_init(pctx) != 1 ||
	    EVP_PKEY_fromdata(pctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pk = NULL;
	EVP_PKEY_CTX_free(pctx);
	return pk;
}

static EVP_PKEY *
jwk_ec(json_t *jwk)
{
	uint8_t pt[1 + 2 * ES256_HALF];
	size_t xl = 0, yl = 0;
	OSSL_PARAM params[3];
	char group[] = "prime256v1";

	if (!jwk_member_is(jwk, "kty", "EC") ||
	    !jwk_member_is(jwk, "crv", "P-256"))
		return NULL;
	if (jwk_bytes(jwk, "x", pt + 1, ES256_HALF, &xl) != GH_OK ||
	    jwk_bytes(jwk, "y", pt + 1 + ES256_HALF, ES256_HALF, &yl) !=
	    GH_OK || xl != ES256_HALF || yl != ES256_HALF)
		return NULL;
	pt[0] = 0x04;
	params[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(
	    OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt);
	params[2] = OSSL_PARAM_construct_end();
	return pkey_fromdata("EC", params);
}

static EVP_PKEY *
jwk_rsa(json_t *jwk)
{
	uint8_t n[1024], e[8];
	size_t nl = 0, el = 0;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	BIGNUM *bn = NULL, *be = NULL;
	EVP_PKEY *pk = NULL;

	if (!jwk_member_is(jwk, "kty", "RSA") ||
	    jwk_bytes(jwk, "n", n, sizeof n, &nl) != GH_OK ||
	    jwk_bytes(jwk, "e", e, sizeof e, &el) != GH_OK || nl == 0 ||
	    el == 0)
		return NULL;
	bn = BN_bin2bn(n, (int)nl, NULL);
	be = BN_bin2bn(e, (int)el, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (bn == NULL || be == NULL || bld == NULL ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) != 1)
		goto out;
	params = OSSL_PARAM_BLD_to_param(bld);
	if (params != NULL)
		pk = pkey_fromdata("RSA", params);
out:
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return pk;
}

static EVP_PKEY *
jwk_okp(json_t *jwk)
{
	uint8_t x[32];
	size_t xl = 0;

	if (!jwk_member_is(jwk, "kty", "OKP") ||
	    !jwk_member_is(jwk, "crv", "Ed25519") ||
	    jwk_bytes(jwk, "x", x, sizeof x, &xl) != GH_OK || xl != sizeof x)
		return NULL;
	return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xl);
}

gh_err
gh_jose_key_from_jwk(enum gh_jose_alg alg, json_t *jwk,
    struct gh_jose_key **out)
{
	EVP_PKEY *pk = NULL;

	*out = NULL;
	if (!json_is_object(jwk))
		return GH_ERR_INVALID;
	switch (alg) {
	case GH_JOSE_ES256:
		pk = jwk_ec(jwk);
		break;
	case GH_JOSE_RS256:
		pk = jwk_rsa(jwk);
		break;
	case GH_JOSE_EDDSA:
		pk = jwk_okp(jwk);
		break;
	}
	if (pk == NULL)
		return GH_ERR_INVALID;
	return key_wrap(alg, pk, false, out);
}

enum gh_jose_alg
gh_jose_key_alg(const struct gh_jose_key *k)
{
	return k->alg;
}

/* Sets member name of o to the base64url of p[0..n). */
static int
set_b64(json_t *o, const char *name, const uint8_t *p, size_t n)
{
	char *s = malloc(gh_b64url_len(n) + 1);
	int rc;

	if (s == NULL)
		return -1;
	gh_b64url_encode(p, n, s);
	rc = json_object_set_new(o, name, json_string(s));
	free(s);
	return rc;
}

static int
set_bn(json_t *o, const char *name, EVP_PKEY *pk, const char *param)
{
	uint8_t buf[1024];
	BIGNUM *bn = NULL;
	int n, rc = -1;

	if (EVP_PKEY_get_bn_param(pk, param, &bn) != 1)
		return -1;
	n = BN_num_bytes(bn);
	if (n > 0 && (size_t)n <= sizeof buf && BN_bn2bin(bn, buf) == n)
		rc = set_b64(o, name, buf, (size_t)n);
	BN_free(bn);
	return rc;
}

json_t *
gh_jose_key_public_jwk(const struct gh_jose_key *k, const char *kid)
{
	uint8_t pt[1 + 2 * ES256_HALF], raw[32];
	size_t len = 0;
	json_t *o = json_pack("{s:s, s:s, s:s}", "kid", kid, "alg",
	    gh_jose_alg_name(k->alg), "use", "sig");
	int rc = -1;

	if (o == NULL)
		return NULL;
	switch (k->alg) {
	case GH_JOSE_ES256:
		if (EVP_PKEY_get_octet_string_param(k->pk,
		    OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt, &len) != 1 ||
		    len != sizeof pt || pt[0] != 0x04)
			break;
		rc = json_object_set_new(o, "kty", json_string("EC"));
		rc |= json_object_set_new(o, "crv", json_string("P-256"));
		rc |= set_b64(o, "x", pt + 1, ES256_HALF);
		rc |= set_b64(o, "y", pt + 1 + ES256_HALF, ES256_HALF);
		break;
	case GH_JOSE_RS256:
		rc = json_object_set_new(o, "kty", json_string("RSA"));
		rc |= set_bn(o, "n", k->pk, OSSL_PKEY_PARAM_RSA_N);
		rc |= set_bn(o, "e", k->pk, OSSL_PKEY_PARAM_RSA_E);
		break;
	case GH_JOSE_EDDSA:
		len = sizeof raw;
		if (EVP_PKEY_get_raw_public_key(k->pk, raw, &len) != 1 ||
		    len != sizeof raw)
			break;
		rc = json_object_set_new(o, "kty", json_string("OKP"));
		rc |= json_object_set_new(o, "crv", json_string("Ed25519"));
		rc |= set_b64(o, "x", raw, sizeof raw);
		break;
	}
	if (rc != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

gh_err
gh_jose_key_dup(const struct gh_jose_key *k, struct gh_jose_key **out)
{
	struct gh_jose_key *d;

	*out = NULL;
	d = calloc(1, sizeof *d);
	if (d == NULL)
		return GH_ERR_NOMEM;
	if (EVP_PKEY_up_ref(k->pk) != 1) {
		free(d);
		return GH_ERR_CRYPTO;
	}
	d->alg = k->alg;
	d->pk = k->pk;
	d->cx = k->cx;
	if (d->cx != NULL)
		__atomic_add_fetch(&d->cx->refs, 1, __ATOMIC_RELAXED);
	*out = d;
	return GH_OK;
}

void
gh_jose_key_free(struct gh_jose_key *k)
{
	if (k == NULL)
		return;
	ctxs_free(k->cx);
	EVP_PKEY_free(k->pk);	/* OpenSSL cleanses private key material */
	free(k);
}

/* ---- signatures ---------------------------------------------------------- */

/* Converts a DER ECDSA signature to raw r||s. */
static gh_err
ecdsa_der_to_raw(const uint8_t *der, size_t der_len,
    uint8_t raw[static 2 * ES256_HALF])
{
	const unsigned char *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	const BIGNUM *r, *s;
	gh_err err = GH_ERR_CRYPTO;

	if (sig == NULL)
		return GH_ERR_CRYPTO;
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_bn2binpad(r, raw, ES256_HALF) == ES256_HALF &&
	    BN_bn2binpad(s, raw + ES256_HALF, ES256_HALF) == ES256_HALF)
		err = GH_OK;
	ECDSA_SIG_free(sig);
	return err;
}

/* Converts raw r||s to DER; *der_out malloc'd by OpenSSL. */
static gh_err
ecdsa_raw_to_der(const uint8_t *raw, unsigned char **der_out, size_t *len)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(raw, ES256_HALF, NULL);
	BIGNUM *s = BN_bin2bn(raw + ES256_HALF, ES256_HALF, NULL);
	int n;

	*der_out = NULL;
	if (sig == NULL || r == NULL || s == NULL ||
	    ECDSA_SIG_set0(sig, r, s) != 1) {
		ECDSA_SIG_free(sig);
		BN_free(r);
		BN_free(s);
		return GH_ERR_NOMEM;
	}
	n = i2d_ECDSA_SIG(sig, der_out);
	ECDSA_SIG_free(sig);
	if (n <= 0)
		return GH_ERR_CRYPTO;
	*len = (size_t)n;
	return GH_OK;
}

static const EVP_MD *
alg_md(enum gh_jose_alg alg)
{
	return alg == GH_JOSE_EDDSA ? NULL : EVP_sha256();
}

/* Signs the SHA-256 of input[0..len) with a duplicate of tmpl. */
static bool
digest_sign(const EVP_PKEY_CTX *tmpl, const char *input, size_t len,
    uint8_t *sig, size_t *sig_len)
{
	uint8_t dg[GH_SHA256_LEN];
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_dup(tmpl);
	bool ok;

	if (c == NULL)
		return false;
	gh_sha256(input, len, dg);
	ok = EVP_PKEY_sign(c, sig, sig_len, dg, sizeof dg) == 1;
	EVP_PKEY_CTX_free(c);
	return ok;
}

/* Verifies sig over the SHA-256 of input[0..len) with a duplicate of
 * tmpl. */
static bool
digest_verify(const EVP_PKEY_CTX *tmpl, const char *input, size_t len,
    const uint8_t *sig, size_t sig_len)
{
	uint8_t dg[GH_SHA256_LEN];
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_dup(tmpl);
	bool ok;

	if (c == NULL)
		return false;
	gh_sha256(input, len, dg);
	ok = EVP_PKEY_verify(c, sig, sig_len, dg, sizeof dg) == 1;
	EVP_PKEY_CTX_free(c);
	return ok;
}

static gh_err
sign_raw(const struct gh_jose_key *k, const char *input, size_t len,
    struct gh_buf *sig_out)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t sig[SIG_MAX], raw[2 * ES256_HALF];
	size_t sig_len = sizeof sig;
	gh_err err = GH_ERR_CRYPTO;

	if (md == NULL)
		return GH_ERR_NOMEM;
	if (k->cx != NULL && k->cx->sign != NULL) {
		if (!digest_sign(k->cx->sign, input, len, sig, &sig_len))
			goto out;
	} else if (EVP_DigestSignInit(md, NULL, alg_md(k->alg), NULL,
	    k->pk) != 1 || EVP_DigestSign(md, sig, &sig_len,
	    (const uint8_t *)input, len) != 1) {
		goto out;
	}
	if (k->alg == GH_JOSE_ES256) {
		err = ecdsa_der_to_raw(sig, sig_len, raw);
		if (err == GH_OK)
			gh_buf_put(sig_out, raw, sizeof raw);
	} else {
		gh_buf_put(sig_out, sig, sig_len);
		err = GH_OK;
	}
	if (err == GH_OK)
		err = gh_buf_err(sig_out);
out:
	EVP_MD_CTX_free(md);
	return err;
}

static gh_err
put_b64(struct gh_buf *b, const void *p, size_t n)
{
	char *s = malloc(gh_b64url_len(n) + 1);

	if (s == NULL)
		return GH_ERR_NOMEM;
	gh_b64url_encode(p, n, s);
	gh_buf_put_str(b, s);
	free(s);
	return gh_buf_err(b);
}

gh_err
gh_jose_sign_payload(const struct gh_jose_key *k, const char *kid,
    const char *typ, const char *payload, size_t payload_len, char **out)
{
	struct gh_buf jws, sig, hdr;
	gh_err err;

	*out = NULL;
	gh_buf_init(&jws, 4 * GH_JOSE_MAX_LEN, 0);
	gh_buf_init(&sig, SIG_MAX, 0);
	gh_buf_init(&hdr, HEADER_MAX, 0);
	/* The header as json_dumps(JSON_COMPACT) would write it. */
	gh_buf_put_str(&hdr, "{\"alg\":\"");
	gh_buf_put_str(&hdr, gh_jose_alg_name(k->alg));
	gh_buf_put_str(&hdr, "\",\"kid\":");
	gh_json_put_str(&hdr, kid);
	if (typ != NULL) {
		gh_buf_put_str(&hdr, ",\"typ\":");
		gh_json_put_str(&hdr, typ);
	}
	gh_buf_put_str(&hdr, "}");
	err = gh_buf_err(&hdr);
	if (err == GH_OK)
		err = put_b64(&jws, hdr.data, hdr.len);
	gh_buf_put_str(&jws, ".");
	if (err == GH_OK)
		err = put_b64(&jws, payload, payload_len);
	if (err == GH_OK)
		err = sign_raw(k, (const char *)jws.data, jws.len, &sig);
	if (err != GH_OK)
		goto out;
	gh_buf_put_str(&jws, ".");
	err = put_b64(&jws, sig.data, sig.len);
	if (err == GH_OK && jws.len > GH_JOSE_MAX_LEN)
		err = GH_ERR_LIMIT;
	if (err == GH_OK)
		*out = gh_buf_take(&jws, NULL);
	if (err == GH_OK && *out == NULL)
		err = GH_ERR_NOMEM;
out:
	gh_buf_free(&hdr);
	gh_buf_free(&jws);
	gh_buf_free(&sig);
	return err;
}

gh_err
gh_jose_sign(const struct gh_jose_key *k, const char *kid, const char *typ,
    json_t *claims, char **out)
{
	char *ps;
	gh_err err;

	*out = NULL;
	if (kid == NULL)
		return GH_ERR_INVALID;
	ps = json_dumps(claims, JSON_COMPACT);
	if (ps == NULL)
		return GH_ERR_NOMEM;
	err = gh_jose_sign_payload(k, kid, typ, ps, strlen(ps), out);
	free(ps);
	return err;
}

/* ---- parsing ------------------------------------------------------------- */

struct parts {
	const char *h, *p, *s;
	size_t h_len, p_len, s_len;
};

static gh_err
split(const char *jws, size_t len, struct parts *pt)
{
	const char *d1, *d2;

	if (jws == NULL || len == 0 || len > GH_JOSE_MAX_LEN ||
	    memchr(jws, '\0', len) != NULL)
		return GH_ERR_INVALID;
	d1 = memchr(jws, '.', len);
	if (d1 == NULL)
		return GH_ERR_INVALID;
	d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - jws));
	if (d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - jws)))
		return GH_ERR_INVALID;
	pt->h = jws;
	pt->h_len = (size_t)(d1 - jws);
	pt->p = d1 + 1;
	pt->p_len = (size_t)(d2 - pt->p);
	pt->s = d2 + 1;
	pt->s_len = len - (size_t)(pt->s - jws);
	if (pt->h_len == 0 || pt->p_len == 0 || pt->s_len == 0)
		return GH_ERR_INVALID;
	return GH_OK;
}

/* Decodes base64url s into a JSON object (bounded by cap bytes). */
static gh_err
decode_object(const char *s, size_t n, size_t cap, json_t **out)
{
	uint8_t *buf;
	size_t len = 0;
	json_t *o;
	gh_err err;

	*out = NULL;
	if (n > (cap * 4 + 2) / 3)
		return GH_ERR_INVALID;
	buf = malloc(cap);
	if (buf == NULL)
		return GH_ERR_NOMEM;
	err = gh_b64url_decode(s, n, buf, cap, &len);
	if (err == GH_OK && !gh_utf8_valid((const char *)buf, len))
		err = GH_ERR_INVALID;
	if (err == GH_OK) {
		o = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES,
		    NULL);
		if (!json_is_object(o)) {
			json_decref(o);
			err = GH_ERR_INVALID;
		} else {
			*out = o;
		}
	}
	free(buf);
	return err == GH_ERR_LIMIT ? GH_ERR_INVALID : err;
}

static gh_err
header_check(const struct parts *pt, json_t **header_out)
{
	enum gh_jose_alg alg;
	json_t *h = NULL;
	gh_err err;

	*header_out = NULL;
	err = decode_object(pt->h, pt->h_len, HEADER_MAX, &h);
	if (err != GH_OK)
		return err;
	/* "none" and anything unknown fail here; crit names extensions we
	 * cannot honour, so any crit at all is refused. */
	if (gh_jose_alg_parse(json_string_value(json_object_get(h, "alg")),
	    &alg) != GH_OK || json_object_get(h, "crit") != NULL) {
		json_decref(h);
		return GH_ERR_INVALID;
	}
	*header_out = h;
	return GH_OK;
}

gh_err
gh_jose_header(const char *jws, size_t len, json_t **header_out)
{
	struct parts pt;
	gh_err err;

	*header_out = NULL;
	err = split(jws, len, &pt);
	if (err == GH_OK)
		err = header_check(&pt, header_out);
	return err;
}

gh_err
gh_jose_claims_unverified(const char *jws, size_t len, json_t **claims_out)
{
	struct parts pt;
	json_t *h = NULL;
	gh_err err;

	*claims_out = NULL;
	err = split(jws, len, &pt);
	if (err == GH_OK)
		err = header_check(&pt, &h);
	json_decref(h);
	if (err == GH_OK)
		err = decode_object(pt.p, pt.p_len, GH_JOSE_MAX_LEN,
		    claims_out);
	return err;
}

static gh_err
verify_sig(const struct gh_jose_key *k, const struct parts *pt)
{
	EVP_MD_CTX *md = NULL;
	uint8_t sig[SIG_MAX];
	unsigned char *der = NULL;
	const uint8_t *vs = sig;
	size_t sig_len = 0, vs_len;
	gh_err err;

	err = gh_b64url_decode(pt->s, pt->s_len, sig, sizeof sig, &sig_len);
	if (err != GH_OK)
		return GH_ERR_INVALID;
	vs_len = sig_len;
	if (k->alg == GH_JOSE_ES256) {
		if (sig_len != 2 * ES256_HALF)
			return GH_ERR_DENIED;
		err = ecdsa_raw_to_der(sig, &der, &vs_len);
		if (err != GH_OK)
			return err;
		vs = der;
	}
	err = GH_ERR_DENIED;
	/* The signing input is header "." payload as sent. */
	if (k->cx != NULL && k->cx->verify != NULL) {
		if (digest_verify(k->cx->verify, pt->h, pt->h_len + 1 +
		    pt->p_len, vs, vs_len))
			err = GH_OK;
		goto out;
	}
	md = EVP_MD_CTX_new();
	if (md == NULL) {
		err = GH_ERR_NOMEM;
		goto out;
	}
	if (EVP_DigestVerifyInit(md, NULL, alg_md(k->alg), NULL, k->pk) == 1 &&
	    EVP_DigestVerify(md, vs, vs_len, (const uint8_t *)pt->h,
	    pt->h_len + 1 + pt->p_len) == 1)
		err = GH_OK;
out:
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	return err;
}

/* ---- verified signatures -------------------------------------------------- */

/* An entry: the SHA-256 of a whole JWS whose signature verified, the
 * binding it verified under, and its parsed header and claims (shared,
 * read-only: handed out as new references, so a hit parses nothing). */
struct seen_ent {
	uint8_t dg[GH_SHA256_LEN];
	char binding[GH_JOSE_BINDING_MAX];	/* "": empty slot */
	json_t *hdr, *claims;
};

struct gh_jose_seen {
	pthread_mutex_t mu;
	size_t mask;
	struct seen_ent *e;
};

gh_err
gh_jose_seen_new(unsigned bits, struct gh_jose_seen **out)
{
	struct gh_jose_seen *s;

	*out = NULL;
	if (bits < 4 || bits > 20)
		return GH_ERR_INVALID;
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return GH_ERR_NOMEM;
	s->mask = ((size_t)1 << bits) - 1;
	s->e = calloc(s->mask + 1, sizeof *s->e);
	if (s->e == NULL || pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s->e);
		free(s);
		return GH_ERR_NOMEM;
	}
	*out = s;
	return GH_OK;
}

void
gh_jose_seen_free(struct gh_jose_seen *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i <= s->mask; i++) {
		json_decref(s->e[i].hdr);
		json_decref(s->e[i].claims);
	}
	pthread_mutex_destroy(&s->mu);
	free(s->e);
	free(s);
}

static size_t
seen_slot(const struct gh_jose_seen *s, const uint8_t dg[static GH_SHA256_LEN])
{
	size_t slot;

	memcpy(&slot, dg, sizeof slot);
	return slot & s->mask;
}

/* What seen holds for the JWS of digest dg: new references on its header
 * and claims and a copy of its binding; false when it holds nothing. */
static bool
seen_get(struct gh_jose_seen *s, const uint8_t dg[static GH_SHA256_LEN],
    json_t **hdr, json_t **claims, char binding[static GH_JOSE_BINDING_MAX])
{
	struct seen_ent *e = &s->e[seen_slot(s, dg)];
	bool hit;

	pthread_mutex_lock(&s->mu);
	hit = e->binding[0] != '\0' &&
	    CRYPTO_memcmp(e->dg, dg, GH_SHA256_LEN) == 0;
	if (hit) {
		*hdr = json_incref(e->hdr);
		*claims = json_incref(e->claims);
		memcpy(binding, e->binding, GH_JOSE_BINDING_MAX);
	}
	pthread_mutex_unlock(&s->mu);
	return hit;
}

static void
seen_put(struct gh_jose_seen *s, const uint8_t dg[static GH_SHA256_LEN],
    const char *binding, json_t *hdr, json_t *claims)
{
	struct seen_ent *e = &s->e[seen_slot(s, dg)];
	json_t *old_h, *old_c;

	pthread_mutex_lock(&s->mu);
	old_h = e->hdr;
	old_c = e->claims;
	memcpy(e->dg, dg, GH_SHA256_LEN);
	gh_strlcpy(e->binding, binding, sizeof e->binding);
	e->hdr = json_incref(hdr);
	e->claims = json_incref(claims);
	pthread_mutex_unlock(&s->mu);
	json_decref(old_h);
	json_decref(old_c);
}

/* Checks the signature of the parsed pt with k and parses its claims. */
static gh_err
verify_parts(const struct gh_jose_key *k, const struct parts *pt,
    json_t *h, json_t **claims_out)
{
	enum gh_jose_alg alg;
	gh_err err;

	*claims_out = NULL;
	/* The key decides the algorithm; a header naming another one is a
	 * key-confusion attempt. */
	if (gh_jose_alg_parse(json_string_value(json_object_get(h, "alg")),
	    &alg) != GH_OK || alg != k->alg)
		return GH_ERR_DENIED;
	err = verify_sig(k, pt);
	if (err == GH_OK)
		err = decode_object(pt->p, pt->p_len, GH_JOSE_MAX_LEN,
		    claims_out);
	return err;
}

gh_err
gh_jose_verify_by(struct gh_jose_seen *seen, const char *jws, size_t len,
    gh_jose_key_fn key_fn, void *arg, json_t **header_out,
    json_t **claims_out)
{
	uint8_t dg[GH_SHA256_LEN];
	char binding[GH_JOSE_BINDING_MAX], was[GH_JOSE_BINDING_MAX];
	const struct gh_jose_key *k = NULL;
	enum gh_jose_alg alg;
	struct parts pt;
	json_t *h = NULL, *c = NULL;
	bool hit = false;
	gh_err err;

	if (header_out != NULL)
		*header_out = NULL;
	*claims_out = NULL;
	memset(binding, 0, sizeof binding);
	err = split(jws, len, &pt);
	if (err != GH_OK)
		return err;
	if (seen != NULL) {
		/* The same bytes parse the same: a hit's header and claims
		 * stand for a fresh parse. */
		gh_sha256(jws, len, dg);
		hit = seen_get(seen, dg, &h, &c, was);
	}
	if (!hit && (err = header_check(&pt, &h)) != GH_OK)
		goto out;
	err = key_fn(arg, h, &k, binding);
	if (err != GH_OK)
		goto out;
	if (hit && gh_jose_alg_parse(json_string_value(json_object_get(h,
	    "alg")), &alg) == GH_OK && alg == k->alg &&
	    binding[0] != '\0' && strcmp(binding, was) == 0)
		goto done;
	/* Not seen, or under another binding: checked in full. */
	json_decref(c);
	c = NULL;
	err = verify_parts(k, &pt, h, &c);
	if (err != GH_OK)
		goto out;
	if (seen != NULL && binding[0] != '\0')
		seen_put(seen, dg, binding, h, c);
done:
	*claims_out = c;
	c = NULL;
	if (header_out != NULL) {
		*header_out = h;
		h = NULL;
	}
out:
	json_decref(h);
	json_decref(c);
	return err;
}

gh_err
gh_jose_verify(const struct gh_jose_key *k, const char *jws, size_t len,
    json_t **header_out, json_t **claims_out)
{
	return gh_jose_verify_seen(k, NULL, NULL, jws, len, header_out,
	    claims_out);
}

struct fixed_key {
	const struct gh_jose_key *k;
	const char *binding;
};

static gh_err
fixed_key_fn(void *arg, json_t *header, const struct gh_jose_key **key_out,
    char binding[static GH_JOSE_BINDING_MAX])
{
	struct fixed_key *f = arg;

	(void)header;
	*key_out = f->k;
	if (f->binding != NULL && !gh_strlcpy(binding, f->binding,
	    GH_JOSE_BINDING_MAX))
		binding[0] = '\0';	/* too long: not cached */
	return GH_OK;
}

gh_err
gh_jose_verify_seen(const struct gh_jose_key *k, struct gh_jose_seen *seen,
    const char *binding, const char *jws, size_t len, json_t **header_out,
    json_t **claims_out)
{
	struct fixed_key f = { k, binding };

	if (seen != NULL && binding == NULL)
		return GH_ERR_INVALID;
	return gh_jose_verify_by(seen, jws, len, fixed_key_fn, &f,
	    header_out, claims_out);
}
