/* scim_test.c: the SCIM filter parser and evaluator, PATCH paths and
 * PATCH application (suite unit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "scim/scim.h"

static json_t *
alice(void)
{
	json_t *j = json_loads("{\"id\":\"abc\",\"userName\":\"Alice\","
	    "\"externalId\":\"E-1\",\"active\":true,"
	    "\"name\":{\"givenName\":\"Alice\",\"familyName\":\"Liddell\"},"
	    "\"emails\":[{\"value\":\"alice@example.com\",\"type\":\"work\","
	    "\"primary\":true},{\"value\":\"a@home.example\",\"type\":"
	    "\"home\"}],"
	    "\"meta\":{\"lastModified\":\"2026-05-01T10:00:00.000Z\"},"
	    "\"" GH_SCIM_SCHEMA_ENTERPRISE "\":{\"department\":\"Support\","
	    "\"employeeNumber\":\"42\",\"manager\":{\"value\":\"m1\"}}}",
	    0, NULL);

	assert_non_null(j);
	return j;
}

static bool
matches(const char *filter)
{
	struct gh_scim_filter *f;
	char msg[200];
	json_t *r = alice();
	bool m;

	assert_int_equal(gh_scim_filter_parse(filter, &f, msg, sizeof msg),
	    GH_OK);
	m = gh_scim_filter_match(f, r);
	gh_scim_filter_free(f);
	json_decref(r);
	return m;
}

static gh_err
parse_err(const char *filter)
{
	struct gh_scim_filter *f = NULL;
	char msg[200];
	gh_err err;

	err = gh_scim_filter_parse(filter, &f, msg, sizeof msg);
	if (err == GH_OK)
		gh_scim_filter_free(f);
	else
		assert_null(f);
	return err;
}

static void
test_filter_compares_each_operator(void **state)
{
	(void)state;
	assert_true(matches("userName eq \"alice\""));
	assert_false(matches("userName eq \"bob\""));
	assert_true(matches("userName ne \"bob\""));
	assert_true(matches("userName co \"LIC\""));
	assert_true(matches("userName sw \"al\""));
	assert_true(matches("userName ew \"ce\""));
	assert_false(matches("userName ew \"al\""));
	assert_true(matches("title pr") == false);
	assert_true(matches("userName pr"));
	assert_true(matches("userName gt \"Aardvark\""));
	assert_true(matches("userName ge \"alice\""));
	assert_true(matches("userName lt \"b\""));
	assert_true(matches("userName le \"Alice\""));
	assert_true(matches("active eq true"));
	assert_false(matches("active eq false"));
}

static void
test_filter_handles_paths_and_logic(void **state)
{
	(void)state;
	assert_true(matches("emails.value eq \"a@home.example\""));
	assert_true(matches("emails eq \"alice@example.com\""));
	assert_true(matches("emails[type eq \"work\" and value co \"@example.com\"]"));
	assert_false(matches("emails[type eq \"work\" and value co \"home\"]"));
	assert_true(matches("name.familyName eq \"liddell\""));
	assert_true(matches("urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"alice\""));
	assert_true(matches(GH_SCIM_SCHEMA_ENTERPRISE ":department eq \"support\""));
	assert_true(matches(GH_SCIM_SCHEMA_ENTERPRISE ":manager.value eq \"m1\""));
	assert_true(matches("meta.lastModified gt \"2026-05-01T09:59:59Z\""));
	assert_false(matches("meta.lastModified gt \"2026-05-01T10:00:00Z\""));
	assert_true(matches("userName eq \"x\" or (active eq true and not (userName sw \"b\"))"));
	assert_false(matches("NOT (userName eq \"alice\")"));
	assert_true(matches("USERNAME EQ \"ALICE\" AND Active Eq TRUE"));
}

static void
test_filter_id_and_external_id_are_case_exact(void **state)
{
	(void)state;
	assert_true(matches("externalId eq \"E-1\""));
	assert_false(matches("externalId eq \"e-1\""));
	assert_false(matches("id eq \"ABC\""));
}

static void
test_filter_refuses_malformed_text(void **state)
{
	(void)state;
	assert_int_equal(parse_err(""), GH_ERR_INVALID);
	assert_int_equal(parse_err("userName"), GH_ERR_INVALID);
	assert_int_equal(parse_err("userName eq"), GH_ERR_INVALID);
	assert_int_equal(parse_err("userName eq \"a"), GH_ERR_INVALID);
	assert_int_equal(parse_err("userName zz \"a\""), GH_ERR_INVALID);
	assert_int_equal(parse_err("(userName eq \"a\""), GH_ERR_INVALID);
	assert_int_equal(parse_err("userName eq \"a\")"), GH_ERR_INVALID);
	assert_int_equal(parse_err("userName eq \"a\" and"), GH_ERR_INVALID);
	assert_int_equal(parse_err("emails[type eq \"work\""), GH_ERR_INVALID);
	assert_int_equal(parse_err("not userName eq \"a\""), GH_ERR_INVALID);
	assert_int_equal(parse_err("1abc eq \"a\""), GH_ERR_INVALID);
	assert_int_equal(parse_err("userName eq bare"), GH_ERR_INVALID);
	assert_int_equal(parse_err("userName eq {}"), GH_ERR_INVALID);
	assert_int_equal(parse_err("a:b eq \"x\""), GH_ERR_INVALID);
	assert_int_equal(parse_err("userName eq \"\\u0000\""), GH_ERR_INVALID);
}

static void
test_filter_bounds_size_depth_and_nodes(void **state)
{
	char big[GH_SCIM_FILTER_MAX + 20], deep[200], many[1000];
	size_t n = 0;

	(void)state;
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(parse_err(big), GH_ERR_LIMIT);

	/* Ten levels pass, eleven do not. */
	strcpy(deep, "((((((((((a pr))))))))))");
	assert_int_equal(parse_err(deep), GH_OK);
	strcpy(deep, "(((((((((((a pr)))))))))))");
	assert_int_equal(parse_err(deep), GH_ERR_LIMIT);

	/* 25 comparisons joined by 24 ors is 49 nodes; 26 and 25 is 51. */
	many[0] = '\0';
	for (int i = 0; i < 25; i++)
		n += (size_t)sprintf(many + n, "%sa pr", i ? " or " : "");
	assert_int_equal(parse_err(many), GH_OK);
	sprintf(many + n, " or b pr");
	assert_int_equal(parse_err(many), GH_ERR_LIMIT);
}

