/*
 * session.c: browser sessions. A session is a row in the tenant's sessions
 * table keyed by hex(SHA-256(token)); the token itself (32 random bytes,
 * base64url) goes to the client once, in a cookie, and is never stored or
 * logged.
 *
 * Untrusted input: the token and the CSRF token presented by clients (shape
 * checked, then hashed and compared in constant time), the source address
 * and user agent (truncated and made printable before they are stored).
 *
 * Transactions: none of these functions BEGINs or COMMITs. The caller's
 * transaction covers them, so that a change and its audit event commit
 * together; outside one, each statement commits on its own.
 */
#include "auth/auth_int.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define SESSION_COLUMNS \
	"s.id, s.token_hash, s.user_id, s.created_at, s.last_seen_at, " \
	"s.expires_at, s.source_ip, s.user_agent, s.mfa_at"
#define SESSION_NCOLS 9

/* The conditions of a live session: not revoked, its user active, before
 * its stored expiry, within its own idle timeout (stored when it was made:
 * a security policy may have shortened it) and within the caller's
 * absolute and idle limits. Takes (now, now, now, absolute_ms, now,
 * idle_ms) after whatever precedes it. */
#define SESSION_LIVE \
	"s.revoked_at IS NULL AND u.state = 'active' AND s.expires_at > ? " \
	"AND (s.idle_ms IS NULL OR s.last_seen_at + s.idle_ms > ?) " \
	"AND s.created_at > ? - ? AND s.last_seen_at > ? - ?"

static bool
limits_ok(const struct gh_session_limits *lim)
{
	return lim != NULL && lim->absolute_ms > 0 && lim->idle_ms > 0;
}

/*
 * Copies a client-supplied header into dst (cap bytes), cut at a character
 * boundary, with control characters and anything that is not UTF-8 turned
 * into '?', so that what is stored and shown later is plain text.
 */
static void
printable_copy(char *dst, size_t cap, const char *src)
{
	size_t n, i;

	if (src == NULL)
		src = "";
	n = strnlen(src, cap - 1);
	while (n > 0 && src[n] != '\0' &&
	    ((unsigned char)src[n] & 0xc0) == 0x80)
		n--;
	memcpy(dst, src, n);
	dst[n] = '\0';
	for (i = 0; i < n; i++)
		if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7f)
			dst[i] = '?';
	if (!gh_utf8_valid(dst, n))
		for (i = 0; i < n; i++)
			if ((unsigned char)dst[i] >= 0x80)
				dst[i] = '?';
}

/* Reads the columns of SESSION_COLUMNS from the current row; col 1, the
 * digest, is the caller's business. */
static void
session_from_row(struct gh_stmt *st, struct gh_session *s)
{
	memset(s, 0, sizeof *s);
	gh_strlcpy(s->id, gh_stmt_text(st, 0) ? gh_stmt_text(st, 0) : "",
	    sizeof s->id);
	gh_strlcpy(s->user_id, gh_stmt_text(st, 2) ? gh_stmt_text(st, 2) : "",
	    sizeof s->user_id);
	s->created_at = gh_stmt_int(st, 3);
	s->last_seen_at = gh_stmt_int(st, 4);
	s->expires_at = gh_stmt_int(st, 5);
	gh_strlcpy(s->source_ip, gh_stmt_text(st, 6) ? gh_stmt_text(st, 6) :
	    "", sizeof s->source_ip);
	gh_strlcpy(s->user_agent, gh_stmt_text(st, 7) ? gh_stmt_text(st, 7) :
	    "", sizeof s->user_agent);
	s->mfa_at = gh_stmt_int(st, 8);
}

gh_err
gh_auth_session_create(struct gh_db *db, const char *user_id,
    const struct gh_session_limits *lim, const char *source_ip,
    const char *user_agent, char token_out[static GH_TOKEN_LEN + 1],
    struct gh_session *out)
{
	char token[GH_TOKEN_LEN + 1], digest[GH_TOKEN_HASH_LEN + 1];
	struct gh_session s;
	gh_err err;

