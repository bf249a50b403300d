/*
 * access_test.c: apps, roles, assignments, the effective view and rules
 * against a real tenant database (plain, without keys): validation,
 * uniqueness, assignment through a child group, the SSO gate, binding
 * expressions to attributes and groups, and applying rules (grant, take
 * back, never an admin's membership), with the audit they write.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access/access_int.h"
#include "identity/identity.h"
#include "store/testing.h"

static struct gh_user
add_user(struct gh_db *db, const char *name)
{
	struct gh_user u;

	assert_int_equal(gh_identity_user_init(&u, name), GH_OK);
	assert_int_equal(gh_identity_user_insert(db, &u), GH_OK);
	return u;
}

static struct gh_group
add_group(struct gh_db *db, const char *name, const char *parent)
{
	struct gh_group g;
	const char *why = NULL;

	assert_int_equal(gh_identity_group_init(&g, name), GH_OK);
	if (parent != NULL)
		gh_strlcpy(g.parent_id, parent, sizeof g.parent_id);
	assert_int_equal(gh_identity_group_insert(db, &g, &why), GH_OK);
	return g;
}

static struct gh_access_app
add_app(struct gh_db *db, const char *name)
{
	struct gh_access_app a;

	assert_int_equal(gh_access_app_init(&a, name), GH_OK);
	assert_int_equal(gh_access_app_insert(db, &a), GH_OK);
	return a;
}

static void
set_attr(struct gh_db *db, const char *user_id, const char *name,
    const char *value)
{
	struct gh_attr_defs defs;
	json_t *attrs = json_pack("{s:s}", name, value);
	char msg[128];

	assert_int_equal(gh_identity_attr_def_list(db, &defs), GH_OK);
	assert_int_equal(gh_identity_attr_values_set(db, NULL, &defs, user_id,
	    attrs, false, NULL, msg, sizeof msg), GH_OK);
	gh_identity_attr_defs_free(&defs);
	json_decref(attrs);
}

static void
define_attr(struct gh_db *db, const char *name, const char *type)
{
	struct gh_attr_def d;
	json_t *body = json_pack("{s:s, s:s}", "name", name, "type", type);
	char msg[128];

	memset(&d, 0, sizeof d);
	assert_int_equal(gh_identity_attr_def_apply(body, true, &d, msg,
	    sizeof msg), GH_OK);
	assert_int_equal(gh_identity_attr_def_insert(db, &d), GH_OK);
	gh_identity_attr_def_clear(&d);
	json_decref(body);
}

static bool
assigned(struct gh_db *db, const char *user_id, const char *app_id)
{
	bool out = true;

	assert_int_equal(gh_access_user_assigned(db, user_id, app_id, &out),
	    GH_OK);
	return out;
}

static int64_t
count(struct gh_db *db, const char *sql)
{
	struct gh_stmt *st;
	bool row;
	int64_t n;

	assert_int_equal(gh_db_prepare(db, sql, &st), GH_OK);
	assert_int_equal(gh_stmt_step(st, &row), GH_OK);
	assert_true(row);
	n = gh_stmt_int(st, 0);
	gh_stmt_free(st);
	return n;
}

static void
test_app_names_kinds_and_roles_are_validated(void **state)
{
	struct gh_access_app a;

	assert_true(gh_access_app_name_valid("Helpdesk (EU)"));
	assert_false(gh_access_app_name_valid(""));
	assert_false(gh_access_app_name_valid(" x"));
	assert_false(gh_access_app_name_valid("a\tb"));
	assert_true(gh_access_app_kind_valid("saml"));
	assert_false(gh_access_app_kind_valid("ldap"));
	assert_true(gh_access_role_name_valid("agent.l2-x_y"));
	assert_false(gh_access_role_name_valid("Agent"));
	assert_false(gh_access_role_name_valid(""));
	assert_int_equal(gh_access_app_init(&a, ""), GH_ERR_INVALID);
}

static void
test_app_names_are_unique_ignoring_case(void **state)
{
	struct gh_test_tenant *f = *state;
	struct gh_access_app a = add_app(f->db, "Helpdesk"), b;

	assert_int_equal(gh_access_app_init(&b, "HELPDESK"), GH_OK);
	assert_int_equal(gh_access_app_insert(f->db, &b), GH_ERR_CONFLICT);
	gh_strlcpy(a.state, "paused", sizeof a.state);
	assert_int_equal(gh_access_app_update(f->db, &a), GH_ERR_INVALID);
	assert_int_equal(gh_access_app_get(f->db, "nope", &b),
	    GH_ERR_NOTFOUND);
}

static void
test_roles_conflict_and_cannot_go_while_used(void **state)
{
	struct gh_test_tenant *f = *state;
	struct gh_access_app a = add_app(f->db, "Helpdesk");
	struct gh_user u = add_user(f->db, "ann");
	char id[GH_ID_LEN + 1], dup[GH_ID_LEN + 1];

	assert_int_equal(gh_access_role_insert(f->db, a.id, "agent", ""),
	    GH_OK);
	assert_int_equal(gh_access_role_insert(f->db, a.id, "agent", ""),
	    GH_ERR_CONFLICT);
	assert_int_equal(gh_access_role_insert(f->db, a.id, "Bad", ""),
	    GH_ERR_INVALID);
	assert_int_equal(gh_access_assignment_add(f->db, a.id, "user", u.id,
	    "ghost", NULL, NULL, id), GH_ERR_NOTFOUND);
	assert_int_equal(gh_access_assignment_add(f->db, a.id, "user", u.id,
	    "agent", NULL, NULL, id), GH_OK);
	assert_int_equal(gh_access_assignment_add(f->db, a.id, "user", u.id,
	    "agent", NULL, NULL, dup), GH_ERR_CONFLICT);
	assert_string_equal(dup, "");
	assert_int_equal(gh_access_role_delete(f->db, a.id, "agent"),
	    GH_ERR_CONFLICT);
	assert_int_equal(gh_access_assignment_delete(f->db, a.id, id), GH_OK);
	assert_int_equal(gh_access_role_delete(f->db, a.id, "agent"), GH_OK);
	assert_int_equal(gh_access_role_delete(f->db, a.id, "agent"),
	    GH_ERR_NOTFOUND);
}

static void
test_group_assignment_reaches_child_group_members(void **state)
{
	struct gh_test_tenant *f = *state;
	struct gh_access_app a = add_app(f->db, "Helpdesk");
	struct gh_group parent = add_group(f->db, "Support", NULL);
	struct gh_group child = add_group(f->db, "Support FR", parent.id);
	struct gh_user ann = add_user(f->db, "ann"), bob = add_user(f->db,
	    "bob");
	char id[GH_ID_LEN + 1];
	json_t *roles, *apps;
	bool added;

	assert_int_equal(gh_access_role_insert(f->db, a.id, "agent", ""),
	    GH_OK);
	assert_int_equal(gh_identity_group_member_add(f->db, child.id, ann.id,
	    1, &added), GH_OK);
	assert_false(assigned(f->db, ann.id, a.id));
	assert_int_equal(gh_access_assignment_add(f->db, a.id, "group",
	    parent.id, "agent", NULL, NULL, id), GH_OK);
	assert_true(assigned(f->db, ann.id, a.id));
	assert_false(assigned(f->db, bob.id, a.id));
	assert_int_equal(gh_access_user_app_roles(f->db, ann.id, a.id, &roles),
	    GH_OK);
	assert_int_equal(json_array_size(roles), 1);
	assert_string_equal(json_string_value(json_array_get(roles, 0)),
	    "agent");
	json_decref(roles);
	assert_int_equal(count(f->db, "SELECT COUNT(*) FROM app_assignees"), 1);

	/* A disabled app lets nobody in, and has no roles to give. */
	gh_strlcpy(a.state, "disabled", sizeof a.state);
	assert_int_equal(gh_access_app_update(f->db, &a), GH_OK);
	assert_false(assigned(f->db, ann.id, a.id));
	assert_int_equal(gh_access_user_app_roles(f->db, ann.id, a.id, &roles),
	    GH_OK);
	assert_int_equal(json_array_size(roles), 0);
	json_decref(roles);
	assert_int_equal(gh_access_user_apps(f->db, ann.id, true, &apps),
	    GH_OK);
	assert_int_equal(json_array_size(apps), 0);
	json_decref(apps);
	assert_int_equal(gh_access_user_apps(f->db, ann.id, false, &apps),
	    GH_OK);
	assert_int_equal(json_array_size(apps), 1);
	json_decref(apps);

	/* Deleting the group drops its assignments. */
	assert_int_equal(gh_identity_group_delete(f->db, child.id, NULL),
	    GH_OK);
	assert_int_equal(gh_identity_group_delete(f->db, parent.id, NULL),
	    GH_OK);
	assert_int_equal(count(f->db, "SELECT COUNT(*) FROM app_assignments"),
	    0);
}

