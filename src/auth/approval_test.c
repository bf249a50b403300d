/*
 * approval_test.c: unit tests for sign-in approval from another device:
 * creation (number range, QR secret stored as a digest, one request per
 * pending sign-in), number matching (constant-time check, three wrong
 * numbers deny), denial, expiry, single use, another user's requests, and
 * the MFA mark of sessions. Runs against a real tenant database in a
 * temporary directory.
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
#include "store/testing.h"

#define TEST_USER GH_TEST_USER
#define OTHER_USER GH_TEST_OTHER_USER

static void
pending_new(struct gh_test_tenant *f, const char *user,
    struct gh_mfa_pending *p)
{
	char token[GH_TOKEN_LEN + 1];

	assert_int_equal(gh_auth_mfa_pending_create(f->db, user,
	    GH_MFA_PURPOSE_VERIFY, "192.0.2.7", "Test\001Agent", token, p),
	    GH_OK);
}

static void
ask(struct gh_test_tenant *f, const char *user, struct gh_approval *a,
    char code[static GH_TOKEN_LEN + 1])
{
	struct gh_mfa_pending p;

	pending_new(f, user, &p);
	assert_int_equal(gh_auth_approval_create(f->db, &p, GH_APPROVAL_TTL_MS,
	    "192.0.2.7", "Test\001Agent", code, a), GH_OK);
}

static int64_t
count_rows(struct gh_test_tenant *f)
{
	struct gh_stmt *st = NULL;
	int64_t n = -1;
	bool row;

	assert_int_equal(gh_db_prepare(f->db, "SELECT count(*) FROM "
	    "mfa_approvals", &st), GH_OK);
	assert_int_equal(gh_stmt_step(st, &row), GH_OK);
	n = gh_stmt_int(st, 0);
	gh_stmt_free(st);
	return n;
}

static void
test_create_gives_a_two_digit_number_and_a_hashed_qr_secret(void **state)
{
	struct gh_test_tenant *f = *state;
	char code[GH_TOKEN_LEN + 1], code2[GH_TOKEN_LEN + 1];
	struct gh_approval a, b, c;
	struct gh_mfa_pending p;
	struct gh_stmt *st = NULL;
	bool row, seen[100] = { false };
	int distinct = 0;

	ask(f, TEST_USER, &a, code);
	assert_true(a.number >= 10 && a.number <= 99);
	assert_int_equal(strlen(code), GH_TOKEN_LEN);
	assert_int_equal(a.state, GH_APPROVAL_PENDING);
	assert_true(a.expires_at - a.created_at == GH_APPROVAL_TTL_MS);
	/* Control characters of the agent are not stored. */
	assert_string_equal(a.user_agent, "Test?Agent");
	/* Only the digest is stored. */
	assert_int_equal(gh_db_prepare(f->db, "SELECT code_hash FROM "
	    "mfa_approvals WHERE id = ?", &st), GH_OK);
	assert_int_equal(gh_stmt_bind(st, "t", a.id), GH_OK);
	assert_int_equal(gh_stmt_step(st, &row), GH_OK);
	assert_true(row);
	assert_int_equal(strlen(gh_stmt_text(st, 0)), GH_TOKEN_HASH_LEN);
	assert_null(strstr(gh_stmt_text(st, 0), code));
	gh_stmt_free(st);

	assert_int_equal(gh_auth_approval_by_code(f->db, code, TEST_USER, &b),
	    GH_OK);
	assert_string_equal(b.id, a.id);
	assert_int_equal(b.number, a.number);
	assert_int_equal(gh_auth_approval_by_code(f->db, code, OTHER_USER,
	    &b), GH_ERR_NOTFOUND);
	assert_int_equal(gh_auth_approval_by_code(f->db, "short", TEST_USER,
	    &b), GH_ERR_NOTFOUND);
	assert_int_equal(gh_auth_approval_by_code(f->db, NULL, TEST_USER, &b),
	    GH_ERR_NOTFOUND);

	/* A second request of the same pending sign-in replaces the first. */
	assert_int_equal(gh_auth_approval_of_pending(f->db, a.pending_id, &b),
	    GH_OK);
	memset(&p, 0, sizeof p);
	gh_strlcpy(p.id, a.pending_id, sizeof p.id);
	gh_strlcpy(p.user_id, TEST_USER, sizeof p.user_id);
	assert_int_equal(gh_auth_approval_create(f->db, &p, GH_APPROVAL_TTL_MS,
	    "", "", code2, &c), GH_OK);
	assert_int_equal(count_rows(f), 1);
	assert_int_equal(gh_auth_approval_by_code(f->db, code, TEST_USER, &b),
	    GH_ERR_NOTFOUND);

	/* Numbers cover the range. */
	for (int i = 0; i < 200; i++) {
		ask(f, TEST_USER, &a, code);
		assert_true(a.number >= 10 && a.number <= 99);
		if (!seen[a.number]) {
			seen[a.number] = true;
			distinct++;
		}
	}
	assert_true(distinct > 40);
	gh_wipe(code, sizeof code);
	gh_wipe(code2, sizeof code2);
}

