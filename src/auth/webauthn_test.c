/*
 * webauthn_test.c: unit tests for WebAuthn registration and assertion
 * verification. A synthetic authenticator built here with OpenSSL (ES256,
 * Ed25519 and RSA-2048 keys, COSE keys encoded with libcbor, packed self
 * and x5c attestation with a self-signed certificate) produces the
 * responses; each refusal is then provoked by changing one thing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "auth/webauthn.h"

#define RP_ID "login.example.com"
#define ORIGIN "https://login.example.com"
#define AD_MAX 2048

static const char *const origins[] = { "https://other.example.com", ORIGIN };
static const uint8_t aaguid[GH_WA_AAGUID_LEN] = { 0xaa, 0xbb, 0xcc, 0xdd,
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
static const uint8_t cred_id[20] = { 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 7,
	8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20 };
static const uint8_t user_handle[16] = { 'u', 's', 'e', 'r', '-', 'h', 'a',
	'n', 'd', 'l', 'e', '-', '0', '0', '0', '1' };

struct key {
	int alg;
	EVP_PKEY *pk;
	uint8_t *cose;
	size_t cose_len;
};

struct fixture {
	struct key keys[3];		/* ES256, EdDSA, RS256 */
	struct key att;			/* ES256 attestation key */
	uint8_t *cert;			/* its self-signed certificate, DER */
	int cert_len;
	uint8_t challenge[32];
	struct gh_wa_expect exp;
};

/* ---- the synthetic authenticator ------------------------------------------ */

static cbor_item_t *
cbor_int(int v)
{
	uint32_t m = v >= 0 ? (uint32_t)v : (uint32_t)(-1 - v);

	if (v >= 0)
		return m < 256 ? cbor_build_uint8((uint8_t)m) :
		    cbor_build_uint16((uint16_t)m);
	return m < 256 ? cbor_build_negint8((uint8_t)m) :
	    cbor_build_negint16((uint16_t)m);
}

static void
map_put(cbor_item_t *m, cbor_item_t *k, cbor_item_t *v)
{
	assert_true(cbor_map_add(m, (struct cbor_pair){ .key = cbor_move(k),
	    .value = cbor_move(v) }));
}

static size_t
bn_param(EVP_PKEY *pk, const char *name, uint8_t *out, int pad)
{
	BIGNUM *bn = NULL;
	int n;

	assert_int_equal(EVP_PKEY_get_bn_param(pk, name, &bn), 1);
	n = pad > 0 ? BN_bn2binpad(bn, out, pad) : BN_bn2bin(bn, out);
	BN_free(bn);
	assert_true(n > 0);
	return (size_t)n;
}

static void
key_make(struct key *k, int alg)
{
	uint8_t a[512], b[512];
	size_t a_len, b_len;
	cbor_item_t *m = cbor_new_definite_map(5);

	k->alg = alg;
	switch (alg) {
	case GH_WA_ALG_ES256:
		k->pk = EVP_EC_gen("P-256");
		assert_non_null(k->pk);
		a_len = bn_param(k->pk, OSSL_PKEY_PARAM_EC_PUB_X, a, 32);
		b_len = bn_param(k->pk, OSSL_PKEY_PARAM_EC_PUB_Y, b, 32);
		map_put(m, cbor_int(1), cbor_int(2));
		map_put(m, cbor_int(3), cbor_int(alg));
		map_put(m, cbor_int(-1), cbor_int(1));
		map_put(m, cbor_int(-2), cbor_build_bytestring(a, a_len));
		map_put(m, cbor_int(-3), cbor_build_bytestring(b, b_len));
		break;
	case GH_WA_ALG_EDDSA:
		k->pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		assert_non_null(k->pk);
		a_len = sizeof a;
		assert_int_equal(EVP_PKEY_get_raw_public_key(k->pk, a, &a_len),
		    1);
		map_put(m, cbor_int(1), cbor_int(1));
		map_put(m, cbor_int(3), cbor_int(alg));
		map_put(m, cbor_int(-1), cbor_int(6));
		map_put(m, cbor_int(-2), cbor_build_bytestring(a, a_len));
		break;
	default:
		k->pk = EVP_RSA_gen(2048);
		assert_non_null(k->pk);
		a_len = bn_param(k->pk, OSSL_PKEY_PARAM_RSA_N, a, 256);
		b_len = bn_param(k->pk, OSSL_PKEY_PARAM_RSA_E, b, 0);
		map_put(m, cbor_int(1), cbor_int(3));
		map_put(m, cbor_int(3), cbor_int(alg));
		map_put(m, cbor_int(-1), cbor_build_bytestring(a, a_len));
		map_put(m, cbor_int(-2), cbor_build_bytestring(b, b_len));
		break;
	}
	k->cose = NULL;
	k->cose_len = 0;
	{
		size_t cap = 0;

		k->cose_len = cbor_serialize_alloc(m, &k->cose, &cap);
	}
	assert_true(k->cose_len > 0);
	cbor_decref(&m);
}

static size_t
sign(const struct key *k, const uint8_t *msg, size_t len, uint8_t *sig)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t n = 1024;

	assert_int_equal(EVP_DigestSignInit(ctx, NULL,
	    k->alg == GH_WA_ALG_EDDSA ? NULL : EVP_sha256(), NULL, k->pk), 1);
	assert_int_equal(EVP_DigestSign(ctx, sig, &n, msg, len), 1);
	EVP_MD_CTX_free(ctx);
	return n;
}

/* Signs authData || SHA-256(clientDataJSON). */
static size_t
sign_ceremony(const struct key *k, const uint8_t *ad, size_t ad_len,
    const char *cd, uint8_t *sig)
{
	uint8_t msg[AD_MAX + GH_SHA256_LEN];

	assert_true(ad_len <= AD_MAX);
	memcpy(msg, ad, ad_len);
	gh_sha256(cd, strlen(cd), msg + ad_len);
	return sign(k, msg, ad_len + GH_SHA256_LEN, sig);
}

/* authData for rp_id with the flags and counter; with attested credential
 * data when k is not NULL. */
