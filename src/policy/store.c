/*
 * store.c: security policies in the tenant tables security_policies and
 * policy_groups (migration 0009), and the effective policy of a user.
 *
 * Untrusted input: names, priorities and settings already validated by the
 * caller (gh_policy_name_valid, gh_policy_settings_parse); ids from paths
 * are bound as parameters. Stored settings are re-read defensively.
 * Secrets: none.
 */
#include "policy/policy.h"
#include "store/store.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define POLICY_COLUMNS "id, name, priority, is_default, settings, " \
	"created_at, updated_at"

bool
gh_policy_name_valid(const char *name)
{
	size_t n, i;

	if (name == NULL || (n = strlen(name)) == 0 || n > GH_POLICY_NAME_MAX)
		return false;
	if (name[0] == ' ' || name[n - 1] == ' ')
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 ||
		    (unsigned char)name[i] >= 0x7f)
			return false;
	return true;
}

void
gh_policy_clear(struct gh_policy *p)
{
	json_decref(p->settings);
	p->settings = NULL;
}

static void
name_key(const char *name, char out[static GH_POLICY_NAME_MAX + 1])
{
	size_t i;

	for (i = 0; name[i] != '\0' && i < GH_POLICY_NAME_MAX; i++)
		out[i] = (char)tolower((unsigned char)name[i]);
	out[i] = '\0';
}

static gh_err
from_row(struct gh_stmt *st, struct gh_policy *p)
{
	json_error_t jerr;

	memset(p, 0, sizeof *p);
	gh_strlcpy(p->id, gh_stmt_text(st, 0), sizeof p->id);
	gh_strlcpy(p->name, gh_stmt_text(st, 1), sizeof p->name);
	p->priority = gh_stmt_int(st, 2);
	p->is_default = gh_stmt_int(st, 3) != 0;
	p->settings = json_loads(gh_stmt_text(st, 4), 0, &jerr);
	p->created_at = gh_stmt_int(st, 5);
	p->updated_at = gh_stmt_int(st, 6);
	if (!json_is_object(p->settings)) {
		GH_LOG_ERR(GH_ERR_STORE, "policy %s: stored settings unreadable",
		    p->id);
		gh_policy_clear(p);
		return GH_ERR_STORE;
	}
	return GH_OK;
}

/* Which unique key a conflicting write hit. */
static gh_err
conflict_why(struct gh_db *db, const struct gh_policy *p, const char **why)
{
	char key[GH_POLICY_NAME_MAX + 1];
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	name_key(p->name, key);
	err = gh_db_prepare(db, "SELECT 1 FROM security_policies WHERE "
	    "name_key = ? AND id <> ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "tt", key, p->id);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	gh_stmt_free(st);
	if (err != GH_OK)
		return err;
	*why = row ? "policy_exists" : "priority_taken";
	return GH_ERR_CONFLICT;
}

static char *
settings_text(const struct gh_policy *p)
{
	return json_dumps(p->settings, JSON_COMPACT | JSON_SORT_KEYS);
}

gh_err
gh_policy_insert(struct gh_db *db, struct gh_policy *p, const char **why_out)
{
	char key[GH_POLICY_NAME_MAX + 1];
	char *text = NULL;
	gh_err err;

	*why_out = NULL;
	if (!gh_policy_name_valid(p->name) || p->priority < 0 ||
	    p->priority > GH_POLICY_PRIORITY_MAX || p->settings == NULL)
		return GH_ERR_INVALID;
	err = gh_id_new(p->id);
	if (err != GH_OK)
		return err;
	p->is_default = false;
	p->created_at = p->updated_at = gh_now_ms();
	name_key(p->name, key);
	if ((text = settings_text(p)) == NULL)
		return GH_ERR_NOMEM;
	err = gh_db_run(db, "INSERT INTO security_policies (id, name, "
	    "name_key, priority, is_default, settings, created_at, updated_at) "
	    "VALUES (?, ?, ?, ?, 0, ?, ?, ?)", "tttitii", p->id, p->name, key,
	    p->priority, text, p->created_at, p->updated_at);
	free(text);
	if (err == GH_ERR_CONFLICT)
		err = conflict_why(db, p, why_out);
	return err;
}

gh_err
gh_policy_update(struct gh_db *db, struct gh_policy *p, const char **why_out)
{
	char key[GH_POLICY_NAME_MAX + 1];
	struct gh_policy old;
	char *text = NULL;
	gh_err err;

	*why_out = NULL;
	if (!gh_policy_name_valid(p->name) || p->settings == NULL)
		return GH_ERR_INVALID;
	err = gh_policy_get(db, p->id, &old);
	if (err != GH_OK)
		return err;
	gh_policy_clear(&old);
	if (old.is_default ? p->priority != old.priority :
	    (p->priority < 0 || p->priority > GH_POLICY_PRIORITY_MAX))
		return GH_ERR_INVALID;
	p->updated_at = gh_now_ms();
	name_key(p->name, key);
	if ((text = settings_text(p)) == NULL)
		return GH_ERR_NOMEM;
	err = gh_db_run(db, "UPDATE security_policies SET name = ?, name_key = "
	    "?, priority = ?, settings = ?, updated_at = ? WHERE id = ?",
	    "ttitit", p->name, key, p->priority, text, p->updated_at, p->id);
	free(text);
	if (err == GH_ERR_CONFLICT)
		err = conflict_why(db, p, why_out);
	return err;
}

gh_err
gh_policy_get(struct gh_db *db, const char *id, struct gh_policy *out)
{
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	memset(out, 0, sizeof *out);
	if (id == NULL || !gh_id_valid(id))
		return GH_ERR_NOTFOUND;
	err = gh_db_prepare(db, "SELECT " POLICY_COLUMNS " FROM "
	    "security_policies WHERE id = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", id);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK)
		err = row ? from_row(st, out) : GH_ERR_NOTFOUND;
	gh_stmt_free(st);
	return err;
}

