/*
 * kms.c: the key hierarchy. Master versions (held by a provider) wrap org
 * keys; org keys wrap data keys per purpose; data keys encrypt fields with
 * AES-256-GCM bound to org, table, column, row, purpose and key version.
 * A customer key (BYOK) adds a layer around the org key: the org key is
 * sealed under the customer key, and that sealed blob is what the master
 * protects (through a one-use envelope key, since a provider wraps exactly
 * GH_KMS_KEY_LEN bytes). Revoking the customer key forgets it, so the org
 * key cannot be recovered until the same key is supplied again.
 *
 * Every wrapped blob carries an AAD naming what it wraps: swapping rows in
 * the key store fails to unwrap.
 *
 * Untrusted input: ciphertexts from databases (parsed with bounds, then
 * authenticated), customer keys from org admins, the key store contents.
 * Secrets: org keys, data keys and customer keys, only ever in gh_secret or
 * GH_BUF_SECRET memory (locked, undumpable, wiped) and never logged.
 *
 * Locking: one rwlock. Encrypt/decrypt with a cached key take it shared
 * and use the key in place; everything that touches the key store, the
 * provider or the cache's contents takes it exclusive.
 *
 * Per-thread cipher contexts: each thread that encrypts or decrypts fields
 * keeps one AES-256-GCM context per direction, keyed with the data key of
 * one cache slot (named by the slot's serial, never reused), so a value
 * costs a nonce change instead of a context allocation and a key schedule.
 * A thread uses its contexts only under the shared lock; whoever drops a
 * cached key holds the lock exclusive and resets (wiping) every thread's
 * context keyed from that slot, so no key schedule outlives its cached
 * key: not a rotation, a shred, a revoked customer key nor gh_kms_free.
 *
 * Rotation, retirement and the status report are in kms_rotate.c; the
 * state and the helpers both files use are declared in kms_hier.h.
 */
#include "kms/kms_hier.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


const char *
gh_kms_purpose_name(enum gh_kms_purpose purpose)
{
	switch (purpose) {
	case GH_KMS_SECRETS:
		return "secrets";
	case GH_KMS_ATTRIBUTES:
		return "attributes";
	case GH_KMS_FILES:
		return "files";
	case GH_KMS_BACKUPS:
		return "backups";
	case GH_KMS_STORAGE:
		return "storage";
	case GH_KMS_INDEX:
		return "index";
	}
	return "unknown";
}

void
kms_test_rotate_master_stop(struct gh_kms *kms, int after_step)
{
	kms->test_stop = after_step;
}

bool
kms_org_valid(const char *org)
{
	size_t n;

	if (org == NULL)
		return false;
	n = strlen(org);
	return n > 0 && n <= KMS_ORG_MAX;
}

bool
kms_purpose_valid(int purpose)
{
	return purpose >= KMS_PURPOSE_MIN && purpose <= KMS_PURPOSE_MAX;
}

static bool
bytes_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	while (n-- > 0)
		acc |= *p++;
	return acc == 0;
}

gh_err
kms_rand_key(uint8_t key[GH_KMS_KEY_LEN])
{
	gh_err err;

	do {
		if ((err = gh_rand_bytes(key, GH_KMS_KEY_LEN)) != GH_OK)
			return err;
	} while (bytes_zero(key, GH_KMS_KEY_LEN));
	return GH_OK;
}

static void
put_u32(struct gh_buf *b, uint32_t v)
{
	uint8_t be[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16),
		(uint8_t)(v >> 8), (uint8_t)v };

	gh_buf_put(b, be, sizeof be);
}

static uint32_t
get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Drops what was appended to b after start (wiping it). */
static void
buf_truncate(struct gh_buf *b, size_t start)
{
	if (b->err != GH_OK || b->data == NULL || b->len < start)
		return;
	gh_wipe(b->data + start, b->len - start);
	b->len = start;
	b->data[start] = '\0';
}

/* ---- AADs: each names the layer, then everything the blob is bound to -- */

static void
aad_org_key(struct gh_buf *b, const char *org, uint32_t version,
    uint32_t master_version, bool byok)
{
	gh_buf_put_str16(b, "gatehouse/kms/org-key/v1");
	gh_buf_put_str16(b, org);
	put_u32(b, version);
	put_u32(b, master_version);
	gh_buf_put_u8(b, byok ? 1 : 0);
}

static void
aad_org_key_customer(struct gh_buf *b, const char *org, uint32_t version)
{
	gh_buf_put_str16(b, "gatehouse/kms/org-key-customer/v1");
	gh_buf_put_str16(b, org);
	put_u32(b, version);
}

static void
aad_data_key(struct gh_buf *b, const char *org, int purpose,
    uint32_t version, uint32_t org_key_version)
{
	gh_buf_put_str16(b, "gatehouse/kms/data-key/v1");
	gh_buf_put_str16(b, org);
	gh_buf_put_u8(b, (uint8_t)purpose);
	put_u32(b, version);
	put_u32(b, org_key_version);
}

void
kms_aad_customer_key(struct gh_buf *b, const char *org, uint32_t master_version)
{
	gh_buf_put_str16(b, "gatehouse/kms/customer-key/v1");
	gh_buf_put_str16(b, org);
	put_u32(b, master_version);
}

static void
aad_field(struct gh_buf *b, const struct gh_kms_aad *aad, int purpose,
    uint32_t version)
{
	gh_buf_put_str16(b, aad->org_id);
	gh_buf_put_str16(b, aad->table);
	gh_buf_put_str16(b, aad->column);
	gh_buf_put_str16(b, aad->row_id);
	gh_buf_put_u8(b, (uint8_t)purpose);
	put_u32(b, version);
}

static void
aad_canary(struct gh_buf *b, uint32_t master_version)
{
	gh_buf_put_str16(b, "gatehouse/kms/master-canary/v1");
	put_u32(b, master_version);
}

/* Records master version v in the key store with a canary: a random key
 * wrapped under v, which open unwraps to tell a wrong master key. */
gh_err
kms_master_record(struct kms_provider *prov, struct ks *ks, uint32_t v)
{
	struct gh_buf aad, blob;
	struct gh_secret *k = NULL;
	gh_err err;

	gh_buf_init(&aad, KMS_AAD_MAX, 0);
	gh_buf_init(&blob, KMS_BLOB_MAX, 0);
	aad_canary(&aad, v);
	if ((err = gh_buf_err(&aad)) != GH_OK ||
	    (err = gh_secret_new(GH_KMS_KEY_LEN, &k)) != GH_OK ||
	    (err = kms_rand_key(k->data)) != GH_OK)
		goto out;
	err = prov->wrap(prov, v, k->data, aad.data, aad.len, &blob);
	if (err == GH_OK)
		err = gh_buf_err(&blob);
	if (err == GH_OK)
		err = ks_master_add(ks, v, blob.data, blob.len);
out:
	gh_secret_free(k);
	gh_buf_free(&aad);
	gh_buf_free(&blob);
	return err;
}

/* Every recorded master version the provider holds must unwrap its
 * canary; one it lacks must be unused. */
