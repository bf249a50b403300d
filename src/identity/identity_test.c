/* identity_test.c: validators, users, organisations and custom attributes
 * on a real store (and, for encrypted attributes, a real file-provider
 * kms in a temporary directory). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/identity.h"
#include "store/testing.h"

/* The tenant, and a kms for the encrypted attributes. */
struct fixture {
	struct gh_test_tenant *t;
	struct gh_db *db;	/* t->db */
	struct gh_kms *kms;	/* only after kms_setup */
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	if (f == NULL || (f->t = gh_test_tenant_new("identity", NULL)) ==
	    NULL) {
		free(f);
		return -1;
	}
	f->db = f->t->db;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	gh_kms_free(f->kms);
	gh_test_tenant_free(f->t);
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

	assert_int_equal(gh_store_directory(f->t->st, &dir), GH_OK);
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
	memset(&got, 0, sizeof got);
	assert_int_equal(gh_identity_org_get_id(dir, o.id, &got), GH_OK);
	assert_string_equal(got.slug, "acme");
	assert_string_equal(got.region, "eu");
	assert_int_equal(gh_identity_org_get_id(dir, f->t->org_id, &got),
	    GH_ERR_NOTFOUND);
	assert_int_equal(gh_identity_org_get_id(dir, "../x", &got),
	    GH_ERR_NOTFOUND);
	gh_db_release(dir);
}

/* A second store on the same data directory stands for another process
 * (the CLI): the cache must see its commits on the next lookup. */
static void
test_org_cache_sees_every_commit_of_another_store(void **state)
{
	struct fixture *f = *state;
	struct gh_org_cache *c;
	struct gh_store *other;
	struct gh_db *dir;
	struct gh_org o, got;

	assert_int_equal(gh_identity_org_cache_new(&c), GH_OK);
	assert_int_equal(gh_store_open(f->t->dir, false, &other), GH_OK);
	assert_int_equal(gh_identity_org_cache_get(c, f->t->st, "acme", &got),
	    GH_ERR_NOTFOUND);
	assert_int_equal(gh_store_directory(other, &dir), GH_OK);
	assert_int_equal(gh_identity_org_create(dir, "acme", "Acme", "eu", &o),
	    GH_OK);
	gh_db_release(dir);
	/* Found, then served from memory. */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(gh_identity_org_cache_get(c, f->t->st, "acme",
		    &got), GH_OK);
		assert_string_equal(got.id, o.id);
		assert_string_equal(got.state, "active");
	}
	assert_int_equal(gh_store_directory(other, &dir), GH_OK);
	assert_int_equal(gh_db_begin(dir), GH_OK);
	assert_int_equal(gh_identity_org_set_state(dir, o.id, "suspended"),
	    GH_OK);
	/* Not before the commit... */
	assert_int_equal(gh_identity_org_cache_get(c, f->t->st, "acme", &got),
	    GH_OK);
	assert_string_equal(got.state, "active");
	assert_int_equal(gh_db_commit(dir), GH_OK);
	gh_db_release(dir);
	/* ...and at once after it. */
	assert_int_equal(gh_identity_org_cache_get(c, f->t->st, "acme", &got),
	    GH_OK);
	assert_string_equal(got.state, "suspended");
	assert_int_equal(gh_store_directory(other, &dir), GH_OK);
	assert_int_equal(gh_identity_org_set_name(dir, o.id, "Acme Two"),
	    GH_OK);
	gh_db_release(dir);
	assert_int_equal(gh_identity_org_cache_get(c, f->t->st, "acme", &got),
	    GH_OK);
	assert_string_equal(got.name, "Acme Two");
	assert_int_equal(gh_store_directory(other, &dir), GH_OK);
	assert_int_equal(gh_identity_org_set_state(dir, o.id, "deleted"),
	    GH_OK);
	gh_db_release(dir);
	assert_int_equal(gh_identity_org_cache_get(c, f->t->st, "acme", &got),
	    GH_OK);
	assert_string_equal(got.state, "deleted");
	assert_int_equal(gh_identity_org_cache_get(c, f->t->st, "../x", &got),
	    GH_ERR_NOTFOUND);
	gh_store_free(other);
	gh_identity_org_cache_free(c);
}

