/*
 * cmd_user.c: gatehouse user add|list|show|disable|reset-password, and the
 * user creation that init shares. Changes write the organisation's audit
 * log with actor "operator".
 * Secrets: passwords from the environment or generated (printed once to
 * the operator's terminal, then wiped).
 */
#include "access/access.h"
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

static void
operator_actor(struct gh_audit_actor *a)
{
	memset(a, 0, sizeof *a);
	a->type = "operator";
	a->id = cli_operator();
}

/* A password from env, or a generated one (*generated set). Checked
 * against the org's policy; prints why it is refused. */
static gh_err
pick_password(struct gh_db *db, const struct gh_org *org, const char *env,
    const char *username, const char *email, char **pw_out, bool *generated)
{
	struct gh_pw_context pc = { username, email, org->slug, org->name };
	struct gh_pw_policy pol;
	const char *v = getenv(env), *code;
	char reason[200];
	gh_err err;

	*pw_out = NULL;
	*generated = false;
	err = gh_api_pw_policy_load(db, &pol);
	if (err != GH_OK)
		return err;
	for (int tries = 0; tries < 5; tries++) {
		if (v != NULL && v[0] != '\0') {
			*pw_out = strdup(v);
			if (*pw_out == NULL)
				return GH_ERR_NOMEM;
		} else {
			err = cli_random_password(pw_out);
			if (err != GH_OK)
				return err;
			*generated = true;
		}
		err = gh_auth_pw_policy_check(&pol, *pw_out, &pc, &code, reason,
		    sizeof reason);
		if (err == GH_OK)
			return GH_OK;
		gh_str_wipe_free(*pw_out);
		*pw_out = NULL;
		if (!*generated) {
			fprintf(stderr, "gatehouse: %s is refused by the password "
			    "policy (%s): %s\n", env, code, reason);
			return GH_ERR_INVALID;
		}
	}
	return GH_ERR_INTERNAL;
}

gh_err
cli_user_create(struct gh_store *st, struct gh_kms *kms,
    const struct gh_config *cfg, const struct gh_org *org,
    const struct cli_opts *o, const char *username,
    const char *role, const char *env, char **pw_out, bool *generated,
    struct gh_user *out)
{
	struct gh_audit_actor actor;
	struct gh_pw_params pp;
	struct gh_db *db = NULL;
	struct gh_user u;
	char *pw = NULL, *hash = NULL;
	json_t *changes = NULL;
	gh_err err;

	*pw_out = NULL;
	memset(&u, 0, sizeof u);
	if (!gh_identity_username_valid(username)) {
		fprintf(stderr, "gatehouse: username '%s': 1 to %d letters, "
		    "digits or ._@+-\n", username, GH_USERNAME_MAX);
		return GH_ERR_INVALID;
	}
	if (o->email && !gh_identity_email_valid(o->email)) {
		fprintf(stderr, "gatehouse: --email: not a valid address\n");
		return GH_ERR_INVALID;
	}
	if (o->display_name &&
	    !gh_identity_display_name_valid(o->display_name)) {
		fprintf(stderr, "gatehouse: --display-name: at most %d bytes of "
		    "text\n", GH_DISPLAY_NAME_MAX);
		return GH_ERR_INVALID;
	}
	if (!gh_identity_role_valid(role)) {
		fprintf(stderr, "gatehouse: --role: one of owner, admin, "
		    "member\n");
		return GH_ERR_INVALID;
	}
	config_pw_params(cfg, &pp);
	err = gh_store_tenant(st, org->id, org->region, false, &db);
	if (err == GH_OK)
		err = pick_password(db, org, env, username, o->email, &pw,
		    generated);
	if (err == GH_OK)
		err = gh_auth_pw_hash(&pp, pw, &hash);
	if (err == GH_OK)
		err = gh_identity_user_init(&u, username);
	if (err == GH_OK) {
		if (o->email)
			gh_strlcpy(u.email, o->email, sizeof u.email);
		if (o->display_name)
			gh_strlcpy(u.display_name, o->display_name,
			    sizeof u.display_name);
		gh_strlcpy(u.role, role, sizeof u.role);
		gh_strlcpy(u.password_hash, hash, sizeof u.password_hash);
		u.password_changed_at = u.created_at;
		changes = json_pack("{s:s, s:s?, s:s, s:s, s:s}", "username",
		    u.username, "email", u.email[0] ? u.email : NULL,
		    "display_name", u.display_name, "role", u.role, "password",
		    "set");
		operator_actor(&actor);
		err = gh_db_begin(db);
	}
	if (err == GH_OK)
		err = gh_identity_user_insert(db, &u);
	if (err == GH_OK)
		err = gh_audit_append(db, &actor, "user.create", "user", u.id,
		    changes);
	if (err == GH_OK)
		err = gh_access_rules_apply_user(db, kms, u.id, NULL);
	if (err == GH_OK)
		err = gh_db_commit(db);
	if (err != GH_OK) {
		if (db != NULL)
			gh_db_rollback(db);
		if (err == GH_ERR_CONFLICT)
			fprintf(stderr, "gatehouse: username '%s' is taken in "
			    "%s\n", username, org->slug);
		else if (err != GH_ERR_INVALID)
			fprintf(stderr, "gatehouse: cannot add the user: %s\n",
			    gh_err_str(err));
		gh_str_wipe_free(pw);
		pw = NULL;
	} else {
		*out = u;
		*pw_out = pw;
	}
	json_decref(changes);
	gh_str_wipe_free(hash);
	gh_db_release(db);
	gh_wipe(&u, sizeof u);
	return err;
}