static gh_err
masters_verify(struct gh_kms *kms, const char *store, char *errmsg,
    size_t errmsg_cap)
{
	struct ks_rows rows = { 0 };
	struct gh_secret *k = NULL;
	struct gh_buf aad;
	size_t i;
	gh_err err;

	gh_buf_init(&aad, KMS_AAD_MAX, 0);
	if ((err = gh_secret_new(GH_KMS_KEY_LEN, &k)) != GH_OK ||
	    (err = ks_master_canaries(kms->ks, &rows)) != GH_OK) {
		snprintf(errmsg, errmsg_cap, "key store %s: unreadable", store);
		goto out;
	}
	for (i = 0; i < rows.n; i++) {
		uint32_t v = rows.v[i].version;
		bool used = true;

		if (!kms->prov->has(kms->prov, v)) {
			/* Recorded but no longer used (a rotation that
			 * stopped after destroying it) is harmless. */
			if ((err = ks_master_referenced(kms->ks, v, &used)) !=
			    GH_OK)
				goto out;
			if (!used)
				continue;
			err = GH_ERR_CRYPTO;
			snprintf(errmsg, errmsg_cap, "key store %s uses master "
			    "key version %u, which the %s provider does not "
			    "hold (wrong master key?)", store, (unsigned)v,
			    kms->prov->name);
			goto out;
		}
		gh_buf_reset(&aad);
		aad_canary(&aad, v);
		if ((err = gh_buf_err(&aad)) == GH_OK)
			err = kms->prov->unwrap(kms->prov, v, rows.v[i].blob,
			    rows.v[i].blob_len, aad.data, aad.len, k->data);
		if (err != GH_OK) {
			snprintf(errmsg, errmsg_cap, "key store %s: master key "
			    "version %u of the %s provider does not match it "
			    "(wrong master key?)", store, (unsigned)v,
			    kms->prov->name);
			goto out;
		}
	}
out:
	gh_secret_free(k);
	gh_buf_free(&aad);
	ks_rows_free(&rows);
	return err;
}

static void
cache_drop_all(struct gh_kms *kms);

/* ---- changes made by other processes ------------------------------------- */

static gh_err
gen_read(struct gh_kms *kms, uint32_t *gen)
{
	gh_err err = ks_meta_get(kms->ks, "generation", gen);

	if (err == GH_ERR_NOTFOUND) {
		*gen = 0;
		err = GH_OK;
	}
	return err;
}

/*
 * In the caller's write transaction: marks a change other processes must
 * notice. *next is what kms->generation becomes once committed: the new
 * value, unless someone else changed the store first (then it stays
 * behind, so that the next sync reloads).
 */
gh_err
kms_gen_bump(struct gh_kms *kms, uint32_t *next)
{
	uint32_t old;
	gh_err err;

	if ((err = gen_read(kms, &old)) != GH_OK ||
	    (err = ks_generation_bump(kms->ks)) != GH_OK)
		return err;
	*next = old == kms->generation ? old + 1 : kms->generation;
	return GH_OK;
}

/*
 * Exclusive lock. If another process (the CLI) changed the key store
 * since we last looked, reloads the master key file (it may have new
 * versions, or lack destroyed ones) and drops every cached key. A PKCS#11
 * provider looks its keys up in the token, so it needs no reload.
 */
gh_err
kms_sync(struct gh_kms *kms, bool *changed)
{
	struct kms_provider *fresh = NULL;
	char msg[512];
	uint32_t gen;
	gh_err err;

	if (changed != NULL)
		*changed = false;
	if ((err = gen_read(kms, &gen)) != GH_OK)
		return err;
	if (gen == kms->generation)
		return GH_OK;
	if (kms->master_key_file != NULL) {
		err = kms_provider_file_open(kms->master_key_file, false,
		    &fresh, msg, sizeof msg);
		if (err != GH_OK) {
			GH_LOG_ERR(err, "reload: %s", msg);
			return err;
		}
		kms->prov->free(kms->prov);
		kms->prov = fresh;
	}
	cache_drop_all(kms);
	kms->generation = gen;
	if (changed != NULL)
		*changed = true;
	GH_LOG_INFO("key store changed elsewhere (generation %u): keys "
	    "reloaded", (unsigned)gen);
	return GH_OK;
}

/* ---- the cache of unwrapped keys ---------------------------------------- */

uint8_t *
kms_slot_key(struct gh_kms *kms, int i)
{
	return kms->cache->data + (size_t)i * GH_KMS_KEY_LEN;
}

/* version 0: the current version of purpose. Either lock mode. */
static int
cache_find(struct gh_kms *kms, const char *org, int purpose,
    uint32_t version)
{
	int i;

	for (i = 0; i < KMS_CACHE_SLOTS; i++) {
		const struct cache_slot *s = &kms->slots[i];

		if (!s->used || s->purpose != purpose ||
		    strcmp(s->org_id, org) != 0)
			continue;
		if (version == 0 ? s->current : s->version == version)
			return i;
	}
	return -1;
}

/* Exclusive lock: wipes every thread's context keyed from slot i. */
static void
threads_forget_slot(struct gh_kms *kms, int i)
{
	struct kms_thread *t;
	int d;

	if (!kms->tkey_ok)
		return;
	pthread_mutex_lock(&kms->tmu);
	for (t = kms->threads; t != NULL; t = t->next)
		for (d = 0; d < 2; d++)
			if (t->slot[d] == i) {
				/* Frees the provider state, which OpenSSL
				 * cleanses: the key schedule is gone. */
				EVP_CIPHER_CTX_reset(t->ctx[d]);
				t->slot[d] = -1;
				t->serial[d] = 0;
			}
	pthread_mutex_unlock(&kms->tmu);
}

static void
cache_drop(struct gh_kms *kms, int i)
{
	if (kms->slots[i].used)
		threads_forget_slot(kms, i);
	gh_wipe(kms_slot_key(kms, i), GH_KMS_KEY_LEN);
	memset(&kms->slots[i], 0, sizeof kms->slots[i]);
}

/* Exclusive lock. A fresh slot, evicting in turn but never slot keep (a
 * key the caller is still using; -1: none). The caller fills its key. */
static int
cache_claim(struct gh_kms *kms, const char *org, int purpose,
    uint32_t version, bool current, int keep)
{
	int i = (int)kms->hand;
	struct cache_slot *s;

	if (i == keep)
		i = (i + 1) % KMS_CACHE_SLOTS;
	kms->hand = ((size_t)i + 1) % KMS_CACHE_SLOTS;
	s = &kms->slots[i];
	cache_drop(kms, i);
	s->used = true;
	s->current = current;
	s->purpose = purpose;
	s->version = version;
	s->serial = ++kms->serial_next;
	gh_strlcpy(s->org_id, org, sizeof s->org_id);
	return i;
}

static void
cache_drop_all(struct gh_kms *kms)
{
	int i;

	for (i = 0; i < KMS_CACHE_SLOTS; i++)
		cache_drop(kms, i);
}

void
kms_cache_drop_org(struct gh_kms *kms, const char *org)
{
	int i;

	for (i = 0; i < KMS_CACHE_SLOTS; i++)
		if (kms->slots[i].used &&
		    strcmp(kms->slots[i].org_id, org) == 0)
			cache_drop(kms, i);
}

/* ---- customer keys ------------------------------------------------------- */

static void
customer_fingerprint(const char *org, const uint8_t key[GH_KMS_KEY_LEN],
    uint8_t fp[GH_SHA256_LEN])
{
	struct gh_buf b;

	gh_buf_init(&b, KMS_AAD_MAX, GH_BUF_SECRET);
	gh_buf_put_str16(&b, "gatehouse/kms/customer-key-fingerprint/v1");
	gh_buf_put_str16(&b, org);
	gh_buf_put(&b, key, GH_KMS_KEY_LEN);
	if (gh_buf_err(&b) != GH_OK)
		GH_PANIC("fingerprint buffer");	/* bounded above */
	gh_sha256(b.data, b.len, fp);
	gh_buf_free(&b);
}

/*
 * The org's customer key state: *ck is NULL when it has none; GH_ERR_DENIED
 * when revoked. Otherwise *ck holds the unwrapped key (caller frees).
 */
gh_err
kms_customer_key_load(struct gh_kms *kms, const char *org,
    struct gh_secret **ck)
{
	struct ks_rows rows = { 0 };
	struct gh_buf aad;
	gh_err err;

