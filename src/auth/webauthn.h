/*
 * webauthn.h: server-side verification of WebAuthn registration
 * (attestation) and authentication (assertion) responses.
 *
 * Untrusted input: everything the browser sends (clientDataJSON,
 * attestationObject, authenticatorData, signature, userHandle). Each length
 * is bounded below, CBOR is walked by a strict pre-scan (definite lengths,
 * bounded counts and depth) before libcbor or libfido2 see it, and every
 * refusal is an error return with a reason, never a crash.
 *
 * Secrets: none. Challenges are single-use nonces owned by the caller (who
 * also expires them); public keys and credential ids are public.
 *
 * Not done here: challenge generation and expiry, storage, attestation
 * trust (an x5c chain is checked for the signature only, as libfido2 does;
 * it is not validated against any root), and the HTTP mapping.
 */
#ifndef GH_WEBAUTHN_H
#define GH_WEBAUTHN_H

#include "core/core.h"

#define GH_WA_CLIENT_DATA_MAX 8192	/* clientDataJSON bytes */
#define GH_WA_ATT_OBJ_MAX 16384		/* attestationObject bytes */
#define GH_WA_AUTH_DATA_MAX 16384	/* authenticatorData bytes */
#define GH_WA_SIG_MAX 1024		/* assertion signature bytes */
#define GH_WA_CRED_ID_MAX 1023		/* credential id bytes (spec limit) */
#define GH_WA_USER_HANDLE_MAX 64	/* user handle bytes (spec limit) */
#define GH_WA_CHALLENGE_MIN 16		/* expected challenge bytes */
#define GH_WA_CHALLENGE_MAX 64
#define GH_WA_ORIGINS_MAX 16		/* allowed origins per call */
#define GH_WA_PUBKEY_MAX 259		/* RS256: 256-byte n then 3-byte e */
#define GH_WA_AAGUID_LEN 16

/* authenticatorData flag bits. */
#define GH_WA_FLAG_UP 0x01u	/* user present */
#define GH_WA_FLAG_UV 0x04u	/* user verified */
#define GH_WA_FLAG_BE 0x08u	/* backup eligible (a syncable passkey) */
#define GH_WA_FLAG_BS 0x10u	/* backed up */
#define GH_WA_FLAG_AT 0x40u	/* attested credential data present */
#define GH_WA_FLAG_ED 0x80u	/* extensions present */

/* COSE algorithm identifiers accepted for credentials. */
enum gh_wa_alg {
	GH_WA_ALG_ES256 = -7,
	GH_WA_ALG_EDDSA = -8,
	GH_WA_ALG_RS256 = -257,
};

/*
 * Why a response was refused. The functions return a gh_err that picks the
 * response (GH_ERR_INVALID: malformed, GH_ERR_LIMIT: oversize,
 * GH_ERR_DENIED: well-formed but refused, GH_ERR_NOMEM/INTERNAL) and set a
 * reason for the audit record and the client. The numbers and the strings
 * of gh_wa_reason_str are stable; new reasons are appended.
 */
enum gh_wa_reason {
	GH_WA_OK = 0,			/* "ok" */
	GH_WA_BAD_PARAMETER,		/* "bad_parameter": caller misuse */
	GH_WA_TOO_LARGE,		/* "too_large" */
	GH_WA_MALFORMED_CLIENT_DATA,	/* "malformed_client_data" */
	GH_WA_WRONG_TYPE,		/* "wrong_type" */
	GH_WA_CHALLENGE_MISMATCH,	/* "challenge_mismatch" */
	GH_WA_ORIGIN_MISMATCH,		/* "origin_mismatch" */
	GH_WA_CROSS_ORIGIN,		/* "cross_origin" */
	GH_WA_MALFORMED_CBOR,		/* "malformed_cbor" */
	GH_WA_MALFORMED_AUTH_DATA,	/* "malformed_auth_data" */
	GH_WA_UNSUPPORTED_FORMAT,	/* "unsupported_format" */
	GH_WA_UNSUPPORTED_ALGORITHM,	/* "unsupported_algorithm" */
	GH_WA_RP_ID_MISMATCH,		/* "rp_id_mismatch" */
	GH_WA_USER_PRESENCE_MISSING,	/* "user_presence_missing" */
	GH_WA_USER_VERIFICATION_MISSING, /* "user_verification_missing" */
	GH_WA_ATTESTED_DATA_MISSING,	/* "attested_data_missing" */
	GH_WA_BAD_ATTESTATION,		/* "bad_attestation" */
	GH_WA_BAD_SIGNATURE,		/* "bad_signature" */
	GH_WA_COUNTER_REGRESSION,	/* "counter_regression" */
	GH_WA_USER_HANDLE_MISMATCH,	/* "user_handle_mismatch" */
	GH_WA_INTERNAL,			/* "internal" */
};

