/*
 * user.c: users and settings in a tenant database.
 * Untrusted input: usernames, e-mails, display names, list filters and
 * cursors (validated; bound as parameters). Holds password hashes, which
 * only leave through struct gh_user, never through the JSON view.
 */
#include "identity/identity.h"
#include "identity/identity_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
gh_identity_username_valid(const char *u)
{
	size_t n;

	if (u == NULL)
		return false;
	n = strlen(u);
	if (n < 1 || n > GH_USERNAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)u[i];

		if (!isalnum(c) && strchr("._@+-", c) == NULL)
			return false;
	}
	return true;
}

bool
gh_identity_email_valid(const char *e)
{
	const char *at;
	size_t n;

	if (e == NULL)
		return false;
	n = strlen(e);
	if (n < 3 || n > GH_EMAIL_MAX)
		return false;
	at = strchr(e, '@');
	if (at == NULL || at == e || strchr(at + 1, '@') != NULL ||
	    at[1] == '\0' || strchr(at + 1, '.') == NULL ||
	    e[n - 1] == '.' || at[1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)e[i];

		if (c <= 0x20 || c >= 0x7f || strchr("<>()[]\\,;:\"", c))
			return false;
	}
	return true;
}

bool
gh_identity_role_valid(const char *role)
{
	return role != NULL && (strcmp(role, "owner") == 0 ||
	    strcmp(role, "admin") == 0 || strcmp(role, "member") == 0);
}

bool
gh_identity_user_state_valid(const char *state)
{
	return state != NULL && (strcmp(state, "active") == 0 ||
	    strcmp(state, "disabled") == 0);
}

/* Usernames are ASCII, so lowercasing them byte by byte is exact. */
static void
username_key(const char *username, char out[static GH_USERNAME_MAX + 1])
{
	size_t i;

	for (i = 0; username[i] != '\0' && i < GH_USERNAME_MAX; i++)
		out[i] = (char)tolower((unsigned char)username[i]);
	out[i] = '\0';
}

gh_err
gh_identity_user_init(struct gh_user *u, const char *username)
{
	gh_err err;

	memset(u, 0, sizeof *u);
	if (!gh_identity_username_valid(username))
		return GH_ERR_INVALID;
	err = gh_id_new(u->id);
	if (err != GH_OK)
		return err;
	gh_strlcpy(u->username, username, sizeof u->username);
	gh_strlcpy(u->state, "active", sizeof u->state);
	gh_strlcpy(u->role, "member", sizeof u->role);
	u->created_at = u->updated_at = gh_now_ms();
	return GH_OK;
}

static bool
user_fields_valid(const struct gh_user *u)
{
	return gh_id_valid(u->id) && gh_identity_username_valid(u->username) &&
	    (u->email[0] == '\0' || gh_identity_email_valid(u->email)) &&
	    gh_identity_display_name_valid(u->display_name) &&
	    gh_identity_user_state_valid(u->state) &&
	    gh_identity_role_valid(u->role);
}

static const char *
empty_null(const char *s)
{
	return s[0] == '\0' ? NULL : s;
}

gh_err
gh_identity_user_insert(struct gh_db *db, const struct gh_user *u)
{
	char key[GH_USERNAME_MAX + 1];

	if (!user_fields_valid(u))
		return GH_ERR_INVALID;
	username_key(u->username, key);
	return gh_db_run(db,
	    "INSERT INTO users (id, username, username_key, email, "
	    "display_name, state, role, password_hash, password_changed_at, "
	    "created_at, updated_at, last_signin_at) VALUES (?, ?, ?, ?, ?, ?, "
	    "?, ?, ?, ?, ?, ?)", "tttttttt" "iiii", u->id, u->username, key,
	    empty_null(u->email), u->display_name, u->state, u->role,
	    empty_null(u->password_hash),
	    u->password_changed_at, u->created_at,
	    u->updated_at, u->last_signin_at);
}

#define USER_COLUMNS "id, username, email, display_name, state, role, " \
	"password_hash, created_at, updated_at, last_signin_at, " \
	"password_changed_at"

void
gh_identity_user_from_stmt(struct gh_stmt *st, int f, struct gh_user *u)
{
	const char *s;

	memset(u, 0, sizeof *u);
	gh_strlcpy(u->id, gh_stmt_text(st, f + 0), sizeof u->id);
	gh_strlcpy(u->username, gh_stmt_text(st, f + 1), sizeof u->username);
	if ((s = gh_stmt_text(st, f + 2)) != NULL)
		gh_strlcpy(u->email, s, sizeof u->email);
	gh_strlcpy(u->display_name, gh_stmt_text(st, f + 3),
	    sizeof u->display_name);
	gh_strlcpy(u->state, gh_stmt_text(st, f + 4), sizeof u->state);
	gh_strlcpy(u->role, gh_stmt_text(st, f + 5), sizeof u->role);
	if ((s = gh_stmt_text(st, f + 6)) != NULL)
		gh_strlcpy(u->password_hash, s, sizeof u->password_hash);
	u->created_at = gh_stmt_int(st, f + 7);
	u->updated_at = gh_stmt_int(st, f + 8);
	u->last_signin_at = gh_stmt_int(st, f + 9);
	u->password_changed_at = gh_stmt_int(st, f + 10);
}