static void
test_filter_is_eq_spots_the_indexable_case(void **state)
{
	struct gh_scim_filter *f;
	const char *v = NULL;
	char msg[100];

	(void)state;
	assert_int_equal(gh_scim_filter_parse("UserName Eq \"bob\"", &f, msg,
	    sizeof msg), GH_OK);
	assert_true(gh_scim_filter_is_eq(f, "userName", &v));
	assert_string_equal(v, "bob");
	assert_false(gh_scim_filter_is_eq(f, "externalId", &v));
	gh_scim_filter_free(f);
	assert_int_equal(gh_scim_filter_parse("userName co \"bob\"", &f, msg,
	    sizeof msg), GH_OK);
	assert_false(gh_scim_filter_is_eq(f, "userName", &v));
	gh_scim_filter_free(f);
}

static void
test_path_parses_filters_and_sub_attributes(void **state)
{
	struct gh_scim_path *p;
	char msg[100];

	(void)state;
	assert_int_equal(gh_scim_path_parse("emails[type eq \"work\"].value",
	    &p, msg, sizeof msg), GH_OK);
	assert_string_equal(p->attr, "emails");
	assert_non_null(p->filter);
	assert_int_equal(p->filter->root->op, GH_SCIM_EQ);
	assert_string_equal(p->sub, "value");
	gh_scim_path_free(p);

	assert_int_equal(gh_scim_path_parse("members[value eq \"x1\"]", &p,
	    msg, sizeof msg), GH_OK);
	assert_null(p->sub);
	gh_scim_path_free(p);

	assert_int_equal(gh_scim_path_parse("name.givenName", &p, msg,
	    sizeof msg), GH_OK);
	assert_string_equal(p->attr, "name.givenName");
	assert_null(p->filter);
	gh_scim_path_free(p);

	assert_int_equal(gh_scim_path_parse(GH_SCIM_SCHEMA_ENTERPRISE
	    ":manager", &p, msg, sizeof msg), GH_OK);
	gh_scim_path_free(p);

	assert_int_equal(gh_scim_path_parse("emails[type eq \"work\"", &p, msg,
	    sizeof msg), GH_ERR_INVALID);
	assert_null(p);
	assert_int_equal(gh_scim_path_parse("emails[type eq \"work\"].a.b", &p,
	    msg, sizeof msg), GH_ERR_INVALID);
	assert_int_equal(gh_scim_path_parse("name.x[a pr]", &p, msg,
	    sizeof msg), GH_ERR_INVALID);
	assert_int_equal(gh_scim_path_parse("", &p, msg, sizeof msg),
	    GH_ERR_INVALID);
	assert_int_equal(gh_scim_path_parse("active x", &p, msg, sizeof msg),
	    GH_ERR_INVALID);
}

