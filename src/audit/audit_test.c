/* audit_test.c: audit events and sign-in records on a real tenant store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "store/testing.h"

static const struct gh_audit_actor actor = { "user", "u1", "127.0.0.1",
	"req1" };

static void
append(struct gh_db *db, const char *action, const char *target)
{
	assert_int_equal(gh_db_begin(db), GH_OK);
	assert_int_equal(gh_audit_append(db, &actor, action, "user", target,
	    NULL), GH_OK);
	assert_int_equal(gh_db_commit(db), GH_OK);
}

static void
test_events_list_newest_first_with_cursor(void **state)
{
	struct gh_audit_filter flt = { .limit = 2 };
	struct gh_test_tenant *f = *state;
	int64_t next;
	json_t *ev;

	append(f->db, "user.create", "a");
	append(f->db, "user.update", "a");
	append(f->db, "user.delete", "a");
	assert_int_equal(gh_audit_list(f->db, &flt, &ev, &next), GH_OK);
	assert_int_equal(json_array_size(ev), 2);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(ev, 0), "action")), "user.delete");
	assert_true(next > 0);
	json_decref(ev);
	flt.before_seq = next;
	assert_int_equal(gh_audit_list(f->db, &flt, &ev, &next), GH_OK);
	assert_int_equal(json_array_size(ev), 1);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(ev, 0), "action")), "user.create");
	assert_int_equal(next, 0);
	json_decref(ev);
}

static void
test_filters_select_matching_events(void **state)
{
	struct gh_audit_filter flt = { .limit = 50, .action = "user.update" };
	struct gh_test_tenant *f = *state;
	int64_t next;
	json_t *ev;

	append(f->db, "user.create", "a");
	append(f->db, "user.update", "b");
	assert_int_equal(gh_audit_list(f->db, &flt, &ev, &next), GH_OK);
	assert_int_equal(json_array_size(ev), 1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    json_array_get(ev, 0), "target"), "id")), "b");
	json_decref(ev);
	flt.action = NULL;
	flt.target_id = "zzz";
	assert_int_equal(gh_audit_list(f->db, &flt, &ev, &next), GH_OK);
	assert_int_equal(json_array_size(ev), 0);
	json_decref(ev);
	flt.limit = 0;
	assert_int_equal(gh_audit_list(f->db, &flt, &ev, &next),
	    GH_ERR_INVALID);
}

static void
test_rolled_back_change_leaves_no_event(void **state)
{
	struct gh_audit_filter flt = { .limit = 50 };
	struct gh_test_tenant *f = *state;
	int64_t next;
	json_t *ev;

	assert_int_equal(gh_db_begin(f->db), GH_OK);
	assert_int_equal(gh_audit_append(f->db, &actor, "user.create", "user",
	    "x", NULL), GH_OK);
	gh_db_rollback(f->db);
	assert_int_equal(gh_audit_list(f->db, &flt, &ev, &next), GH_OK);
	assert_int_equal(json_array_size(ev), 0);
	json_decref(ev);
}

static void
test_signins_are_recorded_and_filtered(void **state)
{
	struct gh_signin_filter flt = { .limit = 10, .result = "failure" };
	struct gh_signin_record ok = { "u1", "alice", "10.0.0.1", "curl",
		true, "ok" };
	struct gh_signin_record bad = { NULL, "mallory", "10.0.0.2", "x",
		false, "bad_credentials" };
	struct gh_test_tenant *f = *state;
	int64_t next;
	json_t *ev, *e;

	assert_int_equal(gh_audit_signin_record(f->db, &ok), GH_OK);
	assert_int_equal(gh_audit_signin_record(f->db, &bad), GH_OK);
	assert_int_equal(gh_audit_signin_list(f->db, &flt, &ev, &next), GH_OK);
	assert_int_equal(json_array_size(ev), 1);
	e = json_array_get(ev, 0);
	assert_string_equal(json_string_value(json_object_get(e, "username")),
	    "mallory");
	assert_true(json_is_null(json_object_get(e, "user_id")));
	assert_string_equal(json_string_value(json_object_get(e, "reason")),
	    "bad_credentials");
	json_decref(ev);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		GH_TEST_TENANT(test_events_list_newest_first_with_cursor),
		GH_TEST_TENANT(test_filters_select_matching_events),
		GH_TEST_TENANT(test_rolled_back_change_leaves_no_event),
		GH_TEST_TENANT(test_signins_are_recorded_and_filtered),
	};

	return cmocka_run_group_tests_name("audit", tests, NULL, NULL);
}
