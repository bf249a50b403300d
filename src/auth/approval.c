/*
 * approval.c: approval of a pending sign-in from a device where the user is
 * signed in with a second factor. A request belongs to one pending sign-in
 * and carries a two-digit number (shown on the new device, typed on the
 * approving one) and a QR secret (the approving device proves it saw the
 * new device's screen by sending it back).
 *
 * Untrusted input: request ids (shape checked), numbers typed by users
 * (range checked, compared in constant time), QR secrets (shape checked,
 * hashed, looked up by digest and compared in constant time), the
 * requester's address and user agent (made printable).
 *
 * Secrets: the QR secret, returned once and stored only as its SHA-256
 * digest. The number is not a secret against the requester (who is shown
 * it) but is against the approver's guesses: three wrong ones deny.
 *
 * Transactions: none of these functions BEGINs or COMMITs.
 */
#include "auth/auth_int.h"

#include <stdio.h>
#include <string.h>

#define APPROVAL_COLUMNS \
	"id, pending_id, user_id, number, state, failures, created_at, " \
	"expires_at, source_ip, user_agent"
#define APPROVAL_TTL_MIN_MS 1000
#define APPROVAL_TTL_MAX_MS (10 * 60 * 1000)

const char *
gh_auth_approval_state_str(enum gh_approval_state st)
{
	switch (st) {
	case GH_APPROVAL_PENDING:
		return "pending";
	case GH_APPROVAL_APPROVED:
		return "approved";
	case GH_APPROVAL_DENIED:
		return "denied";
	case GH_APPROVAL_EXPIRED:
		return "expired";
	}
	return "expired";
}

/* A uniform number in 10..99 from the CSPRNG (rejection sampling). */
static gh_err
number_new(int *out)
{
	uint8_t b;
	gh_err err;

	do {
		err = gh_rand_bytes(&b, 1);
		if (err != GH_OK)
			return err;
	} while (b >= 180);	/* 180 = 2 * 90: no modulo bias */
	*out = 10 + b % 90;
	return GH_OK;
}

/* Copies src into dst as printable UTF-8 text (anything else becomes '?'). */
static void
text_copy(char *dst, size_t cap, const char *src)
{
	size_t n, i;

	gh_strlcpy(dst, src != NULL ? src : "", cap);
	n = strlen(dst);
	while (n > 0 && !gh_utf8_valid(dst, n))
		dst[--n] = '\0';
	for (i = 0; i < n; i++)
		if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7f)
			dst[i] = '?';
}

static enum gh_approval_state
state_parse(const char *s)
{
	if (s != NULL && strcmp(s, "pending") == 0)
		return GH_APPROVAL_PENDING;
	if (s != NULL && strcmp(s, "approved") == 0)
		return GH_APPROVAL_APPROVED;
	return GH_APPROVAL_DENIED;
}

static void
approval_from_row(struct gh_stmt *st, int64_t now_ms, struct gh_approval *a)
{
	memset(a, 0, sizeof *a);
	gh_strlcpy(a->id, gh_stmt_text(st, 0) ? gh_stmt_text(st, 0) : "",
	    sizeof a->id);
	gh_strlcpy(a->pending_id, gh_stmt_text(st, 1) ? gh_stmt_text(st, 1) :
	    "", sizeof a->pending_id);
	gh_strlcpy(a->user_id, gh_stmt_text(st, 2) ? gh_stmt_text(st, 2) : "",
	    sizeof a->user_id);
	a->number = (int)gh_stmt_int(st, 3);
	a->state = state_parse(gh_stmt_text(st, 4));
	a->failures = (int)gh_stmt_int(st, 5);
	a->created_at = gh_stmt_int(st, 6);
	a->expires_at = gh_stmt_int(st, 7);
	gh_strlcpy(a->source_ip, gh_stmt_text(st, 8) ? gh_stmt_text(st, 8) :
	    "", sizeof a->source_ip);
	gh_strlcpy(a->user_agent, gh_stmt_text(st, 9) ? gh_stmt_text(st, 9) :
	    "", sizeof a->user_agent);
	if (a->state == GH_APPROVAL_PENDING && a->expires_at <= now_ms)
		a->state = GH_APPROVAL_EXPIRED;
}

/* Runs a one-row SELECT of APPROVAL_COLUMNS with the text bind v1 (and v2
 * when not NULL). GH_ERR_NOTFOUND without a row. */