static void
test_create_refuses_misuse(void **state)
{
	struct gh_test_tenant *f = *state;
	char code[GH_TOKEN_LEN + 1];
	struct gh_mfa_pending p;
	struct gh_approval a;

	pending_new(f, TEST_USER, &p);
	assert_int_equal(gh_auth_approval_create(f->db, &p, 0, "", "", code,
	    &a), GH_ERR_INVALID);
	assert_int_equal(gh_auth_approval_create(f->db, &p, 3600 * 1000, "",
	    "", code, &a), GH_ERR_INVALID);
	assert_int_equal(gh_auth_approval_create(NULL, &p, 60000, "", "", code,
	    &a), GH_ERR_INVALID);
	assert_int_equal(gh_auth_approval_create(f->db, NULL, 60000, "", "",
	    code, &a), GH_ERR_INVALID);
	p.purpose = GH_MFA_PURPOSE_ENROL;
	assert_int_equal(gh_auth_approval_create(f->db, &p, 60000, "", "",
	    code, &a), GH_ERR_INVALID);
	assert_string_equal(code, "");
	assert_int_equal(count_rows(f), 0);
}

static void
test_right_number_approves_once(void **state)
{
	struct gh_test_tenant *f = *state;
	char code[GH_TOKEN_LEN + 1];
	struct gh_approval a, out;
	int64_t now = gh_now_ms();

	ask(f, TEST_USER, &a, code);
	assert_int_equal(gh_auth_approval_decide(f->db, a.id, OTHER_USER, true,
	    false, a.number, now, &out), GH_ERR_NOTFOUND);
	assert_int_equal(gh_auth_approval_decide(f->db, a.id, TEST_USER, true,
	    false, a.number, now, &out), GH_OK);
	assert_int_equal(out.state, GH_APPROVAL_APPROVED);
	assert_int_equal(gh_auth_approval_decide(f->db, a.id, TEST_USER, true,
	    false, a.number, now, &out), GH_ERR_CONFLICT);
	assert_int_equal(out.state, GH_APPROVAL_APPROVED);
	assert_int_equal(gh_auth_approval_decide(f->db, a.id, TEST_USER, false,
	    false, 0, now, &out), GH_ERR_CONFLICT);
	assert_int_equal(gh_auth_approval_of_pending(f->db, a.pending_id,
	    &out), GH_OK);
	assert_int_equal(out.state, GH_APPROVAL_APPROVED);
	/* Consumed with its sign-in. */
	assert_int_equal(gh_auth_mfa_pending_delete(f->db, a.pending_id),
	    GH_OK);
	assert_int_equal(gh_auth_approval_get(f->db, a.id, TEST_USER, &out),
	    GH_ERR_NOTFOUND);
}

static void
test_three_wrong_numbers_deny(void **state)
{
	struct gh_test_tenant *f = *state;
	char code[GH_TOKEN_LEN + 1];
	struct gh_approval a, out;
	int64_t now = gh_now_ms();
	int wrong[3];

	ask(f, TEST_USER, &a, code);
	wrong[0] = a.number == 10 ? 11 : 10;
	wrong[1] = 100 + a.number;	/* out of range: never equal */
	wrong[2] = a.number % 10 * 10 + a.number / 10 == a.number ?
	    wrong[0] : a.number % 10 * 10 + a.number / 10;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(gh_auth_approval_decide(f->db, a.id,
		    TEST_USER, true, false, wrong[i], now, &out),
		    GH_ERR_DENIED);
		assert_int_equal(out.state, GH_APPROVAL_PENDING);
		assert_int_equal(out.failures, i + 1);
	}
	assert_int_equal(gh_auth_approval_decide(f->db, a.id, TEST_USER, true,
	    false, wrong[2], now, &out), GH_ERR_DENIED);
	assert_int_equal(out.state, GH_APPROVAL_DENIED);
	assert_int_equal(gh_auth_approval_decide(f->db, a.id, TEST_USER, true,
	    false, a.number, now, &out), GH_ERR_CONFLICT);
	assert_int_equal(out.state, GH_APPROVAL_DENIED);
}

static void
test_qr_proof_needs_no_number(void **state)
{
	struct gh_test_tenant *f = *state;
	char code[GH_TOKEN_LEN + 1];
	struct gh_approval a, out;

	ask(f, TEST_USER, &a, code);
	assert_int_equal(gh_auth_approval_decide(f->db, a.id, TEST_USER, true,
	    true, 0, gh_now_ms(), &out), GH_OK);
	assert_int_equal(out.state, GH_APPROVAL_APPROVED);
}

