/*
 * policy_test.c: CIDR parsing and matching, the country file, settings
 * validation, the network decision, and the effective policy of a user
 * against a real tenant database.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/identity.h"
#include "policy/policy.h"
#include "store/store.h"
#include "store/testing.h"

static void
assert_norm(const char *in, const char *want)
{
	char out[GH_CIDR_STR_MAX];
	struct gh_cidr c;

	assert_int_equal(gh_policy_cidr_parse(in, &c), GH_OK);
	gh_policy_cidr_format(&c, out);
	assert_string_equal(out, want);
}

static void
test_cidr_parse_normalises_host_bits_and_bare_addresses(void **state)
{
	assert_norm("10.1.2.3/8", "10.0.0.0/8");
	assert_norm("192.168.1.7", "192.168.1.7/32");
	assert_norm("0.0.0.0/0", "0.0.0.0/0");
	assert_norm("2001:db8::1/32", "2001:db8::/32");
	assert_norm("::1", "::1/128");
	assert_norm("::/0", "::/0");
	assert_norm("fe80::abcd/10", "fe80::/10");
}

static void
test_cidr_parse_refuses_malformed_ranges(void **state)
{
	static const char *const bad[] = { "", "10.0.0.0/33", "::/129",
		"10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/08", "10.0.0/8",
		"300.1.1.1", "10.0.0.0/8/8", "1.2.3.4 /8", "gggg::/16",
		"10.0.0.0/1a", "::1/1000", "localhost", "/8", NULL };
	struct gh_cidr c;

	for (size_t i = 0; bad[i] != NULL; i++)
		assert_int_equal(gh_policy_cidr_parse(bad[i], &c),
		    GH_ERR_INVALID);
	assert_int_equal(gh_policy_cidr_parse(NULL, &c), GH_ERR_INVALID);
}

static bool
match(const char *cidr, const char *ip)
{
	struct gh_cidr c;
	uint8_t a[16];

	assert_int_equal(gh_policy_cidr_parse(cidr, &c), GH_OK);
	assert_int_equal(gh_policy_ip_parse(ip, a), GH_OK);
	return gh_policy_cidr_match(&c, a);
}

static void
test_cidr_match_ipv4_ipv6_and_mapped_addresses(void **state)
{
	assert_true(match("127.0.0.0/8", "127.0.0.1"));
	assert_false(match("127.0.0.0/8", "128.0.0.1"));
	assert_true(match("10.0.0.0/9", "10.127.255.255"));
	assert_false(match("10.0.0.0/9", "10.128.0.0"));
	assert_true(match("0.0.0.0/0", "8.8.8.8"));
	/* An IPv4-mapped IPv6 client counts as IPv4. */
	assert_true(match("127.0.0.0/8", "::ffff:127.0.0.1"));
	/* ::/0 covers mapped IPv4 too; a real IPv6 range does not. */
	assert_false(match("2001:db8::/32", "127.0.0.1"));
	assert_true(match("2001:db8::/32", "2001:db8:ffff::1"));
	assert_false(match("2001:db8::/32", "2001:db9::1"));
	assert_true(match("::1", "::1"));
	assert_false(match("::1", "::2"));
	assert_false(match("0.0.0.0/0", "2001:db8::1"));
}

static void
test_geo_file_most_specific_entry_wins(void **state)
{
	static const char csv[] = "# test\n127.0.0.0/8,FR\n127.0.0.2/32,DE\n"
	    "\n::1,BE\r\n2001:db8::/32, US\n";
	struct gh_geo *geo = NULL;
	char msg[128], cc[3];

	assert_int_equal(gh_geo_parse(csv, sizeof csv - 1, &geo, msg,
	    sizeof msg), GH_OK);
	assert_true(gh_geo_country(geo, "127.0.0.1", cc));
	assert_string_equal(cc, "FR");
	assert_true(gh_geo_country(geo, "127.0.0.2", cc));
	assert_string_equal(cc, "DE");
	assert_true(gh_geo_country(geo, "::1", cc));
	assert_string_equal(cc, "BE");
	assert_true(gh_geo_country(geo, "2001:db8::9", cc));
	assert_string_equal(cc, "US");
	assert_false(gh_geo_country(geo, "8.8.8.8", cc));
	assert_string_equal(cc, "");
	assert_false(gh_geo_country(geo, "not an ip", cc));
	assert_false(gh_geo_country(NULL, "127.0.0.1", cc));
	gh_geo_free(geo);
}