static size_t
authdata_make(uint8_t *out, const char *rp_id, uint8_t flags, uint32_t count,
    const struct key *k)
{
	size_t n = 0;

	gh_sha256(rp_id, strlen(rp_id), out);
	n = 32;
	out[n++] = flags;
	out[n++] = (uint8_t)(count >> 24);
	out[n++] = (uint8_t)(count >> 16);
	out[n++] = (uint8_t)(count >> 8);
	out[n++] = (uint8_t)count;
	if (k != NULL) {
		memcpy(out + n, aaguid, sizeof aaguid);
		n += sizeof aaguid;
		out[n++] = 0;
		out[n++] = sizeof cred_id;
		memcpy(out + n, cred_id, sizeof cred_id);
		n += sizeof cred_id;
		memcpy(out + n, k->cose, k->cose_len);
		n += k->cose_len;
	}
	return n;
}

static void
client_data_make(char *out, size_t cap, const char *type,
    const uint8_t *chal, size_t chal_len, const char *origin,
    const char *extra)
{
	char b64[128];

	gh_b64url_encode(chal, chal_len, b64);
	snprintf(out, cap, "{\"type\":\"%s\",\"challenge\":\"%s\","
	    "\"origin\":\"%s\"%s}", type, b64, origin, extra);
}

/* Encodes {"fmt", "attStmt", "authData"}; takes stmt. Free the result. */
static uint8_t *
attobj_make(const char *fmt, cbor_item_t *stmt, const uint8_t *ad,
    size_t ad_len, size_t *len)
{
	cbor_item_t *m = cbor_new_definite_map(3);
	uint8_t *buf = NULL;
	size_t cap = 0;

	map_put(m, cbor_build_string("fmt"), cbor_build_string(fmt));
	map_put(m, cbor_build_string("attStmt"), stmt);
	map_put(m, cbor_build_string("authData"),
	    cbor_build_bytestring(ad, ad_len));
	*len = cbor_serialize_alloc(m, &buf, &cap);
	assert_true(*len > 0);
	cbor_decref(&m);
	return buf;
}

static cbor_item_t *
packed_stmt(const struct key *signer, const uint8_t *ad, size_t ad_len,
    const char *cd, const uint8_t *x5c, int x5c_len, bool tamper)
{
	cbor_item_t *m = cbor_new_definite_map(3), *arr;
	uint8_t sig[1024];
	size_t sig_len = sign_ceremony(signer, ad, ad_len, cd, sig);

	if (tamper)
		sig[sig_len / 2] ^= 0x01;
	map_put(m, cbor_build_string("alg"), cbor_int(signer->alg));
	map_put(m, cbor_build_string("sig"), cbor_build_bytestring(sig,
	    sig_len));
	if (x5c != NULL) {
		arr = cbor_new_definite_array(1);
		assert_true(cbor_array_push(arr, cbor_move(
		    cbor_build_bytestring(x5c, (size_t)x5c_len))));
		map_put(m, cbor_build_string("x5c"), arr);
	}
	return m;
}

static void
cert_make(struct fixture *f)
{
	X509 *x = X509_new();
	X509_NAME *name;
	uint8_t *p;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
	assert_int_equal(X509_set_pubkey(x, f->att.pk), 1);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC,
	    (const unsigned char *)"SE", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
	    (const unsigned char *)"Gatehouse Test Authenticator", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_ASC,
	    (const unsigned char *)"Authenticator Attestation", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"gatehouse test", -1, -1, 0);
	X509_set_issuer_name(x, name);
	assert_true(X509_sign(x, f->att.pk, EVP_sha256()) > 0);
	f->cert_len = i2d_X509(x, NULL);
	assert_true(f->cert_len > 0);
	f->cert = malloc((size_t)f->cert_len);
	p = f->cert;
	assert_int_equal(i2d_X509(x, &p), f->cert_len);
	X509_free(x);
}

static int
group_setup(void **state)
{
	static const int algs[3] = { GH_WA_ALG_ES256, GH_WA_ALG_EDDSA,
		GH_WA_ALG_RS256 };
	struct fixture *f = calloc(1, sizeof *f);
	size_t i;

	gh_log_set_level(GH_LOG_LEVEL_ERR);
	for (i = 0; i < 3; i++)
		key_make(&f->keys[i], algs[i]);
	key_make(&f->att, GH_WA_ALG_ES256);
	cert_make(f);
	for (i = 0; i < sizeof f->challenge; i++)
		f->challenge[i] = (uint8_t)(0x40 + i);
	f->exp.challenge = f->challenge;
	f->exp.challenge_len = sizeof f->challenge;
	f->exp.rp_id = RP_ID;
	f->exp.origins = origins;
	f->exp.origins_len = 2;
	f->exp.require_uv = false;
	*state = f;
	return 0;
}

static void
key_free(struct key *k)
{
	EVP_PKEY_free(k->pk);
	free(k->cose);
}

static int
group_teardown(void **state)
{
	struct fixture *f = *state;
	size_t i;

	for (i = 0; i < 3; i++)
		key_free(&f->keys[i]);
	key_free(&f->att);
	free(f->cert);
	free(f);
	return 0;
}

/* ---- registration helpers -------------------------------------------------- */

enum att_kind { ATT_NONE, ATT_SELF, ATT_X5C };

struct reg_opts {
	const char *type;
	const char *origin;
	const char *rp_id;
	const char *extra;	/* appended to clientDataJSON */
	const char *fmt;	/* overrides the format name */
	uint8_t flags;
	bool wrong_challenge;
	bool tamper;
};

static void
reg_defaults(struct reg_opts *o)
{
	memset(o, 0, sizeof *o);
	o->type = "webauthn.create";
	o->origin = ORIGIN;
	o->rp_id = RP_ID;
	o->extra = ",\"crossOrigin\":false";
	o->flags = GH_WA_FLAG_UP | GH_WA_FLAG_UV | GH_WA_FLAG_AT;
}

