/*
 * rbac_store.c: custom roles and role assignments in the tenant database,
 * and the resolution of a user's grants from them. Untrusted input: names,
 * descriptions and ids from request bodies, validated here or bound as SQL
 * parameters. Secrets: none.
 */
#include "rbac/rbac.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Reads the permissions of custom role id; *found_out false if absent. */
static gh_err
custom_perms(struct gh_db *db, const char *id, uint32_t *perms_out,
    bool *found_out)
{
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	*perms_out = 0;
	*found_out = false;
	if (!gh_id_valid(id))
		return GH_OK;
	err = gh_db_prepare(db, "SELECT r.id, p.permission FROM roles r LEFT "
	    "JOIN role_permissions p ON p.role_id = r.id WHERE r.id = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", id);
	while (err == GH_OK && (err = gh_stmt_step(st, &row)) == GH_OK && row) {
		*found_out = true;
		/* A name no longer in the vocabulary grants nothing. */
		*perms_out |= gh_rbac_perm_bit(gh_stmt_text(st, 1));
	}
	gh_stmt_free(st);
	return err;
}

gh_err
gh_rbac_role_perms(struct gh_db *db, const char *role, uint32_t *perms_out,
    bool *builtin_out, enum gh_rbac_scope *builtin_kind_out)
{
	bool found = false;
	gh_err err;

	*builtin_out = false;
	if (gh_rbac_builtin(role, perms_out, builtin_kind_out)) {
		*builtin_out = true;
		return GH_OK;
	}
	err = custom_perms(db, role, perms_out, &found);
	if (err == GH_OK && !found)
		err = GH_ERR_NOTFOUND;
	return err;
}

gh_err
gh_rbac_grants_load(struct gh_db *db, const char *user_id,
    const char *legacy_role, struct gh_rbac_grants *out)
{
	struct gh_stmt *st = NULL;
	enum gh_rbac_scope kind;
	uint32_t perms;
	bool row = false, builtin;
	gh_err err = GH_OK;

	memset(out, 0, sizeof *out);
	if (legacy_role != NULL && (strcmp(legacy_role, "owner") == 0 ||
	    strcmp(legacy_role, "admin") == 0)) {
		out->owner = strcmp(legacy_role, "owner") == 0;
		err = gh_rbac_grants_add(out, GH_PERM_ALL, GH_SCOPE_ORG, NULL);
	}
	if (err == GH_OK)
		err = gh_db_prepare(db, "SELECT a.role, a.scope_kind, s.scope_id "
		    "FROM role_assignments a LEFT JOIN role_assignment_scopes s "
		    "ON s.assignment_id = a.id WHERE a.user_id = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", user_id);
	while (err == GH_OK && (err = gh_stmt_step(st, &row)) == GH_OK && row) {
		if (!gh_rbac_scope_parse(gh_stmt_text(st, 1), &kind))
			continue;
		err = gh_rbac_role_perms(db, gh_stmt_text(st, 0), &perms,
		    &builtin, NULL);
		if (err == GH_ERR_NOTFOUND) {
			err = GH_OK;
			continue;
		}
		if (err != GH_OK)
			break;
		if (kind == GH_SCOPE_ORG)
			err = gh_rbac_grants_add(out, perms, kind, NULL);
		else if (gh_stmt_text(st, 2) != NULL)
			err = gh_rbac_grants_add(out, perms, kind,
			    gh_stmt_text(st, 2));
	}
	gh_stmt_free(st);
	return err;
}

static gh_err
exists(struct gh_db *db, const char *sql, const char *a, const char *b,
    bool *out)
{
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	err = gh_db_prepare(db, sql, &st);
	if (err == GH_OK)
		err = b != NULL ? gh_stmt_bind(st, "tt", a, b) :
		    gh_stmt_bind(st, "t", a);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	gh_stmt_free(st);
	*out = err == GH_OK && row;
	return err;
}

/* The apps capability defines the view app_assignees(app_id, user_id);
 * until it exists no user is assigned to any app. */
