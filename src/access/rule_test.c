/*
 * rule_test.c: the rule expression parser and evaluator, pure: grammar,
 * precedence, case rules of the operators, malformed input with its
 * position, and the length, depth and size bounds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "access/access_int.h"

/* A user: NULL-terminated name/value pairs and group names. */
struct user {
	const char *const *kv;
	const char *const *groups;
};

static const char *
u_value(void *arg, const char *name)
{
	const struct user *u = arg;
	size_t i;

	for (i = 0; u->kv[i] != NULL; i += 2)
		if (strcmp(u->kv[i], name) == 0)
			return u->kv[i + 1];
	return NULL;
}

static bool
u_in_group(void *arg, const char *name)
{
	const struct user *u = arg;
	size_t i;

	for (i = 0; u->groups[i] != NULL; i++)
		if (strcasecmp(u->groups[i], name) == 0)
			return true;
	return false;
}

static const char *const support_kv[] = { "department", "Support",
	"country", "FR", "title", "Senior Agent", "username", "ann", NULL };
static const char *const eng_groups[] = { "Engineering", NULL };
static const char *const no_groups[] = { NULL };
static const struct user support_fr = { support_kv, no_groups };
static const struct user support_eng = { support_kv, eng_groups };

static bool
eval(const char *expr, const struct user *u)
{
	struct gh_access_facts f = { u_value, u_in_group, (void *)u };
	struct gh_access_rule_error e;
	struct gh_access_rule *r = NULL;
	bool out;

	assert_int_equal(gh_access_rule_parse(expr, strlen(expr), &r, &e),
	    GH_OK);
	out = gh_access_rule_eval(r, &f);
	gh_access_rule_free(r);
	return out;
}

/* Parses expr expecting a syntax error at pos. */
static void
refuse(const char *expr, size_t pos)
{
	struct gh_access_rule_error e;
	struct gh_access_rule *r = (void *)1;

	assert_int_equal(gh_access_rule_parse(expr, strlen(expr), &r, &e),
	    GH_ERR_INVALID);
	assert_null(r);
	assert_string_equal(e.code, "invalid_rule");
	if (e.pos != pos)
		fail_msg("%s: position %zu, expected %zu (%s)", expr, e.pos, pos,
		    e.msg);
	assert_non_null(strstr(e.msg, "position"));
}

static void
test_rule_matches_the_issue_example(void **state)
{
	assert_true(eval("department == \"Support\" and country in "
	    "[\"FR\", \"BE\"]", &support_fr));
	assert_false(eval("department == \"Support\" and country in "
	    "[\"DE\", \"BE\"]", &support_fr));
	assert_false(eval("department == \"support\"", &support_fr));
	assert_true(eval("department != \"Sales\"", &support_fr));
}

static void
test_rule_group_and_not(void **state)
{
	const char *e = "group(\"engineering\") and not (title co \"intern\")";

	assert_true(eval(e, &support_eng));
	assert_false(eval(e, &support_fr));
	assert_false(eval("group(\"Engineering\") and not (title co "
	    "\"AGENT\")", &support_eng));
}

static void
test_rule_string_operators_ignore_case(void **state)
{
	assert_true(eval("title sw \"senior\"", &support_fr));
	assert_true(eval("title ew \"AGENT\"", &support_fr));
	assert_true(eval("title co \"or a\"", &support_fr));
	assert_false(eval("title sw \"agent\"", &support_fr));
	assert_false(eval("title ew \"senior\"", &support_fr));
}

static void
test_rule_unset_value_matches_only_not_equal(void **state)
{
	assert_false(eval("manager == \"x\"", &support_fr));
	assert_false(eval("manager in [\"x\"]", &support_fr));
	assert_false(eval("manager co \"\"", &support_fr));
	assert_true(eval("manager != \"x\"", &support_fr));
}

static void
test_rule_and_binds_tighter_than_or(void **state)
{
	/* false and false or true == (false and false) or true */
	assert_true(eval("country == \"DE\" and country == \"BE\" or "
	    "username == \"ann\"", &support_fr));
	assert_false(eval("country == \"DE\" and (country == \"BE\" or "
	    "username == \"ann\")", &support_fr));
	assert_true(eval("not not username == \"ann\"", &support_fr));
}

static void
test_rule_escapes_and_attribute_named_group(void **state)
{
	static const char *const kv[] = { "group", "a\"b\\c", NULL };
	static const struct user u = { kv, no_groups };

	assert_true(eval("group == \"a\\\"b\\\\c\"", &u));
}

