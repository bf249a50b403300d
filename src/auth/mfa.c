/*
 * mfa.c: second factors. TOTP (RFC 6238 through liboath) with otpauth URIs
 * and QR codes (libqrencode, drawn here as SVG), recovery codes, pending
 * second-factor sign-ins, the per-user failure lockout and the org MFA
 * policy with the one decision of whether a user needs MFA.
 *
 * Untrusted input: codes typed by users (shape checked before any work),
 * pending sign-in tokens (shape checked, hashed, looked up by digest), the
 * policy JSON from admins (required group ids checked for shape here and
 * for existence by the caller), seed ciphertexts from the database (authenticated
 * by src/kms before use).
 *
 * Secrets: TOTP seeds (plaintext only in GH_BUF_SECRET buffers or wiped
 * stack arrays, for one computation), recovery codes and pending tokens
 * (returned once, stored as SHA-256 digests), the base32 seed and otpauth
 * URI shown at enrolment (wiped by gh_auth_mfa_enrolment_free).
 *
 * Transactions: none of these functions BEGINs or COMMITs; the caller's
 * transaction covers a change and its audit event.
 */
#include "auth/auth_int.h"
#include "auth/webauthn.h"
#include "kms/kms.h"

#include <liboath/oath.h>
#include <pthread.h>
#include <qrencode.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED_CT_MAX (GH_MFA_SEED_LEN + GH_KMS_OVERHEAD + 64)
#define RECOVERY_RAW_LEN 10	/* 80 bits: 16 base32 characters */
#define RECOVERY_B32_LEN 16

static pthread_once_t oath_once = PTHREAD_ONCE_INIT;
static int oath_init_rc = OATH_OK;

static void
oath_setup(void)
{
	oath_init_rc = oath_init();
}

static gh_err
oath_ready(void)
{
	if (pthread_once(&oath_once, oath_setup) != 0 || oath_init_rc != OATH_OK)
		return GH_ERR_CRYPTO;
	return GH_OK;
}

/* RFC 4648 base32 without padding; n * 8 must be a multiple of 5. */
static void
base32_encode(const uint8_t *p, size_t n, char *out)
{
	static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | p[i];
		bits += 8;
		while (bits >= 5) {
			out[o++] = alpha[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		out[o++] = alpha[(acc << (5 - bits)) & 31];
	out[o] = '\0';
	acc = 0;
}

bool
gh_auth_totp_code_shape_ok(const char *code)
{
	size_t i;

	if (code == NULL)
		return false;
	for (i = 0; code[i] != '\0'; i++)
		if (code[i] < '0' || code[i] > '9' || i >= GH_MFA_TOTP_DIGITS)
			return false;
	return i == GH_MFA_TOTP_DIGITS;
}

gh_err
gh_auth_totp_code(const uint8_t *seed, size_t seed_len, int64_t t_s,
    int digits, char out[static 9])
{
	gh_err err;

	out[0] = '\0';
	if (seed == NULL || seed_len == 0 || digits < 6 || digits > 8 ||
	    t_s < 0)
		return GH_ERR_INVALID;
	err = oath_ready();
	if (err != GH_OK)
		return err;
	if (oath_totp_generate2((const char *)seed, seed_len, (time_t)t_s,
	    GH_MFA_TOTP_STEP_S, 0, (unsigned)digits, 0, out) != OATH_OK) {
		out[0] = '\0';
		return GH_ERR_CRYPTO;
	}
	return GH_OK;
}

/* ---- otpauth URI and QR code ------------------------------------------------ */

/* Percent-encodes s for a URI path segment or query value. */
static void
put_uri_encoded(struct gh_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			gh_buf_put_u8(b, c);
		} else {
			gh_buf_put_u8(b, '%');
			gh_buf_put_u8(b, (uint8_t)hex[c >> 4]);
			gh_buf_put_u8(b, (uint8_t)hex[c & 15]);
		}
	}
}

gh_err
gh_auth_qr_svg(const char *text, char **svg_out)
{
	const int quiet = 4;
	struct gh_buf b;
	QRcode *q;
	int w, x, y;
	gh_err err;

	*svg_out = NULL;
	if (text == NULL)
		return GH_ERR_INVALID;
	q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	if (q == NULL) {
		GH_LOG_ERR(GH_ERR_INTERNAL, "QR encoding failed");
		return GH_ERR_INTERNAL;
	}
	w = q->width;
	/* The URI holds the seed: the SVG is as secret as the URI. */
	gh_buf_init(&b, 256 * 1024, GH_BUF_SECRET);
	gh_buf_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" "
	    "viewBox=\"0 0 %d %d\" shape-rendering=\"crispEdges\" "
	    "role=\"img\" aria-label=\"TOTP enrolment QR code\">"
	    "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>"
	    "<path fill=\"#000\" d=\"", w + 2 * quiet, w + 2 * quiet);
	for (y = 0; y < w; y++)
		for (x = 0; x < w; x++)
			if (q->data[y * w + x] & 1)
				gh_buf_printf(&b, "M%d %dh1v1h-1z", x + quiet,
				    y + quiet);
	gh_buf_put_str(&b, "\"/></svg>\n");
	gh_wipe(q->data, (size_t)w * (size_t)w);
	QRcode_free(q);
	err = gh_buf_err(&b);
	if (err == GH_OK) {
		*svg_out = gh_strdup(gh_buf_cstr(&b));
		if (*svg_out == NULL)
			err = GH_ERR_NOMEM;
	}
	gh_buf_free(&b);
	return err;
}

