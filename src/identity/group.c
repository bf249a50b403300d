/*
 * group.c: groups of users in a tenant database, nested at most one level,
 * their direct members and a user's direct and effective groups.
 *
 * Untrusted input: group names, descriptions, parent ids, ids in paths,
 * list filters and cursors (validated here; bound as parameters). Secrets:
 * none; member lists carry the public user view only.
 */
#include "identity/identity.h"
#include "identity/identity_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool
gh_identity_group_name_valid(const char *name)
{
	size_t n;

	if (name == NULL)
		return false;
	n = strlen(name);
	if (n < 1 || n > GH_GROUP_NAME_MAX || name[0] == ' ' ||
	    name[n - 1] == ' ')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == ' ' || c == '.' ||
		    c == '_' || c == '-'))
			return false;
	}
	return true;
}

bool
gh_identity_group_description_valid(const char *desc)
{
	return identity_text_ok(desc, 0, GH_GROUP_DESC_MAX);
}

/* Names are ASCII, so lowercasing them byte by byte is exact. */
static void
name_key(const char *name, char out[static GH_GROUP_NAME_MAX + 1])
{
	size_t i;

	for (i = 0; name[i] != '\0' && i < GH_GROUP_NAME_MAX; i++)
		out[i] = (name[i] >= 'A' && name[i] <= 'Z') ?
		    (char)(name[i] - 'A' + 'a') : name[i];
	out[i] = '\0';
}

gh_err
gh_identity_group_init(struct gh_group *g, const char *name)
{
	gh_err err;

	memset(g, 0, sizeof *g);
	if (!gh_identity_group_name_valid(name))
		return GH_ERR_INVALID;
	err = gh_id_new(g->id);
	if (err != GH_OK)
		return err;
	gh_strlcpy(g->name, name, sizeof g->name);
	g->created_at = g->updated_at = gh_now_ms();
	return GH_OK;
}

static bool
group_fields_valid(const struct gh_group *g)
{
	return gh_id_valid(g->id) && gh_identity_group_name_valid(g->name) &&
	    gh_identity_group_description_valid(g->description) &&
	    (g->parent_id[0] == '\0' || gh_id_valid(g->parent_id));
}

