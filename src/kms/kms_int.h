/*
 * kms_int.h: private to src/kms and its tests: the master-key provider
 * interface and the AEAD primitive the providers and the hierarchy share.
 */
#ifndef GH_KMS_INT_H
#define GH_KMS_INT_H

#include <openssl/evp.h>

#include "kms/kms.h"

/*
 * A master-key provider. Master keys are versioned (1, 2, ...); the
 * provider holds them and does the wrapping itself, so that a token-held
 * master key never leaves the token. A wrapped blob is opaque outside the
 * provider; aad binds it to what it wraps.
 */
struct kms_provider {
	const char *name;	/* "file", "pkcs11" */
	/* The newest version, or GH_ERR_NOTFOUND when there is none. */
	gh_err (*current)(struct kms_provider *p, uint32_t *version);
	/* True if the provider holds this version. */
	bool (*has)(struct kms_provider *p, uint32_t version);
	/* Makes a new version and makes it the newest. */
	gh_err (*rotate)(struct kms_provider *p, uint32_t *version);
	gh_err (*wrap)(struct kms_provider *p, uint32_t version,
	    const uint8_t key[GH_KMS_KEY_LEN], const uint8_t *aad,
	    size_t aad_len, struct gh_buf *out);
	/* GH_ERR_CRYPTO when the blob or its aad was tampered with. */
	gh_err (*unwrap)(struct kms_provider *p, uint32_t version,
	    const uint8_t *blob, size_t blob_len, const uint8_t *aad,
	    size_t aad_len, uint8_t key[GH_KMS_KEY_LEN]);
	/* Destroys a version nothing uses any more. */
	gh_err (*destroy)(struct kms_provider *p, uint32_t version);
	void (*free)(struct kms_provider *p);
};

/* The master key file: created with mode 0400 and version 1 when create
 * is true (refusing an existing file); opened otherwise, refusing a mode
 * wider than 0400, a symlink, or a malformed file. */
gh_err kms_provider_file_open(const char *path, bool create,
    struct kms_provider **out, char *errmsg, size_t errmsg_cap)
    GH_MUST_CHECK;

/* A PKCS#11 token (e.g. SoftHSM2): master keys are non-extractable AES-256
 * secret keys labelled "gatehouse-master-<version>", generated inside the
 * token; wrapping is CKM_AES_GCM inside the token. create generates
 * version 1 (refusing a token that has one). A wrong PIN or a missing
 * token is a clear error. */
gh_err kms_provider_pkcs11_open(const char *module, const char *token_label,
    const char *pin, bool create, struct kms_provider **out, char *errmsg,
    size_t errmsg_cap) GH_MUST_CHECK;

/* AES-256-GCM with a random 96-bit nonce: appends nonce | ct | tag. */
gh_err kms_aead_seal(const uint8_t key[GH_KMS_KEY_LEN], const uint8_t *aad,
    size_t aad_len, const uint8_t *pt, size_t pt_len, struct gh_buf *out)
    GH_MUST_CHECK;
/* Opens nonce | ct | tag; appends the plaintext to out. GH_ERR_CRYPTO on
 * a bad tag, GH_ERR_INVALID when too short. */
gh_err kms_aead_open(const uint8_t key[GH_KMS_KEY_LEN], const uint8_t *aad,
    size_t aad_len, const uint8_t *in, size_t in_len, struct gh_buf *out)
    GH_MUST_CHECK;

/* The same on a caller-owned context: key != NULL keys ctx first (a
 * context keyed before keeps its key schedule when key is NULL, and only
 * gets the new nonce). Used with per-thread contexts for field values. */
gh_err kms_aead_seal_ctx(EVP_CIPHER_CTX *ctx, const uint8_t *key,
    const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
    struct gh_buf *out) GH_MUST_CHECK;
gh_err kms_aead_open_ctx(EVP_CIPHER_CTX *ctx, const uint8_t *key,
    const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t in_len,
    struct gh_buf *out) GH_MUST_CHECK;

/* Test hook: makes gh_kms_rotate_master stop with GH_ERR_INTERNAL, as a
 * crash would, after step 1 (target version made and recorded) or step 2
 * (keys re-wrapped, old versions not yet destroyed); 0 turns it off. */
void kms_test_rotate_master_stop(struct gh_kms *kms, int after_step);

#endif
