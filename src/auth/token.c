/*
 * token.c: API tokens. A token is "gh_" followed by 32 random bytes in
 * base64url; the row in api_tokens holds hex(SHA-256) of the whole token
 * string, prefix included. The token goes to its owner once and is never
 * stored or logged.
 *
 * Untrusted input: tokens presented by clients (shape checked, hashed, then
 * compared in constant time) and token names (1-64 bytes of printable
 * UTF-8).
 *
 * Transactions: none of these functions BEGINs or COMMITs; the caller's
 * transaction covers them, so that a change and its audit event commit
 * together.
 */
#include "auth/auth_int.h"

#include <string.h>

#define TOKEN_NAME_MAX 64

#define TOKEN_COLUMNS \
	"t.id, t.token_hash, t.user_id, t.name, t.created_at, t.expires_at, " \
	"t.last_used_at"

/* 1..TOKEN_NAME_MAX bytes of UTF-8 without control characters. */
static bool
name_ok(const char *name)
{
	size_t n, i;

	if (name == NULL)
		return false;
	n = strnlen(name, TOKEN_NAME_MAX + 1);
	if (n == 0 || n > TOKEN_NAME_MAX || !gh_utf8_valid(name, n))
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return false;
	return true;
}

/* Reads TOKEN_COLUMNS from the current row; col 1, the digest, is the
 * caller's business. */
static void
token_from_row(struct gh_stmt *st, struct gh_api_token *t)
{
	const char *s;

	memset(t, 0, sizeof *t);
	s = gh_stmt_text(st, 0);
	gh_strlcpy(t->id, s != NULL ? s : "", sizeof t->id);
	s = gh_stmt_text(st, 2);
	gh_strlcpy(t->user_id, s != NULL ? s : "", sizeof t->user_id);
	s = gh_stmt_text(st, 3);
	gh_strlcpy(t->name, s != NULL ? s : "", sizeof t->name);
	t->created_at = gh_stmt_int(st, 4);
	t->expires_at = gh_stmt_int(st, 5);
	t->last_used_at = gh_stmt_is_null(st, 6) ? 0 : gh_stmt_int(st, 6);
}

gh_err
gh_auth_api_token_create(struct gh_db *db, const char *user_id,
    const char *name, int64_t expires_at,
    char token_out[static GH_API_TOKEN_LEN + 1], struct gh_api_token *out)
{
	char token[GH_API_TOKEN_LEN + 1], digest[GH_TOKEN_HASH_LEN + 1];
	struct gh_api_token t;
	gh_err err;

	token_out[0] = '\0';
	memset(&t, 0, sizeof t);
	memset(token, 0, sizeof token);
	t.created_at = gh_now_ms();
	if (db == NULL || user_id == NULL || !gh_id_valid(user_id) ||
	    !name_ok(name) || expires_at <= t.created_at ||
	    expires_at - t.created_at > GH_API_TOKEN_MAX_TTL_MS) {
		err = GH_ERR_INVALID;
		goto out;
	}
	err = auth_user_active(db, user_id);
	if (err != GH_OK)
		goto out;
	err = gh_id_new(t.id);
	if (err != GH_OK)
		goto out;
	memcpy(token, GH_API_TOKEN_PREFIX, 3);
	err = auth_token_new(token + 3);
	if (err != GH_OK)
		goto out;
	auth_token_digest(token, GH_API_TOKEN_LEN, digest);
	gh_strlcpy(t.user_id, user_id, sizeof t.user_id);
	gh_strlcpy(t.name, name, sizeof t.name);
	t.expires_at = expires_at;
	err = gh_db_run(db, "INSERT INTO api_tokens (id, token_hash, name, "
	    "user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
	    "ttttii", t.id, digest, t.name, t.user_id, t.created_at,
	    t.expires_at);
	if (err != GH_OK) {
		GH_LOG_ERR(err, "user %s: api token insert failed", user_id);
		goto out;
	}
	memcpy(token_out, token, sizeof token);
	if (out != NULL)
		*out = t;
out:
	gh_wipe(token, sizeof token);
	gh_wipe(digest, sizeof digest);
	return err;
}

gh_err
gh_auth_api_token_check(struct gh_db *db, const char *token,
    struct gh_api_token *out)
{
	char digest[GH_TOKEN_HASH_LEN + 1];
	struct gh_stmt *st = NULL;
	struct gh_api_token t;
	int64_t now;
	gh_err err;
	bool row;