static gh_err
app_assignee(struct gh_db *db, const char *app_id, const char *user_id,
    bool *out)
{
	bool have = false;
	gh_err err;

	*out = false;
	err = exists(db, "SELECT 1 FROM sqlite_master WHERE name = ? AND "
	    "type IN ('view', 'table')", "app_assignees", NULL, &have);
	if (err != GH_OK || !have)
		return err;
	return exists(db, "SELECT 1 FROM app_assignees WHERE app_id = ? AND "
	    "user_id = ?", app_id, user_id, out);
}

gh_err
gh_rbac_covers_user(struct gh_db *db, const struct gh_rbac_grants *g,
    uint32_t perms, const char *user_id, bool *out)
{
	uint32_t have = g->org & perms;
	bool in;
	gh_err err = GH_OK;

	*out = false;
	if (perms == 0)
		return GH_OK;
	for (size_t i = 0; i < g->len && have != perms; i++) {
		if ((g->v[i].perms & perms & ~have) == 0)
			continue;
		if (g->v[i].kind == GH_SCOPE_GROUPS)
			err = exists(db, "SELECT 1 FROM group_members m JOIN "
			    "groups g ON g.id = m.group_id WHERE m.user_id = ?1 "
			    "AND (g.id = ?2 OR g.parent_id = ?2)", user_id,
			    g->v[i].id, &in);
		else
			err = app_assignee(db, g->v[i].id, user_id, &in);
		if (err != GH_OK)
			return err;
		if (in)
			have |= g->v[i].perms & perms;
	}
	*out = have == perms;
	return GH_OK;
}

gh_err
gh_rbac_user_privileged(struct gh_db *db, const char *user_id, bool *out)
{
	gh_err err;

	err = exists(db, "SELECT 1 FROM users WHERE id = ? AND role IN "
	    "('owner', 'admin')", user_id, NULL, out);
	if (err == GH_OK && !*out)
		err = exists(db, "SELECT 1 FROM role_assignments WHERE "
		    "user_id = ?", user_id, NULL, out);
	return err;
}

/* ---- custom roles ---------------------------------------------------------- */

bool
gh_rbac_role_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	char low[GH_RBAC_ROLE_NAME_MAX + 1];

	if (n == 0 || n > GH_RBAC_ROLE_NAME_MAX || name[0] == ' ' ||
	    name[n - 1] == ' ')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!isalnum((unsigned char)name[i]) && strchr(" ._-",
		    name[i]) == NULL)
			return false;
		low[i] = (char)tolower((unsigned char)name[i]);
	}
	low[n] = '\0';
	return !gh_rbac_builtin(low, NULL, NULL);
}

static void
name_key(const char *name, char out[static GH_RBAC_ROLE_NAME_MAX + 1])
{
	size_t i;

	for (i = 0; name[i] != '\0' && i < GH_RBAC_ROLE_NAME_MAX; i++)
		out[i] = (char)tolower((unsigned char)name[i]);
	out[i] = '\0';
}

static gh_err
perms_write(struct gh_db *db, const char *id, uint32_t perms)
{
	gh_err err;

	err = gh_db_run(db, "DELETE FROM role_permissions WHERE role_id = ?",
	    "t", id);
	for (unsigned b = 0; b < GH_RBAC_PERM_COUNT && err == GH_OK; b++)
		if (perms & (1u << b))
			err = gh_db_run(db, "INSERT INTO role_permissions "
			    "(role_id, permission) VALUES (?, ?)", "tt", id,
			    gh_rbac_perm_name(1u << b));
	return err;
}

gh_err
gh_rbac_role_create(struct gh_db *db, const char *name,
    const char *description, uint32_t perms, const char *created_by,
    char id_out[static GH_ID_LEN + 1])
{
	char key[GH_RBAC_ROLE_NAME_MAX + 1];
	int64_t now = gh_now_ms();
	gh_err err;

	if (!gh_rbac_role_name_valid(name))
		return GH_ERR_INVALID;
	name_key(name, key);
	err = gh_id_new(id_out);
	if (err == GH_OK)
		err = gh_db_run(db, "INSERT INTO roles (id, name, name_key, "
		    "description, created_by, created_at, updated_at) VALUES "
		    "(?, ?, ?, ?, ?, ?, ?)", "tttttii", id_out, name, key, description ? description : "",
		    created_by, now, now);
	if (err == GH_OK)
		err = perms_write(db, id_out, perms);
	return err;
}