static gh_err
approval_select(struct gh_db *db, const char *where, const char *v1,
    const char *v2, struct gh_approval *out)
{
	struct gh_stmt *st = NULL;
	char sql[256];
	gh_err err;
	bool row = false;

	memset(out, 0, sizeof *out);
	snprintf(sql, sizeof sql, "SELECT " APPROVAL_COLUMNS " FROM "
	    "mfa_approvals WHERE %s", where);
	err = gh_db_prepare(db, sql, &st);
	if (err == GH_OK)
		err = v2 != NULL ? gh_stmt_bind(st, "tt", v1, v2) :
		    gh_stmt_bind(st, "t", v1);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && !row)
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK)
		approval_from_row(st, gh_now_ms(), out);
	gh_stmt_free(st);
	return err;
}

gh_err
gh_auth_approval_create(struct gh_db *db, const struct gh_mfa_pending *p,
    int64_t ttl_ms, const char *source_ip, const char *user_agent,
    char code_out[static GH_TOKEN_LEN + 1], struct gh_approval *out)
{
	char code[GH_TOKEN_LEN + 1], digest[GH_TOKEN_HASH_LEN + 1];
	struct gh_approval a;
	gh_err err;

	code_out[0] = '\0';
	memset(&a, 0, sizeof a);
	if (db == NULL || p == NULL || !gh_id_valid(p->id) ||
	    !gh_id_valid(p->user_id) || p->purpose != GH_MFA_PURPOSE_VERIFY ||
	    ttl_ms < APPROVAL_TTL_MIN_MS || ttl_ms > APPROVAL_TTL_MAX_MS)
		return GH_ERR_INVALID;
	err = gh_id_new(a.id);
	if (err == GH_OK)
		err = auth_token_new(code);
	if (err == GH_OK)
		err = number_new(&a.number);
	if (err != GH_OK)
		goto out;
	auth_token_digest(code, GH_TOKEN_LEN, digest);
	gh_strlcpy(a.pending_id, p->id, sizeof a.pending_id);
	gh_strlcpy(a.user_id, p->user_id, sizeof a.user_id);
	a.state = GH_APPROVAL_PENDING;
	a.created_at = gh_now_ms();
	/* A request never outlives its pending sign-in. */
	a.expires_at = a.created_at + ttl_ms;
	if (p->expires_at > 0 && a.expires_at > p->expires_at)
		a.expires_at = p->expires_at;
	text_copy(a.source_ip, sizeof a.source_ip, source_ip);
	text_copy(a.user_agent, sizeof a.user_agent, user_agent);
	/* The new request replaces the pending sign-in's earlier one; stale
	 * rows of anyone go too, so the table stays small. */
	err = gh_db_run(db, "DELETE FROM mfa_approvals WHERE pending_id = ? OR "
	    "expires_at <= ?", "ti", a.pending_id, a.created_at -
	    APPROVAL_TTL_MAX_MS);
	if (err == GH_OK)
		err = gh_db_run(db, "INSERT INTO mfa_approvals (id, pending_id, "
		    "user_id, number, code_hash, state, failures, created_at, "
		    "expires_at, source_ip, user_agent) VALUES (?, ?, ?, ?, ?, "
		    "'pending', 0, ?, ?, ?, ?)", "tttitiitt", a.id,
		    a.pending_id, a.user_id, (int64_t)a.number, digest,
		    a.created_at, a.expires_at, a.source_ip, a.user_agent);
	if (err != GH_OK) {
		GH_LOG_ERR(err, "user %s: approval request not stored",
		    p->user_id);
		goto out;
	}
	memcpy(code_out, code, sizeof code);
	if (out != NULL)
		*out = a;
out:
	gh_wipe(code, sizeof code);
	gh_wipe(digest, sizeof digest);
	return err;
}

gh_err
gh_auth_approval_of_pending(struct gh_db *db, const char *pending_id,
    struct gh_approval *out)
{
	if (db == NULL || !gh_id_valid(pending_id)) {
		memset(out, 0, sizeof *out);
		return GH_ERR_NOTFOUND;
	}
	return approval_select(db, "pending_id = ?", pending_id, NULL, out);
}

gh_err
gh_auth_approval_get(struct gh_db *db, const char *id, const char *user_id,
    struct gh_approval *out)
{
	if (db == NULL || !gh_id_valid(id) || user_id == NULL) {
		memset(out, 0, sizeof *out);
		return GH_ERR_NOTFOUND;
	}
	return approval_select(db, "id = ? AND user_id = ?", id, user_id, out);
}

