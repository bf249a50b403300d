/*
 * rbac_test.c: permission resolution and the delegation rules, the pure
 * parts on their own and the resolution against a real tenant database
 * (legacy users.role, built-in and custom roles, group and app scopes).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/identity.h"
#include "rbac/rbac.h"
#include "store/testing.h"

static const char GA[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char GB[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
static const char GC[] = "cccccccccccccccccccccccccccccccc";	/* child of A */

static void
test_perm_names_round_trip(void **state)
{
	(void)state;
	for (unsigned b = 0; b < GH_RBAC_PERM_COUNT; b++)
		assert_int_equal(gh_rbac_perm_bit(gh_rbac_perm_name(1u << b)),
		    1u << b);
	assert_int_equal(gh_rbac_perm_bit("users.read"), GH_PERM_USERS_READ);
	assert_int_equal(gh_rbac_perm_bit("users.execute"), 0);
	assert_int_equal(gh_rbac_perm_bit(""), 0);
	assert_int_equal(gh_rbac_perm_bit(NULL), 0);
	assert_null(gh_rbac_perm_name(GH_PERM_USERS_READ | GH_PERM_USERS_WRITE));
}

static void
test_perms_parse_rejects_unknown_names(void **state)
{
	const char *ok[] = { "users.read", "groups.write" };
	const char *bad[] = { "users.read", "root" };
	const char *which = NULL;
	uint32_t p = 0;

	(void)state;
	assert_int_equal(gh_rbac_perms_parse(ok, 2, &p, &which), GH_OK);
	assert_int_equal(p, GH_PERM_USERS_READ | GH_PERM_GROUPS_WRITE);
	assert_int_equal(gh_rbac_perms_parse(bad, 2, &p, &which),
	    GH_ERR_INVALID);
	assert_string_equal(which, "root");
}

static void
test_builtin_roles_have_the_documented_permissions(void **state)
{
	enum gh_rbac_scope kind;
	uint32_t p;

	(void)state;
	assert_true(gh_rbac_builtin("owner", &p, &kind));
	assert_int_equal(p, GH_PERM_ALL);
	assert_int_equal(kind, GH_SCOPE_ORG);
	assert_true(gh_rbac_builtin("user_admin", &p, &kind));
	assert_int_equal(kind, GH_SCOPE_GROUPS);
	assert_true(p & GH_PERM_USERS_WRITE);
	assert_false(p & GH_PERM_AUDIT_READ);
	assert_true(gh_rbac_builtin("auditor", &p, &kind));
	assert_int_equal(p & (GH_PERM_USERS_WRITE | GH_PERM_GROUPS_WRITE |
	    GH_PERM_ORG_WRITE | GH_PERM_ROLES_WRITE | GH_PERM_APPS_WRITE |
	    GH_PERM_POLICIES_WRITE), 0);
	assert_true(p & GH_PERM_AUDIT_READ);
	assert_true(gh_rbac_builtin("app_admin", &p, &kind));
	assert_int_equal(kind, GH_SCOPE_APPS);
	assert_false(gh_rbac_builtin("member", &p, &kind));
	assert_false(gh_rbac_builtin("Owner", &p, &kind));
}

static void
test_scoped_grants_drop_permissions_that_do_not_apply(void **state)
{
	struct gh_rbac_grants g = { 0 };

	(void)state;
	assert_int_equal(gh_rbac_grants_add(&g, GH_PERM_USERS_READ |
	    GH_PERM_AUDIT_READ | GH_PERM_ORG_WRITE, GH_SCOPE_GROUPS, GA),
	    GH_OK);
	assert_true(gh_rbac_holds(&g, GH_PERM_USERS_READ));
	assert_false(gh_rbac_holds(&g, GH_PERM_AUDIT_READ));
	assert_false(gh_rbac_holds(&g, GH_PERM_ORG_WRITE));
	assert_false(gh_rbac_holds_org(&g, GH_PERM_USERS_READ));
	gh_rbac_grants_free(&g);
}

static void
test_group_scope_covers_the_group_and_its_children(void **state)
{
	struct gh_rbac_grants g = { 0 };

	(void)state;
	assert_int_equal(gh_rbac_grants_add(&g, GH_PERM_USERS_WRITE |
	    GH_PERM_GROUPS_WRITE, GH_SCOPE_GROUPS, GA), GH_OK);
	assert_true(gh_rbac_covers_group(&g, GH_PERM_GROUPS_WRITE, GA, ""));
	assert_true(gh_rbac_covers_group(&g, GH_PERM_GROUPS_WRITE, GC, GA));
	assert_false(gh_rbac_covers_group(&g, GH_PERM_GROUPS_WRITE, GB, ""));
	assert_false(gh_rbac_covers_group(&g, GH_PERM_GROUPS_READ, GA, ""));
	assert_false(gh_rbac_covers_app(&g, GH_PERM_GROUPS_WRITE, GA));
	assert_false(gh_rbac_covers_group(&g, 0, GA, ""));
	gh_rbac_grants_free(&g);
}