gh_err
gh_policy_delete(struct gh_db *db, const char *id)
{
	struct gh_policy p;
	gh_err err;

	err = gh_policy_get(db, id, &p);
	if (err != GH_OK)
		return err;
	gh_policy_clear(&p);
	if (p.is_default)
		return GH_ERR_DENIED;
	return gh_db_run(db, "DELETE FROM security_policies WHERE id = ?", "t",
	    id);
}

static json_t *
time_json(int64_t ms)
{
	char t[25];

	gh_time_rfc3339(ms, t);
	return json_string(t);
}

json_t *
gh_policy_json(const struct gh_policy *p, json_t *groups)
{
	json_t *v;

	v = json_pack("{s:s, s:s, s:I, s:b, s:O, s:o, s:o}", "id", p->id,
	    "name", p->name, "priority", (json_int_t)p->priority,
	    "is_default", p->is_default, "settings", p->settings,
	    "created_at", time_json(p->created_at), "updated_at",
	    time_json(p->updated_at));
	if (v != NULL && groups != NULL &&
	    json_object_set(v, "groups", groups) != 0) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

gh_err
gh_policy_groups(struct gh_db *db, const char *policy_id, json_t **out)
{
	struct gh_stmt *st = NULL;
	json_t *arr;
	bool row;
	gh_err err;

	*out = NULL;
	if ((arr = json_array()) == NULL)
		return GH_ERR_NOMEM;
	err = gh_db_prepare(db, "SELECT group_id FROM policy_groups WHERE "
	    "policy_id = ? ORDER BY added_at, group_id", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", policy_id);
	while (err == GH_OK) {
		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		if (json_array_append_new(arr,
		    json_string(gh_stmt_text(st, 0))) != 0)
			err = GH_ERR_NOMEM;
	}
	gh_stmt_free(st);
	if (err != GH_OK)
		json_decref(arr);
	else
		*out = arr;
	return err;
}

gh_err
gh_policy_list(struct gh_db *db, json_t **out)
{
	struct gh_stmt *st = NULL;
	struct gh_policy p;
	json_t *arr, *groups, *v;
	bool row;
	gh_err err;

	*out = NULL;
	if ((arr = json_array()) == NULL)
		return GH_ERR_NOMEM;
	err = gh_db_prepare(db, "SELECT " POLICY_COLUMNS " FROM "
	    "security_policies ORDER BY priority", &st);
	while (err == GH_OK) {
		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		err = from_row(st, &p);
		if (err != GH_OK)
			break;
		err = gh_policy_groups(db, p.id, &groups);
		if (err == GH_OK) {
			v = gh_policy_json(&p, groups);
			if (v == NULL || json_array_append_new(arr, v) != 0)
				err = GH_ERR_NOMEM;
			json_decref(groups);
		}
		gh_policy_clear(&p);
	}
	gh_stmt_free(st);
	if (err != GH_OK)
		json_decref(arr);
	else
		*out = arr;
	return err;
}

gh_err
gh_policy_attach(struct gh_db *db, const char *policy_id,
    const char *group_id, bool *added_out)
{
	struct gh_policy p;
	gh_err err;

	*added_out = false;
	err = gh_policy_get(db, policy_id, &p);
	if (err != GH_OK)
		return err;
	gh_policy_clear(&p);
	if (p.is_default)
		return GH_ERR_DENIED;
	err = gh_db_run(db, "INSERT INTO policy_groups (policy_id, group_id, "
	    "added_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", "tti",
	    policy_id, group_id, gh_now_ms());
	if (err == GH_OK)
		*added_out = gh_db_changes(db) > 0;
	return err;
}

gh_err
gh_policy_detach(struct gh_db *db, const char *policy_id,
    const char *group_id)
{
	gh_err err;

	err = gh_db_run(db, "DELETE FROM policy_groups WHERE policy_id = ? AND "
	    "group_id = ?", "tt", policy_id, group_id);
	if (err == GH_OK && gh_db_changes(db) == 0)
		err = GH_ERR_NOTFOUND;
	return err;
}

/* Sets "section.field" of sources to src and the field of settings to v,
 * unless a higher-priority source set it already. */
static gh_err
take_fields(json_t *settings, json_t *sources, json_t *from, json_t *src)
{
	const char *sname, *fname;
	json_t *sec, *fv, *dsec;
	char path[80];

	json_object_foreach(from, sname, sec) {
		if (!json_is_object(sec))
			continue;
		json_object_foreach(sec, fname, fv) {
			snprintf(path, sizeof path, "%s.%s", sname, fname);
			if (json_object_get(sources, path) != NULL)
				continue;
			dsec = json_object_get(settings, sname);
			if (dsec == NULL) {
				dsec = json_object();
				if (json_object_set_new(settings, sname,
				    dsec) != 0)
					return GH_ERR_NOMEM;
			}
			if (json_object_set(dsec, fname, fv) != 0 ||
			    json_object_set(sources, path, src) != 0)
				return GH_ERR_NOMEM;
		}
	}
	return GH_OK;
}

/*
 * The policies of user_id by priority, the default last. Effective groups
 * as src/identity defines them (identity.h, gh_identity_user_groups): the
 * groups the user was added to and their parents.
 */
#define USER_POLICIES_SQL \
	"SELECT " POLICY_COLUMNS " FROM security_policies WHERE is_default = 1 " \
	"OR id IN (SELECT pg.policy_id FROM policy_groups pg WHERE " \
	"pg.group_id IN (SELECT m.group_id FROM group_members m WHERE " \
	"m.user_id = ? UNION SELECT g.parent_id FROM group_members m JOIN " \
	"groups g ON g.id = m.group_id WHERE m.user_id = ? AND g.parent_id " \
	"IS NOT NULL)) ORDER BY priority"

gh_err
gh_policy_effective(struct gh_db *db, const char *user_id,
    json_t *org_fallback, json_t **out, struct gh_policy_eff *eff_out)
{
	struct gh_stmt *st = NULL;
	struct gh_policy p;
	json_t *res, *list, *settings, *sources, *src;
	bool row;
	gh_err err;

	*out = NULL;
	res = json_pack("{s:s, s:[], s:{}, s:{}}", "user_id", user_id,
	    "policies", "settings", "sources");
	if (res == NULL)
		return GH_ERR_NOMEM;
	list = json_object_get(res, "policies");
	settings = json_object_get(res, "settings");
	sources = json_object_get(res, "sources");
	err = gh_db_prepare(db, USER_POLICIES_SQL, &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "tt", user_id, user_id);
	while (err == GH_OK) {
		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		err = from_row(st, &p);
		if (err != GH_OK)
			break;
		src = json_pack("{s:s, s:s, s:s}", "kind", "policy", "id", p.id,
		    "name", p.name);
		if (src == NULL || json_array_append_new(list, json_pack(
		    "{s:s, s:s, s:I, s:b}", "id", p.id, "name", p.name,
		    "priority", (json_int_t)p.priority, "is_default",
		    p.is_default)) != 0)
			err = GH_ERR_NOMEM;
		if (err == GH_OK)
			err = take_fields(settings, sources, p.settings, src);
		json_decref(src);
		gh_policy_clear(&p);
	}
	gh_stmt_free(st);
	if (err == GH_OK && org_fallback != NULL) {
		src = json_pack("{s:s}", "kind", "org");
		err = src == NULL ? GH_ERR_NOMEM :
		    take_fields(settings, sources, org_fallback, src);
		json_decref(src);
	}
	if (err == GH_OK && eff_out != NULL)
		err = gh_policy_eff_read(settings, eff_out);
	if (err != GH_OK)
		json_decref(res);
	else
		*out = res;
	return err;
}
