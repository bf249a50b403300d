/*
 * webauthn.c: verification of WebAuthn registration and assertion
 * responses (see webauthn.h), with libfido2 for the signatures and libcbor
 * for the attestationObject.
 *
 * Untrusted input: clientDataJSON, attestationObject, authenticatorData,
 * the signature and the userHandle, all from the browser. Every length is
 * checked against a ceiling before anything parses it. CBOR is first walked
 * by cbor_scan below, which refuses indefinite lengths, tags, reserved
 * encodings, nesting deeper than CBOR_DEPTH_MAX and any count larger than
 * the bytes left; only then do libcbor and libfido2 see it, so that neither
 * can be made to preallocate for a forged count.
 *
 * Secrets: none (the challenge is a public nonce; keys are public keys).
 */
#include <pthread.h>
#include <string.h>

#include <cbor.h>
#include <fido.h>
#include <fido/eddsa.h>
#include <fido/es256.h>
#include <fido/rs256.h>
#include <jansson.h>

#include "auth/webauthn.h"

#define CBOR_DEPTH_MAX 8	/* attObj > attStmt > x5c > cert is depth 3 */
#define RP_ID_MAX 253		/* a DNS name */
#define ORIGIN_MAX 1024
#define AD_FIXED_LEN 37		/* rpIdHash, flags, signCount */

static const char *const reason_names[] = {
	[GH_WA_OK] = "ok",
	[GH_WA_BAD_PARAMETER] = "bad_parameter",
	[GH_WA_TOO_LARGE] = "too_large",
	[GH_WA_MALFORMED_CLIENT_DATA] = "malformed_client_data",
	[GH_WA_WRONG_TYPE] = "wrong_type",
	[GH_WA_CHALLENGE_MISMATCH] = "challenge_mismatch",
	[GH_WA_ORIGIN_MISMATCH] = "origin_mismatch",
	[GH_WA_CROSS_ORIGIN] = "cross_origin",
	[GH_WA_MALFORMED_CBOR] = "malformed_cbor",
	[GH_WA_MALFORMED_AUTH_DATA] = "malformed_auth_data",
	[GH_WA_UNSUPPORTED_FORMAT] = "unsupported_format",
	[GH_WA_UNSUPPORTED_ALGORITHM] = "unsupported_algorithm",
	[GH_WA_RP_ID_MISMATCH] = "rp_id_mismatch",
	[GH_WA_USER_PRESENCE_MISSING] = "user_presence_missing",
	[GH_WA_USER_VERIFICATION_MISSING] = "user_verification_missing",
	[GH_WA_ATTESTED_DATA_MISSING] = "attested_data_missing",
	[GH_WA_BAD_ATTESTATION] = "bad_attestation",
	[GH_WA_BAD_SIGNATURE] = "bad_signature",
	[GH_WA_COUNTER_REGRESSION] = "counter_regression",
	[GH_WA_USER_HANDLE_MISMATCH] = "user_handle_mismatch",
	[GH_WA_INTERNAL] = "internal",
};

const char *
gh_wa_reason_str(enum gh_wa_reason r)
{
	if ((unsigned)r >= sizeof reason_names / sizeof reason_names[0] ||
	    reason_names[r] == NULL)
		return "unknown";
	return reason_names[r];
}

static gh_err
reason_err(enum gh_wa_reason r)
{
	switch (r) {
	case GH_WA_OK:
		return GH_OK;
	case GH_WA_TOO_LARGE:
		return GH_ERR_LIMIT;
	case GH_WA_BAD_PARAMETER:
	case GH_WA_MALFORMED_CLIENT_DATA:
	case GH_WA_MALFORMED_CBOR:
	case GH_WA_MALFORMED_AUTH_DATA:
	case GH_WA_UNSUPPORTED_FORMAT:
	case GH_WA_UNSUPPORTED_ALGORITHM:
		return GH_ERR_INVALID;
	case GH_WA_INTERNAL:
		return GH_ERR_INTERNAL;
	default:
		return GH_ERR_DENIED;
	}
}

static pthread_once_t fido_once = PTHREAD_ONCE_INIT;

static void
fido_setup(void)
{
	fido_init(0);
}

/* ---- strict CBOR pre-scan ------------------------------------------------ */