static void
test_geo_file_refuses_bad_lines_naming_them(void **state)
{
	static const char *const bad[] = { "127.0.0.0/8\n", "1.2.3.0/24,fr\n",
		"1.2.3.0/24,FRA\n", "x,FR\n", "ok/8,FR\n", NULL };
	struct gh_geo *geo = NULL;
	char msg[128];

	for (size_t i = 0; bad[i] != NULL; i++) {
		assert_int_equal(gh_geo_parse(bad[i], strlen(bad[i]), &geo, msg,
		    sizeof msg), GH_ERR_INVALID);
		assert_null(geo);
		assert_non_null(strstr(msg, "line 1"));
	}
	assert_int_equal(gh_geo_load("/nonexistent/geo.csv", &geo, msg,
	    sizeof msg), GH_ERR_IO);
}

static json_t *
parse_ok(const char *text)
{
	json_t *in = json_loads(text, 0, NULL), *out = NULL;
	const char *code;
	char msg[200];

	assert_non_null(in);
	assert_int_equal(gh_policy_settings_parse(in, &out, msg, sizeof msg,
	    &code), GH_OK);
	json_decref(in);
	return out;
}

static const char *
parse_bad(const char *text, char msg[static 200])
{
	json_t *in = json_loads(text, 0, NULL), *out = NULL;
	const char *code = NULL;

	assert_non_null(in);
	assert_int_equal(gh_policy_settings_parse(in, &out, msg, 200, &code),
	    GH_ERR_INVALID);
	assert_null(out);
	json_decref(in);
	return code;
}

static void
test_settings_parse_normalises_and_refuses_bad_fields(void **state)
{
	json_t *s;
	char msg[200];
	char *text;

	s = parse_ok("{\"network\": {\"allowed_cidrs\": [\"10.1.0.0/8\", "
	    "\"10.0.0.0/8\", \"::1\"], \"allowed_countries\": [\"fr\"]}, "
	    "\"mfa\": {\"methods\": [\"webauthn\", \"totp\"], \"required\": "
	    "null}, \"session\": {}}");
	text = json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(text, "{\"mfa\":{\"methods\":[\"totp\","
	    "\"webauthn\"]},\"network\":{\"allowed_cidrs\":[\"10.0.0.0/8\","
	    "\"::1/128\"],\"allowed_countries\":[\"FR\"]}}");
	free(text);
	json_decref(s);

	assert_string_equal(parse_bad("{\"network\": {\"allowed_cidrs\": "
	    "[\"10.0.0.0/8\", \"10.0.0.0/40\"]}}", msg), "invalid_cidr");
	assert_non_null(strstr(msg, "allowed_cidrs[1]"));
	assert_non_null(strstr(msg, "10.0.0.0/40"));
	assert_string_equal(parse_bad("{\"network\": {\"allowed_cidrs\": "
	    "[7]}}", msg), "invalid_cidr");
	assert_string_equal(parse_bad("{\"network\": {\"allowed_countries\": "
	    "[\"FRA\"]}}", msg), "invalid_request");
	parse_bad("{\"mfa\": {\"methods\": [\"recovery\"]}}", msg);
	parse_bad("{\"mfa\": {\"methods\": [\"totp\", \"totp\"]}}", msg);
	parse_bad("{\"session\": {\"lifetime_s\": 10}}", msg);
	assert_non_null(strstr(msg, "settings.session.lifetime_s"));
	parse_bad("{\"session\": {\"max_concurrent\": true}}", msg);
	parse_bad("{\"password\": {\"min_length\": 7}}", msg);
	parse_bad("{\"passwords\": {}}", msg);
	parse_bad("{\"mfa\": {\"sometimes\": true}}", msg);
	parse_bad("{\"mfa\": []}", msg);
	parse_bad("[]", msg);
}

static void
test_network_check_fails_closed_on_unknown_country(void **state)
{
	static const char csv[] = "127.0.0.0/8,FR\n";
	struct gh_policy_eff e;
	struct gh_geo *geo = NULL;
	json_t *s;
	char msg[64];

	assert_int_equal(gh_geo_parse(csv, sizeof csv - 1, &geo, msg,
	    sizeof msg), GH_OK);
	s = parse_ok("{\"network\": {\"allowed_cidrs\": [\"127.0.0.0/8\", "
	    "\"2001:db8::/32\"], \"allowed_countries\": [\"FR\"]}}");
	assert_int_equal(gh_policy_eff_read(s, &e), GH_OK);
	assert_int_equal(gh_policy_network_check(&e, "127.0.0.1", geo),
	    GH_POLICY_ALLOW);
	assert_int_equal(gh_policy_network_check(&e, "10.0.0.1", geo),
	    GH_POLICY_IP_BLOCKED);
	/* In the ranges but no country known: refused. */
	assert_int_equal(gh_policy_network_check(&e, "2001:db8::1", geo),
	    GH_POLICY_COUNTRY_BLOCKED);
	assert_int_equal(gh_policy_network_check(&e, "127.0.0.1", NULL),
	    GH_POLICY_COUNTRY_BLOCKED);
	assert_int_equal(gh_policy_network_check(&e, "garbage", geo),
	    GH_POLICY_IP_BLOCKED);
	assert_false(gh_policy_blocks_everywhere(&e));
	json_decref(s);
	s = parse_ok("{\"network\": {\"allowed_cidrs\": []}}");
	assert_int_equal(gh_policy_eff_read(s, &e), GH_OK);
	assert_true(gh_policy_blocks_everywhere(&e));
	assert_int_equal(gh_policy_network_check(&e, "127.0.0.1", geo),
	    GH_POLICY_IP_BLOCKED);
	json_decref(s);
	gh_geo_free(geo);
}

