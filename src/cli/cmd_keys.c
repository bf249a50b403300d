/*
 * cmd_keys.c: gatehouse keys status|rotate|reencrypt|customer-key.
 * Rotation re-wraps keys without touching data; re-encryption then moves
 * the data to the newest data-key version (resumable: re-run it) and only
 * then retires the old versions.
 * Secrets: a customer key read from GATEHOUSE_CUSTOMER_KEY (wiped).
 */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Seconds a running server needs, at most, to start using new key
 * versions: its refresh tick (1 s) plus closing connections in use. */
#define KEY_PICKUP_GRACE_S 3

static int
keys_status(struct gh_store *st, struct gh_kms *kms, bool json)
{
	struct gh_db *dir = NULL;
	json_t *s = NULL, *orgs;
	const char *id;
	json_t *v;
	gh_err err;

	err = gh_kms_status(kms, &s);
	if (err != GH_OK) {
		fprintf(stderr, "gatehouse: %s\n", gh_err_str(err));
		return EXIT_FAIL;
	}
	/* Progress of re-encryption: the oldest page-key version in use. */
	orgs = json_object_get(s, "orgs");
	if (gh_store_directory(st, &dir) != GH_OK)
		dir = NULL;
	json_object_foreach(orgs, id, v) {
		struct gh_org org;
		uint32_t min = 0;
		bool found = false;
		struct gh_stmt *q = NULL;
		bool row = false;

		if (dir != NULL && gh_db_prepare(dir, "SELECT slug FROM orgs "
		    "WHERE id = ?", &q) == GH_OK && gh_stmt_bind(q, "t", id) ==
		    GH_OK && gh_stmt_step(q, &row) == GH_OK && row)
			found = gh_identity_org_get(dir, gh_stmt_text(q, 0), &org)
			    == GH_OK;
		gh_stmt_free(q);
		if (!found)
			continue;
		json_object_set_new(v, "slug", json_string(org.slug));
		if (strcmp(org.state, "deleted") != 0 &&
		    gh_store_tenant_min_key_version(st, org.id, org.region,
		    &min) == GH_OK)
			json_object_set_new(v, "storage_oldest_version_in_use",
			    json_integer(min));
	}
	gh_db_release(dir);
	if (json) {
		char *t = json_dumps(s, JSON_INDENT(2) | JSON_SORT_KEYS);

		if (t != NULL)
			puts(t);
		free(t);
	} else {
		json_t *m = json_object_get(s, "master");

		printf("provider: %s\nmaster key: version %lld\n",
		    json_string_value(json_object_get(s, "provider")),
		    (long long)json_integer_value(json_object_get(m,
		    "current")));
		json_object_foreach(orgs, id, v) {
			json_t *oldest = json_object_get(v,
			    "storage_oldest_version_in_use");
			json_t *dk = json_object_get(json_object_get(v,
			    "data_keys"), "storage");

			printf("org %s (%s): org key v%lld, customer key %s, "
			    "storage keys %zu, oldest in use v%lld\n",
			    json_string_value(json_object_get(v, "slug")) ?
			    json_string_value(json_object_get(v, "slug")) : "?",
			    id, (long long)json_integer_value(json_object_get(v,
			    "org_key")), json_string_value(json_object_get(v,
			    "customer_key")) ? json_string_value(json_object_get(
			    v, "customer_key")) : "none", json_array_size(dk),
			    (long long)json_integer_value(oldest));
		}
	}
	json_decref(s);
	return 0;
}

/* Moves encrypted attribute values to the newest attribute key, then
 * retires the older versions once no value uses them. */
static gh_err
reencrypt_attributes(struct gh_store *st, struct gh_kms *kms,
    const struct gh_org *org)
{
	uint32_t current = 0, oldest = 0;
	struct gh_db *db = NULL;
	int64_t moved = 0;
	gh_err err;

	err = gh_kms_current_version(kms, org->id, GH_KMS_ATTRIBUTES, &current);
	if (err == GH_OK)
		err = gh_store_tenant(st, org->id, org->region, false, &db);
	if (err == GH_OK)
		err = gh_identity_attr_reencrypt(db, kms, &moved);
	if (err == GH_OK)
		err = gh_identity_attr_min_key_version(db, &oldest);
	gh_db_release(db);
	if (err != GH_OK) {
		fprintf(stderr, "gatehouse: %s: attribute re-encryption stopped: "
		    "%s (re-run 'gatehouse keys reencrypt --org %s')\n",
		    org->slug, gh_err_str(err), org->slug);
		return err;
	}
	printf("%s: %lld attribute values re-encrypted under attribute key "
	    "v%u\n", org->slug, (long long)moved, current);
	if ((oldest == 0 || oldest >= current) && current > 1) {
		err = gh_kms_retire(kms, org->id, GH_KMS_ATTRIBUTES, current);
		if (err == GH_OK)
			printf("%s: attribute keys older than v%u destroyed\n",
			    org->slug, current);
	}
	return err;
}