static void
user_from_row(struct gh_stmt *st, struct gh_user *u)
{
	gh_identity_user_from_stmt(st, 0, u);
}

static gh_err
user_select_one(struct gh_db *db, const char *sql, const char *arg,
    struct gh_user *out)
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
		user_from_row(st, out);
	gh_stmt_free(st);
	return err;
}

gh_err
gh_identity_user_get(struct gh_db *db, const char *id, struct gh_user *out)
{
	if (!gh_id_valid(id))
		return GH_ERR_NOTFOUND;
	return user_select_one(db, "SELECT " USER_COLUMNS " FROM users WHERE "
	    "id = ?", id, out);
}

gh_err
gh_identity_user_find(struct gh_db *db, const char *username,
    struct gh_user *out)
{
	char key[GH_USERNAME_MAX + 1];

	if (!gh_identity_username_valid(username))
		return GH_ERR_NOTFOUND;
	username_key(username, key);
	return user_select_one(db, "SELECT " USER_COLUMNS " FROM users WHERE "
	    "username_key = ?", key, out);
}

gh_err
gh_identity_user_update(struct gh_db *db, struct gh_user *u)
{
	gh_err err;

	if (!user_fields_valid(u))
		return GH_ERR_INVALID;
	u->updated_at = gh_now_ms();
	err = gh_db_run(db,
	    "UPDATE users SET email = ?, display_name = ?, state = ?, role = ?, "
	    "password_hash = ?, password_changed_at = ?, last_signin_at = ?, "
	    "updated_at = ? WHERE id = ?", "tttttiiit", empty_null(u->email),
	    u->display_name, u->state, u->role, empty_null(u->password_hash),
	    u->password_changed_at, u->last_signin_at, u->updated_at, u->id);
	if (err == GH_OK && gh_db_changes(db) == 0)
		err = GH_ERR_NOTFOUND;
	return err;
}

gh_err
gh_identity_user_touch_signin(struct gh_db *db, const char *id, int64_t at)
{
	gh_err err;

	err = gh_db_run(db, "UPDATE users SET last_signin_at = ? WHERE id = ?",
	    "it", at, id);
	if (err == GH_OK && gh_db_changes(db) == 0)
		err = GH_ERR_NOTFOUND;
	return err;
}

gh_err
gh_identity_user_swap_hash(struct gh_db *db, const char *id,
    const char *old_hash, const char *new_hash)
{
	int64_t now = gh_now_ms();
	gh_err err;

	if (strlen(new_hash) > GH_PW_HASH_MAX)
		return GH_ERR_INVALID;
	err = gh_db_run(db, "UPDATE users SET password_hash = ?, "
	    "updated_at = ? WHERE id = ? AND password_hash = ?", "titt",
	    new_hash, now, id, old_hash);
	if (err == GH_OK && gh_db_changes(db) == 0)
		err = GH_ERR_CONFLICT;
	return err;
}

gh_err
gh_identity_user_delete(struct gh_db *db, const char *id)
{
	gh_err err;

	if (!gh_id_valid(id))
		return GH_ERR_NOTFOUND;
	err = gh_db_run(db, "DELETE FROM users WHERE id = ?", "t", id);
	if (err == GH_OK && gh_db_changes(db) == 0)
		err = GH_ERR_NOTFOUND;
	return err;
}

gh_err
gh_identity_owner_count(struct gh_db *db, const char *except_id,
    int64_t *out)
{
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	err = gh_db_prepare(db, "SELECT COUNT(*) FROM users WHERE role = "
	    "'owner' AND state = 'active' AND id <> ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", except_id ? except_id : "");
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && !row)
		err = GH_ERR_STORE;
	if (err == GH_OK)
		*out = gh_stmt_int(st, 0);
	gh_stmt_free(st);
	return err;
}

gh_err
identity_cursor_parse(const char *c, int64_t *at_out,
    char id_out[static GH_ID_LEN + 1])
{
	const char *dot;
	char *end;
	long long at;

	if (strlen(c) > 64 || (dot = strchr(c, '.')) == NULL ||
	    !isdigit((unsigned char)c[0]))
		return GH_ERR_INVALID;
	errno = 0;
	at = strtoll(c, &end, 10);
	if (errno != 0 || end != dot || at < 0 || !gh_id_valid(dot + 1))
		return GH_ERR_INVALID;
	*at_out = at;
	gh_strlcpy(id_out, dot + 1, GH_ID_LEN + 1);
	return GH_OK;
}

