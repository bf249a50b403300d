/* core_test.c: unit tests for the buffer, encodings, UTF-8 and time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/core.h"

static void
test_buf_grows_and_stays_terminated(void **state)
{
	struct gh_buf b;

	(void)state;
	gh_buf_init(&b, 1024, 0);
	for (int i = 0; i < 100; i++)
		gh_buf_put_str(&b, "ab");
	assert_int_equal(gh_buf_err(&b), GH_OK);
	assert_int_equal(b.len, 200);
	assert_int_equal(strlen(gh_buf_cstr(&b)), 200);
	gh_buf_free(&b);
}

static void
test_buf_ceiling_is_sticky(void **state)
{
	struct gh_buf b;

	(void)state;
	gh_buf_init(&b, 4, GH_BUF_SECRET);
	gh_buf_put_str(&b, "abcd");
	assert_int_equal(gh_buf_err(&b), GH_OK);
	gh_buf_put_str(&b, "e");
	assert_int_equal(gh_buf_err(&b), GH_ERR_LIMIT);
	assert_int_equal(b.len, 0);
	gh_buf_put_str(&b, "x");
	assert_int_equal(b.len, 0);
	assert_string_equal(gh_buf_cstr(&b), "");
	gh_buf_reset(&b);
	gh_buf_put_str(&b, "x");
	assert_string_equal(gh_buf_cstr(&b), "x");
	gh_buf_free(&b);
}

static void
test_buf_secret_reset_wipes_everything_ever_written(void **state)
{
	struct gh_buf b;
	uint8_t *w;
	size_t cap;

	(void)state;
	gh_buf_init(&b, 8192, GH_BUF_SECRET);
	/* Longer content first, then shorter: the reset must still wipe the
	 * tail the longer content left behind, whichever call wrote it. */
	gh_buf_printf(&b, "%0300d", 7);
	w = gh_buf_append(&b, 50);
	assert_non_null(w);
	memset(w, 'k', 50);
	gh_buf_put_str(&b, "tail");
	cap = b.cap;
	/* A caller rolling back shortens len without wiping (aead.c wipes
	 * first; the reset must not depend on that). */
	b.len = 5;
	b.data[5] = '\0';
	gh_buf_reset(&b);
	gh_buf_put_str(&b, "xy");
	gh_buf_reset(&b);
	assert_int_equal(b.cap, cap);
	for (size_t i = 0; i < 300 + 50 + 4 + 1; i++)
		assert_int_equal(b.data[i], 0);
	/* After a growth, the copy is wiped the same way. */
	gh_buf_put_str(&b, "abc");
	for (int i = 0; i < 40; i++)
		gh_buf_put_str(&b, "0123456789abcdef0123456789abcdef");
	gh_buf_reset(&b);
	for (size_t i = 0; i < 3 + 40 * 32 + 1; i++)
		assert_int_equal(b.data[i], 0);
	gh_buf_free(&b);
}

static void
test_buf_str16_prefixes_length(void **state)
{
	struct gh_buf b;

	(void)state;
	gh_buf_init(&b, 64, 0);
	gh_buf_put_str16(&b, "org");
	gh_buf_put_u64(&b, 258);
	assert_int_equal(b.len, 2 + 3 + 8);
	assert_int_equal(b.data[1], 3);
	assert_int_equal(b.data[11], 1);
	assert_int_equal(b.data[12], 2);
	gh_buf_free(&b);
}

static void
test_buf_append_reserves_in_place_within_the_ceiling(void **state)
{
	struct gh_buf b;
	uint8_t *p;

	(void)state;
	gh_buf_init(&b, 8, 0);
	gh_buf_put(&b, "ab", 2);
	p = gh_buf_append(&b, 3);
	assert_non_null(p);
	assert_ptr_equal(p, b.data + 2);
	memcpy(p, "cde", 3);
	assert_int_equal(b.len, 5);
	assert_string_equal((const char *)b.data, "abcde");
	assert_null(gh_buf_append(&b, 4));	/* 9 > max 8: sticky */
	assert_int_equal(gh_buf_err(&b), GH_ERR_LIMIT);
	assert_int_equal(b.len, 0);
	gh_buf_free(&b);
}