	*ck = NULL;
	gh_buf_init(&aad, KMS_AAD_MAX, 0);
	if ((err = ks_customer_keys(kms->ks, org, &rows)) != GH_OK)
		goto out;
	if (rows.n == 0)
		goto out;
	if (rows.v[0].state != KS_CK_ACTIVE || rows.v[0].blob == NULL) {
		err = GH_ERR_DENIED;
		goto out;
	}
	kms_aad_customer_key(&aad, org, rows.v[0].wrap_version);
	if ((err = gh_buf_err(&aad)) != GH_OK)
		goto out;
	if ((err = gh_secret_new(GH_KMS_KEY_LEN, ck)) != GH_OK)
		goto out;
	err = kms->prov->unwrap(kms->prov, rows.v[0].wrap_version,
	    rows.v[0].blob, rows.v[0].blob_len, aad.data, aad.len,
	    (*ck)->data);
	if (err != GH_OK) {
		GH_LOG_ERR(err, "org %s: customer key unwrap failed", org);
		gh_secret_free(*ck);
		*ck = NULL;
	}
out:
	gh_buf_free(&aad);
	ks_rows_free(&rows);
	return err;
}

gh_err
kms_customer_key_wrap(struct gh_kms *kms, const char *org, uint32_t mv,
    const uint8_t key[GH_KMS_KEY_LEN], struct ks_row *row)
{
	struct gh_buf aad, blob;
	gh_err err;

	gh_buf_init(&aad, KMS_AAD_MAX, 0);
	gh_buf_init(&blob, KMS_BLOB_MAX, 0);
	kms_aad_customer_key(&aad, org, mv);
	if ((err = gh_buf_err(&aad)) == GH_OK)
		err = kms->prov->wrap(kms->prov, mv, key, aad.data, aad.len,
		    &blob);
	if (err == GH_OK)
		err = gh_buf_err(&blob);
	if (err == GH_OK) {
		free(row->blob);
		row->blob = (uint8_t *)gh_buf_take(&blob, &row->blob_len);
		row->wrap_version = mv;
		if (row->blob == NULL)
			err = GH_ERR_NOMEM;
	}
	gh_buf_free(&aad);
	gh_buf_free(&blob);
	return err;
}

/* ---- org key blobs ------------------------------------------------------- */

/*
 * The outer (master) layer of an org key blob. Without BYOK the payload is
 * the org key and the provider wraps it directly. With BYOK the payload is
 * the org key sealed under the customer key; the provider wraps a fresh
 * envelope key that seals the payload:
 *   u16 wrapped_len | wrapped envelope key | nonce | sealed payload | tag
 */
gh_err
kms_org_outer_seal(struct gh_kms *kms, const char *org, uint32_t version,
    uint32_t mv, bool byok, const struct gh_buf *payload, struct gh_buf *out)
{
	struct gh_buf aad, wrapped;
	struct gh_secret *env = NULL;
	gh_err err;

	gh_buf_init(&aad, KMS_AAD_MAX, 0);
	gh_buf_init(&wrapped, KMS_BLOB_MAX, 0);
	aad_org_key(&aad, org, version, mv, byok);
	if ((err = gh_buf_err(&aad)) != GH_OK)
		goto out;
	if (!byok) {
		if (payload->len != GH_KMS_KEY_LEN)
			GH_PANIC("org key payload of %zu bytes", payload->len);
		err = kms->prov->wrap(kms->prov, mv, payload->data, aad.data,
		    aad.len, out);
		goto out;
	}
	if ((err = gh_secret_new(GH_KMS_KEY_LEN, &env)) != GH_OK ||
	    (err = kms_rand_key(env->data)) != GH_OK)
		goto out;
	err = kms->prov->wrap(kms->prov, mv, env->data, aad.data, aad.len,
	    &wrapped);
	if (err == GH_OK)
		err = gh_buf_err(&wrapped);
	if (err != GH_OK)
		goto out;
	if (wrapped.len > UINT16_MAX) {
		err = GH_ERR_LIMIT;
		goto out;
	}
	gh_buf_put_u8(out, (uint8_t)(wrapped.len >> 8));
	gh_buf_put_u8(out, (uint8_t)wrapped.len);
	gh_buf_put(out, wrapped.data, wrapped.len);
	if ((err = gh_buf_err(out)) != GH_OK)
		goto out;
	err = kms_aead_seal(env->data, aad.data, aad.len, payload->data,
	    payload->len, out);
out:
	gh_secret_free(env);
	gh_buf_free(&aad);
	gh_buf_free(&wrapped);
	return err;
}

/* Opens the outer layer of row; appends the payload to out (secret). */
gh_err
kms_org_outer_open(struct gh_kms *kms, const struct ks_row *row,
    struct gh_buf *out)
{
	struct gh_buf aad;
	struct gh_secret *key = NULL;
	size_t wl;
	gh_err err;

	gh_buf_init(&aad, KMS_AAD_MAX, 0);
	aad_org_key(&aad, row->org_id, row->version, row->wrap_version,
	    row->byok);
	if ((err = gh_buf_err(&aad)) != GH_OK)
		goto out;
	if ((err = gh_secret_new(GH_KMS_KEY_LEN, &key)) != GH_OK)
		goto out;
	if (!row->byok) {
		err = kms->prov->unwrap(kms->prov, row->wrap_version,
		    row->blob, row->blob_len, aad.data, aad.len, key->data);
		if (err == GH_OK)
			gh_buf_put(out, key->data, GH_KMS_KEY_LEN);
		if (err == GH_OK)
			err = gh_buf_err(out);
		goto out;
	}
	err = GH_ERR_CRYPTO;
	if (row->blob_len < 2)
		goto out;
	wl = (size_t)row->blob[0] << 8 | row->blob[1];
	if (wl > row->blob_len - 2)
		goto out;
	err = kms->prov->unwrap(kms->prov, row->wrap_version, row->blob + 2,
	    wl, aad.data, aad.len, key->data);
	if (err == GH_OK)
		err = kms_aead_open(key->data, aad.data, aad.len,
		    row->blob + 2 + wl, row->blob_len - 2 - wl, out);
out:
	if (err != GH_OK)
		GH_LOG_ERR(err, "org %s: org key v%u: master unwrap failed",
		    row->org_id, (unsigned)row->version);
	gh_secret_free(key);
	gh_buf_free(&aad);
	return err;
}

/* The org key of row, unwrapped into key (ck: the customer key if byok). */
static gh_err
org_key_unwrap(struct gh_kms *kms, const struct ks_row *row,
    const struct gh_secret *ck, uint8_t key[GH_KMS_KEY_LEN])
{
	struct gh_buf payload, aad, pt;
	gh_err err;

	if (row->byok && ck == NULL)
		return GH_ERR_DENIED;
	gh_buf_init(&payload, KMS_BLOB_MAX, GH_BUF_SECRET);
	gh_buf_init(&pt, 2 * GH_KMS_KEY_LEN, GH_BUF_SECRET);
	gh_buf_init(&aad, KMS_AAD_MAX, 0);
	if ((err = kms_org_outer_open(kms, row, &payload)) != GH_OK)
		goto out;
	if (row->byok) {
		aad_org_key_customer(&aad, row->org_id, row->version);
		if ((err = gh_buf_err(&aad)) != GH_OK)
			goto out;
		err = kms_aead_open(ck->data, aad.data, aad.len, payload.data,
		    payload.len, &pt);
		if (err != GH_OK) {
			GH_LOG_ERR(err, "org %s: org key v%u: customer key "
			    "unwrap failed", row->org_id,
			    (unsigned)row->version);
			goto out;
		}
	} else {
		gh_buf_put(&pt, payload.data, payload.len);
	}
	if ((err = gh_buf_err(&pt)) == GH_OK && pt.len != GH_KMS_KEY_LEN)
		err = GH_ERR_CRYPTO;
	if (err == GH_OK)
		memcpy(key, pt.data, GH_KMS_KEY_LEN);
out:
	gh_buf_free(&payload);
	gh_buf_free(&pt);
	gh_buf_free(&aad);
	return err;
}