static json_t *
patched(const char *ops_text, gh_err want)
{
	json_t *r = alice(), *ops = json_loads(ops_text, 0, NULL);
	const char *type = NULL;
	char msg[200];

	assert_non_null(ops);
	assert_int_equal(gh_scim_patch_apply(r, ops, msg, sizeof msg, &type),
	    want);
	if (want != GH_OK)
		assert_non_null(type);
	json_decref(ops);
	return r;
}

static void
test_patch_replaces_adds_and_removes(void **state)
{
	json_t *r;

	(void)state;
	/* Entra ID: capitalised ops, paths, string booleans left to the
	 * caller's mapping. */
	r = patched("[{\"op\":\"Replace\",\"path\":\"emails[type eq \\\"work\\\"].value\","
	    "\"value\":\"new@example.com\"},{\"op\":\"Replace\",\"path\":"
	    "\"name.givenName\",\"value\":\"Al\"},{\"op\":\"Add\",\"path\":"
	    "\"" GH_SCIM_SCHEMA_ENTERPRISE ":department\",\"value\":\"Sales\"},"
	    "{\"op\":\"Remove\",\"path\":\"externalId\"}]", GH_OK);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    json_object_get(r, "emails"), 0), "value")), "new@example.com");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    r, "name"), "givenName")), "Al");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    r, GH_SCIM_SCHEMA_ENTERPRISE), "department")), "Sales");
	assert_null(json_object_get(r, "externalId"));
	json_decref(r);

	/* Okta: replace without a path. */
	r = patched("[{\"op\":\"replace\",\"value\":{\"active\":false,"
	    "\"" GH_SCIM_SCHEMA_ENTERPRISE "\":{\"division\":\"EU\"}}}]", GH_OK);
	assert_true(json_is_false(json_object_get(r, "active")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    r, GH_SCIM_SCHEMA_ENTERPRISE), "division")), "EU");
	json_decref(r);

	/* A filter that matches nothing makes the element it names. */
	r = patched("[{\"op\":\"replace\",\"path\":\"emails[type eq \\\"other\\\"].value\","
	    "\"value\":\"o@example.com\"}]", GH_OK);
	assert_int_equal(json_array_size(json_object_get(r, "emails")), 3);
	json_decref(r);

	/* Remove by filter, and remove of what is absent. */
	r = patched("[{\"op\":\"remove\",\"path\":\"emails[type eq \\\"home\\\"]\"},"
	    "{\"op\":\"remove\",\"path\":\"emails[type eq \\\"none\\\"]\"}]",
	    GH_OK);
	assert_int_equal(json_array_size(json_object_get(r, "emails")), 1);
	json_decref(r);
}