gh_err
gh_rbac_role_update(struct gh_db *db, const char *id, const char *name,
    const char *description, bool set_perms, uint32_t perms)
{
	char key[GH_RBAC_ROLE_NAME_MAX + 1];
	bool found = false;
	uint32_t old;
	gh_err err;

	err = custom_perms(db, id, &old, &found);
	if (err == GH_OK && !found)
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK && name != NULL) {
		if (!gh_rbac_role_name_valid(name))
			return GH_ERR_INVALID;
		name_key(name, key);
		err = gh_db_run(db, "UPDATE roles SET name = ?, name_key = ? "
		    "WHERE id = ?", "ttt", name, key, id);
	}
	if (err == GH_OK && description != NULL)
		err = gh_db_run(db, "UPDATE roles SET description = ? WHERE "
		    "id = ?", "tt", description, id);
	if (err == GH_OK && set_perms)
		err = perms_write(db, id, perms);
	if (err == GH_OK)
		err = gh_db_run(db, "UPDATE roles SET updated_at = ? WHERE "
		    "id = ?", "it", gh_now_ms(), id);
	return err;
}

gh_err
gh_rbac_role_delete(struct gh_db *db, const char *id)
{
	bool found = false, used = false;
	uint32_t old;
	gh_err err;

	err = custom_perms(db, id, &old, &found);
	if (err == GH_OK && !found)
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK)
		err = exists(db, "SELECT 1 FROM role_assignments WHERE role = ?",
		    id, NULL, &used);
	if (err == GH_OK && used)
		err = GH_ERR_CONFLICT;
	if (err == GH_OK)
		err = gh_db_run(db, "DELETE FROM roles WHERE id = ?", "t", id);
	return err;
}

json_t *
gh_rbac_perms_json(uint32_t perms)
{
	json_t *a = json_array();

	for (unsigned b = 0; b < GH_RBAC_PERM_COUNT && a != NULL; b++)
		if (perms & (1u << b))
			json_array_append_new(a, json_string(
			    gh_rbac_perm_name(1u << b)));
	return a;
}

static json_t *
builtin_json(const char *name)
{
	enum gh_rbac_scope kind;
	uint32_t perms;

	if (!gh_rbac_builtin(name, &perms, &kind))
		return NULL;
	return json_pack("{s:s, s:s, s:o, s:b, s:s}", "id", name, "name", name,
	    "permissions", gh_rbac_perms_json(perms), "builtin", 1,
	    "scope_kind", gh_rbac_scope_name(kind));
}

/* Appends the custom roles of the query (bound to arg when not NULL). */
static gh_err
custom_list(struct gh_db *db, const char *id, json_t *arr)
{
	struct gh_stmt *st = NULL;
	char created[25], updated[25];
	uint32_t perms;
	bool row = false, found;
	json_t *o;
	gh_err err;

	err = gh_db_prepare(db, id != NULL ? "SELECT id, name, description, "
	    "created_at, updated_at FROM roles WHERE id = ?" : "SELECT id, "
	    "name, description, created_at, updated_at FROM roles ORDER BY "
	    "name_key", &st);
	if (err == GH_OK && id != NULL)
		err = gh_stmt_bind(st, "t", id);
	while (err == GH_OK && (err = gh_stmt_step(st, &row)) == GH_OK && row) {
		err = custom_perms(db, gh_stmt_text(st, 0), &perms, &found);
		if (err != GH_OK)
			break;
		gh_time_rfc3339(gh_stmt_int(st, 3), created);
		gh_time_rfc3339(gh_stmt_int(st, 4), updated);
		o = json_pack("{s:s, s:s, s:s, s:o, s:b, s:s, s:s}", "id",
		    gh_stmt_text(st, 0), "name", gh_stmt_text(st, 1),
		    "description", gh_stmt_text(st, 2), "permissions",
		    gh_rbac_perms_json(perms), "builtin", 0, "created_at",
		    created, "updated_at", updated);
		if (o == NULL || json_array_append_new(arr, o) != 0)
			err = GH_ERR_NOMEM;
	}
	gh_stmt_free(st);
	return err;
}

