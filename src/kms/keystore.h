/*
 * keystore.h: private to src/kms. The key store: a SQLite database of its
 * own holding wrapped keys only (never a plaintext key). Not thread-safe:
 * kms.c serialises every call under its write lock.
 */
#ifndef GH_KMS_KEYSTORE_H
#define GH_KMS_KEYSTORE_H

#include "kms/kms_int.h"

struct ks;

enum ks_ck_state { KS_CK_ACTIVE = 1, KS_CK_REVOKED = 2 };

/* One row of org_keys, data_keys or customer_keys; the fields that table
 * lacks are zero. Blobs are wrapped keys (not secret). */
struct ks_row {
	char *org_id;
	int purpose;		/* data keys */
	uint32_t version;	/* org or data key version */
	uint32_t wrap_version;	/* org/customer keys: master version;
				   data keys: org key version */
	bool byok;		/* org keys: sealed by the customer key */
	enum ks_ck_state state;	/* customer keys */
	uint8_t fp[GH_SHA256_LEN];	/* customer keys: fingerprint */
	uint8_t *blob;		/* NULL for a revoked customer key */
	size_t blob_len;
	int64_t created_at;
};

struct ks_rows {
	struct ks_row *v;
	size_t n;
};

void ks_rows_free(struct ks_rows *rows);

/* Creates a new key store (mode 0600, refusing an existing file). */
gh_err ks_create(const char *path, char *errmsg, size_t errmsg_cap)
    GH_MUST_CHECK;
/* Opens an existing key store; refuses a missing, damaged or truncated
 * file and a schema it does not know. */
gh_err ks_open(const char *path, struct ks **out, char *errmsg,
    size_t errmsg_cap) GH_MUST_CHECK;
void ks_close(struct ks *ks);

gh_err ks_begin(struct ks *ks) GH_MUST_CHECK;
gh_err ks_commit(struct ks *ks) GH_MUST_CHECK;
void ks_rollback(struct ks *ks);

/* Lists rows. org NULL: every org; version/purpose 0: every one. Org keys
 * and data keys come newest version first. */
gh_err ks_org_keys(struct ks *ks, const char *org, uint32_t version,
    struct ks_rows *out) GH_MUST_CHECK;
gh_err ks_data_keys(struct ks *ks, const char *org, int purpose,
    uint32_t version, struct ks_rows *out) GH_MUST_CHECK;
gh_err ks_customer_keys(struct ks *ks, const char *org, struct ks_rows *out)
    GH_MUST_CHECK;

/* Insert or replace, keyed by (org, version), (org, purpose, version) and
 * org. */
gh_err ks_org_key_put(struct ks *ks, const struct ks_row *r) GH_MUST_CHECK;
gh_err ks_data_key_put(struct ks *ks, const struct ks_row *r) GH_MUST_CHECK;
gh_err ks_customer_key_put(struct ks *ks, const struct ks_row *r)
    GH_MUST_CHECK;

/* Deletes data-key versions below keep_from, never the newest. */
gh_err ks_data_keys_retire(struct ks *ks, const char *org, int purpose,
    uint32_t keep_from, int *deleted) GH_MUST_CHECK;
/* Deletes the org's key versions other than keep that no data key is
 * wrapped under. */
gh_err ks_org_keys_prune(struct ks *ks, const char *org, uint32_t keep)
    GH_MUST_CHECK;

gh_err ks_is_shredded(struct ks *ks, const char *org, bool *out)
    GH_MUST_CHECK;
/* In one transaction with secure_delete on: deletes every key row of the
 * org and records it as shredded; then checkpoints and truncates the WAL. */
gh_err ks_org_shred(struct ks *ks, const char *org) GH_MUST_CHECK;

/* Adds one to the "generation" counter, which every change other
 * processes must notice bumps (see gh_kms_refresh). */
gh_err ks_generation_bump(struct ks *ks) GH_MUST_CHECK;

/* Small named counters (e.g. the target of a master rotation). */
gh_err ks_meta_get(struct ks *ks, const char *name, uint32_t *v)
    GH_MUST_CHECK;
gh_err ks_meta_set(struct ks *ks, const char *name, uint32_t v)
    GH_MUST_CHECK;
gh_err ks_meta_del(struct ks *ks, const char *name) GH_MUST_CHECK;

/* Records a master version with its canary (a random key wrapped under
 * it, so that open can tell a wrong master key); a no-op if recorded. */
gh_err ks_master_add(struct ks *ks, uint32_t version, const uint8_t *canary,
    size_t canary_len) GH_MUST_CHECK;
/* The recorded versions: version and blob (the canary) are set. */
gh_err ks_master_canaries(struct ks *ks, struct ks_rows *out) GH_MUST_CHECK;
gh_err ks_master_del(struct ks *ks, uint32_t version) GH_MUST_CHECK;
/* True if a stored blob is wrapped under the master version. */
gh_err ks_master_referenced(struct ks *ks, uint32_t version, bool *out)
    GH_MUST_CHECK;

#endif