/* One integer from a query with one text parameter. */
static gh_err
count_of(struct gh_db *db, const char *sql, const char *arg, int64_t *out)
{
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	*out = 0;
	err = gh_db_prepare(db, sql, &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", arg);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && row)
		*out = gh_stmt_int(st, 0);
	gh_stmt_free(st);
	return err;
}

/*
 * The nesting rules for g getting (or keeping) parent g->parent_id. A
 * cycle longer than one group cannot form: its members would be parents
 * with parents, which the depth rule refuses.
 */
static gh_err
nesting_check(struct gh_db *db, const struct gh_group *g, const char **why)
{
	struct gh_group parent;
	int64_t children = 0;
	gh_err err;

	if (g->parent_id[0] == '\0')
		return GH_OK;
	if (strcmp(g->parent_id, g->id) == 0) {
		*why = "group_cycle";
		return GH_ERR_INVALID;
	}
	err = gh_identity_group_get(db, g->parent_id, &parent);
	if (err == GH_ERR_NOTFOUND) {
		*why = "parent_not_found";
		return GH_ERR_INVALID;
	}
	if (err != GH_OK)
		return err;
	if (parent.parent_id[0] != '\0') {
		*why = strcmp(parent.parent_id, g->id) == 0 ? "group_cycle" :
		    "nesting_too_deep";
		return GH_ERR_INVALID;
	}
	err = count_of(db, "SELECT COUNT(*) FROM groups WHERE parent_id = ?",
	    g->id, &children);
	if (err == GH_OK && children > 0) {
		*why = "group_has_children";
		err = GH_ERR_INVALID;
	}
	return err;
}

static const char *
empty_null(const char *s)
{
	return s[0] == '\0' ? NULL : s;
}

gh_err
gh_identity_group_insert(struct gh_db *db, const struct gh_group *g,
    const char **why_out)
{
	char key[GH_GROUP_NAME_MAX + 1];
	gh_err err;

	*why_out = NULL;
	if (!group_fields_valid(g))
		return GH_ERR_INVALID;
	err = nesting_check(db, g, why_out);
	if (err != GH_OK)
		return err;
	name_key(g->name, key);
	err = gh_db_run(db, "INSERT INTO groups (id, name, name_key, "
	    "description, parent_id, created_at, updated_at) VALUES (?, ?, ?, "
	    "?, ?, ?, ?)", "tttttii", g->id, g->name, key, g->description,
	    empty_null(g->parent_id), g->created_at, g->updated_at);
	if (err == GH_ERR_CONFLICT)
		*why_out = "group_exists";
	return err;
}

gh_err
gh_identity_group_update(struct gh_db *db, struct gh_group *g,
    const char **why_out)
{
	char key[GH_GROUP_NAME_MAX + 1];
	gh_err err;

	*why_out = NULL;
	if (!group_fields_valid(g))
		return GH_ERR_INVALID;
	err = nesting_check(db, g, why_out);
	if (err != GH_OK)
		return err;
	name_key(g->name, key);
	g->updated_at = gh_now_ms();
	err = gh_db_run(db, "UPDATE groups SET name = ?, name_key = ?, "
	    "description = ?, parent_id = ?, updated_at = ? WHERE id = ?",
	    "ttttit", g->name, key, g->description, empty_null(g->parent_id),
	    g->updated_at, g->id);
	if (err == GH_ERR_CONFLICT)
		*why_out = "group_exists";
	else if (err == GH_OK && gh_db_changes(db) == 0)
		err = GH_ERR_NOTFOUND;
	return err;
}

#define GROUP_COLUMNS "g.id, g.name, g.description, g.parent_id, " \
	"g.created_at, g.updated_at"

static void
group_from_row(struct gh_stmt *st, struct gh_group *g)
{
	const char *s;

	memset(g, 0, sizeof *g);
	gh_strlcpy(g->id, gh_stmt_text(st, 0), sizeof g->id);
	gh_strlcpy(g->name, gh_stmt_text(st, 1), sizeof g->name);
	if ((s = gh_stmt_text(st, 2)) != NULL)
		gh_strlcpy(g->description, s, sizeof g->description);
	if ((s = gh_stmt_text(st, 3)) != NULL)
		gh_strlcpy(g->parent_id, s, sizeof g->parent_id);
	g->created_at = gh_stmt_int(st, 4);
	g->updated_at = gh_stmt_int(st, 5);
}

static gh_err
group_select_one(struct gh_db *db, const char *sql, const char *arg,
    struct gh_group *out)
{
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	err = gh_db_prepare(db, sql, &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", arg);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && !row)
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK)
		group_from_row(st, out);
	gh_stmt_free(st);
	return err;
}

gh_err
gh_identity_group_get(struct gh_db *db, const char *id, struct gh_group *out)
{
	if (!gh_id_valid(id))
		return GH_ERR_NOTFOUND;
	return group_select_one(db, "SELECT " GROUP_COLUMNS " FROM groups g "
	    "WHERE g.id = ?", id, out);
}

gh_err
gh_identity_group_find(struct gh_db *db, const char *name,
    struct gh_group *out)
{
	char key[GH_GROUP_NAME_MAX + 1];

	if (!gh_identity_group_name_valid(name))
		return GH_ERR_NOTFOUND;
	name_key(name, key);
	return group_select_one(db, "SELECT " GROUP_COLUMNS " FROM groups g "
	    "WHERE g.name_key = ?", key, out);
}

gh_err
gh_identity_group_delete(struct gh_db *db, const char *id,
    int64_t *members_out)
{
	int64_t children = 0, members = 0;
	gh_err err;

	if (members_out != NULL)
		*members_out = 0;
	if (!gh_id_valid(id))
		return GH_ERR_NOTFOUND;
	err = count_of(db, "SELECT COUNT(*) FROM groups WHERE parent_id = ?",
	    id, &children);
	if (err == GH_OK && children > 0)
		err = GH_ERR_CONFLICT;
	if (err == GH_OK)
		err = count_of(db, "SELECT COUNT(*) FROM group_members WHERE "
		    "group_id = ?", id, &members);
	if (err == GH_OK)
		err = gh_db_run(db, "DELETE FROM groups WHERE id = ?", "t", id);
	if (err == GH_OK && gh_db_changes(db) == 0)
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK && members_out != NULL)
		*members_out = members;
	return err;
}

static gh_err
cursor_out(int64_t at, const char *id, char **next_out)
{
	char cur[64];

	snprintf(cur, sizeof cur, "%" PRId64 ".%s", at, id);
	*next_out = strdup(cur);
	return *next_out == NULL ? GH_ERR_NOMEM : GH_OK;
}

