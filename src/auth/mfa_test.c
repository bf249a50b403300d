/*
 * mfa_test.c: unit tests for TOTP (RFC 6238 vectors, the window, replay
 * refusal, code shape), seed encryption through a file-provider kms,
 * recovery codes, pending sign-ins, the lockout and the MFA policy. Runs
 * against a real tenant database and key store in a temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/auth_int.h"
#include "kms/kms.h"
#include "store/testing.h"

#define TEST_ORG GH_TEST_ORG
#define TEST_USER GH_TEST_USER
#define OTHER_USER GH_TEST_OTHER_USER
#define STEP_MS (GH_MFA_TOTP_STEP_S * 1000LL)

/* The tenant, and a file-provider kms with keys for TEST_ORG. */
struct fixture {
	struct gh_test_tenant *t;
	struct gh_db *db;	/* t->db */
	struct gh_kms *kms;
};

static void
insert_user(struct gh_db *db, const char *id, const char *name)
{
	assert_int_equal(gh_test_user_insert(db, id, name, "member", NULL),
	    GH_OK);
}

static gh_err
kms_open(struct fixture *f)
{
	char master[128], keystore[128], err[256] = "";
	struct gh_kms_config cfg = { .provider = "file",
		.master_key_file = master, .key_store_file = keystore };

	snprintf(master, sizeof master, "%s/master.key", f->t->dir);
	snprintf(keystore, sizeof keystore, "%s/keys.db", f->t->dir);
	if (gh_kms_create(&cfg, err, sizeof err) != GH_OK ||
	    gh_kms_open(&cfg, &f->kms, err, sizeof err) != GH_OK ||
	    gh_kms_org_create(f->kms, TEST_ORG) != GH_OK) {
		fprintf(stderr, "kms: %s\n", err);
		return GH_ERR_CRYPTO;
	}
	return GH_OK;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	if (f == NULL)
		return 0;
	gh_kms_free(f->kms);
	gh_test_tenant_free(f->t);
	free(f);
	return 0;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	void *t = NULL;

	*state = f;
	if (f == NULL || gh_test_tenant_setup_users(&t) != 0) {
		free(f);
		*state = NULL;
		return -1;
	}
	f->t = t;
	f->db = f->t->db;
	if (kms_open(f) != GH_OK) {
		teardown(state);
		return -1;
	}
	return 0;
}

/* Decodes a base32 seed (no padding) into out; returns its length. */
static size_t
b32_decode(const char *s, uint8_t *out)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0;

	for (; *s != '\0'; s++) {
		const char *p = strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", *s);

		assert_non_null(p);
		acc = (acc << 5) | (uint32_t)(p - "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
		bits += 5;
		if (bits >= 8) {
			out[n++] = (uint8_t)(acc >> (bits - 8));
			bits -= 8;
		}
	}
	return n;
}

/* Enrols and confirms TOTP for user at now_ms; returns the seed. */
static void
enrol(struct fixture *f, const char *user, int64_t now_ms,
    uint8_t seed[static GH_MFA_SEED_LEN])
{
	struct gh_mfa_enrolment e;
	char code[9];

	assert_int_equal(gh_auth_totp_begin(f->db, f->kms, TEST_ORG, user,
	    "Acme Corp", "alice@x", &e), GH_OK);
	assert_int_equal(b32_decode(e.secret, seed), GH_MFA_SEED_LEN);
	assert_int_equal(gh_auth_totp_code(seed, GH_MFA_SEED_LEN,
	    now_ms / 1000, 6, code), GH_OK);
	assert_int_equal(gh_auth_totp_confirm(f->db, f->kms, TEST_ORG, user,
	    code, now_ms), GH_OK);
	gh_auth_mfa_enrolment_free(&e);
}

