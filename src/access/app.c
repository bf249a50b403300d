/*
 * app.c: apps, app roles and assignments in the tenant database, and the
 * effective view of a user's apps (direct, through groups and their child
 * groups, by rules: the app_user_grants view of migration 0009).
 *
 * Untrusted input: names, descriptions and ids, validated here before any
 * write. Secrets: none.
 */
#include "access/access_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APP_COLUMNS "id, name, description, kind, first_party, state, " \
	"created_at, updated_at"

json_t *
access_time_json(int64_t ms)
{
	char s[25];

	if (ms <= 0)
		return json_null();
	gh_time_rfc3339(ms, s);
	return json_string(s);
}

bool
access_text_ok(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s), i;

	if (n < min || n > max || !gh_utf8_valid(s, n))
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

void
access_name_key(const char *name, char *out, size_t cap)
{
	size_t i;

	for (i = 0; name[i] != '\0' && i + 1 < cap; i++)
		out[i] = (name[i] >= 'A' && name[i] <= 'Z') ?
		    (char)(name[i] - 'A' + 'a') : name[i];
	out[i] = '\0';
}

bool
gh_access_app_name_valid(const char *name)
{
	size_t n = strlen(name);

	return access_text_ok(name, 1, GH_APP_NAME_MAX) && name[0] != ' ' &&
	    name[n - 1] != ' ';
}

bool
gh_access_app_desc_valid(const char *desc)
{
	return access_text_ok(desc, 0, GH_APP_DESC_MAX);
}

bool
gh_access_app_kind_valid(const char *kind)
{
	return strcmp(kind, "oidc") == 0 || strcmp(kind, "saml") == 0 ||
	    strcmp(kind, "other") == 0;
}

bool
gh_access_app_state_valid(const char *state)
{
	return strcmp(state, "active") == 0 || strcmp(state, "disabled") == 0;
}

bool
gh_access_role_name_valid(const char *name)
{
	size_t i;

	for (i = 0; name[i] != '\0'; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '_' || c == '.' || c == '-'))
			return false;
	}
	return i >= 1 && i <= GH_APP_ROLE_MAX;
}

gh_err
gh_access_app_init(struct gh_access_app *a, const char *name)
{
	gh_err err;

	memset(a, 0, sizeof *a);
	if (!gh_access_app_name_valid(name))
		return GH_ERR_INVALID;
	err = gh_id_new(a->id);
	if (err != GH_OK)
		return err;
	gh_strlcpy(a->name, name, sizeof a->name);
	gh_strlcpy(a->kind, "other", sizeof a->kind);
	gh_strlcpy(a->state, "active", sizeof a->state);
	a->created_at = a->updated_at = gh_now_ms();
	return GH_OK;
}

static bool
app_valid(const struct gh_access_app *a)
{
	return gh_id_valid(a->id) && gh_access_app_name_valid(a->name) &&
	    gh_access_app_desc_valid(a->description) &&
	    gh_access_app_kind_valid(a->kind) &&
	    gh_access_app_state_valid(a->state);
}

gh_err
gh_access_app_insert(struct gh_db *db, const struct gh_access_app *a)
{
	char key[GH_APP_NAME_MAX + 1];

	if (!app_valid(a))
		return GH_ERR_INVALID;
	access_name_key(a->name, key, sizeof key);
	return gh_db_run(db, "INSERT INTO apps (" APP_COLUMNS ", name_key) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", "ttttitiit", a->id, a->name,
	    a->description, a->kind, (int64_t)a->first_party, a->state,
	    a->created_at, a->updated_at, key);
}

gh_err
gh_access_app_update(struct gh_db *db, struct gh_access_app *a)
{
	char key[GH_APP_NAME_MAX + 1];
	gh_err err;

	if (!app_valid(a))
		return GH_ERR_INVALID;
	access_name_key(a->name, key, sizeof key);
	a->updated_at = gh_now_ms();
	err = gh_db_run(db, "UPDATE apps SET name = ?, name_key = ?, "
	    "description = ?, kind = ?, first_party = ?, state = ?, "
	    "updated_at = ? WHERE id = ?", "ttttitit", a->name, key,
	    a->description, a->kind, (int64_t)a->first_party, a->state,
	    a->updated_at, a->id);
	if (err == GH_OK && gh_db_changes(db) == 0)
		err = GH_ERR_NOTFOUND;
	return err;
}

