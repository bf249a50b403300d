/*
 * webauthn_store.c: the tenant-database side of WebAuthn: single-use,
 * short-lived ceremony challenges, the per-user handle, and the stored
 * credentials (add, find, list, rename, delete, the signature counter).
 *
 * Untrusted input: credential ids and challenges decoded from browser
 * responses (bounded by the caller, bound as parameters), names typed by
 * users (checked by gh_auth_webauthn_name_ok), row ids from paths.
 *
 * Secrets: challenges are not secret but must not be replayable; only
 * their SHA-256 digest is stored, so a database read cannot reuse one.
 * Public keys and credential ids are public.
 *
 * Transactions: none of these functions BEGINs or COMMITs.
 */
#include "auth/auth.h"
#include "auth/webauthn.h"

#include <stdlib.h>
#include <string.h>

static const char *
purpose_str(enum gh_wa_purpose p)
{
	return p == GH_WA_PURPOSE_REGISTER ? "register" : "authenticate";
}

static void
challenge_digest(const uint8_t *c, size_t n,
    char out[static 2 * GH_SHA256_LEN + 1])
{
	uint8_t d[GH_SHA256_LEN];

	gh_sha256(c, n, d);
	gh_hex_encode(d, sizeof d, out);
}

gh_err
gh_auth_webauthn_challenge_issue(struct gh_db *db, enum gh_wa_purpose purpose,
    const char *user_id, int64_t now_ms,
    uint8_t out[static GH_WA_CHALLENGE_LEN])
{
	char id[GH_ID_LEN + 1], digest[2 * GH_SHA256_LEN + 1];
	gh_err err;

	memset(out, 0, GH_WA_CHALLENGE_LEN);
	if (db == NULL || (user_id != NULL && !gh_id_valid(user_id)))
		return GH_ERR_INVALID;
	err = gh_id_new(id);
	if (err == GH_OK)
		err = gh_rand_bytes(out, GH_WA_CHALLENGE_LEN);
	if (err != GH_OK)
		return err;
	challenge_digest(out, GH_WA_CHALLENGE_LEN, digest);
	/* Old rows go when a new one comes, so the table stays small. */
	err = gh_db_run(db, "DELETE FROM webauthn_challenges WHERE "
	    "expires_at <= ?", "i", now_ms);
	if (err == GH_OK)
		err = gh_db_run(db, "INSERT INTO webauthn_challenges (id, "
		    "challenge_hash, purpose, user_id, created_at, expires_at, "
		    "used) VALUES (?, ?, ?, ?, ?, ?, 0)", "ttttii", id, digest,
		    purpose_str(purpose), user_id, now_ms,
		    now_ms + GH_WA_CHALLENGE_TTL_MS);
	if (err != GH_OK) {
		GH_LOG_ERR(err, "webauthn challenge not stored");
		memset(out, 0, GH_WA_CHALLENGE_LEN);
	}
	return err;
}

gh_err
gh_auth_webauthn_challenge_consume(struct gh_db *db,
    enum gh_wa_purpose purpose, const char *user_id,
    const uint8_t *challenge, size_t challenge_len, int64_t now_ms)
{
	char digest[2 * GH_SHA256_LEN + 1];
	gh_err err;

	if (db == NULL || challenge == NULL ||
	    challenge_len != GH_WA_CHALLENGE_LEN)
		return GH_ERR_DENIED;
	challenge_digest(challenge, challenge_len, digest);
	/* One UPDATE decides: two racing uses cannot both change the row. */
	if (user_id != NULL)
		err = gh_db_run(db, "UPDATE webauthn_challenges SET used = 1 "
		    "WHERE challenge_hash = ? AND purpose = ? AND used = 0 AND "
		    "expires_at > ? AND user_id = ?", "ttit", digest,
		    purpose_str(purpose), now_ms, user_id);
	else
		err = gh_db_run(db, "UPDATE webauthn_challenges SET used = 1 "
		    "WHERE challenge_hash = ? AND purpose = ? AND used = 0 AND "
		    "expires_at > ? AND user_id IS NULL", "tti", digest,
		    purpose_str(purpose), now_ms);
	if (err == GH_OK && gh_db_changes(db) != 1)
		err = GH_ERR_DENIED;
	return err;
}

