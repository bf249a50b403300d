/*
 * mfa_device_test.c: unit tests for remembered devices (store level) and
 * the policy members that govern them and the allowed methods. Runs
 * against a real tenant database in a temporary directory.
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
#define DAY (86400000LL)
#define DAYS_S(n) ((int64_t)(n) * 86400)

static void
count_device(const struct gh_mfa_device *d, void *arg)
{
	int64_t *n = arg;

	assert_true(gh_id_valid(d->id));
	(*n)++;
}

static int64_t
live_devices(struct gh_db *db, const char *user, int64_t now)
{
	int64_t n = 0;

	assert_int_equal(gh_auth_mfa_device_list(db, user, now, count_device,
	    &n), GH_OK);
	return n;
}

static void
test_device_token_is_stored_only_as_its_digest(void **state)
{
	struct gh_test_tenant *f = *state;
	char tok[GH_TOKEN_LEN + 1], digest[GH_TOKEN_HASH_LEN + 1];
	char id[GH_ID_LEN + 1];
	struct gh_mfa_device d;
	struct gh_stmt *st = NULL;
	int64_t now = gh_now_ms();
	bool row;

	assert_int_equal(gh_auth_mfa_device_create(f->db, TEST_USER, 30, NULL,
	    "127.0.0.1", "ua", now, tok, &d), GH_OK);
	assert_int_equal(strlen(tok), GH_TOKEN_LEN);
	assert_int_equal(d.expires_at, now + 30 * DAY);
	auth_token_digest(tok, GH_TOKEN_LEN, digest);
	assert_int_equal(gh_db_prepare(f->db, "SELECT token_hash FROM "
	    "mfa_devices WHERE id = ?", &st), GH_OK);
	assert_int_equal(gh_stmt_bind(st, "t", d.id), GH_OK);
	assert_int_equal(gh_stmt_step(st, &row), GH_OK);
	assert_true(row);
	assert_string_equal(gh_stmt_text(st, 0), digest);
	assert_true(strstr(gh_stmt_text(st, 0), tok) == NULL);
	gh_stmt_free(st);
	assert_int_equal(gh_auth_mfa_device_check(f->db, TEST_USER, tok,
	    DAYS_S(30), now + 1000, id), GH_OK);
	assert_string_equal(id, d.id);
}

static void
test_device_check_refuses_other_user_wrong_token_and_old_rows(void **state)
{
	struct gh_test_tenant *f = *state;
	char tok[GH_TOKEN_LEN + 1], id[GH_ID_LEN + 1];
	int64_t now = gh_now_ms();

	assert_int_equal(gh_auth_mfa_device_create(f->db, TEST_USER, 30, NULL,
	    "", "", now, tok, NULL), GH_OK);
	assert_int_equal(gh_auth_mfa_device_check(f->db, OTHER_USER, tok,
	    DAYS_S(30), now, id), GH_ERR_DENIED);
	assert_int_equal(gh_auth_mfa_device_check(f->db, TEST_USER, NULL,
	    DAYS_S(30), now, id), GH_ERR_DENIED);
	assert_int_equal(gh_auth_mfa_device_check(f->db, TEST_USER, "short",
	    DAYS_S(30), now, id), GH_ERR_DENIED);
	/* Off, expired, or older than the current (shortened) policy. */
	assert_int_equal(gh_auth_mfa_device_check(f->db, TEST_USER, tok, 0,
	    now, id), GH_ERR_DENIED);
	assert_int_equal(gh_auth_mfa_device_check(f->db, TEST_USER, tok,
	    DAYS_S(30), now + 31 * DAY, id), GH_ERR_DENIED);
	assert_int_equal(gh_auth_mfa_device_check(f->db, TEST_USER, tok,
	    DAYS_S(2), now + 3 * DAY, id), GH_ERR_DENIED);
	assert_int_equal(gh_auth_mfa_device_check(f->db, TEST_USER, tok,
	    DAYS_S(30), now + 3 * DAY, id), GH_OK);
	/* A security policy's reauth_interval_s shorter than the days. */
	assert_int_equal(gh_auth_mfa_device_check(f->db, TEST_USER, tok, 3600,
	    now + 2 * 3600 * 1000LL, id), GH_ERR_DENIED);
	assert_int_equal(gh_auth_mfa_device_check(f->db, TEST_USER, tok, 3600,
	    now + 1000, id), GH_OK);
	tok[0] = tok[0] == 'A' ? 'B' : 'A';
	assert_int_equal(gh_auth_mfa_device_check(f->db, TEST_USER, tok,
	    DAYS_S(30), now, id), GH_ERR_DENIED);
	/* Days out of range are refused at creation. */
	assert_int_equal(gh_auth_mfa_device_create(f->db, TEST_USER, 0, NULL,
	    "", "", now, tok, NULL), GH_ERR_INVALID);
	assert_int_equal(gh_auth_mfa_device_create(f->db, TEST_USER,
	    GH_MFA_REMEMBER_DAYS_MAX + 1, NULL, "", "", now, tok, NULL),
	    GH_ERR_INVALID);
}