/* Builds a registration response with k and verifies it. */
static gh_err
reg_run(struct fixture *f, const struct key *k, enum att_kind kind,
    const struct reg_opts *o, struct gh_wa_credential *cred,
    enum gh_wa_reason *why)
{
	uint8_t ad[AD_MAX], chal[32], *obj;
	char cd[1024];
	size_t ad_len, obj_len;
	cbor_item_t *stmt;
	gh_err err;

	memcpy(chal, f->challenge, sizeof chal);
	if (o->wrong_challenge)
		chal[0] ^= 1;
	client_data_make(cd, sizeof cd, o->type, chal, sizeof chal, o->origin,
	    o->extra);
	ad_len = authdata_make(ad, o->rp_id, o->flags, 0, k);
	switch (kind) {
	case ATT_NONE:
		stmt = cbor_new_definite_map(0);
		break;
	case ATT_SELF:
		stmt = packed_stmt(k, ad, ad_len, cd, NULL, 0, o->tamper);
		break;
	default:
		stmt = packed_stmt(&f->att, ad, ad_len, cd, f->cert,
		    f->cert_len, o->tamper);
		break;
	}
	obj = attobj_make(o->fmt != NULL ? o->fmt : kind == ATT_NONE ? "none" :
	    "packed", stmt, ad, ad_len, &obj_len);
	err = gh_auth_webauthn_register_verify(&f->exp, obj, obj_len,
	    (const uint8_t *)cd, strlen(cd), cred, why);
	free(obj);
	return err;
}

static void
assert_registered(const struct gh_wa_credential *c, const struct key *k,
    enum gh_wa_att_type type)
{
	static const size_t pk_len[3] = { 64, 32, 259 };
	size_t i = k->alg == GH_WA_ALG_ES256 ? 0 :
	    k->alg == GH_WA_ALG_EDDSA ? 1 : 2;

	assert_int_equal(c->alg, k->alg);
	assert_int_equal(c->id_len, sizeof cred_id);
	assert_memory_equal(c->id, cred_id, sizeof cred_id);
	assert_int_equal(c->pubkey_len, pk_len[i]);
	assert_memory_equal(c->aaguid, aaguid, sizeof aaguid);
	assert_int_equal(c->sign_count, 0);
	assert_true(c->uv);
	assert_false(c->backup_eligible);
	assert_int_equal(c->att_type, type);
}

static void
test_registration_with_none_attestation_succeeds_for_all_algorithms(
    void **state)
{
	struct fixture *f = *state;
	struct gh_wa_credential c;
	struct reg_opts o;
	enum gh_wa_reason why;
	size_t i;

	reg_defaults(&o);
	for (i = 0; i < 3; i++) {
		assert_int_equal(reg_run(f, &f->keys[i], ATT_NONE, &o, &c, &why),
		    GH_OK);
		assert_int_equal(why, GH_WA_OK);
		assert_registered(&c, &f->keys[i], GH_WA_ATT_NONE);
	}
}

static void
test_registration_with_packed_self_attestation_succeeds_for_all_algorithms(
    void **state)
{
	struct fixture *f = *state;
	struct gh_wa_credential c;
	struct reg_opts o;
	enum gh_wa_reason why;
	size_t i;

	reg_defaults(&o);
	for (i = 0; i < 3; i++) {
		assert_int_equal(reg_run(f, &f->keys[i], ATT_SELF, &o, &c, &why),
		    GH_OK);
		assert_registered(&c, &f->keys[i], GH_WA_ATT_SELF);
	}
}

static void
test_registration_with_packed_x5c_attestation_succeeds(void **state)
{
	struct fixture *f = *state;
	struct gh_wa_credential c;
	struct reg_opts o;
	enum gh_wa_reason why;
	size_t i;

	reg_defaults(&o);
	for (i = 0; i < 3; i++) {
		assert_int_equal(reg_run(f, &f->keys[i], ATT_X5C, &o, &c, &why),
		    GH_OK);
		assert_registered(&c, &f->keys[i], GH_WA_ATT_BASIC);
	}
}

static void
test_registration_refuses_a_tampered_attestation_signature(void **state)
{
	struct fixture *f = *state;
	struct gh_wa_credential c;
	struct reg_opts o;
	enum gh_wa_reason why;

	reg_defaults(&o);
	o.tamper = true;
	assert_int_equal(reg_run(f, &f->keys[0], ATT_SELF, &o, &c, &why),
	    GH_ERR_DENIED);
	assert_int_equal(why, GH_WA_BAD_ATTESTATION);
	assert_int_equal(c.id_len, 0);
	assert_int_equal(reg_run(f, &f->keys[1], ATT_X5C, &o, &c, &why),
	    GH_ERR_DENIED);
	assert_int_equal(why, GH_WA_BAD_ATTESTATION);
}

static void
expect_reg_refusal(struct fixture *f, enum att_kind kind,
    const struct reg_opts *o, gh_err err, enum gh_wa_reason reason)
{
	struct gh_wa_credential c;
	enum gh_wa_reason why;

	assert_int_equal(reg_run(f, &f->keys[0], kind, o, &c, &why), err);
	assert_string_equal(gh_wa_reason_str(why), gh_wa_reason_str(reason));
	if (err != GH_OK)
		assert_int_equal(c.pubkey_len, 0);
}