/* Reads the head of the item at p: major type, argument and head length. */
static bool
cbor_head(const uint8_t *p, size_t len, unsigned *major, uint64_t *arg,
    size_t *hlen)
{
	unsigned ai;
	size_t n, i;

	if (len < 1)
		return false;
	*major = p[0] >> 5;
	ai = p[0] & 0x1f;
	if (ai < 24) {
		*arg = ai;
		*hlen = 1;
		return true;
	}
	switch (ai) {
	case 24: n = 1; break;
	case 25: n = 2; break;
	case 26: n = 4; break;
	case 27: n = 8; break;
	default:
		return false;	/* reserved, or indefinite length */
	}
	if (len - 1 < n)
		return false;
	*arg = 0;
	for (i = 0; i < n; i++)
		*arg = *arg << 8 | p[1 + i];
	*hlen = 1 + n;
	return true;
}

/*
 * Walks one well-formed item at p[0..len) and sets *used to its length.
 * Refuses what WebAuthn never needs and what would let a parser allocate
 * more than the input: indefinite lengths, tags, simple values other than
 * false/true/null, counts above the bytes left, deep nesting.
 */
static bool
cbor_scan(const uint8_t *p, size_t len, int depth, size_t *used)
{
	unsigned major, ai;
	uint64_t arg, i, n;
	size_t hlen, off, sub;

	if (depth > CBOR_DEPTH_MAX || !cbor_head(p, len, &major, &arg, &hlen))
		return false;
	off = hlen;
	switch (major) {
	case 0:
	case 1:
		break;
	case 2:
	case 3:
		if (arg > len - off)
			return false;
		off += (size_t)arg;
		break;
	case 4:
	case 5:
		/* Each item takes at least one byte. */
		if (arg > len - off || (major == 5 && arg > (len - off) / 2))
			return false;
		n = major == 5 ? arg * 2 : arg;
		for (i = 0; i < n; i++) {
			if (!cbor_scan(p + off, len - off, depth + 1, &sub))
				return false;
			off += sub;
		}
		break;
	case 7:
		ai = p[0] & 0x1f;
		if (ai < 20 || ai == 23 || ai == 24)
			return false;
		break;
	default:
		return false;	/* tags */
	}
	*used = off;
	return true;
}

/* Scans then loads exactly one item spanning all of p[0..len). */
static enum gh_wa_reason
cbor_load_strict(const uint8_t *p, size_t len, cbor_item_t **out)
{
	struct cbor_load_result res;
	size_t used;

	*out = NULL;
	if (!cbor_scan(p, len, 0, &used) || used != len)
		return GH_WA_MALFORMED_CBOR;
	*out = cbor_load(p, len, &res);
	if (*out == NULL) {
		return res.error.code == CBOR_ERR_MEMERROR ? GH_WA_INTERNAL :
		    GH_WA_MALFORMED_CBOR;
	}
	if (res.read != len) {
		cbor_decref(out);
		return GH_WA_MALFORMED_CBOR;
	}
	return GH_WA_OK;
}

static bool
cbor_text_is(const cbor_item_t *it, const char *s)
{
	size_t n = strlen(s);

	return cbor_isa_string(it) && cbor_string_is_definite(it) &&
	    cbor_string_length(it) == n &&
	    memcmp(cbor_string_handle(it), s, n) == 0;
}

/* An integer item in [-2^31, 2^31) as an int. */
static bool
cbor_small_int(const cbor_item_t *it, int *out)
{
	uint64_t v;

	if (!cbor_isa_uint(it) && !cbor_isa_negint(it))
		return false;
	v = cbor_get_int(it);
	if (v > INT32_MAX)
		return false;
	*out = cbor_isa_uint(it) ? (int)v : -1 - (int)v;
	return true;
}

/* ---- clientDataJSON ------------------------------------------------------ */

static bool
json_str_eq(const json_t *s, const char *want, size_t want_len)
{
	return json_string_length(s) == want_len &&
	    memcmp(json_string_value(s), want, want_len) == 0;
}

/*
 * Checks clientDataJSON: valid UTF-8 JSON object without duplicate keys,
 * type == want_type, challenge == base64url(expected) (constant time),
 * origin one of the allowed ones, crossOrigin absent or false.
 */
