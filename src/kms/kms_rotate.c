/*
 * kms_rotate.c: rotation of master and org keys, retirement of old data
 * key versions, and the status report: the key hierarchy's maintenance,
 * split from kms.c (which holds its state, cache and field encryption).
 * Every entry point takes the kms lock exclusive (kms_wrlock), as in kms.c.
 */
#include "kms/kms_hier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- rotation ------------------------------------------------------------ */

/* Destroys master versions below target that nothing references. */
static gh_err
masters_destroy_unused(struct gh_kms *kms, uint32_t target)
{
	uint32_t v, gen = 0;
	bool used, destroyed = false;
	gh_err err;

	for (v = 1; v < target; v++) {
		if ((err = ks_master_referenced(kms->ks, v, &used)) != GH_OK)
			return err;
		if (used)
			continue;
		if (kms->prov->has(kms->prov, v)) {
			if ((err = kms->prov->destroy(kms->prov, v)) != GH_OK) {
				GH_LOG_ERR(err, "master version %u: destroy "
				    "failed", (unsigned)v);
				return err;
			}
			GH_LOG_INFO("master version %u destroyed",
			    (unsigned)v);
			destroyed = true;
		}
		if ((err = ks_master_del(kms->ks, v)) != GH_OK)
			return err;
	}
	if (!destroyed)
		return GH_OK;
	/* Tell other processes to drop the destroyed versions too. */
	if ((err = ks_begin(kms->ks)) != GH_OK)
		return err;
	if ((err = kms_gen_bump(kms, &gen)) != GH_OK ||
	    (err = ks_commit(kms->ks)) != GH_OK) {
		ks_rollback(kms->ks);
		return err;
	}
	kms->generation = gen;
	return GH_OK;
}

/* Re-wraps every org key and customer key under target, in one
 * transaction that also clears the recorded target. */
static gh_err
masters_rewrap(struct gh_kms *kms, uint32_t target)
{
	struct ks_rows orgs = { 0 }, cks = { 0 };
	struct gh_buf payload, blob;
	struct gh_secret *ck = NULL;
	uint32_t gen = 0;
	size_t i;
	gh_err err;

	gh_buf_init(&payload, KMS_BLOB_MAX, GH_BUF_SECRET);
	gh_buf_init(&blob, KMS_BLOB_MAX, 0);
	if ((err = gh_secret_new(GH_KMS_KEY_LEN, &ck)) != GH_OK)
		goto out;
	if ((err = ks_begin(kms->ks)) != GH_OK)
		goto out;
	if ((err = ks_org_keys(kms->ks, NULL, 0, &orgs)) != GH_OK ||
	    (err = ks_customer_keys(kms->ks, NULL, &cks)) != GH_OK)
		goto fail;
	for (i = 0; i < orgs.n; i++) {
		struct ks_row *r = &orgs.v[i];

		if (r->wrap_version == target)
			continue;
		gh_buf_reset(&payload);
		gh_buf_reset(&blob);
		/* The outer layer only: a revoked customer key does not stop
		 * a master rotation. */
		if ((err = kms_org_outer_open(kms, r, &payload)) != GH_OK ||
		    (err = kms_org_outer_seal(kms, r->org_id, r->version,
		    target, r->byok, &payload, &blob)) != GH_OK ||
		    (err = gh_buf_err(&blob)) != GH_OK)
			goto fail;
		free(r->blob);
		r->blob = (uint8_t *)gh_buf_take(&blob, &r->blob_len);
		r->wrap_version = target;
		if (r->blob == NULL) {
			err = GH_ERR_NOMEM;
			goto fail;
		}
		if ((err = ks_org_key_put(kms->ks, r)) != GH_OK)
			goto fail;
	}
	for (i = 0; i < cks.n; i++) {
		struct ks_row *r = &cks.v[i];
		struct gh_buf aad;

		if (r->state != KS_CK_ACTIVE || r->wrap_version == target)
			continue;
		gh_buf_init(&aad, KMS_AAD_MAX, 0);
		kms_aad_customer_key(&aad, r->org_id, r->wrap_version);
		if ((err = gh_buf_err(&aad)) == GH_OK)
			err = kms->prov->unwrap(kms->prov, r->wrap_version,
			    r->blob, r->blob_len, aad.data, aad.len, ck->data);
		gh_buf_free(&aad);
		if (err != GH_OK) {
			GH_LOG_ERR(err, "org %s: customer key unwrap failed",
			    r->org_id);
			goto fail;
		}
		if ((err = kms_customer_key_wrap(kms, r->org_id, target,
		    ck->data, r)) != GH_OK ||
		    (err = ks_customer_key_put(kms->ks, r)) != GH_OK)
			goto fail;
	}
	if ((err = ks_meta_del(kms->ks, KMS_META_TARGET)) != GH_OK ||
	    (err = kms_gen_bump(kms, &gen)) != GH_OK ||
	    (err = ks_commit(kms->ks)) != GH_OK)
		goto fail;
	kms->generation = gen;
	goto out;
fail:
	ks_rollback(kms->ks);
out:
	gh_secret_free(ck);
	gh_buf_free(&payload);
	gh_buf_free(&blob);
	ks_rows_free(&orgs);
	ks_rows_free(&cks);
	return err;
}