static void
test_registration_refuses_each_client_data_mismatch(void **state)
{
	struct fixture *f = *state;
	struct reg_opts o;

	reg_defaults(&o);
	o.type = "webauthn.get";
	expect_reg_refusal(f, ATT_NONE, &o, GH_ERR_DENIED, GH_WA_WRONG_TYPE);

	reg_defaults(&o);
	o.wrong_challenge = true;
	expect_reg_refusal(f, ATT_NONE, &o, GH_ERR_DENIED,
	    GH_WA_CHALLENGE_MISMATCH);

	reg_defaults(&o);
	o.origin = "https://login.example.com.evil.test";
	expect_reg_refusal(f, ATT_NONE, &o, GH_ERR_DENIED,
	    GH_WA_ORIGIN_MISMATCH);

	reg_defaults(&o);
	o.origin = "http://login.example.com";
	expect_reg_refusal(f, ATT_NONE, &o, GH_ERR_DENIED,
	    GH_WA_ORIGIN_MISMATCH);

	reg_defaults(&o);
	o.extra = ",\"crossOrigin\":true";
	expect_reg_refusal(f, ATT_NONE, &o, GH_ERR_DENIED, GH_WA_CROSS_ORIGIN);

	reg_defaults(&o);
	o.extra = ",\"crossOrigin\":\"no\"";
	expect_reg_refusal(f, ATT_NONE, &o, GH_ERR_INVALID,
	    GH_WA_MALFORMED_CLIENT_DATA);

	reg_defaults(&o);
	o.extra = ",\"type\":\"webauthn.create\"";
	expect_reg_refusal(f, ATT_NONE, &o, GH_ERR_INVALID,
	    GH_WA_MALFORMED_CLIENT_DATA);

	/* No crossOrigin at all is the common case and fine. */
	reg_defaults(&o);
	o.extra = "";
	expect_reg_refusal(f, ATT_NONE, &o, GH_OK, GH_WA_OK);
}

static void
test_registration_refuses_malformed_client_data(void **state)
{
	static const char *const bad[] = {
		"", "[]", "\"x\"", "{", "{\"type\":1}",
		"{\"type\":\"webauthn.create\"} trailing",
		"{\"type\":\"webauthn.create\",\"challenge\":\"\xc3\x28\"}",
	};
	struct fixture *f = *state;
	uint8_t ad[AD_MAX], *obj;
	size_t ad_len, obj_len, i;
	struct gh_wa_credential c;
	enum gh_wa_reason why;

	ad_len = authdata_make(ad, RP_ID, GH_WA_FLAG_UP | GH_WA_FLAG_AT, 0,
	    &f->keys[0]);
	obj = attobj_make("none", cbor_new_definite_map(0), ad, ad_len,
	    &obj_len);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(gh_auth_webauthn_register_verify(&f->exp, obj,
		    obj_len, (const uint8_t *)bad[i], strlen(bad[i]), &c, &why),
		    GH_ERR_INVALID);
		assert_int_equal(why, GH_WA_MALFORMED_CLIENT_DATA);
	}
	free(obj);
}

static void
test_registration_refuses_a_wrong_rp_id_and_missing_flags(void **state)
{
	struct fixture *f = *state;
	struct reg_opts o;

	reg_defaults(&o);
	o.rp_id = "evil.example.com";
	expect_reg_refusal(f, ATT_NONE, &o, GH_ERR_DENIED,
	    GH_WA_RP_ID_MISMATCH);

	reg_defaults(&o);
	o.flags = GH_WA_FLAG_UV | GH_WA_FLAG_AT;
	expect_reg_refusal(f, ATT_NONE, &o, GH_ERR_DENIED,
	    GH_WA_USER_PRESENCE_MISSING);

	reg_defaults(&o);
	o.flags = GH_WA_FLAG_UP | GH_WA_FLAG_AT;
	f->exp.require_uv = true;
	expect_reg_refusal(f, ATT_SELF, &o, GH_ERR_DENIED,
	    GH_WA_USER_VERIFICATION_MISSING);
	f->exp.require_uv = false;
	expect_reg_refusal(f, ATT_SELF, &o, GH_OK, GH_WA_OK);

	/* Without AT the COSE key is trailing garbage: malformed. */
	reg_defaults(&o);
	o.flags = GH_WA_FLAG_UP;
	expect_reg_refusal(f, ATT_NONE, &o, GH_ERR_INVALID,
	    GH_WA_MALFORMED_AUTH_DATA);

	/* Without AT and without a key: nothing to register. */
	{
		uint8_t ad[AD_MAX], *obj;
		size_t ad_len, obj_len;
		char cd[1024];
		struct gh_wa_credential c;
		enum gh_wa_reason why;

		client_data_make(cd, sizeof cd, "webauthn.create",
		    f->challenge, sizeof f->challenge, ORIGIN, "");
		ad_len = authdata_make(ad, RP_ID, GH_WA_FLAG_UP, 0, NULL);
		obj = attobj_make("none", cbor_new_definite_map(0), ad, ad_len,
		    &obj_len);
		assert_int_equal(gh_auth_webauthn_register_verify(&f->exp, obj,
		    obj_len, (const uint8_t *)cd, strlen(cd), &c, &why),
		    GH_ERR_DENIED);
		assert_int_equal(why, GH_WA_ATTESTED_DATA_MISSING);
		free(obj);
	}

	/* Backed up without being backup eligible is contradictory. */
	reg_defaults(&o);
	o.flags |= GH_WA_FLAG_BS;
	expect_reg_refusal(f, ATT_NONE, &o, GH_ERR_INVALID,
	    GH_WA_MALFORMED_AUTH_DATA);
}

static void
test_registration_refuses_other_formats(void **state)
{
	struct fixture *f = *state;
	struct reg_opts o;

	reg_defaults(&o);
	o.fmt = "fido-u2f";
	expect_reg_refusal(f, ATT_SELF, &o, GH_ERR_INVALID,
	    GH_WA_UNSUPPORTED_FORMAT);
	o.fmt = "tpm";
	expect_reg_refusal(f, ATT_SELF, &o, GH_ERR_INVALID,
	    GH_WA_UNSUPPORTED_FORMAT);
	/* "none" with a statement is not "none". */
	o.fmt = "none";
	expect_reg_refusal(f, ATT_SELF, &o, GH_ERR_DENIED,
	    GH_WA_BAD_ATTESTATION);
}