static void
test_devices_revoke_one_all_and_on_mfa_reset(void **state)
{
	struct gh_test_tenant *f = *state;
	char a[GH_TOKEN_LEN + 1], b[GH_TOKEN_LEN + 1], c[GH_TOKEN_LEN + 1];
	char id[GH_ID_LEN + 1];
	struct gh_mfa_device da, dc;
	int64_t now = gh_now_ms(), n = -1;

	assert_int_equal(gh_auth_mfa_device_create(f->db, TEST_USER, 30, NULL,
	    "", "", now, a, &da), GH_OK);
	assert_int_equal(gh_auth_mfa_device_create(f->db, TEST_USER, 30, NULL,
	    "", "", now, b, NULL), GH_OK);
	assert_int_equal(gh_auth_mfa_device_create(f->db, OTHER_USER, 30,
	    NULL, "", "", now, c, &dc), GH_OK);
	assert_int_equal(live_devices(f->db, TEST_USER, now), 2);
	/* Another user's device is not ours to revoke. */
	assert_int_equal(gh_auth_mfa_device_revoke(f->db, TEST_USER, dc.id,
	    now), GH_ERR_NOTFOUND);
	assert_int_equal(gh_auth_mfa_device_revoke(f->db, TEST_USER, da.id,
	    now), GH_OK);
	assert_int_equal(gh_auth_mfa_device_revoke(f->db, TEST_USER, da.id,
	    now), GH_ERR_NOTFOUND);
	assert_int_equal(gh_auth_mfa_device_check(f->db, TEST_USER, a, 30, now,
	    id), GH_ERR_DENIED);
	assert_int_equal(gh_auth_mfa_device_check(f->db, TEST_USER, b, 30, now,
	    id), GH_OK);
	assert_int_equal(gh_auth_mfa_device_revoke_user(f->db, TEST_USER, now,
	    &n), GH_OK);
	assert_int_equal(n, 1);
	assert_int_equal(gh_auth_mfa_device_check(f->db, TEST_USER, b, 30, now,
	    id), GH_ERR_DENIED);
	assert_int_equal(live_devices(f->db, TEST_USER, now), 0);
	assert_int_equal(gh_auth_mfa_device_create(f->db, TEST_USER, 30, NULL,
	    "", "", now, a, NULL), GH_OK);
	assert_int_equal(gh_auth_mfa_device_revoke_all(f->db, now, &n), GH_OK);
	assert_int_equal(n, 2);	/* a's new row and c */
	assert_int_equal(gh_auth_mfa_device_check(f->db, TEST_USER, a, 30, now,
	    id), GH_ERR_DENIED);
	assert_int_equal(gh_auth_mfa_device_create(f->db, OTHER_USER, 30,
	    NULL, "", "", now, c, NULL), GH_OK);
	assert_int_equal(gh_auth_mfa_reset(f->db, OTHER_USER), GH_OK);
	assert_int_equal(gh_auth_mfa_device_check(f->db, OTHER_USER, c, 30,
	    now, id), GH_ERR_DENIED);
}