	token_out[0] = '\0';
	memset(&s, 0, sizeof s);
	if (db == NULL || user_id == NULL || !gh_id_valid(user_id) ||
	    !limits_ok(lim)) {
		err = GH_ERR_INVALID;
		goto out;
	}
	err = auth_user_active(db, user_id);
	if (err != GH_OK)
		goto out;
	err = gh_id_new(s.id);
	if (err != GH_OK)
		goto out;
	err = auth_token_new(token);
	if (err != GH_OK)
		goto out;
	auth_token_digest(token, GH_TOKEN_LEN, digest);
	gh_strlcpy(s.user_id, user_id, sizeof s.user_id);
	s.created_at = gh_now_ms();
	s.last_seen_at = s.created_at;
	s.expires_at = s.created_at + lim->absolute_ms;
	printable_copy(s.source_ip, sizeof s.source_ip, source_ip);
	printable_copy(s.user_agent, sizeof s.user_agent, user_agent);
	err = gh_db_run(db, "INSERT INTO sessions (id, token_hash, user_id, "
	    "created_at, last_seen_at, expires_at, source_ip, user_agent, "
	    "idle_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", "tttiiitti", s.id,
	    digest, s.user_id, s.created_at, s.last_seen_at, s.expires_at,
	    s.source_ip, s.user_agent, lim->idle_ms);
	if (err != GH_OK) {
		GH_LOG_ERR(err, "user %s: session insert failed", user_id);
		goto out;
	}
	memcpy(token_out, token, sizeof token);
	if (out != NULL)
		*out = s;
out:
	gh_wipe(token, sizeof token);
	gh_wipe(digest, sizeof digest);
	return err;
}

gh_err
gh_auth_session_check(struct gh_db *db, const char *token,
    const struct gh_session_limits *lim, struct gh_session *out)
{
	return gh_auth_session_check_with(db, token, lim, out, NULL, NULL,
	    NULL, 0);
}

/* The SELECT of a session check, with extra columns or without: the
 * session's columns, its own idle timeout (-1: none), then the extra. */
#define SESSION_CHECK_IDLE ", ifnull(s.idle_ms, -1)"
#define SESSION_CHECK_FROM " FROM sessions s JOIN users u ON u.id = " \
	"s.user_id WHERE s.token_hash = ? AND " SESSION_LIVE
#define SESSION_CHECK_SQL_MAX 1024
#define SESSION_EXTRA_MAX 1024	/* arg bytes a memo entry holds */

/* One remembered live check (gh_auth_session_check_with). */
struct memo_entry {
	bool used;
	char digest[GH_TOKEN_HASH_LEN + 1];
	const char *extra_cols;		/* a constant: compared by address */
	struct gh_session_limits lim;
	int64_t idle_ms;		/* the session's own; -1: none */
	struct gh_session s;
	size_t arg_size;
	unsigned char arg[SESSION_EXTRA_MAX];
};

struct session_memo {
	struct gh_db_version ver;	/* the entries hold at this version */
	unsigned next;			/* the entry replaced next */
	struct memo_entry e[GH_AUTH_SESSION_MEMO_N];
};

/* SESSION_LIVE's time conditions, for a row that SESSION_LIVE passed
 * when the data was as it still is. */
static bool
memo_live(const struct memo_entry *m, const struct gh_session_limits *lim,
    int64_t now)
{
	return m->s.expires_at > now &&
	    (m->idle_ms < 0 || m->s.last_seen_at + m->idle_ms > now) &&
	    m->s.created_at > now - lim->absolute_ms &&
	    m->s.last_seen_at > now - lim->idle_ms;
}

/* Empties an entry: wipes the bytes it holds (not the unused tail of
 * arg: a full wipe per entry showed after every commit). */
static void
memo_clear(struct memo_entry *e)
{
	if (e->used)
		gh_wipe(e, offsetof(struct memo_entry, arg) + e->arg_size);
}

/* The memo of db when it holds at version v (emptied when it does not),
 * or NULL. */
static struct session_memo *
memo_at(struct gh_db *db, const struct gh_db_version *v)
{
	struct session_memo *m = gh_db_memo(db, sizeof *m);

	if (m == NULL)
		return NULL;
	if (m->ver.others != v->others || m->ver.own != v->own) {
		for (int i = 0; i < GH_AUTH_SESSION_MEMO_N; i++)
			memo_clear(&m->e[i]);
		m->ver = *v;
	}
	return m;
}

