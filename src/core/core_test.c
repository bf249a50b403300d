/* core_test.c: unit tests for the buffer, encodings, UTF-8 and time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

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
test_json_writer_into_a_secret_buffer_is_wiped_on_reset(void **state)
{
	static const char tok[] = "s3cret-token-value";
	struct gh_buf b;

	(void)state;
	gh_buf_init(&b, 4096, GH_BUF_SECRET);
	/* Room made first, so the writer's fast path does the copy. */
	assert_true(gh_buf_reserve(&b, 1024));
	gh_json_put_str(&b, tok);
	assert_int_equal(b.len, sizeof tok - 1 + 2);
	gh_buf_reset(&b);
	for (size_t i = 0; i < sizeof tok + 2; i++)
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

/* What the old strftime-based formatter wrote: the reference. */
static void
rfc3339_reference(int64_t ms, char out[static 25])
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	assert_non_null(gmtime_r(&secs, &tm));
	if (tm.tm_year > 9999 - 1900)
		tm.tm_year = 9999 - 1900;
	strftime(out, 20, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + 19, 6, ".%03uZ", (unsigned)(ms % 1000) % 1000u);
}

static void
test_time_format_matches_gmtime(void **state)
{
	static const int64_t fixed[] = { 0, 1, 999, 1000, 86399999,
		86400000, 951782400000LL /* 2000-02-29 */,
		4107542399999LL /* 2100-02-28T23:59:59.999 */,
		4107542400000LL, 253402300799999LL /* 9999-12-31 */,
		253402300800000LL /* year 10000: clamped */,
		1700000000123LL };
	char got[25], want[25];
	uint64_t x = 88172645463325252ULL;

	(void)state;
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
		gh_time_rfc3339(fixed[i], got);
		rfc3339_reference(fixed[i], want);
		assert_string_equal(got, want);
	}
	/* Pseudo-random instants up to the year 9999 (xorshift). */
	for (int i = 0; i < 200000; i++) {
		int64_t ms;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		ms = (int64_t)(x % 253402300800000ULL);
		gh_time_rfc3339(ms, got);
		rfc3339_reference(ms, want);
		assert_string_equal(got, want);
	}
	gh_time_rfc3339(-5, got);
	assert_string_equal(got, "1970-01-01T00:00:00.000Z");
}

/* gh_json_put_str must write exactly what jansson writes. */
static void
assert_json_str_like_jansson(const char *s)
{
	json_t *j = json_string(s);
	char *want;
	struct gh_buf b;

	assert_non_null(j);
	want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	assert_non_null(want);
	gh_buf_init(&b, 4096, 0);
	gh_json_put_str(&b, s);
	assert_int_equal(gh_buf_err(&b), GH_OK);
	assert_string_equal(gh_buf_cstr(&b), want);
	gh_buf_free(&b);
	free(want);
	json_decref(j);
}

