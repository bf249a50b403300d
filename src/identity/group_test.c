/*
 * group_test.c: groups against a real tenant database: names, nesting
 * rules, paging, membership, effective groups and deletion.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/identity.h"
#include "store/testing.h"

static struct gh_group
add_group(struct gh_db *db, const char *name, const char *parent)
{
	struct gh_group g;
	const char *why;

	assert_int_equal(gh_identity_group_init(&g, name), GH_OK);
	if (parent != NULL)
		gh_strlcpy(g.parent_id, parent, sizeof g.parent_id);
	assert_int_equal(gh_identity_group_insert(db, &g, &why), GH_OK);
	return g;
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
test_group_names_are_validated(void **state)
{
	char long_name[GH_GROUP_NAME_MAX + 2];

	(void)state;
	assert_true(gh_identity_group_name_valid("Engineering"));
	assert_true(gh_identity_group_name_valid("on-call team_2.0"));
	assert_false(gh_identity_group_name_valid(""));
	assert_false(gh_identity_group_name_valid(" lead"));
	assert_false(gh_identity_group_name_valid("trail "));
	assert_false(gh_identity_group_name_valid("a/b"));
	assert_false(gh_identity_group_name_valid("Zo\xc3\xab"));
	assert_false(gh_identity_group_name_valid(NULL));
	memset(long_name, 'a', sizeof long_name - 1);
	long_name[GH_GROUP_NAME_MAX] = '\0';
	assert_true(gh_identity_group_name_valid(long_name));
	long_name[GH_GROUP_NAME_MAX] = 'a';
	long_name[GH_GROUP_NAME_MAX + 1] = '\0';
	assert_false(gh_identity_group_name_valid(long_name));
	assert_true(gh_identity_group_description_valid(""));
	assert_false(gh_identity_group_description_valid("bad\x01"));
}

static void
test_group_names_are_unique_ignoring_case(void **state)
{
	struct gh_test_tenant *f = *state;
	struct gh_group g, got;
	const char *why;

	add_group(f->db, "Ops", NULL);
	assert_int_equal(gh_identity_group_init(&g, "OPS"), GH_OK);
	assert_int_equal(gh_identity_group_insert(f->db, &g, &why),
	    GH_ERR_CONFLICT);
	assert_string_equal(why, "group_exists");
	assert_int_equal(gh_identity_group_get(f->db, g.id, &got),
	    GH_ERR_NOTFOUND);
	assert_int_equal(gh_identity_group_get(f->db, "not-an-id", &got),
	    GH_ERR_NOTFOUND);
}

static void
test_nesting_is_one_level_without_cycles(void **state)
{
	struct gh_test_tenant *f = *state;
	struct gh_group parent, child, other, g;
	const char *why;

	parent = add_group(f->db, "parent", NULL);
	child = add_group(f->db, "child", parent.id);
	other = add_group(f->db, "other", NULL);

	/* A grandchild is too deep. */
	assert_int_equal(gh_identity_group_init(&g, "grandchild"), GH_OK);
	strcpy(g.parent_id, child.id);
	assert_int_equal(gh_identity_group_insert(f->db, &g, &why),
	    GH_ERR_INVALID);
	assert_string_equal(why, "nesting_too_deep");
	/* An unknown parent. */
	assert_int_equal(gh_id_new(g.parent_id), GH_OK);
	assert_int_equal(gh_identity_group_insert(f->db, &g, &why),
	    GH_ERR_INVALID);
	assert_string_equal(why, "parent_not_found");
	/* Its own parent. */
	g = other;
	strcpy(g.parent_id, other.id);
	assert_int_equal(gh_identity_group_update(f->db, &g, &why),
	    GH_ERR_INVALID);
	assert_string_equal(why, "group_cycle");
	/* A parent cannot get a parent. */
	g = parent;
	strcpy(g.parent_id, other.id);
	assert_int_equal(gh_identity_group_update(f->db, &g, &why),
	    GH_ERR_INVALID);
	assert_string_equal(why, "group_has_children");
	/* Nor become its child's child. */
	strcpy(g.parent_id, child.id);
	assert_int_equal(gh_identity_group_update(f->db, &g, &why),
	    GH_ERR_INVALID);
	assert_string_equal(why, "group_cycle");
	/* Moving the child under another top-level group is fine, and then
	 * the old parent may itself get a parent. */
	g = child;
	strcpy(g.parent_id, other.id);
	assert_int_equal(gh_identity_group_update(f->db, &g, &why), GH_OK);
	g = parent;
	strcpy(g.parent_id, other.id);
	assert_int_equal(gh_identity_group_update(f->db, &g, &why), GH_OK);
	assert_int_equal(gh_identity_group_get(f->db, parent.id, &g), GH_OK);
	assert_string_equal(g.parent_id, other.id);
}