void
gh_auth_mfa_enrolment_free(struct gh_mfa_enrolment *e)
{
	if (e == NULL)
		return;
	gh_wipe(e->secret, sizeof e->secret);
	gh_str_wipe_free(e->otpauth_uri);
	gh_str_wipe_free(e->qr_svg);
	e->otpauth_uri = NULL;
	e->qr_svg = NULL;
}

/* ---- seeds ---------------------------------------------------------------------- */

static void
seed_aad(struct gh_kms_aad *aad, const char *org_id, const char *user_id)
{
	aad->org_id = org_id;
	aad->table = "mfa_totp";
	aad->column = "seed";
	aad->row_id = user_id;
}

/*
 * Reads and decrypts the user's seed into seed (GH_MFA_SEED_LEN bytes,
 * which the caller wipes). confirmed selects which row is wanted.
 */
static gh_err
seed_load(struct gh_db *db, struct gh_kms *kms, const char *org_id,
    const char *user_id, bool confirmed, uint8_t seed[static GH_MFA_SEED_LEN],
    int64_t *last_counter_out)
{
	struct gh_kms_aad aad;
	struct gh_stmt *st = NULL;
	struct gh_buf pt;
	const void *ct;
	size_t ct_len = 0;
	gh_err err;
	bool row;

	gh_buf_init(&pt, 256, GH_BUF_SECRET);
	err = gh_db_prepare(db, "SELECT seed_ct, last_counter FROM mfa_totp "
	    "WHERE user_id = ? AND confirmed = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "ti", user_id, (int64_t)confirmed);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err != GH_OK)
		goto out;
	if (!row) {
		err = GH_ERR_NOTFOUND;
		goto out;
	}
	ct = gh_stmt_blob(st, 0, &ct_len);
	if (last_counter_out != NULL)
		*last_counter_out = gh_stmt_int(st, 1);
	seed_aad(&aad, org_id, user_id);
	err = gh_kms_decrypt(kms, GH_KMS_SECRETS, &aad, ct, ct_len, &pt);
	if (err == GH_OK && pt.len != GH_MFA_SEED_LEN)
		err = GH_ERR_CRYPTO;
	if (err != GH_OK) {
		GH_LOG_ERR(err, "org %s: user %s: TOTP seed unusable", org_id,
		    user_id);
		goto out;
	}
	memcpy(seed, pt.data, GH_MFA_SEED_LEN);
out:
	gh_stmt_free(st);
	gh_buf_free(&pt);
	return err;
}

gh_err
gh_auth_totp_begin(struct gh_db *db, struct gh_kms *kms, const char *org_id,
    const char *user_id, const char *issuer, const char *account,
    struct gh_mfa_enrolment *out)
{
	uint8_t seed[GH_MFA_SEED_LEN];
	struct gh_kms_aad aad;
	struct gh_stmt *st = NULL;
	struct gh_buf ct, uri;
	uint32_t version = 0;
	gh_err err;
	bool row;

	memset(out, 0, sizeof *out);
	gh_buf_init(&ct, SEED_CT_MAX, 0);
	gh_buf_init(&uri, 4096, GH_BUF_SECRET);
	if (db == NULL || kms == NULL || org_id == NULL ||
	    !gh_id_valid(user_id) || issuer == NULL || account == NULL) {
		err = GH_ERR_INVALID;
		goto out;
	}
	err = gh_db_prepare(db, "SELECT 1 FROM mfa_totp WHERE user_id = ? AND "
	    "confirmed = 1", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", user_id);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	gh_stmt_free(st);
	if (err == GH_OK && row)
		err = GH_ERR_CONFLICT;
	if (err != GH_OK)
		goto out;
	err = gh_rand_bytes(seed, sizeof seed);
	if (err != GH_OK)
		goto out;
	seed_aad(&aad, org_id, user_id);
	err = gh_kms_encrypt(kms, GH_KMS_SECRETS, &aad, seed, sizeof seed, &ct);
	if (err == GH_OK)
		err = gh_kms_ct_version(ct.data, ct.len, &version);
	if (err != GH_OK) {
		GH_LOG_ERR(err, "org %s: user %s: TOTP seed not encrypted",
		    org_id, user_id);
		goto out;
	}
	err = gh_db_run(db, "DELETE FROM mfa_totp WHERE user_id = ?", "t",
	    user_id);
	if (err == GH_OK)
		err = gh_db_run(db, "INSERT INTO mfa_totp (user_id, seed_ct, "
		    "key_version, confirmed, last_counter, created_at) VALUES "
		    "(?, ?, ?, 0, -1, ?)", "tbii", user_id, ct.data, ct.len,
		    (int64_t)version, gh_now_ms());
	if (err != GH_OK) {
		GH_LOG_ERR(err, "user %s: TOTP enrolment not stored", user_id);
		goto out;
	}
	base32_encode(seed, sizeof seed, out->secret);
	gh_buf_put_str(&uri, "otpauth://totp/");
	put_uri_encoded(&uri, issuer);
	gh_buf_put_u8(&uri, ':');
	put_uri_encoded(&uri, account);
	gh_buf_printf(&uri, "?secret=%s&issuer=", out->secret);
	put_uri_encoded(&uri, issuer);
	gh_buf_printf(&uri, "&algorithm=SHA1&digits=%d&period=%d",
	    GH_MFA_TOTP_DIGITS, GH_MFA_TOTP_STEP_S);
	err = gh_buf_err(&uri);
	if (err != GH_OK)
		goto out;
	out->otpauth_uri = gh_strdup(gh_buf_cstr(&uri));
	if (out->otpauth_uri == NULL) {
		err = GH_ERR_NOMEM;
		goto out;
	}
	err = gh_auth_qr_svg(out->otpauth_uri, &out->qr_svg);
out:
	if (err != GH_OK)
		gh_auth_mfa_enrolment_free(out);
	gh_wipe(seed, sizeof seed);
	gh_buf_free(&ct);
	gh_buf_free(&uri);
	return err;
}

/*
 * Finds the step of code within the window around now. GH_OK with
 * *counter_out set, GH_ERR_DENIED when no step matches.
 */
static gh_err
totp_match(const uint8_t seed[static GH_MFA_SEED_LEN], const char *code,
    int64_t now_ms, int64_t *counter_out)
{
	uint64_t counter = 0;
	int pos = 0, rc;
	gh_err err;

	err = oath_ready();
	if (err != GH_OK)
		return err;
	rc = oath_totp_validate4((const char *)seed, GH_MFA_SEED_LEN,
	    (time_t)(now_ms / 1000), GH_MFA_TOTP_STEP_S, 0, GH_MFA_TOTP_WINDOW,
	    &pos, &counter, 0, code);
	if (rc == OATH_INVALID_OTP)
		return GH_ERR_DENIED;
	if (rc < 0) {
		GH_LOG_ERR(GH_ERR_CRYPTO, "TOTP validation failed: %d", rc);
		return GH_ERR_CRYPTO;
	}
	*counter_out = (int64_t)counter;
	return GH_OK;
}

gh_err
gh_auth_totp_confirm(struct gh_db *db, struct gh_kms *kms, const char *org_id,
    const char *user_id, const char *code, int64_t now_ms)
{
	uint8_t seed[GH_MFA_SEED_LEN];
	int64_t counter = 0;
	gh_err err;

	if (!gh_auth_totp_code_shape_ok(code))
		return GH_ERR_INVALID;
	if (db == NULL || kms == NULL || !gh_id_valid(user_id))
		return GH_ERR_INVALID;
	err = seed_load(db, kms, org_id, user_id, false, seed, NULL);
	if (err == GH_OK)
		err = totp_match(seed, code, now_ms, &counter);
	gh_wipe(seed, sizeof seed);
	if (err != GH_OK)
		return err;
	err = gh_db_run(db, "UPDATE mfa_totp SET confirmed = 1, confirmed_at "
	    "= ?, last_counter = ? WHERE user_id = ? AND confirmed = 0", "iit",
	    now_ms, counter, user_id);
	if (err == GH_OK && gh_db_changes(db) != 1)
		err = GH_ERR_NOTFOUND;
	return err;
}

gh_err
gh_auth_totp_verify(struct gh_db *db, struct gh_kms *kms, const char *org_id,
    const char *user_id, const char *code, int64_t now_ms, bool *replay_out)
{
	uint8_t seed[GH_MFA_SEED_LEN];
	int64_t counter = 0, last = -1;
	gh_err err;

	*replay_out = false;
	if (!gh_auth_totp_code_shape_ok(code))
		return GH_ERR_INVALID;
	if (db == NULL || kms == NULL || !gh_id_valid(user_id))
		return GH_ERR_INVALID;
	err = seed_load(db, kms, org_id, user_id, true, seed, &last);
	if (err == GH_OK)
		err = totp_match(seed, code, now_ms, &counter);
	gh_wipe(seed, sizeof seed);
	if (err != GH_OK)
		return err;
	if (counter <= last) {
		*replay_out = true;
		return GH_ERR_DENIED;
	}
	/* The guard on last_counter makes two concurrent uses of one code
	 * succeed at most once. */
	err = gh_db_run(db, "UPDATE mfa_totp SET last_counter = ? WHERE "
	    "user_id = ? AND confirmed = 1 AND last_counter < ?", "iti",
	    counter, user_id, counter);
	if (err == GH_OK && gh_db_changes(db) != 1) {
		*replay_out = true;
		err = GH_ERR_DENIED;
	}
	return err;
}

gh_err
gh_auth_totp_remove(struct gh_db *db, const char *user_id)
{
	gh_err err;

	err = gh_db_run(db, "DELETE FROM mfa_totp WHERE user_id = ?", "t",
	    user_id);
	if (err == GH_OK && gh_db_changes(db) == 0)
		err = GH_ERR_NOTFOUND;
	return err;
}

gh_err
gh_auth_mfa_factors(struct gh_db *db, const char *user_id,
    struct gh_mfa_factors *out)
{
	struct gh_stmt *st = NULL;
	gh_err err;
	bool row;

	memset(out, 0, sizeof *out);
	err = gh_db_prepare(db, "SELECT confirmed, confirmed_at FROM mfa_totp "
	    "WHERE user_id = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", user_id);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && row) {
		out->totp = gh_stmt_int(st, 0) == 1;
		out->totp_pending = !out->totp;
		out->totp_confirmed_at = gh_stmt_int(st, 1);
	}
	gh_stmt_free(st);
	st = NULL;
	if (err == GH_OK)
		err = gh_db_prepare(db, "SELECT COUNT(*), MAX(created_at) FROM "
		    "mfa_recovery_codes WHERE user_id = ? AND used_at IS NULL",
		    &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", user_id);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && row) {
		out->recovery_remaining = (int)gh_stmt_int(st, 0);
		out->recovery_created_at = gh_stmt_int(st, 1);
	}
	gh_stmt_free(st);
	return err;
}

/* ---- recovery codes ------------------------------------------------------------ */

/* Canonical form of a typed code: 16 base32 characters, upper case.
 * False when code cannot be one. */
static bool
recovery_normalise(const char *code, char out[static RECOVERY_B32_LEN + 1])
{
	size_t n = 0;

	if (code == NULL || strlen(code) > 64)
		return false;
	for (; *code != '\0'; code++) {
		char c = *code;

		if (c == '-' || c == ' ')
			continue;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (!((c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7')) ||
		    n == RECOVERY_B32_LEN)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	return n == RECOVERY_B32_LEN;
}

gh_err
gh_auth_recovery_generate(struct gh_db *db, const char *user_id,
    char codes[static GH_MFA_RECOVERY_COUNT][GH_MFA_RECOVERY_LEN + 1])
{
	char b32[RECOVERY_B32_LEN + 1], digest[GH_TOKEN_HASH_LEN + 1];
	char id[GH_ID_LEN + 1];
	uint8_t raw[RECOVERY_RAW_LEN];
	int64_t now = gh_now_ms();
	gh_err err;
	int i;

	memset(codes, 0, GH_MFA_RECOVERY_COUNT * (GH_MFA_RECOVERY_LEN + 1));
	if (db == NULL || !gh_id_valid(user_id))
		return GH_ERR_INVALID;
	err = gh_db_run(db, "DELETE FROM mfa_recovery_codes WHERE user_id = ?",
	    "t", user_id);
	for (i = 0; err == GH_OK && i < GH_MFA_RECOVERY_COUNT; i++) {
		err = gh_rand_bytes(raw, sizeof raw);
		if (err == GH_OK)
			err = gh_id_new(id);
		if (err != GH_OK)
			break;
		base32_encode(raw, sizeof raw, b32);
		auth_token_digest(b32, RECOVERY_B32_LEN, digest);
		snprintf(codes[i], GH_MFA_RECOVERY_LEN + 1, "%.4s-%.4s-%.4s-%.4s",
		    b32, b32 + 4, b32 + 8, b32 + 12);
		err = gh_db_run(db, "INSERT INTO mfa_recovery_codes (id, user_id, "
		    "code_hash, created_at) VALUES (?, ?, ?, ?)", "ttti", id,
		    user_id, digest, now);
	}
	gh_wipe(raw, sizeof raw);
	gh_wipe(b32, sizeof b32);
	gh_wipe(digest, sizeof digest);
	if (err != GH_OK) {
		GH_LOG_ERR(err, "user %s: recovery codes not stored", user_id);
		gh_wipe(codes, GH_MFA_RECOVERY_COUNT *
		    (GH_MFA_RECOVERY_LEN + 1));
	}
	return err;
}

gh_err
gh_auth_recovery_use(struct gh_db *db, const char *user_id, const char *code,
    int64_t now_ms)
{
	char b32[RECOVERY_B32_LEN + 1], digest[GH_TOKEN_HASH_LEN + 1];
	gh_err err;

	if (!recovery_normalise(code, b32)) {
		gh_wipe(b32, sizeof b32);
		return GH_ERR_INVALID;
	}
	/* The digest of an 80-bit random code is looked up like a session
	 * token's: finding a row reveals nothing a guess could use. */
	auth_token_digest(b32, RECOVERY_B32_LEN, digest);
	gh_wipe(b32, sizeof b32);
	err = gh_db_run(db, "UPDATE mfa_recovery_codes SET used_at = ? WHERE "
	    "user_id = ? AND code_hash = ? AND used_at IS NULL", "itt", now_ms,
	    user_id, digest);
	gh_wipe(digest, sizeof digest);
	if (err == GH_OK && gh_db_changes(db) != 1)
		err = GH_ERR_DENIED;
	return err;
}

gh_err
gh_auth_mfa_reset(struct gh_db *db, const char *user_id)
{
	gh_err err;

	err = gh_db_run(db, "DELETE FROM mfa_totp WHERE user_id = ?", "t",
	    user_id);
	if (err == GH_OK)
		err = gh_db_run(db, "DELETE FROM mfa_recovery_codes WHERE "
		    "user_id = ?", "t", user_id);
	if (err == GH_OK)
		err = gh_db_run(db, "DELETE FROM mfa_pending WHERE user_id = ?",
		    "t", user_id);
	if (err == GH_OK)
		err = gh_db_run(db, "DELETE FROM mfa_lockouts WHERE user_id = ?",
		    "t", user_id);
	/* Passkeys and security keys are factors too: a user who lost a key
	 * must be able to sign in after the reset. */
	if (err == GH_OK)
		err = gh_db_run(db, "DELETE FROM webauthn_credentials WHERE "
		    "user_id = ?", "t", user_id);
	/* A remembered device stands in for a factor: it goes with them. */
	if (err == GH_OK)
		err = gh_auth_mfa_device_revoke_user(db, user_id, gh_now_ms(),
		    NULL);
	return err;
}

/* ---- lockout ------------------------------------------------------------------ */

gh_err
gh_auth_mfa_lock_check(struct gh_db *db, const char *user_id, int64_t now_ms,
    int64_t *until_out)
{
	struct gh_stmt *st = NULL;
	gh_err err;
	bool row;

	*until_out = 0;
	err = gh_db_prepare(db, "SELECT locked_until FROM mfa_lockouts WHERE "
	    "user_id = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", user_id);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && row && gh_stmt_int(st, 0) > now_ms) {
		*until_out = gh_stmt_int(st, 0);
		err = GH_ERR_LIMIT;
	}
	gh_stmt_free(st);
	return err;
}

gh_err
gh_auth_mfa_fail(struct gh_db *db, const char *user_id, int64_t now_ms,
    bool *locked_out)
{
	struct gh_stmt *st = NULL;
	int64_t failures = 0;
	gh_err err;
	bool row;

	*locked_out = false;
	/* A lock that ran out starts a fresh count. */
	err = gh_db_run(db, "INSERT INTO mfa_lockouts (user_id, failures, "
	    "locked_until) VALUES (?, 1, 0) ON CONFLICT (user_id) DO UPDATE "
	    "SET failures = CASE WHEN mfa_lockouts.locked_until <> 0 AND "
	    "mfa_lockouts.locked_until <= ? THEN 1 ELSE mfa_lockouts.failures "
	    "+ 1 END, locked_until = CASE WHEN mfa_lockouts.locked_until <= ? "
	    "THEN 0 ELSE mfa_lockouts.locked_until END", "tii", user_id, now_ms,
	    now_ms);
	if (err == GH_OK)
		err = gh_db_prepare(db, "SELECT failures FROM mfa_lockouts WHERE "
		    "user_id = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", user_id);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && row)
		failures = gh_stmt_int(st, 0);
	gh_stmt_free(st);
	if (err == GH_OK && failures >= GH_MFA_LOCK_FAILS) {
		err = gh_db_run(db, "UPDATE mfa_lockouts SET failures = 0, "
		    "locked_until = ? WHERE user_id = ?", "it",
		    now_ms + GH_MFA_LOCK_MS, user_id);
		*locked_out = err == GH_OK;
	}
	return err;
}

gh_err
gh_auth_mfa_succeed(struct gh_db *db, const char *user_id)
{
	return gh_db_run(db, "DELETE FROM mfa_lockouts WHERE user_id = ?", "t",
	    user_id);
}

/* ---- pending sign-ins ---------------------------------------------------------- */

gh_err
gh_auth_mfa_pending_create(struct gh_db *db, const char *user_id,
    enum gh_mfa_purpose purpose, const char *source_ip,
    const char *user_agent, char token_out[static GH_TOKEN_LEN + 1],
    struct gh_mfa_pending *out)
{
	char token[GH_TOKEN_LEN + 1], digest[GH_TOKEN_HASH_LEN + 1];
	char ip[64], ua[256];
	struct gh_mfa_pending p;
	gh_err err;

	token_out[0] = '\0';
	memset(&p, 0, sizeof p);
	if (db == NULL || !gh_id_valid(user_id))
		return GH_ERR_INVALID;
	err = gh_id_new(p.id);
	if (err == GH_OK)
		err = auth_token_new(token);
	if (err != GH_OK)
		goto out;
	auth_token_digest(token, GH_TOKEN_LEN, digest);
	gh_strlcpy(p.user_id, user_id, sizeof p.user_id);
	p.purpose = purpose;
	p.created_at = gh_now_ms();
	p.expires_at = p.created_at + GH_MFA_PENDING_TTL_MS;
	gh_strlcpy(ip, source_ip ? source_ip : "", sizeof ip);
	gh_strlcpy(ua, user_agent ? user_agent : "", sizeof ua);
	/* Only text that is valid UTF-8 is stored. */
	if (!gh_utf8_valid(ua, strlen(ua)))
		gh_strlcpy(ua, "", sizeof ua);
	/* Expired rows go when a new one comes, so the table stays small. */
	err = gh_db_run(db, "DELETE FROM mfa_pending WHERE expires_at <= ?",
	    "i", p.created_at);
	if (err == GH_OK)
		err = gh_db_run(db, "INSERT INTO mfa_pending (id, token_hash, "
		    "user_id, purpose, created_at, expires_at, failures, "
		    "source_ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
		    "ttttiitt", p.id, digest, p.user_id,
		    purpose == GH_MFA_PURPOSE_ENROL ? "enrol" : "verify",
		    p.created_at, p.expires_at, ip, ua);
	if (err != GH_OK) {
		GH_LOG_ERR(err, "user %s: pending sign-in not stored", user_id);
		goto out;
	}
	memcpy(token_out, token, sizeof token);
	if (out != NULL)
		*out = p;
out:
	gh_wipe(token, sizeof token);
	gh_wipe(digest, sizeof digest);
	return err;
}

gh_err
gh_auth_mfa_pending_check(struct gh_db *db, const char *token,
    struct gh_mfa_pending *out)
{
	char digest[GH_TOKEN_HASH_LEN + 1];
	struct gh_stmt *st = NULL;
	const char *purpose;
	gh_err err;
	bool row;

	memset(out, 0, sizeof *out);
	if (!auth_token_shape_ok(token, GH_TOKEN_LEN))
		return GH_ERR_DENIED;
	auth_token_digest(token, GH_TOKEN_LEN, digest);
	err = gh_db_prepare(db, "SELECT p.id, p.token_hash, p.user_id, "
	    "p.purpose, p.created_at, p.expires_at, p.failures FROM mfa_pending "
	    "p JOIN users u ON u.id = p.user_id WHERE p.token_hash = ? AND "
	    "p.expires_at > ? AND u.state = 'active'", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "ti", digest, gh_now_ms());
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && (!row || !auth_digest_eq(gh_stmt_text(st, 1),
	    digest)))
		err = GH_ERR_DENIED;
	if (err == GH_OK) {
		gh_strlcpy(out->id, gh_stmt_text(st, 0) ? gh_stmt_text(st, 0) :
		    "", sizeof out->id);
		gh_strlcpy(out->user_id, gh_stmt_text(st, 2) ?
		    gh_stmt_text(st, 2) : "", sizeof out->user_id);
		purpose = gh_stmt_text(st, 3);
		out->purpose = purpose != NULL && strcmp(purpose, "enrol") == 0 ?
		    GH_MFA_PURPOSE_ENROL : GH_MFA_PURPOSE_VERIFY;
		out->created_at = gh_stmt_int(st, 4);
		out->expires_at = gh_stmt_int(st, 5);
		out->failures = (int)gh_stmt_int(st, 6);
	}
	gh_stmt_free(st);
	gh_wipe(digest, sizeof digest);
	return err;
}

gh_err
gh_auth_mfa_pending_fail(struct gh_db *db, const char *id, bool *killed_out)
{
	gh_err err;

	*killed_out = false;
	err = gh_db_run(db, "UPDATE mfa_pending SET failures = failures + 1 "
	    "WHERE id = ?", "t", id);
	if (err == GH_OK)
		err = gh_db_run(db, "DELETE FROM mfa_pending WHERE id = ? AND "
		    "failures >= ?", "ti", id, (int64_t)GH_MFA_PENDING_MAX_FAILS);
	if (err == GH_OK)
		*killed_out = gh_db_changes(db) == 1;
	return err;
}

gh_err
gh_auth_mfa_pending_delete(struct gh_db *db, const char *id)
{
	return gh_db_run(db, "DELETE FROM mfa_pending WHERE id = ?", "t", id);
}

/* ---- policy ------------------------------------------------------------------- */

/*
 * The methods a policy may allow, by name. primary: a factor on its own
 * (a policy must allow one); recovery codes only back one up. A method
 * added here (say "approval") needs its flag in struct gh_mfa_policy.
 */
static const struct policy_method {
	const char *name;
	size_t flag;		/* offsetof the bool in struct gh_mfa_policy */
	bool primary;
} policy_methods[] = {
	{ "totp", offsetof(struct gh_mfa_policy, allow_totp), true },
	{ "webauthn", offsetof(struct gh_mfa_policy, allow_webauthn), true },
	{ "recovery", offsetof(struct gh_mfa_policy, allow_recovery), false },
	{ "approval", offsetof(struct gh_mfa_policy, allow_approval), false },
};
#define POLICY_METHODS (sizeof policy_methods / sizeof *policy_methods)

static bool *
method_flag(struct gh_mfa_policy *p, size_t i)
{
	return (bool *)((char *)p + policy_methods[i].flag);
}

static bool
method_allowed(const struct gh_mfa_policy *p, size_t i)
{
	return *(const bool *)((const char *)p + policy_methods[i].flag);
}

void
gh_auth_mfa_policy_default(struct gh_mfa_policy *p)
{
	memset(p, 0, sizeof *p);
	p->grace_days = 7;
	for (size_t i = 0; i < POLICY_METHODS; i++)
		*method_flag(p, i) = true;
}

/* Index of name in policy_methods, or POLICY_METHODS. */
static size_t
method_find(const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < POLICY_METHODS; i++)
		if (strcmp(policy_methods[i].name, name) == 0)
			break;
	return name != NULL ? i : POLICY_METHODS;
}