static void
test_compile_binds_attributes_and_groups(void **state)
{
	struct gh_test_tenant *f = *state;
	struct gh_access_rule_error e;
	struct gh_access_rule *r = NULL;

	define_attr(f->db, "department", "string");
	define_attr(f->db, "level", "number");
	add_group(f->db, "Engineering", NULL);
	assert_int_equal(gh_access_rule_compile(f->db, NULL,
	    "department == \"x\" and group(\"ENGINEERING\") and level == "
	    "\"3.0\" and username sw \"a\"", true, &r, &e), GH_OK);
	/* The number literal is put in canonical text. */
	assert_int_equal(r->nodes[4].kind, RK_CMP);
	assert_string_equal(r->nodes[4].name, "level");
	assert_string_equal(r->nodes[4].vals[0], "3");
	gh_access_rule_free(r);
	assert_int_equal(gh_access_rule_compile(f->db, NULL,
	    "cost == \"x\"", true, &r, &e), GH_ERR_NOTFOUND);
	assert_string_equal(e.code, "unknown_attribute");
	assert_string_equal(e.name, "cost");
	assert_int_equal(gh_access_rule_compile(f->db, NULL,
	    "group(\"Nobody\")", true, &r, &e), GH_ERR_NOTFOUND);
	assert_string_equal(e.code, "unknown_group");
	assert_int_equal(gh_access_rule_compile(f->db, NULL,
	    "group(\"Nobody\")", false, &r, &e), GH_OK);
	gh_access_rule_free(r);
	assert_int_equal(gh_access_rule_compile(f->db, NULL,
	    "level == \"high\"", true, &r, &e), GH_ERR_INVALID);
	assert_string_equal(e.code, "invalid_rule");
	assert_null(r);
}