static void
test_nobody_grants_what_they_do_not_hold(void **state)
{
	struct gh_rbac_grants g = { 0 };
	struct gh_rbac_target a = { GA, NULL }, b = { GB, NULL },
	    c = { GC, GA };
	const char *missing = NULL;
	bool oos = false;
	uint32_t ua;

	(void)state;
	assert_true(gh_rbac_builtin("user_admin", &ua, NULL));
	/* A user admin of A who may also delegate within A. */
	assert_int_equal(gh_rbac_grants_add(&g, ua | GH_PERM_ROLES_WRITE,
	    GH_SCOPE_GROUPS, GA), GH_OK);
	assert_int_equal(gh_rbac_may_grant(&g, ua, GH_SCOPE_GROUPS, &a, 1,
	    &missing, &oos), GH_OK);
	assert_int_equal(gh_rbac_may_grant(&g, ua, GH_SCOPE_GROUPS, &c, 1,
	    &missing, &oos), GH_OK);
	/* Not over B: held, but out of scope. */
	assert_int_equal(gh_rbac_may_grant(&g, ua, GH_SCOPE_GROUPS, &b, 1,
	    &missing, &oos), GH_ERR_DENIED);
	assert_true(oos);
	assert_non_null(missing);
	/* Not org-wide either. */
	assert_int_equal(gh_rbac_may_grant(&g, GH_PERM_USERS_READ,
	    GH_SCOPE_ORG, NULL, 0, &missing, &oos), GH_ERR_DENIED);
	/* Not a permission it does not hold at all; that is named even
	 * when another is merely out of scope. */
	assert_int_equal(gh_rbac_may_grant(&g, GH_PERM_AUDIT_READ,
	    GH_SCOPE_GROUPS, &a, 1, &missing, &oos), GH_ERR_DENIED);
	assert_string_equal(missing, "audit.read");
	assert_false(oos);
	assert_int_equal(gh_rbac_may_grant(&g, GH_PERM_USERS_READ |
	    GH_PERM_AUDIT_READ, GH_SCOPE_ORG, NULL, 0, &missing, &oos),
	    GH_ERR_DENIED);
	assert_string_equal(missing, "audit.read");
	assert_false(oos);
	gh_rbac_grants_free(&g);
}

static void
test_delegating_needs_roles_write(void **state)
{
	struct gh_rbac_grants g = { 0 };
	struct gh_rbac_target a = { GA, NULL };
	const char *missing = NULL;
	bool oos = false;

	(void)state;
	assert_int_equal(gh_rbac_grants_add(&g, GH_PERM_USERS_READ,
	    GH_SCOPE_GROUPS, GA), GH_OK);
	assert_int_equal(gh_rbac_may_grant(&g, GH_PERM_USERS_READ,
	    GH_SCOPE_GROUPS, &a, 1, &missing, &oos), GH_ERR_DENIED);
	assert_string_equal(missing, "roles.write");
	gh_rbac_grants_free(&g);
}

static void
test_role_names_may_not_shadow_builtins(void **state)
{
	(void)state;
	assert_true(gh_rbac_role_name_valid("Helpdesk lead"));
	assert_false(gh_rbac_role_name_valid("Owner"));
	assert_false(gh_rbac_role_name_valid("user_admin"));
	assert_false(gh_rbac_role_name_valid(""));
	assert_false(gh_rbac_role_name_valid(" x"));
	assert_false(gh_rbac_role_name_valid("a;b"));
}

/* ---- against a tenant database ---------------------------------------------- */

static void
mk_user(struct gh_db *db, const char *name, const char *role,
    struct gh_user *u)
{
	assert_int_equal(gh_identity_user_init(u, name), GH_OK);
	gh_strlcpy(u->role, role, sizeof u->role);
	assert_int_equal(gh_identity_user_insert(db, u), GH_OK);
}

static void
mk_group(struct gh_db *db, const char *name, const char *parent,
    struct gh_group *g)
{
	const char *why = NULL;

	assert_int_equal(gh_identity_group_init(g, name), GH_OK);
	if (parent != NULL)
		gh_strlcpy(g->parent_id, parent, sizeof g->parent_id);
	assert_int_equal(gh_identity_group_insert(db, g, &why), GH_OK);
}

static void
assign(struct gh_db *db, const char *user, const char *role,
    enum gh_rbac_scope kind, const char *scope)
{
	struct gh_rbac_assignment a;