char *
identity_like_pattern(const char *q)
{
	struct gh_buf b;

	gh_buf_init(&b, 1024, 0);
	gh_buf_put_u8(&b, '%');
	for (const char *p = q; *p != '\0'; p++) {
		if (*p == '%' || *p == '_' || *p == '\\')
			gh_buf_put_u8(&b, '\\');
		gh_buf_put_u8(&b, (uint8_t)tolower((unsigned char)*p));
	}
	gh_buf_put_u8(&b, '%');
	return gh_buf_take(&b, NULL);
}

gh_err
gh_identity_user_list(struct gh_db *db, const struct gh_user_filter *f,
    json_t **users_out, char **next_out)
{
	char after_id[GH_ID_LEN + 1] = "";
	int64_t after_at = -1;
	struct gh_stmt *st = NULL;
	struct gh_user u = { 0 }, last = { 0 };
	char *pattern = NULL;
	json_t *arr = NULL;
	int n = 0;
	bool row;
	gh_err err;

	*users_out = NULL;
	*next_out = NULL;
	if (f->limit < 1 || f->limit > GH_USER_LIST_MAX)
		return GH_ERR_INVALID;
	if (f->cursor != NULL &&
	    identity_cursor_parse(f->cursor, &after_at, after_id) != GH_OK)
		return GH_ERR_INVALID;
	if (f->q != NULL && (pattern = identity_like_pattern(f->q)) == NULL)
		return GH_ERR_NOMEM;
	arr = json_array();
	if (arr == NULL) {
		free(pattern);
		return GH_ERR_NOMEM;
	}
	err = gh_db_prepare(db, "SELECT " USER_COLUMNS " FROM users WHERE "
	    "(CAST(? AS TEXT) IS NULL OR username_key LIKE ? ESCAPE '\\' OR "
	    "LOWER(COALESCE(email, '')) LIKE ? ESCAPE '\\' OR "
	    "LOWER(display_name) LIKE ? ESCAPE '\\') AND "
	    "(CAST(? AS TEXT) IS NULL OR state = ?) AND "
	    "(CAST(? AS TEXT) IS NULL OR role = ?) AND "
	    "(created_at > ? OR (created_at = ? AND id > ?)) "
	    "ORDER BY created_at, id LIMIT ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "ttttttttiiti", pattern, pattern, pattern,
		    pattern, f->state, f->state, f->role, f->role, after_at,
		    after_at, after_id, (int64_t)f->limit + 1);
	while (err == GH_OK) {
		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		if (n == f->limit) {
			char cur[64];

			snprintf(cur, sizeof cur, "%" PRId64 ".%s",
			    last.created_at, last.id);
			if ((*next_out = strdup(cur)) == NULL)
				err = GH_ERR_NOMEM;
			break;
		}
		user_from_row(st, &u);
		if (json_array_append_new(arr, gh_identity_user_json(&u)) != 0)
			err = GH_ERR_NOMEM;
		last = u;
		n++;
	}
	gh_stmt_free(st);
	free(pattern);
	gh_wipe(&u, sizeof u);
	if (err != GH_OK) {
		json_decref(arr);
		free(*next_out);
		*next_out = NULL;
		return err;
	}
	*users_out = arr;
	return GH_OK;
}

json_t *
identity_time_json(int64_t ms)
{
	char s[25];

	if (ms <= 0)
		return json_null();
	gh_time_rfc3339(ms, s);
	return json_string(s);
}

json_t *
gh_identity_user_json(const struct gh_user *u)
{
	return json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:o, s:o, s:o, s:o}",
	    "id", u->id, "username", u->username,
	    "email", u->email[0] ? json_string(u->email) : json_null(),
	    "display_name", u->display_name, "state", u->state,
	    "role", u->role, "created_at", identity_time_json(u->created_at),
	    "updated_at", identity_time_json(u->updated_at),
	    "last_signin_at", identity_time_json(u->last_signin_at),
	    "password_changed_at", identity_time_json(u->password_changed_at));
}

gh_err
gh_identity_setting_get(struct gh_db *db, const char *key, json_t **out)
{
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	*out = NULL;
	err = gh_db_prepare(db, "SELECT value FROM settings WHERE key = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", key);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && !row)
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK) {
		*out = json_loads(gh_stmt_text(st, 0), JSON_REJECT_DUPLICATES,
		    NULL);
		if (*out == NULL) {
			GH_LOG_ERR(GH_ERR_STORE, "org %s: setting %s is not JSON",
			    gh_db_org_id(db), key);
			err = GH_ERR_STORE;
		}
	}
	gh_stmt_free(st);
	return err;
}

gh_err
gh_identity_setting_put(struct gh_db *db, const char *key, json_t *value)
{
	char *text;
	gh_err err;

	text = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS |
	    JSON_ENCODE_ANY);
	if (text == NULL)
		return GH_ERR_NOMEM;
	err = gh_db_run(db, "INSERT INTO settings (key, value, updated_at) "
	    "VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = "
	    "excluded.value, updated_at = excluded.updated_at", "tti", key,
	    text, gh_now_ms());
	free(text);
	return err;
}
