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

/* ---- storage: challenges and credentials (webauthn_store.c) --------------
 *
 * These functions write to the tenant database but never open a
 * transaction: the caller's transaction covers a change and its audit
 * event. A challenge's consumption should commit on its own, before the
 * verification, so that a failed ceremony still uses it up.
 */

struct gh_db;

#define GH_WA_CHALLENGE_LEN 32		/* bytes of the challenges issued */
#define GH_WA_CHALLENGE_TTL_MS (2 * 60 * 1000)
#define GH_WA_HANDLE_LEN 32		/* bytes of a user handle */
#define GH_WA_NAME_MAX 64		/* bytes of a credential's name */
/* base64url of a credential id, no padding. */
#define GH_WA_CRED_ID_B64_MAX ((GH_WA_CRED_ID_MAX * 4 + 2) / 3)

enum gh_wa_purpose { GH_WA_PURPOSE_REGISTER, GH_WA_PURPOSE_AUTHENTICATE };

/* Issues a random challenge of purpose for user_id (NULL: usernameless
 * sign-in), living GH_WA_CHALLENGE_TTL_MS from now_ms; stores only its
 * digest and drops expired ones. */
gh_err gh_auth_webauthn_challenge_issue(struct gh_db *db,
    enum gh_wa_purpose purpose, const char *user_id, int64_t now_ms,
    uint8_t out[static GH_WA_CHALLENGE_LEN]) GH_MUST_CHECK;

/* Marks the challenge used when it exists, has purpose, is unused and
 * unexpired at now_ms, and was issued to user_id (NULL: to no user).
 * GH_ERR_DENIED otherwise (unknown, reused, expired, someone else's). */
gh_err gh_auth_webauthn_challenge_consume(struct gh_db *db,
    enum gh_wa_purpose purpose, const char *user_id,
    const uint8_t *challenge, size_t challenge_len, int64_t now_ms)
    GH_MUST_CHECK;

/* The user's stable handle, made on first use when create is set
 * (GH_ERR_NOTFOUND when absent and !create). */
gh_err gh_auth_webauthn_handle_get(struct gh_db *db, const char *user_id,
    bool create, uint8_t out[static GH_WA_HANDLE_LEN]) GH_MUST_CHECK;

/* A stored credential. */
struct gh_wa_cred_row {
	char id[GH_ID_LEN + 1];
	char user_id[GH_ID_LEN + 1];
	char cred_id[GH_WA_CRED_ID_B64_MAX + 1];	/* base64url */
	char name[GH_WA_NAME_MAX + 1];
	int alg;
	uint8_t pubkey[GH_WA_PUBKEY_MAX];
	size_t pubkey_len;
	uint32_t sign_count;
	bool uv, backup_eligible, backup_state;
	char aaguid[2 * GH_WA_AAGUID_LEN + 1];
	int64_t created_at;
	int64_t last_used_at;		/* 0 if never */
	int64_t regressions;
};

/* True for a name of 1..GH_WA_NAME_MAX bytes of valid UTF-8 without
 * control characters. */
bool gh_auth_webauthn_name_ok(const char *name);

/* Stores the verified cred for user_id under name. GH_ERR_CONFLICT when
 * the credential id is already registered in the org. Fills *out. */
gh_err gh_auth_webauthn_cred_add(struct gh_db *db, const char *user_id,
    const char *name, const struct gh_wa_credential *cred,
    int64_t now_ms, struct gh_wa_cred_row *out) GH_MUST_CHECK;
/* Finds by the raw credential id. GH_ERR_NOTFOUND when absent. */
gh_err gh_auth_webauthn_cred_find(struct gh_db *db, const uint8_t *cred_id,
    size_t cred_id_len, struct gh_wa_cred_row *out) GH_MUST_CHECK;
/* Calls fn for each credential of user_id, oldest first. */
gh_err gh_auth_webauthn_cred_list(struct gh_db *db, const char *user_id,
    void (*fn)(const struct gh_wa_cred_row *c, void *arg), void *arg)
    GH_MUST_CHECK;
/* How many credentials user_id has. */
gh_err gh_auth_webauthn_cred_count(struct gh_db *db, const char *user_id,
    int64_t *count_out) GH_MUST_CHECK;
/* Renames / deletes user_id's credential id (the row id). GH_ERR_NOTFOUND
 * when it is not theirs or absent; GH_ERR_INVALID for a bad name. */
gh_err gh_auth_webauthn_cred_rename(struct gh_db *db, const char *user_id,
    const char *id, const char *name) GH_MUST_CHECK;
gh_err gh_auth_webauthn_cred_delete(struct gh_db *db, const char *user_id,
    const char *id) GH_MUST_CHECK;
/* Records an accepted assertion: the new count (only forward; a
 * concurrent use that moved it past sign_count gives GH_ERR_DENIED, a
 * regression), the backup state and the time. */
gh_err gh_auth_webauthn_cred_used(struct gh_db *db, const char *id,
    const struct gh_wa_assert_result *res, int64_t now_ms) GH_MUST_CHECK;
/* Counts a refused counter regression on the credential. */
gh_err gh_auth_webauthn_cred_regression(struct gh_db *db, const char *id)
    GH_MUST_CHECK;

#endif
