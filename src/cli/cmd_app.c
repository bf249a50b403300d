/*
 * cmd_app.c: gatehouse app create|list|show|delete|secret|assign. Apps of
 * kind oidc are OpenID Connect clients: their settings go through the same
 * check as PUT /apps/{id}/oidc (gh_api_oidc_client_check), and a
 * confidential client's secret is printed once. Every change commits with
 * its audit event (actor "operator"), as the API's do; a refused change
 * writes nothing.
 *
 * Untrusted input: the arguments (operator-controlled; validated by
 * src/access and src/api). Secrets: client secrets (printed once to the
 * operator's terminal, then wiped; only their digest is kept).
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

static void
operator_actor(struct gh_audit_actor *a)
{
	memset(a, 0, sizeof *a);
	a->type = "operator";
	a->id = cli_operator();
}

static json_t *
strings_json(const struct cli_multi *m)
{
	json_t *a = json_array();

	for (int i = 0; i < m->n; i++)
		json_array_append_new(a, json_string(m->v[i]));
	return a;
}

/* The body of PUT /apps/{id}/oidc that the options say: --settings JSON
 * first, the flags over it. NULL (after printing why) when a JSON option
 * is not an object. */
static json_t *
client_body(const struct cli_opts *o)
{
	json_error_t je;
	json_t *body, *claims;

	body = o->settings ? json_loads(o->settings, 0, &je) : json_object();
	if (!json_is_object(body)) {
		fprintf(stderr, "gatehouse: --settings must be a JSON object\n");
		json_decref(body);
		return NULL;
	}
	if (o->redirect_uris.n > 0)
		json_object_set_new(body, "redirect_uris",
		    strings_json(&o->redirect_uris));
	if (o->post_logout_uris.n > 0)
		json_object_set_new(body, "post_logout_redirect_uris",
		    strings_json(&o->post_logout_uris));
	if (o->grant_types.n > 0)
		json_object_set_new(body, "grant_types",
		    strings_json(&o->grant_types));
	if (o->public_client)
		json_object_set_new(body, "client_type", json_string("public"));
	if (o->auth_method != NULL)
		json_object_set_new(body, "token_endpoint_auth_method",
		    json_string(o->auth_method));
	if (o->pkce)
		json_object_set_new(body, "pkce_required", json_true());
	if (o->claims != NULL) {
		claims = json_loads(o->claims, 0, &je);
		if (!json_is_object(claims)) {
			fprintf(stderr, "gatehouse: --claims must be a JSON "
			    "object\n");
			json_decref(claims);
			json_decref(body);
			return NULL;
		}
		json_object_set_new(body, "claims", claims);
	}
	return body;
}

static bool
client_opts_given(const struct cli_opts *o)
{
	return o->redirect_uris.n > 0 || o->post_logout_uris.n > 0 ||
	    o->grant_types.n > 0 || o->public_client || o->auth_method ||
	    o->pkce || o->claims || o->settings;
}

