/*
 * mfa_device.c: remembered devices. A browser that completed a second
 * factor with "remember this device" gets a random token (the gh_device
 * cookie); the table mfa_devices keeps its SHA-256 digest, the user, when
 * it was made and expires, when it was last used, and where from.
 *
 * Untrusted input: the cookie token (shape checked, hashed, looked up by
 * digest and the digest compared again in constant time), the client's
 * IP and User-Agent (stored as text, the agent only when valid UTF-8).
 *
 * Secrets: the device token (made here, returned once, wiped from local
 * buffers) and its digest.
 *
 * Transactions: none of these functions BEGINs or COMMITs; the caller's
 * transaction covers a change and its audit event.
 */
#include "auth/auth_int.h"

#include <string.h>

#define DAY_MS 86400000LL

/* Copies a text column, "" for NULL. */
static void
col_text(struct gh_stmt *st, int col, char *out, size_t cap)
{
	const char *s = gh_stmt_text(st, col);

	gh_strlcpy(out, s != NULL ? s : "", cap);
}

gh_err
gh_auth_mfa_device_create(struct gh_db *db, const char *user_id, int days,
    const char *old_token, const char *ip, const char *user_agent,
    int64_t now_ms, char token_out[static GH_TOKEN_LEN + 1],
    struct gh_mfa_device *out)
{
	char token[GH_TOKEN_LEN + 1], digest[GH_TOKEN_HASH_LEN + 1];
	struct gh_mfa_device d;
	gh_err err;

	token_out[0] = '\0';
	memset(&d, 0, sizeof d);
	if (db == NULL || !gh_id_valid(user_id) || days < 1 ||
	    days > GH_MFA_REMEMBER_DAYS_MAX)
		return GH_ERR_INVALID;
	err = gh_id_new(d.id);
	if (err == GH_OK)
		err = auth_token_new(token);
	if (err != GH_OK)
		goto out;
	gh_strlcpy(d.user_id, user_id, sizeof d.user_id);
	d.created_at = now_ms;
	d.expires_at = now_ms + (int64_t)days * DAY_MS;
	gh_strlcpy(d.ip, ip != NULL ? ip : "", sizeof d.ip);
	gh_strlcpy(d.user_agent, user_agent != NULL ? user_agent : "",
	    sizeof d.user_agent);
	if (!gh_utf8_valid(d.user_agent, strlen(d.user_agent)))
		d.user_agent[0] = '\0';
	/* The browser's earlier row for this user goes: one per device. */
	if (auth_token_shape_ok(old_token, GH_TOKEN_LEN)) {
		auth_token_digest(old_token, GH_TOKEN_LEN, digest);
		err = gh_db_run(db, "DELETE FROM mfa_devices WHERE user_id = ? "
		    "AND token_hash = ?", "tt", user_id, digest);
	}
	auth_token_digest(token, GH_TOKEN_LEN, digest);
	if (err == GH_OK)
		err = gh_db_run(db, "INSERT INTO mfa_devices (id, user_id, "
		    "token_hash, created_at, expires_at, ip, user_agent) VALUES "
		    "(?, ?, ?, ?, ?, ?, ?)", "tttiitt", d.id, d.user_id, digest,
		    d.created_at, d.expires_at, d.ip, d.user_agent);
	if (err != GH_OK) {
		GH_LOG_ERR(err, "user %s: remembered device not stored",
		    user_id);
		goto out;
	}
	memcpy(token_out, token, sizeof token);
	if (out != NULL)
		*out = d;
out:
	gh_wipe(token, sizeof token);
	gh_wipe(digest, sizeof digest);
	return err;
}