gh_err
gh_auth_webauthn_handle_get(struct gh_db *db, const char *user_id,
    bool create, uint8_t out[static GH_WA_HANDLE_LEN])
{
	char b64[GH_WA_HANDLE_LEN * 2];
	struct gh_stmt *st = NULL;
	size_t n = 0;
	bool row = false;
	gh_err err;

	memset(out, 0, GH_WA_HANDLE_LEN);
	if (db == NULL || !gh_id_valid(user_id))
		return GH_ERR_INVALID;
	err = gh_db_prepare(db, "SELECT handle FROM webauthn_user_handles "
	    "WHERE user_id = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", user_id);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && row) {
		const char *h = gh_stmt_text(st, 0);

		err = h == NULL ? GH_ERR_STORE : gh_b64url_decode(h, strlen(h),
		    out, GH_WA_HANDLE_LEN, &n);
		if (err == GH_OK && n != GH_WA_HANDLE_LEN)
			err = GH_ERR_STORE;
	}
	gh_stmt_free(st);
	if (err != GH_OK || row)
		return err;
	if (!create)
		return GH_ERR_NOTFOUND;
	err = gh_rand_bytes(out, GH_WA_HANDLE_LEN);
	if (err != GH_OK)
		return err;
	gh_b64url_encode(out, GH_WA_HANDLE_LEN, b64);
	err = gh_db_run(db, "INSERT INTO webauthn_user_handles (user_id, "
	    "handle) VALUES (?, ?)", "tt", user_id, b64);
	if (err != GH_OK)
		memset(out, 0, GH_WA_HANDLE_LEN);
	return err;
}

bool
gh_auth_webauthn_name_ok(const char *name)
{
	size_t n;

	if (name == NULL)
		return false;
	n = strlen(name);
	if (n == 0 || n > GH_WA_NAME_MAX || !gh_utf8_valid(name, n))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return false;
	return true;
}

#define CRED_COLS "id, user_id, credential_id, name, alg, public_key, " \
	"sign_count, uv, backup_eligible, backup_state, aaguid, created_at, " \
	"last_used_at, regressions"

static gh_err
cred_read(struct gh_stmt *st, struct gh_wa_cred_row *c)
{
	const void *pk;
	size_t pk_len = 0;

	memset(c, 0, sizeof *c);
	if (gh_stmt_text(st, 0) == NULL || gh_stmt_text(st, 1) == NULL ||
	    gh_stmt_text(st, 2) == NULL || gh_stmt_text(st, 3) == NULL ||
	    gh_stmt_text(st, 10) == NULL)
		return GH_ERR_STORE;
	pk = gh_stmt_blob(st, 5, &pk_len);
	if (pk == NULL || pk_len == 0 || pk_len > sizeof c->pubkey)
		return GH_ERR_STORE;
	gh_strlcpy(c->id, gh_stmt_text(st, 0), sizeof c->id);
	gh_strlcpy(c->user_id, gh_stmt_text(st, 1), sizeof c->user_id);
	gh_strlcpy(c->cred_id, gh_stmt_text(st, 2), sizeof c->cred_id);
	gh_strlcpy(c->name, gh_stmt_text(st, 3), sizeof c->name);
	c->alg = (int)gh_stmt_int(st, 4);
	memcpy(c->pubkey, pk, pk_len);
	c->pubkey_len = pk_len;
	c->sign_count = (uint32_t)gh_stmt_int(st, 6);
	c->uv = gh_stmt_int(st, 7) != 0;
	c->backup_eligible = gh_stmt_int(st, 8) != 0;
	c->backup_state = gh_stmt_int(st, 9) != 0;
	gh_strlcpy(c->aaguid, gh_stmt_text(st, 10), sizeof c->aaguid);
	c->created_at = gh_stmt_int(st, 11);
	c->last_used_at = gh_stmt_is_null(st, 12) ? 0 : gh_stmt_int(st, 12);
	c->regressions = gh_stmt_int(st, 13);
	return GH_OK;
}

gh_err
gh_auth_webauthn_cred_add(struct gh_db *db, const char *user_id,
    const char *name, const struct gh_wa_credential *cred, int64_t now_ms,
    struct gh_wa_cred_row *out)
{
	struct gh_wa_cred_row c;
	gh_err err;

	memset(out, 0, sizeof *out);
	memset(&c, 0, sizeof c);
	if (db == NULL || !gh_id_valid(user_id) ||
	    !gh_auth_webauthn_name_ok(name) || cred == NULL ||
	    cred->id_len == 0 || cred->id_len > GH_WA_CRED_ID_MAX ||
	    cred->pubkey_len == 0 || cred->pubkey_len > GH_WA_PUBKEY_MAX)
		return GH_ERR_INVALID;
	err = gh_id_new(c.id);
	if (err != GH_OK)
		return err;
	gh_strlcpy(c.user_id, user_id, sizeof c.user_id);
	gh_b64url_encode(cred->id, cred->id_len, c.cred_id);
	gh_strlcpy(c.name, name, sizeof c.name);
	c.alg = cred->alg;
	memcpy(c.pubkey, cred->pubkey, cred->pubkey_len);
	c.pubkey_len = cred->pubkey_len;
	c.sign_count = cred->sign_count;
	c.uv = cred->uv;
	c.backup_eligible = cred->backup_eligible;
	c.backup_state = cred->backup_state;
	gh_hex_encode(cred->aaguid, GH_WA_AAGUID_LEN, c.aaguid);
	c.created_at = now_ms;
	err = gh_db_run(db, "INSERT INTO webauthn_credentials (" CRED_COLS
	    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 0)",
	    "ttttibiiiiti", c.id, c.user_id, c.cred_id, c.name,
	    (int64_t)c.alg, c.pubkey, c.pubkey_len, (int64_t)c.sign_count,
	    (int64_t)c.uv, (int64_t)c.backup_eligible,
	    (int64_t)c.backup_state, c.aaguid, c.created_at);
	if (err == GH_OK)
		*out = c;
	return err;
}