static gh_err
do_create(struct gh_db *db, const struct cli_opts *o)
{
	char msg[256], secret[GH_API_OIDC_SECRET_LEN + 1];
	const char *kind = o->kind ? o->kind : "other";
	struct gh_audit_actor actor;
	struct gh_access_app a;
	json_t *body = NULL, *s = NULL, *changes = NULL;
	bool oidc = strcmp(kind, "oidc") == 0;
	gh_err err;

	secret[0] = '\0';
	operator_actor(&actor);
	if (o->name == NULL || gh_access_app_init(&a, o->name) != GH_OK) {
		fprintf(stderr, "gatehouse: --name: 1 to %d bytes of text "
		    "without control characters, not starting or ending with "
		    "a space\n", GH_APP_NAME_MAX);
		return GH_ERR_INVALID;
	}
	if (!gh_access_app_kind_valid(kind)) {
		fprintf(stderr, "gatehouse: --kind: one of oidc, saml, other\n");
		return GH_ERR_INVALID;
	}
	if (o->description != NULL &&
	    !gh_access_app_desc_valid(o->description)) {
		fprintf(stderr, "gatehouse: --description: at most %d bytes of "
		    "text without control characters\n", GH_APP_DESC_MAX);
		return GH_ERR_INVALID;
	}
	if (!oidc && client_opts_given(o)) {
		fprintf(stderr, "gatehouse: client options need --kind oidc\n");
		return GH_ERR_INVALID;
	}
	gh_strlcpy(a.kind, kind, sizeof a.kind);
	if (o->description != NULL)
		gh_strlcpy(a.description, o->description,
		    sizeof a.description);
	a.first_party = o->first_party;
	if (oidc) {
		if ((body = client_body(o)) == NULL)
			return GH_ERR_INVALID;
		err = gh_api_oidc_client_check(db, body, &s, msg, sizeof msg);
		json_decref(body);
		if (err != GH_OK) {
			fprintf(stderr, "gatehouse: %s\n", msg);
			return err;
		}
	}
	err = gh_access_app_insert(db, &a);
	if (err == GH_ERR_CONFLICT)
		fprintf(stderr, "gatehouse: an app named '%s' exists (names "
		    "ignore case)\n", a.name);
	if (err == GH_OK) {
		changes = gh_access_app_json(&a);
		json_object_del(changes, "id");
		json_object_del(changes, "created_at");
		json_object_del(changes, "updated_at");
		err = gh_audit_append(db, &actor, "app.create", "app", a.id,
		    changes);
	}
	if (err == GH_OK && oidc)
		err = gh_api_oidc_client_save(db, &actor, a.id, s);
	if (err == GH_OK && oidc && strcmp(json_string_value(
	    json_object_get(s, "client_type")), "confidential") == 0)
		err = gh_api_oidc_secret_rotate(db, &actor, a.id, secret);
	if (err == GH_OK) {
		printf("created app %s (id %s, kind %s)\n", a.name, a.id,
		    a.kind);
		if (oidc)
			printf("client_id: %s\n", a.id);
		if (secret[0] != '\0')
			printf("client_secret: %s\n(shown only now: store it "
			    "in the client's configuration)\n", secret);
	}
	gh_wipe(secret, sizeof secret);
	json_decref(changes);
	json_decref(s);
	return err;
}

static gh_err
find_app(struct gh_db *db, const struct cli_opts *o, struct gh_access_app *a)
{
	gh_err err;

	if (o->app == NULL) {
		fprintf(stderr, "gatehouse: --app ID is required\n");
		return GH_ERR_INVALID;
	}
	err = gh_access_app_get(db, o->app, a);
	if (err == GH_ERR_NOTFOUND)
		fprintf(stderr, "gatehouse: no app '%s'\n", o->app);
	return err;
}

static void
print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (s != NULL)
		puts(s);
	free(s);
}

static gh_err
do_list(struct gh_db *db, const struct cli_opts *o)
{
	json_t *all = json_array(), *page = NULL, *v;
	char *cursor = NULL, *next = NULL;
	size_t i;
	gh_err err = all != NULL ? GH_OK : GH_ERR_NOMEM;

	while (err == GH_OK) {
		err = gh_access_app_list(db, NULL, cursor, GH_APP_LIST_MAX,
		    &page, &next);
		if (err != GH_OK)
			break;
		json_array_extend(all, page);
		json_decref(page);
		free(cursor);
		cursor = next;
		if (next == NULL)
			break;
	}
	free(cursor);
	if (err == GH_OK && o->json) {
		print_json(all);
	} else if (err == GH_OK) {
		printf("%-32s  %-5s  %-8s  %s\n", "ID", "KIND", "STATE",
		    "NAME");
		json_array_foreach(all, i, v)
			printf("%-32s  %-5s  %-8s  %s\n",
			    json_string_value(json_object_get(v, "id")),
			    json_string_value(json_object_get(v, "kind")),
			    json_string_value(json_object_get(v, "state")),
			    json_string_value(json_object_get(v, "name")));
	}
	json_decref(all);
	return err;
}