static struct memo_entry *
memo_find(struct session_memo *m, const char *digest, const char *extra_cols,
    const struct gh_session_limits *lim, size_t arg_size)
{
	for (int i = 0; i < GH_AUTH_SESSION_MEMO_N; i++) {
		struct memo_entry *e = &m->e[i];

		if (e->used && e->extra_cols == extra_cols &&
		    e->arg_size == arg_size &&
		    e->lim.absolute_ms == lim->absolute_ms &&
		    e->lim.idle_ms == lim->idle_ms &&
		    auth_digest_eq(e->digest, digest))
			return e;
	}
	return NULL;
}

static void
memo_put(struct session_memo *m, const char *digest, const char *extra_cols,
    const struct gh_session_limits *lim, int64_t idle_ms,
    const struct gh_session *s, const void *arg, size_t arg_size)
{
	struct memo_entry *e;

	if (arg_size > sizeof e->arg)
		return;
	e = &m->e[m->next++ % GH_AUTH_SESSION_MEMO_N];
	memo_clear(e);
	e->used = true;
	memcpy(e->digest, digest, sizeof e->digest);
	e->extra_cols = extra_cols;
	e->lim = *lim;
	e->idle_ms = idle_ms;
	e->s = *s;
	e->arg_size = arg_size;
	if (arg_size > 0)
		memcpy(e->arg, arg, arg_size);
}

gh_err
gh_auth_session_check_with(struct gh_db *db, const char *token,
    const struct gh_session_limits *lim, struct gh_session *out,
    const char *extra_cols,
    void (*read_extra)(struct gh_stmt *st, int first, void *arg), void *arg,
    size_t arg_size)
{
	char digest[GH_TOKEN_HASH_LEN + 1], sql[SESSION_CHECK_SQL_MAX];
	const char *q = "SELECT " SESSION_COLUMNS SESSION_CHECK_IDLE
	    SESSION_CHECK_FROM;
	struct session_memo *memo = NULL;
	struct memo_entry *hit;
	struct gh_db_version ver;
	struct gh_stmt *st = NULL;
	struct gh_session s;
	int64_t now, idle_ms;
	gh_err err;
	bool row;

	if (db == NULL || !limits_ok(lim) ||
	    (extra_cols != NULL) != (read_extra != NULL))
		return GH_ERR_INVALID;
	/* A token of the wrong shape cannot be ours: no need to hash it. */
	if (!auth_token_shape_ok(token, GH_TOKEN_LEN))
		return GH_ERR_DENIED;
	auth_token_digest(token, GH_TOKEN_LEN, digest);
	now = gh_now_ms();
	/* The version is read before the statement: a commit in between
	 * only makes the next check read again. */
	if (gh_db_version(db, &ver))
		memo = memo_at(db, &ver);
	hit = memo != NULL ? memo_find(memo, digest, extra_cols, lim,
	    arg_size) : NULL;
	/* Not when a refresh of last_seen_at is due: that writes. */
	if (hit != NULL && memo_live(hit, lim, now) &&
	    now - hit->s.last_seen_at < AUTH_SESSION_TOUCH_MS) {
		if (arg_size > 0)
			memcpy(arg, hit->arg, arg_size);
		if (out != NULL)
			*out = hit->s;
		err = GH_OK;
		goto out;
	}
	if (extra_cols != NULL) {
		/* Pasted without snprintf: this runs on every request. */
		static const char head[] = "SELECT " SESSION_COLUMNS
		    SESSION_CHECK_IDLE ", ";
		static const char tail[] = SESSION_CHECK_FROM;
		size_t n = strlen(extra_cols);

		if (n > sizeof sql - sizeof head - sizeof tail)
			GH_PANIC("session check: extra columns too long");
		memcpy(sql, head, sizeof head - 1);
		memcpy(sql + sizeof head - 1, extra_cols, n);
		memcpy(sql + sizeof head - 1 + n, tail, sizeof tail);
		q = sql;
	}
	err = gh_db_prepare(db, q, &st);
	if (err != GH_OK)
		goto out;
	err = gh_stmt_bind(st, "tiiiiii", digest, now, now, now,
	    lim->absolute_ms, now, lim->idle_ms);
	if (err != GH_OK)
		goto out;
	err = gh_stmt_step(st, &row);
	if (err != GH_OK)
		goto out;
	/* The SQL equality found the row; the constant-time comparison is
	 * the one that decides. */
	if (!row || !auth_digest_eq(gh_stmt_text(st, 1), digest)) {
		err = GH_ERR_DENIED;
		goto out;
	}
	session_from_row(st, &s);
	idle_ms = gh_stmt_int(st, SESSION_NCOLS);
	if (read_extra != NULL)
		read_extra(st, SESSION_NCOLS + 1, arg);
	gh_stmt_free(st);
	st = NULL;
	/* Refreshed at most once a minute (AUTH_SESSION_TOUCH_MS): a write
	 * per request would take the write lock on every signed-in request.
	 * The stored last_seen_at lags by up to that minute, so a session
	 * idles out up to a minute early, never late. */
	if (now - s.last_seen_at >= AUTH_SESSION_TOUCH_MS) {
		err = gh_db_run(db, "UPDATE sessions SET last_seen_at = ? "
		    "WHERE id = ? AND last_seen_at < ?", "iti", now, s.id, now);
		if (err != GH_OK) {
			GH_LOG_ERR(err, "session %s: touch failed", s.id);
			goto out;
		}
		s.last_seen_at = now;
	} else if (memo != NULL) {
		/* (After a refresh the version moved: nothing to keep.) */
		memo_put(memo, digest, extra_cols, lim, idle_ms, &s, arg,
		    arg_size);
	}
	if (out != NULL)
		*out = s;
out:
	gh_stmt_free(st);
	gh_wipe(digest, sizeof digest);
	return err;
}