static enum gh_wa_reason
client_data_check(const struct gh_wa_expect *exp, const char *want_type,
    const uint8_t *cd, size_t cd_len)
{
	char want_chal[GH_WA_CHALLENGE_MAX * 2];
	size_t want_chal_len, i;
	json_t *root = NULL, *type, *chal, *origin, *cross;
	json_error_t jerr;
	enum gh_wa_reason r;

	if (cd_len == 0 || !gh_utf8_valid((const char *)cd, cd_len))
		return GH_WA_MALFORMED_CLIENT_DATA;
	root = json_loadb((const char *)cd, cd_len, JSON_REJECT_DUPLICATES,
	    &jerr);
	r = GH_WA_MALFORMED_CLIENT_DATA;
	if (root == NULL || !json_is_object(root))
		goto out;
	type = json_object_get(root, "type");
	chal = json_object_get(root, "challenge");
	origin = json_object_get(root, "origin");
	cross = json_object_get(root, "crossOrigin");
	if (!json_is_string(type) || !json_is_string(chal) ||
	    !json_is_string(origin) || (cross != NULL && !json_is_boolean(cross)))
		goto out;

	r = GH_WA_WRONG_TYPE;
	if (!json_str_eq(type, want_type, strlen(want_type)))
		goto out;

	/* The challenge's length is public; its bytes are compared in
	 * constant time. */
	want_chal_len = gh_b64url_len(exp->challenge_len);
	gh_b64url_encode(exp->challenge, exp->challenge_len, want_chal);
	r = GH_WA_CHALLENGE_MISMATCH;
	if (json_string_length(chal) != want_chal_len ||
	    !gh_ct_eq(json_string_value(chal), want_chal, want_chal_len))
		goto out;

	r = GH_WA_ORIGIN_MISMATCH;
	for (i = 0; i < exp->origins_len; i++) {
		if (json_str_eq(origin, exp->origins[i],
		    strlen(exp->origins[i]))) {
			r = GH_WA_OK;
			break;
		}
	}
	if (r != GH_WA_OK)
		goto out;

	if (json_is_true(cross))
		r = GH_WA_CROSS_ORIGIN;
out:
	json_decref(root);
	return r;
}

/* ---- authenticatorData --------------------------------------------------- */

struct authdata {
	const uint8_t *rp_id_hash;	/* 32 bytes */
	uint8_t flags;
	uint32_t sign_count;
	/* With GH_WA_FLAG_AT: */
	const uint8_t *aaguid;		/* 16 bytes */
	const uint8_t *cred_id;
	size_t cred_id_len;
	const uint8_t *cose_key;
	size_t cose_key_len;
};

/* Splits authenticatorData into its fields. The COSE key and the
 * extensions must be well-formed CBOR maps and nothing may follow them. */
static enum gh_wa_reason
authdata_parse(const uint8_t *p, size_t len, struct authdata *ad)
{
	size_t off, used;

	memset(ad, 0, sizeof *ad);
	if (len < AD_FIXED_LEN)
		return GH_WA_MALFORMED_AUTH_DATA;
	ad->rp_id_hash = p;
	ad->flags = p[32];
	ad->sign_count = (uint32_t)p[33] << 24 | (uint32_t)p[34] << 16 |
	    (uint32_t)p[35] << 8 | p[36];
	off = AD_FIXED_LEN;
	/* Backed up but not backup eligible is contradictory (WebAuthn L3). */
	if ((ad->flags & GH_WA_FLAG_BS) && !(ad->flags & GH_WA_FLAG_BE))
		return GH_WA_MALFORMED_AUTH_DATA;

	if (ad->flags & GH_WA_FLAG_AT) {
		if (len - off < GH_WA_AAGUID_LEN + 2)
			return GH_WA_MALFORMED_AUTH_DATA;
		ad->aaguid = p + off;
		off += GH_WA_AAGUID_LEN;
		ad->cred_id_len = (size_t)p[off] << 8 | p[off + 1];
		off += 2;
		if (ad->cred_id_len == 0 || ad->cred_id_len > GH_WA_CRED_ID_MAX ||
		    ad->cred_id_len > len - off)
			return GH_WA_MALFORMED_AUTH_DATA;
		ad->cred_id = p + off;
		off += ad->cred_id_len;
		if (off == len || p[off] >> 5 != 5 ||
		    !cbor_scan(p + off, len - off, 0, &used))
			return GH_WA_MALFORMED_AUTH_DATA;
		ad->cose_key = p + off;
		ad->cose_key_len = used;
		off += used;
	}
	if (ad->flags & GH_WA_FLAG_ED) {
		if (off == len || p[off] >> 5 != 5 ||
		    !cbor_scan(p + off, len - off, 0, &used))
			return GH_WA_MALFORMED_AUTH_DATA;
		off += used;
	}
	if (off != len)
		return GH_WA_MALFORMED_AUTH_DATA;
	return GH_WA_OK;
}