/* Wraps key as org key version of org under master mv (and ck if any);
 * fills row's blob, wrap_version and byok. */
gh_err
kms_org_key_wrap(struct gh_kms *kms, const char *org, uint32_t version,
    uint32_t mv, const struct gh_secret *ck,
    const uint8_t key[GH_KMS_KEY_LEN], struct ks_row *row)
{
	struct gh_buf payload, aad, blob;
	gh_err err;

	gh_buf_init(&payload, KMS_BLOB_MAX, GH_BUF_SECRET);
	gh_buf_init(&aad, KMS_AAD_MAX, 0);
	gh_buf_init(&blob, KMS_BLOB_MAX, 0);
	if (ck != NULL) {
		aad_org_key_customer(&aad, org, version);
		if ((err = gh_buf_err(&aad)) != GH_OK)
			goto out;
		err = kms_aead_seal(ck->data, aad.data, aad.len, key,
		    GH_KMS_KEY_LEN, &payload);
	} else {
		gh_buf_put(&payload, key, GH_KMS_KEY_LEN);
		err = gh_buf_err(&payload);
	}
	if (err != GH_OK)
		goto out;
	err = kms_org_outer_seal(kms, org, version, mv, ck != NULL, &payload,
	    &blob);
	if (err == GH_OK)
		err = gh_buf_err(&blob);
	if (err != GH_OK)
		goto out;
	free(row->blob);
	row->blob = (uint8_t *)gh_buf_take(&blob, &row->blob_len);
	if (row->blob == NULL) {
		err = GH_ERR_NOMEM;
		goto out;
	}
	row->version = version;
	row->wrap_version = mv;
	row->byok = ck != NULL;
out:
	gh_buf_free(&payload);
	gh_buf_free(&aad);
	gh_buf_free(&blob);
	return err;
}

/* ---- data key blobs ------------------------------------------------------ */

gh_err
kms_data_key_wrap(const char *org, int purpose, uint32_t version,
    uint32_t okv, const uint8_t org_key[GH_KMS_KEY_LEN],
    const uint8_t key[GH_KMS_KEY_LEN], struct ks_row *row)
{
	struct gh_buf aad, blob;
	gh_err err;

	gh_buf_init(&aad, KMS_AAD_MAX, 0);
	gh_buf_init(&blob, KMS_BLOB_MAX, 0);
	aad_data_key(&aad, org, purpose, version, okv);
	if ((err = gh_buf_err(&aad)) == GH_OK)
		err = kms_aead_seal(org_key, aad.data, aad.len, key,
		    GH_KMS_KEY_LEN, &blob);
	if (err == GH_OK) {
		free(row->blob);
		row->blob = (uint8_t *)gh_buf_take(&blob, &row->blob_len);
		if (row->blob == NULL)
			err = GH_ERR_NOMEM;
		row->purpose = purpose;
		row->version = version;
		row->wrap_version = okv;
	}
	gh_buf_free(&aad);
	gh_buf_free(&blob);
	return err;
}

gh_err
kms_data_key_unwrap(const struct ks_row *row,
    const uint8_t org_key[GH_KMS_KEY_LEN], uint8_t key[GH_KMS_KEY_LEN])
{
	struct gh_buf aad, pt;
	gh_err err;

	gh_buf_init(&aad, KMS_AAD_MAX, 0);
	gh_buf_init(&pt, 2 * GH_KMS_KEY_LEN, GH_BUF_SECRET);
	aad_data_key(&aad, row->org_id, row->purpose, row->version,
	    row->wrap_version);
	if ((err = gh_buf_err(&aad)) == GH_OK)
		err = kms_aead_open(org_key, aad.data, aad.len, row->blob,
		    row->blob_len, &pt);
	if (err == GH_OK && pt.len != GH_KMS_KEY_LEN)
		err = GH_ERR_CRYPTO;
	if (err == GH_OK)
		memcpy(key, pt.data, GH_KMS_KEY_LEN);
	else
		GH_LOG_ERR(err, "org %s: %s key v%u: unwrap failed",
		    row->org_id, gh_kms_purpose_name(row->purpose),
		    (unsigned)row->version);
	gh_buf_free(&aad);
	gh_buf_free(&pt);
	return err;
}

/* ---- loading keys (exclusive lock) --------------------------------------- */

/* GH_OK if the org's keys may be used; NOTFOUND; DENIED if revoked. */
gh_err
kms_org_check(struct gh_kms *kms, const char *org)
{
	struct ks_rows rows = { 0 };
	bool shredded;
	gh_err err;

	if ((err = ks_is_shredded(kms->ks, org, &shredded)) != GH_OK)
		return err;
	if (shredded)
		return GH_ERR_NOTFOUND;
	if ((err = ks_org_keys(kms->ks, org, 0, &rows)) != GH_OK)
		return err;
	if (rows.n == 0)
		err = GH_ERR_NOTFOUND;
	ks_rows_free(&rows);
	if (err != GH_OK)
		return err;
	if ((err = ks_customer_keys(kms->ks, org, &rows)) != GH_OK)
		return err;
	if (rows.n > 0 && rows.v[0].state != KS_CK_ACTIVE)
		err = GH_ERR_DENIED;
	ks_rows_free(&rows);
	return err;
}

/* The org key at version, from the cache or the store; *slot_out. */
gh_err
kms_org_key_get(struct gh_kms *kms, const char *org, uint32_t version,
    int *slot_out)
{
	struct ks_rows rows = { 0 };
	struct gh_secret *ck = NULL;
	gh_err err;
	int i;

	if ((i = cache_find(kms, org, KMS_ORG_KEY, version)) >= 0) {
		*slot_out = i;
		return GH_OK;
	}
	if ((err = ks_org_keys(kms->ks, org, version, &rows)) != GH_OK)
		goto out;
	if (rows.n == 0) {
		err = GH_ERR_NOTFOUND;
		goto out;
	}
	if (rows.v[0].byok &&
	    (err = kms_customer_key_load(kms, org, &ck)) != GH_OK)
		goto out;
	i = cache_claim(kms, org, KMS_ORG_KEY, version, false, -1);
	err = org_key_unwrap(kms, &rows.v[0], ck, kms_slot_key(kms, i));
	if (err != GH_OK) {
		cache_drop(kms, i);
		goto out;
	}
	*slot_out = i;
out:
	gh_secret_free(ck);
	ks_rows_free(&rows);
	return err;
}

/* The data key of purpose at version (0: the newest), cached. */
static gh_err
data_key_get(struct gh_kms *kms, const char *org, int purpose,
    uint32_t version, int *slot_out)
{
	struct ks_rows rows = { 0 };
	gh_err err;
	int i, o;

	if ((i = cache_find(kms, org, purpose, version)) >= 0) {
		*slot_out = i;
		return GH_OK;
	}
	/* A miss may be another process's rotation: catch up first. */
	if ((err = kms_sync(kms, NULL)) != GH_OK)
		return err;
	if ((err = kms_org_check(kms, org)) != GH_OK)
		return err;
	if ((err = ks_data_keys(kms->ks, org, purpose, version, &rows)) !=
	    GH_OK)
		return err;
	if (rows.n == 0) {
		err = GH_ERR_NOTFOUND;
		goto out;
	}
	if ((err = kms_org_key_get(kms, org, rows.v[0].wrap_version, &o)) !=
	    GH_OK)
		goto out;
	i = cache_claim(kms, org, purpose, rows.v[0].version, version == 0, o);
	err = kms_data_key_unwrap(&rows.v[0], kms_slot_key(kms, o),
	    kms_slot_key(kms, i));
	if (err != GH_OK) {
		cache_drop(kms, i);
		goto out;
	}
	*slot_out = i;
out:
	ks_rows_free(&rows);
	return err;
}