/* Reads "methods" into p. */
static gh_err
policy_methods_parse(json_t *v, struct gh_mfa_policy *p, char *msg,
    size_t msg_cap)
{
	bool seen[POLICY_METHODS] = { false }, primary = false;
	size_t i, k;
	json_t *m;

	if (!json_is_array(v) || json_array_size(v) == 0) {
		snprintf(msg, msg_cap, "methods: must be a non-empty array");
		return GH_ERR_INVALID;
	}
	json_array_foreach(v, i, m) {
		k = method_find(json_string_value(m));
		if (k == POLICY_METHODS) {
			snprintf(msg, msg_cap, "methods: each must be "
			    "\"totp\", \"webauthn\", \"recovery\" or \"approval\"");
			return GH_ERR_INVALID;
		}
		seen[k] = true;
		primary = primary || policy_methods[k].primary;
	}
	if (!primary) {
		snprintf(msg, msg_cap, "methods: must include \"totp\" or "
		    "\"webauthn\"");
		return GH_ERR_INVALID;
	}
	for (k = 0; k < POLICY_METHODS; k++)
		*method_flag(p, k) = seen[k];
	return GH_OK;
}

static const struct gh_mfa_group_rule *
group_rule_find(const struct gh_mfa_policy *p, const char *group_id)
{
	for (size_t i = 0; i < p->n_groups; i++)
		if (strcmp(p->groups[i].group_id, group_id) == 0)
			return &p->groups[i];
	return NULL;
}