static void
test_totp_matches_the_rfc_6238_sha1_vectors(void **state)
{
	static const struct { int64_t t; const char *code; } v[] = {
		{ 59, "94287082" }, { 1111111109, "07081804" },
		{ 1111111111, "14050471" }, { 1234567890, "89005924" },
		{ 2000000000, "69279037" }, { 20000000000, "65353130" },
	};
	const uint8_t *key = (const uint8_t *)"12345678901234567890";
	char out[9];

	(void)state;
	for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
		assert_int_equal(gh_auth_totp_code(key, 20, v[i].t, 8, out),
		    GH_OK);
		assert_string_equal(out, v[i].code);
	}
	assert_int_equal(gh_auth_totp_code(key, 20, 59, 6, out), GH_OK);
	assert_string_equal(out, "287082");
	assert_int_equal(gh_auth_totp_code(key, 20, 59, 5, out),
	    GH_ERR_INVALID);
}

static void
test_totp_refuses_codes_of_the_wrong_shape(void **state)
{
	(void)state;
	assert_true(gh_auth_totp_code_shape_ok("012345"));
	assert_false(gh_auth_totp_code_shape_ok(NULL));
	assert_false(gh_auth_totp_code_shape_ok(""));
	assert_false(gh_auth_totp_code_shape_ok("12345"));
	assert_false(gh_auth_totp_code_shape_ok("1234567"));
	assert_false(gh_auth_totp_code_shape_ok("12345a"));
	assert_false(gh_auth_totp_code_shape_ok(" 12345"));
	assert_false(gh_auth_totp_code_shape_ok("１２３４５６"));
}

static void
test_enrolment_gives_uri_qr_and_an_encrypted_seed(void **state)
{
	struct fixture *f = *state;
	struct gh_mfa_enrolment e;
	struct gh_stmt *st = NULL;
	uint8_t seed[GH_MFA_SEED_LEN];
	const uint8_t *ct;
	size_t ct_len = 0;
	char code[9];
	bool row;

	assert_int_equal(gh_auth_totp_begin(f->db, f->kms, TEST_ORG, TEST_USER,
	    "Acme Corp", "alice", &e), GH_OK);
	assert_int_equal(strlen(e.secret), GH_MFA_SECRET_B32_LEN);
	assert_non_null(strstr(e.otpauth_uri, "otpauth://totp/Acme%20Corp:"
	    "alice?secret="));
	assert_non_null(strstr(e.otpauth_uri, "&issuer=Acme%20Corp&algorithm="
	    "SHA1&digits=6&period=30"));
	assert_non_null(strstr(e.otpauth_uri, e.secret));
	assert_true(strncmp(e.qr_svg, "<svg ", 5) == 0);
	assert_non_null(strstr(e.qr_svg, "</svg>"));
	assert_int_equal(b32_decode(e.secret, seed), GH_MFA_SEED_LEN);

	/* The stored seed is a kms ciphertext, not the seed. */
	assert_int_equal(gh_db_prepare(f->db, "SELECT seed_ct, key_version "
	    "FROM mfa_totp WHERE user_id = ?", &st), GH_OK);
	assert_int_equal(gh_stmt_bind(st, "t", TEST_USER), GH_OK);
	assert_int_equal(gh_stmt_step(st, &row), GH_OK);
	assert_true(row);
	ct = gh_stmt_blob(st, 0, &ct_len);
	assert_int_equal(ct_len, GH_MFA_SEED_LEN + GH_KMS_OVERHEAD);
	assert_null(memmem(ct, ct_len, seed, 8));
	assert_int_equal(gh_stmt_int(st, 1), 1);
	gh_stmt_free(st);

	/* Not confirmed: sign-in does not see it; a wrong code does not
	 * confirm; the right one does. */
	assert_int_equal(gh_auth_totp_verify(f->db, f->kms, TEST_ORG,
	    TEST_USER, "000000", gh_now_ms(), &row), GH_ERR_NOTFOUND);
	assert_int_equal(gh_auth_totp_code(seed, sizeof seed,
	    gh_now_ms() / 1000 + 600, 6, code), GH_OK);
	assert_int_equal(gh_auth_totp_confirm(f->db, f->kms, TEST_ORG,
	    TEST_USER, code, gh_now_ms()), GH_ERR_DENIED);
	assert_int_equal(gh_auth_totp_confirm(f->db, f->kms, TEST_ORG,
	    TEST_USER, "12345", gh_now_ms()), GH_ERR_INVALID);
	assert_int_equal(gh_auth_totp_code(seed, sizeof seed,
	    gh_now_ms() / 1000, 6, code), GH_OK);
	assert_int_equal(gh_auth_totp_confirm(f->db, f->kms, TEST_ORG,
	    TEST_USER, code, gh_now_ms()), GH_OK);
	gh_auth_mfa_enrolment_free(&e);
	/* A second enrolment is refused while one is confirmed. */
	assert_int_equal(gh_auth_totp_begin(f->db, f->kms, TEST_ORG, TEST_USER,
	    "Acme Corp", "alice", &e), GH_ERR_CONFLICT);
	gh_wipe(seed, sizeof seed);
}