/*
 * Finds the data key and returns with the lock held (shared on a cache
 * hit, exclusive otherwise): *key stays valid until key_release.
 */
static gh_err
key_acquire(struct gh_kms *kms, const char *org, int purpose,
    uint32_t version, int *slot_out, uint32_t *version_out)
{
	gh_err err;
	int i;

	if (pthread_rwlock_rdlock(&kms->lock) != 0)
		GH_PANIC("rwlock");
	if ((i = cache_find(kms, org, purpose, version)) < 0) {
		pthread_rwlock_unlock(&kms->lock);
		if (pthread_rwlock_wrlock(&kms->lock) != 0)
			GH_PANIC("rwlock");
		err = data_key_get(kms, org, purpose, version, &i);
		if (err != GH_OK) {
			pthread_rwlock_unlock(&kms->lock);
			return err;
		}
	}
	*slot_out = i;
	if (version_out != NULL)
		*version_out = kms->slots[i].version;
	return GH_OK;
}

static void
key_release(struct gh_kms *kms)
{
	pthread_rwlock_unlock(&kms->lock);
}

void
kms_wrlock(struct gh_kms *kms)
{
	if (pthread_rwlock_wrlock(&kms->lock) != 0)
		GH_PANIC("rwlock");
}

/* ---- per-thread field contexts ------------------------------------------ */

static void
thread_ctx_free(struct kms_thread *t)
{
	EVP_CIPHER_CTX_free(t->ctx[0]);	/* cleanses the key schedule */
	EVP_CIPHER_CTX_free(t->ctx[1]);
	free(t);
}

/* At thread exit (pthread key destructor). */
static void
thread_exit(void *arg)
{
	struct kms_thread *t = arg;

	pthread_mutex_lock(&t->kms->tmu);
	if ((*t->pprev = t->next) != NULL)
		t->next->pprev = t->pprev;
	pthread_mutex_unlock(&t->kms->tmu);
	thread_ctx_free(t);
}

/* This thread's contexts, made on first use; NULL when they cannot be. */
static struct kms_thread *
thread_get(struct gh_kms *kms)
{
	struct kms_thread *t;

	if (!kms->tkey_ok)
		return NULL;
	if ((t = pthread_getspecific(kms->tkey)) != NULL)
		return t;
	if ((t = calloc(1, sizeof *t)) == NULL)
		return NULL;
	t->kms = kms;
	t->slot[0] = t->slot[1] = -1;
	if ((t->ctx[0] = EVP_CIPHER_CTX_new()) == NULL ||
	    (t->ctx[1] = EVP_CIPHER_CTX_new()) == NULL ||
	    pthread_setspecific(kms->tkey, t) != 0) {
		thread_ctx_free(t);
		return NULL;
	}
	pthread_mutex_lock(&kms->tmu);
	t->pprev = &kms->threads;
	if ((t->next = kms->threads) != NULL)
		t->next->pprev = &t->next;
	kms->threads = t;
	pthread_mutex_unlock(&kms->tmu);
	return t;
}

/*
 * With the lock held (either mode) and slot i in use: this thread's
 * context for direction enc, and in *key the key to set, or NULL when the
 * context already holds slot i's key. NULL (no context) when none can be
 * made; the caller then uses a one-off context.
 */
static EVP_CIPHER_CTX *
thread_ctx(struct gh_kms *kms, int i, int enc, const uint8_t **key)
{
	struct kms_thread *t = thread_get(kms);

	*key = kms_slot_key(kms, i);
	if (t == NULL)
		return NULL;
	if (t->slot[enc] == i && t->serial[enc] == kms->slots[i].serial) {
		*key = NULL;
	} else {
		/* Marked before keying: a failed keying leaves no claim. */
		t->slot[enc] = i;
		t->serial[enc] = kms->slots[i].serial;
	}
	return t->ctx[enc];
}

/* A failed seal/open may leave ctx half set: wipe it, rekey next time. */
static void
thread_ctx_fail(struct gh_kms *kms, int enc)
{
	struct kms_thread *t = pthread_getspecific(kms->tkey);

	if (t != NULL) {
		EVP_CIPHER_CTX_reset(t->ctx[enc]);
		t->slot[enc] = -1;
		t->serial[enc] = 0;
	}
}

/* ---- create, open, free -------------------------------------------------- */

static gh_err
provider_open(const struct gh_kms_config *cfg, bool create,
    struct kms_provider **out, char *errmsg, size_t errmsg_cap)
{
	if (cfg->provider != NULL && strcmp(cfg->provider, "file") == 0)
		return kms_provider_file_open(cfg->master_key_file, create,
		    out, errmsg, errmsg_cap);
	if (cfg->provider != NULL && strcmp(cfg->provider, "pkcs11") == 0)
		return kms_provider_pkcs11_open(cfg->pkcs11_module,
		    cfg->pkcs11_token, cfg->pkcs11_pin, create, out, errmsg,
		    errmsg_cap);
	snprintf(errmsg, errmsg_cap, "kms provider setting \"%s\" is not "
	    "\"file\" or \"pkcs11\"", cfg->provider != NULL ? cfg->provider :
	    "(unset)");
	*out = NULL;
	return GH_ERR_INVALID;
}

gh_err
gh_kms_create(const struct gh_kms_config *cfg, char *errmsg,
    size_t errmsg_cap)
{
	struct kms_provider *prov = NULL;
	struct ks *ks = NULL;
	uint32_t mv;
	gh_err err;

	if (errmsg_cap > 0)
		errmsg[0] = '\0';
	if (cfg->key_store_file == NULL || cfg->key_store_file[0] == '\0') {
		snprintf(errmsg, errmsg_cap, "key_store_file is not set");
		return GH_ERR_INVALID;
	}
	/* Refuse before making a master key we would then orphan. */
	if (access(cfg->key_store_file, F_OK) == 0) {
		snprintf(errmsg, errmsg_cap, "key store %s: exists already "
		    "(refusing to overwrite)", cfg->key_store_file);
		return GH_ERR_CONFLICT;
	}
	if ((err = provider_open(cfg, true, &prov, errmsg, errmsg_cap)) !=
	    GH_OK)
		return err;
	if ((err = prov->current(prov, &mv)) != GH_OK) {
		snprintf(errmsg, errmsg_cap, "%s provider: no master key "
		    "after create", prov->name);
		goto out;
	}
	if ((err = ks_create(cfg->key_store_file, errmsg, errmsg_cap)) !=
	    GH_OK)
		goto out;
	if ((err = ks_open(cfg->key_store_file, &ks, errmsg, errmsg_cap)) !=
	    GH_OK)
		goto out;
	if ((err = kms_master_record(prov, ks, mv)) != GH_OK)
		snprintf(errmsg, errmsg_cap, "key store %s: cannot record "
		    "master version", cfg->key_store_file);
out:
	ks_close(ks);
	if (prov != NULL)
		prov->free(prov);
	return err;
}