/* required_groups: distinct ids; since (stored policies only) maps each id
 * to its ms. Replaces p's groups only when the whole list is good. */
static gh_err
groups_parse(json_t *v, json_t *since, struct gh_mfa_policy *p, char *msg,
    size_t msg_cap)
{
	struct gh_mfa_policy tmp;
	json_t *m;
	size_t i;

	if (!json_is_array(v) || json_array_size(v) > GH_MFA_GROUPS_MAX) {
		snprintf(msg, msg_cap, "required_groups: must be an array of "
		    "at most %d group ids", GH_MFA_GROUPS_MAX);
		return GH_ERR_INVALID;
	}
	tmp.n_groups = 0;
	json_array_foreach(v, i, m) {
		const char *id = json_string_value(m);
		json_t *t;

		if (id == NULL || !gh_id_valid(id)) {
			snprintf(msg, msg_cap, "required_groups: each must be "
			    "a group id");
			return GH_ERR_INVALID;
		}
		if (group_rule_find(&tmp, id) != NULL) {
			snprintf(msg, msg_cap, "required_groups: %s appears "
			    "twice", id);
			return GH_ERR_INVALID;
		}
		gh_strlcpy(tmp.groups[tmp.n_groups].group_id, id,
		    sizeof tmp.groups[0].group_id);
		t = json_object_get(since, id);
		tmp.groups[tmp.n_groups].since = json_is_integer(t) ?
		    json_integer_value(t) : 0;
		tmp.n_groups++;
	}
	memcpy(p->groups, tmp.groups, tmp.n_groups * sizeof tmp.groups[0]);
	p->n_groups = tmp.n_groups;
	return GH_OK;
}