static void
test_patch_members_in_entra_and_okta_shapes(void **state)
{
	json_t *r = json_loads("{\"displayName\":\"g\",\"members\":[]}", 0,
	    NULL), *ops;
	const char *type;
	char msg[200];

	(void)state;
	ops = json_loads("[{\"op\":\"add\",\"path\":\"members\",\"value\":"
	    "[{\"value\":\"u1\"},{\"value\":\"u2\"}]},{\"op\":\"add\",\"path\":"
	    "\"members\",\"value\":[{\"value\":\"u1\"}]}]", 0, NULL);
	assert_int_equal(gh_scim_patch_apply(r, ops, msg, sizeof msg, &type),
	    GH_OK);
	assert_int_equal(json_array_size(json_object_get(r, "members")), 2);
	json_decref(ops);
	ops = json_loads("[{\"op\":\"remove\",\"path\":\"members[value eq "
	    "\\\"u1\\\"]\"}]", 0, NULL);
	assert_int_equal(gh_scim_patch_apply(r, ops, msg, sizeof msg, &type),
	    GH_OK);
	assert_int_equal(json_array_size(json_object_get(r, "members")), 1);
	json_decref(ops);
	ops = json_loads("[{\"op\":\"Remove\",\"path\":\"members\",\"value\":"
	    "[{\"value\":\"u2\"}]}]", 0, NULL);
	assert_int_equal(gh_scim_patch_apply(r, ops, msg, sizeof msg, &type),
	    GH_OK);
	assert_int_equal(json_array_size(json_object_get(r, "members")), 0);
	json_decref(ops);
	json_decref(r);
}

static void
test_patch_refuses_bad_operations(void **state)
{
	(void)state;
	json_decref(patched("[]", GH_ERR_INVALID));
	json_decref(patched("{}", GH_ERR_INVALID));
	json_decref(patched("[{\"op\":\"move\",\"path\":\"a\"}]",
	    GH_ERR_INVALID));
	json_decref(patched("[{\"path\":\"a\"}]", GH_ERR_INVALID));
	json_decref(patched("[{\"op\":\"remove\"}]", GH_ERR_INVALID));
	json_decref(patched("[{\"op\":\"add\",\"path\":\"a[\"}]",
	    GH_ERR_INVALID));
	json_decref(patched("[{\"op\":\"add\",\"path\":\"userName\"}]",
	    GH_ERR_INVALID));
	json_decref(patched("[{\"op\":\"replace\",\"value\":3}]",
	    GH_ERR_INVALID));
	json_decref(patched("[{\"op\":\"replace\",\"path\":\"emails[type co "
	    "\\\"x\\\"].value\",\"value\":\"v\"}]", GH_ERR_INVALID));
	json_decref(patched("[{\"op\":\"replace\",\"path\":\"userName[a pr]\","
	    "\"value\":{}}]", GH_ERR_INVALID));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter_compares_each_operator),
		cmocka_unit_test(test_filter_handles_paths_and_logic),
		cmocka_unit_test(test_filter_id_and_external_id_are_case_exact),
		cmocka_unit_test(test_filter_refuses_malformed_text),
		cmocka_unit_test(test_filter_bounds_size_depth_and_nodes),
		cmocka_unit_test(test_filter_is_eq_spots_the_indexable_case),
		cmocka_unit_test(test_path_parses_filters_and_sub_attributes),
		cmocka_unit_test(test_patch_replaces_adds_and_removes),
		cmocka_unit_test(test_patch_members_in_entra_and_okta_shapes),
		cmocka_unit_test(test_patch_refuses_bad_operations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