/* rpIdHash, then UP always, then UV when the policy wants it. */
static enum gh_wa_reason
authdata_policy(const struct gh_wa_expect *exp, const struct authdata *ad)
{
	uint8_t want[GH_SHA256_LEN];

	gh_sha256(exp->rp_id, strlen(exp->rp_id), want);
	if (!gh_ct_eq(want, ad->rp_id_hash, GH_SHA256_LEN))
		return GH_WA_RP_ID_MISMATCH;
	if (!(ad->flags & GH_WA_FLAG_UP))
		return GH_WA_USER_PRESENCE_MISSING;
	if (exp->require_uv && !(ad->flags & GH_WA_FLAG_UV))
		return GH_WA_USER_VERIFICATION_MISSING;
	return GH_WA_OK;
}

static bool
alg_supported(int alg)
{
	return alg == GH_WA_ALG_ES256 || alg == GH_WA_ALG_EDDSA ||
	    alg == GH_WA_ALG_RS256;
}

/* Reads the alg (label 3) of a COSE key; libfido2 checks the rest. */
static enum gh_wa_reason
cose_key_alg(const uint8_t *p, size_t len, int *alg)
{
	cbor_item_t *key = NULL;
	struct cbor_pair *pairs;
	enum gh_wa_reason r;
	size_t i, n;
	int label, v;
	bool seen = false;

	r = cbor_load_strict(p, len, &key);
	if (r != GH_WA_OK)
		return r == GH_WA_MALFORMED_CBOR ? GH_WA_MALFORMED_AUTH_DATA : r;
	r = GH_WA_MALFORMED_AUTH_DATA;
	if (!cbor_isa_map(key) || !cbor_map_is_definite(key))
		goto out;
	pairs = cbor_map_handle(key);
	n = cbor_map_size(key);
	for (i = 0; i < n; i++) {
		if (!cbor_small_int(pairs[i].key, &label))
			goto out;	/* COSE_Key labels here are integers */
		if (label != 3)
			continue;
		if (seen || !cbor_small_int(pairs[i].value, &v))
			goto out;
		seen = true;
		*alg = v;
	}
	if (!seen)
		goto out;
	r = alg_supported(*alg) ? GH_WA_OK : GH_WA_UNSUPPORTED_ALGORITHM;
out:
	cbor_decref(&key);
	return r;
}

/* ---- attestationObject --------------------------------------------------- */

enum att_fmt { FMT_NONE, FMT_PACKED };

struct attobj {
	cbor_item_t *root;		/* owns the items below */
	enum att_fmt fmt;
	cbor_item_t *att_stmt;		/* borrowed from root */
	const uint8_t *auth_data;	/* borrowed from root */
	size_t auth_data_len;
};

/* Splits the attestationObject: a map of exactly the text keys "fmt",
 * "attStmt" and "authData". On success the caller decrefs ao->root. */
static enum gh_wa_reason
attobj_split(const uint8_t *p, size_t len, struct attobj *ao)
{
	const cbor_item_t *fmt = NULL, *stmt = NULL, *adata = NULL;
	const cbor_item_t **slot;
	struct cbor_pair *pairs;
	enum gh_wa_reason r;
	size_t i, n;

	memset(ao, 0, sizeof *ao);
	r = cbor_load_strict(p, len, &ao->root);
	if (r != GH_WA_OK)
		return r;
	r = GH_WA_MALFORMED_CBOR;
	if (!cbor_isa_map(ao->root) || !cbor_map_is_definite(ao->root))
		goto fail;
	pairs = cbor_map_handle(ao->root);
	n = cbor_map_size(ao->root);
	for (i = 0; i < n; i++) {
		if (cbor_text_is(pairs[i].key, "fmt"))
			slot = &fmt;
		else if (cbor_text_is(pairs[i].key, "attStmt"))
			slot = &stmt;
		else if (cbor_text_is(pairs[i].key, "authData"))
			slot = &adata;
		else
			goto fail;	/* unknown or non-text key */
		if (*slot != NULL)
			goto fail;	/* duplicate */
		*slot = pairs[i].value;
	}
	if (fmt == NULL || stmt == NULL || adata == NULL ||
	    !cbor_isa_string(fmt) || !cbor_string_is_definite(fmt) ||
	    !cbor_isa_map(stmt) || !cbor_map_is_definite(stmt) ||
	    !cbor_isa_bytestring(adata) || !cbor_bytestring_is_definite(adata))
		goto fail;
	if (cbor_text_is(fmt, "none"))
		ao->fmt = FMT_NONE;
	else if (cbor_text_is(fmt, "packed"))
		ao->fmt = FMT_PACKED;
	else {
		r = GH_WA_UNSUPPORTED_FORMAT;
		goto fail;
	}
	ao->att_stmt = (cbor_item_t *)stmt;
	ao->auth_data = cbor_bytestring_handle(adata);
	ao->auth_data_len = cbor_bytestring_length(adata);
	return GH_WA_OK;
fail:
	cbor_decref(&ao->root);
	return r;
}