static void
test_b64url_round_trips_and_rejects_junk(void **state)
{
	uint8_t in[32], out[32];
	char enc[64];
	size_t n;

	(void)state;
	for (size_t len = 0; len <= sizeof in; len++) {
		for (size_t i = 0; i < len; i++)
			in[i] = (uint8_t)(i * 37 + len);
		gh_b64url_encode(in, len, enc);
		assert_int_equal(strlen(enc), gh_b64url_len(len));
		assert_int_equal(gh_b64url_decode(enc, strlen(enc), out,
		    sizeof out, &n), GH_OK);
		assert_int_equal(n, len);
		assert_memory_equal(in, out, len);
	}
	assert_int_equal(gh_b64url_decode("ab+/", 4, out, sizeof out, &n),
	    GH_ERR_INVALID);
	assert_int_equal(gh_b64url_decode("a", 1, out, sizeof out, &n),
	    GH_ERR_INVALID);
	assert_int_equal(gh_b64url_decode("AAAAAA", 6, out, 2, &n),
	    GH_ERR_LIMIT);
}

static void
test_utf8_rejects_malformed(void **state)
{
	(void)state;
	assert_true(gh_utf8_valid("h\xc3\xa9llo \xf0\x9f\x94\x91", 11));
	assert_false(gh_utf8_valid("\xc0\xaf", 2));		/* overlong */
	assert_false(gh_utf8_valid("\xed\xa0\x80", 3));	/* surrogate */
	assert_false(gh_utf8_valid("\xf4\x90\x80\x80", 4));	/* > U+10FFFF */
	assert_false(gh_utf8_valid("\xe2\x82", 2));		/* truncated */
	assert_false(gh_utf8_valid("a\0b", 3));		/* NUL */
}

static void
test_time_round_trips(void **state)
{
	char s[25];
	int64_t ms;

	(void)state;
	gh_time_rfc3339(1700000000123LL, s);
	assert_string_equal(s, "2023-11-14T22:13:20.123Z");
	assert_int_equal(gh_time_parse_rfc3339(s, &ms), GH_OK);
	assert_int_equal(ms, 1700000000123LL);
	assert_int_equal(gh_time_parse_rfc3339("2023-11-14T22:13:20+01:00",
	    &ms), GH_ERR_INVALID);
}

static void
test_ids_are_hex_and_distinct(void **state)
{
	char a[GH_ID_LEN + 1], b[GH_ID_LEN + 1];

	(void)state;
	assert_int_equal(gh_id_new(a), GH_OK);
	assert_int_equal(gh_id_new(b), GH_OK);
	assert_true(gh_id_valid(a));
	assert_string_not_equal(a, b);
	assert_false(gh_id_valid("../../etc/passwd"));
	assert_false(gh_id_valid("ABCDEF0123456789abcdef0123456789"));
}

static void
test_secret_is_zeroed_and_freed(void **state)
{
	struct gh_secret *s;

	(void)state;
	assert_int_equal(gh_secret_from_str("hunter2", &s), GH_OK);
	assert_int_equal(s->len, 7);
	assert_true(gh_ct_eq(s->data, "hunter2", 7));
	assert_false(gh_ct_eq(s->data, "hunter3", 7));
	gh_secret_free(s);
	gh_secret_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_grows_and_stays_terminated),
		cmocka_unit_test(test_buf_ceiling_is_sticky),
		cmocka_unit_test(test_buf_str16_prefixes_length),
		cmocka_unit_test(test_buf_secret_reset_wipes_everything_ever_written),
		cmocka_unit_test(test_buf_append_reserves_in_place_within_the_ceiling),
		cmocka_unit_test(test_b64url_round_trips_and_rejects_junk),
		cmocka_unit_test(test_utf8_rejects_malformed),
		cmocka_unit_test(test_time_round_trips),
		cmocka_unit_test(test_ids_are_hex_and_distinct),
		cmocka_unit_test(test_secret_is_zeroed_and_freed),
	};

	return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