static void
test_delete_is_refused_while_children_exist(void **state)
{
	struct gh_test_tenant *f = *state;
	struct gh_group parent, child, got;
	struct gh_user u = add_user(f->db, "dora");
	int64_t members = -1;
	bool added;

	parent = add_group(f->db, "parent", NULL);
	child = add_group(f->db, "child", parent.id);
	assert_int_equal(gh_identity_group_member_add(f->db, parent.id, u.id,
	    1000, &added), GH_OK);
	assert_int_equal(gh_identity_group_delete(f->db, parent.id, &members),
	    GH_ERR_CONFLICT);
	assert_int_equal(gh_identity_group_delete(f->db, child.id, &members),
	    GH_OK);
	assert_int_equal(members, 0);
	assert_int_equal(gh_identity_group_delete(f->db, parent.id, &members),
	    GH_OK);
	assert_int_equal(members, 1);
	assert_int_equal(gh_identity_group_get(f->db, parent.id, &got),
	    GH_ERR_NOTFOUND);
	assert_int_equal(gh_identity_group_delete(f->db, parent.id, NULL),
	    GH_ERR_NOTFOUND);
}

static void
test_list_pages_cover_every_group_once(void **state)
{
	struct gh_test_tenant *f = *state;
	struct gh_group_filter flt = { .limit = 3 };
	struct gh_group parent;
	json_t *page;
	char *next = NULL, *cur = NULL, name[16];
	int seen = 0, pages = 0;

	parent = add_group(f->db, "parent", NULL);
	for (int i = 0; i < 7; i++) {
		snprintf(name, sizeof name, "g%d", i);
		add_group(f->db, name, i % 2 ? parent.id : NULL);
	}
	do {
		flt.cursor = cur;
		assert_int_equal(gh_identity_group_list(f->db, &flt, &page,
		    &next), GH_OK);
		seen += (int)json_array_size(page);
		pages++;
		json_decref(page);
		free(cur);
		cur = next;
	} while (cur != NULL);
	assert_int_equal(seen, 8);
	assert_int_equal(pages, 3);

	flt = (struct gh_group_filter){ .limit = 50, .parent_id = parent.id };
	assert_int_equal(gh_identity_group_list(f->db, &flt, &page, &next),
	    GH_OK);
	assert_int_equal(json_array_size(page), 3);
	json_decref(page);
	flt = (struct gh_group_filter){ .limit = 50, .q = "G6" };
	assert_int_equal(gh_identity_group_list(f->db, &flt, &page, &next),
	    GH_OK);
	assert_int_equal(json_array_size(page), 1);
	json_decref(page);
	flt = (struct gh_group_filter){ .limit = 50, .cursor = "garbage" };
	assert_int_equal(gh_identity_group_list(f->db, &flt, &page, &next),
	    GH_ERR_INVALID);
	flt = (struct gh_group_filter){ .limit = 0 };
	assert_int_equal(gh_identity_group_list(f->db, &flt, &page, &next),
	    GH_ERR_INVALID);
}

static const char *
name_at(json_t *arr, size_t i)
{
	return json_string_value(json_object_get(json_array_get(arr, i),
	    "name"));
}