static int64_t
audit_count(struct gh_db *db, const char *action)
{
	char sql[256];

	snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM audit_events WHERE "
	    "action = '%s' AND actor_type = 'system'", action);
	return count(db, sql);
}

static void
test_rules_grant_and_take_back_apps(void **state)
{
	struct gh_test_tenant *f = *state;
	struct gh_access_app a = add_app(f->db, "Helpdesk");
	struct gh_access_rule_row r;
	struct gh_user ann, bob;

	define_attr(f->db, "department", "string");
	ann = add_user(f->db, "ann");
	bob = add_user(f->db, "bob");
	set_attr(f->db, ann.id, "department", "Support");
	set_attr(f->db, bob.id, "department", "Sales");
	memset(&r, 0, sizeof r);
	gh_strlcpy(r.name, "support", sizeof r.name);
	gh_strlcpy(r.expression, "department == \"Support\"",
	    sizeof r.expression);
	gh_strlcpy(r.app_id, a.id, sizeof r.app_id);
	r.enabled = true;
	assert_int_equal(gh_access_rule_insert(f->db, &r), GH_OK);
	assert_int_equal(gh_access_rules_apply_all(f->db, NULL, "req"), GH_OK);
	assert_true(assigned(f->db, ann.id, a.id));
	assert_false(assigned(f->db, bob.id, a.id));
	/* Applying again changes nothing. */
	assert_int_equal(gh_access_rules_apply_all(f->db, NULL, "req"), GH_OK);
	assert_int_equal(audit_count(f->db, "app.assignment.create"), 1);

	set_attr(f->db, ann.id, "department", "Sales");
	assert_int_equal(gh_access_rules_apply_user(f->db, NULL, ann.id, "r"),
	    GH_OK);
	assert_false(assigned(f->db, ann.id, a.id));
	assert_int_equal(audit_count(f->db, "app.assignment.delete"), 1);

	/* Disabled, the rule matches nobody. */
	set_attr(f->db, bob.id, "department", "Support");
	r.enabled = false;
	assert_int_equal(gh_access_rule_update(f->db, &r), GH_OK);
	assert_int_equal(gh_access_rules_apply_user(f->db, NULL, bob.id, "r"),
	    GH_OK);
	assert_false(assigned(f->db, bob.id, a.id));
}

