/*
 * kms.h: the key hierarchy and encryption at rest. The only capability that
 * touches key material.
 *
 *   master key (file outside the data dir | PKCS#11 token), versioned
 *     └─ wraps the organisation key, per org, versioned    (key store)
 *          └─ wraps data keys per purpose, versioned         (key store)
 *               └─ AES-256-GCM, AAD = org, table, column, row id,
 *                  purpose and key version
 *   An organisation may add its own customer key (BYOK): its org key is
 *   then also wrapped by that key, and revoking it makes the org's data
 *   unreadable until the same key is supplied again.
 *
 * The key store is a SQLite database of its own, kept apart from the data
 * directory and from backups, so that destroying an org key (crypto-
 * shredding) makes every copy of that org's data unreadable.
 *
 * Untrusted input: ciphertexts read from databases (authenticated before
 * use), customer keys from org admins. Secrets: master keys (never leave
 * src/kms; in a token they never leave the token), org keys, data keys;
 * all in locked, undumpable memory, wiped after use, never logged.
 *
 * Thread safety: a gh_kms is shared by all threads.
 */
#ifndef GH_KMS_H
#define GH_KMS_H

#include <jansson.h>

#include "core/core.h"

#define GH_KMS_KEY_LEN 32
/* Ciphertext overhead: format byte, key version (4), nonce (12), tag (16). */
#define GH_KMS_OVERHEAD (1 + 4 + 12 + 16)

struct gh_kms;

enum gh_kms_purpose {
	GH_KMS_SECRETS = 1,	/* TOTP seeds, signing keys, client secrets */
	GH_KMS_ATTRIBUTES = 2,	/* encrypted custom user attributes */
	GH_KMS_FILES = 3,
	GH_KMS_BACKUPS = 4,
	GH_KMS_STORAGE = 5,	/* tenant database pages */
	GH_KMS_INDEX = 6,	/* blind-index HMAC key (not for encryption) */
};

struct gh_kms_config {
	const char *provider;		/* "file" or "pkcs11" */
	const char *master_key_file;	/* file provider: mode 0400 */
	const char *key_store_file;	/* the key store database */
	const char *pkcs11_module;	/* pkcs11: path of the module (.so) */
	const char *pkcs11_token;	/* pkcs11: token label */
	const char *pkcs11_pin;		/* pkcs11: user PIN (borrowed) */
};

/* Creates the master key (a new 0400 file, or a non-extractable key in the
 * token) and an empty key store. Refuses to overwrite either. */
gh_err gh_kms_create(const struct gh_kms_config *cfg, char *errmsg,
    size_t errmsg_cap) GH_MUST_CHECK;

/* Opens the provider and the key store. Refuses a master key file whose
 * mode is wider than 0400 or that is not a regular file, a wrong PIN, a
 * missing or damaged key store, and a key store whose master keys the
 * provider does not hold. On failure errmsg says why, naming the file or
 * setting. */
gh_err gh_kms_open(const struct gh_kms_config *cfg, struct gh_kms **out,
    char *errmsg, size_t errmsg_cap) GH_MUST_CHECK;
/* Wipes every key (the per-thread cipher contexts' key schedules too) and
 * closes, once no other thread uses kms any more. NULL is a no-op. */
void gh_kms_free(struct gh_kms *kms);

/* ---- organisations ------------------------------------------------------- */

/* Makes the org key (version 1) and a data key (version 1) per purpose.
 * GH_ERR_CONFLICT if the org has keys or was shredded. */
gh_err gh_kms_org_create(struct gh_kms *kms, const char *org_id)
    GH_MUST_CHECK;
/* Destroys every key of the org, irreversibly (crypto-shredding); its data
 * becomes unreadable everywhere, backups and copies included. The org id
 * is remembered as shredded so that it is never reused. */
gh_err gh_kms_org_shred(struct gh_kms *kms, const char *org_id)
    GH_MUST_CHECK;
/* GH_OK when the org's keys can be used; GH_ERR_DENIED while its customer
 * key is revoked; GH_ERR_NOTFOUND when unknown or shredded. */
gh_err gh_kms_org_available(struct gh_kms *kms, const char *org_id)
    GH_MUST_CHECK;

/* ---- bring your own key --------------------------------------------------- */

/* Adds (or, after a revocation, restores) the org's customer key. A
 * restore must present the same key (checked against its fingerprint);
 * otherwise GH_ERR_DENIED. Setting a different key while one is active
 * re-wraps the org key under the new one. */
gh_err gh_kms_customer_key_set(struct gh_kms *kms, const char *org_id,
    const uint8_t key[static GH_KMS_KEY_LEN]) GH_MUST_CHECK;