void
gh_auth_session_csrf(const char *token, char out[static GH_TOKEN_LEN + 1])
{
	uint8_t d[GH_SHA256_LEN];
	char msg[4 + GH_TOKEN_LEN];
	size_t n;

	out[0] = '\0';
	if (!auth_token_shape_ok(token, GH_TOKEN_LEN))
		return;
	n = strlen(token);
	memcpy(msg, "csrf", 4);
	memcpy(msg + 4, token, n);
	gh_sha256(msg, 4 + n, d);
	gh_b64url_encode(d, sizeof d, out);
	gh_wipe(msg, sizeof msg);
	gh_wipe(d, sizeof d);
}

bool
gh_auth_session_csrf_ok(const char *token, const char *submitted)
{
	char expected[GH_TOKEN_LEN + 1];
	bool ok;

	if (submitted == NULL ||
	    strnlen(submitted, GH_TOKEN_LEN + 1) != GH_TOKEN_LEN)
		return false;
	gh_auth_session_csrf(token, expected);
	ok = expected[0] != '\0' &&
	    gh_ct_eq(expected, submitted, GH_TOKEN_LEN);
	gh_wipe(expected, sizeof expected);
	return ok;
}

gh_err
gh_auth_session_list(struct gh_db *db, const char *user_id,
    const struct gh_session_limits *lim,
    void (*fn)(const struct gh_session *s, void *arg), void *arg)
{
	struct gh_stmt *st = NULL;
	struct gh_session s;
	int64_t now;
	gh_err err;
	bool row;

	if (db == NULL || user_id == NULL || fn == NULL || !limits_ok(lim))
		return GH_ERR_INVALID;
	now = gh_now_ms();
	err = gh_db_prepare(db, "SELECT " SESSION_COLUMNS " FROM sessions s "
	    "JOIN users u ON u.id = s.user_id WHERE s.user_id = ? AND "
	    SESSION_LIVE " ORDER BY s.created_at DESC, s.id DESC", &st);
	if (err != GH_OK)
		goto out;
	err = gh_stmt_bind(st, "tiiiiii", user_id, now, now, now,
	    lim->absolute_ms, now, lim->idle_ms);
	if (err != GH_OK)
		goto out;
	for (;;) {
		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		session_from_row(st, &s);
		fn(&s, arg);
	}
out:
	gh_stmt_free(st);
	return err;
}

gh_err
gh_auth_session_mark_mfa(struct gh_db *db, const char *session_id,
    int64_t now_ms)
{
	gh_err err;

	if (db == NULL || session_id == NULL)
		return GH_ERR_INVALID;
	err = gh_db_run(db, "UPDATE sessions SET mfa_at = ? WHERE id = ? AND "
	    "revoked_at IS NULL", "it", now_ms, session_id);
	if (err == GH_OK && gh_db_changes(db) == 0)
		err = GH_ERR_NOTFOUND;
	if (err != GH_OK)
		GH_LOG_ERR(err, "session %s: MFA mark failed", session_id);
	return err;
}

