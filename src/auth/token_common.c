/*
 * token_common.c: what sessions and API tokens share: making a random
 * token, digesting it for storage and lookup, comparing digests, and the
 * check that a user is active.
 *
 * Untrusted input: tokens presented by clients (their shape is checked
 * before they are hashed) and digests read from the database.
 *
 * Secrets: the raw random bytes of a new token, wiped at once. The token
 * itself is the caller's.
 */
#include "auth/auth_int.h"

#include <string.h>

gh_err
auth_token_new(char out[static GH_TOKEN_LEN + 1])
{
	uint8_t raw[32];
	gh_err err;

	err = gh_rand_bytes(raw, sizeof raw);
	if (err == GH_OK)
		gh_b64url_encode(raw, sizeof raw, out);
	gh_wipe(raw, sizeof raw);
	return err;
}

bool
auth_token_shape_ok(const char *s, size_t len)
{
	size_t i;

	if (s == NULL || strnlen(s, len + 1) != len)
		return false;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

void
auth_token_digest(const char *token, size_t len,
    char out[static GH_TOKEN_HASH_LEN + 1])
{
	uint8_t d[GH_SHA256_LEN];

	gh_sha256(token, len, d);
	gh_hex_encode(d, sizeof d, out);
	gh_wipe(d, sizeof d);
}

bool
auth_digest_eq(const char *stored,
    const char computed[static GH_TOKEN_HASH_LEN + 1])
{
	if (stored == NULL ||
	    strnlen(stored, GH_TOKEN_HASH_LEN + 1) != GH_TOKEN_HASH_LEN)
		return false;
	return gh_ct_eq(stored, computed, GH_TOKEN_HASH_LEN);
}

gh_err
auth_user_active(struct gh_db *db, const char *user_id)
{
	struct gh_stmt *st = NULL;
	const char *state;
	gh_err err;
	bool row;

	err = gh_db_prepare(db, "SELECT state FROM users WHERE id = ?", &st);
	if (err != GH_OK)
		goto out;
	err = gh_stmt_bind(st, "t", user_id);
	if (err != GH_OK)
		goto out;
	err = gh_stmt_step(st, &row);
	if (err != GH_OK)
		goto out;
	if (!row) {
		err = GH_ERR_NOTFOUND;
		goto out;
	}
	state = gh_stmt_text(st, 0);
	err = state != NULL && strcmp(state, "active") == 0 ? GH_OK :
	    GH_ERR_DENIED;
out:
	gh_stmt_free(st);
	return err;
}