gh_err
gh_auth_mfa_policy_parse(json_t *j, bool from_client, struct gh_mfa_policy *p,
    char *msg, size_t msg_cap)
{
	json_t *v;
	gh_err err;

	msg[0] = '\0';
	if (!json_is_object(j)) {
		snprintf(msg, msg_cap, "the policy must be an object");
		return GH_ERR_INVALID;
	}
	if ((v = json_object_get(j, "required")) != NULL) {
		if (!json_is_boolean(v)) {
			snprintf(msg, msg_cap, "required: must be a boolean");
			return GH_ERR_INVALID;
		}
		p->required = json_is_true(v);
	}
	if ((v = json_object_get(j, "grace_days")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 365) {
			snprintf(msg, msg_cap, "grace_days: must be an integer "
			    "from 0 to 365");
			return GH_ERR_INVALID;
		}
		p->grace_days = (int)json_integer_value(v);
	}
	if ((v = json_object_get(j, "remember_device_days")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > GH_MFA_REMEMBER_DAYS_MAX) {
			snprintf(msg, msg_cap, "remember_device_days: must be "
			    "an integer from 0 to %d",
			    GH_MFA_REMEMBER_DAYS_MAX);
			return GH_ERR_INVALID;
		}
		p->remember_device_days = (int)json_integer_value(v);
	}
	if ((v = json_object_get(j, "methods")) != NULL) {
		err = policy_methods_parse(v, p, msg, msg_cap);
		if (err != GH_OK)
			return err;
		/* A row stored before WebAuthn and approval were policy
		 * methods (it has no remember_device_days) never meant to
		 * forbid them. */
		if (!from_client && json_object_get(j,
		    "remember_device_days") == NULL)
			p->allow_webauthn = p->allow_approval = true;
	}
	if ((v = json_object_get(j, "required_groups")) != NULL &&
	    groups_parse(v, from_client ? NULL : json_object_get(j,
	    "required_groups_since_ms"), p, msg, msg_cap) != GH_OK)
		return GH_ERR_INVALID;
	if (!from_client && json_is_integer(json_object_get(j,
	    "required_since_ms")))
		p->required_since = json_integer_value(json_object_get(j,
		    "required_since_ms"));
	return GH_OK;
}