/* ---- custom attributes ------------------------------------------------------ */

/* A file-provider kms beside the store, with keys for the fixture's org. */
static void
kms_setup(struct fixture *f)
{
	char master[128], keystore[128], err[256] = "";
	struct gh_kms_config cfg = { .provider = "file",
		.master_key_file = master, .key_store_file = keystore };

	snprintf(master, sizeof master, "%s/master.key", f->t->dir);
	snprintf(keystore, sizeof keystore, "%s/keys.db", f->t->dir);
	if (gh_kms_create(&cfg, err, sizeof err) != GH_OK)
		fail_msg("gh_kms_create: %s", err);
	if (gh_kms_open(&cfg, &f->kms, err, sizeof err) != GH_OK)
		fail_msg("gh_kms_open: %s", err);
	assert_int_equal(gh_kms_org_create(f->kms, f->t->org_id), GH_OK);
}

/* Defines an attribute from a JSON text body; returns the stored row. */
static struct gh_attr_def
define(struct gh_db *db, const char *body_text)
{
	struct gh_attr_def d;
	json_t *body = json_loads(body_text, 0, NULL);
	char msg[200];

	assert_non_null(body);
	memset(&d, 0, sizeof d);
	if (gh_identity_attr_def_apply(body, true, &d, msg, sizeof msg) != GH_OK)
		fail_msg("%s: %s", body_text, msg);
	assert_int_equal(gh_identity_attr_def_insert(db, &d), GH_OK);
	json_decref(body);
	return d;
}

static gh_err
set_values(struct fixture *f, const char *user_id, const char *attrs_text,
    bool creating, json_t *changes, char *msg, size_t cap)
{
	struct gh_attr_defs defs;
	json_t *attrs = json_loads(attrs_text, 0, NULL);
	gh_err err;

	assert_non_null(attrs);
	assert_int_equal(gh_identity_attr_def_list(f->db, &defs), GH_OK);
	err = gh_identity_attr_values_set(f->db, f->kms, &defs, user_id, attrs,
	    creating, changes, msg, cap);
	gh_identity_attr_defs_free(&defs);
	json_decref(attrs);
	return err;
}

static void
expect_invalid_def(const char *body_text, bool create, const char *needle)
{
	struct gh_attr_def d;
	json_t *body = json_loads(body_text, 0, NULL);
	char msg[200] = "";

	memset(&d, 0, sizeof d);
	if (!create)
		assert_true(gh_identity_attr_type_parse("string", &d.type));
	assert_int_equal(gh_identity_attr_def_apply(body, create, &d, msg,
	    sizeof msg), GH_ERR_INVALID);
	if (strstr(msg, needle) == NULL)
		fail_msg("%s: message \"%s\" lacks \"%s\"", body_text, msg,
		    needle);
	gh_identity_attr_def_clear(&d);
	json_decref(body);
}