/* A static string for the reason ("wrong_type", ...); "unknown" if out of
 * range. */
const char *gh_wa_reason_str(enum gh_wa_reason r);

/*
 * What the server expects of a ceremony. All fields are borrowed for the
 * call. challenge is the raw bytes the server issued (16..64); rp_id a
 * NUL-terminated host name; origins 1..GH_WA_ORIGINS_MAX NUL-terminated
 * exact origins ("https://login.example.com"). require_uv refuses a
 * response without the UV flag; UP is always required.
 */
struct gh_wa_expect {
	const uint8_t *challenge;
	size_t challenge_len;
	const char *rp_id;
	const char *const *origins;
	size_t origins_len;
	bool require_uv;
};

/* How the new credential was attested. */
enum gh_wa_att_type {
	GH_WA_ATT_NONE = 0,	/* fmt "none" */
	GH_WA_ATT_SELF,		/* fmt "packed", signed by the credential key */
	GH_WA_ATT_BASIC,	/* fmt "packed" with x5c; chain not validated */
};

/* A verified new credential. Self-contained: no pointers. */
struct gh_wa_credential {
	uint8_t id[GH_WA_CRED_ID_MAX];
	size_t id_len;
	int alg;			/* enum gh_wa_alg */
	/* As libfido2 gives it: ES256 x||y (64 bytes), EdDSA 32 bytes,
	 * RS256 n||e (259 bytes). Feed back unchanged to assertions. */
	uint8_t pubkey[GH_WA_PUBKEY_MAX];
	size_t pubkey_len;
	uint32_t sign_count;
	uint8_t flags;			/* GH_WA_FLAG_* as sent */
	bool uv, backup_eligible, backup_state;
	uint8_t aaguid[GH_WA_AAGUID_LEN];
	enum gh_wa_att_type att_type;
};

/*
 * Verifies a registration response: clientDataJSON (type "webauthn.create",
 * challenge, origin, crossOrigin not true), the attestationObject's CBOR,
 * rpIdHash, the UP/UV/AT flags and the attestation ("none" or "packed",
 * self or x5c) for ES256, EdDSA or RS256. On GH_OK fills *cred; on failure
 * *cred is zeroed. *reason (never NULL) is always set.
 */
gh_err gh_auth_webauthn_register_verify(const struct gh_wa_expect *exp,
    const uint8_t *att_obj, size_t att_obj_len,
    const uint8_t *client_data, size_t client_data_len,
    struct gh_wa_credential *cred, enum gh_wa_reason *reason) GH_MUST_CHECK;

/*
 * The stored credential an assertion is checked against, borrowed for the
 * call. user_handle (may be NULL/0) is the credential owner's handle: when
 * both it and the response's handle are present they must be equal.
 */
struct gh_wa_stored {
	int alg;
	const uint8_t *pubkey;
	size_t pubkey_len;
	uint32_t sign_count;
	const uint8_t *user_handle;
	size_t user_handle_len;
};

/* The browser's assertion response, decoded from base64url, borrowed.
 * user_handle may be NULL/0 (non-discoverable credentials). */
struct gh_wa_assertion {
	const uint8_t *auth_data;
	size_t auth_data_len;
	const uint8_t *client_data;
	size_t client_data_len;
	const uint8_t *sig;
	size_t sig_len;
	const uint8_t *user_handle;
	size_t user_handle_len;
};

struct gh_wa_assert_result {
	uint32_t sign_count;		/* store this as the new count */
	uint8_t flags;
	bool uv, backup_eligible, backup_state;
	/* The response's userHandle, returned only once the signature holds,
	 * for usernameless sign-in: the caller maps it to the user. */
	uint8_t user_handle[GH_WA_USER_HANDLE_MAX];
	size_t user_handle_len;
};

/*
 * Verifies an assertion: clientDataJSON (type "webauthn.get", challenge,
 * origin, crossOrigin), rpIdHash, UP, UV when required, the signature over
 * authenticatorData || SHA-256(clientDataJSON) with the stored key, then the
 * sign count: if either count is non-zero and the new one is not above the
 * stored one, GH_ERR_DENIED with GH_WA_COUNTER_REGRESSION (a possibly
 * cloned authenticator; the signature was valid). On GH_OK fills *res; on
 * failure *res is zeroed. *reason (never NULL) is always set.
 */
gh_err gh_auth_webauthn_assert_verify(const struct gh_wa_expect *exp,
    const struct gh_wa_stored *stored, const struct gh_wa_assertion *as,
    struct gh_wa_assert_result *res, enum gh_wa_reason *reason)
    GH_MUST_CHECK;

#endif