static void
test_rule_refuses_malformed_input_with_position(void **state)
{
	refuse("", 0);
	refuse("   ", 0);
	refuse("department", 10);
	refuse("department ==", 13);
	refuse("department == Support", 14);
	refuse("department == \"Support", 14);
	refuse("department = \"x\"", 11);
	refuse("(department == \"x\"", 18);
	refuse("department == \"x\")", 17);
	refuse("country in \"FR\"", 11);
	refuse("country in [\"FR\",]", 17);
	refuse("country in []", 12);
	refuse("group(Engineering)", 6);
	refuse("Department == \"x\"", 0);
	refuse("a == \"x\" and", 12);
	refuse("a == \"x\" xor b == \"y\"", 9);
	refuse("a == \"\\n\"", 6);
	refuse("a == \"\x01\"", 6);
	refuse("a == \"\xff\"", 5);
}

static void
test_rule_refuses_nul_bytes(void **state)
{
	struct gh_access_rule_error e;
	struct gh_access_rule *r = NULL;

	assert_int_equal(gh_access_rule_parse("a == \"x\0\"", 9, &r, &e),
	    GH_ERR_INVALID);
	assert_int_equal(e.pos, 7);
}

static void
test_rule_depth_is_bounded(void **state)
{
	char buf[256];
	size_t i, n = 0;

	for (i = 0; i < 15; i++)
		buf[n++] = '(';
	n += (size_t)sprintf(buf + n, "a == \"x\"");
	for (i = 0; i < 15; i++)
		buf[n++] = ')';
	buf[n] = '\0';
	assert_false(eval(buf, &support_fr));
	/* One more level is refused, as are 17 nots. */
	memmove(buf + 1, buf, n + 1);
	buf[0] = '(';
	strcat(buf, ")");
	refuse(buf, 16);
	n = 0;
	for (i = 0; i < 17; i++)
		n += (size_t)sprintf(buf + n, "not ");
	sprintf(buf + n, "a == \"x\"");
	refuse(buf, 64);
}

static void
test_rule_size_and_length_are_bounded(void **state)
{
	struct gh_access_rule_error e;
	struct gh_access_rule *r = NULL;
	char buf[4096];
	size_t n = 0, i;

	/* 32 comparisons joined by 31 "or": 63 nodes, fine. */
	for (i = 0; i < 32; i++)
		n += (size_t)sprintf(buf + n, "%sa == \"x\"", i ? " or " : "");
	assert_int_equal(gh_access_rule_parse(buf, n, &r, &e), GH_OK);
	gh_access_rule_free(r);
	/* A 33rd is 65 nodes. */
	n += (size_t)sprintf(buf + n, " or a == \"x\"");
	assert_int_equal(gh_access_rule_parse(buf, n, &r, &e), GH_ERR_INVALID);
	assert_non_null(strstr(e.msg, "too many"));
	/* List members count too. */
	n = (size_t)sprintf(buf, "a in [");
	for (i = 0; i < 64; i++)
		n += (size_t)sprintf(buf + n, "%s\"v\"", i ? "," : "");
	n += (size_t)sprintf(buf + n, "]");
	assert_int_equal(gh_access_rule_parse(buf, n, &r, &e), GH_ERR_INVALID);
	/* 2049 bytes is too long even when well-formed. */
	n = (size_t)sprintf(buf, "a == \"");
	memset(buf + n, 'x', 2049 - n - 1);
	buf[2048] = '"';
	assert_int_equal(gh_access_rule_parse(buf, 2049, &r, &e),
	    GH_ERR_INVALID);
	assert_non_null(strstr(e.msg, "too long"));
	assert_int_equal(gh_access_rule_parse(buf + 1, 2048, &r, &e),
	    GH_ERR_INVALID);	/* "== ..." is a syntax error, not length */
	assert_null(strstr(e.msg, "too long"));
}

static void
test_rule_builtin_fields(void **state)
{
	assert_true(gh_access_rule_builtin("username"));
	assert_true(gh_access_rule_builtin("email"));
	assert_true(gh_access_rule_builtin("display_name"));
	assert_true(gh_access_rule_builtin("state"));
	assert_false(gh_access_rule_builtin("role"));
	assert_false(gh_access_rule_builtin("password_hash"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rule_matches_the_issue_example),
		cmocka_unit_test(test_rule_group_and_not),
		cmocka_unit_test(test_rule_string_operators_ignore_case),
		cmocka_unit_test(test_rule_unset_value_matches_only_not_equal),
		cmocka_unit_test(test_rule_and_binds_tighter_than_or),
		cmocka_unit_test(test_rule_escapes_and_attribute_named_group),
		cmocka_unit_test(test_rule_refuses_malformed_input_with_position),
		cmocka_unit_test(test_rule_refuses_nul_bytes),
		cmocka_unit_test(test_rule_depth_is_bounded),
		cmocka_unit_test(test_rule_size_and_length_are_bounded),
		cmocka_unit_test(test_rule_builtin_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