static void
test_deny_and_expiry_end_a_request(void **state)
{
	struct gh_test_tenant *f = *state;
	char code[GH_TOKEN_LEN + 1];
	struct gh_approval a, b, out;
	struct gh_mfa_pending p;
	int64_t now = gh_now_ms();

	ask(f, TEST_USER, &a, code);
	ask(f, TEST_USER, &b, code);
	assert_int_equal(gh_auth_approval_list(f->db, TEST_USER, now, NULL,
	    NULL), GH_ERR_INVALID);
	assert_int_equal(gh_auth_approval_decide(f->db, a.id, TEST_USER, false,
	    false, 0, now, &out), GH_OK);
	assert_int_equal(out.state, GH_APPROVAL_DENIED);
	/* Past its expiry nothing can decide it. */
	assert_int_equal(gh_auth_approval_decide(f->db, b.id, TEST_USER, true,
	    false, b.number, b.expires_at, &out), GH_ERR_CONFLICT);
	assert_int_equal(out.state, GH_APPROVAL_EXPIRED);
	assert_string_equal(gh_auth_approval_state_str(out.state), "expired");
	/* A short-lived request, and one that never outlives its sign-in. */
	pending_new(f, TEST_USER, &p);
	p.expires_at = now + 500;
	assert_int_equal(gh_auth_approval_create(f->db, &p, 60000, "", "",
	    code, &a), GH_OK);
	assert_true(a.expires_at <= now + 500);
	assert_int_equal(gh_auth_approval_decide(f->db, a.id, TEST_USER, true,
	    false, a.number, now + 501, &out), GH_ERR_CONFLICT);
	assert_int_equal(out.state, GH_APPROVAL_EXPIRED);
}

static void
count_one(const struct gh_approval *a, void *arg)
{
	(void)a;
	(*(int *)arg)++;
}

static void
test_list_shows_only_the_users_undecided_live_requests(void **state)
{
	struct gh_test_tenant *f = *state;
	char code[GH_TOKEN_LEN + 1];
	struct gh_approval a, b, c, out;
	int64_t now = gh_now_ms();
	int n = 0;

	ask(f, TEST_USER, &a, code);
	ask(f, TEST_USER, &b, code);
	ask(f, OTHER_USER, &c, code);
	assert_int_equal(gh_auth_approval_list(f->db, TEST_USER, now,
	    count_one, &n), GH_OK);
	assert_int_equal(n, 2);
	assert_int_equal(gh_auth_approval_decide(f->db, a.id, TEST_USER, false,
	    false, 0, now, &out), GH_OK);
	n = 0;
	assert_int_equal(gh_auth_approval_list(f->db, TEST_USER, now,
	    count_one, &n), GH_OK);
	assert_int_equal(n, 1);
	n = 0;
	assert_int_equal(gh_auth_approval_list(f->db, TEST_USER,
	    b.expires_at, count_one, &n), GH_OK);
	assert_int_equal(n, 0);
}

static void
test_sessions_carry_their_mfa_mark(void **state)
{
	struct gh_test_tenant *f = *state;
	struct gh_session_limits lim = { 3600 * 1000, 600 * 1000 };
	char token[GH_TOKEN_LEN + 1];
	struct gh_session s, chk;
	bool live = true;

	assert_int_equal(gh_auth_session_create(f->db, TEST_USER, &lim,
	    "192.0.2.1", "ua", token, &s), GH_OK);
	assert_int_equal(s.mfa_at, 0);
	assert_int_equal(gh_auth_session_mfa_live(f->db, TEST_USER, &lim,
	    &live), GH_OK);
	assert_false(live);
	assert_int_equal(gh_auth_session_mark_mfa(f->db, s.id, 1234), GH_OK);
	assert_int_equal(gh_auth_session_check(f->db, token, &lim, &chk),
	    GH_OK);
	assert_int_equal(chk.mfa_at, 1234);
	assert_int_equal(gh_auth_session_mfa_live(f->db, TEST_USER, &lim,
	    &live), GH_OK);
	assert_true(live);
	assert_int_equal(gh_auth_session_mfa_live(f->db, OTHER_USER, &lim,
	    &live), GH_OK);
	assert_false(live);
	assert_int_equal(gh_auth_session_revoke(f->db, s.id, NULL), GH_OK);
	assert_int_equal(gh_auth_session_mfa_live(f->db, TEST_USER, &lim,
	    &live), GH_OK);
	assert_false(live);
	assert_int_equal(gh_auth_session_mark_mfa(f->db, s.id, 1),
	    GH_ERR_NOTFOUND);
	gh_wipe(token, sizeof token);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		GH_TEST_TENANT_USERS(
		  test_create_gives_a_two_digit_number_and_a_hashed_qr_secret),
		GH_TEST_TENANT_USERS(test_create_refuses_misuse),
		GH_TEST_TENANT_USERS(test_right_number_approves_once),
		GH_TEST_TENANT_USERS(test_three_wrong_numbers_deny),
		GH_TEST_TENANT_USERS(test_qr_proof_needs_no_number),
		GH_TEST_TENANT_USERS(test_deny_and_expiry_end_a_request),
		GH_TEST_TENANT_USERS(
		    test_list_shows_only_the_users_undecided_live_requests),
		GH_TEST_TENANT_USERS(test_sessions_carry_their_mfa_mark),
	};

	return cmocka_run_group_tests_name("auth_approval", tests, NULL, NULL);
}