gh_err
cli_open_org(const struct cli_opts *o, struct gh_config *cfg, struct gh_store **st,
    struct gh_kms **kms, struct gh_org *org)
{
	struct gh_db *dir = NULL;
	gh_err err;

	*st = NULL;
	*kms = NULL;
	if (o->org == NULL) {
		fprintf(stderr, "gatehouse: --org SLUG is required\n");
		return GH_ERR_INVALID;
	}
	err = cli_config(o, cfg);
	if (err != GH_OK)
		return err;
	err = cli_store(cfg, st, kms);
	if (err != GH_OK)
		return GH_ERR_STORE;
	err = gh_store_directory(*st, &dir);
	if (err == GH_OK)
		err = gh_identity_org_get(dir, o->org, org);
	gh_db_release(dir);
	if (err == GH_OK && strcmp(org->state, "deleted") == 0)
		err = GH_ERR_NOTFOUND;
	if (err == GH_ERR_NOTFOUND)
		fprintf(stderr, "gatehouse: no organisation '%s'\n", o->org);
	else if (err != GH_OK)
		fprintf(stderr, "gatehouse: %s\n", gh_err_str(err));
	if (err != GH_OK) {
		cli_close(*st, *kms);
		*st = NULL;
		*kms = NULL;
		return GH_ERR_STORE;
	}
	return GH_OK;
}

static int
status_of(gh_err err)
{
	return err == GH_OK ? 0 : err == GH_ERR_INVALID ? EXIT_USAGE : EXIT_FAIL;
}

static void
print_user(const struct gh_user *u, bool json)
{
	char created[25];

	if (json) {
		json_t *j = gh_identity_user_json(u);
		char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

		if (s != NULL)
			puts(s);
		free(s);
		json_decref(j);
		return;
	}
	gh_time_rfc3339(u->created_at, created);
	printf("id:           %s\nusername:     %s\nemail:        %s\n"
	    "display name: %s\nrole:         %s\nstate:        %s\n"
	    "created:      %s\n", u->id, u->username, u->email,
	    u->display_name, u->role, u->state, created);
}

static int
user_add(const struct cli_opts *o)
{
	struct gh_config cfg;
	struct gh_store *st;
	struct gh_kms *kms;
	struct gh_user u;
	struct gh_org org;
	bool generated;
	char *pw = NULL;
	gh_err err;

	if (o->nargs != 1) {
		fprintf(stderr, "gatehouse: user add --org SLUG USERNAME\n");
		return EXIT_USAGE;
	}
	err = cli_open_org(o, &cfg, &st, &kms, &org);
	if (err != GH_OK)
		return status_of(err);
	err = cli_user_create(st, kms, &cfg, &org, o, o->args[0],
	    o->role ? o->role : "member", "GATEHOUSE_USER_PASSWORD", &pw,
	    &generated, &u);
	if (err == GH_OK) {
		printf("added %s to %s (id %s)\n", u.username, org.slug, u.id);
		if (generated)
			printf("password: %s   (shown once)\n", pw);
	}
	gh_str_wipe_free(pw);
	gh_wipe(&u, sizeof u);
	cli_close(st, kms);
	return status_of(err);
}