	if (db == NULL)
		return GH_ERR_INVALID;
	if (token == NULL || strncmp(token, GH_API_TOKEN_PREFIX, 3) != 0 ||
	    !auth_token_shape_ok(token + 3, GH_TOKEN_LEN))
		return GH_ERR_DENIED;
	auth_token_digest(token, GH_API_TOKEN_LEN, digest);
	now = gh_now_ms();
	err = gh_db_prepare(db, "SELECT " TOKEN_COLUMNS " FROM api_tokens t "
	    "JOIN users u ON u.id = t.user_id WHERE t.token_hash = ? AND "
	    "t.revoked_at IS NULL AND t.expires_at > ? AND "
	    "u.state = 'active'", &st);
	if (err != GH_OK)
		goto out;
	err = gh_stmt_bind(st, "ti", digest, now);
	if (err != GH_OK)
		goto out;
	err = gh_stmt_step(st, &row);
	if (err != GH_OK)
		goto out;
	/* SQL equality found the row; the constant-time comparison decides. */
	if (!row || !auth_digest_eq(gh_stmt_text(st, 1), digest)) {
		err = GH_ERR_DENIED;
		goto out;
	}
	token_from_row(st, &t);
	gh_stmt_free(st);
	st = NULL;
	err = gh_db_run(db, "UPDATE api_tokens SET last_used_at = ? WHERE "
	    "id = ?", "it", now, t.id);
	if (err != GH_OK) {
		GH_LOG_ERR(err, "api token %s: recording use failed", t.id);
		goto out;
	}
	t.last_used_at = now;
	if (out != NULL)
		*out = t;
out:
	gh_stmt_free(st);
	gh_wipe(digest, sizeof digest);
	return err;
}

gh_err
gh_auth_api_token_list(struct gh_db *db, const char *user_id,
    void (*fn)(const struct gh_api_token *t, void *arg), void *arg)
{
	struct gh_stmt *st = NULL;
	struct gh_api_token t;
	gh_err err;
	bool row;

	if (db == NULL || fn == NULL)
		return GH_ERR_INVALID;
	/* Two statements rather than "? IS NULL OR": PostgreSQL cannot type
	 * a parameter that is only tested for NULL. */
	if (user_id != NULL)
		err = gh_db_prepare(db, "SELECT " TOKEN_COLUMNS " FROM "
		    "api_tokens t WHERE t.user_id = ? AND t.revoked_at IS NULL "
		    "AND t.expires_at > ? ORDER BY t.created_at DESC, t.id DESC",
		    &st);
	else
		err = gh_db_prepare(db, "SELECT " TOKEN_COLUMNS " FROM "
		    "api_tokens t WHERE t.revoked_at IS NULL AND t.expires_at > ? "
		    "ORDER BY t.created_at DESC, t.id DESC", &st);
	if (err != GH_OK)
		goto out;
	if (user_id != NULL)
		err = gh_stmt_bind(st, "ti", user_id, gh_now_ms());
	else
		err = gh_stmt_bind(st, "i", gh_now_ms());
	if (err != GH_OK)
		goto out;
	for (;;) {
		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		token_from_row(st, &t);
		fn(&t, arg);
	}
out:
	gh_stmt_free(st);
	return err;
}

gh_err
gh_auth_api_token_revoke(struct gh_db *db, const char *token_id)
{
	gh_err err;

	if (db == NULL || token_id == NULL)
		return GH_ERR_INVALID;
	err = gh_db_run(db, "UPDATE api_tokens SET revoked_at = ? WHERE "
	    "id = ? AND revoked_at IS NULL", "it", gh_now_ms(), token_id);
	if (err != GH_OK) {
		GH_LOG_ERR(err, "api token %s: revoke failed", token_id);
		return err;
	}
	return gh_db_changes(db) == 0 ? GH_ERR_NOTFOUND : GH_OK;
}

gh_err
gh_auth_api_token_revoke_user(struct gh_db *db, const char *user_id,
    int64_t *count_out)
{
	int64_t now;
	gh_err err;

	if (count_out != NULL)
		*count_out = 0;
	if (db == NULL || user_id == NULL)
		return GH_ERR_INVALID;
	now = gh_now_ms();
	err = gh_db_run(db, "UPDATE api_tokens SET revoked_at = ? WHERE "
	    "user_id = ? AND revoked_at IS NULL AND expires_at > ?", "iti",
	    now, user_id, now);
	if (err != GH_OK) {
		GH_LOG_ERR(err, "user %s: revoking API tokens failed", user_id);
		return err;
	}
	if (count_out != NULL)
		*count_out = gh_db_changes(db);
	return GH_OK;
}