static void
test_attr_definitions_are_validated(void **state)
{
	(void)state;
	assert_true(gh_identity_attr_name_valid("department_2"));
	assert_false(gh_identity_attr_name_valid(""));
	assert_false(gh_identity_attr_name_valid("Department"));
	assert_false(gh_identity_attr_name_valid("cost-centre"));
	assert_false(gh_identity_attr_name_valid("a.b"));
	assert_true(gh_identity_attr_name_valid(
	    "a234567890123456789012345678901234567890123456789012345678901234"));
	assert_false(gh_identity_attr_name_valid(
	    "a2345678901234567890123456789012345678901234567890123456789012345"));
	expect_invalid_def("{\"name\": \"x\"}", true, "type: required");
	expect_invalid_def("{\"name\": \"X\", \"type\": \"string\"}", true,
	    "name:");
	expect_invalid_def("{\"name\": \"x\", \"type\": \"text\"}", true,
	    "type:");
	expect_invalid_def("{\"name\": \"x\", \"type\": \"enum\"}", true,
	    "enum_values: required");
	expect_invalid_def("{\"name\": \"x\", \"type\": \"enum\", "
	    "\"enum_values\": []}", true, "enum_values");
	expect_invalid_def("{\"name\": \"x\", \"type\": \"enum\", "
	    "\"enum_values\": [\"a\", \"a\"]}", true, "distinct");
	expect_invalid_def("{\"name\": \"x\", \"type\": \"enum\", "
	    "\"enum_values\": [\"a\", \"\"]}", true, "non-empty");
	expect_invalid_def("{\"name\": \"x\", \"type\": \"enum\", "
	    "\"enum_values\": [\"a\", 1]}", true, "enum_values");
	expect_invalid_def("{\"name\": \"x\", \"type\": \"string\", "
	    "\"enum_values\": [\"a\"]}", true, "only for type enum");
	expect_invalid_def("{\"name\": \"x\", \"type\": \"string\", "
	    "\"classification\": \"secret\"}", true, "classification:");
	expect_invalid_def("{\"name\": \"x\", \"type\": \"string\", "
	    "\"required\": \"yes\"}", true, "required:");
	expect_invalid_def("{\"name\": \"y\"}", false, "cannot be changed");
	expect_invalid_def("{\"type\": \"enum\"}", false, "enum_values");
}

static void
expect_canon(const struct gh_attr_def *d, const char *json_text,
    const char *want)
{
	json_t *v = json_loads(json_text, JSON_DECODE_ANY, NULL);
	struct gh_buf b;
	char msg[200] = "";
	gh_err err;

	assert_non_null(v);
	gh_buf_init(&b, 4096, 0);
	err = gh_identity_attr_canon_json(d, v, &b, msg, sizeof msg);
	if (want == NULL) {
		if (err != GH_ERR_INVALID)
			fail_msg("%s accepted as %s", json_text, gh_buf_cstr(&b));
		assert_non_null(strstr(msg, d->name));
	} else {
		if (err != GH_OK)
			fail_msg("%s refused: %s", json_text, msg);
		assert_string_equal(gh_buf_cstr(&b), want);
	}
	gh_buf_free(&b);
	json_decref(v);
}

