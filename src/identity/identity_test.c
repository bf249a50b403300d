/* identity_test.c: validators, users and organisations on a real store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/identity.h"

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

	strcpy(f->dir, "/tmp/gh-identity-XXXXXX");
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
test_validators_refuse_bad_names(void **state)
{
	(void)state;
	assert_true(gh_identity_slug_valid("acme-2"));
	assert_false(gh_identity_slug_valid("-acme"));
	assert_false(gh_identity_slug_valid("Acme"));
	assert_false(gh_identity_slug_valid(".."));
	assert_false(gh_identity_slug_valid("a"));
	assert_true(gh_identity_username_valid("alice.b+x@corp"));
	assert_false(gh_identity_username_valid("alice bob"));
	assert_false(gh_identity_username_valid("../etc"));
	assert_false(gh_identity_username_valid(""));
	assert_true(gh_identity_email_valid("a@example.org"));
	assert_false(gh_identity_email_valid("a@b"));
	assert_false(gh_identity_email_valid("a@@example.org"));
	assert_false(gh_identity_email_valid("a b@example.org"));
	assert_true(gh_identity_display_name_valid("Zoë Ä"));
	assert_false(gh_identity_display_name_valid("bad\x01"));
	assert_false(gh_identity_display_name_valid("\xff"));
}

static struct gh_user
add_user(struct gh_db *db, const char *name)
{
	struct gh_user u;

	assert_int_equal(gh_identity_user_init(&u, name), GH_OK);
	assert_int_equal(gh_identity_user_insert(db, &u), GH_OK);
	return u;
}

static void
test_usernames_are_unique_ignoring_case(void **state)
{
	struct fixture *f = *state;
	struct gh_user u, found;

	add_user(f->db, "Alice");
	assert_int_equal(gh_identity_user_init(&u, "alice"), GH_OK);
	assert_int_equal(gh_identity_user_insert(f->db, &u), GH_ERR_CONFLICT);
	assert_int_equal(gh_identity_user_find(f->db, "ALICE", &found), GH_OK);
	assert_string_equal(found.username, "Alice");
}

static void
test_update_and_delete_round_trip(void **state)
{
	struct fixture *f = *state;
	struct gh_user u = add_user(f->db, "bob"), got;

	strcpy(u.email, "bob@example.org");
	strcpy(u.role, "admin");
	assert_int_equal(gh_identity_user_update(f->db, &u), GH_OK);
	assert_int_equal(gh_identity_user_get(f->db, u.id, &got), GH_OK);
	assert_string_equal(got.email, "bob@example.org");
	assert_string_equal(got.role, "admin");
	strcpy(u.role, "emperor");
	assert_int_equal(gh_identity_user_update(f->db, &u), GH_ERR_INVALID);
	assert_int_equal(gh_identity_user_delete(f->db, u.id), GH_OK);
	assert_int_equal(gh_identity_user_get(f->db, u.id, &got),
	    GH_ERR_NOTFOUND);
	assert_int_equal(gh_identity_user_delete(f->db, u.id), GH_ERR_NOTFOUND);
}

static void
test_list_pages_cover_every_user_once(void **state)
{
	struct gh_user_filter flt = { .limit = 3 };
	struct fixture *f = *state;
	char name[16], *next = NULL;
	bool seen_names[10] = { false };
	json_t *page;
	int seen = 0;

	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof name, "user%02d", i);
		add_user(f->db, name);
	}
	do {
		assert_int_equal(gh_identity_user_list(f->db, &flt, &page,
		    &next), GH_OK);
		assert_true(json_array_size(page) <= 3);
		for (size_t i = 0; i < json_array_size(page); i++) {
			const char *u = json_string_value(json_object_get(
			    json_array_get(page, i), "username"));
			int k = atoi(u + 4);

			/* Each user exactly once, in whatever stable order. */
			assert_false(seen_names[k]);
			seen_names[k] = true;
			seen++;
		}
		json_decref(page);
		free((char *)flt.cursor);
		flt.cursor = next;
	} while (next != NULL);
	assert_int_equal(seen, 10);
	flt.cursor = "not-a-cursor";
	assert_int_equal(gh_identity_user_list(f->db, &flt, &page, &next),
	    GH_ERR_INVALID);
}

static void
test_list_filter_matches_substrings_literally(void **state)
{
	struct gh_user_filter flt = { .limit = 50, .q = "LI" };
	struct fixture *f = *state;
	char *next;
	json_t *page;

	add_user(f->db, "alice");
	add_user(f->db, "bob");
	add_user(f->db, "li_x");
	assert_int_equal(gh_identity_user_list(f->db, &flt, &page, &next),
	    GH_OK);
	assert_int_equal(json_array_size(page), 2);
	json_decref(page);
	flt.q = "_";	/* a LIKE wildcard, matched literally */
	assert_int_equal(gh_identity_user_list(f->db, &flt, &page, &next),
	    GH_OK);
	assert_int_equal(json_array_size(page), 1);
	json_decref(page);
}

static void
test_json_view_has_no_password_hash(void **state)
{
	struct fixture *f = *state;
	struct gh_user u = add_user(f->db, "carol");
	json_t *j;
	char *s;

	strcpy(u.password_hash, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA");
	j = gh_identity_user_json(&u);
	s = json_dumps(j, 0);
	assert_null(strstr(s, "argon2"));
	assert_null(json_object_get(j, "password_hash"));
	free(s);
	json_decref(j);
}

static void
test_swap_hash_refuses_a_changed_hash(void **state)
{
	struct fixture *f = *state;
	struct gh_user u = add_user(f->db, "dave");

	strcpy(u.password_hash, "old");
	assert_int_equal(gh_identity_user_update(f->db, &u), GH_OK);
	assert_int_equal(gh_identity_user_swap_hash(f->db, u.id, "other",
	    "new"), GH_ERR_CONFLICT);
	assert_int_equal(gh_identity_user_swap_hash(f->db, u.id, "old", "new"),
	    GH_OK);
}

static void
test_orgs_create_list_and_change_state(void **state)
{
	struct fixture *f = *state;
	struct gh_db *dir;
	struct gh_org o, got;

	assert_int_equal(gh_store_directory(f->st, &dir), GH_OK);
	assert_int_equal(gh_identity_org_create(dir, "acme", "Acme", "eu", &o),
	    GH_OK);
	assert_int_equal(gh_identity_org_create(dir, "acme", "Other", "eu",
	    &got), GH_ERR_CONFLICT);
	assert_int_equal(gh_identity_org_create(dir, "Bad", "x", "eu", &got),
	    GH_ERR_INVALID);
	assert_int_equal(gh_identity_org_set_state(dir, o.id, "suspended"),
	    GH_OK);
	assert_int_equal(gh_identity_org_get(dir, "acme", &got), GH_OK);
	assert_string_equal(got.state, "suspended");
	assert_int_equal(gh_identity_org_set_state(dir, o.id, "gone"),
	    GH_ERR_INVALID);
	assert_int_equal(gh_identity_org_get(dir, "../x", &got),
	    GH_ERR_NOTFOUND);
	gh_db_release(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_validators_refuse_bad_names),
		cmocka_unit_test_setup_teardown(
		    test_usernames_are_unique_ignoring_case, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_update_and_delete_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_list_pages_cover_every_user_once, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_list_filter_matches_substrings_literally, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_json_view_has_no_password_hash, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_swap_hash_refuses_a_changed_hash, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_orgs_create_list_and_change_state, setup, teardown),
	};

	return cmocka_run_group_tests_name("identity", tests, NULL, NULL);
}