gh_err
gh_auth_mfa_device_check(struct gh_db *db, const char *user_id,
    const char *token, int64_t max_age_s, int64_t now_ms,
    char id_out[static GH_ID_LEN + 1])
{
	char digest[GH_TOKEN_HASH_LEN + 1];
	struct gh_stmt *st = NULL;
	gh_err err;
	bool row;

	id_out[0] = '\0';
	if (max_age_s > (int64_t)GH_MFA_REMEMBER_DAYS_MAX * 86400)
		max_age_s = (int64_t)GH_MFA_REMEMBER_DAYS_MAX * 86400;
	if (db == NULL || !gh_id_valid(user_id) || max_age_s < 1 ||
	    !auth_token_shape_ok(token, GH_TOKEN_LEN))
		return GH_ERR_DENIED;
	auth_token_digest(token, GH_TOKEN_LEN, digest);
	/* The current policy bounds the age, whatever expires_at says:
	 * shortening the option shortens existing devices. */
	err = gh_db_prepare(db, "SELECT id, token_hash FROM mfa_devices WHERE "
	    "token_hash = ? AND user_id = ? AND revoked_at IS NULL AND "
	    "expires_at > ? AND created_at > ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "ttii", digest, user_id, now_ms,
		    now_ms - max_age_s * 1000);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && (!row || !auth_digest_eq(gh_stmt_text(st, 1),
	    digest)))
		err = GH_ERR_DENIED;
	if (err == GH_OK)
		col_text(st, 0, id_out, GH_ID_LEN + 1);
	gh_stmt_free(st);
	gh_wipe(digest, sizeof digest);
	if (err == GH_OK)
		err = gh_db_run(db, "UPDATE mfa_devices SET last_used_at = ? "
		    "WHERE id = ?", "it", now_ms, id_out);
	if (err != GH_OK)
		id_out[0] = '\0';
	return err;
}

gh_err
gh_auth_mfa_device_list(struct gh_db *db, const char *user_id, int64_t now_ms,
    void (*fn)(const struct gh_mfa_device *d, void *arg), void *arg)
{
	struct gh_mfa_device d;
	struct gh_stmt *st = NULL;
	gh_err err;
	bool row = true;

	if (db == NULL || !gh_id_valid(user_id) || fn == NULL)
		return GH_ERR_INVALID;
	err = gh_db_prepare(db, "SELECT id, user_id, created_at, expires_at, "
	    "last_used_at, ip, user_agent FROM mfa_devices WHERE user_id = ? "
	    "AND revoked_at IS NULL AND expires_at > ? ORDER BY created_at "
	    "DESC, id", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "ti", user_id, now_ms);
	while (err == GH_OK && (err = gh_stmt_step(st, &row)) == GH_OK &&
	    row) {
		memset(&d, 0, sizeof d);
		col_text(st, 0, d.id, sizeof d.id);
		col_text(st, 1, d.user_id, sizeof d.user_id);
		d.created_at = gh_stmt_int(st, 2);
		d.expires_at = gh_stmt_int(st, 3);
		d.last_used_at = gh_stmt_int(st, 4);
		col_text(st, 5, d.ip, sizeof d.ip);
		col_text(st, 6, d.user_agent, sizeof d.user_agent);
		fn(&d, arg);
	}
	gh_stmt_free(st);
	return err;
}

gh_err
gh_auth_mfa_device_revoke(struct gh_db *db, const char *user_id,
    const char *id, int64_t now_ms)
{
	gh_err err;

	if (db == NULL || !gh_id_valid(user_id) || !gh_id_valid(id))
		return GH_ERR_NOTFOUND;
	err = gh_db_run(db, "UPDATE mfa_devices SET revoked_at = ? WHERE id = ? "
	    "AND user_id = ? AND revoked_at IS NULL", "itt", now_ms, id,
	    user_id);
	if (err == GH_OK && gh_db_changes(db) != 1)
		err = GH_ERR_NOTFOUND;
	return err;
}

gh_err
gh_auth_mfa_device_revoke_user(struct gh_db *db, const char *user_id,
    int64_t now_ms, int64_t *count_out)
{
	gh_err err;

	if (count_out != NULL)
		*count_out = 0;
	if (db == NULL || !gh_id_valid(user_id))
		return GH_ERR_INVALID;
	err = gh_db_run(db, "UPDATE mfa_devices SET revoked_at = ? WHERE "
	    "user_id = ? AND revoked_at IS NULL", "it", now_ms, user_id);
	if (err == GH_OK && count_out != NULL)
		*count_out = gh_db_changes(db);
	return err;
}

gh_err
gh_auth_mfa_device_revoke_all(struct gh_db *db, int64_t now_ms,
    int64_t *count_out)
{
	gh_err err;

	if (count_out != NULL)
		*count_out = 0;
	if (db == NULL)
		return GH_ERR_INVALID;
	err = gh_db_run(db, "UPDATE mfa_devices SET revoked_at = ? WHERE "
	    "revoked_at IS NULL", "i", now_ms);
	if (err == GH_OK && count_out != NULL)
		*count_out = gh_db_changes(db);
	return err;
}
