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

struct fixture {
	char dir[64];
	struct gh_store *st;
	struct gh_db *db;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char id[GH_ID_LEN + 1];

	strcpy(f->dir, "/tmp/gh-scim-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(gh_store_open(f->dir, true, &f->st), GH_OK);
	assert_int_equal(gh_id_new(id), GH_OK);
	assert_int_equal(gh_store_tenant(f->st, id, "eu", true, &f->db), GH_OK);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	gh_db_release(f->db);
	gh_store_free(f->st);
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", f->dir);
	free(f);
	return 0;
}

static void
count_one(const struct gh_scim_token *t, void *arg)
{
	(void)t;
	(*(int *)arg)++;
}

static void
test_token_checks_until_revoked(void **state)
{
	struct fixture *f = *state;
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
	struct fixture *f = *state;
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
	struct fixture *f = *state;
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
		cmocka_unit_test_setup_teardown(test_token_checks_until_revoked,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_expires, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_token_misuse_is_refused,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