static void
test_seed_bound_to_another_user_does_not_decrypt(void **state)
{
	struct fixture *f = *state;
	uint8_t seed[GH_MFA_SEED_LEN];
	int64_t now = 1700000000000LL;
	char code[9];
	bool replay;

	enrol(f, TEST_USER, now, seed);
	/* Move alice's ciphertext to bob: the AAD names alice. */
	assert_int_equal(gh_db_run(f->db, "INSERT INTO mfa_totp (user_id, "
	    "seed_ct, key_version, confirmed, last_counter, created_at) SELECT "
	    "?, seed_ct, key_version, 1, -1, 0 FROM mfa_totp WHERE user_id = ?",
	    "tt", OTHER_USER, TEST_USER), GH_OK);
	assert_int_equal(gh_auth_totp_code(seed, sizeof seed,
	    now / 1000 + 30, 6, code), GH_OK);
	assert_int_equal(gh_auth_totp_verify(f->db, f->kms, TEST_ORG,
	    OTHER_USER, code, now + STEP_MS, &replay), GH_ERR_CRYPTO);
	gh_wipe(seed, sizeof seed);
}

static void
test_totp_rejects_reused_code_and_accepts_one_step_of_drift(void **state)
{
	struct fixture *f = *state;
	uint8_t seed[GH_MFA_SEED_LEN];
	int64_t now = 1700000000000LL;
	char code[9];
	bool replay;

	enrol(f, TEST_USER, now, seed);
	/* The confirmation's code is used already. */
	assert_int_equal(gh_auth_totp_code(seed, sizeof seed, now / 1000, 6,
	    code), GH_OK);
	assert_int_equal(gh_auth_totp_verify(f->db, f->kms, TEST_ORG,
	    TEST_USER, code, now, &replay), GH_ERR_DENIED);
	assert_true(replay);
	/* The next step's code, one step early: accepted once. */
	assert_int_equal(gh_auth_totp_code(seed, sizeof seed,
	    now / 1000 + 30, 6, code), GH_OK);
	assert_int_equal(gh_auth_totp_verify(f->db, f->kms, TEST_ORG,
	    TEST_USER, code, now, &replay), GH_OK);
	assert_false(replay);
	assert_int_equal(gh_auth_totp_verify(f->db, f->kms, TEST_ORG,
	    TEST_USER, code, now + STEP_MS, &replay), GH_ERR_DENIED);
	assert_true(replay);
	/* Two steps away is outside the window. */
	assert_int_equal(gh_auth_totp_code(seed, sizeof seed,
	    now / 1000 + 120, 6, code), GH_OK);
	assert_int_equal(gh_auth_totp_verify(f->db, f->kms, TEST_ORG,
	    TEST_USER, code, now + STEP_MS, &replay), GH_ERR_DENIED);
	assert_false(replay);
	/* One step late: accepted. */
	assert_int_equal(gh_auth_totp_code(seed, sizeof seed,
	    now / 1000 + 60, 6, code), GH_OK);
	assert_int_equal(gh_auth_totp_verify(f->db, f->kms, TEST_ORG,
	    TEST_USER, code, now + 3 * STEP_MS, &replay), GH_OK);
	/* An older step, though within the window, is a replay. */
	assert_int_equal(gh_auth_totp_code(seed, sizeof seed,
	    now / 1000 + 30, 6, code), GH_OK);
	assert_int_equal(gh_auth_totp_verify(f->db, f->kms, TEST_ORG,
	    TEST_USER, code, now + 2 * STEP_MS, &replay), GH_ERR_DENIED);
	assert_true(replay);
	assert_int_equal(gh_auth_totp_verify(f->db, f->kms, TEST_ORG,
	    TEST_USER, "abcdef", now, &replay), GH_ERR_INVALID);
	assert_int_equal(gh_auth_totp_remove(f->db, TEST_USER), GH_OK);
	assert_int_equal(gh_auth_totp_remove(f->db, TEST_USER),
	    GH_ERR_NOTFOUND);
	gh_wipe(seed, sizeof seed);
}

