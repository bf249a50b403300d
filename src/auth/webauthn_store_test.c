/*
 * webauthn_store_test.c: unit tests for the WebAuthn store: challenges are
 * single-use, expire, keep their purpose and their user; the user handle
 * is stable; credentials are added, found, listed, renamed and removed
 * only by their owner; the counter moves only forward; a WebAuthn
 * credential makes gh_auth_mfa_need ask for a second factor. Runs against
 * a real tenant database in a temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/webauthn.h"
#include "store/testing.h"

#define TEST_USER GH_TEST_USER
#define OTHER_USER GH_TEST_OTHER_USER
#define NOW 1700000000000LL

static void
test_challenge_is_single_use(void **state)
{
	struct gh_test_tenant *f = *state;
	uint8_t c[GH_WA_CHALLENGE_LEN];

	assert_int_equal(gh_auth_webauthn_challenge_issue(f->db,
	    GH_WA_PURPOSE_AUTHENTICATE, NULL, NOW, c), GH_OK);
	assert_int_equal(gh_auth_webauthn_challenge_consume(f->db,
	    GH_WA_PURPOSE_AUTHENTICATE, NULL, c, sizeof c, NOW + 1), GH_OK);
	assert_int_equal(gh_auth_webauthn_challenge_consume(f->db,
	    GH_WA_PURPOSE_AUTHENTICATE, NULL, c, sizeof c, NOW + 2),
	    GH_ERR_DENIED);
}

static void
test_challenge_refuses_expiry_purpose_user_and_misuse(void **state)
{
	struct gh_test_tenant *f = *state;
	uint8_t c[GH_WA_CHALLENGE_LEN], d[GH_WA_CHALLENGE_LEN];

	assert_int_equal(gh_auth_webauthn_challenge_issue(f->db,
	    GH_WA_PURPOSE_REGISTER, TEST_USER, NOW, c), GH_OK);
	/* Expired. */
	assert_int_equal(gh_auth_webauthn_challenge_consume(f->db,
	    GH_WA_PURPOSE_REGISTER, TEST_USER, c, sizeof c,
	    NOW + GH_WA_CHALLENGE_TTL_MS), GH_ERR_DENIED);
	assert_int_equal(gh_auth_webauthn_challenge_issue(f->db,
	    GH_WA_PURPOSE_REGISTER, TEST_USER, NOW, d), GH_OK);
	/* Another purpose, another user, no user, a prefix, NULL. */
	assert_int_equal(gh_auth_webauthn_challenge_consume(f->db,
	    GH_WA_PURPOSE_AUTHENTICATE, TEST_USER, d, sizeof d, NOW),
	    GH_ERR_DENIED);
	assert_int_equal(gh_auth_webauthn_challenge_consume(f->db,
	    GH_WA_PURPOSE_REGISTER, OTHER_USER, d, sizeof d, NOW),
	    GH_ERR_DENIED);
	assert_int_equal(gh_auth_webauthn_challenge_consume(f->db,
	    GH_WA_PURPOSE_REGISTER, NULL, d, sizeof d, NOW), GH_ERR_DENIED);
	assert_int_equal(gh_auth_webauthn_challenge_consume(f->db,
	    GH_WA_PURPOSE_REGISTER, TEST_USER, d, sizeof d - 1, NOW),
	    GH_ERR_DENIED);
	assert_int_equal(gh_auth_webauthn_challenge_consume(f->db,
	    GH_WA_PURPOSE_REGISTER, TEST_USER, NULL, 0, NOW), GH_ERR_DENIED);
	/* Still usable by the right ceremony. */
	assert_int_equal(gh_auth_webauthn_challenge_consume(f->db,
	    GH_WA_PURPOSE_REGISTER, TEST_USER, d, sizeof d, NOW), GH_OK);
	assert_int_equal(gh_auth_webauthn_challenge_issue(f->db,
	    GH_WA_PURPOSE_REGISTER, "not-an-id", NOW, d), GH_ERR_INVALID);
}

static void
test_user_handle_is_stable_and_per_user(void **state)
{
	struct gh_test_tenant *f = *state;
	uint8_t a[GH_WA_HANDLE_LEN], b[GH_WA_HANDLE_LEN], o[GH_WA_HANDLE_LEN];

	assert_int_equal(gh_auth_webauthn_handle_get(f->db, TEST_USER, false,
	    a), GH_ERR_NOTFOUND);
	assert_int_equal(gh_auth_webauthn_handle_get(f->db, TEST_USER, true,
	    a), GH_OK);
	assert_int_equal(gh_auth_webauthn_handle_get(f->db, TEST_USER, false,
	    b), GH_OK);
	assert_memory_equal(a, b, sizeof a);
	assert_int_equal(gh_auth_webauthn_handle_get(f->db, OTHER_USER, true,
	    o), GH_OK);
	assert_memory_not_equal(a, o, sizeof a);
}

static void
fake_cred(struct gh_wa_credential *c, uint8_t tag, uint32_t count)
{
	memset(c, 0, sizeof *c);
	memset(c->id, tag, 20);
	c->id_len = 20;
	c->alg = GH_WA_ALG_ES256;
	memset(c->pubkey, 7, 64);
	c->pubkey_len = 64;
	c->sign_count = count;
	c->uv = true;
}

static void
count_cb(const struct gh_wa_cred_row *c, void *arg)
{
	(void)c;
	++*(int *)arg;
}

