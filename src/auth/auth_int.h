/*
 * auth_int.h: private to src/auth and its tests. Helpers shared by the
 * session and API-token code: making a random token and digesting one.
 */
#ifndef GH_AUTH_INT_H
#define GH_AUTH_INT_H

#include "auth/auth.h"

/* At most one write of sessions.last_seen_at per this many milliseconds. */
#define AUTH_SESSION_TOUCH_MS (60 * 1000)

/* Writes 32 random bytes as base64url (GH_TOKEN_LEN chars + NUL) to out.
 * The raw bytes are wiped before returning. */
gh_err auth_token_new(char out[static GH_TOKEN_LEN + 1]) GH_MUST_CHECK;

/* True if s is exactly len chars of the base64url alphabet (s may be NULL). */
bool auth_token_shape_ok(const char *s, size_t len);

/* Writes hex(SHA-256(token)) (GH_TOKEN_HASH_LEN chars + NUL) to out. */
void auth_token_digest(const char *token, size_t len,
    char out[static GH_TOKEN_HASH_LEN + 1]);

/* Constant-time comparison of a stored digest (which may be NULL or of the
 * wrong length, from the database) with a computed one. */
bool auth_digest_eq(const char *stored,
    const char computed[static GH_TOKEN_HASH_LEN + 1]);

/* GH_OK if user_id names an active user, GH_ERR_NOTFOUND if there is no
 * such user, GH_ERR_DENIED if the user is disabled. */
gh_err auth_user_active(struct gh_db *db, const char *user_id) GH_MUST_CHECK;

/* How many argon2id computations this process has run (hashes and
 * verifications, dummy ones included). For tests. */
unsigned long auth_argon2_runs(void);
/* The most hash lanes that ever ran at once in this process, and the
 * gate's capacity (the online cores). For tests. */
unsigned auth_hash_peak(void);
unsigned auth_hash_cap(void);

#endif