static void
test_json_str_escapes_like_jansson(void **state)
{
	static const char *const cases[] = { "", "plain", "a\"quote\"",
		"back\\slash", "slash/", "\b\f\n\r\t", "\x01\x1f\x7f",
		"h\xc3\xa9llo \xf0\x9f\x94\x91", "\xe2\x80\xa8 line sep",
		"</script>", "mixed \"\x02\xc3\xa9\\\n end" };
	char all[32];
	struct gh_buf b;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		assert_json_str_like_jansson(cases[i]);
	for (int c = 1; c < 32; c++)
		all[c - 1] = (char)c;
	all[31] = '\0';
	assert_json_str_like_jansson(all);
	/* Not UTF-8: refused (jansson refuses it too), sticky. */
	assert_null(json_string("bad \xc0\xaf"));
	gh_buf_init(&b, 4096, 0);
	gh_buf_put_str(&b, "{");
	gh_json_put_str(&b, "bad \xc0\xaf");
	assert_int_equal(gh_buf_err(&b), GH_ERR_INVALID);
	gh_json_put_str(&b, "fine");
	assert_int_equal(gh_buf_err(&b), GH_ERR_INVALID);
	assert_string_equal(gh_buf_cstr(&b), "");
	gh_buf_free(&b);
	/* NULL is the empty string; times are strings, or null when unset. */
	gh_buf_init(&b, 4096, 0);
	gh_json_put_str(&b, NULL);
	gh_json_put_time(&b, 0);
	gh_json_put_time(&b, 1700000000123LL);
	assert_string_equal(gh_buf_cstr(&b),
	    "\"\"null\"2023-11-14T22:13:20.123Z\"");
	gh_buf_free(&b);
	/* The ceiling still holds. */
	gh_buf_init(&b, 4, 0);
	gh_json_put_str(&b, "toolong");
	assert_int_equal(gh_buf_err(&b), GH_ERR_LIMIT);
	gh_buf_free(&b);
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

#define POOL_DRAWS 600	/* more than one pool's worth of 12-byte draws */
#define POOL_N 12

static bool
draws_distinct(const uint8_t *a, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (memcmp(a + i * POOL_N, a + j * POOL_N, POOL_N) == 0)
				return false;
	return true;
}

static void
draw_many(uint8_t *out, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		assert_int_equal(gh_rand_public(out + i * POOL_N, POOL_N), GH_OK);
}

static void
test_rand_public_never_repeats_even_across_fork(void **state)
{
	static uint8_t all[3 * POOL_DRAWS * POOL_N];
	uint8_t big[4096];
	int fd[2], st;
	pid_t pid;

	(void)state;
	/* A request larger than the pool's share goes to the DRBG. */
	memset(big, 0, sizeof big);
	assert_int_equal(gh_rand_public(big, sizeof big), GH_OK);
	assert_true(memcmp(big, all, 64) != 0);
	draw_many(all, POOL_DRAWS / 2);
	/* The child inherits a half-used pool: both must draw anew. */
	assert_int_equal(pipe(fd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static uint8_t mine[POOL_DRAWS * POOL_N];
		size_t i;

		close(fd[0]);
		for (i = 0; i < POOL_DRAWS; i++)
			if (gh_rand_public(mine + i * POOL_N, POOL_N) != GH_OK)
				_exit(2);
		_exit(write(fd[1], mine, sizeof mine) == sizeof mine ? 0 : 1);
	}
	close(fd[1]);
	draw_many(all + POOL_DRAWS / 2 * POOL_N, POOL_DRAWS * 3 / 2);
	assert_int_equal(read(fd[0], all + 2 * POOL_DRAWS * POOL_N,
	    POOL_DRAWS * POOL_N), POOL_DRAWS * POOL_N);
	close(fd[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_true(draws_distinct(all, 3 * POOL_DRAWS));
}

static void
test_ordered_ids_are_valid_distinct_and_sorted_by_time(void **state)
{
	char a[GH_ID_LEN + 1], b[GH_ID_LEN + 1], t[13];
	struct timespec pause = { 0, 3 * 1000 * 1000 };
	long long ms;
	int64_t now;

	(void)state;
	now = gh_now_ms();
	assert_int_equal(gh_id_new_ordered(a), GH_OK);
	assert_true(gh_id_valid(a));
	memcpy(t, a, 12);
	t[12] = '\0';
	ms = strtoll(t, NULL, 16);
	assert_true(ms >= now && ms <= now + 1000);
	nanosleep(&pause, NULL);
	assert_int_equal(gh_id_new_ordered(b), GH_OK);
	assert_true(gh_id_valid(b));
	assert_true(strcmp(a, b) < 0);
	/* The random part differs within one millisecond too. */
	assert_int_equal(gh_id_new_ordered(a), GH_OK);
	assert_true(strcmp(a + 12, b + 12) != 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_grows_and_stays_terminated),
		cmocka_unit_test(test_buf_ceiling_is_sticky),
		cmocka_unit_test(test_buf_str16_prefixes_length),
		cmocka_unit_test(test_json_writer_into_a_secret_buffer_is_wiped_on_reset),
		cmocka_unit_test(test_buf_secret_reset_wipes_everything_ever_written),
		cmocka_unit_test(test_buf_append_reserves_in_place_within_the_ceiling),
		cmocka_unit_test(test_b64url_round_trips_and_rejects_junk),
		cmocka_unit_test(test_utf8_rejects_malformed),
		cmocka_unit_test(test_time_round_trips),
		cmocka_unit_test(test_time_format_matches_gmtime),
		cmocka_unit_test(test_json_str_escapes_like_jansson),
		cmocka_unit_test(test_ids_are_hex_and_distinct),
		cmocka_unit_test(test_rand_public_never_repeats_even_across_fork),
		cmocka_unit_test(test_ordered_ids_are_valid_distinct_and_sorted_by_time),
		cmocka_unit_test(test_secret_is_zeroed_and_freed),
	};

	return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