static void
app_from_row(struct gh_stmt *st, struct gh_access_app *a)
{
	memset(a, 0, sizeof *a);
	gh_strlcpy(a->id, gh_stmt_text(st, 0), sizeof a->id);
	gh_strlcpy(a->name, gh_stmt_text(st, 1), sizeof a->name);
	gh_strlcpy(a->description, gh_stmt_text(st, 2), sizeof a->description);
	gh_strlcpy(a->kind, gh_stmt_text(st, 3), sizeof a->kind);
	a->first_party = gh_stmt_int(st, 4) != 0;
	gh_strlcpy(a->state, gh_stmt_text(st, 5), sizeof a->state);
	a->created_at = gh_stmt_int(st, 6);
	a->updated_at = gh_stmt_int(st, 7);
}

gh_err
gh_access_app_get(struct gh_db *db, const char *id, struct gh_access_app *out)
{
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	memset(out, 0, sizeof *out);
	if (id == NULL || !gh_id_valid(id))
		return GH_ERR_NOTFOUND;
	err = gh_db_prepare(db, "SELECT " APP_COLUMNS " FROM apps WHERE id = ?",
	    &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", id);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && !row)
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK)
		app_from_row(st, out);
	gh_stmt_free(st);
	return err;
}

gh_err
access_count(struct gh_db *db, const char *sql, const char *a,
    const char *b, int64_t *out)
{
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	*out = 0;
	err = gh_db_prepare(db, sql, &st);
	if (err == GH_OK)
		err = b != NULL ? gh_stmt_bind(st, "tt", a, b) :
		    gh_stmt_bind(st, "t", a);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && row)
		*out = gh_stmt_int(st, 0);
	gh_stmt_free(st);
	return err;
}

gh_err
gh_access_app_delete(struct gh_db *db, const char *id,
    int64_t *assignments_out, int64_t *rules_out)
{
	int64_t assignments = 0, rules = 0;
	gh_err err;

	err = access_count(db, "SELECT COUNT(*) FROM app_assignments WHERE "
	    "app_id = ?", id, NULL, &assignments);
	if (err == GH_OK)
		err = access_count(db, "SELECT COUNT(*) FROM rules WHERE "
		    "app_id = ?", id, NULL, &rules);
	if (err == GH_OK)
		err = gh_db_run(db, "DELETE FROM app_assignments WHERE "
		    "app_id = ?", "t", id);
	if (err == GH_OK)
		err = gh_db_run(db, "DELETE FROM rules WHERE app_id = ?", "t",
		    id);
	if (err == GH_OK)
		err = gh_db_run(db, "DELETE FROM apps WHERE id = ?", "t", id);
	if (err == GH_OK && gh_db_changes(db) == 0)
		err = GH_ERR_NOTFOUND;
	if (assignments_out != NULL)
		*assignments_out = assignments;
	if (rules_out != NULL)
		*rules_out = rules;
	return err;
}

gh_err
access_cursor_parse(const char *c, int64_t *at_out,
    char id_out[static GH_ID_LEN + 1])
{
	const char *dot = strchr(c, '.');
	char *end;
	long long at;

	if (dot == NULL || dot == c || !gh_id_valid(dot + 1))
		return GH_ERR_INVALID;
	at = strtoll(c, &end, 10);
	if (end != dot || at < 0)
		return GH_ERR_INVALID;
	*at_out = at;
	gh_strlcpy(id_out, dot + 1, GH_ID_LEN + 1);
	return GH_OK;
}