static void
test_attr_values_are_validated_and_canonical(void **state)
{
	struct gh_attr_def d;
	char big[GH_ATTR_STRING_MAX + 4];
	struct gh_buf b;
	char msg[200];

	(void)state;
	memset(&d, 0, sizeof d);
	strcpy(d.name, "v");
	d.type = GH_ATTR_STRING;
	expect_canon(&d, "\"Zoë\"", "Zoë");
	expect_canon(&d, "3", NULL);
	memset(big, 'a', GH_ATTR_STRING_MAX);
	strcpy(big + GH_ATTR_STRING_MAX, "");
	gh_buf_init(&b, 4096, 0);
	assert_int_equal(gh_identity_attr_canon_text(&d, big, &b, msg,
	    sizeof msg), GH_OK);
	strcpy(big + GH_ATTR_STRING_MAX, "a");
	gh_buf_reset(&b);
	assert_int_equal(gh_identity_attr_canon_text(&d, big, &b, msg,
	    sizeof msg), GH_ERR_INVALID);
	gh_buf_reset(&b);
	assert_int_equal(gh_identity_attr_canon_text(&d, "bad\xff", &b, msg,
	    sizeof msg), GH_ERR_INVALID);

	d.type = GH_ATTR_NUMBER;
	expect_canon(&d, "42", "42");
	expect_canon(&d, "-7", "-7");
	expect_canon(&d, "1.0", "1");
	expect_canon(&d, "1e2", "100");
	expect_canon(&d, "0.1", "0.1");
	expect_canon(&d, "-0.0", "0");
	expect_canon(&d, "2.5e300", "2.5e+300");
	expect_canon(&d, "\"42\"", NULL);
	expect_canon(&d, "true", NULL);
	/* A filter's text reaches the same canonical form as the JSON. */
	gh_buf_reset(&b);
	assert_int_equal(gh_identity_attr_canon_text(&d, "100.0", &b, msg,
	    sizeof msg), GH_OK);
	assert_string_equal(gh_buf_cstr(&b), "100");
	gh_buf_reset(&b);
	assert_int_equal(gh_identity_attr_canon_text(&d, "0.10", &b, msg,
	    sizeof msg), GH_OK);
	assert_string_equal(gh_buf_cstr(&b), "0.1");
	for (const char *bad = "01\0" "1.\0" ".5\0" "1e\0" "0x10\0" "1e999\0"
	    "NaN\0" " 1\0"; *bad != '\0'; bad += strlen(bad) + 1) {
		gh_buf_reset(&b);
		if (gh_identity_attr_canon_text(&d, bad, &b, msg, sizeof msg) !=
		    GH_ERR_INVALID)
			fail_msg("number \"%s\" accepted", bad);
	}

	d.type = GH_ATTR_DATE;
	expect_canon(&d, "\"2024-02-29\"", "2024-02-29");
	expect_canon(&d, "\"2000-02-29\"", "2000-02-29");
	expect_canon(&d, "\"1900-02-29\"", NULL);
	expect_canon(&d, "\"2023-02-29\"", NULL);
	expect_canon(&d, "\"2024-04-31\"", NULL);
	expect_canon(&d, "\"2024-13-01\"", NULL);
	expect_canon(&d, "\"2024-1-01\"", NULL);
	expect_canon(&d, "\"0000-01-01\"", NULL);
	expect_canon(&d, "\"2024-01-01T00:00:00Z\"", NULL);

	d.type = GH_ATTR_BOOLEAN;
	expect_canon(&d, "true", "true");
	expect_canon(&d, "false", "false");
	expect_canon(&d, "\"true\"", NULL);
	expect_canon(&d, "1", NULL);

	d.type = GH_ATTR_ENUM;
	d.enum_values = json_pack("[s, s]", "red", "green");
	expect_canon(&d, "\"green\"", "green");
	expect_canon(&d, "\"Green\"", NULL);
	expect_canon(&d, "\"blue\"", NULL);
	gh_identity_attr_def_clear(&d);
	gh_buf_free(&b);
}