gh_err
gh_kms_rotate_master(struct gh_kms *kms, uint32_t *version_out)
{
	uint32_t target, gen = 0;
	gh_err err;

	kms_wrlock(kms);
	if ((err = kms_sync(kms, NULL)) != GH_OK)
		goto out;
	/*
	 * Step 1: a target version, recorded before anything is re-wrapped
	 * so that a re-run after a crash finishes this rotation instead of
	 * starting another. (A crash between the provider's rotation and
	 * the record leaves an unused version, destroyed in step 3.)
	 */
	err = ks_meta_get(kms->ks, KMS_META_TARGET, &target);
	if (err == GH_ERR_NOTFOUND) {
		if ((err = kms->prov->rotate(kms->prov, &target)) != GH_OK)
			goto out;
		if ((err = ks_begin(kms->ks)) != GH_OK)
			goto out;
		if ((err = kms_master_record(kms->prov, kms->ks, target)) !=
		    GH_OK ||
		    (err = ks_meta_set(kms->ks, KMS_META_TARGET, target)) !=
		    GH_OK || (err = kms_gen_bump(kms, &gen)) != GH_OK ||
		    (err = ks_commit(kms->ks)) != GH_OK) {
			ks_rollback(kms->ks);
			goto out;
		}
		kms->generation = gen;
	} else if (err != GH_OK) {
		goto out;
	} else {
		GH_LOG_INFO("resuming master rotation to version %u",
		    (unsigned)target);
	}
	if (!kms->prov->has(kms->prov, target)) {
		err = GH_ERR_CRYPTO;
		GH_LOG_ERR(err, "master rotation target %u: not held by the "
		    "%s provider", (unsigned)target, kms->prov->name);
		goto out;
	}
	if (kms->test_stop == 1) {
		err = GH_ERR_INTERNAL;
		goto out;
	}
	/* Step 2: every wrapped org and customer key, one transaction. */
	if ((err = masters_rewrap(kms, target)) != GH_OK)
		goto out;
	if (kms->test_stop == 2) {
		err = GH_ERR_INTERNAL;
		goto out;
	}
	/* Step 3: old versions nothing uses. */
	if ((err = masters_destroy_unused(kms, target)) != GH_OK)
		goto out;
	GH_LOG_INFO("master key rotated to version %u", (unsigned)target);
	if (version_out != NULL)
		*version_out = target;
out:
	if (err != GH_OK)
		GH_LOG_ERR(err, "master rotation stopped; re-run to finish");
	pthread_rwlock_unlock(&kms->lock);
	return err;
}