static gh_err
do_show(struct gh_db *db, const struct cli_opts *o)
{
	struct gh_access_app a;
	json_t *j = NULL, *v = NULL;
	gh_err err;

	err = find_app(db, o, &a);
	if (err == GH_OK)
		j = gh_access_app_json(&a);
	if (err == GH_OK)
		err = gh_access_role_list(db, a.id, &v);
	if (err == GH_OK) {
		json_object_set_new(j, "roles", v);
		err = gh_access_assignment_list(db, a.id, &v);
	}
	if (err == GH_OK) {
		json_object_set_new(j, "assignments", v);
		v = NULL;
		if (strcmp(a.kind, "oidc") == 0)
			err = gh_api_oidc_client_json(db, a.id, &v);
		if (err == GH_ERR_NOTFOUND)
			err = GH_OK;	/* an oidc app not configured yet */
		if (v != NULL)
			json_object_set_new(j, "oidc", v);
	}
	if (err == GH_OK)
		print_json(j);
	json_decref(j);
	return err;
}

static gh_err
do_delete(struct gh_db *db, const struct cli_opts *o)
{
	struct gh_audit_actor actor;
	struct gh_access_app a;
	int64_t assignments = 0, rules = 0;
	json_t *changes;
	gh_err err;

	operator_actor(&actor);
	err = find_app(db, o, &a);
	if (err == GH_OK)
		err = gh_access_app_delete(db, a.id, &assignments, &rules);
	if (err == GH_OK) {
		changes = json_pack("{s:s, s:I, s:I}", "name", a.name,
		    "assignments_removed", (json_int_t)assignments,
		    "rules_removed", (json_int_t)rules);
		err = gh_audit_append(db, &actor, "app.delete", "app", a.id,
		    changes);
		json_decref(changes);
	}
	if (err == GH_OK)
		printf("deleted app %s (id %s)\n", a.name, a.id);
	return err;
}

static gh_err
do_secret(struct gh_db *db, const struct cli_opts *o)
{
	char secret[GH_API_OIDC_SECRET_LEN + 1];
	struct gh_audit_actor actor;
	struct gh_access_app a;
	gh_err err;

	operator_actor(&actor);
	err = find_app(db, o, &a);
	if (err != GH_OK)
		return err;
	err = gh_api_oidc_secret_rotate(db, &actor, a.id, secret);
	if (err == GH_ERR_NOTFOUND)
		fprintf(stderr, "gatehouse: app %s is not an OpenID Connect "
		    "client\n", a.id);
	else if (err == GH_ERR_CONFLICT)
		fprintf(stderr, "gatehouse: app %s is a public client: it has "
		    "no secret\n", a.id);
	if (err == GH_OK)
		printf("client_id: %s\nclient_secret: %s\n(shown only now; "
		    "the old secret no longer works)\n", a.id, secret);
	gh_wipe(secret, sizeof secret);
	return err;
}

/* The user named by --user: a username, else an email address. */
static gh_err
find_user(struct gh_db *db, const char *arg, char id[static GH_ID_LEN + 1])
{
	struct gh_stmt *st = NULL;
	struct gh_user u;
	bool row = false;
	gh_err err;

	err = gh_identity_user_find(db, arg, &u);
	if (err == GH_OK)
		gh_strlcpy(id, u.id, GH_ID_LEN + 1);
	gh_wipe(&u, sizeof u);
	if (err != GH_ERR_NOTFOUND || strchr(arg, '@') == NULL)
		goto out;
	err = gh_db_prepare(db, "SELECT id FROM users WHERE email = ? "
	    "COLLATE NOCASE", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", arg);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && !row)
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK)
		gh_strlcpy(id, gh_stmt_text(st, 0), GH_ID_LEN + 1);
	gh_stmt_free(st);
out:
	if (err == GH_ERR_NOTFOUND)
		fprintf(stderr, "gatehouse: no user '%s'\n", arg);
	return err;
}

static gh_err
find_principal(struct gh_db *db, const struct cli_opts *o,
    char id[static GH_ID_LEN + 1])
{
	struct gh_group g;
	gh_err err;

	if (o->user != NULL)
		return find_user(db, o->user, id);
	err = gh_identity_group_find(db, o->group, &g);
	if (err == GH_OK)
		gh_strlcpy(id, g.id, GH_ID_LEN + 1);
	else if (err == GH_ERR_NOTFOUND)
		fprintf(stderr, "gatehouse: no group '%s'\n", o->group);
	return err;
}

