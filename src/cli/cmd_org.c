/*
 * cmd_org.c: gatehouse org create|list|show|suspend|activate|delete.
 * Every change writes the directory's operator audit in the same
 * transaction. No secrets.
 */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

gh_err
cli_org_create(struct gh_store *st, struct gh_kms *kms, const char *slug,
    const char *name, const char *region, struct gh_org *out)
{
	struct gh_db *dir = NULL, *tenant = NULL;
	json_t *changes = NULL;
	bool keyed = false;
	gh_err err;

	if (!gh_identity_slug_valid(slug)) {
		fprintf(stderr, "gatehouse: slug '%s': 2 to %d chars of a-z, "
		    "0-9 and '-', not starting or ending with '-'\n", slug,
		    GH_SLUG_MAX);
		return GH_ERR_INVALID;
	}
	if (!gh_identity_org_name_valid(name)) {
		fprintf(stderr, "gatehouse: --name: 1 to %d bytes of text\n",
		    GH_ORG_NAME_MAX);
		return GH_ERR_INVALID;
	}
	if (!gh_store_region_valid(region)) {
		fprintf(stderr, "gatehouse: --region '%s': 1-32 chars of "
		    "[a-z0-9-] starting with a letter\n", region);
		return GH_ERR_INVALID;
	}
	err = gh_store_directory(st, &dir);
	if (err == GH_OK)
		err = gh_db_begin(dir);
	if (err == GH_OK)
		err = gh_identity_org_create(dir, slug, name, region, out);
	/* Its keys, then its (encrypted) tenant database, exist before the
	 * organisation row commits, so a listed organisation always has
	 * both. */
	if (err == GH_OK) {
		err = gh_kms_org_create(kms, out->id);
		keyed = err == GH_OK;
	}
	if (err == GH_OK)
		err = gh_store_tenant(st, out->id, out->region, true, &tenant);
	gh_db_release(tenant);
	if (err == GH_OK) {
		changes = json_pack("{s:s, s:s, s:s}", "slug", slug, "name",
		    name, "region", region);
		err = gh_audit_operator_append(dir, cli_operator(),
		    "org.create", "org", out->id, changes);
	}
	if (err == GH_OK)
		err = gh_db_commit(dir);
	if (err != GH_OK) {
		if (dir != NULL)
			gh_db_rollback(dir);
		/* No org row: its keys must not outlive the failure. */
		if (keyed && gh_kms_org_shred(kms, out->id) != GH_OK)
			GH_LOG_WARN(GH_ERR_STORE, "org %s: orphan keys kept",
			    out->id);
		if (err == GH_ERR_CONFLICT)
			fprintf(stderr, "gatehouse: an organisation '%s' exists "
			    "already\n", slug);
		else
			fprintf(stderr, "gatehouse: cannot create the "
			    "organisation: %s\n", gh_err_str(err));
	}
	json_decref(changes);
	gh_db_release(dir);
	return err;
}

static void
print_org_row(const struct gh_org *org, void *arg)
{
	json_t *all = arg;

	if (all != NULL) {
		json_array_append_new(all, gh_identity_org_json(org));
		return;
	}
	printf("%-24s  %-9s  %-8s  %-32s  %s\n", org->slug, org->state,
	    org->region, org->id, org->name);
}

static void
print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (s != NULL)
		puts(s);
	free(s);
}

static int
org_list(struct gh_store *st, bool json)
{
	json_t *all = json ? json_array() : NULL;
	struct gh_db *dir = NULL;
	gh_err err;

	if (!json)
		printf("%-24s  %-9s  %-8s  %-32s  %s\n", "SLUG", "STATE",
		    "REGION", "ID", "NAME");
	err = gh_store_directory(st, &dir);
	if (err == GH_OK)
		err = gh_identity_org_list(dir, print_org_row, all);
	gh_db_release(dir);
	if (err == GH_OK && json)
		print_json(all);
	json_decref(all);
	if (err != GH_OK) {
		fprintf(stderr, "gatehouse: %s\n", gh_err_str(err));
		return EXIT_FAIL;
	}
	return 0;
}

