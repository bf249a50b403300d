/*
 * token.c: SCIM bearer tokens. A token is "ghs_" followed by 32 random
 * bytes in base64url; the row in scim_tokens holds hex(SHA-256) of the
 * whole token string. The token goes to the admin once and is never
 * stored or logged.
 *
 * Untrusted input: tokens presented by provisioning clients (shape
 * checked, hashed, then the digests compared in constant time). Secrets:
 * the token while it is made (wiped). The caller owns the transaction.
 */
#include "scim/scim.h"

#include <string.h>

#define DIGEST_LEN (2 * GH_SHA256_LEN)
#define COLUMNS "id, token_hash, name, created_by, created_at, expires_at, " \
	"last_used_at"

static void
digest(const char *token, char out[static DIGEST_LEN + 1])
{
	uint8_t md[GH_SHA256_LEN];

	gh_sha256(token, strlen(token), md);
	gh_hex_encode(md, sizeof md, out);
	gh_wipe(md, sizeof md);
}

static void
from_row(struct gh_stmt *st, struct gh_scim_token *t)
{
	const char *s;

	memset(t, 0, sizeof *t);
	gh_strlcpy(t->id, (s = gh_stmt_text(st, 0)) ? s : "", sizeof t->id);
	gh_strlcpy(t->name, (s = gh_stmt_text(st, 2)) ? s : "",
	    sizeof t->name);
	gh_strlcpy(t->created_by, (s = gh_stmt_text(st, 3)) ? s : "",
	    sizeof t->created_by);
	t->created_at = gh_stmt_int(st, 4);
	t->expires_at = gh_stmt_int(st, 5);
	t->last_used_at = gh_stmt_is_null(st, 6) ? 0 : gh_stmt_int(st, 6);
}

gh_err
gh_scim_token_create(struct gh_db *db, const char *name,
    const char *created_by, int64_t expires_at,
    char token_out[static GH_SCIM_TOKEN_LEN + 1], struct gh_scim_token *out)
{
	char token[GH_SCIM_TOKEN_LEN + 1], hash[DIGEST_LEN + 1];
	uint8_t raw[32];
	struct gh_scim_token t;
	size_t n;
	gh_err err;

	token_out[0] = '\0';
	memset(&t, 0, sizeof t);
	t.created_at = gh_now_ms();
	n = name ? strnlen(name, GH_SCIM_TOKEN_NAME_MAX + 1) : 0;
	if (n == 0 || n > GH_SCIM_TOKEN_NAME_MAX ||
	    !gh_utf8_valid(name, n) || expires_at <= t.created_at ||
	    (created_by != NULL && !gh_id_valid(created_by)))
		return GH_ERR_INVALID;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return GH_ERR_INVALID;
	if ((err = gh_id_new(t.id)) != GH_OK ||
	    (err = gh_rand_bytes(raw, sizeof raw)) != GH_OK)
		goto out;
	memcpy(token, GH_SCIM_TOKEN_PREFIX, 4);
	gh_b64url_encode(raw, sizeof raw, token + 4);
	digest(token, hash);
	gh_strlcpy(t.name, name, sizeof t.name);
	gh_strlcpy(t.created_by, created_by ? created_by : "",
	    sizeof t.created_by);
	t.expires_at = expires_at;
	err = gh_db_run(db, "INSERT INTO scim_tokens (id, token_hash, name, "
	    "created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
	    "ttttii", t.id, hash, t.name, created_by, t.created_at,
	    t.expires_at);
	if (err != GH_OK) {
		GH_LOG_ERR(err, "scim token %s: insert failed", t.id);
		goto out;
	}
	memcpy(token_out, token, sizeof token);
	if (out != NULL)
		*out = t;
out:
	gh_wipe(raw, sizeof raw);
	gh_wipe(token, sizeof token);
	gh_wipe(hash, sizeof hash);
	return err;
}

gh_err
gh_scim_token_check(struct gh_db *db, const char *token,
    struct gh_scim_token *out)
{
	char hash[DIGEST_LEN + 1];
	struct gh_stmt *st = NULL;
	const char *stored;
	bool row = false, ok = false;
	gh_err err;

	memset(out, 0, sizeof *out);
	if (token == NULL || strnlen(token, GH_SCIM_TOKEN_LEN + 1) !=
	    GH_SCIM_TOKEN_LEN || strncmp(token, GH_SCIM_TOKEN_PREFIX, 4) != 0)
		return GH_ERR_DENIED;
	digest(token, hash);
	err = gh_db_prepare(db, "SELECT " COLUMNS " FROM scim_tokens WHERE "
	    "token_hash = ? AND revoked_at IS NULL AND expires_at > ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "ti", hash, gh_now_ms());
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && row) {
		/* The index found it; the digests still compare in constant
		 * time, at their fixed length. */
		stored = gh_stmt_text(st, 1);
		ok = stored != NULL && strlen(stored) == DIGEST_LEN &&
		    gh_ct_eq(stored, hash, DIGEST_LEN);
		if (ok)
			from_row(st, out);
	}
	gh_stmt_free(st);
	gh_wipe(hash, sizeof hash);
	if (err != GH_OK)
		return err;
	if (!ok)
		return GH_ERR_DENIED;
	out->last_used_at = gh_now_ms();
	return gh_db_run(db, "UPDATE scim_tokens SET last_used_at = ? WHERE "
	    "id = ?", "it", out->last_used_at, out->id);
}

gh_err
gh_scim_token_list(struct gh_db *db,
    void (*fn)(const struct gh_scim_token *t, void *arg), void *arg)
{
	struct gh_scim_token t;
	struct gh_stmt *st = NULL;
	bool row;
	gh_err err;

	err = gh_db_prepare(db, "SELECT " COLUMNS " FROM scim_tokens WHERE "
	    "revoked_at IS NULL AND expires_at > ? ORDER BY created_at, id",
	    &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "i", gh_now_ms());
	while (err == GH_OK && (err = gh_stmt_step(st, &row)) == GH_OK && row) {
		from_row(st, &t);
		fn(&t, arg);
	}
	gh_stmt_free(st);
	return err;
}

gh_err
gh_scim_token_revoke(struct gh_db *db, const char *id, char name_out[static
    GH_SCIM_TOKEN_NAME_MAX + 1])
{
	struct gh_stmt *st = NULL;
	bool row = false;
	const char *s;
	gh_err err;

	name_out[0] = '\0';
	if (id == NULL || !gh_id_valid(id))
		return GH_ERR_NOTFOUND;
	err = gh_db_prepare(db, "SELECT name FROM scim_tokens WHERE id = ? AND "
	    "revoked_at IS NULL", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", id);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && row)
		gh_strlcpy(name_out, (s = gh_stmt_text(st, 0)) ? s : "",
		    GH_SCIM_TOKEN_NAME_MAX + 1);
	gh_stmt_free(st);
	if (err == GH_OK && !row)
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK)
		err = gh_db_run(db, "UPDATE scim_tokens SET revoked_at = ? "
		    "WHERE id = ?", "it", gh_now_ms(), id);
	return err;
}