	memset(&a, 0, sizeof a);
	gh_strlcpy(a.user_id, user, sizeof a.user_id);
	gh_strlcpy(a.role, role, sizeof a.role);
	a.kind = kind;
	if (scope != NULL) {
		gh_strlcpy(a.scopes[0], scope, sizeof a.scopes[0]);
		a.n_scopes = 1;
	}
	assert_int_equal(gh_rbac_assignment_insert(db, &a, NULL), GH_OK);
}

static void
test_legacy_roles_are_org_wide(void **state)
{
	struct gh_test_tenant *f = *state;
	struct gh_rbac_grants g;
	struct gh_user o, a, m;

	mk_user(f->db, "olga", "owner", &o);
	mk_user(f->db, "adam", "admin", &a);
	mk_user(f->db, "mia", "member", &m);
	assert_int_equal(gh_rbac_grants_load(f->db, o.id, o.role, &g), GH_OK);
	assert_true(g.owner);
	assert_true(gh_rbac_holds_org(&g, GH_PERM_ALL));
	gh_rbac_grants_free(&g);
	assert_int_equal(gh_rbac_grants_load(f->db, a.id, a.role, &g), GH_OK);
	assert_false(g.owner);
	assert_true(gh_rbac_holds_org(&g, GH_PERM_ROLES_WRITE));
	gh_rbac_grants_free(&g);
	assert_int_equal(gh_rbac_grants_load(f->db, m.id, m.role, &g), GH_OK);
	assert_int_equal(g.any, 0);
	gh_rbac_grants_free(&g);
}

static void
test_user_admin_covers_effective_members_only(void **state)
{
	struct gh_test_tenant *f = *state;
	struct gh_group ga, gb, gc;
	struct gh_user ua, in_a, in_c, in_b;
	struct gh_rbac_grants g;
	bool added, in;

	mk_group(f->db, "A", NULL, &ga);
	mk_group(f->db, "B", NULL, &gb);
	mk_group(f->db, "C", ga.id, &gc);
	mk_user(f->db, "ua", "member", &ua);
	mk_user(f->db, "ina", "member", &in_a);
	mk_user(f->db, "inc", "member", &in_c);
	mk_user(f->db, "inb", "member", &in_b);
	assert_int_equal(gh_identity_group_member_add(f->db, ga.id, in_a.id, 1,
	    &added), GH_OK);
	assert_int_equal(gh_identity_group_member_add(f->db, gc.id, in_c.id, 1,
	    &added), GH_OK);
	assert_int_equal(gh_identity_group_member_add(f->db, gb.id, in_b.id, 1,
	    &added), GH_OK);
	assign(f->db, ua.id, "user_admin", GH_SCOPE_GROUPS, ga.id);
	assert_int_equal(gh_rbac_grants_load(f->db, ua.id, ua.role, &g), GH_OK);
	assert_true(gh_rbac_holds(&g, GH_PERM_USERS_WRITE));
	assert_false(gh_rbac_holds_org(&g, GH_PERM_USERS_WRITE));
	assert_int_equal(gh_rbac_covers_user(f->db, &g, GH_PERM_USERS_WRITE,
	    in_a.id, &in), GH_OK);
	assert_true(in);
	assert_int_equal(gh_rbac_covers_user(f->db, &g, GH_PERM_USERS_WRITE,
	    in_c.id, &in), GH_OK);
	assert_true(in);
	assert_int_equal(gh_rbac_covers_user(f->db, &g, GH_PERM_USERS_WRITE,
	    in_b.id, &in), GH_OK);
	assert_false(in);
	/* A permission the role lacks covers nobody. */
	assert_int_equal(gh_rbac_covers_user(f->db, &g, GH_PERM_AUDIT_READ,
	    in_a.id, &in), GH_OK);
	assert_false(in);
	assert_int_equal(gh_rbac_user_privileged(f->db, ua.id, &in), GH_OK);
	assert_true(in);
	assert_int_equal(gh_rbac_user_privileged(f->db, in_a.id, &in), GH_OK);
	assert_false(in);
	gh_rbac_grants_free(&g);
	/* Forgetting the group drops the assignment scoped to it alone. */
	{
		int64_t dropped = -1;

		assert_int_equal(gh_rbac_scope_forget(f->db, gb.id, &dropped),
		    GH_OK);
		assert_int_equal(dropped, 0);
		assert_int_equal(gh_rbac_scope_forget(f->db, ga.id, &dropped),
		    GH_OK);
		assert_int_equal(dropped, 1);
		assert_int_equal(gh_rbac_grants_load(f->db, ua.id, ua.role, &g),
		    GH_OK);
		assert_int_equal(g.any, 0);
		gh_rbac_grants_free(&g);
	}
}