gh_err
gh_rbac_role_json(struct gh_db *db, const char *role, json_t **out)
{
	json_t *arr;
	gh_err err;

	*out = builtin_json(role);
	if (*out != NULL)
		return GH_OK;
	if (!gh_id_valid(role))
		return GH_ERR_NOTFOUND;
	if ((arr = json_array()) == NULL)
		return GH_ERR_NOMEM;
	err = custom_list(db, role, arr);
	if (err == GH_OK && json_array_size(arr) == 0)
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK)
		*out = json_incref(json_array_get(arr, 0));
	json_decref(arr);
	return err;
}

gh_err
gh_rbac_role_list(struct gh_db *db, json_t **out)
{
	static const char *const names[] = { "owner", "admin", "user_admin",
		"app_admin", "auditor" };
	json_t *arr = json_array();
	gh_err err;

	*out = NULL;
	if (arr == NULL)
		return GH_ERR_NOMEM;
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		json_array_append_new(arr, builtin_json(names[i]));
	err = custom_list(db, NULL, arr);
	if (err != GH_OK) {
		json_decref(arr);
		return err;
	}
	*out = arr;
	return GH_OK;
}

/* ---- assignments --------------------------------------------------------------- */

gh_err
gh_rbac_assignment_insert(struct gh_db *db, struct gh_rbac_assignment *a,
    const char *created_by)
{
	gh_err err;

	err = gh_id_new(a->id);
	if (err == GH_OK)
		err = gh_db_run(db, "INSERT INTO role_assignments (id, user_id, "
		    "role, scope_kind, created_by, created_at) VALUES "
		    "(?, ?, ?, ?, ?, ?)", "ttttti", a->id, a->user_id, a->role,
		    gh_rbac_scope_name(a->kind), created_by, gh_now_ms());
	for (size_t i = 0; i < a->n_scopes && err == GH_OK; i++)
		err = gh_db_run(db, "INSERT INTO "
		    "role_assignment_scopes (assignment_id, scope_id) VALUES "
		    "(?, ?)", "tt", a->id, a->scopes[i]);
	return err;
}

gh_err
gh_rbac_assignment_get(struct gh_db *db, const char *id,
    struct gh_rbac_assignment *out)
{
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	memset(out, 0, sizeof *out);
	if (!gh_id_valid(id))
		return GH_ERR_NOTFOUND;
	err = gh_db_prepare(db, "SELECT a.id, a.user_id, a.role, a.scope_kind, "
	    "s.scope_id FROM role_assignments a LEFT JOIN "
	    "role_assignment_scopes s ON s.assignment_id = a.id WHERE "
	    "a.id = ? ORDER BY s.scope_id", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", id);
	while (err == GH_OK && (err = gh_stmt_step(st, &row)) == GH_OK && row) {
		if (out->id[0] == '\0') {
			gh_strlcpy(out->id, gh_stmt_text(st, 0), sizeof out->id);
			gh_strlcpy(out->user_id, gh_stmt_text(st, 1),
			    sizeof out->user_id);
			gh_strlcpy(out->role, gh_stmt_text(st, 2),
			    sizeof out->role);
			(void)gh_rbac_scope_parse(gh_stmt_text(st, 3),
			    &out->kind);
		}
		if (gh_stmt_text(st, 4) != NULL &&
		    out->n_scopes < GH_RBAC_SCOPE_MAX)
			gh_strlcpy(out->scopes[out->n_scopes++],
			    gh_stmt_text(st, 4), sizeof out->scopes[0]);
	}
	gh_stmt_free(st);
	if (err == GH_OK && out->id[0] == '\0')
		err = GH_ERR_NOTFOUND;
	return err;
}

gh_err
gh_rbac_assignment_delete(struct gh_db *db, const char *id)
{
	gh_err err;

	err = gh_db_run(db, "DELETE FROM role_assignments WHERE id = ?", "t",
	    id);
	if (err == GH_OK && gh_db_changes(db) == 0)
		err = GH_ERR_NOTFOUND;
	return err;
}

gh_err
gh_rbac_scope_forget(struct gh_db *db, const char *scope_id,
    int64_t *dropped_out)
{
	gh_err err;

	*dropped_out = 0;
	err = gh_db_run(db, "DELETE FROM role_assignment_scopes WHERE "
	    "scope_id = ?", "t", scope_id);
	if (err == GH_OK)
		err = gh_db_run(db, "DELETE FROM role_assignments WHERE "
		    "scope_kind <> 'org' AND id NOT IN (SELECT assignment_id "
		    "FROM role_assignment_scopes)", "");
	if (err == GH_OK)
		*dropped_out = gh_db_changes(db);
	return err;
}

json_t *
gh_rbac_assignment_json(const struct gh_rbac_assignment *a)
{
	json_t *ids = json_array();

	for (size_t i = 0; i < a->n_scopes && ids != NULL; i++)
		json_array_append_new(ids, json_string(a->scopes[i]));
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:s}", "id", a->id,
	    "user_id", a->user_id, "role", a->role, "scope_kind",
	    gh_rbac_scope_name(a->kind), "scope_ids", ids, "source",
	    "assignment");
}