static int
org_show(struct gh_store *st, const char *slug, bool json)
{
	struct gh_db *dir = NULL;
	struct gh_org org;
	char created[25];
	gh_err err;

	err = gh_store_directory(st, &dir);
	if (err == GH_OK)
		err = gh_identity_org_get(dir, slug, &org);
	gh_db_release(dir);
	if (err == GH_ERR_NOTFOUND) {
		fprintf(stderr, "gatehouse: no organisation '%s'\n", slug);
		return EXIT_FAIL;
	}
	if (err != GH_OK) {
		fprintf(stderr, "gatehouse: %s\n", gh_err_str(err));
		return EXIT_FAIL;
	}
	if (json) {
		json_t *j = gh_identity_org_json(&org);

		print_json(j);
		json_decref(j);
		return 0;
	}
	gh_time_rfc3339(org.created_at, created);
	printf("id:      %s\nslug:    %s\nname:    %s\nstate:   %s\n"
	    "region:  %s\ncreated: %s\n", org.id, org.slug, org.name, org.state,
	    org.region, created);
	return 0;
}

static int
org_set_state(struct gh_store *st, const char *slug, const char *state,
    const char *action)
{
	struct gh_db *dir = NULL;
	struct gh_org org;
	json_t *changes = NULL;
	gh_err err;

	err = gh_store_directory(st, &dir);
	if (err == GH_OK)
		err = gh_db_begin(dir);
	if (err == GH_OK)
		err = gh_identity_org_get(dir, slug, &org);
	if (err == GH_OK && strcmp(org.state, "deleted") == 0 &&
	    strcmp(state, "deleted") != 0) {
		fprintf(stderr, "gatehouse: %s is deleted; it cannot be "
		    "changed\n", slug);
		gh_db_release(dir);
		return EXIT_FAIL;
	}
	if (err == GH_OK && strcmp(org.state, state) == 0) {
		printf("%s is already %s\n", slug, state);
		gh_db_release(dir);
		return 0;
	}
	if (err == GH_OK) {
		changes = json_pack("{s:{s:s, s:s}}", "state", "from",
		    org.state, "to", state);
		err = gh_identity_org_set_state(dir, org.id, state);
	}
	if (err == GH_OK)
		err = gh_audit_operator_append(dir, cli_operator(), action,
		    "org", org.id, changes);
	if (err == GH_OK)
		err = gh_db_commit(dir);
	json_decref(changes);
	gh_db_release(dir);
	if (err == GH_ERR_NOTFOUND) {
		fprintf(stderr, "gatehouse: no organisation '%s'\n", slug);
		return EXIT_FAIL;
	}
	if (err != GH_OK) {
		fprintf(stderr, "gatehouse: %s\n", gh_err_str(err));
		return EXIT_FAIL;
	}
	printf("%s is now %s\n", slug, state);
	return 0;
}

struct purge_list {
	struct gh_org orgs[64];
	size_t n;
};

static void
collect_due(const struct gh_org *org, void *arg)
{
	struct purge_list *l = arg;

	if (l->n < sizeof l->orgs / sizeof l->orgs[0])
		l->orgs[l->n++] = *org;
}

/* Crypto-shreds one deleted org: destroys its keys (every copy of its data
 * becomes unreadable), removes its tenant database files, records it. */
static gh_err
purge_one(struct gh_store *st, struct gh_kms *kms, const struct gh_config *cfg,
    const struct gh_org *org)
{
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	struct gh_db *dir = NULL;
	char path[PATH_MAX + 96];
	json_t *changes;
	gh_err err;

	gh_store_tenant_evict(st, org->id);
	err = gh_kms_org_shred(kms, org->id);
	if (err != GH_OK && err != GH_ERR_NOTFOUND) {
		fprintf(stderr, "gatehouse: %s: destroying the keys failed: %s\n",
		    org->slug, gh_err_str(err));
		return err;
	}
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%s/%s.db%s", cfg->data_dir,
		    org->region, org->id, suffixes[i]);
		(void)unlink(path);
	}
	changes = json_pack("{s:s}", "slug", org->slug);
	err = gh_store_directory(st, &dir);
	if (err == GH_OK)
		err = gh_db_begin(dir);
	if (err == GH_OK)
		err = gh_identity_org_mark_purged(dir, org->id);
	if (err == GH_OK)
		err = gh_audit_operator_append(dir, cli_operator(), "org.purge",
		    "org", org->id, changes);
	if (err == GH_OK)
		err = gh_db_commit(dir);
	if (err != GH_OK && dir != NULL)
		gh_db_rollback(dir);
	gh_db_release(dir);
	json_decref(changes);
	if (err != GH_OK)
		fprintf(stderr, "gatehouse: %s: keys destroyed but not recorded: "
		    "%s\n", org->slug, gh_err_str(err));
	else
		printf("purged %s (id %s): its keys are destroyed and its data "
		    "is unreadable\n", org->slug, org->id);
	return err;
}