static gh_err
do_assign(struct gh_db *db, const struct cli_opts *o)
{
	const char *type = o->user ? "user" : "group";
	char pid[GH_ID_LEN + 1], id[GH_ID_LEN + 1];
	struct gh_audit_actor actor;
	struct gh_access_app a;
	json_t *view = NULL, *changes;
	bool role_ok = true;
	gh_err err;

	operator_actor(&actor);
	if ((o->user == NULL) == (o->group == NULL)) {
		fprintf(stderr, "gatehouse: app assign needs one of --user and "
		    "--group\n");
		return GH_ERR_INVALID;
	}
	err = find_app(db, o, &a);
	if (err == GH_OK)
		err = find_principal(db, o, pid);
	if (err == GH_OK && o->role != NULL)
		err = gh_access_role_exists(db, a.id, o->role, &role_ok);
	if (err == GH_OK && !role_ok) {
		fprintf(stderr, "gatehouse: app %s has no role '%s'\n", a.id,
		    o->role);
		err = GH_ERR_INVALID;
	}
	if (err == GH_OK)
		err = gh_access_assignment_add(db, a.id, type, pid, o->role,
		    NULL, actor.id, id);
	if (err == GH_ERR_CONFLICT)
		fprintf(stderr, "gatehouse: that assignment exists\n");
	if (err == GH_OK)
		err = gh_access_assignment_get(db, a.id, id, &view);
	if (err == GH_OK) {
		changes = json_pack("{s:s, s:s, s:s, s:s, s:o}",
		    "assignment_id", id, "principal_type", type, "principal_id",
		    pid, "principal_name", json_string_value(json_object_get(
		    view, "principal_name")), "role", o->role ?
		    json_string(o->role) : json_null());
		err = gh_audit_append(db, &actor, "app.assignment.create",
		    "app", a.id, changes);
		json_decref(changes);
	}
	if (err == GH_OK)
		printf("assigned %s %s to app %s (assignment %s)\n", type,
		    o->user ? o->user : o->group, a.name, id);
	json_decref(view);
	return err;
}

static const struct {
	const char *name;
	const char *options;	/* allowed besides config data-dir org */
	bool writes;
	gh_err (*run)(struct gh_db *, const struct cli_opts *);
} subs[] = {
	{ "create", "name kind description first-party redirect-uri "
	    "post-logout-redirect-uri grant-type public auth-method pkce "
	    "claims settings", true, do_create },
	{ "list", "json", false, do_list },
	{ "show", "app json", false, do_show },
	{ "delete", "app", true, do_delete },
	{ "secret", "app", true, do_secret },
	{ "assign", "app user group role", true, do_assign },
};

int
cmd_app(int argc, char **argv)
{
	struct gh_config cfg;
	struct gh_store *st = NULL;
	struct gh_kms *kms = NULL;
	struct gh_db *db = NULL;
	struct gh_org org;
	struct cli_opts o;
	char allowed[256];
	size_t k;
	gh_err err;

	for (k = 0; argc >= 1 && k < sizeof subs / sizeof *subs; k++)
		if (strcmp(argv[0], subs[k].name) == 0)
			break;
	if (argc < 1 || k == sizeof subs / sizeof *subs) {
		fprintf(stderr, "gatehouse: app create|list|show|delete|secret|"
		    "assign --org SLUG ... (see gatehouse --help)\n");
		return EXIT_USAGE;
	}
	snprintf(allowed, sizeof allowed, "config data-dir org %s",
	    subs[k].options);
	if (cli_parse(argc - 1, argv + 1, allowed, &o) != GH_OK)
		return EXIT_USAGE;
	if (o.nargs != 0) {
		fprintf(stderr, "gatehouse: app %s takes options only\n",
		    subs[k].name);
		return EXIT_USAGE;
	}
	err = cli_open_org(&o, &cfg, &st, &kms, &org);
	if (err != GH_OK)
		return status_of(err);
	err = gh_store_tenant(st, org.id, org.region, false, &db);
	if (err == GH_OK && !subs[k].writes) {
		err = subs[k].run(db, &o);
	} else if (err == GH_OK) {
		err = gh_db_begin(db);
		if (err == GH_OK)
			err = subs[k].run(db, &o);
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
