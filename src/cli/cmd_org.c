/*
 * cmd_org.c: gatehouse org create|list|show|suspend|activate|delete.
 * Every change writes the directory's operator audit in the same
 * transaction. No secrets.
 */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

gh_err
cli_org_create(struct gh_store *st, const char *slug, const char *name,
    const char *region, struct gh_org *out)
{
	struct gh_db *dir = NULL, *tenant = NULL;
	json_t *changes = NULL;
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
	/* The tenant database exists before the organisation row commits,
	 * so a listed organisation always has its database. */
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

int
cmd_org(int argc, char **argv)
{
	struct gh_config cfg;
	struct gh_store *st = NULL;
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
	if (cli_parse(argc - 1, argv + 1, "config data-dir name region json",
	    &o) != GH_OK || cli_config(&o, &cfg) != GH_OK)
		return EXIT_USAGE;
	if (strcmp(sub, "list") != 0 && o.nargs != 1) {
		fprintf(stderr, "gatehouse: org %s SLUG\n", sub);
		return EXIT_USAGE;
	}
	if (strcmp(sub, "create") != 0 && strcmp(sub, "list") != 0 &&
	    strcmp(sub, "show") != 0 && strcmp(sub, "suspend") != 0 &&
	    strcmp(sub, "activate") != 0 && strcmp(sub, "delete") != 0) {
		fprintf(stderr, "gatehouse: unknown org command '%s'\n", sub);
		return EXIT_USAGE;
	}
	if (cli_store(&cfg, &st) != GH_OK)
		return EXIT_FAIL;
	if (strcmp(sub, "create") == 0) {
		gh_err err = cli_org_create(st, o.args[0],
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
	} else {
		rc = org_set_state(st, o.args[0], "deleted", "org.delete");
	}
	gh_store_free(st);
	return rc;
}