gh_err
gh_auth_approval_by_code(struct gh_db *db, const char *code,
    const char *user_id, struct gh_approval *out)
{
	char digest[GH_TOKEN_HASH_LEN + 1];
	struct gh_stmt *st = NULL;
	gh_err err;
	bool row = false;

	memset(out, 0, sizeof *out);
	if (db == NULL || user_id == NULL ||
	    !auth_token_shape_ok(code, GH_TOKEN_LEN))
		return GH_ERR_NOTFOUND;
	auth_token_digest(code, GH_TOKEN_LEN, digest);
	err = gh_db_prepare(db, "SELECT " APPROVAL_COLUMNS ", code_hash FROM "
	    "mfa_approvals WHERE code_hash = ? AND user_id = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "tt", digest, user_id);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	/* The SQL equality found the row; the constant-time comparison is
	 * the one that decides. */
	if (err == GH_OK && (!row || !auth_digest_eq(gh_stmt_text(st, 10),
	    digest)))
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK)
		approval_from_row(st, gh_now_ms(), out);
	gh_stmt_free(st);
	gh_wipe(digest, sizeof digest);
	return err;
}

/* Constant-time comparison of two numbers 10..99, as two digits each. */
static bool
number_eq(int stored, int typed)
{
	char a[2], b[2];

	if (typed < 10 || typed > 99 || stored < 10 || stored > 99)
		return false;
	a[0] = (char)('0' + stored / 10);
	a[1] = (char)('0' + stored % 10);
	b[0] = (char)('0' + typed / 10);
	b[1] = (char)('0' + typed % 10);
	return gh_ct_eq(a, b, 2);
}

/* Moves a pending request to state; GH_ERR_CONFLICT when someone else
 * decided it first. */
static gh_err
set_state(struct gh_db *db, const char *id, const char *state, int64_t now_ms)
{
	gh_err err;

	err = gh_db_run(db, "UPDATE mfa_approvals SET state = ?, decided_at "
	    "= ? WHERE id = ? AND state = 'pending'", "tit", state, now_ms, id);
	if (err == GH_OK && gh_db_changes(db) != 1)
		err = GH_ERR_CONFLICT;
	return err;
}

gh_err
gh_auth_approval_decide(struct gh_db *db, const char *id, const char *user_id,
    bool approve, bool by_code, int number, int64_t now_ms,
    struct gh_approval *out)
{
	char idc[GH_ID_LEN + 1];
	gh_err err;

	/* id may point into *out, which the read below overwrites. */
	gh_strlcpy(idc, id != NULL ? id : "", sizeof idc);
	id = idc;
	err = gh_auth_approval_get(db, id, user_id, out);
	if (err != GH_OK)
		return err;
	if (out->state == GH_APPROVAL_PENDING && out->expires_at <= now_ms)
		out->state = GH_APPROVAL_EXPIRED;
	if (out->state != GH_APPROVAL_PENDING)
		return GH_ERR_CONFLICT;
	if (!approve) {
		err = set_state(db, id, "denied", now_ms);
		if (err == GH_OK)
			out->state = GH_APPROVAL_DENIED;
		return err;
	}
	if (!by_code && !number_eq(out->number, number)) {
		out->failures++;
		err = gh_db_run(db, "UPDATE mfa_approvals SET failures = ? WHERE "
		    "id = ?", "it", (int64_t)out->failures, id);
		if (err == GH_OK && out->failures >= GH_APPROVAL_MAX_FAILS) {
			err = set_state(db, id, "denied", now_ms);
			if (err == GH_OK)
				out->state = GH_APPROVAL_DENIED;
		}
		return err != GH_OK ? err : GH_ERR_DENIED;
	}
	err = set_state(db, id, "approved", now_ms);
	if (err == GH_OK)
		out->state = GH_APPROVAL_APPROVED;
	return err;
}

gh_err
gh_auth_approval_list(struct gh_db *db, const char *user_id, int64_t now_ms,
    void (*fn)(const struct gh_approval *a, void *arg), void *arg)
{
	struct gh_stmt *st = NULL;
	struct gh_approval a;
	gh_err err;
	bool row;

	if (db == NULL || user_id == NULL || fn == NULL)
		return GH_ERR_INVALID;
	err = gh_db_prepare(db, "SELECT " APPROVAL_COLUMNS " FROM "
	    "mfa_approvals WHERE user_id = ? AND state = 'pending' AND "
	    "expires_at > ? ORDER BY created_at DESC, id DESC LIMIT 20", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "ti", user_id, now_ms);
	while (err == GH_OK) {
		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		approval_from_row(st, now_ms, &a);
		fn(&a, arg);
	}
	gh_stmt_free(st);
	return err;
}

gh_err
gh_auth_approval_delete(struct gh_db *db, const char *id)
{
	return gh_db_run(db, "DELETE FROM mfa_approvals WHERE id = ?", "t", id);
}