char *
access_like_pattern(const char *q)
{
	size_t n = strlen(q), i, j = 0;
	char *p = malloc(2 * n + 3);

	if (p == NULL)
		return NULL;
	p[j++] = '%';
	for (i = 0; i < n; i++) {
		char c = q[i];

		if (c == '%' || c == '_' || c == '\\')
			p[j++] = '\\';
		p[j++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	p[j++] = '%';
	p[j] = '\0';
	return p;
}

gh_err
gh_access_app_list(struct gh_db *db, const char *q, const char *cursor,
    int limit, json_t **apps_out, char **next_out)
{
	char after_id[GH_ID_LEN + 1] = "", buf[64];
	int64_t after_at = -1;
	struct gh_stmt *st = NULL;
	struct gh_access_app a, last = { 0 };
	char *pattern = NULL;
	json_t *arr;
	int n = 0;
	bool row;
	gh_err err;

	*apps_out = NULL;
	*next_out = NULL;
	if (limit < 1 || limit > GH_APP_LIST_MAX)
		return GH_ERR_INVALID;
	if (cursor != NULL &&
	    access_cursor_parse(cursor, &after_at, after_id) != GH_OK)
		return GH_ERR_INVALID;
	if (q != NULL && (pattern = access_like_pattern(q)) == NULL)
		return GH_ERR_NOMEM;
	if ((arr = json_array()) == NULL) {
		free(pattern);
		return GH_ERR_NOMEM;
	}
	err = gh_db_prepare(db, "SELECT " APP_COLUMNS " FROM apps WHERE "
	    "(CAST(? AS TEXT) IS NULL OR name_key LIKE ? ESCAPE '\\') AND "
	    "(created_at > ? OR (created_at = ? AND id > ?)) "
	    "ORDER BY created_at, id LIMIT ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "ttiiti", pattern, pattern, after_at,
		    after_at, after_id, (int64_t)limit + 1);
	while (err == GH_OK) {
		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		if (n == limit) {
			snprintf(buf, sizeof buf, "%" PRId64 ".%s",
			    last.created_at, last.id);
			if ((*next_out = strdup(buf)) == NULL)
				err = GH_ERR_NOMEM;
			break;
		}
		app_from_row(st, &a);
		if (json_array_append_new(arr, gh_access_app_json(&a)) != 0)
			err = GH_ERR_NOMEM;
		last = a;
		n++;
	}
	gh_stmt_free(st);
	free(pattern);
	if (err != GH_OK) {
		json_decref(arr);
		free(*next_out);
		*next_out = NULL;
		return err;
	}
	*apps_out = arr;
	return GH_OK;
}

json_t *
gh_access_app_json(const struct gh_access_app *a)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:o, s:o}", "id",
	    a->id, "name", a->name, "description", a->description, "kind",
	    a->kind, "first_party", a->first_party, "state", a->state,
	    "created_at", access_time_json(a->created_at), "updated_at",
	    access_time_json(a->updated_at));
}

/* ---- roles ------------------------------------------------------------------ */

gh_err
gh_access_role_insert(struct gh_db *db, const char *app_id, const char *name,
    const char *description)
{
	int64_t n = 0;
	gh_err err;

	if (!gh_access_role_name_valid(name) ||
	    !gh_access_app_desc_valid(description))
		return GH_ERR_INVALID;
	err = access_count(db, "SELECT COUNT(*) FROM app_roles WHERE "
	    "app_id = ?", app_id, NULL, &n);
	if (err == GH_OK && n >= GH_APP_ROLES_MAX)
		err = GH_ERR_LIMIT;
	if (err == GH_OK)
		err = gh_db_run(db, "INSERT INTO app_roles (app_id, name, "
		    "description, created_at) VALUES (?, ?, ?, ?)", "ttti",
		    app_id, name, description, gh_now_ms());
	return err;
}

gh_err
gh_access_role_exists(struct gh_db *db, const char *app_id, const char *name,
    bool *out)
{
	int64_t n = 0;
	gh_err err;

	err = access_count(db, "SELECT COUNT(*) FROM app_roles WHERE "
	    "app_id = ? AND name = ?", app_id, name, &n);
	*out = err == GH_OK && n > 0;
	return err;
}

gh_err
gh_access_role_delete(struct gh_db *db, const char *app_id, const char *name)
{
	int64_t used = 0, rules = 0;
	bool exists = false;
	gh_err err;

	err = gh_access_role_exists(db, app_id, name, &exists);
	if (err == GH_OK && !exists)
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK)
		err = access_count(db, "SELECT COUNT(*) FROM app_assignments "
		    "WHERE app_id = ? AND role = ?", app_id, name, &used);
	if (err == GH_OK)
		err = access_count(db, "SELECT COUNT(*) FROM rules WHERE "
		    "app_id = ? AND app_role = ?", app_id, name, &rules);
	if (err == GH_OK && used + rules > 0)
		err = GH_ERR_CONFLICT;
	if (err == GH_OK)
		err = gh_db_run(db, "DELETE FROM app_roles WHERE app_id = ? AND "
		    "name = ?", "tt", app_id, name);
	return err;
}