static void
test_attr_definitions_crud_and_update_rules(void **state)
{
	struct fixture *f = *state;
	struct gh_attr_def d, got, after;
	struct gh_user u1 = add_user(f->db, "u1"), u2 = add_user(f->db, "u2");
	struct gh_attr_defs defs;
	const char *conflict;
	char msg[200];
	int64_t n;

	d = define(f->db, "{\"name\": \"team\", \"type\": \"enum\", "
	    "\"enum_values\": [\"red\", \"blue\", \"green\"]}");
	gh_identity_attr_def_clear(&d);
	d = define(f->db, "{\"name\": \"age\", \"type\": \"number\"}");
	gh_identity_attr_def_clear(&d);
	memset(&d, 0, sizeof d);
	strcpy(d.name, "age");
	d.type = GH_ATTR_STRING;
	d.classification = GH_ATTR_INTERNAL;
	assert_int_equal(gh_identity_attr_def_insert(f->db, &d), GH_ERR_CONFLICT);
	assert_int_equal(gh_identity_attr_def_list(f->db, &defs), GH_OK);
	assert_int_equal(defs.len, 2);
	assert_string_equal(defs.v[0].name, "age");
	assert_string_equal(defs.v[1].name, "team");
	assert_int_equal(defs.v[1].classification, GH_ATTR_INTERNAL);
	assert_int_equal(json_array_size(defs.v[1].enum_values), 3);
	gh_identity_attr_defs_free(&defs);

	assert_int_equal(set_values(f, u1.id, "{\"team\": \"red\", \"age\": 30}",
	    false, NULL, msg, sizeof msg), GH_OK);
	assert_int_equal(set_values(f, u2.id, "{\"team\": \"red\"}", false, NULL,
	    msg, sizeof msg), GH_OK);

	/* Changing the type while values exist is refused. */
	assert_int_equal(gh_identity_attr_def_get(f->db, "age", &got), GH_OK);
	after = got;
	after.type = GH_ATTR_STRING;
	assert_int_equal(gh_identity_attr_def_update(f->db, f->kms, &got,
	    &after, &conflict), GH_ERR_CONFLICT);
	assert_string_equal(conflict, "attribute_in_use");
	after.type = GH_ATTR_NUMBER;
	after.encrypted = true;
	assert_int_equal(gh_identity_attr_def_update(f->db, f->kms, &got,
	    &after, &conflict), GH_ERR_CONFLICT);
	gh_identity_attr_def_clear(&got);

	/* Removing a member in use is refused; an unused one may go. */
	assert_int_equal(gh_identity_attr_def_get(f->db, "team", &got), GH_OK);
	after = got;
	after.enum_values = json_pack("[s, s]", "blue", "green");
	assert_int_equal(gh_identity_attr_def_update(f->db, f->kms, &got,
	    &after, &conflict), GH_ERR_CONFLICT);
	assert_string_equal(conflict, "attribute_in_use");
	json_decref(after.enum_values);
	after.enum_values = json_pack("[s, s]", "red", "green");
	assert_int_equal(gh_identity_attr_def_update(f->db, f->kms, &got,
	    &after, &conflict), GH_OK);
	json_decref(after.enum_values);
	gh_identity_attr_def_clear(&got);

	/* Unique over duplicates is refused; after a fix it holds. */
	assert_int_equal(gh_identity_attr_def_get(f->db, "team", &got), GH_OK);
	after = got;
	after.unique = true;
	assert_int_equal(gh_identity_attr_def_update(f->db, f->kms, &got,
	    &after, &conflict), GH_ERR_CONFLICT);
	assert_string_equal(conflict, "attribute_not_unique");
	assert_int_equal(set_values(f, u2.id, "{\"team\": \"green\"}", false,
	    NULL, msg, sizeof msg), GH_OK);
	assert_int_equal(gh_identity_attr_def_update(f->db, f->kms, &got,
	    &after, &conflict), GH_OK);
	gh_identity_attr_def_clear(&got);
	assert_int_equal(set_values(f, u2.id, "{\"team\": \"red\"}", false,
	    NULL, msg, sizeof msg), GH_ERR_CONFLICT);
	assert_non_null(strstr(msg, "team"));

	/* Deleting the definition deletes its values. */
	assert_int_equal(gh_identity_attr_def_get(f->db, "team", &got), GH_OK);
	assert_int_equal(gh_identity_attr_def_delete(f->db, &got, &n), GH_OK);
	assert_int_equal(n, 2);
	assert_int_equal(gh_identity_attr_def_delete(f->db, &got, &n),
	    GH_ERR_NOTFOUND);
	gh_identity_attr_def_clear(&got);
	assert_int_equal(gh_identity_attr_def_get(f->db, "team", &got),
	    GH_ERR_NOTFOUND);
	assert_int_equal(gh_identity_attr_def_get(f->db, "../x", &got),
	    GH_ERR_NOTFOUND);
}