/*
 * Checks the shape of a packed attStmt: "alg" (an integer), "sig" (bytes)
 * and optionally "x5c" (a non-empty array of byte strings); nothing else.
 */
static enum gh_wa_reason
packed_stmt_shape(const cbor_item_t *stmt, int *alg, bool *has_x5c)
{
	struct cbor_pair *pairs = cbor_map_handle(stmt);
	size_t i, j, n = cbor_map_size(stmt);
	cbor_item_t **certs;
	bool seen_alg = false, seen_sig = false;

	*has_x5c = false;
	for (i = 0; i < n; i++) {
		const cbor_item_t *k = pairs[i].key, *v = pairs[i].value;

		if (cbor_text_is(k, "alg") && !seen_alg) {
			if (!cbor_small_int(v, alg))
				return GH_WA_BAD_ATTESTATION;
			seen_alg = true;
		} else if (cbor_text_is(k, "sig") && !seen_sig) {
			if (!cbor_isa_bytestring(v) ||
			    !cbor_bytestring_is_definite(v) ||
			    cbor_bytestring_length(v) == 0)
				return GH_WA_BAD_ATTESTATION;
			seen_sig = true;
		} else if (cbor_text_is(k, "x5c") && !*has_x5c) {
			if (!cbor_isa_array(v) || !cbor_array_is_definite(v) ||
			    cbor_array_size(v) == 0)
				return GH_WA_BAD_ATTESTATION;
			certs = cbor_array_handle(v);
			for (j = 0; j < cbor_array_size(v); j++) {
				if (!cbor_isa_bytestring(certs[j]) ||
				    !cbor_bytestring_is_definite(certs[j]))
					return GH_WA_BAD_ATTESTATION;
			}
			*has_x5c = true;
		} else {
			return GH_WA_BAD_ATTESTATION;
		}
	}
	if (!seen_alg || !seen_sig)
		return GH_WA_BAD_ATTESTATION;
	return GH_WA_OK;
}

/* Verifies a packed attestation statement with libfido2, whose cred c
 * already holds the type, rp, clientData and authData. */
static enum gh_wa_reason
packed_verify(fido_cred_t *c, const cbor_item_t *stmt, int cred_alg,
    enum gh_wa_att_type *att_type)
{
	unsigned char *buf = NULL;
	size_t buf_cap = 0, buf_len;
	enum gh_wa_reason r;
	bool has_x5c;
	int alg = 0, rc;

	r = packed_stmt_shape(stmt, &alg, &has_x5c);
	if (r != GH_WA_OK)
		return r;
	/* Self attestation is signed by the credential key itself. */
	if (!has_x5c && alg != cred_alg)
		return GH_WA_BAD_ATTESTATION;
	buf_len = cbor_serialize_alloc(stmt, &buf, &buf_cap);
	if (buf_len == 0)
		return GH_WA_INTERNAL;
	r = GH_WA_BAD_ATTESTATION;
	if (fido_cred_set_fmt(c, "packed") != FIDO_OK ||
	    fido_cred_set_attstmt(c, buf, buf_len) != FIDO_OK)
		goto out;
	rc = has_x5c ? fido_cred_verify(c) : fido_cred_verify_self(c);
	if (rc != FIDO_OK)
		goto out;
	*att_type = has_x5c ? GH_WA_ATT_BASIC : GH_WA_ATT_SELF;
	r = GH_WA_OK;
out:
	free(buf);
	return r;
}

