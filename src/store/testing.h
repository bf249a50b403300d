/*
 * testing.h: a throw-away tenant database for unit tests. Built only with
 * -Dtests=true as store_testing_lib; never linked into the gatehouse
 * binary.
 *
 * gh_test_tenant_new makes a fresh directory /tmp/gh-<tag>-XXXXXX, opens a
 * store there and acquires (creating) one tenant database in region "eu";
 * gh_test_tenant_free undoes all of it, the directory included.
 */
#ifndef GH_STORE_TESTING_H
#define GH_STORE_TESTING_H

#include "store/store.h"

struct gh_test_tenant {
	char dir[64];		/* the temporary data directory */
	struct gh_store *st;
	struct gh_db *db;	/* the tenant handle, held until free */
	char org_id[GH_ID_LEN + 1];
};

/* Creates the directory, the store and the tenant database of org_id (a
 * fresh id when NULL). tag is a short name of [a-z0-9_-] for the
 * directory. Returns NULL after printing why to stderr. */
struct gh_test_tenant *gh_test_tenant_new(const char *tag,
    const char *org_id);

/* Releases the handle, frees the store and removes the directory with
 * everything in it. NULL is a no-op. */
void gh_test_tenant_free(struct gh_test_tenant *t);

/*
 * cmocka fixtures (int (*)(void **state)) giving each test a fresh tenant
 * in *state, the directory tagged with the program name:
 * gh_test_tenant_setup with a fresh org id; gh_test_tenant_setup_users with
 * org GH_TEST_ORG and two active members, GH_TEST_USER "alice" and
 * GH_TEST_OTHER_USER "bob"; gh_test_tenant_teardown frees either.
 */
#define GH_TEST_ORG "0123456789abcdef0123456789abcdef"
#define GH_TEST_USER "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define GH_TEST_OTHER_USER "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

int gh_test_tenant_setup(void **state);
int gh_test_tenant_setup_users(void **state);
int gh_test_tenant_teardown(void **state);

/* A cmocka test entry with those fixtures (the test files include
 * cmocka.h). */
#define GH_TEST_TENANT(fn) cmocka_unit_test_setup_teardown(fn, \
	gh_test_tenant_setup, gh_test_tenant_teardown)
#define GH_TEST_TENANT_USERS(fn) cmocka_unit_test_setup_teardown(fn, \
	gh_test_tenant_setup_users, gh_test_tenant_teardown)

/* Inserts an active user row directly (no validation, created_at and
 * updated_at 0). email may be NULL. */
gh_err gh_test_user_insert(struct gh_db *db, const char *id,
    const char *username, const char *role, const char *email)
    GH_MUST_CHECK;

#endif