gh_err
gh_access_role_list(struct gh_db *db, const char *app_id, json_t **out)
{
	struct gh_stmt *st = NULL;
	json_t *arr = json_array();
	bool row;
	gh_err err;

	*out = NULL;
	if (arr == NULL)
		return GH_ERR_NOMEM;
	err = gh_db_prepare(db, "SELECT name, description, created_at FROM "
	    "app_roles WHERE app_id = ? ORDER BY name", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", app_id);
	while (err == GH_OK) {
		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		if (json_array_append_new(arr, json_pack("{s:s, s:s, s:o}",
		    "name", gh_stmt_text(st, 0), "description",
		    gh_stmt_text(st, 1), "created_at",
		    access_time_json(gh_stmt_int(st, 2)))) != 0)
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

/* ---- assignments --------------------------------------------------------------- */

gh_err
gh_access_assignment_add(struct gh_db *db, const char *app_id,
    const char *principal_type, const char *principal_id, const char *role,
    const char *rule_id, const char *created_by,
    char id_out[static GH_ID_LEN + 1])
{
	bool user = strcmp(principal_type, "user") == 0;
	int64_t n = 0;
	bool exists = true;
	gh_err err;

	id_out[0] = '\0';
	if ((!user && strcmp(principal_type, "group") != 0) ||
	    !gh_id_valid(principal_id))
		return GH_ERR_INVALID;
	err = access_count(db, user ? "SELECT COUNT(*) FROM users WHERE id = ?"
	    : "SELECT COUNT(*) FROM groups WHERE id = ?", principal_id, NULL,
	    &n);
	if (err == GH_OK && n == 0)
		return GH_ERR_NOTFOUND;
	if (err == GH_OK && role != NULL)
		err = gh_access_role_exists(db, app_id, role, &exists);
	if (err == GH_OK && !exists)
		return GH_ERR_NOTFOUND;
	if (err == GH_OK)
		err = gh_id_new(id_out);
	if (err == GH_OK)
		err = gh_db_run(db, "INSERT INTO app_assignments (id, app_id, "
		    "principal_type, user_id, group_id, role, rule_id, "
		    "created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		    "tttttttit", id_out, app_id, principal_type,
		    user ? principal_id : NULL, user ? NULL : principal_id, role,
		    rule_id, gh_now_ms(), created_by);
	if (err != GH_OK)
		id_out[0] = '\0';
	return err;
}

#define ASSIGNMENT_SELECT "SELECT a.id, a.app_id, a.principal_type, " \
	"COALESCE(a.user_id, a.group_id), COALESCE(u.username, g.name), " \
	"a.role, a.rule_id, a.created_at, a.created_by FROM app_assignments a " \
	"LEFT JOIN users u ON u.id = a.user_id " \
	"LEFT JOIN groups g ON g.id = a.group_id "

static json_t *
assignment_json(struct gh_stmt *st)
{
	const char *role = gh_stmt_text(st, 5), *rule = gh_stmt_text(st, 6);
	const char *by = gh_stmt_text(st, 8);

	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o}",
	    "id", gh_stmt_text(st, 0), "app_id", gh_stmt_text(st, 1),
	    "principal_type", gh_stmt_text(st, 2), "principal_id",
	    gh_stmt_text(st, 3), "principal_name", gh_stmt_text(st, 4),
	    "role", role ? json_string(role) : json_null(),
	    "rule_id", rule ? json_string(rule) : json_null(),
	    "created_at", access_time_json(gh_stmt_int(st, 7)),
	    "created_by", by ? json_string(by) : json_null());
}

gh_err
gh_access_assignment_get(struct gh_db *db, const char *app_id, const char *id,
    json_t **out)
{
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	*out = NULL;
	if (id == NULL || !gh_id_valid(id))
		return GH_ERR_NOTFOUND;
	err = gh_db_prepare(db, ASSIGNMENT_SELECT "WHERE a.app_id = ? AND "
	    "a.id = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "tt", app_id, id);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && !row)
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK && (*out = assignment_json(st)) == NULL)
		err = GH_ERR_NOMEM;
	gh_stmt_free(st);
	return err;
}

gh_err
gh_access_assignment_delete(struct gh_db *db, const char *app_id,
    const char *id)
{
	gh_err err;

	err = gh_db_run(db, "DELETE FROM app_assignments WHERE app_id = ? AND "
	    "id = ?", "tt", app_id, id);
	if (err == GH_OK && gh_db_changes(db) == 0)
		err = GH_ERR_NOTFOUND;
	return err;
}

gh_err
gh_access_assignment_list(struct gh_db *db, const char *app_id, json_t **out)
{
	struct gh_stmt *st = NULL;
	json_t *arr = json_array();
	bool row;
	gh_err err;

	*out = NULL;
	if (arr == NULL)
		return GH_ERR_NOMEM;
	err = gh_db_prepare(db, ASSIGNMENT_SELECT "WHERE a.app_id = ? "
	    "ORDER BY a.created_at, a.id", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", app_id);
	while (err == GH_OK) {
		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		if (json_array_append_new(arr, assignment_json(st)) != 0)
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

/* ---- effective view ---------------------------------------------------------------- */

/* Appends name to the sorted set of strings arr unless present. */
static gh_err
set_add(json_t *arr, const char *name)
{
	size_t i;

	for (i = 0; i < json_array_size(arr); i++) {
		int c = strcmp(json_string_value(json_array_get(arr, i)), name);

		if (c == 0)
			return GH_OK;
		if (c > 0)
			break;
	}
	return json_array_insert_new(arr, i, json_string(name)) == 0 ?
	    GH_OK : GH_ERR_NOMEM;
}

gh_err
gh_access_user_apps(struct gh_db *db, const char *user_id, bool active_only,
    json_t **out)
{
	struct gh_stmt *st = NULL;
	struct gh_access_app a;
	json_t *arr = json_array(), *cur = NULL;
	bool row;
	gh_err err;

	*out = NULL;
	if (arr == NULL)
		return GH_ERR_NOMEM;
	err = gh_db_prepare(db, "SELECT p.id, p.name, p.description, p.kind, "
	    "p.first_party, p.state, p.created_at, p.updated_at, "
	    "x.assignment_id, x.role, x.group_id, x.rule_id FROM "
	    "app_user_grants x JOIN apps p ON p.id = x.app_id WHERE "
	    "x.user_id = ? AND (? = 0 OR p.state = 'active') "
	    "ORDER BY p.name_key, p.id, x.assignment_id", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "ti", user_id, (int64_t)active_only);
	while (err == GH_OK) {
		const char *role, *group, *rule;
		json_t *via;

		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		app_from_row(st, &a);
		role = gh_stmt_text(st, 9);
		group = gh_stmt_text(st, 10);
		rule = gh_stmt_text(st, 11);
		if (cur == NULL || strcmp(json_string_value(json_object_get(
		    json_object_get(cur, "app"), "id")), a.id) != 0) {
			cur = json_pack("{s:o, s:[], s:[]}", "app",
			    gh_access_app_json(&a), "roles", "via");
			if (cur == NULL || json_array_append_new(arr, cur) != 0) {
				err = GH_ERR_NOMEM;
				break;
			}
		}
		via = json_pack("{s:s, s:s, s:o, s:o}", "assignment_id",
		    gh_stmt_text(st, 8), "type", group ? "group" : "user",
		    "role", role ? json_string(role) : json_null(), "rule_id",
		    rule ? json_string(rule) : json_null());
		if (via != NULL && group != NULL)
			json_object_set_new(via, "group_id", json_string(group));
		if (via == NULL || json_array_append_new(json_object_get(cur,
		    "via"), via) != 0)
			err = GH_ERR_NOMEM;
		if (err == GH_OK && role != NULL)
			err = set_add(json_object_get(cur, "roles"), role);
	}
	gh_stmt_free(st);
	if (err != GH_OK) {
		json_decref(arr);
		return err;
	}
	*out = arr;
	return GH_OK;
}

gh_err
gh_access_user_assigned(struct gh_db *db, const char *user_id,
    const char *app_id, bool *out)
{
	int64_t n = 0;
	gh_err err;

	err = access_count(db, "SELECT COUNT(*) FROM app_assignees x JOIN "
	    "apps p ON p.id = x.app_id WHERE x.user_id = ? AND x.app_id = ? "
	    "AND p.state = 'active'", user_id, app_id, &n);
	*out = err == GH_OK && n > 0;
	return err;
}

gh_err
gh_access_user_app_roles(struct gh_db *db, const char *user_id,
    const char *app_id, json_t **roles_out)
{
	struct gh_stmt *st = NULL;
	json_t *arr = json_array();
	bool row;
	gh_err err;

	*roles_out = NULL;
	if (arr == NULL)
		return GH_ERR_NOMEM;
	err = gh_db_prepare(db, "SELECT DISTINCT x.role FROM app_user_grants x "
	    "JOIN apps p ON p.id = x.app_id WHERE x.user_id = ? AND "
	    "x.app_id = ? AND x.role IS NOT NULL AND p.state = 'active' "
	    "ORDER BY x.role", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "tt", user_id, app_id);
	while (err == GH_OK) {
		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		if (json_array_append_new(arr, json_string(gh_stmt_text(st,
		    0))) != 0)
			err = GH_ERR_NOMEM;
	}
	gh_stmt_free(st);
	if (err != GH_OK) {
		json_decref(arr);
		return err;
	}
	*roles_out = arr;
	return GH_OK;
}