gh_err
gh_auth_session_mfa_live(struct gh_db *db, const char *user_id,
    const struct gh_session_limits *lim, bool *out)
{
	struct gh_stmt *st = NULL;
	int64_t now;
	gh_err err;
	bool row = false;

	*out = false;
	if (db == NULL || user_id == NULL || !limits_ok(lim))
		return GH_ERR_INVALID;
	now = gh_now_ms();
	err = gh_db_prepare(db, "SELECT 1 FROM sessions s JOIN users u ON "
	    "u.id = s.user_id WHERE s.user_id = ? AND s.mfa_at IS NOT NULL "
	    "AND " SESSION_LIVE " LIMIT 1", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "tiiiiii", user_id, now, now, now,
		    lim->absolute_ms, now, lim->idle_ms);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK)
		*out = row;
	gh_stmt_free(st);
	return err;
}

/*
 * Queues an OIDC back-channel logout (table oidc_logout_outbox, sent by
 * src/api/oidc_bcl.c) for each client that got tokens in the sessions
 * chosen by where (one "?" bound to key, a second to now), in the
 * caller's transaction: the session ending and the notice to its relying
 * parties commit together; the org's outbox hint "bcl" is written before
 * that commit. where names exactly the sessions that end:
 * the live ones before they are marked, or the one just marked at now.
 */
static gh_err
bcl_queue(struct gh_db *db, const char *where, const char *key, int64_t now)
{
	char sql[512];
	gh_err err;

	snprintf(sql, sizeof sql, "INSERT INTO oidc_logout_outbox "
	    "(session_id, client_id, user_id, next_at, created_at) SELECT "
	    "DISTINCT t.session_id, t.client_id, t.user_id, %lld, %lld FROM "
	    "oidc_tokens t WHERE t.user_id IS NOT NULL AND t.session_id IN "
	    "(SELECT id FROM sessions WHERE %s) AND NOT EXISTS (SELECT 1 FROM "
	    "oidc_logout_outbox o WHERE o.session_id = t.session_id AND "
	    "o.client_id = t.client_id)", (long long)now, (long long)now,
	    where);
	err = gh_db_run(db, sql, "ti", key, now);
	/* Still inside the caller's transaction: the hint (committed at
	 * once) precedes the rows, so the sender of any process finds them. */
	if (err == GH_OK && gh_db_changes(db) > 0)
		err = gh_db_outbox_hint(db, "bcl");
	return err;
}

gh_err
gh_auth_session_revoke(struct gh_db *db, const char *session_id,
    const char *user_id)
{
	int64_t now = gh_now_ms();
	gh_err err;

	if (db == NULL || session_id == NULL)
		return GH_ERR_INVALID;
	if (user_id != NULL)
		err = gh_db_run(db, "UPDATE sessions SET revoked_at = ? WHERE "
		    "id = ? AND user_id = ? AND revoked_at IS NULL", "itt",
		    now, session_id, user_id);
	else
		err = gh_db_run(db, "UPDATE sessions SET revoked_at = ? WHERE "
		    "id = ? AND revoked_at IS NULL", "it", now, session_id);
	if (err == GH_OK && gh_db_changes(db) == 0)
		return GH_ERR_NOTFOUND;
	/* The session is revoked now; revoked_at = now singles it out. */
	if (err == GH_OK)
		err = bcl_queue(db, "id = ? AND revoked_at = ?", session_id,
		    now);
	if (err != GH_OK)
		GH_LOG_ERR(err, "session %s: revoke failed", session_id);
	return err;
}

gh_err
gh_auth_session_revoke_user(struct gh_db *db, const char *user_id,
    int64_t *count_out)
{
	int64_t now;
	gh_err err;

	if (count_out != NULL)
		*count_out = 0;
	if (db == NULL || user_id == NULL)
		return GH_ERR_INVALID;
	now = gh_now_ms();
	/* Sessions past their absolute expiry are dead already; the idle
	 * limit is the caller's policy, so every other one is revoked. */
	err = bcl_queue(db, "user_id = ? AND revoked_at IS NULL AND "
	    "expires_at > ?", user_id, now);
	if (err == GH_OK)
		err = gh_db_run(db, "UPDATE sessions SET revoked_at = ? WHERE "
		    "user_id = ? AND revoked_at IS NULL AND expires_at > ?",
		    "iti", now, user_id, now);
	if (err != GH_OK) {
		GH_LOG_ERR(err, "user %s: revoking sessions failed", user_id);
		return err;
	}
	if (count_out != NULL)
		*count_out = gh_db_changes(db);
	return GH_OK;
}