static void
test_credentials_belong_to_their_owner(void **state)
{
	struct gh_test_tenant *f = *state;
	struct gh_wa_credential c;
	struct gh_wa_cred_row row, got;
	int64_t n = 0;
	int listed = 0;

	fake_cred(&c, 1, 5);
	assert_int_equal(gh_auth_webauthn_cred_add(f->db, TEST_USER, "Key",
	    &c, NOW, &row), GH_OK);
	/* The same credential id again, even for another user. */
	assert_int_equal(gh_auth_webauthn_cred_add(f->db, OTHER_USER, "Key",
	    &c, NOW, &got), GH_ERR_CONFLICT);
	assert_int_equal(gh_auth_webauthn_cred_add(f->db, TEST_USER, "",
	    &c, NOW, &got), GH_ERR_INVALID);
	assert_int_equal(gh_auth_webauthn_cred_add(f->db, TEST_USER, "a\nb",
	    &c, NOW, &got), GH_ERR_INVALID);
	assert_int_equal(gh_auth_webauthn_cred_find(f->db, c.id, c.id_len,
	    &got), GH_OK);
	assert_string_equal(got.id, row.id);
	assert_string_equal(got.user_id, TEST_USER);
	assert_int_equal(got.pubkey_len, 64);
	assert_int_equal(got.sign_count, 5);
	assert_int_equal(gh_auth_webauthn_cred_find(f->db, c.id, 19, &got),
	    GH_ERR_NOTFOUND);
	assert_int_equal(gh_auth_webauthn_cred_list(f->db, TEST_USER,
	    count_cb, &listed), GH_OK);
	assert_int_equal(listed, 1);
	assert_int_equal(gh_auth_webauthn_cred_count(f->db, OTHER_USER, &n),
	    GH_OK);
	assert_int_equal(n, 0);
	/* Only the owner renames or removes it. */
	assert_int_equal(gh_auth_webauthn_cred_rename(f->db, OTHER_USER,
	    row.id, "Mine"), GH_ERR_NOTFOUND);
	assert_int_equal(gh_auth_webauthn_cred_delete(f->db, OTHER_USER,
	    row.id), GH_ERR_NOTFOUND);
	assert_int_equal(gh_auth_webauthn_cred_rename(f->db, TEST_USER,
	    row.id, "Blue key"), GH_OK);
	assert_int_equal(gh_auth_webauthn_cred_find(f->db, c.id, c.id_len,
	    &got), GH_OK);
	assert_string_equal(got.name, "Blue key");
	assert_int_equal(gh_auth_webauthn_cred_delete(f->db, TEST_USER,
	    row.id), GH_OK);
	assert_int_equal(gh_auth_webauthn_cred_delete(f->db, TEST_USER,
	    row.id), GH_ERR_NOTFOUND);
}

static void
test_counter_moves_only_forward(void **state)
{
	struct gh_test_tenant *f = *state;
	struct gh_wa_assert_result res;
	struct gh_wa_credential c;
	struct gh_wa_cred_row row, got;

	fake_cred(&c, 2, 5);
	assert_int_equal(gh_auth_webauthn_cred_add(f->db, TEST_USER, "Key",
	    &c, NOW, &row), GH_OK);
	memset(&res, 0, sizeof res);
	res.sign_count = 6;
	assert_int_equal(gh_auth_webauthn_cred_used(f->db, row.id, &res,
	    NOW), GH_OK);
	/* A use that raced: the count is no longer below. */
	assert_int_equal(gh_auth_webauthn_cred_used(f->db, row.id, &res,
	    NOW), GH_ERR_DENIED);
	res.sign_count = 3;
	assert_int_equal(gh_auth_webauthn_cred_used(f->db, row.id, &res,
	    NOW), GH_ERR_DENIED);
	assert_int_equal(gh_auth_webauthn_cred_regression(f->db, row.id),
	    GH_OK);
	assert_int_equal(gh_auth_webauthn_cred_find(f->db, c.id, c.id_len,
	    &got), GH_OK);
	assert_int_equal(got.sign_count, 6);
	assert_int_equal(got.regressions, 1);
	assert_int_equal(got.last_used_at, NOW);

	/* An authenticator without a counter stays at zero. */
	fake_cred(&c, 3, 0);
	assert_int_equal(gh_auth_webauthn_cred_add(f->db, TEST_USER, "Zero",
	    &c, NOW, &row), GH_OK);
	res.sign_count = 0;
	assert_int_equal(gh_auth_webauthn_cred_used(f->db, row.id, &res,
	    NOW), GH_OK);
}

static void
test_webauthn_credential_makes_mfa_needed(void **state)
{
	struct gh_test_tenant *f = *state;
	struct gh_wa_credential c;
	struct gh_wa_cred_row row;
	struct gh_mfa_policy pol;
	enum gh_mfa_need need;

	gh_auth_mfa_policy_default(&pol);
	assert_int_equal(gh_auth_mfa_need(f->db, &pol, OTHER_USER, NOW, &need),
	    GH_OK);
	assert_int_equal(need, GH_MFA_NEED_NONE);
	fake_cred(&c, 4, 0);
	assert_int_equal(gh_auth_webauthn_cred_add(f->db, OTHER_USER, "Key",
	    &c, NOW, &row), GH_OK);
	assert_int_equal(gh_auth_mfa_need(f->db, &pol, OTHER_USER, NOW, &need),
	    GH_OK);
	assert_int_equal(need, GH_MFA_NEED_VERIFY);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		GH_TEST_TENANT_USERS(test_challenge_is_single_use),
		GH_TEST_TENANT_USERS(
		    test_challenge_refuses_expiry_purpose_user_and_misuse),
		GH_TEST_TENANT_USERS(test_user_handle_is_stable_and_per_user),
		GH_TEST_TENANT_USERS(test_credentials_belong_to_their_owner),
		GH_TEST_TENANT_USERS(test_counter_moves_only_forward),
		GH_TEST_TENANT_USERS(test_webauthn_credential_makes_mfa_needed),
	};

	return cmocka_run_group_tests_name("auth_webauthn_store", tests, NULL,
	    NULL);
}