static void
test_registration_refuses_an_unsupported_algorithm(void **state)
{
	struct fixture *f = *state;
	struct key k = f->keys[0];
	uint8_t ad[AD_MAX], *obj, *cose;
	char cd[1024];
	size_t ad_len, obj_len;
	struct gh_wa_credential c;
	enum gh_wa_reason why;

	/* The ES256 key relabelled as ES384 (-35). */
	cose = malloc(k.cose_len);
	memcpy(cose, k.cose, k.cose_len);
	assert_int_equal(cose[3], 0x03);	/* label 3 (alg) */
	assert_int_equal(cose[4], 0x26);	/* -7 */
	k.cose = malloc(k.cose_len + 1);
	memcpy(k.cose, cose, 4);
	k.cose[4] = 0x38;			/* -35 */
	k.cose[5] = 0x22;
	memcpy(k.cose + 6, cose + 5, k.cose_len - 5);
	k.cose_len++;
	free(cose);
	client_data_make(cd, sizeof cd, "webauthn.create", f->challenge,
	    sizeof f->challenge, ORIGIN, "");
	ad_len = authdata_make(ad, RP_ID, GH_WA_FLAG_UP | GH_WA_FLAG_AT, 0,
	    &k);
	obj = attobj_make("none", cbor_new_definite_map(0), ad, ad_len,
	    &obj_len);
	assert_int_equal(gh_auth_webauthn_register_verify(&f->exp, obj,
	    obj_len, (const uint8_t *)cd, strlen(cd), &c, &why),
	    GH_ERR_INVALID);
	assert_int_equal(why, GH_WA_UNSUPPORTED_ALGORITHM);
	free(obj);
	free(k.cose);
}