gh_err
gh_kms_rotate_org(struct gh_kms *kms, const char *org_id)
{
	struct ks_rows oks = { 0 }, dks = { 0 };
	struct gh_secret *ok = NULL, *dk = NULL, *ck = NULL;
	struct ks_row row;
	bool in_txn = false;
	uint32_t mv, nv, gen = 0;
	size_t i;
	gh_err err;
	int p, slot;

	if (!kms_org_valid(org_id))
		return GH_ERR_INVALID;
	memset(&row, 0, sizeof row);
	row.org_id = (char *)org_id;
	kms_wrlock(kms);
	if ((err = kms_sync(kms, NULL)) != GH_OK ||
	    (err = kms_org_check(kms, org_id)) != GH_OK)
		goto out;
	if ((err = ks_org_keys(kms->ks, org_id, 0, &oks)) != GH_OK ||
	    (err = kms_customer_key_load(kms, org_id, &ck)) != GH_OK ||
	    (err = kms->prov->current(kms->prov, &mv)) != GH_OK)
		goto out;
	nv = oks.v[0].version + 1;
	if ((err = gh_secret_new(GH_KMS_KEY_LEN, &ok)) != GH_OK ||
	    (err = gh_secret_new(GH_KMS_KEY_LEN, &dk)) != GH_OK ||
	    (err = kms_rand_key(ok->data)) != GH_OK)
		goto out;
	if ((err = ks_begin(kms->ks)) != GH_OK)
		goto out;
	in_txn = true;
	if ((err = kms_master_record(kms->prov, kms->ks, mv)) != GH_OK ||
	    (err = kms_org_key_wrap(kms, org_id, nv, mv, ck, ok->data, &row)) !=
	    GH_OK || (err = ks_org_key_put(kms->ks, &row)) != GH_OK)
		goto out;
	/* Every data key moves under the new org key. */
	if ((err = ks_data_keys(kms->ks, org_id, 0, 0, &dks)) != GH_OK)
		goto out;
	for (i = 0; i < dks.n; i++) {
		struct ks_row *r = &dks.v[i];

		if ((err = kms_org_key_get(kms, org_id, r->wrap_version,
		    &slot)) != GH_OK || (err = kms_data_key_unwrap(r,
		    kms_slot_key(kms, slot), dk->data)) != GH_OK)
			goto out;
		if ((err = kms_data_key_wrap(org_id, r->purpose, r->version, nv,
		    ok->data, dk->data, r)) != GH_OK ||
		    (err = ks_data_key_put(kms->ks, r)) != GH_OK)
			goto out;
	}
	/* A new data-key version per purpose; the index key stays, so that
	 * blind indexes remain valid. dks is newest first per purpose. */
	for (p = KMS_PURPOSE_MIN; p <= KMS_PURPOSE_MAX; p++) {
		uint32_t newest = 0;

		if (p == GH_KMS_INDEX)
			continue;
		for (i = 0; i < dks.n; i++)
			if (dks.v[i].purpose == p && dks.v[i].version > newest)
				newest = dks.v[i].version;
		if ((err = kms_rand_key(dk->data)) != GH_OK ||
		    (err = kms_data_key_wrap(org_id, p, newest + 1, nv,
		    ok->data, dk->data, &row)) != GH_OK ||
		    (err = ks_data_key_put(kms->ks, &row)) != GH_OK)
			goto out;
	}
	if ((err = ks_org_keys_prune(kms->ks, org_id, nv)) != GH_OK ||
	    (err = kms_gen_bump(kms, &gen)) != GH_OK ||
	    (err = ks_commit(kms->ks)) != GH_OK)
		goto out;
	in_txn = false;
	kms->generation = gen;
	GH_LOG_INFO("org %s: org key rotated to version %u", org_id,
	    (unsigned)nv);
out:
	if (in_txn)
		ks_rollback(kms->ks);
	/* Drop before unlocking: the cache may hold keys the rolled-back
	 * transaction never made durable, and "current" changed. */
	kms_cache_drop_org(kms, org_id);
	if (err != GH_OK)
		GH_LOG_ERR(err, "org %s: org key rotation failed", org_id);
	pthread_rwlock_unlock(&kms->lock);
	free(row.blob);
	ks_rows_free(&oks);
	ks_rows_free(&dks);
	gh_secret_free(ok);
	gh_secret_free(dk);
	gh_secret_free(ck);
	return err;
}

gh_err
gh_kms_retire(struct gh_kms *kms, const char *org_id,
    enum gh_kms_purpose purpose, uint32_t keep_from)
{
	uint32_t gen = 0;
	int deleted = 0;
	gh_err err;

	if (!kms_org_valid(org_id) || !kms_purpose_valid((int)purpose))
		return GH_ERR_INVALID;
	kms_wrlock(kms);
	if ((err = kms_sync(kms, NULL)) != GH_OK)
		goto out;
	err = kms_org_check(kms, org_id);
	if (err != GH_OK && err != GH_ERR_DENIED)
		goto out;
	if ((err = ks_begin(kms->ks)) != GH_OK)
		goto out;
	if ((err = ks_data_keys_retire(kms->ks, org_id, (int)purpose,
	    keep_from, &deleted)) != GH_OK ||
	    (err = kms_gen_bump(kms, &gen)) != GH_OK ||
	    (err = ks_commit(kms->ks)) != GH_OK) {
		ks_rollback(kms->ks);
		goto out;
	}
	kms->generation = gen;
out:
	kms_cache_drop_org(kms, org_id);
	pthread_rwlock_unlock(&kms->lock);
	if (err == GH_OK && deleted > 0)
		GH_LOG_INFO("org %s: %d %s key version(s) below %u destroyed",
		    org_id, deleted, gh_kms_purpose_name(purpose),
		    (unsigned)keep_from);
	return err;
}