static enum gh_wa_reason
expect_check(const struct gh_wa_expect *exp)
{
	size_t i, n;

	if (exp == NULL || exp->challenge == NULL ||
	    exp->challenge_len < GH_WA_CHALLENGE_MIN ||
	    exp->challenge_len > GH_WA_CHALLENGE_MAX || exp->rp_id == NULL ||
	    exp->origins == NULL || exp->origins_len == 0 ||
	    exp->origins_len > GH_WA_ORIGINS_MAX)
		return GH_WA_BAD_PARAMETER;
	n = strnlen(exp->rp_id, RP_ID_MAX + 1);
	if (n == 0 || n > RP_ID_MAX)
		return GH_WA_BAD_PARAMETER;
	for (i = 0; i < exp->origins_len; i++) {
		if (exp->origins[i] == NULL ||
		    strnlen(exp->origins[i], ORIGIN_MAX + 1) > ORIGIN_MAX)
			return GH_WA_BAD_PARAMETER;
	}
	return GH_WA_OK;
}

static enum gh_wa_reason
register_verify(const struct gh_wa_expect *exp, const uint8_t *att_obj,
    size_t att_obj_len, const uint8_t *cd, size_t cd_len,
    struct gh_wa_credential *cred)
{
	struct attobj ao = { 0 };
	struct authdata ad;
	fido_cred_t *c = NULL;
	enum gh_wa_reason r;
	int alg = 0;

	r = expect_check(exp);
	if (r != GH_WA_OK)
		return r;
	if (att_obj == NULL || cd == NULL)
		return GH_WA_BAD_PARAMETER;
	if (att_obj_len > GH_WA_ATT_OBJ_MAX || cd_len > GH_WA_CLIENT_DATA_MAX)
		return GH_WA_TOO_LARGE;

	r = client_data_check(exp, "webauthn.create", cd, cd_len);
	if (r != GH_WA_OK)
		goto out;
	r = attobj_split(att_obj, att_obj_len, &ao);
	if (r != GH_WA_OK)
		goto out;
	r = authdata_parse(ao.auth_data, ao.auth_data_len, &ad);
	if (r != GH_WA_OK)
		goto out;
	r = authdata_policy(exp, &ad);
	if (r != GH_WA_OK)
		goto out;
	r = GH_WA_ATTESTED_DATA_MISSING;
	if (!(ad.flags & GH_WA_FLAG_AT))
		goto out;
	r = cose_key_alg(ad.cose_key, ad.cose_key_len, &alg);
	if (r != GH_WA_OK)
		goto out;

	r = GH_WA_INTERNAL;
	pthread_once(&fido_once, fido_setup);
	if ((c = fido_cred_new()) == NULL)
		goto out;
	r = GH_WA_INTERNAL;
	if (fido_cred_set_type(c, alg) != FIDO_OK ||
	    fido_cred_set_rp(c, exp->rp_id, NULL) != FIDO_OK ||
	    fido_cred_set_clientdata(c, cd, cd_len) != FIDO_OK ||
	    fido_cred_set_uv(c, exp->require_uv ? FIDO_OPT_TRUE :
	    FIDO_OPT_OMIT) != FIDO_OK)
		goto out;
	/* libfido2 decodes the COSE key and checks it against alg. */
	r = GH_WA_MALFORMED_AUTH_DATA;
	if (fido_cred_set_authdata_raw(c, ao.auth_data, ao.auth_data_len) !=
	    FIDO_OK)
		goto out;

	if (ao.fmt == FMT_NONE) {
		r = GH_WA_BAD_ATTESTATION;
		if (cbor_map_size(ao.att_stmt) != 0)
			goto out;
		cred->att_type = GH_WA_ATT_NONE;
	} else {
		r = packed_verify(c, ao.att_stmt, alg, &cred->att_type);
		if (r != GH_WA_OK)
			goto out;
	}