static void
test_attr_values_set_validate_and_record_changes(void **state)
{
	struct fixture *f = *state;
	struct gh_user u = add_user(f->db, "erin");
	struct gh_attr_def d;
	json_t *changes, *vals;
	char msg[256];

	d = define(f->db, "{\"name\": \"department\", \"type\": \"string\", "
	    "\"required\": true}");
	gh_identity_attr_def_clear(&d);
	d = define(f->db, "{\"name\": \"start\", \"type\": \"date\", "
	    "\"classification\": \"sensitive\"}");
	gh_identity_attr_def_clear(&d);
	d = define(f->db, "{\"name\": \"badge\", \"type\": \"number\", "
	    "\"unique\": true}");
	gh_identity_attr_def_clear(&d);

	assert_int_equal(set_values(f, u.id, "{}", true, NULL, msg, sizeof msg),
	    GH_ERR_INVALID);
	assert_non_null(strstr(msg, "attributes.department: required"));
	assert_int_equal(set_values(f, u.id, "{\"department\": \"x\", "
	    "\"nope\": 1, \"zilch\": 2}", true, NULL, msg, sizeof msg),
	    GH_ERR_INVALID);
	assert_non_null(strstr(msg, "nope"));
	assert_non_null(strstr(msg, "zilch"));
	assert_int_equal(set_values(f, u.id, "{\"department\": \"x\", "
	    "\"start\": \"2024-02-30\"}", true, NULL, msg, sizeof msg),
	    GH_ERR_INVALID);
	assert_non_null(strstr(msg, "attributes.start"));

	changes = json_object();
	assert_int_equal(set_values(f, u.id, "{\"department\": \"Sales\", "
	    "\"start\": \"2024-02-29\", \"badge\": 7.0}", true, changes, msg,
	    sizeof msg), GH_OK);
	assert_string_equal(json_string_value(json_object_get(changes,
	    "attributes.department")), "Sales");
	assert_int_equal(json_integer_value(json_object_get(changes,
	    "attributes.badge")), 7);
	json_decref(changes);

	changes = json_object();
	assert_int_equal(set_values(f, u.id, "{\"department\": \"Ops\", "
	    "\"badge\": 7, \"start\": null}", false, changes, msg, sizeof msg),
	    GH_OK);
	/* badge is the same value (7.0 == 7): no change recorded. */
	assert_int_equal(json_object_size(changes), 2);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    changes, "attributes.department"), "from")), "Sales");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    changes, "attributes.department"), "to")), "Ops");
	assert_true(json_is_null(json_object_get(json_object_get(changes,
	    "attributes.start"), "to")));
	json_decref(changes);
	assert_int_equal(set_values(f, u.id, "{\"department\": null}", false,
	    NULL, msg, sizeof msg), GH_ERR_INVALID);
	assert_non_null(strstr(msg, "cannot be cleared"));

	assert_int_equal(set_values(f, u.id, "{\"start\": \"2020-01-01\"}",
	    false, NULL, msg, sizeof msg), GH_OK);
	assert_int_equal(gh_identity_attr_values_json(f->db, NULL, u.id,
	    GH_ATTR_SENSITIVE, &vals), GH_OK);
	assert_string_equal(json_string_value(json_object_get(vals,
	    "department")), "Ops");
	assert_int_equal(json_integer_value(json_object_get(vals, "badge")), 7);
	assert_string_equal(json_string_value(json_object_get(vals, "start")),
	    "2020-01-01");
	json_decref(vals);
	/* Below sensitive, the sensitive attribute is hidden. */
	assert_int_equal(gh_identity_attr_values_json(f->db, NULL, u.id,
	    GH_ATTR_PERSONAL, &vals), GH_OK);
	assert_null(json_object_get(vals, "start"));
	assert_non_null(json_object_get(vals, "department"));
	json_decref(vals);

	/* Deleting the user deletes the values (ON DELETE CASCADE). */
	assert_int_equal(gh_identity_user_delete(f->db, u.id), GH_OK);
	assert_int_equal(gh_identity_attr_values_json(f->db, NULL, u.id,
	    GH_ATTR_SENSITIVE, &vals), GH_OK);
	assert_int_equal(json_object_size(vals), 0);
	json_decref(vals);
}

/* The usernames a filtered list returns, sorted, comma-separated. */
static void
list_names(struct fixture *f, const char *name, const char *value,
    char *out, size_t cap)
{
	struct gh_user_filter flt = { .limit = 50 };
	struct gh_attr_cond c = { name, value };
	char *next = NULL, msg[200] = "";
	const char *names[50];
	size_t n;
	json_t *page;

	if (gh_identity_attr_user_list(f->db, f->kms, &flt, &c, 1, &page,
	    &next, msg, sizeof msg) != GH_OK)
		fail_msg("list %s=%s: %s", name, value, msg);
	n = json_array_size(page);
	for (size_t i = 0; i < n; i++)
		names[i] = json_string_value(json_object_get(json_array_get(page,
		    i), "username"));
	/* Insertion sort: a handful of names. */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0;
		    j--) {
			const char *t = names[j];

			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		snprintf(out + strlen(out), cap - strlen(out), "%s%s",
		    i ? "," : "", names[i]);
	json_decref(page);
	assert_null(next);
}

