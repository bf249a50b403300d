/*
 * kms_hier.h: private to src/kms: the key hierarchy's state and the
 * helpers that kms.c (keys, cache, field encryption) shares with
 * kms_rotate.c (rotation, retirement, status). See kms.c for the design
 * and the locking rules each helper expects.
 */
#ifndef GH_KMS_HIER_H
#define GH_KMS_HIER_H

#include "kms/keystore.h"

#include <pthread.h>

#define KMS_ORG_MAX 255
#define KMS_CT_FORMAT 0x01
#define KMS_NONCE_LEN 12
#define KMS_AAD_MAX (4 * (2 + UINT16_MAX) + 64)
#define KMS_CACHE_SLOTS 64
#define KMS_PURPOSE_MIN GH_KMS_SECRETS
#define KMS_PURPOSE_MAX GH_KMS_INDEX
#define KMS_ORG_KEY 0		/* cache "purpose" of an org key */
#define KMS_META_TARGET "master_rotation_target"
#define KMS_BLOB_MAX 1024
#define KMS_AAD_STACK 512	/* field AADs up to this size skip malloc */

struct cache_slot {
	bool used;
	bool current;		/* the newest version of its purpose */
	int purpose;		/* KMS_ORG_KEY or a gh_kms_purpose */
	uint32_t version;
	uint64_t serial;	/* names this key in thread contexts; never 0 */
	char org_id[KMS_ORG_MAX + 1];
};

/* One thread's field contexts ([0] decrypt, [1] encrypt), in kms->threads. */
struct kms_thread {
	struct kms_thread *next, **pprev;
	struct gh_kms *kms;
	EVP_CIPHER_CTX *ctx[2];
	int slot[2];		/* whose key ctx holds; -1: none */
	uint64_t serial[2];
};

struct gh_kms {
	pthread_rwlock_t lock;
	struct kms_provider *prov;
	struct ks *ks;
	EVP_MAC *hmac;
	struct cache_slot slots[KMS_CACHE_SLOTS];
	struct gh_secret *cache;	/* KMS_CACHE_SLOTS keys */
	size_t hand;
	int test_stop;
	uint32_t generation;	/* of the key store, as last seen */
	char *master_key_file;	/* file provider: to reload it */
	uint64_t serial_next;	/* exclusive lock */
	bool tkey_ok;
	pthread_key_t tkey;	/* -> struct kms_thread */
	pthread_mutex_t tmu;	/* guards the list below */
	struct kms_thread *threads;
};

/*
 * Helpers defined in kms.c (their comments there). Those taking a kms
 * expect its lock held exclusive (kms_wrlock), except kms_slot_key and
 * kms_org_valid / kms_purpose_valid, which need no lock.
 */
gh_err kms_rand_key(uint8_t key[GH_KMS_KEY_LEN]);
bool kms_org_valid(const char *org);
gh_err kms_org_check(struct gh_kms *kms, const char *org);
gh_err kms_master_record(struct kms_provider *prov, struct ks *ks, uint32_t v);
gh_err kms_gen_bump(struct gh_kms *kms, uint32_t *next);
void kms_wrlock(struct gh_kms *kms);
void kms_cache_drop_org(struct gh_kms *kms, const char *org);
gh_err kms_org_key_get(struct gh_kms *kms, const char *org, uint32_t version,
    int *slot_out);
gh_err kms_org_key_wrap(struct gh_kms *kms, const char *org,
    uint32_t version, uint32_t mv, const struct gh_secret *ck,
    const uint8_t key[GH_KMS_KEY_LEN], struct ks_row *row);
gh_err kms_data_key_wrap(const char *org, int purpose, uint32_t version,
    uint32_t okv, const uint8_t org_key[GH_KMS_KEY_LEN],
    const uint8_t key[GH_KMS_KEY_LEN], struct ks_row *row);
gh_err kms_data_key_unwrap(const struct ks_row *row,
    const uint8_t org_key[GH_KMS_KEY_LEN], uint8_t key[GH_KMS_KEY_LEN]);
uint8_t *kms_slot_key(struct gh_kms *kms, int i);
gh_err kms_org_outer_seal(struct gh_kms *kms, const char *org,
    uint32_t version, uint32_t mv, bool byok, const struct gh_buf *payload,
    struct gh_buf *out);
gh_err kms_org_outer_open(struct gh_kms *kms, const struct ks_row *row,
    struct gh_buf *out);
gh_err kms_customer_key_load(struct gh_kms *kms, const char *org,
    struct gh_secret **ck);
gh_err kms_customer_key_wrap(struct gh_kms *kms, const char *org, uint32_t mv,
    const uint8_t key[GH_KMS_KEY_LEN], struct ks_row *row);
void kms_aad_customer_key(struct gh_buf *b, const char *org,
    uint32_t master_version);
bool kms_purpose_valid(int purpose);
gh_err kms_sync(struct gh_kms *kms, bool *changed);

#endif