gh_err
gh_identity_group_list(struct gh_db *db, const struct gh_group_filter *f,
    json_t **groups_out, char **next_out)
{
	char after_id[GH_ID_LEN + 1] = "";
	int64_t after_at = -1;
	struct gh_stmt *st = NULL;
	struct gh_group g = { 0 }, last = { 0 };
	char *pattern = NULL;
	json_t *arr = NULL;
	int n = 0;
	bool row;
	gh_err err;

	*groups_out = NULL;
	*next_out = NULL;
	if (f->limit < 1 || f->limit > GH_GROUP_LIST_MAX)
		return GH_ERR_INVALID;
	if (f->cursor != NULL &&
	    identity_cursor_parse(f->cursor, &after_at, after_id) != GH_OK)
		return GH_ERR_INVALID;
	if (f->q != NULL && (pattern = identity_like_pattern(f->q)) == NULL)
		return GH_ERR_NOMEM;
	if ((arr = json_array()) == NULL) {
		free(pattern);
		return GH_ERR_NOMEM;
	}
	err = gh_db_prepare(db, "SELECT " GROUP_COLUMNS " FROM groups g WHERE "
	    "(CAST(? AS TEXT) IS NULL OR g.name_key LIKE ? ESCAPE '\\') AND "
	    "(CAST(? AS TEXT) IS NULL OR g.parent_id = ?) AND "
	    "(g.created_at > ? OR (g.created_at = ? AND g.id > ?)) "
	    "ORDER BY g.created_at, g.id LIMIT ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "ttttiiti", pattern, pattern, f->parent_id,
		    f->parent_id, after_at, after_at, after_id,
		    (int64_t)f->limit + 1);
	while (err == GH_OK) {
		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		if (n == f->limit) {
			err = cursor_out(last.created_at, last.id, next_out);
			break;
		}
		group_from_row(st, &g);
		if (json_array_append_new(arr, gh_identity_group_json(&g)) != 0)
			err = GH_ERR_NOMEM;
		last = g;
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
	*groups_out = arr;
	return GH_OK;
}

gh_err
gh_identity_group_member_add(struct gh_db *db, const char *group_id,
    const char *user_id, int64_t now_ms, bool *added_out)
{
	struct gh_group g;
	struct gh_user u;
	gh_err err;

	*added_out = false;
	err = gh_identity_group_get(db, group_id, &g);
	if (err == GH_OK)
		err = gh_identity_user_get(db, user_id, &u);
	gh_wipe(&u, sizeof u);
	if (err != GH_OK)
		return err;
	err = gh_db_run(db, "INSERT INTO group_members (group_id, user_id, "
	    "added_at) VALUES (?, ?, ?) ON CONFLICT (group_id, user_id) DO "
	    "NOTHING", "tti", group_id, user_id, now_ms);
	if (err == GH_OK)
		*added_out = gh_db_changes(db) == 1;
	return err;
}

gh_err
gh_identity_group_member_remove(struct gh_db *db, const char *group_id,
    const char *user_id)
{
	gh_err err;

	if (!gh_id_valid(group_id) || !gh_id_valid(user_id))
		return GH_ERR_NOTFOUND;
	err = gh_db_run(db, "DELETE FROM group_members WHERE group_id = ? AND "
	    "user_id = ?", "tt", group_id, user_id);
	if (err == GH_OK && gh_db_changes(db) == 0)
		err = GH_ERR_NOTFOUND;
	return err;
}

gh_err
gh_identity_group_member_list(struct gh_db *db, const char *group_id,
    const char *cursor, int limit, json_t **members_out, char **next_out)
{
	char after_id[GH_ID_LEN + 1] = "", last_id[GH_ID_LEN + 1] = "";
	int64_t after_at = -1, last_at = 0;
	struct gh_stmt *st = NULL;
	struct gh_user u;
	json_t *arr, *v;
	int n = 0;
	bool row;
	gh_err err;

	*members_out = NULL;
	*next_out = NULL;
	if (limit < 1 || limit > GH_USER_LIST_MAX)
		return GH_ERR_INVALID;
	if (cursor != NULL &&
	    identity_cursor_parse(cursor, &after_at, after_id) != GH_OK)
		return GH_ERR_INVALID;
	if ((arr = json_array()) == NULL)
		return GH_ERR_NOMEM;
	err = gh_db_prepare(db, "SELECT u.id, m.added_at FROM group_members m "
	    "JOIN users u ON u.id = m.user_id WHERE m.group_id = ? AND "
	    "(m.added_at > ? OR (m.added_at = ? AND u.id > ?)) "
	    "ORDER BY m.added_at, u.id LIMIT ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "tiiti", group_id, after_at, after_at,
		    after_id, (int64_t)limit + 1);
	while (err == GH_OK) {
		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		if (n == limit) {
			err = cursor_out(last_at, last_id, next_out);
			break;
		}
		gh_strlcpy(last_id, gh_stmt_text(st, 0), sizeof last_id);
		last_at = gh_stmt_int(st, 1);
		err = gh_identity_user_get(db, last_id, &u);
		if (err != GH_OK)
			break;
		v = gh_identity_user_json(&u);
		if (v == NULL || json_object_set_new(v, "added_at",
		    identity_time_json(last_at)) != 0 ||
		    json_array_append_new(arr, v) != 0)
			err = GH_ERR_NOMEM;
		n++;
	}
	gh_stmt_free(st);
	gh_wipe(&u, sizeof u);
	if (err != GH_OK) {
		json_decref(arr);
		free(*next_out);
		*next_out = NULL;
		return err;
	}
	*members_out = arr;
	return GH_OK;
}

/* Adds child_id to the "via" array of the effective entry for g, making
 * the entry when it is new. */
static gh_err
effective_add(json_t *eff, const struct gh_group *g, const char *child_id)
{
	json_t *e = json_object_get(eff, g->id);

	if (e == NULL) {
		e = gh_identity_group_json(g);
		if (e == NULL || json_object_set_new(e, "direct",
		    json_false()) != 0 || json_object_set_new(e, "via",
		    json_array()) != 0 || json_object_set_new(eff, g->id, e) != 0)
			return GH_ERR_NOMEM;
	}
	if (child_id == NULL)
		return json_object_set_new(e, "direct", json_true()) == 0 ?
		    GH_OK : GH_ERR_NOMEM;
	return json_array_append_new(json_object_get(e, "via"),
	    json_string(child_id)) == 0 ? GH_OK : GH_ERR_NOMEM;
}

/* The values of obj (keyed by group id) as an array ordered by name. */
static json_t *
by_name(json_t *obj)
{
	json_t *arr = json_array(), *v;
	const char *k;
	size_t n;

	if (arr == NULL)
		return NULL;
	json_object_foreach(obj, k, v)
		json_array_append(arr, v);
	n = json_array_size(arr);
	/* Few groups per user: an insertion sort keeps it simple. */
	for (size_t i = 1; i < n; i++) {
		for (size_t j = i; j > 0; j--) {
			json_t *a = json_array_get(arr, j - 1);
			json_t *b = json_array_get(arr, j);

			if (strcasecmp(json_string_value(json_object_get(a,
			    "name")), json_string_value(json_object_get(b,
			    "name"))) <= 0)
				break;
			json_incref(a);
			json_array_set(arr, j - 1, b);
			json_array_set_new(arr, j, a);
		}
	}
	return arr;
}

gh_err
gh_identity_user_groups(struct gh_db *db, const char *user_id,
    json_t **direct_out, json_t **effective_out)
{
	struct gh_stmt *st = NULL;
	struct gh_group g, parent;
	json_t *direct = NULL, *eff = NULL, *v;
	bool row;
	gh_err err;

	*direct_out = *effective_out = NULL;
	direct = json_object();
	eff = json_object();
	err = direct != NULL && eff != NULL ? GH_OK : GH_ERR_NOMEM;
	if (err == GH_OK)
		err = gh_db_prepare(db, "SELECT " GROUP_COLUMNS ", m.added_at "
		    "FROM group_members m JOIN groups g ON g.id = m.group_id "
		    "WHERE m.user_id = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", user_id);
	while (err == GH_OK) {
		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		group_from_row(st, &g);
		v = gh_identity_group_json(&g);
		if (v == NULL || json_object_set_new(v, "added_at",
		    identity_time_json(gh_stmt_int(st, 6))) != 0 ||
		    json_object_set_new(direct, g.id, v) != 0) {
			err = GH_ERR_NOMEM;
			break;
		}
		err = effective_add(eff, &g, NULL);
		if (err == GH_OK && g.parent_id[0] != '\0') {
			err = gh_identity_group_get(db, g.parent_id, &parent);
			if (err == GH_OK)
				err = effective_add(eff, &parent, g.id);
		}
	}
	gh_stmt_free(st);
	if (err == GH_OK) {
		*direct_out = by_name(direct);
		*effective_out = by_name(eff);
		if (*direct_out == NULL || *effective_out == NULL) {
			json_decref(*direct_out);
			json_decref(*effective_out);
			*direct_out = *effective_out = NULL;
			err = GH_ERR_NOMEM;
		}
	}
	json_decref(direct);
	json_decref(eff);
	return err;
}

json_t *
gh_identity_group_json(const struct gh_group *g)
{
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "id", g->id,
	    "name", g->name, "description", g->description, "parent_id",
	    g->parent_id[0] ? json_string(g->parent_id) : json_null(),
	    "created_at", identity_time_json(g->created_at),
	    "updated_at", identity_time_json(g->updated_at));
}