gh_err
gh_auth_webauthn_cred_find(struct gh_db *db, const uint8_t *cred_id,
    size_t cred_id_len, struct gh_wa_cred_row *out)
{
	char *b64;
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	memset(out, 0, sizeof *out);
	if (db == NULL || cred_id == NULL || cred_id_len == 0 ||
	    cred_id_len > GH_WA_CRED_ID_MAX)
		return GH_ERR_NOTFOUND;
	b64 = malloc(gh_b64url_len(cred_id_len) + 1);
	if (b64 == NULL)
		return GH_ERR_NOMEM;
	gh_b64url_encode(cred_id, cred_id_len, b64);
	err = gh_db_prepare(db, "SELECT " CRED_COLS " FROM "
	    "webauthn_credentials WHERE credential_id = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", b64);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && !row)
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK)
		err = cred_read(st, out);
	gh_stmt_free(st);
	free(b64);
	return err;
}

gh_err
gh_auth_webauthn_cred_list(struct gh_db *db, const char *user_id,
    void (*fn)(const struct gh_wa_cred_row *c, void *arg), void *arg)
{
	struct gh_wa_cred_row *c;
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	c = malloc(sizeof *c);
	if (c == NULL)
		return GH_ERR_NOMEM;
	err = gh_db_prepare(db, "SELECT " CRED_COLS " FROM "
	    "webauthn_credentials WHERE user_id = ? ORDER BY created_at, id",
	    &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", user_id);
	while (err == GH_OK && (err = gh_stmt_step(st, &row)) == GH_OK &&
	    row) {
		err = cred_read(st, c);
		if (err == GH_OK)
			fn(c, arg);
	}
	gh_stmt_free(st);
	free(c);
	return err;
}

gh_err
gh_auth_webauthn_cred_count(struct gh_db *db, const char *user_id,
    int64_t *count_out)
{
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	*count_out = 0;
	err = gh_db_prepare(db, "SELECT COUNT(*) FROM webauthn_credentials "
	    "WHERE user_id = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", user_id);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && row)
		*count_out = gh_stmt_int(st, 0);
	gh_stmt_free(st);
	return err;
}

gh_err
gh_auth_webauthn_cred_rename(struct gh_db *db, const char *user_id,
    const char *id, const char *name)
{
	gh_err err;

	if (!gh_auth_webauthn_name_ok(name))
		return GH_ERR_INVALID;
	if (!gh_id_valid(id))
		return GH_ERR_NOTFOUND;
	err = gh_db_run(db, "UPDATE webauthn_credentials SET name = ? WHERE "
	    "id = ? AND user_id = ?", "ttt", name, id, user_id);
	if (err == GH_OK && gh_db_changes(db) != 1)
		err = GH_ERR_NOTFOUND;
	return err;
}

gh_err
gh_auth_webauthn_cred_delete(struct gh_db *db, const char *user_id,
    const char *id)
{
	gh_err err;

	if (!gh_id_valid(id))
		return GH_ERR_NOTFOUND;
	err = gh_db_run(db, "DELETE FROM webauthn_credentials WHERE id = ? "
	    "AND user_id = ?", "tt", id, user_id);
	if (err == GH_OK && gh_db_changes(db) != 1)
		err = GH_ERR_NOTFOUND;
	return err;
}

gh_err
gh_auth_webauthn_cred_used(struct gh_db *db, const char *id,
    const struct gh_wa_assert_result *res, int64_t now_ms)
{
	gh_err err;

	/* The counter moves only forward (or stays 0 for authenticators
	 * that keep none): a use that raced past this one leaves no row to
	 * change, and this one is the regression. */
	err = gh_db_run(db, "UPDATE webauthn_credentials SET sign_count = ?, "
	    "backup_state = ?, last_used_at = ? WHERE id = ? AND "
	    "(sign_count < ? OR (sign_count = 0 AND ? = 0))", "iiitii",
	    (int64_t)res->sign_count, (int64_t)res->backup_state, now_ms, id,
	    (int64_t)res->sign_count, (int64_t)res->sign_count);
	if (err == GH_OK && gh_db_changes(db) != 1)
		err = GH_ERR_DENIED;
	return err;
}

gh_err
gh_auth_webauthn_cred_regression(struct gh_db *db, const char *id)
{
	return gh_db_run(db, "UPDATE webauthn_credentials SET regressions = "
	    "regressions + 1 WHERE id = ?", "t", id);
}