void
gh_auth_mfa_policy_stamp(const struct gh_mfa_policy *before,
    struct gh_mfa_policy *after, int64_t now_ms)
{
	if (after->required && !before->required)
		after->required_since = now_ms;
	else if (!after->required)
		after->required_since = 0;
	for (size_t i = 0; i < after->n_groups; i++) {
		const struct gh_mfa_group_rule *old;

		old = group_rule_find(before, after->groups[i].group_id);
		after->groups[i].since = old != NULL ? old->since : now_ms;
	}
}

bool
gh_auth_mfa_policy_drop_group(struct gh_mfa_policy *p, const char *group_id)
{
	for (size_t i = 0; i < p->n_groups; i++) {
		if (strcmp(p->groups[i].group_id, group_id) != 0)
			continue;
		memmove(&p->groups[i], &p->groups[i + 1],
		    (p->n_groups - i - 1) * sizeof p->groups[0]);
		p->n_groups--;
		return true;
	}
	return false;
}

/* "required_groups": [id], "required_groups_since": {id: RFC 3339} and
 * "required_groups_since_ms": {id: ms}, the last read back from storage. */
static gh_err
groups_json(const struct gh_mfa_policy *p, json_t *j)
{
	json_t *ids = json_array(), *since = json_object(),
	    *since_ms = json_object();
	char t[25];
	gh_err err = GH_OK;

	for (size_t i = 0; i < p->n_groups && err == GH_OK; i++) {
		const struct gh_mfa_group_rule *g = &p->groups[i];

		gh_time_rfc3339(g->since, t);
		if (json_array_append_new(ids, json_string(g->group_id)) != 0 ||
		    json_object_set_new(since, g->group_id,
		    json_string(t)) != 0 ||
		    json_object_set_new(since_ms, g->group_id,
		    json_integer(g->since)) != 0)
			err = GH_ERR_NOMEM;
	}
	if (err == GH_OK && (json_object_set_new(j, "required_groups",
	    ids) != 0 || json_object_set_new(j, "required_groups_since",
	    since) != 0 || json_object_set_new(j, "required_groups_since_ms",
	    since_ms) != 0))
		return GH_ERR_NOMEM;
	if (err != GH_OK) {
		json_decref(ids);
		json_decref(since);
		json_decref(since_ms);
	}
	return err;
}