	r = GH_WA_MALFORMED_AUTH_DATA;
	if (fido_cred_type(c) != alg || fido_cred_pubkey_ptr(c) == NULL ||
	    fido_cred_pubkey_len(c) == 0 ||
	    fido_cred_pubkey_len(c) > GH_WA_PUBKEY_MAX)
		goto out;
	memcpy(cred->id, ad.cred_id, ad.cred_id_len);
	cred->id_len = ad.cred_id_len;
	cred->alg = alg;
	memcpy(cred->pubkey, fido_cred_pubkey_ptr(c), fido_cred_pubkey_len(c));
	cred->pubkey_len = fido_cred_pubkey_len(c);
	cred->sign_count = ad.sign_count;
	cred->flags = ad.flags;
	cred->uv = (ad.flags & GH_WA_FLAG_UV) != 0;
	cred->backup_eligible = (ad.flags & GH_WA_FLAG_BE) != 0;
	cred->backup_state = (ad.flags & GH_WA_FLAG_BS) != 0;
	memcpy(cred->aaguid, ad.aaguid, GH_WA_AAGUID_LEN);
	r = GH_WA_OK;
out:
	fido_cred_free(&c);
	if (ao.root != NULL)
		cbor_decref(&ao.root);
	return r;
}

gh_err
gh_auth_webauthn_register_verify(const struct gh_wa_expect *exp,
    const uint8_t *att_obj, size_t att_obj_len, const uint8_t *client_data,
    size_t client_data_len, struct gh_wa_credential *cred,
    enum gh_wa_reason *reason)
{
	enum gh_wa_reason r;

	if (cred == NULL) {
		r = GH_WA_BAD_PARAMETER;
		goto out;
	}
	memset(cred, 0, sizeof *cred);
	r = register_verify(exp, att_obj, att_obj_len, client_data,
	    client_data_len, cred);
	if (r != GH_WA_OK)
		memset(cred, 0, sizeof *cred);
out:
	if (r != GH_WA_OK)
		GH_LOG_INFO("webauthn registration refused: %s",
		    gh_wa_reason_str(r));
	if (reason != NULL)
		*reason = r;
	return reason_err(r);
}

/* ---- assertion ----------------------------------------------------------- */

/* Verifies the signature with the stored key through libfido2. */
static enum gh_wa_reason
assert_sig_verify(const struct gh_wa_expect *exp,
    const struct gh_wa_stored *st, const struct gh_wa_assertion *as)
{
	es256_pk_t *es = NULL;
	eddsa_pk_t *ed = NULL;
	rs256_pk_t *rs = NULL;
	fido_assert_t *a = NULL;
	const void *pk = NULL;
	enum gh_wa_reason r = GH_WA_INTERNAL;
	int rc;

	pthread_once(&fido_once, fido_setup);
	switch (st->alg) {
	case GH_WA_ALG_ES256:
		if ((es = es256_pk_new()) == NULL)
			goto out;
		rc = es256_pk_from_ptr(es, st->pubkey, st->pubkey_len);
		pk = es;
		break;
	case GH_WA_ALG_EDDSA:
		if ((ed = eddsa_pk_new()) == NULL)
			goto out;
		rc = eddsa_pk_from_ptr(ed, st->pubkey, st->pubkey_len);
		pk = ed;
		break;
	case GH_WA_ALG_RS256:
		if ((rs = rs256_pk_new()) == NULL)
			goto out;
		rc = rs256_pk_from_ptr(rs, st->pubkey, st->pubkey_len);
		pk = rs;
		break;
	default:
		r = GH_WA_UNSUPPORTED_ALGORITHM;
		goto out;
	}
	/* The stored key is ours; a bad one is a caller's error. */
	r = GH_WA_BAD_PARAMETER;
	if (rc != FIDO_OK)
		goto out;

	r = GH_WA_INTERNAL;
	if ((a = fido_assert_new()) == NULL ||
	    fido_assert_set_count(a, 1) != FIDO_OK ||
	    fido_assert_set_rp(a, exp->rp_id) != FIDO_OK ||
	    fido_assert_set_clientdata(a, as->client_data,
	    as->client_data_len) != FIDO_OK ||
	    fido_assert_set_up(a, FIDO_OPT_TRUE) != FIDO_OK ||
	    fido_assert_set_uv(a, exp->require_uv ? FIDO_OPT_TRUE :
	    FIDO_OPT_OMIT) != FIDO_OK)
		goto out;
	r = GH_WA_MALFORMED_AUTH_DATA;
	if (fido_assert_set_authdata_raw(a, 0, as->auth_data,
	    as->auth_data_len) != FIDO_OK)
		goto out;
	r = GH_WA_BAD_SIGNATURE;
	if (fido_assert_set_sig(a, 0, as->sig, as->sig_len) != FIDO_OK ||
	    fido_assert_verify(a, 0, st->alg, pk) != FIDO_OK)
		goto out;
	r = GH_WA_OK;
out:
	fido_assert_free(&a);
	es256_pk_free(&es);
	eddsa_pk_free(&ed);
	rs256_pk_free(&rs);
	return r;
}