static void
test_membership_direct_and_effective(void **state)
{
	struct gh_test_tenant *f = *state;
	struct gh_group parent, child, solo;
	struct gh_user u = add_user(f->db, "erin"), v = add_user(f->db, "finn");
	json_t *direct, *eff, *members, *e;
	char *next, *cur;
	bool added;

	parent = add_group(f->db, "Parent", NULL);
	child = add_group(f->db, "child", parent.id);
	solo = add_group(f->db, "solo", NULL);

	assert_int_equal(gh_identity_group_member_add(f->db, child.id, u.id,
	    1000, &added), GH_OK);
	assert_true(added);
	assert_int_equal(gh_identity_group_member_add(f->db, child.id, u.id,
	    2000, &added), GH_OK);
	assert_false(added);
	assert_int_equal(gh_identity_group_member_add(f->db, solo.id, u.id,
	    3000, &added), GH_OK);
	assert_int_equal(gh_identity_group_member_add(f->db, child.id, v.id,
	    4000, &added), GH_OK);
	assert_int_equal(gh_identity_group_member_add(f->db, child.id,
	    parent.id, 1000, &added), GH_ERR_NOTFOUND);
	assert_int_equal(gh_identity_group_member_add(f->db, u.id, u.id,
	    1000, &added), GH_ERR_NOTFOUND);

	assert_int_equal(gh_identity_user_groups(f->db, u.id, &direct, &eff),
	    GH_OK);
	assert_int_equal(json_array_size(direct), 2);
	assert_string_equal(name_at(direct, 0), "child");
	assert_string_equal(name_at(direct, 1), "solo");
	assert_int_equal(json_array_size(eff), 3);
	assert_string_equal(name_at(eff, 1), "Parent");
	e = json_array_get(eff, 1);
	assert_true(json_is_false(json_object_get(e, "direct")));
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(e, "via"), 0)), child.id);
	assert_true(json_is_true(json_object_get(json_array_get(eff, 0),
	    "direct")));
	json_decref(direct);
	json_decref(eff);

	/* Members page oldest first, with a cursor. */
	assert_int_equal(gh_identity_group_member_list(f->db, child.id, NULL,
	    1, &members, &next), GH_OK);
	assert_int_equal(json_array_size(members), 1);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(members, 0), "username")), "erin");
	assert_null(json_object_get(json_array_get(members, 0),
	    "password_hash"));
	assert_non_null(next);
	json_decref(members);
	cur = next;
	assert_int_equal(gh_identity_group_member_list(f->db, child.id, cur,
	    1, &members, &next), GH_OK);
	free(cur);
	free(next);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(members, 0), "username")), "finn");
	json_decref(members);

	/* Removal, then deleting the user drops the rest. */
	assert_int_equal(gh_identity_group_member_remove(f->db, child.id,
	    u.id), GH_OK);
	assert_int_equal(gh_identity_group_member_remove(f->db, child.id,
	    u.id), GH_ERR_NOTFOUND);
	assert_int_equal(gh_identity_user_groups(f->db, u.id, &direct, &eff),
	    GH_OK);
	assert_int_equal(json_array_size(eff), 1);
	assert_string_equal(name_at(eff, 0), "solo");
	json_decref(direct);
	json_decref(eff);
	assert_int_equal(gh_identity_user_delete(f->db, v.id), GH_OK);
	assert_int_equal(gh_identity_group_member_list(f->db, child.id, NULL,
	    10, &members, &next), GH_OK);
	assert_int_equal(json_array_size(members), 0);
	json_decref(members);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_group_names_are_validated),
		GH_TEST_TENANT(test_group_names_are_unique_ignoring_case),
		GH_TEST_TENANT(test_nesting_is_one_level_without_cycles),
		GH_TEST_TENANT(test_delete_is_refused_while_children_exist),
		GH_TEST_TENANT(test_list_pages_cover_every_group_once),
		GH_TEST_TENANT(test_membership_direct_and_effective),
	};

	return cmocka_run_group_tests_name("identity_group", tests, NULL, NULL);
}