static void
test_recovery_codes_are_single_use_and_regeneration_replaces_them(void **state)
{
	struct fixture *f = *state;
	char codes[GH_MFA_RECOVERY_COUNT][GH_MFA_RECOVERY_LEN + 1];
	char old[GH_MFA_RECOVERY_LEN + 1], lower[GH_MFA_RECOVERY_LEN + 1];
	struct gh_mfa_factors fac;
	int64_t now = gh_now_ms();

	assert_int_equal(gh_auth_recovery_generate(f->db, TEST_USER, codes),
	    GH_OK);
	for (int i = 0; i < GH_MFA_RECOVERY_COUNT; i++) {
		assert_int_equal(strlen(codes[i]), GH_MFA_RECOVERY_LEN);
		assert_int_equal(codes[i][4], '-');
		for (int j = 0; j < i; j++)
			assert_string_not_equal(codes[i], codes[j]);
	}
	assert_int_equal(gh_auth_mfa_factors(f->db, TEST_USER, &fac), GH_OK);
	assert_int_equal(fac.recovery_remaining, 10);
	/* Lower case and no dashes are accepted; the second use is not. */
	for (size_t i = 0, j = 0; i <= strlen(codes[0]); i++)
		if (codes[0][i] != '-')
			lower[j++] = (char)(codes[0][i] >= 'A' &&
			    codes[0][i] <= 'Z' ? codes[0][i] + 32 : codes[0][i]);
	assert_int_equal(gh_auth_recovery_use(f->db, TEST_USER, lower, now),
	    GH_OK);
	assert_int_equal(gh_auth_recovery_use(f->db, TEST_USER, codes[0], now),
	    GH_ERR_DENIED);
	/* Not another user's. */
	assert_int_equal(gh_auth_recovery_use(f->db, OTHER_USER, codes[1], now),
	    GH_ERR_DENIED);
	assert_int_equal(gh_auth_recovery_use(f->db, TEST_USER, "ABCD-EFGH",
	    now), GH_ERR_INVALID);
	assert_int_equal(gh_auth_recovery_use(f->db, TEST_USER,
	    "ABCD-EFGH-IJKL-MNO1", now), GH_ERR_INVALID);
	assert_int_equal(gh_auth_mfa_factors(f->db, TEST_USER, &fac), GH_OK);
	assert_int_equal(fac.recovery_remaining, 9);
	strcpy(old, codes[1]);
	assert_int_equal(gh_auth_recovery_generate(f->db, TEST_USER, codes),
	    GH_OK);
	assert_int_equal(gh_auth_recovery_use(f->db, TEST_USER, old, now),
	    GH_ERR_DENIED);
	assert_int_equal(gh_auth_recovery_use(f->db, TEST_USER, codes[1], now),
	    GH_OK);
	gh_wipe(codes, sizeof codes);
}