gh_err
gh_rbac_assignment_list(struct gh_db *db, const char *user_id, json_t **out)
{
	struct gh_stmt *st = NULL;
	struct gh_rbac_assignment a;
	json_t *arr = json_array(), *o;
	bool row = false;
	gh_err err;

	*out = NULL;
	if (arr == NULL)
		return GH_ERR_NOMEM;
	err = gh_db_prepare(db, "SELECT id, role FROM users WHERE role IN "
	    "('owner', 'admin') AND (?1 IS NULL OR id = ?1) ORDER BY "
	    "created_at, id", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", user_id);
	while (err == GH_OK && (err = gh_stmt_step(st, &row)) == GH_OK && row) {
		o = json_pack("{s:n, s:s, s:s, s:s, s:[], s:s}", "id",
		    "user_id", gh_stmt_text(st, 0), "role", gh_stmt_text(st, 1),
		    "scope_kind", "org", "scope_ids", "source", "users.role");
		if (o == NULL || json_array_append_new(arr, o) != 0)
			err = GH_ERR_NOMEM;
	}
	gh_stmt_free(st);
	st = NULL;
	if (err == GH_OK)
		err = gh_db_prepare(db, "SELECT id FROM role_assignments WHERE "
		    "?1 IS NULL OR user_id = ?1 ORDER BY created_at, id", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", user_id);
	while (err == GH_OK && (err = gh_stmt_step(st, &row)) == GH_OK && row) {
		/* A second statement while this one steps: fine in SQLite,
		 * and the list is small (assignments are few). */
		err = gh_rbac_assignment_get(db, gh_stmt_text(st, 0), &a);
		if (err == GH_OK && ((o = gh_rbac_assignment_json(&a)) == NULL ||
		    json_array_append_new(arr, o) != 0))
			err = GH_ERR_NOMEM;
	}
	gh_stmt_free(st);
	if (err != GH_OK) {
		json_decref(arr);
		return err;
	}
	*out = arr;
	return GH_OK;
}

json_t *
gh_rbac_grants_json(const struct gh_rbac_grants *g)
{
	json_t *groups = json_object(), *apps = json_object(), *ids;

	for (unsigned b = 0; b < GH_RBAC_PERM_COUNT; b++) {
		uint32_t bit = 1u << b;
		const char *name = gh_rbac_perm_name(bit);

		if (g->org & bit)
			continue;
		for (size_t i = 0; i < g->len; i++) {
			json_t *map = g->v[i].kind == GH_SCOPE_GROUPS ? groups :
			    apps;

			if ((g->v[i].perms & bit) == 0)
				continue;
			ids = json_object_get(map, name);
			if (ids == NULL) {
				ids = json_array();
				json_object_set_new(map, name, ids);
			}
			json_array_append_new(ids, json_string(g->v[i].id));
		}
	}
	return json_pack("{s:o, s:o, s:o, s:b}", "org",
	    gh_rbac_perms_json(g->org), "groups", groups, "apps", apps,
	    "owner", g->owner);
}