/* Re-encrypts the org's data under its newest data keys, then retires the
 * versions nothing uses any more. Safe to re-run after a crash. */
static gh_err
reencrypt(struct gh_store *st, struct gh_kms *kms, const struct gh_org *org)
{
	uint32_t current = 0, oldest = 0;
	int64_t pages = 0;
	gh_err err;

	/* A running server picks up new key versions within a second
	 * (gh_kms_refresh, then it reopens its connections); until it has,
	 * it may still write pages under the old version. Wait well past
	 * that before rewriting and, above all, before retiring anything. */
	sleep(KEY_PICKUP_GRACE_S);
	gh_store_tenant_evict(st, org->id);
	err = gh_kms_current_version(kms, org->id, GH_KMS_STORAGE, &current);
	if (err == GH_OK)
		err = gh_store_tenant_rekey(st, org->id, org->region, &pages);
	if (err == GH_OK)
		err = gh_store_tenant_min_key_version(st, org->id, org->region,
		    &oldest);
	if (err != GH_OK) {
		fprintf(stderr, "gatehouse: %s: re-encryption stopped: %s "
		    "(re-run 'gatehouse keys reencrypt --org %s')\n", org->slug,
		    gh_err_str(err), org->slug);
		return err;
	}
	printf("%s: %lld pages re-encrypted under storage key v%u\n",
	    org->slug, (long long)pages, current);
	if (oldest >= current && current > 1) {
		err = gh_kms_retire(kms, org->id, GH_KMS_STORAGE, current);
		if (err == GH_OK)
			printf("%s: storage keys older than v%u destroyed\n",
			    org->slug, current);
	}
	if (err == GH_OK)
		err = reencrypt_attributes(st, kms, org);
	return err;
}

static gh_err
find_org(struct gh_store *st, const char *slug, struct gh_org *org)
{
	struct gh_db *dir = NULL;
	gh_err err;

	err = gh_store_directory(st, &dir);
	if (err == GH_OK)
		err = gh_identity_org_get(dir, slug, org);
	gh_db_release(dir);
	if (err == GH_OK && strcmp(org->state, "deleted") == 0)
		err = GH_ERR_NOTFOUND;
	if (err == GH_ERR_NOTFOUND)
		fprintf(stderr, "gatehouse: no organisation '%s'\n", slug);
	else if (err != GH_OK)
		fprintf(stderr, "gatehouse: %s\n", gh_err_str(err));
	return err;
}

static gh_err
audit_keys(struct gh_store *st, const char *action, const char *target_type,
    const char *target_id, json_t *changes)
{
	struct gh_db *dir = NULL;
	gh_err err;

	err = gh_store_directory(st, &dir);
	if (err == GH_OK)
		err = gh_db_begin(dir);
	if (err == GH_OK)
		err = gh_audit_operator_append(dir, cli_operator(), action,
		    target_type, target_id, changes);
	if (err == GH_OK)
		err = gh_db_commit(dir);
	if (err != GH_OK && dir != NULL)
		gh_db_rollback(dir);
	gh_db_release(dir);
	return err;
}