json_t *
gh_auth_mfa_policy_json(const struct gh_mfa_policy *p)
{
	json_t *j, *methods;
	char since[25];

	methods = json_array();
	for (size_t i = 0; methods != NULL && i < POLICY_METHODS; i++)
		if (method_allowed(p, i))
			json_array_append_new(methods,
			    json_string(policy_methods[i].name));
	j = json_pack("{s:b, s:i, s:o, s:i}", "required", p->required,
	    "grace_days", p->grace_days, "methods", methods,
	    "remember_device_days", p->remember_device_days);
	if (j == NULL)
		return NULL;
	if (p->required_since > 0) {
		gh_time_rfc3339(p->required_since, since);
		json_object_set_new(j, "required_since", json_string(since));
		json_object_set_new(j, "required_since_ms",
		    json_integer(p->required_since));
	} else {
		json_object_set_new(j, "required_since", json_null());
	}
	if (groups_json(p, j) != GH_OK) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/*
 * When the required groups apply to user_id: *start_out the earliest
 * max(group since, membership added_at) over the user's effective
 * memberships of those groups, *hit_out whether there is one. Effective
 * membership: the groups the user was added to and their parents (groups
 * nest one level; see src/identity).
 */
static gh_err
group_rule_start(struct gh_db *db, const struct gh_mfa_policy *pol,
    const char *user_id, int64_t *start_out, bool *hit_out)
{
	const struct gh_mfa_group_rule *rule;
	struct gh_stmt *st = NULL;
	gh_err err;
	bool row;

	*hit_out = false;
	*start_out = 0;
	err = gh_db_prepare(db, "SELECT m.group_id, m.added_at FROM "
	    "group_members m WHERE m.user_id = ? UNION ALL SELECT g.parent_id, "
	    "m.added_at FROM group_members m JOIN groups g ON g.id = "
	    "m.group_id WHERE m.user_id = ? AND g.parent_id IS NOT NULL", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "tt", user_id, user_id);
	while (err == GH_OK) {
		int64_t start;

		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		rule = group_rule_find(pol, gh_stmt_text(st, 0));
		if (rule == NULL)
			continue;
		start = rule->since > gh_stmt_int(st, 1) ? rule->since :
		    gh_stmt_int(st, 1);
		if (!*hit_out || start < *start_out)
			*start_out = start;
		*hit_out = true;
	}
	gh_stmt_free(st);
	return err;
}

gh_err
gh_auth_mfa_need(struct gh_db *db, const struct gh_mfa_policy *pol,
    const char *user_id, int64_t now_ms, enum gh_mfa_need *out)
{
	struct gh_mfa_factors f;
	int64_t grace_end, start, wa = 0;
	bool hit = false;
	gh_err err;

	*out = GH_MFA_NEED_NONE;
	err = gh_auth_mfa_factors(db, user_id, &f);
	if (err == GH_OK && !f.totp)	/* a passkey or security key counts */
		err = gh_auth_webauthn_cred_count(db, user_id, &wa);
	if (err != GH_OK)
		return err;
	if (f.totp || wa > 0) {
		*out = GH_MFA_NEED_VERIFY;
		return GH_OK;
	}
	if (pol->required) {
		start = pol->required_since;
	} else if (pol->n_groups > 0) {
		err = group_rule_start(db, pol, user_id, &start, &hit);
		if (err != GH_OK || !hit)
			return err;
	} else {
		return GH_OK;
	}
	grace_end = start + (int64_t)pol->grace_days * 86400000;
	*out = now_ms < grace_end ? GH_MFA_NEED_ENROL_GRACE :
	    GH_MFA_NEED_ENROL_NOW;
	return GH_OK;
}