static int
org_purge(struct gh_store *st, struct gh_kms *kms, const struct gh_config *cfg,
    const struct cli_opts *o)
{
	struct purge_list l = { .n = 0 };
	struct gh_db *dir = NULL;
	int64_t before;
	gh_err err;

	/* --force SLUG: this deleted org now, whatever the retention. */
	before = o->force ? INT64_MAX : gh_now_ms() -
	    (int64_t)cfg->org_retention_days * 86400000;
	err = gh_store_directory(st, &dir);
	if (err == GH_OK)
		err = gh_identity_org_purge_due(dir, before, collect_due, &l);
	gh_db_release(dir);
	if (err != GH_OK) {
		fprintf(stderr, "gatehouse: %s\n", gh_err_str(err));
		return EXIT_FAIL;
	}
	for (size_t i = 0; i < l.n; i++) {
		if (o->nargs == 1 && strcmp(l.orgs[i].slug, o->args[0]) != 0)
			continue;
		if (purge_one(st, kms, cfg, &l.orgs[i]) != GH_OK)
			return EXIT_FAIL;
		if (o->nargs == 1)
			return 0;
	}
	if (o->nargs == 1) {
		fprintf(stderr, "gatehouse: %s is not a deleted organisation "
		    "due for purging%s\n", o->args[0], o->force ? "" :
		    " (use --force to skip the retention period)");
		return EXIT_FAIL;
	}
	if (l.n == 0)
		printf("no deleted organisation is past its retention period\n");
	return 0;
}

int
cmd_org(int argc, char **argv)
{
	struct gh_config cfg;
	struct gh_store *st = NULL;
	struct gh_kms *kms = NULL;
	struct cli_opts o;
	struct gh_org org;
	const char *sub;
	int rc = EXIT_USAGE;

	if (argc < 1) {
		fprintf(stderr, "gatehouse: org create|list|show|suspend|"
		    "activate|delete ...\n");
		return EXIT_USAGE;
	}
	sub = argv[0];
	if (cli_parse(argc - 1, argv + 1, "config data-dir name region json "
	    "force", &o) != GH_OK || cli_config(&o, &cfg) != GH_OK)
		return EXIT_USAGE;
	if (o.force && (strcmp(sub, "purge") != 0 || o.nargs != 1)) {
		fprintf(stderr, "gatehouse: --force goes with org purge SLUG\n");
		return EXIT_USAGE;
	}
	if (strcmp(sub, "list") != 0 && strcmp(sub, "purge") != 0 &&
	    o.nargs != 1) {
		fprintf(stderr, "gatehouse: org %s SLUG\n", sub);
		return EXIT_USAGE;
	}
	if (strcmp(sub, "create") != 0 && strcmp(sub, "list") != 0 &&
	    strcmp(sub, "show") != 0 && strcmp(sub, "suspend") != 0 &&
	    strcmp(sub, "activate") != 0 && strcmp(sub, "delete") != 0 &&
	    strcmp(sub, "purge") != 0) {
		fprintf(stderr, "gatehouse: unknown org command '%s'\n", sub);
		return EXIT_USAGE;
	}
	if (cli_store(&cfg, &st, &kms) != GH_OK)
		return EXIT_FAIL;
	if (strcmp(sub, "create") == 0) {
		gh_err err = cli_org_create(st, kms, o.args[0],
		    o.name ? o.name : o.args[0],
		    o.region ? o.region : cfg.default_region, &org);

		rc = err == GH_OK ? 0 : err == GH_ERR_INVALID ? EXIT_USAGE :
		    EXIT_FAIL;
		if (err == GH_OK)
			printf("created %s (id %s, region %s)\n", org.slug,
			    org.id, org.region);
	} else if (strcmp(sub, "list") == 0) {
		rc = org_list(st, o.json);
	} else if (strcmp(sub, "show") == 0) {
		rc = org_show(st, o.args[0], o.json);
	} else if (strcmp(sub, "suspend") == 0) {
		rc = org_set_state(st, o.args[0], "suspended", "org.suspend");
	} else if (strcmp(sub, "activate") == 0) {
		rc = org_set_state(st, o.args[0], "active", "org.activate");
	} else if (strcmp(sub, "purge") == 0) {
		rc = org_purge(st, kms, &cfg, &o);
	} else {
		rc = org_set_state(st, o.args[0], "deleted", "org.delete");
	}
	cli_close(st, kms);
	return rc;
}