gh_err
gh_kms_open(const struct gh_kms_config *cfg, struct gh_kms **out,
    char *errmsg, size_t errmsg_cap)
{
	struct gh_kms *kms;
	uint32_t mv;
	gh_err err;

	*out = NULL;
	if (errmsg_cap > 0)
		errmsg[0] = '\0';
	if ((kms = calloc(1, sizeof *kms)) == NULL)
		return GH_ERR_NOMEM;
	if (pthread_rwlock_init(&kms->lock, NULL) != 0) {
		free(kms);
		return GH_ERR_INTERNAL;
	}
	if (pthread_mutex_init(&kms->tmu, NULL) == 0) {
		if (pthread_key_create(&kms->tkey, thread_exit) == 0)
			kms->tkey_ok = true;
		else
			pthread_mutex_destroy(&kms->tmu);
	}
	if ((err = gh_secret_new(KMS_CACHE_SLOTS * GH_KMS_KEY_LEN,
	    &kms->cache)) != GH_OK)
		goto out;
	if ((kms->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL) {
		err = GH_ERR_CRYPTO;
		snprintf(errmsg, errmsg_cap, "OpenSSL: HMAC unavailable");
		goto out;
	}
	if ((err = provider_open(cfg, false, &kms->prov, errmsg,
	    errmsg_cap)) != GH_OK)
		goto out;
	if ((err = kms->prov->current(kms->prov, &mv)) != GH_OK) {
		snprintf(errmsg, errmsg_cap, "%s provider: holds no master key",
		    kms->prov->name);
		goto out;
	}
	if ((err = ks_open(cfg->key_store_file, &kms->ks, errmsg,
	    errmsg_cap)) != GH_OK)
		goto out;
	if ((err = masters_verify(kms, cfg->key_store_file, errmsg,
	    errmsg_cap)) != GH_OK)
		goto out;
	if ((err = gen_read(kms, &kms->generation)) != GH_OK) {
		snprintf(errmsg, errmsg_cap, "key store %s: unreadable",
		    cfg->key_store_file);
		goto out;
	}
	if (strcmp(kms->prov->name, "file") == 0 &&
	    (kms->master_key_file = gh_strdup(cfg->master_key_file)) == NULL)
		err = GH_ERR_NOMEM;
out:
	if (err != GH_OK) {
		gh_kms_free(kms);
		return err;
	}
	*out = kms;
	return GH_OK;
}

void
gh_kms_free(struct gh_kms *kms)
{
	struct kms_thread *t;

	if (kms == NULL)
		return;
	/* Every thread that used kms is done with it: their contexts go
	 * now, and pthread_key_delete keeps their exit from freeing them. */
	if (kms->tkey_ok) {
		pthread_key_delete(kms->tkey);
		while ((t = kms->threads) != NULL) {
			kms->threads = t->next;
			thread_ctx_free(t);
		}
		pthread_mutex_destroy(&kms->tmu);
	}
	gh_secret_free(kms->cache);
	if (kms->prov != NULL)
		kms->prov->free(kms->prov);
	ks_close(kms->ks);
	EVP_MAC_free(kms->hmac);
	pthread_rwlock_destroy(&kms->lock);
	free(kms->master_key_file);
	free(kms);
}

/* ---- organisations ------------------------------------------------------- */

gh_err
gh_kms_org_create(struct gh_kms *kms, const char *org_id)
{
	struct ks_row row;
	struct gh_secret *ok = NULL, *dk = NULL;
	bool shredded, in_txn = false;
	struct ks_rows rows = { 0 };
	uint32_t mv;
	gh_err err;
	int p;

	if (!kms_org_valid(org_id))
		return GH_ERR_INVALID;
	memset(&row, 0, sizeof row);
	row.org_id = (char *)org_id;
	kms_wrlock(kms);
	if ((err = kms_sync(kms, NULL)) != GH_OK)
		goto out;
	if ((err = ks_is_shredded(kms->ks, org_id, &shredded)) != GH_OK)
		goto out;
	if ((err = ks_org_keys(kms->ks, org_id, 0, &rows)) != GH_OK)
		goto out;
	if (shredded || rows.n > 0) {
		err = GH_ERR_CONFLICT;
		goto out;
	}
	if ((err = kms->prov->current(kms->prov, &mv)) != GH_OK)
		goto out;
	if ((err = gh_secret_new(GH_KMS_KEY_LEN, &ok)) != GH_OK ||
	    (err = gh_secret_new(GH_KMS_KEY_LEN, &dk)) != GH_OK ||
	    (err = kms_rand_key(ok->data)) != GH_OK)
		goto out;
	if ((err = ks_begin(kms->ks)) != GH_OK)
		goto out;
	in_txn = true;
	if ((err = kms_master_record(kms->prov, kms->ks, mv)) != GH_OK)
		goto out;
	if ((err = kms_org_key_wrap(kms, org_id, 1, mv, NULL, ok->data,
	    &row)) != GH_OK || (err = ks_org_key_put(kms->ks, &row)) != GH_OK)
		goto out;
	for (p = KMS_PURPOSE_MIN; p <= KMS_PURPOSE_MAX; p++) {
		if ((err = kms_rand_key(dk->data)) != GH_OK)
			goto out;
		if ((err = kms_data_key_wrap(org_id, p, 1, 1, ok->data,
		    dk->data, &row)) != GH_OK ||
		    (err = ks_data_key_put(kms->ks, &row)) != GH_OK)
			goto out;
	}
	if ((err = ks_commit(kms->ks)) != GH_OK)
		goto out;
	in_txn = false;
	GH_LOG_INFO("org %s: keys created", org_id);
out:
	if (in_txn)
		ks_rollback(kms->ks);
	if (err != GH_OK && err != GH_ERR_CONFLICT)
		GH_LOG_ERR(err, "org %s: key creation failed", org_id);
	pthread_rwlock_unlock(&kms->lock);
	free(row.blob);
	ks_rows_free(&rows);
	gh_secret_free(ok);
	gh_secret_free(dk);
	return err;
}

gh_err
gh_kms_org_shred(struct gh_kms *kms, const char *org_id)
{
	struct ks_rows rows = { 0 };
	uint32_t gen;
	bool shredded;
	gh_err err;

	if (!kms_org_valid(org_id))
		return GH_ERR_INVALID;
	kms_wrlock(kms);
	kms_cache_drop_org(kms, org_id);
	if ((err = kms_sync(kms, NULL)) != GH_OK)
		goto out;
	if ((err = ks_is_shredded(kms->ks, org_id, &shredded)) != GH_OK)
		goto out;
	if (shredded)
		goto out;	/* done before: shredding is idempotent */
	if ((err = ks_org_keys(kms->ks, org_id, 0, &rows)) != GH_OK)
		goto out;
	if (rows.n == 0) {
		err = GH_ERR_NOTFOUND;
		goto out;
	}
	if ((err = ks_org_shred(kms->ks, org_id)) != GH_OK) {
		GH_LOG_ERR(err, "org %s: shred failed", org_id);
		goto out;
	}
	/* ks_org_shred bumped the generation: adopt it if it was ours. */
	if (gen_read(kms, &gen) == GH_OK && gen == kms->generation + 1)
		kms->generation = gen;
	GH_LOG_INFO("org %s: keys destroyed (crypto-shredded)", org_id);
out:
	pthread_rwlock_unlock(&kms->lock);
	ks_rows_free(&rows);
	return err;
}

gh_err
gh_kms_org_available(struct gh_kms *kms, const char *org_id)
{
	gh_err err;

	if (!kms_org_valid(org_id))
		return GH_ERR_INVALID;
	kms_wrlock(kms);
	err = kms_org_check(kms, org_id);
	pthread_rwlock_unlock(&kms->lock);
	return err;
}

/* ---- bring your own key -------------------------------------------------- */

/* Re-wraps every org key version of org from old_ck to new_ck (either may
 * be NULL: no customer layer). In the caller's transaction. */
static gh_err
org_keys_rewrap_customer(struct gh_kms *kms, const char *org,
    const struct gh_secret *old_ck, const struct gh_secret *new_ck)
{
	struct ks_rows rows = { 0 };
	struct gh_secret *key = NULL;
	uint32_t mv;
	size_t i;
	gh_err err;

	if ((err = kms->prov->current(kms->prov, &mv)) != GH_OK ||
	    (err = kms_master_record(kms->prov, kms->ks, mv)) != GH_OK)
		return err;
	if ((err = gh_secret_new(GH_KMS_KEY_LEN, &key)) != GH_OK)
		return err;
	if ((err = ks_org_keys(kms->ks, org, 0, &rows)) != GH_OK)
		goto out;
	for (i = 0; i < rows.n; i++) {
		struct ks_row *r = &rows.v[i];

		if ((err = org_key_unwrap(kms, r, r->byok ? old_ck : NULL,
		    key->data)) != GH_OK)
			goto out;
		if ((err = kms_org_key_wrap(kms, org, r->version, mv, new_ck,
		    key->data, r)) != GH_OK ||
		    (err = ks_org_key_put(kms->ks, r)) != GH_OK)
			goto out;
	}
out:
	gh_secret_free(key);
	ks_rows_free(&rows);
	return err;
}

gh_err
gh_kms_customer_key_set(struct gh_kms *kms, const char *org_id,
    const uint8_t key[static GH_KMS_KEY_LEN])
{
	struct ks_rows rows = { 0 };
	struct ks_row row;
	struct gh_secret *ck = NULL, *old = NULL;
	bool in_txn = false;
	uint32_t mv, gen = 0;
	gh_err err;

	if (!kms_org_valid(org_id) || bytes_zero(key, GH_KMS_KEY_LEN))
		return GH_ERR_INVALID;
	memset(&row, 0, sizeof row);
	row.org_id = (char *)org_id;
	row.state = KS_CK_ACTIVE;
	customer_fingerprint(org_id, key, row.fp);
	kms_wrlock(kms);
	if ((err = kms_sync(kms, NULL)) != GH_OK)
		goto out;
	err = kms_org_check(kms, org_id);
	if (err != GH_OK && err != GH_ERR_DENIED)
		goto out;
	if ((err = ks_customer_keys(kms->ks, org_id, &rows)) != GH_OK)
		goto out;
	if (rows.n > 0 && gh_ct_eq(rows.v[0].fp, row.fp, GH_SHA256_LEN) &&
	    rows.v[0].state == KS_CK_ACTIVE)
		goto out;	/* the same key again: nothing to do */
	if (rows.n > 0 && rows.v[0].state == KS_CK_REVOKED &&
	    !gh_ct_eq(rows.v[0].fp, row.fp, GH_SHA256_LEN)) {
		err = GH_ERR_DENIED;
		GH_LOG_WARN(err, "org %s: customer key restore with a "
		    "different key refused", org_id);
		goto out;
	}
	if ((err = gh_secret_new(GH_KMS_KEY_LEN, &ck)) != GH_OK)
		goto out;
	memcpy(ck->data, key, GH_KMS_KEY_LEN);
	if ((err = kms->prov->current(kms->prov, &mv)) != GH_OK)
		goto out;
	if (rows.n > 0 && rows.v[0].state == KS_CK_ACTIVE &&
	    (err = kms_customer_key_load(kms, org_id, &old)) != GH_OK)
		goto out;
	if ((err = ks_begin(kms->ks)) != GH_OK)
		goto out;
	in_txn = true;
	if ((err = kms_master_record(kms->prov, kms->ks, mv)) != GH_OK)
		goto out;
	/* A restore finds the org keys still sealed under this very key;
	 * a first key or a replacement re-wraps them. */
	if ((rows.n == 0 || rows.v[0].state == KS_CK_ACTIVE) &&
	    (err = org_keys_rewrap_customer(kms, org_id, old, ck)) != GH_OK)
		goto out;
	if ((err = kms_customer_key_wrap(kms, org_id, mv, ck->data, &row)) !=
	    GH_OK || (err = ks_customer_key_put(kms->ks, &row)) != GH_OK ||
	    (err = kms_gen_bump(kms, &gen)) != GH_OK)
		goto out;
	if ((err = ks_commit(kms->ks)) != GH_OK)
		goto out;
	in_txn = false;
	kms->generation = gen;
	kms_cache_drop_org(kms, org_id);
	GH_LOG_INFO("org %s: customer key %s", org_id, rows.n == 0 ? "added" :
	    rows.v[0].state == KS_CK_REVOKED ? "restored" : "replaced");
out:
	if (in_txn)
		ks_rollback(kms->ks);
	pthread_rwlock_unlock(&kms->lock);
	free(row.blob);
	ks_rows_free(&rows);
	gh_secret_free(ck);
	gh_secret_free(old);
	return err;
}

gh_err
gh_kms_customer_key_revoke(struct gh_kms *kms, const char *org_id)
{
	struct ks_rows rows = { 0 };
	struct ks_row row;
	uint32_t gen = 0;
	gh_err err;

	if (!kms_org_valid(org_id))
		return GH_ERR_INVALID;
	kms_wrlock(kms);
	if ((err = kms_sync(kms, NULL)) != GH_OK)
		goto out;
	err = kms_org_check(kms, org_id);
	if (err != GH_OK && err != GH_ERR_DENIED)
		goto out;
	if ((err = ks_customer_keys(kms->ks, org_id, &rows)) != GH_OK)
		goto out;
	if (rows.n == 0) {
		err = GH_ERR_NOTFOUND;
		goto out;
	}
	if (rows.v[0].state == KS_CK_REVOKED)
		goto out;
	memset(&row, 0, sizeof row);
	row.org_id = (char *)org_id;
	row.state = KS_CK_REVOKED;
	memcpy(row.fp, rows.v[0].fp, GH_SHA256_LEN);
	row.created_at = rows.v[0].created_at;
	/* secure_delete is on: the wrapped key is zeroed in the file. */
	if ((err = ks_begin(kms->ks)) != GH_OK)
		goto out;
	if ((err = ks_customer_key_put(kms->ks, &row)) != GH_OK ||
	    (err = kms_gen_bump(kms, &gen)) != GH_OK ||
	    (err = ks_commit(kms->ks)) != GH_OK) {
		ks_rollback(kms->ks);
		goto out;
	}
	kms->generation = gen;
	kms_cache_drop_org(kms, org_id);
	GH_LOG_INFO("org %s: customer key revoked", org_id);
out:
	pthread_rwlock_unlock(&kms->lock);
	ks_rows_free(&rows);
	return err;
}

/* ---- field encryption ---------------------------------------------------- */

static bool
aad_valid(const struct gh_kms_aad *aad)
{
	return aad != NULL && kms_org_valid(aad->org_id) &&
	    aad->table != NULL && aad->column != NULL && aad->row_id != NULL;
}

/*
 * The field AAD (same bytes as aad_field) in stack, when it fits; *len 0
 * otherwise (then aad_field builds it, and reports a string too long).
 */
static void
aad_field_stack(uint8_t stack[static KMS_AAD_STACK], size_t *len,
    const struct gh_kms_aad *aad, int purpose, uint32_t version)
{
	const char *s[4] = { aad->org_id, aad->table, aad->column,
		aad->row_id };
	size_t n[4], total = 1 + 4, off = 0;
	int k;

	*len = 0;
	for (k = 0; k < 4; k++) {
		n[k] = strlen(s[k]);
		if (n[k] > KMS_AAD_STACK)
			return;
		total += 2 + n[k];
	}
	if (total > KMS_AAD_STACK)
		return;
	for (k = 0; k < 4; k++) {
		stack[off++] = (uint8_t)(n[k] >> 8);
		stack[off++] = (uint8_t)(n[k] & 0xff);
		memcpy(stack + off, s[k], n[k]);
		off += n[k];
	}
	stack[off++] = (uint8_t)purpose;
	stack[off++] = (uint8_t)(version >> 24);
	stack[off++] = (uint8_t)(version >> 16);
	stack[off++] = (uint8_t)(version >> 8);
	stack[off++] = (uint8_t)version;
	*len = off;
}

/* Seals (enc) or opens with slot i's key under the held lock. */
static gh_err
field_crypt(struct gh_kms *kms, int i, int enc, const struct gh_kms_aad *aad,
    int purpose, const uint8_t *in, size_t in_len, struct gh_buf *out)
{
	uint8_t stack[KMS_AAD_STACK];
	const uint8_t *ad, *key;
	EVP_CIPHER_CTX *ctx;
	struct gh_buf big;
	size_t ad_len;
	gh_err err;

	gh_buf_init(&big, KMS_AAD_MAX, 0);
	aad_field_stack(stack, &ad_len, aad, purpose, kms->slots[i].version);
	ad = stack;
	if (ad_len == 0) {
		aad_field(&big, aad, purpose, kms->slots[i].version);
		if ((err = gh_buf_err(&big)) != GH_OK)
			goto out;
		ad = big.data;
		ad_len = big.len;
	}
	if ((ctx = thread_ctx(kms, i, enc, &key)) == NULL) {
		err = enc ? kms_aead_seal(key, ad, ad_len, in, in_len, out) :
		    kms_aead_open(key, ad, ad_len, in, in_len, out);
		goto out;
	}
	err = enc ? kms_aead_seal_ctx(ctx, key, ad, ad_len, in, in_len, out) :
	    kms_aead_open_ctx(ctx, key, ad, ad_len, in, in_len, out);
	if (err != GH_OK)
		thread_ctx_fail(kms, enc);
out:
	gh_buf_free(&big);
	return err;
}

gh_err
gh_kms_encrypt(struct gh_kms *kms, enum gh_kms_purpose purpose,
    const struct gh_kms_aad *aad, const void *pt, size_t pt_len,
    struct gh_buf *out)
{
	uint32_t version;
	size_t start = out->len;
	gh_err err;
	int i;

	if (!aad_valid(aad) || !kms_purpose_valid((int)purpose) ||
	    purpose == GH_KMS_INDEX || (pt == NULL && pt_len > 0))
		return GH_ERR_INVALID;
	if ((err = key_acquire(kms, aad->org_id, (int)purpose, 0, &i,
	    &version)) != GH_OK)
		return err;
	gh_buf_put_u8(out, KMS_CT_FORMAT);
	put_u32(out, version);
	if ((err = gh_buf_err(out)) != GH_OK)
		goto out;
	err = field_crypt(kms, i, 1, aad, (int)purpose, pt, pt_len, out);
out:
	key_release(kms);
	if (err != GH_OK)
		buf_truncate(out, start);
	return err;
}

gh_err
gh_kms_ct_version(const void *ct, size_t ct_len, uint32_t *version)
{
	const uint8_t *p = ct;

	if (p == NULL || ct_len < GH_KMS_OVERHEAD || p[0] != KMS_CT_FORMAT)
		return GH_ERR_INVALID;
	*version = get_u32(p + 1);
	return *version == 0 ? GH_ERR_INVALID : GH_OK;
}

gh_err
gh_kms_decrypt(struct gh_kms *kms, enum gh_kms_purpose purpose,
    const struct gh_kms_aad *aad, const void *ct, size_t ct_len,
    struct gh_buf *out)
{
	uint32_t version;
	gh_err err;
	int i;

	if (!aad_valid(aad) || !kms_purpose_valid((int)purpose) ||
	    purpose == GH_KMS_INDEX)
		return GH_ERR_INVALID;
	if ((err = gh_kms_ct_version(ct, ct_len, &version)) != GH_OK)
		return err;
	if ((err = key_acquire(kms, aad->org_id, (int)purpose, version, &i,
	    NULL)) != GH_OK)
		return err;
	err = field_crypt(kms, i, 0, aad, (int)purpose, (const uint8_t *)ct +
	    5, ct_len - 5, out);
	key_release(kms);
	return err;
}

gh_err
gh_kms_current_version(struct gh_kms *kms, const char *org_id,
    enum gh_kms_purpose purpose, uint32_t *version)
{
	gh_err err;
	int i;

	if (!kms_org_valid(org_id) || !kms_purpose_valid((int)purpose))
		return GH_ERR_INVALID;
	err = key_acquire(kms, org_id, (int)purpose, 0, &i, version);
	if (err == GH_OK)
		key_release(kms);
	return err;
}

gh_err
gh_kms_blind_index(struct gh_kms *kms, const char *org_id, const char *table,
    const char *column, const void *value, size_t value_len,
    uint8_t out[static GH_KMS_INDEX_LEN])
{
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx = NULL;
	struct gh_buf msg;
	size_t n = 0;
	gh_err err;
	int i;

	if (!kms_org_valid(org_id) || table == NULL || column == NULL ||
	    (value == NULL && value_len > 0) || value_len > UINT32_MAX)
		return GH_ERR_INVALID;
	gh_buf_init(&msg, KMS_AAD_MAX + value_len, GH_BUF_SECRET);
	gh_buf_put_str16(&msg, "gatehouse/kms/blind-index/v1");
	gh_buf_put_str16(&msg, table);
	gh_buf_put_str16(&msg, column);
	put_u32(&msg, (uint32_t)value_len);
	gh_buf_put(&msg, value, value_len);
	if ((err = gh_buf_err(&msg)) != GH_OK) {
		gh_buf_free(&msg);
		return err;
	}
	if ((err = key_acquire(kms, org_id, GH_KMS_INDEX, 0, &i, NULL)) !=
	    GH_OK) {
		gh_buf_free(&msg);
		return err;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	err = GH_ERR_CRYPTO;
	if ((ctx = EVP_MAC_CTX_new(kms->hmac)) != NULL &&
	    EVP_MAC_init(ctx, kms_slot_key(kms, i), GH_KMS_KEY_LEN,
	    params) == 1 &&
	    EVP_MAC_update(ctx, msg.data, msg.len) == 1 &&
	    EVP_MAC_final(ctx, out, &n, GH_KMS_INDEX_LEN) == 1 &&
	    n == GH_KMS_INDEX_LEN)
		err = GH_OK;
	key_release(kms);
	EVP_MAC_CTX_free(ctx);
	gh_buf_free(&msg);
	return err;
}

gh_err
gh_kms_storage_key(struct gh_kms *kms, const char *org_id, uint32_t version,
    uint32_t *version_out, uint8_t key[static GH_KMS_KEY_LEN])
{
	uint32_t v;
	gh_err err;
	int i;

	if (!kms_org_valid(org_id))
		return GH_ERR_INVALID;
	if ((err = key_acquire(kms, org_id, GH_KMS_STORAGE, version, &i,
	    &v)) != GH_OK)
		return err;
	memcpy(key, kms_slot_key(kms, i), GH_KMS_KEY_LEN);
	key_release(kms);
	if (version_out != NULL)
		*version_out = v;
	return GH_OK;
}

gh_err
gh_kms_refresh(struct gh_kms *kms, bool *changed)
{
	bool c = false;
	gh_err err;

	kms_wrlock(kms);
	err = kms_sync(kms, &c);
	pthread_rwlock_unlock(&kms->lock);
	if (changed != NULL)
		*changed = c;
	return err;
}