static void
test_registration_refuses_malformed_cbor_and_truncated_auth_data(
    void **state)
{
	struct fixture *f = *state;
	uint8_t ad[AD_MAX], *obj, *bad;
	char cd[1024];
	size_t ad_len, obj_len, cut;
	struct gh_wa_credential c;
	enum gh_wa_reason why;
	static const uint8_t garbage[][8] = {
		{ 0xff }, { 0xa1, 0x63, 'f', 'm', 't' }, { 0xbf, 0xff },
		{ 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
		{ 0xa1, 0x01, 0x02 }, { 0xc0, 0x00 },
	};
	size_t i;

	client_data_make(cd, sizeof cd, "webauthn.create", f->challenge,
	    sizeof f->challenge, ORIGIN, "");
	for (i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
		assert_int_equal(gh_auth_webauthn_register_verify(&f->exp,
		    garbage[i], sizeof garbage[i], (const uint8_t *)cd,
		    strlen(cd), &c, &why), GH_ERR_INVALID);
		assert_int_equal(why, GH_WA_MALFORMED_CBOR);
	}

	/* A valid object with one byte more, or one byte less. */
	ad_len = authdata_make(ad, RP_ID, GH_WA_FLAG_UP | GH_WA_FLAG_AT, 0,
	    &f->keys[0]);
	obj = attobj_make("none", cbor_new_definite_map(0), ad, ad_len,
	    &obj_len);
	bad = malloc(obj_len + 1);
	memcpy(bad, obj, obj_len);
	bad[obj_len] = 0;
	assert_int_equal(gh_auth_webauthn_register_verify(&f->exp, bad,
	    obj_len + 1, (const uint8_t *)cd, strlen(cd), &c, &why),
	    GH_ERR_INVALID);
	assert_int_equal(why, GH_WA_MALFORMED_CBOR);
	assert_int_equal(gh_auth_webauthn_register_verify(&f->exp, obj,
	    obj_len - 1, (const uint8_t *)cd, strlen(cd), &c, &why),
	    GH_ERR_INVALID);
	assert_int_equal(why, GH_WA_MALFORMED_CBOR);
	free(bad);
	free(obj);

	/* authData cut at every length must be refused, never accepted. */
	for (cut = 0; cut < ad_len; cut++) {
		obj = attobj_make("none", cbor_new_definite_map(0), ad, cut,
		    &obj_len);
		assert_int_equal(gh_auth_webauthn_register_verify(&f->exp, obj,
		    obj_len, (const uint8_t *)cd, strlen(cd), &c, &why),
		    GH_ERR_INVALID);
		assert_true(why == GH_WA_MALFORMED_AUTH_DATA);
		free(obj);
	}
}

static void
test_registration_refuses_oversize_inputs_and_misuse(void **state)
{
	struct fixture *f = *state;
	uint8_t *big = calloc(1, GH_WA_ATT_OBJ_MAX + 1);
	struct gh_wa_credential c;
	struct gh_wa_expect e;
	enum gh_wa_reason why;
	char cd[1024];

	client_data_make(cd, sizeof cd, "webauthn.create", f->challenge,
	    sizeof f->challenge, ORIGIN, "");
	assert_int_equal(gh_auth_webauthn_register_verify(&f->exp, big,
	    GH_WA_ATT_OBJ_MAX + 1, (const uint8_t *)cd, strlen(cd), &c, &why),
	    GH_ERR_LIMIT);
	assert_int_equal(why, GH_WA_TOO_LARGE);
	assert_int_equal(gh_auth_webauthn_register_verify(&f->exp, big, 10,
	    big, GH_WA_CLIENT_DATA_MAX + 1, &c, &why), GH_ERR_LIMIT);
	assert_int_equal(why, GH_WA_TOO_LARGE);

	assert_int_equal(gh_auth_webauthn_register_verify(NULL, big, 10,
	    (const uint8_t *)cd, strlen(cd), &c, &why), GH_ERR_INVALID);
	assert_int_equal(why, GH_WA_BAD_PARAMETER);
	assert_int_equal(gh_auth_webauthn_register_verify(&f->exp, NULL, 10,
	    (const uint8_t *)cd, strlen(cd), &c, &why), GH_ERR_INVALID);
	assert_int_equal(gh_auth_webauthn_register_verify(&f->exp, big, 10,
	    (const uint8_t *)cd, strlen(cd), NULL, &why), GH_ERR_INVALID);
	e = f->exp;
	e.challenge_len = 8;
	assert_int_equal(gh_auth_webauthn_register_verify(&e, big, 10,
	    (const uint8_t *)cd, strlen(cd), &c, &why), GH_ERR_INVALID);
	assert_int_equal(why, GH_WA_BAD_PARAMETER);
	e = f->exp;
	e.origins_len = 0;
	assert_int_equal(gh_auth_webauthn_register_verify(&e, big, 10,
	    (const uint8_t *)cd, strlen(cd), &c, &why), GH_ERR_INVALID);
	free(big);
}

/* ---- assertions ------------------------------------------------------------- */

struct asrt_opts {
	const char *type;
	const char *origin;
	const char *rp_id;
	uint8_t flags;
	uint32_t count;
	bool wrong_challenge;
	bool tamper;
	const uint8_t *user_handle;
	size_t user_handle_len;
};

static void
asrt_defaults(struct asrt_opts *o)
{
	memset(o, 0, sizeof *o);
	o->type = "webauthn.get";
	o->origin = ORIGIN;
	o->rp_id = RP_ID;
	o->flags = GH_WA_FLAG_UP | GH_WA_FLAG_UV;
	o->count = 1;
}

/* Registers k (none) for its public key, then runs an assertion with
 * the stored count. */
static gh_err
asrt_run(struct fixture *f, const struct key *k, const struct asrt_opts *o,
    uint32_t stored_count, struct gh_wa_assert_result *res,
    enum gh_wa_reason *why)
{
	struct gh_wa_credential c;
	struct gh_wa_stored st;
	struct gh_wa_assertion as;
	struct reg_opts ro;
	uint8_t ad[AD_MAX], sig[1024], chal[32];
	char cd[1024];
	size_t ad_len, sig_len;
	enum gh_wa_reason rwhy;

	reg_defaults(&ro);
	assert_int_equal(reg_run(f, k, ATT_NONE, &ro, &c, &rwhy), GH_OK);

	memcpy(chal, f->challenge, sizeof chal);
	if (o->wrong_challenge)
		chal[5] ^= 0x80;
	client_data_make(cd, sizeof cd, o->type, chal, sizeof chal, o->origin,
	    "");
	ad_len = authdata_make(ad, o->rp_id, o->flags, o->count, NULL);
	sig_len = sign_ceremony(k, ad, ad_len, cd, sig);
	if (o->tamper)
		sig[sig_len - 1] ^= 0x01;

	memset(&st, 0, sizeof st);
	st.alg = c.alg;
	st.pubkey = c.pubkey;
	st.pubkey_len = c.pubkey_len;
	st.sign_count = stored_count;
	memset(&as, 0, sizeof as);
	as.auth_data = ad;
	as.auth_data_len = ad_len;
	as.client_data = (const uint8_t *)cd;
	as.client_data_len = strlen(cd);
	as.sig = sig;
	as.sig_len = sig_len;
	as.user_handle = o->user_handle;
	as.user_handle_len = o->user_handle_len;
	return gh_auth_webauthn_assert_verify(&f->exp, &st, &as, res, why);
}

static void
test_assertion_succeeds_for_all_algorithms(void **state)
{
	struct fixture *f = *state;
	struct gh_wa_assert_result res;
	struct asrt_opts o;
	enum gh_wa_reason why;
	size_t i;

	asrt_defaults(&o);
	o.count = 42;
	for (i = 0; i < 3; i++) {
		assert_int_equal(asrt_run(f, &f->keys[i], &o, 41, &res, &why),
		    GH_OK);
		assert_int_equal(why, GH_WA_OK);
		assert_int_equal(res.sign_count, 42);
		assert_true(res.uv);
		assert_int_equal(res.user_handle_len, 0);
	}
}

static void
test_usernameless_assertion_returns_the_user_handle(void **state)
{
	struct fixture *f = *state;
	struct gh_wa_assert_result res;
	struct asrt_opts o;
	enum gh_wa_reason why;

	asrt_defaults(&o);
	o.user_handle = user_handle;
	o.user_handle_len = sizeof user_handle;
	o.flags |= GH_WA_FLAG_BE | GH_WA_FLAG_BS;
	o.count = 0;
	assert_int_equal(asrt_run(f, &f->keys[1], &o, 0, &res, &why), GH_OK);
	assert_int_equal(res.user_handle_len, sizeof user_handle);
	assert_memory_equal(res.user_handle, user_handle, sizeof user_handle);
	assert_true(res.backup_eligible);
	assert_true(res.backup_state);
}

static void
expect_asrt_refusal(struct fixture *f, const struct asrt_opts *o,
    uint32_t stored, gh_err err, enum gh_wa_reason reason)
{
	struct gh_wa_assert_result res;
	enum gh_wa_reason why;
	size_t i;

	for (i = 0; i < 3; i++) {
		assert_int_equal(asrt_run(f, &f->keys[i], o, stored, &res,
		    &why), err);
		assert_string_equal(gh_wa_reason_str(why),
		    gh_wa_reason_str(reason));
		if (err != GH_OK)
			assert_int_equal(res.sign_count, 0);
	}
}

static void
test_assertion_refuses_each_mismatch(void **state)
{
	struct fixture *f = *state;
	struct asrt_opts o;

	asrt_defaults(&o);
	o.type = "webauthn.create";
	expect_asrt_refusal(f, &o, 0, GH_ERR_DENIED, GH_WA_WRONG_TYPE);

	asrt_defaults(&o);
	o.wrong_challenge = true;
	expect_asrt_refusal(f, &o, 0, GH_ERR_DENIED, GH_WA_CHALLENGE_MISMATCH);

	asrt_defaults(&o);
	o.origin = "https://evil.example.com";
	expect_asrt_refusal(f, &o, 0, GH_ERR_DENIED, GH_WA_ORIGIN_MISMATCH);

	asrt_defaults(&o);
	o.rp_id = "example.com";
	expect_asrt_refusal(f, &o, 0, GH_ERR_DENIED, GH_WA_RP_ID_MISMATCH);

	asrt_defaults(&o);
	o.flags = GH_WA_FLAG_UV;
	expect_asrt_refusal(f, &o, 0, GH_ERR_DENIED,
	    GH_WA_USER_PRESENCE_MISSING);

	asrt_defaults(&o);
	o.flags = GH_WA_FLAG_UP;
	f->exp.require_uv = true;
	expect_asrt_refusal(f, &o, 0, GH_ERR_DENIED,
	    GH_WA_USER_VERIFICATION_MISSING);
	f->exp.require_uv = false;
	expect_asrt_refusal(f, &o, 0, GH_OK, GH_WA_OK);

	asrt_defaults(&o);
	o.tamper = true;
	expect_asrt_refusal(f, &o, 0, GH_ERR_DENIED, GH_WA_BAD_SIGNATURE);
}

static void
test_assertion_refuses_a_counter_regression_but_allows_zero_zero(
    void **state)
{
	struct fixture *f = *state;
	struct asrt_opts o;

	asrt_defaults(&o);
	o.count = 5;
	expect_asrt_refusal(f, &o, 5, GH_ERR_DENIED, GH_WA_COUNTER_REGRESSION);
	o.count = 3;
	expect_asrt_refusal(f, &o, 5, GH_ERR_DENIED, GH_WA_COUNTER_REGRESSION);
	o.count = 0;
	expect_asrt_refusal(f, &o, 5, GH_ERR_DENIED, GH_WA_COUNTER_REGRESSION);
	/* Authenticators without a counter always send 0. */
	o.count = 0;
	expect_asrt_refusal(f, &o, 0, GH_OK, GH_WA_OK);
	o.count = 6;
	expect_asrt_refusal(f, &o, 5, GH_OK, GH_WA_OK);
	o.count = UINT32_MAX;
	expect_asrt_refusal(f, &o, 0, GH_OK, GH_WA_OK);
}

static void
test_assertion_refuses_malformed_and_oversize_input(void **state)
{
	struct fixture *f = *state;
	struct gh_wa_credential c;
	struct gh_wa_assert_result res;
	struct gh_wa_stored st;
	struct gh_wa_assertion as;
	struct reg_opts ro;
	uint8_t ad[AD_MAX], sig[1024], sig2[1024], *big;
	char cd[1024];
	size_t ad_len, sig_len, cut;
	enum gh_wa_reason why;

	reg_defaults(&ro);
	assert_int_equal(reg_run(f, &f->keys[0], ATT_NONE, &ro, &c, &why),
	    GH_OK);
	client_data_make(cd, sizeof cd, "webauthn.get", f->challenge,
	    sizeof f->challenge, ORIGIN, "");
	ad_len = authdata_make(ad, RP_ID, GH_WA_FLAG_UP, 1, NULL);
	sig_len = sign_ceremony(&f->keys[0], ad, ad_len, cd, sig);
	memset(&st, 0, sizeof st);
	st.alg = c.alg;
	st.pubkey = c.pubkey;
	st.pubkey_len = c.pubkey_len;
	memset(&as, 0, sizeof as);
	as.auth_data = ad;
	as.client_data = (const uint8_t *)cd;
	as.client_data_len = strlen(cd);
	as.sig = sig;
	as.sig_len = sig_len;

	for (cut = 0; cut < ad_len; cut++) {
		as.auth_data_len = cut;
		assert_int_equal(gh_auth_webauthn_assert_verify(&f->exp, &st,
		    &as, &res, &why), GH_ERR_INVALID);
		assert_int_equal(why, GH_WA_MALFORMED_AUTH_DATA);
	}
	/* Extensions flagged but absent; attested data in an assertion. */
	as.auth_data_len = ad_len;
	ad[32] |= GH_WA_FLAG_ED;
	assert_int_equal(gh_auth_webauthn_assert_verify(&f->exp, &st, &as,
	    &res, &why), GH_ERR_INVALID);
	assert_int_equal(why, GH_WA_MALFORMED_AUTH_DATA);
	ad[32] = GH_WA_FLAG_UP | GH_WA_FLAG_AT;
	assert_int_equal(gh_auth_webauthn_assert_verify(&f->exp, &st, &as,
	    &res, &why), GH_ERR_INVALID);
	assert_int_equal(why, GH_WA_MALFORMED_AUTH_DATA);
	ad[32] = GH_WA_FLAG_UP;
	assert_int_equal(gh_auth_webauthn_assert_verify(&f->exp, &st, &as,
	    &res, &why), GH_OK);

	/* Well-formed extensions are accepted. */
	ad[32] |= GH_WA_FLAG_ED;
	ad[ad_len] = 0xa0;
	as.auth_data_len = ad_len + 1;
	as.sig = sig2;
	as.sig_len = sign_ceremony(&f->keys[0], ad, ad_len + 1, cd, sig2);
	assert_int_equal(gh_auth_webauthn_assert_verify(&f->exp, &st, &as,
	    &res, &why), GH_OK);
	as.auth_data_len = ad_len;
	as.sig = sig;
	as.sig_len = sig_len;
	ad[32] = GH_WA_FLAG_UP;

	big = calloc(1, GH_WA_AUTH_DATA_MAX + 1);
	as.sig = big;
	as.sig_len = GH_WA_SIG_MAX + 1;
	assert_int_equal(gh_auth_webauthn_assert_verify(&f->exp, &st, &as,
	    &res, &why), GH_ERR_LIMIT);
	assert_int_equal(why, GH_WA_TOO_LARGE);
	as.sig_len = 0;
	assert_int_equal(gh_auth_webauthn_assert_verify(&f->exp, &st, &as,
	    &res, &why), GH_ERR_DENIED);
	assert_int_equal(why, GH_WA_BAD_SIGNATURE);
	as.sig = sig;
	as.sig_len = sig_len;
	as.auth_data = big;
	as.auth_data_len = GH_WA_AUTH_DATA_MAX + 1;
	assert_int_equal(gh_auth_webauthn_assert_verify(&f->exp, &st, &as,
	    &res, &why), GH_ERR_LIMIT);
	as.auth_data = ad;
	as.auth_data_len = ad_len;
	as.user_handle = big;
	as.user_handle_len = GH_WA_USER_HANDLE_MAX + 1;
	assert_int_equal(gh_auth_webauthn_assert_verify(&f->exp, &st, &as,
	    &res, &why), GH_ERR_LIMIT);
	as.user_handle = NULL;
	as.user_handle_len = 0;
	as.client_data = big;
	as.client_data_len = GH_WA_CLIENT_DATA_MAX + 1;
	assert_int_equal(gh_auth_webauthn_assert_verify(&f->exp, &st, &as,
	    &res, &why), GH_ERR_LIMIT);
	free(big);
	as.client_data = (const uint8_t *)cd;
	as.client_data_len = strlen(cd);

	/* A stored key of the wrong size or an unknown algorithm. */
	st.pubkey_len = 10;
	assert_int_equal(gh_auth_webauthn_assert_verify(&f->exp, &st, &as,
	    &res, &why), GH_ERR_INVALID);
	assert_int_equal(why, GH_WA_BAD_PARAMETER);
	st.pubkey_len = c.pubkey_len;
	st.alg = -35;
	assert_int_equal(gh_auth_webauthn_assert_verify(&f->exp, &st, &as,
	    &res, &why), GH_ERR_INVALID);
	assert_int_equal(why, GH_WA_UNSUPPORTED_ALGORITHM);
	st.alg = c.alg;
	assert_int_equal(gh_auth_webauthn_assert_verify(&f->exp, NULL, &as,
	    &res, &why), GH_ERR_INVALID);
	assert_int_equal(gh_auth_webauthn_assert_verify(&f->exp, &st, NULL,
	    &res, &why), GH_ERR_INVALID);
	assert_int_equal(gh_auth_webauthn_assert_verify(&f->exp, &st, &as,
	    NULL, &why), GH_ERR_INVALID);
	assert_int_equal(gh_auth_webauthn_assert_verify(&f->exp, &st, &as,
	    &res, &why), GH_OK);
}

static void
test_assertion_refuses_another_users_handle(void **state)
{
	struct fixture *f = *state;
	struct gh_wa_credential c;
	struct gh_wa_assert_result res;
	struct gh_wa_stored st;
	struct gh_wa_assertion as;
	struct reg_opts ro;
	uint8_t ad[AD_MAX], sig[1024], other[16];
	char cd[1024];
	size_t ad_len;
	enum gh_wa_reason why;

	reg_defaults(&ro);
	assert_int_equal(reg_run(f, &f->keys[2], ATT_NONE, &ro, &c, &why),
	    GH_OK);
	client_data_make(cd, sizeof cd, "webauthn.get", f->challenge,
	    sizeof f->challenge, ORIGIN, "");
	ad_len = authdata_make(ad, RP_ID, GH_WA_FLAG_UP, 0, NULL);
	memset(&st, 0, sizeof st);
	st.alg = c.alg;
	st.pubkey = c.pubkey;
	st.pubkey_len = c.pubkey_len;
	st.user_handle = user_handle;
	st.user_handle_len = sizeof user_handle;
	memcpy(other, user_handle, sizeof other);
	other[15] ^= 1;
	memset(&as, 0, sizeof as);
	as.auth_data = ad;
	as.auth_data_len = ad_len;
	as.client_data = (const uint8_t *)cd;
	as.client_data_len = strlen(cd);
	as.sig = sig;
	as.sig_len = sign_ceremony(&f->keys[2], ad, ad_len, cd, sig);
	as.user_handle = other;
	as.user_handle_len = sizeof other;
	assert_int_equal(gh_auth_webauthn_assert_verify(&f->exp, &st, &as,
	    &res, &why), GH_ERR_DENIED);
	assert_int_equal(why, GH_WA_USER_HANDLE_MISMATCH);
	as.user_handle = user_handle;
	assert_int_equal(gh_auth_webauthn_assert_verify(&f->exp, &st, &as,
	    &res, &why), GH_OK);
	assert_memory_equal(res.user_handle, user_handle, sizeof user_handle);
}

static void
test_every_reason_has_a_stable_name(void **state)
{
	(void)state;
	assert_string_equal(gh_wa_reason_str(GH_WA_WRONG_TYPE), "wrong_type");
	assert_string_equal(gh_wa_reason_str(GH_WA_COUNTER_REGRESSION),
	    "counter_regression");
	assert_string_equal(gh_wa_reason_str(GH_WA_INTERNAL), "internal");
	assert_string_equal(gh_wa_reason_str((enum gh_wa_reason)999),
	    "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_registration_with_none_attestation_succeeds_for_all_algorithms),
		cmocka_unit_test(
		    test_registration_with_packed_self_attestation_succeeds_for_all_algorithms),
		cmocka_unit_test(
		    test_registration_with_packed_x5c_attestation_succeeds),
		cmocka_unit_test(
		    test_registration_refuses_a_tampered_attestation_signature),
		cmocka_unit_test(
		    test_registration_refuses_each_client_data_mismatch),
		cmocka_unit_test(test_registration_refuses_malformed_client_data),
		cmocka_unit_test(
		    test_registration_refuses_a_wrong_rp_id_and_missing_flags),
		cmocka_unit_test(test_registration_refuses_other_formats),
		cmocka_unit_test(
		    test_registration_refuses_an_unsupported_algorithm),
		cmocka_unit_test(
		    test_registration_refuses_malformed_cbor_and_truncated_auth_data),
		cmocka_unit_test(
		    test_registration_refuses_oversize_inputs_and_misuse),
		cmocka_unit_test(test_assertion_succeeds_for_all_algorithms),
		cmocka_unit_test(
		    test_usernameless_assertion_returns_the_user_handle),
		cmocka_unit_test(test_assertion_refuses_each_mismatch),
		cmocka_unit_test(
		    test_assertion_refuses_a_counter_regression_but_allows_zero_zero),
		cmocka_unit_test(
		    test_assertion_refuses_malformed_and_oversize_input),
		cmocka_unit_test(test_assertion_refuses_another_users_handle),
		cmocka_unit_test(test_every_reason_has_a_stable_name),
	};

	return cmocka_run_group_tests_name("auth_webauthn", tests, group_setup,
	    group_teardown);
}