static void
test_pending_sign_in_dies_after_five_wrong_codes(void **state)
{
	struct fixture *f = *state;
	char token[GH_TOKEN_LEN + 1];
	struct gh_mfa_pending p, got;
	bool killed = false;

	assert_int_equal(gh_auth_mfa_pending_create(f->db, TEST_USER,
	    GH_MFA_PURPOSE_VERIFY, "127.0.0.1", "ua", token, &p), GH_OK);
	assert_int_equal(gh_auth_mfa_pending_check(f->db, token, &got), GH_OK);
	assert_string_equal(got.user_id, TEST_USER);
	assert_int_equal(got.purpose, GH_MFA_PURPOSE_VERIFY);
	assert_int_equal(gh_auth_mfa_pending_check(f->db, "x", &got),
	    GH_ERR_DENIED);
	for (int i = 0; i < GH_MFA_PENDING_MAX_FAILS; i++) {
		assert_false(killed);
		assert_int_equal(gh_auth_mfa_pending_fail(f->db, p.id, &killed),
		    GH_OK);
	}
	assert_true(killed);
	assert_int_equal(gh_auth_mfa_pending_check(f->db, token, &got),
	    GH_ERR_DENIED);
	/* Expired ones are refused. */
	assert_int_equal(gh_auth_mfa_pending_create(f->db, TEST_USER,
	    GH_MFA_PURPOSE_ENROL, "127.0.0.1", "ua", token, &p), GH_OK);
	assert_int_equal(gh_db_run(f->db, "UPDATE mfa_pending SET expires_at "
	    "= 1 WHERE id = ?", "t", p.id), GH_OK);
	assert_int_equal(gh_auth_mfa_pending_check(f->db, token, &got),
	    GH_ERR_DENIED);
}

static void
test_ten_failures_lock_mfa_for_fifteen_minutes(void **state)
{
	struct fixture *f = *state;
	int64_t now = 1700000000000LL, until = 0;
	bool locked = false;

	for (int i = 0; i < GH_MFA_LOCK_FAILS - 1; i++) {
		assert_int_equal(gh_auth_mfa_fail(f->db, TEST_USER, now,
		    &locked), GH_OK);
		assert_false(locked);
	}
	assert_int_equal(gh_auth_mfa_lock_check(f->db, TEST_USER, now,
	    &until), GH_OK);
	assert_int_equal(gh_auth_mfa_fail(f->db, TEST_USER, now, &locked),
	    GH_OK);
	assert_true(locked);
	assert_int_equal(gh_auth_mfa_lock_check(f->db, TEST_USER, now + 1000,
	    &until), GH_ERR_LIMIT);
	assert_int_equal(until, now + GH_MFA_LOCK_MS);
	assert_int_equal(gh_auth_mfa_lock_check(f->db, OTHER_USER, now,
	    &until), GH_OK);
	assert_int_equal(gh_auth_mfa_lock_check(f->db, TEST_USER,
	    now + GH_MFA_LOCK_MS, &until), GH_OK);
	/* After the lock, a failure starts a new count. */
	assert_int_equal(gh_auth_mfa_fail(f->db, TEST_USER,
	    now + GH_MFA_LOCK_MS + 1, &locked), GH_OK);
	assert_false(locked);
	assert_int_equal(gh_auth_mfa_succeed(f->db, TEST_USER), GH_OK);
}

static void
test_policy_parses_and_decides_who_needs_mfa(void **state)
{
	struct fixture *f = *state;
	uint8_t seed[GH_MFA_SEED_LEN];
	struct gh_mfa_policy pol;
	enum gh_mfa_need need;
	int64_t now = gh_now_ms();
	char msg[128];
	json_t *j;

	gh_auth_mfa_policy_default(&pol);
	j = json_loads("{\"required\": true, \"grace_days\": 3, \"methods\": "
	    "[\"totp\"]}", 0, NULL);
	assert_int_equal(gh_auth_mfa_policy_parse(j, true, &pol, msg,
	    sizeof msg), GH_OK);
	json_decref(j);
	assert_true(pol.required);
	assert_false(pol.allow_recovery);
	j = json_loads("{\"grace_days\": -1}", 0, NULL);
	assert_int_equal(gh_auth_mfa_policy_parse(j, true, &pol, msg,
	    sizeof msg), GH_ERR_INVALID);
	json_decref(j);
	j = json_loads("{\"methods\": [\"sms\"]}", 0, NULL);
	assert_int_equal(gh_auth_mfa_policy_parse(j, true, &pol, msg,
	    sizeof msg), GH_ERR_INVALID);
	json_decref(j);

	pol.required_since = now;
	assert_int_equal(gh_auth_mfa_need(f->db, &pol, TEST_USER, now, &need),
	    GH_OK);
	assert_int_equal(need, GH_MFA_NEED_ENROL_GRACE);
	assert_int_equal(gh_auth_mfa_need(f->db, &pol, TEST_USER,
	    now + 4 * 86400000LL, &need), GH_OK);
	assert_int_equal(need, GH_MFA_NEED_ENROL_NOW);
	pol.required = false;
	assert_int_equal(gh_auth_mfa_need(f->db, &pol, TEST_USER, now, &need),
	    GH_OK);
	assert_int_equal(need, GH_MFA_NEED_NONE);
	enrol(f, TEST_USER, now, seed);
	assert_int_equal(gh_auth_mfa_need(f->db, &pol, TEST_USER, now, &need),
	    GH_OK);
	assert_int_equal(need, GH_MFA_NEED_VERIFY);
	assert_int_equal(gh_auth_mfa_reset(f->db, TEST_USER), GH_OK);
	assert_int_equal(gh_auth_mfa_need(f->db, &pol, TEST_USER, now, &need),
	    GH_OK);
	assert_int_equal(need, GH_MFA_NEED_NONE);
	gh_wipe(seed, sizeof seed);
}