static enum gh_wa_reason
assert_verify(const struct gh_wa_expect *exp, const struct gh_wa_stored *st,
    const struct gh_wa_assertion *as, struct gh_wa_assert_result *res)
{
	struct authdata ad;
	enum gh_wa_reason r;

	r = expect_check(exp);
	if (r != GH_WA_OK)
		return r;
	if (st == NULL || st->pubkey == NULL || st->pubkey_len == 0 ||
	    st->pubkey_len > GH_WA_PUBKEY_MAX ||
	    st->user_handle_len > GH_WA_USER_HANDLE_MAX ||
	    (st->user_handle == NULL && st->user_handle_len != 0) ||
	    as == NULL || as->auth_data == NULL || as->client_data == NULL ||
	    as->sig == NULL ||
	    (as->user_handle == NULL && as->user_handle_len != 0))
		return GH_WA_BAD_PARAMETER;
	if (!alg_supported(st->alg))
		return GH_WA_UNSUPPORTED_ALGORITHM;
	if (as->auth_data_len > GH_WA_AUTH_DATA_MAX ||
	    as->client_data_len > GH_WA_CLIENT_DATA_MAX ||
	    as->sig_len > GH_WA_SIG_MAX ||
	    as->user_handle_len > GH_WA_USER_HANDLE_MAX)
		return GH_WA_TOO_LARGE;

	r = client_data_check(exp, "webauthn.get", as->client_data,
	    as->client_data_len);
	if (r != GH_WA_OK)
		return r;
	r = authdata_parse(as->auth_data, as->auth_data_len, &ad);
	if (r != GH_WA_OK)
		return r;
	/* Assertions carry no attested credential data. */
	if (ad.flags & GH_WA_FLAG_AT)
		return GH_WA_MALFORMED_AUTH_DATA;
	r = authdata_policy(exp, &ad);
	if (r != GH_WA_OK)
		return r;
	if (as->sig_len == 0)
		return GH_WA_BAD_SIGNATURE;
	r = assert_sig_verify(exp, st, as);
	if (r != GH_WA_OK)
		return r;

	/* Checked only once the signature holds, so that the refusal means a
	 * genuine authenticator (or a clone of it) signed an old count. */
	if ((st->sign_count != 0 || ad.sign_count != 0) &&
	    ad.sign_count <= st->sign_count)
		return GH_WA_COUNTER_REGRESSION;
	if (st->user_handle_len != 0 && as->user_handle_len != 0 &&
	    (st->user_handle_len != as->user_handle_len ||
	    !gh_ct_eq(st->user_handle, as->user_handle, as->user_handle_len)))
		return GH_WA_USER_HANDLE_MISMATCH;

	res->sign_count = ad.sign_count;
	res->flags = ad.flags;
	res->uv = (ad.flags & GH_WA_FLAG_UV) != 0;
	res->backup_eligible = (ad.flags & GH_WA_FLAG_BE) != 0;
	res->backup_state = (ad.flags & GH_WA_FLAG_BS) != 0;
	if (as->user_handle_len != 0)
		memcpy(res->user_handle, as->user_handle, as->user_handle_len);
	res->user_handle_len = as->user_handle_len;
	return GH_WA_OK;
}

gh_err
gh_auth_webauthn_assert_verify(const struct gh_wa_expect *exp,
    const struct gh_wa_stored *stored, const struct gh_wa_assertion *as,
    struct gh_wa_assert_result *res, enum gh_wa_reason *reason)
{
	enum gh_wa_reason r;

	if (res == NULL) {
		r = GH_WA_BAD_PARAMETER;
		goto out;
	}
	memset(res, 0, sizeof *res);
	r = assert_verify(exp, stored, as, res);
	if (r != GH_WA_OK)
		memset(res, 0, sizeof *res);
out:
	if (r != GH_WA_OK)
		GH_LOG_INFO("webauthn assertion refused: %s",
		    gh_wa_reason_str(r));
	if (reason != NULL)
		*reason = r;
	return reason_err(r);
}