static void
test_remembering_again_replaces_the_browsers_row(void **state)
{
	struct gh_test_tenant *f = *state;
	char a[GH_TOKEN_LEN + 1], b[GH_TOKEN_LEN + 1], id[GH_ID_LEN + 1];
	int64_t now = gh_now_ms();

	assert_int_equal(gh_auth_mfa_device_create(f->db, TEST_USER, 30, NULL,
	    "", "", now, a, NULL), GH_OK);
	assert_int_equal(gh_auth_mfa_device_create(f->db, TEST_USER, 30, a,
	    "", "", now, b, NULL), GH_OK);
	assert_int_equal(live_devices(f->db, TEST_USER, now), 1);
	assert_int_equal(gh_auth_mfa_device_check(f->db, TEST_USER, a, 30, now,
	    id), GH_ERR_DENIED);
	assert_int_equal(gh_auth_mfa_device_check(f->db, TEST_USER, b, 30, now,
	    id), GH_OK);
}

static gh_err
parse(const char *text, struct gh_mfa_policy *pol, bool from_client)
{
	char msg[128];
	json_t *j = json_loads(text, 0, NULL);
	gh_err err;

	assert_non_null(j);
	err = gh_auth_mfa_policy_parse(j, from_client, pol, msg, sizeof msg);
	json_decref(j);
	return err;
}

static void
test_policy_methods_and_remember_days_are_validated(void **state)
{
	struct gh_mfa_policy pol;
	json_t *j;

	(void)state;
	gh_auth_mfa_policy_default(&pol);
	assert_true(pol.allow_totp && pol.allow_webauthn && pol.allow_recovery);
	assert_int_equal(pol.remember_device_days, 0);
	assert_int_equal(parse("{\"methods\": []}", &pol, true),
	    GH_ERR_INVALID);
	assert_int_equal(parse("{\"methods\": [\"recovery\"]}", &pol, true),
	    GH_ERR_INVALID);
	assert_int_equal(parse("{\"methods\": [\"totp\", \"sms\"]}", &pol,
	    true), GH_ERR_INVALID);
	assert_int_equal(parse("{\"methods\": [\"totp\", 1]}", &pol, true),
	    GH_ERR_INVALID);
	assert_int_equal(parse("{\"remember_device_days\": 91}", &pol, true),
	    GH_ERR_INVALID);
	assert_int_equal(parse("{\"remember_device_days\": -1}", &pol, true),
	    GH_ERR_INVALID);
	assert_int_equal(parse("{\"remember_device_days\": \"30\"}", &pol,
	    true), GH_ERR_INVALID);
	assert_int_equal(parse("{\"methods\": [\"webauthn\", \"recovery\"], "
	    "\"remember_device_days\": 30}", &pol, true), GH_OK);
	assert_false(pol.allow_totp);
	assert_true(pol.allow_webauthn && pol.allow_recovery);
	assert_int_equal(pol.remember_device_days, 30);
	/* Round trip through the stored form. */
	j = gh_auth_mfa_policy_json(&pol);
	gh_auth_mfa_policy_default(&pol);
	{
		char msg[128];

		assert_int_equal(gh_auth_mfa_policy_parse(j, false, &pol, msg,
		    sizeof msg), GH_OK);
	}
	json_decref(j);
	assert_false(pol.allow_totp);
	assert_int_equal(pol.remember_device_days, 30);
	/* A row stored before WebAuthn was a policy method keeps it. */
	gh_auth_mfa_policy_default(&pol);
	assert_int_equal(parse("{\"methods\": [\"totp\"]}", &pol, false),
	    GH_OK);
	assert_true(pol.allow_webauthn);
	assert_false(pol.allow_recovery);
	assert_int_equal(parse("{\"methods\": [\"totp\"]}", &pol, true),
	    GH_OK);
	assert_false(pol.allow_webauthn);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		GH_TEST_TENANT_USERS(
		    test_device_token_is_stored_only_as_its_digest),
		GH_TEST_TENANT_USERS(
		  test_device_check_refuses_other_user_wrong_token_and_old_rows),
		GH_TEST_TENANT_USERS(
		    test_devices_revoke_one_all_and_on_mfa_reset),
		GH_TEST_TENANT_USERS(
		    test_remembering_again_replaces_the_browsers_row),
		cmocka_unit_test(
		    test_policy_methods_and_remember_days_are_validated),
	};

	return cmocka_run_group_tests_name("auth_mfa_device", tests, NULL,
	    NULL);
}