static int
user_list(const struct cli_opts *o)
{
	struct gh_user_filter f = { .limit = GH_USER_LIST_MAX };
	struct gh_config cfg;
	struct gh_db *db = NULL;
	struct gh_store *st;
	struct gh_kms *kms;
	struct gh_org org;
	json_t *all, *page = NULL;
	char *next = NULL;
	gh_err err;

	err = cli_open_org(o, &cfg, &st, &kms, &org);
	if (err != GH_OK)
		return status_of(err);
	all = json_array();
	err = gh_store_tenant(st, org.id, org.region, false, &db);
	while (err == GH_OK) {
		err = gh_identity_user_list(db, &f, &page, &next);
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
	gh_db_release(db);
	if (err == GH_OK && o->json) {
		char *s = json_dumps(all, JSON_INDENT(2) | JSON_SORT_KEYS);

		if (s != NULL)
			puts(s);
		free(s);
	} else if (err == GH_OK) {
		size_t i;
		json_t *v;

		printf("%-32s  %-24s  %-8s  %-8s  %s\n", "ID", "USERNAME",
		    "ROLE", "STATE", "EMAIL");
		json_array_foreach(all, i, v) {
			const char *email = json_string_value(
			    json_object_get(v, "email"));

			printf("%-32s  %-24s  %-8s  %-8s  %s\n",
			    json_string_value(json_object_get(v, "id")),
			    json_string_value(json_object_get(v, "username")),
			    json_string_value(json_object_get(v, "role")),
			    json_string_value(json_object_get(v, "state")),
			    email ? email : "");
		}
	} else {
		fprintf(stderr, "gatehouse: %s\n", gh_err_str(err));
	}
	json_decref(all);
	cli_close(st, kms);
	return status_of(err);
}

/* Finds USERNAME in --org; with fn, runs fn in a transaction. */
static int
user_find_do(const struct cli_opts *o,
    gh_err (*fn)(struct gh_db *db, struct gh_kms *kms,
    const struct gh_config *cfg, const struct gh_org *org, struct gh_user *u))
{
	struct gh_config cfg;
	struct gh_db *db = NULL;
	struct gh_store *st;
	struct gh_kms *kms;
	struct gh_user u;
	struct gh_org org;
	gh_err err;

	if (o->nargs != 1) {
		fprintf(stderr, "gatehouse: expected --org SLUG USERNAME\n");
		return EXIT_USAGE;
	}
	err = cli_open_org(o, &cfg, &st, &kms, &org);
	if (err != GH_OK)
		return status_of(err);
	err = gh_store_tenant(st, org.id, org.region, false, &db);
	if (err == GH_OK)
		err = gh_identity_user_find(db, o->args[0], &u);
	if (err == GH_ERR_NOTFOUND) {
		fprintf(stderr, "gatehouse: no user '%s' in %s\n", o->args[0],
		    org.slug);
	} else if (err == GH_OK && fn == NULL) {
		print_user(&u, o->json);
	} else if (err == GH_OK) {
		err = fn(db, kms, &cfg, &org, &u);
	} else {
		fprintf(stderr, "gatehouse: %s\n", gh_err_str(err));
	}
	gh_wipe(&u, sizeof u);
	gh_db_release(db);
	cli_close(st, kms);
	return err == GH_OK ? 0 : EXIT_FAIL;
}

/* Writes u, revokes its sessions, audits action with changes and applies
 * the assignment rules to u (a disabled user may leave a rule's users). */
static gh_err
user_commit(struct gh_db *db, struct gh_kms *kms, struct gh_user *u,
    const char *action, json_t *changes)
{
	struct gh_audit_actor actor;
	int64_t n = 0;
	gh_err err;

	operator_actor(&actor);
	err = gh_db_begin(db);
	if (err == GH_OK)
		err = gh_identity_user_update(db, u);
	if (err == GH_OK)
		err = gh_auth_session_revoke_user(db, u->id, &n);
	if (err == GH_OK && n > 0)
		json_object_set_new(changes, "sessions_revoked",
		    json_integer(n));
	if (err == GH_OK && strcmp(u->state, "disabled") == 0)
		err = gh_auth_api_token_revoke_user(db, u->id, &n);
	if (err == GH_OK && strcmp(u->state, "disabled") == 0 && n > 0)
		json_object_set_new(changes, "api_tokens_revoked",
		    json_integer(n));
	if (err == GH_OK)
		err = gh_audit_append(db, &actor, action, "user", u->id,
		    changes);
	if (err == GH_OK)
		err = gh_access_rules_apply_user(db, kms, u->id, NULL);
	if (err == GH_OK)
		err = gh_db_commit(db);
	if (err != GH_OK) {
		gh_db_rollback(db);
		fprintf(stderr, "gatehouse: %s\n", gh_err_str(err));
	}
	return err;
}

static gh_err
do_disable(struct gh_db *db, struct gh_kms *kms, const struct gh_config *cfg,
    const struct gh_org *org, struct gh_user *u)
{
	int64_t owners = 0;
	json_t *changes;
	gh_err err;

	if (strcmp(u->state, "disabled") == 0) {
		printf("%s is already disabled\n", u->username);
		return GH_OK;
	}
	if (strcmp(u->role, "owner") == 0) {
		err = gh_identity_owner_count(db, u->id, &owners);
		if (err == GH_OK && owners == 0) {
			fprintf(stderr, "gatehouse: %s is the last active owner "
			    "of %s\n", u->username, org->slug);
			return GH_ERR_DENIED;
		}
	}
	gh_strlcpy(u->state, "disabled", sizeof u->state);
	changes = json_pack("{s:{s:s, s:s}}", "state", "from", "active", "to",
	    "disabled");
	err = user_commit(db, kms, u, "user.disable", changes);
	json_decref(changes);
	if (err == GH_OK)
		printf("disabled %s in %s; their sessions are revoked\n",
		    u->username, org->slug);
	return err;
}

static gh_err
do_reset(struct gh_db *db, struct gh_kms *kms, const struct gh_config *cfg,
    const struct gh_org *org, struct gh_user *u)
{
	struct gh_pw_params pp;
	char *pw = NULL, *hash = NULL;
	bool generated;
	json_t *changes;
	gh_err err;

	config_pw_params(cfg, &pp);
	err = pick_password(db, org, "GATEHOUSE_NEW_PASSWORD", u->username,
	    u->email, &pw, &generated);
	if (err == GH_OK)
		err = gh_auth_pw_hash(&pp, pw, &hash);
	if (err != GH_OK) {
		gh_str_wipe_free(pw);
		return err;
	}
	gh_strlcpy(u->password_hash, hash, sizeof u->password_hash);
	u->password_changed_at = gh_now_ms();
	changes = json_pack("{s:s}", "password", "changed");
	err = user_commit(db, kms, u, "user.update", changes);
	json_decref(changes);
	if (err == GH_OK) {
		printf("reset the password of %s in %s; their sessions are "
		    "revoked\n", u->username, org->slug);
		if (generated)
			printf("password: %s   (shown once)\n", pw);
	}
	gh_str_wipe_free(pw);
	gh_str_wipe_free(hash);
	return err;
}

int
cmd_user(int argc, char **argv)
{
	struct cli_opts o;
	const char *sub;

	if (argc < 1) {
		fprintf(stderr, "gatehouse: user add|list|show|disable|"
		    "reset-password --org SLUG ...\n");
		return EXIT_USAGE;
	}
	sub = argv[0];
	if (strcmp(sub, "add") == 0) {
		if (cli_parse(argc - 1, argv + 1, "config data-dir org email "
		    "display-name role", &o) != GH_OK)
			return EXIT_USAGE;
		return user_add(&o);
	}
	if (cli_parse(argc - 1, argv + 1, "config data-dir org json", &o) !=
	    GH_OK)
		return EXIT_USAGE;
	if (strcmp(sub, "list") == 0)
		return user_list(&o);
	if (strcmp(sub, "show") == 0)
		return user_find_do(&o, NULL);
	if (strcmp(sub, "disable") == 0)
		return user_find_do(&o, do_disable);
	if (strcmp(sub, "reset-password") == 0)
		return user_find_do(&o, do_reset);
	fprintf(stderr, "gatehouse: unknown user command '%s'\n", sub);
	return EXIT_USAGE;
}