static void
test_app_scopes_cover_the_apps_assigned_users_for_reading(void **state)
{
	struct gh_test_tenant *f = *state;
	struct gh_rbac_grants g;
	struct gh_user u, x;
	bool in = true;

	mk_user(f->db, "appy", "member", &u);
	mk_user(f->db, "xavier", "member", &x);
	assign(f->db, u.id, "app_admin", GH_SCOPE_APPS, GA);
	assert_int_equal(gh_rbac_grants_load(f->db, u.id, u.role, &g), GH_OK);
	assert_true(gh_rbac_covers_app(&g, GH_PERM_APPS_WRITE, GA));
	assert_false(gh_rbac_covers_app(&g, GH_PERM_APPS_WRITE, GB));
	assert_int_equal(gh_rbac_covers_user(f->db, &g, GH_PERM_USERS_READ,
	    x.id, &in), GH_OK);
	assert_false(in);
	/* An assignment of the app (the apps capability's view
	 * app_assignees) brings its user into the app admin's read scope. */
	assert_int_equal(gh_db_run(f->db, "INSERT INTO apps (id, name, "
	    "name_key, created_at, updated_at) VALUES (?, 'A', 'a', 1, 1)",
	    "t", GA), GH_OK);
	assert_int_equal(gh_db_run(f->db, "INSERT INTO app_assignments (id, "
	    "app_id, principal_type, user_id, created_at) VALUES "
	    "('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', ?, 'user', ?, 1)", "tt", GA,
	    x.id), GH_OK);
	assert_int_equal(gh_rbac_covers_user(f->db, &g, GH_PERM_USERS_READ,
	    x.id, &in), GH_OK);
	assert_true(in);
	assert_int_equal(gh_rbac_covers_user(f->db, &g, GH_PERM_USERS_WRITE,
	    x.id, &in), GH_OK);
	assert_false(in);
	gh_rbac_grants_free(&g);
}

static void
test_custom_roles_resolve_and_refuse_deletion_while_assigned(void **state)
{
	struct gh_test_tenant *f = *state;
	char id[GH_ID_LEN + 1], other[GH_ID_LEN + 1];
	struct gh_rbac_grants g;
	struct gh_user u;

	mk_user(f->db, "carl", "member", &u);
	assert_int_equal(gh_rbac_role_create(f->db, "Helpdesk", "", 
	    GH_PERM_USERS_READ | GH_PERM_SIGNINS_READ, NULL, id), GH_OK);
	assert_int_equal(gh_rbac_role_create(f->db, "helpdesk", "",
	    GH_PERM_USERS_READ, NULL, other), GH_ERR_CONFLICT);
	assert_int_equal(gh_rbac_role_create(f->db, "admin", "",
	    GH_PERM_USERS_READ, NULL, other), GH_ERR_INVALID);
	assign(f->db, u.id, id, GH_SCOPE_ORG, NULL);
	assert_int_equal(gh_rbac_grants_load(f->db, u.id, u.role, &g), GH_OK);
	assert_true(gh_rbac_holds_org(&g, GH_PERM_USERS_READ |
	    GH_PERM_SIGNINS_READ));
	assert_false(gh_rbac_holds(&g, GH_PERM_USERS_WRITE));
	gh_rbac_grants_free(&g);
	assert_int_equal(gh_rbac_role_update(f->db, id, NULL, NULL, true,
	    GH_PERM_AUDIT_READ), GH_OK);
	assert_int_equal(gh_rbac_grants_load(f->db, u.id, u.role, &g), GH_OK);
	assert_int_equal(g.org, GH_PERM_AUDIT_READ);
	gh_rbac_grants_free(&g);
	assert_int_equal(gh_rbac_role_delete(f->db, id), GH_ERR_CONFLICT);
	assert_int_equal(gh_db_run(f->db, "DELETE FROM role_assignments",
	    ""), GH_OK);
	assert_int_equal(gh_rbac_role_delete(f->db, id), GH_OK);
	assert_int_equal(gh_rbac_role_delete(f->db, id), GH_ERR_NOTFOUND);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_perm_names_round_trip),
		cmocka_unit_test(test_perms_parse_rejects_unknown_names),
		cmocka_unit_test(test_builtin_roles_have_the_documented_permissions),
		cmocka_unit_test(test_scoped_grants_drop_permissions_that_do_not_apply),
		cmocka_unit_test(test_group_scope_covers_the_group_and_its_children),
		cmocka_unit_test(test_nobody_grants_what_they_do_not_hold),
		cmocka_unit_test(test_delegating_needs_roles_write),
		cmocka_unit_test(test_role_names_may_not_shadow_builtins),
		GH_TEST_TENANT(test_legacy_roles_are_org_wide),
		GH_TEST_TENANT(test_user_admin_covers_effective_members_only),
		GH_TEST_TENANT(
		    test_app_scopes_cover_the_apps_assigned_users_for_reading),
		GH_TEST_TENANT(
		  test_custom_roles_resolve_and_refuse_deletion_while_assigned),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