static void
test_attr_filter_returns_exactly_the_matching_users(void **state)
{
	static const struct {
		const char *user, *attrs;
	} people[] = {
		{ "p1", "{\"dept\": \"eng\", \"ssn\": \"123\", \"level\": 3}" },
		{ "p2", "{\"dept\": \"engineering\", \"ssn\": \"1234\", "
		    "\"level\": 30}" },
		{ "p3", "{\"dept\": \"Eng\", \"ssn\": \"12\", \"level\": 3.0}" },
		{ "p4", "{\"dept\": \"eng\", \"ssn\": \"123\"}" },
		{ "p5", "{}" },
	};
	struct fixture *f = *state;
	struct gh_attr_def d;
	char got[256], msg[200];

	kms_setup(f);
	d = define(f->db, "{\"name\": \"dept\", \"type\": \"string\"}");
	gh_identity_attr_def_clear(&d);
	d = define(f->db, "{\"name\": \"ssn\", \"type\": \"string\", "
	    "\"encrypted\": true, \"classification\": \"sensitive\"}");
	gh_identity_attr_def_clear(&d);
	d = define(f->db, "{\"name\": \"level\", \"type\": \"number\"}");
	gh_identity_attr_def_clear(&d);
	for (size_t i = 0; i < sizeof people / sizeof *people; i++) {
		struct gh_user u = add_user(f->db, people[i].user);

		assert_int_equal(set_values(f, u.id, people[i].attrs, true, NULL,
		    msg, sizeof msg), GH_OK);
	}
	list_names(f, "dept", "eng", got, sizeof got);
	assert_string_equal(got, "p1,p4");
	list_names(f, "dept", "en", got, sizeof got);
	assert_string_equal(got, "");
	list_names(f, "dept", "%", got, sizeof got);
	assert_string_equal(got, "");
	list_names(f, "ssn", "123", got, sizeof got);
	assert_string_equal(got, "p1,p4");
	list_names(f, "ssn", "12", got, sizeof got);
	assert_string_equal(got, "p3");
	list_names(f, "ssn", "1", got, sizeof got);
	assert_string_equal(got, "");
	list_names(f, "level", "3", got, sizeof got);
	assert_string_equal(got, "p1,p3");
	list_names(f, "level", "3.00", got, sizeof got);
	assert_string_equal(got, "p1,p3");
}

static void
test_attr_filter_refuses_unknown_names_and_bad_values(void **state)
{
	struct gh_user_filter flt = { .limit = 10 };
	struct fixture *f = *state;
	struct gh_attr_cond c = { "nope", "x" };
	struct gh_attr_def d;
	char *next, msg[200];
	json_t *page;

	d = define(f->db, "{\"name\": \"born\", \"type\": \"date\"}");
	gh_identity_attr_def_clear(&d);
	d = define(f->db, "{\"name\": \"secret\", \"type\": \"string\", "
	    "\"encrypted\": true}");
	gh_identity_attr_def_clear(&d);
	assert_int_equal(gh_identity_attr_user_list(f->db, NULL, &flt, &c, 1,
	    &page, &next, msg, sizeof msg), GH_ERR_INVALID);
	assert_non_null(strstr(msg, "nope"));
	c.name = "born";
	c.value = "yesterday";
	assert_int_equal(gh_identity_attr_user_list(f->db, NULL, &flt, &c, 1,
	    &page, &next, msg, sizeof msg), GH_ERR_INVALID);
	/* An encrypted attribute without keys cannot be searched. */
	c.name = "secret";
	assert_int_equal(gh_identity_attr_user_list(f->db, NULL, &flt, &c, 1,
	    &page, &next, msg, sizeof msg), GH_ERR_DENIED);
}