/* ---- status -------------------------------------------------------------- */

static gh_err
json_set(json_t *obj, const char *key, json_t *v)
{
	return v != NULL && json_object_set_new(obj, key, v) == 0 ? GH_OK :
	    GH_ERR_NOMEM;
}

static gh_err
status_orgs(struct gh_kms *kms, json_t *orgs)
{
	struct ks_rows oks = { 0 }, dks = { 0 }, cks = { 0 };
	json_t *o, *dk, *list;
	size_t i;
	gh_err err;

	if ((err = ks_org_keys(kms->ks, NULL, 0, &oks)) != GH_OK ||
	    (err = ks_data_keys(kms->ks, NULL, 0, 0, &dks)) != GH_OK ||
	    (err = ks_customer_keys(kms->ks, NULL, &cks)) != GH_OK)
		goto out;
	/* Org keys come newest first per org: the first row is current. */
	for (i = 0; i < oks.n; i++) {
		if (json_object_get(orgs, oks.v[i].org_id) != NULL)
			continue;
		o = json_object();
		if ((err = json_set(orgs, oks.v[i].org_id, o)) != GH_OK ||
		    (err = json_set(o, "org_key",
		    json_integer(oks.v[i].version))) != GH_OK ||
		    (err = json_set(o, "customer_key",
		    json_string("none"))) != GH_OK ||
		    (err = json_set(o, "data_keys", json_object())) != GH_OK)
			goto out;
	}
	for (i = 0; i < cks.n; i++) {
		if ((o = json_object_get(orgs, cks.v[i].org_id)) == NULL)
			continue;
		if ((err = json_set(o, "customer_key", json_string(
		    cks.v[i].state == KS_CK_ACTIVE ? "active" : "revoked"))) !=
		    GH_OK)
			goto out;
	}
	/* Data keys: versions listed oldest first. */
	for (i = dks.n; i-- > 0;) {
		const char *name = gh_kms_purpose_name(dks.v[i].purpose);

		if ((o = json_object_get(orgs, dks.v[i].org_id)) == NULL)
			continue;
		dk = json_object_get(o, "data_keys");
		if ((list = json_object_get(dk, name)) == NULL) {
			list = json_array();
			if ((err = json_set(dk, name, list)) != GH_OK)
				goto out;
		}
		if (json_array_append_new(list,
		    json_integer(dks.v[i].version)) != 0) {
			err = GH_ERR_NOMEM;
			goto out;
		}
	}
out:
	ks_rows_free(&oks);
	ks_rows_free(&dks);
	ks_rows_free(&cks);
	return err;
}

gh_err
gh_kms_status(struct gh_kms *kms, json_t **out)
{
	json_t *root = json_object(), *master = json_object(), *versions =
	    json_array(), *orgs = json_object();
	uint32_t cur = 0, v, target;
	gh_err err;

	*out = NULL;
	if (root == NULL || master == NULL || versions == NULL ||
	    orgs == NULL) {
		json_decref(root);
		json_decref(master);
		json_decref(versions);
		json_decref(orgs);
		return GH_ERR_NOMEM;
	}
	err = json_set(root, "master", master);
	if (err == GH_OK)
		err = json_set(master, "versions", versions);
	if (err == GH_OK)
		err = json_set(root, "orgs", orgs);
	if (err != GH_OK) {
		json_decref(root);
		return err;
	}
	kms_wrlock(kms);
	if ((err = kms_sync(kms, NULL)) != GH_OK)
		goto out;
	if ((err = json_set(root, "provider",
	    json_string(kms->prov->name))) != GH_OK)
		goto out;
	if ((err = kms->prov->current(kms->prov, &cur)) != GH_OK ||
	    (err = json_set(master, "current", json_integer(cur))) != GH_OK)
		goto out;
	for (v = 1; v <= cur; v++) {
		if (kms->prov->has(kms->prov, v) &&
		    json_array_append_new(versions, json_integer(v)) != 0) {
			err = GH_ERR_NOMEM;
			goto out;
		}
	}
	err = ks_meta_get(kms->ks, KMS_META_TARGET, &target);
	if (err == GH_OK)
		err = json_set(master, "rotation_pending",
		    json_integer(target));
	else if (err == GH_ERR_NOTFOUND)
		err = GH_OK;
	if (err != GH_OK)
		goto out;
	err = status_orgs(kms, orgs);
out:
	pthread_rwlock_unlock(&kms->lock);
	if (err != GH_OK) {
		json_decref(root);
		return err;
	}
	*out = root;
	return GH_OK;
}