static void
test_mfa_and_session_overlays_only_tighten_where_set(void **state)
{
	struct gh_session_limits lim = { 3600000, 600000 };
	struct gh_mfa_policy pol;
	struct gh_policy_eff e;
	json_t *s;

	gh_auth_mfa_policy_default(&pol);
	s = parse_ok("{\"mfa\": {\"required\": true, \"methods\": [\"totp\"]},"
	    " \"session\": {\"lifetime_s\": 60, \"idle_timeout_s\": 7200}}");
	assert_int_equal(gh_policy_eff_read(s, &e), GH_OK);
	gh_policy_mfa_apply(&e, &pol);
	assert_true(pol.required);
	assert_true(pol.allow_totp);
	assert_false(pol.allow_webauthn);
	gh_policy_session_apply(&e, &lim);
	assert_int_equal(lim.absolute_ms, 60000);
	assert_int_equal(lim.idle_ms, 600000);	/* never lengthened */
	json_decref(s);
}

static void
test_settings_merge_patch_removes_with_null_and_keeps_the_rest(void **state)
{
	json_t *base, *patch, *out = NULL;
	char *text;

	base = parse_ok("{\"session\": {\"lifetime_s\": 600, "
	    "\"max_concurrent\": 2}, \"mfa\": {\"required\": true}}");
	patch = json_loads("{\"session\": {\"max_concurrent\": null, "
	    "\"idle_timeout_s\": 60}, \"mfa\": null, \"network\": "
	    "{\"allowed_countries\": [\"be\"]}}", 0, NULL);
	assert_int_equal(gh_policy_settings_merge(base, patch, &out), GH_OK);
	text = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(text, "{\"network\":{\"allowed_countries\":"
	    "[\"be\"]},\"session\":{\"idle_timeout_s\":60,"
	    "\"lifetime_s\":600}}");
	free(text);
	/* The base is untouched. */
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    base, "session"), "max_concurrent")), 2);
	json_decref(out);
	assert_int_equal(gh_policy_settings_merge(base, json_array_get(NULL,
	    0), &out), GH_ERR_INVALID);
	json_decref(patch);
	json_decref(base);
}

static void
add_policy(struct gh_db *db, const char *name, int64_t prio,
    const char *settings, struct gh_policy *p)
{
	const char *why = NULL;

	memset(p, 0, sizeof *p);
	gh_strlcpy(p->name, name, sizeof p->name);
	p->priority = prio;
	p->settings = parse_ok(settings);
	assert_int_equal(gh_policy_insert(db, p, &why), GH_OK);
}