static void
test_rule_memberships_never_undo_an_admins(void **state)
{
	struct gh_test_tenant *f = *state;
	struct gh_group staff = add_group(f->db, "Staff", NULL);
	struct gh_access_rule_row r;
	struct gh_user ann = add_user(f->db, "ann"), bob = add_user(f->db,
	    "bob");
	bool added;

	assert_int_equal(gh_identity_group_member_add(f->db, staff.id, bob.id,
	    1, &added), GH_OK);
	memset(&r, 0, sizeof r);
	gh_strlcpy(r.name, "all", sizeof r.name);
	gh_strlcpy(r.expression, "state == \"active\"", sizeof r.expression);
	gh_strlcpy(r.group_id, staff.id, sizeof r.group_id);
	r.enabled = true;
	assert_int_equal(gh_access_rule_insert(f->db, &r), GH_OK);
	assert_int_equal(gh_access_rules_apply_all(f->db, NULL, "r"), GH_OK);
	assert_int_equal(count(f->db, "SELECT COUNT(*) FROM group_members"), 2);
	assert_int_equal(count(f->db, "SELECT COUNT(*) FROM rule_memberships"),
	    1);
	r.enabled = false;
	assert_int_equal(gh_access_rule_update(f->db, &r), GH_OK);
	assert_int_equal(gh_access_rules_apply_all(f->db, NULL, "r"), GH_OK);
	/* ann (the rule's) went, bob (the admin's) stayed. */
	assert_int_equal(count(f->db, "SELECT COUNT(*) FROM group_members"), 1);
	assert_int_equal(count(f->db, "SELECT COUNT(*) FROM rule_memberships"),
	    0);
	assert_int_equal(audit_count(f->db, "group.member.add"), 1);
	assert_int_equal(audit_count(f->db, "group.member.remove"), 1);
	assert_non_null(ann.id);
}

static void
test_rules_chain_through_group_membership(void **state)
{
	struct gh_test_tenant *f = *state;
	struct gh_group staff = add_group(f->db, "Staff", NULL);
	struct gh_access_app a = add_app(f->db, "Wiki");
	struct gh_access_rule_row r1, r2;
	struct gh_user ann = add_user(f->db, "ann");

	/* r2 (older) gives the app to Staff; r1 puts everyone in Staff. */
	memset(&r2, 0, sizeof r2);
	gh_strlcpy(r2.name, "staff wiki", sizeof r2.name);
	gh_strlcpy(r2.expression, "group(\"staff\")", sizeof r2.expression);
	gh_strlcpy(r2.app_id, a.id, sizeof r2.app_id);
	r2.enabled = true;
	assert_int_equal(gh_access_rule_insert(f->db, &r2), GH_OK);
	memset(&r1, 0, sizeof r1);
	gh_strlcpy(r1.name, "everyone", sizeof r1.name);
	gh_strlcpy(r1.expression, "username != \"\"", sizeof r1.expression);
	gh_strlcpy(r1.group_id, staff.id, sizeof r1.group_id);
	r1.enabled = true;
	assert_int_equal(gh_access_rule_insert(f->db, &r1), GH_OK);
	assert_int_equal(gh_access_rules_apply_user(f->db, NULL, ann.id, "r"),
	    GH_OK);
	assert_true(assigned(f->db, ann.id, a.id));
}

static void
test_dry_run_changes_nothing(void **state)
{
	struct gh_test_tenant *f = *state;
	struct gh_access_app a = add_app(f->db, "Helpdesk");
	struct gh_access_rule_error e;
	struct gh_access_rule *expr = NULL;
	struct gh_access_rule_row r;
	json_t *add, *remove;

	add_user(f->db, "ann");
	add_user(f->db, "bob");
	memset(&r, 0, sizeof r);
	gh_strlcpy(r.app_id, a.id, sizeof r.app_id);
	assert_int_equal(gh_access_rule_compile(f->db, NULL,
	    "username == \"ann\"", true, &expr, &e), GH_OK);
	assert_int_equal(gh_access_rule_dry_run(f->db, expr, &r, &add,
	    &remove), GH_OK);
	assert_int_equal(json_array_size(add), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    add, 0), "username")), "ann");
	assert_int_equal(json_array_size(remove), 0);
	assert_int_equal(count(f->db, "SELECT COUNT(*) FROM app_assignments"),
	    0);
	json_decref(add);
	json_decref(remove);
	gh_access_rule_free(expr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_app_names_kinds_and_roles_are_validated),
		GH_TEST_TENANT(test_app_names_are_unique_ignoring_case),
		GH_TEST_TENANT(test_roles_conflict_and_cannot_go_while_used),
		GH_TEST_TENANT(
		    test_group_assignment_reaches_child_group_members),
		GH_TEST_TENANT(test_compile_binds_attributes_and_groups),
		GH_TEST_TENANT(test_rules_grant_and_take_back_apps),
		GH_TEST_TENANT(test_rule_memberships_never_undo_an_admins),
		GH_TEST_TENANT(test_rules_chain_through_group_membership),
		GH_TEST_TENANT(test_dry_run_changes_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
