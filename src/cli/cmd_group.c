/*
 * cmd_group.c: gatehouse group create|list|add-member|remove-member.
 * Changes write the organisation's audit log with actor "operator", as
 * the API's do. Untrusted input: the arguments (validated by
 * src/identity). Secrets: none.
 */
#include "access/access.h"
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

static int
status_of(gh_err err)
{
	return err == GH_OK ? 0 : err == GH_ERR_INVALID ? EXIT_USAGE : EXIT_FAIL;
}

static gh_err
audit(struct gh_db *db, const char *action, const char *group_id,
    json_t *changes)
{
	struct gh_audit_actor a;

	memset(&a, 0, sizeof a);
	a.type = "operator";
	a.id = cli_operator();
	return gh_audit_append(db, &a, action, "group", group_id, changes);
}

static gh_err
do_create(struct gh_db *db, const struct cli_opts *o)
{
	const char *why = NULL;
	struct gh_group g;
	json_t *changes = NULL;
	gh_err err;

	if (gh_identity_group_init(&g, o->args[0]) != GH_OK) {
		fprintf(stderr, "gatehouse: a group name is 1 to %d characters "
		    "of letters, digits, space, '.', '_' and '-'\n",
		    GH_GROUP_NAME_MAX);
		return GH_ERR_INVALID;
	}
	err = gh_identity_group_insert(db, &g, &why);
	if (err == GH_OK) {
		changes = gh_identity_group_json(&g);
		json_object_del(changes, "created_at");
		json_object_del(changes, "updated_at");
		err = audit(db, "group.create", g.id, changes);
		json_decref(changes);
	}
	if (err == GH_ERR_CONFLICT)
		fprintf(stderr, "gatehouse: a group named '%s' exists\n", g.name);
	else if (err == GH_OK)
		printf("created group %s (id %s)\n", g.name, g.id);
	return err;
}

/* GROUP is an id or a name. */
static gh_err
find_group(struct gh_db *db, const char *arg, struct gh_group *g)
{
	gh_err err;

	err = gh_identity_group_get(db, arg, g);
	if (err == GH_ERR_NOTFOUND)
		err = gh_identity_group_find(db, arg, g);
	if (err == GH_ERR_NOTFOUND)
		fprintf(stderr, "gatehouse: no group '%s'\n", arg);
	return err;
}

static gh_err
do_member(struct gh_db *db, struct gh_kms *kms, const struct cli_opts *o,
    bool add)
{
	struct gh_group g;
	struct gh_user u;
	bool added = false;
	json_t *changes;
	gh_err err;

	memset(&u, 0, sizeof u);
	err = find_group(db, o->args[0], &g);
	if (err == GH_OK) {
		err = gh_identity_user_find(db, o->args[1], &u);
		if (err == GH_ERR_NOTFOUND)
			fprintf(stderr, "gatehouse: no user '%s'\n", o->args[1]);
	}
	if (err == GH_OK && add)
		err = gh_identity_group_member_add(db, g.id, u.id, gh_now_ms(),
		    &added);
	if (err == GH_OK && !add) {
		err = gh_identity_group_member_remove(db, g.id, u.id);
		if (err == GH_ERR_NOTFOUND)
			fprintf(stderr, "gatehouse: %s is not a member of %s\n",
			    u.username, g.name);
	}
	if (err == GH_OK && (added || !add)) {
		changes = json_pack("{s:s, s:s, s:s}", "group_name", g.name,
		    "user_id", u.id, "username", u.username);
		err = audit(db, add ? "group.member.add" :
		    "group.member.remove", g.id, changes);
		json_decref(changes);
	}
	/* Rules over group() may now match or stop matching. */
	if (err == GH_OK && (added || !add))
		err = gh_access_rules_apply_user(db, kms, u.id, NULL);
	if (err == GH_OK)
		printf(add ? (added ? "added %s to %s\n" :
		    "%s is already a member of %s\n") : "removed %s from %s\n",
		    u.username, g.name);
	gh_wipe(&u, sizeof u);
	return err;
}

static gh_err
do_list(struct gh_db *db, const struct cli_opts *o)
{
	struct gh_group_filter f = { .limit = GH_GROUP_LIST_MAX };
	json_t *all = json_array(), *page = NULL, *v;
	char *next = NULL, *s;
	size_t i;
	gh_err err = all != NULL ? GH_OK : GH_ERR_NOMEM;

	while (err == GH_OK) {
		err = gh_identity_group_list(db, &f, &page, &next);
		if (err != GH_OK)
			break;
		json_array_extend(all, page);
		json_decref(page);
		free((char *)f.cursor);
		f.cursor = next;
		if (next == NULL)
			break;
	}
	free((char *)f.cursor);
	if (err == GH_OK && o->json) {
		s = json_dumps(all, JSON_INDENT(2) | JSON_SORT_KEYS);
		if (s != NULL)
			puts(s);
		free(s);
	} else if (err == GH_OK) {
		printf("%-32s  %-32s  %s\n", "ID", "PARENT", "NAME");
		json_array_foreach(all, i, v) {
			const char *parent = json_string_value(
			    json_object_get(v, "parent_id"));

			printf("%-32s  %-32s  %s\n",
			    json_string_value(json_object_get(v, "id")),
			    parent ? parent : "-",
			    json_string_value(json_object_get(v, "name")));
		}
	}
	json_decref(all);
	return err;
}

int
cmd_group(int argc, char **argv)
{
	struct gh_config cfg;
	struct gh_store *st = NULL;
	struct gh_kms *kms = NULL;
	struct gh_db *db = NULL;
	struct gh_org org;
	struct cli_opts o;
	const char *sub;
	int want;
	gh_err err;

	if (argc < 1) {
		fprintf(stderr, "gatehouse: group create|list|add-member|"
		    "remove-member --org SLUG ...\n");
		return EXIT_USAGE;
	}
	sub = argv[0];
	if (strcmp(sub, "create") == 0)
		want = 1;
	else if (strcmp(sub, "list") == 0)
		want = 0;
	else if (strcmp(sub, "add-member") == 0 ||
	    strcmp(sub, "remove-member") == 0)
		want = 2;
	else {
		fprintf(stderr, "gatehouse: unknown group command '%s'\n", sub);
		return EXIT_USAGE;
	}
	if (cli_parse(argc - 1, argv + 1, "config data-dir org json", &o) !=
	    GH_OK)
		return EXIT_USAGE;
	if (o.nargs != want) {
		fprintf(stderr, "gatehouse: group %s --org SLUG%s\n", sub,
		    want == 1 ? " NAME" : want == 2 ? " GROUP USERNAME" : "");
		return EXIT_USAGE;
	}
	err = cli_open_org(&o, &cfg, &st, &kms, &org);
	if (err != GH_OK)
		return status_of(err);
	err = gh_store_tenant(st, org.id, org.region, false, &db);
	if (err == GH_OK && want == 0) {
		err = do_list(db, &o);
	} else if (err == GH_OK) {
		err = gh_db_begin(db);
		if (err == GH_OK)
			err = want == 1 ? do_create(db, &o) :
			    do_member(db, kms, &o,
			    strcmp(sub, "add-member") == 0);
		if (err == GH_OK)
			err = gh_db_commit(db);
		if (err != GH_OK)
			gh_db_rollback(db);
	}
	if (err != GH_OK && err != GH_ERR_NOTFOUND && err != GH_ERR_CONFLICT &&
	    err != GH_ERR_INVALID)
		fprintf(stderr, "gatehouse: %s\n", gh_err_str(err));
	gh_db_release(db);
	cli_close(st, kms);
	return status_of(err);
}