static void
test_attr_encrypted_values_are_ciphertext_bound_to_their_row(void **state)
{
	static const char secret[] = "Pineapple-Quartz-8841";
	struct fixture *f = *state;
	struct gh_user a = add_user(f->db, "alma"), b = add_user(f->db, "bert");
	struct gh_stmt *st = NULL;
	struct gh_attr_def d;
	json_t *changes, *vals;
	const void *ct;
	size_t ct_len;
	bool row;
	char attrs[128], msg[200];

	d = define(f->db, "{\"name\": \"passport\", \"type\": \"string\", "
	    "\"encrypted\": true, \"unique\": true}");
	gh_identity_attr_def_clear(&d);
	snprintf(attrs, sizeof attrs, "{\"passport\": \"%s\"}", secret);
	/* Without keys nothing is stored. */
	assert_int_equal(set_values(f, a.id, attrs, true, NULL, msg,
	    sizeof msg), GH_ERR_DENIED);

	kms_setup(f);
	changes = json_object();
	assert_int_equal(set_values(f, a.id, attrs, true, changes, msg,
	    sizeof msg), GH_OK);
	assert_string_equal(json_string_value(json_object_get(changes,
	    "attributes.passport")), "set");
	json_decref(changes);
	/* Unique through the blind index. */
	assert_int_equal(set_values(f, b.id, attrs, true, NULL, msg,
	    sizeof msg), GH_ERR_CONFLICT);

	assert_int_equal(gh_db_prepare(f->db, "SELECT value_text, value_ct, "
	    "key_version, blind_index FROM user_attributes", &st), GH_OK);
	assert_int_equal(gh_stmt_step(st, &row), GH_OK);
	assert_true(row);
	assert_true(gh_stmt_is_null(st, 0));
	ct = gh_stmt_blob(st, 1, &ct_len);
	assert_non_null(ct);
	assert_true(ct_len >= strlen(secret) + GH_KMS_OVERHEAD);
	assert_null(memmem(ct, ct_len, secret, strlen(secret)));
	assert_true(gh_stmt_int(st, 2) >= 1);
	assert_int_equal(strlen(gh_stmt_text(st, 3)), 64);
	gh_stmt_free(st);

	assert_int_equal(gh_identity_attr_values_json(f->db, f->kms, a.id,
	    GH_ATTR_SENSITIVE, &vals), GH_OK);
	assert_string_equal(json_string_value(json_object_get(vals,
	    "passport")), secret);
	json_decref(vals);
	assert_int_equal(gh_identity_attr_values_json(f->db, NULL, a.id,
	    GH_ATTR_SENSITIVE, &vals), GH_ERR_DENIED);

	/* The ciphertext moved to another user's row does not decrypt. */
	assert_int_equal(set_values(f, b.id, "{\"passport\": \"other\"}", true,
	    NULL, msg, sizeof msg), GH_OK);
	assert_int_equal(gh_db_exec(f->db, "UPDATE user_attributes SET "
	    "value_ct = (SELECT value_ct FROM user_attributes ORDER BY "
	    "updated_at LIMIT 1), unique_key = NULL WHERE value_ct <> (SELECT "
	    "value_ct FROM user_attributes ORDER BY updated_at LIMIT 1)"),
	    GH_OK);
	assert_int_equal(gh_identity_attr_values_json(f->db, f->kms, b.id,
	    GH_ATTR_SENSITIVE, &vals), GH_ERR_CRYPTO);

	/* An encrypted attribute's change is audited without its value. */
	changes = json_object();
	assert_int_equal(set_values(f, a.id, "{\"passport\": \"X-1\"}", false,
	    changes, msg, sizeof msg), GH_OK);
	assert_string_equal(json_string_value(json_object_get(changes,
	    "attributes.passport")), "changed");
	json_decref(changes);
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
		cmocka_unit_test_setup_teardown(
		    test_org_cache_sees_every_commit_of_another_store, setup,
		    teardown),
		cmocka_unit_test(test_attr_definitions_are_validated),
		cmocka_unit_test(test_attr_values_are_validated_and_canonical),
		cmocka_unit_test_setup_teardown(
		    test_attr_definitions_crud_and_update_rules, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_attr_values_set_validate_and_record_changes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_attr_filter_returns_exactly_the_matching_users, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_attr_filter_refuses_unknown_names_and_bad_values, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_attr_encrypted_values_are_ciphertext_bound_to_their_row,
		    setup, teardown),
	};

	return cmocka_run_group_tests_name("identity", tests, NULL, NULL);
}