static int
customer_key(struct gh_store *st, struct gh_kms *kms, const char *verb,
    const struct gh_org *org)
{
	uint8_t key[GH_KMS_KEY_LEN];
	const char *b64 = getenv("GATEHOUSE_CUSTOMER_KEY");
	size_t n = 0;
	gh_err err;

	if (strcmp(verb, "revoke") == 0) {
		err = gh_kms_customer_key_revoke(kms, org->id);
		if (err == GH_OK)
			err = audit_keys(st, "keys.customer_revoke", "org",
			    org->id, NULL);
		gh_store_tenant_evict(st, org->id);
		if (err != GH_OK) {
			fprintf(stderr, "gatehouse: %s\n", gh_err_str(err));
			return EXIT_FAIL;
		}
		printf("%s: customer key revoked; its data is unreadable until "
		    "the key is set again\n", org->slug);
		return 0;
	}
	if (strcmp(verb, "set") != 0) {
		fprintf(stderr, "gatehouse: keys customer-key set|revoke --org "
		    "SLUG\n");
		return EXIT_USAGE;
	}
	if (b64 == NULL || gh_b64url_decode(b64, strlen(b64), key, sizeof key,
	    &n) != GH_OK || n != sizeof key) {
		fprintf(stderr, "gatehouse: GATEHOUSE_CUSTOMER_KEY must hold 32 "
		    "bytes in unpadded base64url (43 characters)\n");
		gh_wipe(key, sizeof key);
		return EXIT_USAGE;
	}
	err = gh_kms_customer_key_set(kms, org->id, key);
	gh_wipe(key, sizeof key);
	if (err == GH_OK)
		err = audit_keys(st, "keys.customer_set", "org", org->id, NULL);
	gh_store_tenant_evict(st, org->id);
	if (err == GH_ERR_DENIED) {
		fprintf(stderr, "gatehouse: %s: that is not the customer key "
		    "that was revoked\n", org->slug);
		return EXIT_FAIL;
	}
	if (err != GH_OK) {
		fprintf(stderr, "gatehouse: %s\n", gh_err_str(err));
		return EXIT_FAIL;
	}
	printf("%s: customer key set; the org key is wrapped by it\n",
	    org->slug);
	return 0;
}

int
cmd_keys(int argc, char **argv)
{
	struct gh_store *st = NULL;
	struct gh_kms *kms = NULL;
	struct gh_config cfg;
	struct cli_opts o;
	struct gh_org org;
	const char *sub;
	uint32_t v;
	int rc = EXIT_FAIL;
	gh_err err;

	if (argc < 1) {
		fprintf(stderr, "gatehouse: keys status|rotate|reencrypt|"
		    "customer-key ...\n");
		return EXIT_USAGE;
	}
	sub = argv[0];
	if (cli_parse(argc - 1, argv + 1, "config data-dir org master json", &o)
	    != GH_OK || cli_config(&o, &cfg) != GH_OK)
		return EXIT_USAGE;
	if (cli_store(&cfg, &st, &kms) != GH_OK)
		return EXIT_FAIL;
	if (strcmp(sub, "status") == 0) {
		rc = keys_status(st, kms, o.json);
	} else if (strcmp(sub, "rotate") == 0 && o.master && o.org == NULL) {
		err = gh_kms_rotate_master(kms, &v);
		if (err == GH_OK)
			err = audit_keys(st, "keys.rotate_master", "master",
			    NULL, NULL);
		if (err == GH_OK)
			printf("master key rotated to version %u; every org key "
			    "is re-wrapped\n", v);
		else
			fprintf(stderr, "gatehouse: master rotation stopped: %s "
			    "(re-run it)\n", gh_err_str(err));
		rc = err == GH_OK ? 0 : EXIT_FAIL;
	} else if ((strcmp(sub, "rotate") == 0 ||
	    strcmp(sub, "reencrypt") == 0) && o.org != NULL && !o.master) {
		err = find_org(st, o.org, &org);
		if (err == GH_OK && strcmp(sub, "rotate") == 0) {
			err = gh_kms_rotate_org(kms, org.id);
			if (err == GH_OK)
				err = audit_keys(st, "keys.rotate_org", "org",
				    org.id, NULL);
			if (err == GH_OK)
				printf("%s: org key and data keys rotated\n",
				    org.slug);
		}
		if (err == GH_OK)
			err = reencrypt(st, kms, &org);
		rc = err == GH_OK ? 0 : EXIT_FAIL;
	} else if (strcmp(sub, "customer-key") == 0 && o.nargs == 1 &&
	    o.org != NULL) {
		rc = find_org(st, o.org, &org) == GH_OK ?
		    customer_key(st, kms, o.args[0], &org) : EXIT_FAIL;
	} else {
		fprintf(stderr, "gatehouse: keys status [--json] | rotate "
		    "--master | rotate --org SLUG | reencrypt --org SLUG | "
		    "customer-key set|revoke --org SLUG\n");
		rc = EXIT_USAGE;
	}
	cli_close(st, kms);
	return rc;
}