/* Revokes: forgets the customer key, so that the org's keys cannot be
 * unwrapped until gh_kms_customer_key_set presents it again. */
gh_err gh_kms_customer_key_revoke(struct gh_kms *kms, const char *org_id)
    GH_MUST_CHECK;

/* ---- field encryption ------------------------------------------------------- */

/* What a ciphertext is bound to. All fields are required. */
struct gh_kms_aad {
	const char *org_id;
	const char *table;
	const char *column;
	const char *row_id;
};

/* Encrypts under the newest data key of purpose: appends
 * format | version | nonce | ciphertext | tag to out. */
gh_err gh_kms_encrypt(struct gh_kms *kms, enum gh_kms_purpose purpose,
    const struct gh_kms_aad *aad, const void *pt, size_t pt_len,
    struct gh_buf *out) GH_MUST_CHECK;
/* Decrypts and authenticates; appends the plaintext to out (make it a
 * GH_BUF_SECRET buffer). GH_ERR_CRYPTO for a tampered ciphertext or one
 * bound to another org, table, column or row; GH_ERR_INVALID when
 * malformed; GH_ERR_NOTFOUND when its key version is gone. */
gh_err gh_kms_decrypt(struct gh_kms *kms, enum gh_kms_purpose purpose,
    const struct gh_kms_aad *aad, const void *ct, size_t ct_len,
    struct gh_buf *out) GH_MUST_CHECK;
/* The data-key version a ciphertext was made with. */
gh_err gh_kms_ct_version(const void *ct, size_t ct_len, uint32_t *version)
    GH_MUST_CHECK;
/* The newest data-key version of purpose for the org. */
gh_err gh_kms_current_version(struct gh_kms *kms, const char *org_id,
    enum gh_kms_purpose purpose, uint32_t *version) GH_MUST_CHECK;

#define GH_KMS_INDEX_LEN 32
/* Keyed blind index for equality search on encrypted values:
 * HMAC-SHA256 under the org's index key over table | column | value.
 * Stable across rotations (the index key is not rotated with the others). */
gh_err gh_kms_blind_index(struct gh_kms *kms, const char *org_id,
    const char *table, const char *column, const void *value,
    size_t value_len, uint8_t out[static GH_KMS_INDEX_LEN]) GH_MUST_CHECK;

/* ---- storage keys ------------------------------------------------------------ */

/* The org's data key for GH_KMS_STORAGE at version (0: the newest, whose
 * number goes to *version_out), for the store's page encryption. The
 * caller wipes key. */
gh_err gh_kms_storage_key(struct gh_kms *kms, const char *org_id,
    uint32_t version, uint32_t *version_out,
    uint8_t key[static GH_KMS_KEY_LEN]) GH_MUST_CHECK;

/* ---- rotation and status ------------------------------------------------------ */

/* Makes a new master version current and re-wraps every org key under it
 * (data is not re-encrypted), then destroys master versions nothing uses
 * any more. Safe to re-run after a crash. */
gh_err gh_kms_rotate_master(struct gh_kms *kms, uint32_t *version_out)
    GH_MUST_CHECK;
/* Makes a new org key version, re-wraps the org's data keys under it and
 * adds a new data-key version per purpose (except the index key): new
 * writes use it; old versions stay readable until retired. */
gh_err gh_kms_rotate_org(struct gh_kms *kms, const char *org_id)
    GH_MUST_CHECK;
/* Destroys data-key versions of purpose older than keep_from, once the
 * caller has moved every ciphertext to keep_from or newer. */
gh_err gh_kms_retire(struct gh_kms *kms, const char *org_id,
    enum gh_kms_purpose purpose, uint32_t keep_from) GH_MUST_CHECK;
/* {"provider", "master": {"current", "versions": [..]}, "orgs": {id:
 * {"org_key": v, "customer_key": "none|active|revoked", "data_keys":
 * {purpose: [versions]}}}} */
gh_err gh_kms_status(struct gh_kms *kms, json_t **out) GH_MUST_CHECK;

/* Notices changes another process (the CLI) made to the key store or the
 * master keys since the last call: rotations, a revoked or restored
 * customer key, a shredded org. Reloads the provider's versions and drops
 * cached keys when something changed (*changed then true), so that new
 * writes use the newest versions. Cheap when nothing changed (one read of
 * a generation counter). The server calls it about once a second. */
gh_err gh_kms_refresh(struct gh_kms *kms, bool *changed) GH_MUST_CHECK;

const char *gh_kms_purpose_name(enum gh_kms_purpose purpose);

#endif