#define GROUP_A "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0"
#define GROUP_A_CHILD "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0"
#define GROUP_B "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"

static void
insert_group(struct gh_db *db, const char *id, const char *parent)
{
	assert_int_equal(gh_db_run(db, "INSERT INTO groups (id, name, "
	    "name_key, parent_id, created_at, updated_at) VALUES (?, ?, ?, ?, "
	    "0, 0)", "tttt", id, id, id, parent), GH_OK);
}

static void
join(struct gh_db *db, const char *group, const char *user, int64_t at)
{
	assert_int_equal(gh_db_run(db, "INSERT INTO group_members (group_id, "
	    "user_id, added_at) VALUES (?, ?, ?)", "tti", group, user, at),
	    GH_OK);
}

static enum gh_mfa_need
need_of(struct fixture *f, const struct gh_mfa_policy *pol, const char *user,
    int64_t now)
{
	enum gh_mfa_need need;

	assert_int_equal(gh_auth_mfa_need(f->db, pol, user, now, &need), GH_OK);
	return need;
}

static void
test_policy_requires_mfa_for_effective_members_of_groups(void **state)
{
	struct fixture *f = *state;
	struct gh_mfa_policy before, pol;
	const int64_t day = 86400000LL, t0 = 1000 * day;
	char msg[128];
	json_t *j;

	insert_user(f->db, "11111111111111111111111111111111", "in-a");
	insert_user(f->db, "22222222222222222222222222222222", "in-child");
	insert_user(f->db, "33333333333333333333333333333333", "in-b");
	insert_group(f->db, GROUP_A, NULL);
	insert_group(f->db, GROUP_A_CHILD, GROUP_A);
	insert_group(f->db, GROUP_B, NULL);
	join(f->db, GROUP_A, "11111111111111111111111111111111", t0 - day);
	/* Joined after the rule: the grace counts from the joining. */
	join(f->db, GROUP_A_CHILD, "22222222222222222222222222222222",
	    t0 + 5 * day);
	join(f->db, GROUP_B, "33333333333333333333333333333333", t0 - day);

	gh_auth_mfa_policy_default(&before);
	pol = before;
	j = json_loads("{\"grace_days\": 2, \"required_groups\": [\""
	    GROUP_A "\"]}", 0, NULL);
	assert_int_equal(gh_auth_mfa_policy_parse(j, true, &pol, msg,
	    sizeof msg), GH_OK);
	json_decref(j);
	gh_auth_mfa_policy_stamp(&before, &pol, t0);
	assert_int_equal(pol.n_groups, 1);
	assert_true(pol.groups[0].since == t0);

	assert_int_equal(need_of(f, &pol, "11111111111111111111111111111111",
	    t0 + day), GH_MFA_NEED_ENROL_GRACE);
	assert_int_equal(need_of(f, &pol, "11111111111111111111111111111111",
	    t0 + 2 * day), GH_MFA_NEED_ENROL_NOW);
	assert_int_equal(need_of(f, &pol, "22222222222222222222222222222222",
	    t0 + 6 * day), GH_MFA_NEED_ENROL_GRACE);
	assert_int_equal(need_of(f, &pol, "22222222222222222222222222222222",
	    t0 + 7 * day), GH_MFA_NEED_ENROL_NOW);
	assert_int_equal(need_of(f, &pol, "33333333333333333333333333333333",
	    t0 + 9 * day), GH_MFA_NEED_NONE);
	assert_int_equal(need_of(f, &pol, TEST_USER, t0 + 9 * day),
	    GH_MFA_NEED_NONE);

	/* Stored and read back, the times survive; a later change keeps
	 * the time of a group that stays and stamps one that is new. */
	j = gh_auth_mfa_policy_json(&pol);
	gh_auth_mfa_policy_default(&before);
	assert_int_equal(gh_auth_mfa_policy_parse(j, false, &before, msg,
	    sizeof msg), GH_OK);
	json_decref(j);
	assert_true(before.groups[0].since == t0);
	pol = before;
	j = json_loads("{\"required_groups\": [\"" GROUP_A "\", \""
	    GROUP_B "\"]}", 0, NULL);
	assert_int_equal(gh_auth_mfa_policy_parse(j, true, &pol, msg,
	    sizeof msg), GH_OK);
	json_decref(j);
	gh_auth_mfa_policy_stamp(&before, &pol, t0 + 8 * day);
	assert_true(pol.groups[0].since == t0);
	assert_true(pol.groups[1].since == t0 + 8 * day);
	assert_int_equal(need_of(f, &pol, "33333333333333333333333333333333",
	    t0 + 9 * day), GH_MFA_NEED_ENROL_GRACE);

	/* Dropping a group lifts its rule; the org-wide rule wins. */
	assert_true(gh_auth_mfa_policy_drop_group(&pol, GROUP_A));
	assert_false(gh_auth_mfa_policy_drop_group(&pol, GROUP_A));
	assert_int_equal(need_of(f, &pol, "11111111111111111111111111111111",
	    t0 + 9 * day), GH_MFA_NEED_NONE);
	pol.required = true;
	pol.required_since = t0 + 9 * day;
	assert_int_equal(need_of(f, &pol, "11111111111111111111111111111111",
	    t0 + 9 * day), GH_MFA_NEED_ENROL_GRACE);

	/* Malformed lists are refused. */
	j = json_loads("{\"required_groups\": [\"" GROUP_A "\", \""
	    GROUP_A "\"]}", 0, NULL);
	assert_int_equal(gh_auth_mfa_policy_parse(j, true, &pol, msg,
	    sizeof msg), GH_ERR_INVALID);
	json_decref(j);
	j = json_loads("{\"required_groups\": [\"x\"]}", 0, NULL);
	assert_int_equal(gh_auth_mfa_policy_parse(j, true, &pol, msg,
	    sizeof msg), GH_ERR_INVALID);
	json_decref(j);
	j = json_loads("{\"required_groups\": \"" GROUP_A "\"}", 0, NULL);
	assert_int_equal(gh_auth_mfa_policy_parse(j, true, &pol, msg,
	    sizeof msg), GH_ERR_INVALID);
	json_decref(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_totp_matches_the_rfc_6238_sha1_vectors),
		cmocka_unit_test(test_totp_refuses_codes_of_the_wrong_shape),
		cmocka_unit_test_setup_teardown(
		    test_enrolment_gives_uri_qr_and_an_encrypted_seed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_seed_bound_to_another_user_does_not_decrypt, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_totp_rejects_reused_code_and_accepts_one_step_of_drift,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_recovery_codes_are_single_use_and_regeneration_replaces_them,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_pending_sign_in_dies_after_five_wrong_codes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_ten_failures_lock_mfa_for_fifteen_minutes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_policy_parses_and_decides_who_needs_mfa, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_policy_requires_mfa_for_effective_members_of_groups,
		    setup, teardown),
	};

	return cmocka_run_group_tests_name("auth_mfa", tests, NULL, NULL);
}