static void
test_effective_policy_merges_by_priority_with_sources(void **state)
{
	struct gh_test_tenant *f = *state;
	struct gh_policy strict, loose, dup;
	struct gh_group parent, child, other;
	struct gh_policy_eff e;
	struct gh_user u;
	json_t *eff, *fallback;
	const char *why;
	bool added;

	assert_int_equal(gh_identity_user_init(&u, "alice"), GH_OK);
	assert_int_equal(gh_identity_user_insert(f->db, &u), GH_OK);
	assert_int_equal(gh_identity_group_init(&parent, "staff"), GH_OK);
	assert_int_equal(gh_identity_group_insert(f->db, &parent, &why), GH_OK);
	assert_int_equal(gh_identity_group_init(&child, "ops"), GH_OK);
	gh_strlcpy(child.parent_id, parent.id, sizeof child.parent_id);
	assert_int_equal(gh_identity_group_insert(f->db, &child, &why), GH_OK);
	assert_int_equal(gh_identity_group_init(&other, "other"), GH_OK);
	assert_int_equal(gh_identity_group_insert(f->db, &other, &why), GH_OK);
	assert_int_equal(gh_identity_group_member_add(f->db, child.id, u.id,
	    gh_now_ms(), &added), GH_OK);

	add_policy(f->db, "Strict", 10, "{\"session\": {\"max_concurrent\": 1},"
	    " \"network\": {\"allowed_cidrs\": [\"10.0.0.0/8\"]}}", &strict);
	add_policy(f->db, "Loose", 20, "{\"session\": {\"max_concurrent\": 5,"
	    " \"lifetime_s\": 600}}", &loose);
	/* Ties and names are refused. */
	memset(&dup, 0, sizeof dup);
	gh_strlcpy(dup.name, "Third", sizeof dup.name);
	dup.priority = 10;
	dup.settings = json_object();
	assert_int_equal(gh_policy_insert(f->db, &dup, &why), GH_ERR_CONFLICT);
	assert_string_equal(why, "priority_taken");
	gh_strlcpy(dup.name, "strict", sizeof dup.name);
	dup.priority = 11;
	assert_int_equal(gh_policy_insert(f->db, &dup, &why), GH_ERR_CONFLICT);
	assert_string_equal(why, "policy_exists");
	gh_policy_clear(&dup);

	/* Strict via the parent group, Loose via the direct group. */
	assert_int_equal(gh_policy_attach(f->db, strict.id, parent.id, &added),
	    GH_OK);
	assert_int_equal(gh_policy_attach(f->db, loose.id, child.id, &added),
	    GH_OK);
	assert_int_equal(gh_policy_attach(f->db, GH_POLICY_DEFAULT_ID,
	    child.id, &added), GH_ERR_DENIED);
	fallback = parse_ok("{\"password\": {\"min_length\": 12}, "
	    "\"session\": {\"lifetime_s\": 900}}");
	assert_int_equal(gh_policy_effective(f->db, u.id, fallback, &eff, &e),
	    GH_OK);
	assert_int_equal(json_array_size(json_object_get(eff, "policies")), 3);
	assert_int_equal(e.max_concurrent, 1);
	assert_int_equal(e.lifetime_s, 600);
	assert_true(e.has_cidrs);
	assert_true(e.has_pw[0]);
	assert_int_equal(e.pw.min_length, 12);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    json_object_get(eff, "sources"), "session.max_concurrent"),
	    "name")), "Strict");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    json_object_get(eff, "sources"), "session.lifetime_s"),
	    "name")), "Loose");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    json_object_get(eff, "sources"), "password.min_length"),
	    "kind")), "org");
	json_decref(eff);

	/* Out of the groups: only the default applies. */
	assert_int_equal(gh_identity_group_member_remove(f->db, child.id,
	    u.id), GH_OK);
	assert_int_equal(gh_policy_effective(f->db, u.id, NULL, &eff, &e),
	    GH_OK);
	assert_int_equal(json_array_size(json_object_get(eff, "policies")), 1);
	assert_int_equal(e.max_concurrent, 0);
	json_decref(eff);
	json_decref(fallback);

	assert_int_equal(gh_policy_delete(f->db, GH_POLICY_DEFAULT_ID),
	    GH_ERR_DENIED);
	/* The default keeps its place at the end. */
	assert_int_equal(gh_policy_get(f->db, GH_POLICY_DEFAULT_ID, &dup),
	    GH_OK);
	assert_true(dup.is_default);
	dup.priority = 1;
	assert_int_equal(gh_policy_update(f->db, &dup, &why), GH_ERR_INVALID);
	gh_policy_clear(&dup);
	assert_int_equal(gh_policy_delete(f->db, strict.id), GH_OK);
	assert_int_equal(gh_policy_detach(f->db, strict.id, parent.id),
	    GH_ERR_NOTFOUND);
	gh_policy_clear(&strict);
	gh_policy_clear(&loose);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_cidr_parse_normalises_host_bits_and_bare_addresses),
		cmocka_unit_test(test_cidr_parse_refuses_malformed_ranges),
		cmocka_unit_test(test_cidr_match_ipv4_ipv6_and_mapped_addresses),
		cmocka_unit_test(test_geo_file_most_specific_entry_wins),
		cmocka_unit_test(test_geo_file_refuses_bad_lines_naming_them),
		cmocka_unit_test(
		    test_settings_parse_normalises_and_refuses_bad_fields),
		cmocka_unit_test(
		    test_network_check_fails_closed_on_unknown_country),
		cmocka_unit_test(
		    test_mfa_and_session_overlays_only_tighten_where_set),
		cmocka_unit_test(
		    test_settings_merge_patch_removes_with_null_and_keeps_the_rest),
		GH_TEST_TENANT(
		    test_effective_policy_merges_by_priority_with_sources),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
