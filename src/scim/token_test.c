/*
 * token_test.c: SCIM bearer tokens against a real tenant database:
 * creation, check, expiry, revocation and misuse.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scim/scim.h"
#include "store/testing.h"

static void
count_one(const struct gh_scim_token *t, void *arg)
{
	(void)t;
	(*(int *)arg)++;
}

static void
test_token_checks_until_revoked(void **state)
{
	struct gh_test_tenant *f = *state;
	char tok[GH_SCIM_TOKEN_LEN + 1], name[GH_SCIM_TOKEN_NAME_MAX + 1];
	struct gh_scim_token t, c;
	int n = 0;

	assert_int_equal(gh_scim_token_create(f->db, "entra", NULL,
	    gh_now_ms() + 60000, tok, &t), GH_OK);
	assert_int_equal(strlen(tok), GH_SCIM_TOKEN_LEN);
	assert_memory_equal(tok, GH_SCIM_TOKEN_PREFIX, 4);
	assert_int_equal(gh_scim_token_check(f->db, tok, &c), GH_OK);
	assert_string_equal(c.id, t.id);
	assert_string_equal(c.name, "entra");
	assert_true(c.last_used_at > 0);
	assert_int_equal(gh_scim_token_list(f->db, count_one, &n), GH_OK);
	assert_int_equal(n, 1);

	/* One character off is refused. */
	tok[10] = tok[10] == 'A' ? 'B' : 'A';
	assert_int_equal(gh_scim_token_check(f->db, tok, &c), GH_ERR_DENIED);
	tok[10] = tok[10] == 'A' ? 'B' : 'A';

	assert_int_equal(gh_scim_token_revoke(f->db, t.id, name), GH_OK);
	assert_string_equal(name, "entra");
	assert_int_equal(gh_scim_token_check(f->db, tok, &c), GH_ERR_DENIED);
	assert_int_equal(gh_scim_token_revoke(f->db, t.id, name),
	    GH_ERR_NOTFOUND);
	n = 0;
	assert_int_equal(gh_scim_token_list(f->db, count_one, &n), GH_OK);
	assert_int_equal(n, 0);
}

static void
test_token_expires(void **state)
{
	struct gh_test_tenant *f = *state;
	char tok[GH_SCIM_TOKEN_LEN + 1];
	struct gh_scim_token t, c;

	assert_int_equal(gh_scim_token_create(f->db, "soon", NULL,
	    gh_now_ms() + 60000, tok, &t), GH_OK);
	assert_int_equal(gh_db_run(f->db, "UPDATE scim_tokens SET expires_at "
	    "= ?", "i", gh_now_ms() - 1), GH_OK);
	assert_int_equal(gh_scim_token_check(f->db, tok, &c), GH_ERR_DENIED);
}

static void
test_token_misuse_is_refused(void **state)
{
	struct gh_test_tenant *f = *state;
	char tok[GH_SCIM_TOKEN_LEN + 1], name[GH_SCIM_TOKEN_NAME_MAX + 1];
	char long_name[80];
	struct gh_scim_token c;

	memset(long_name, 'a', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = '\0';
	assert_int_equal(gh_scim_token_create(f->db, "", NULL,
	    gh_now_ms() + 1000, tok, NULL), GH_ERR_INVALID);
	assert_int_equal(gh_scim_token_create(f->db, long_name, NULL,
	    gh_now_ms() + 1000, tok, NULL), GH_ERR_INVALID);
	assert_int_equal(gh_scim_token_create(f->db, "a\nb", NULL,
	    gh_now_ms() + 1000, tok, NULL), GH_ERR_INVALID);
	assert_int_equal(gh_scim_token_create(f->db, "past", NULL,
	    gh_now_ms() - 1, tok, NULL), GH_ERR_INVALID);
	assert_int_equal(gh_scim_token_create(f->db, "who", "not-an-id",
	    gh_now_ms() + 1000, tok, NULL), GH_ERR_INVALID);
	assert_string_equal(tok, "");
	assert_int_equal(gh_scim_token_check(f->db, NULL, &c), GH_ERR_DENIED);
	assert_int_equal(gh_scim_token_check(f->db, "ghs_short", &c),
	    GH_ERR_DENIED);
	assert_int_equal(gh_scim_token_check(f->db, "gh_AAAAAAAAAAAAAAAAAAAAAAA"
	    "AAAAAAAAAAAAAAAAAAAAAAA", &c), GH_ERR_DENIED);
	assert_int_equal(gh_scim_token_revoke(f->db, "nope", name),
	    GH_ERR_NOTFOUND);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		GH_TEST_TENANT(test_token_checks_until_revoked),
		GH_TEST_TENANT(test_token_expires),
		GH_TEST_TENANT(test_token_misuse_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
