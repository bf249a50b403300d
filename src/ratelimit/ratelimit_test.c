/* ratelimit_test.c: GCRA limits, eviction, threads and the address keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ratelimit/ratelimit.h"

static void
test_siphash_matches_the_reference_vectors(void **state)
{
	uint8_t k[16], msg[64];

	(void)state;
	for (int i = 0; i < 16; i++)
		k[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	/* From the SipHash paper's appendix (key 00..0f, message 00..). */
	assert_true(gh_siphash24(k, msg, 0) == 0x726fdb47dd0e0e31ULL);
	assert_true(gh_siphash24(k, msg, 15) == 0xa129ca6149be45e5ULL);
	assert_true(gh_siphash24(k, msg, 8) == 0x93f5f5799a932462ULL);
}

static void
test_burst_then_one_per_interval(void **state)
{
	struct gh_rl_rule r = { .limit = 10, .period_ms = 1000, .burst = 3 };
	struct gh_rl *rl;
	int64_t retry;

	(void)state;
	assert_int_equal(gh_rl_new(100, &rl), GH_OK);
	for (int i = 0; i < 3; i++)
		assert_true(gh_rl_take(rl, "k", &r, 1000, &retry));
	assert_false(gh_rl_take(rl, "k", &r, 1000, &retry));
	assert_int_equal(retry, 100);
	/* Refusals cost nothing: the wait does not grow. */
	assert_false(gh_rl_take(rl, "k", &r, 1050, &retry));
	assert_int_equal(retry, 50);
	assert_true(gh_rl_take(rl, "k", &r, 1100, &retry));
	assert_false(gh_rl_take(rl, "k", &r, 1100, &retry));
	/* Other keys are not affected. */
	assert_true(gh_rl_take(rl, "other", &r, 1100, &retry));
	/* After a quiet second the whole burst is back. */
	for (int i = 0; i < 3; i++)
		assert_true(gh_rl_take(rl, "k", &r, 3000, &retry));
	assert_false(gh_rl_take(rl, "k", &r, 3000, &retry));
	gh_rl_reset(rl, "k");
	assert_true(gh_rl_take(rl, "k", &r, 3000, &retry));
	gh_rl_free(rl);
}

static void
test_a_full_table_keeps_the_limited_keys(void **state)
{
	struct gh_rl_rule r = { .limit = 1, .period_ms = 60000, .burst = 1 };
	struct gh_rl *rl;
	char key[32];

	(void)state;
	assert_int_equal(gh_rl_new(64, &rl), GH_OK);
	assert_true(gh_rl_take(rl, "flooder", &r, 0, NULL));
	assert_false(gh_rl_take(rl, "flooder", &r, 1, NULL));
	/* Thousands of one-off keys, long after their own limits passed,
	 * must not push the flooder's state out... */
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof key, "k%d", i);
		(void)gh_rl_take(rl, key, &r, 1 + (int64_t)i * 100000, NULL);
	}
	assert_true(gh_rl_size(rl) <= 64 * 2 * 16);
	/* ...unless it expired: here it has (its TAT was 60 s), so fresh. */
	assert_true(gh_rl_take(rl, "flooder", &r, 600000000, NULL));
	gh_rl_free(rl);
}

static void
test_failures_delay_progressively(void **state)
{
	/* 5 failures free, one interval (60 s) each. */
	struct gh_rl_rule r = { .limit = 5, .period_ms = 300000, .burst = 5 };
	struct gh_rl *rl;
	int64_t retry, now = 1000000;

	(void)state;
	assert_int_equal(gh_rl_new(100, &rl), GH_OK);
	for (int i = 0; i < 4; i++) {
		assert_true(gh_rl_check(rl, "a", &r, now, &retry));
		gh_rl_penalize(rl, "a", &r, now, 3600000);
	}
	/* Checking is free. */
	for (int i = 0; i < 10; i++)
		assert_true(gh_rl_check(rl, "a", &r, now, &retry));
	gh_rl_penalize(rl, "a", &r, now, 3600000);	/* fifth */
	assert_false(gh_rl_check(rl, "a", &r, now, &retry));
	assert_int_equal(retry, 60000);
	/* After each wait one more try; each failure doubles the wait:
	 * 2, 4, 8 intervals. */
	for (int64_t wait = 60000; wait <= 480000; wait *= 2) {
		now += wait;
		assert_true(gh_rl_check(rl, "a", &r, now, &retry));
		gh_rl_penalize(rl, "a", &r, now, 3600000);
		assert_false(gh_rl_check(rl, "a", &r, now, &retry));
		assert_int_equal(retry, 2 * wait);
	}
	/* Never beyond the cap. */
	for (int i = 0; i < 50; i++)
		gh_rl_penalize(rl, "a", &r, now, 3600000);
	assert_false(gh_rl_check(rl, "a", &r, now, &retry));
	assert_true(retry <= 3600000);
	assert_true(retry > 3000000);
	/* Another key is untouched; a reset forgives. */
	assert_true(gh_rl_check(rl, "b", &r, now, &retry));
	gh_rl_reset(rl, "a");
	assert_true(gh_rl_check(rl, "a", &r, now, &retry));
	gh_rl_free(rl);
}

struct worker {
	struct gh_rl *rl;
	int allowed;
};

static void *
hammer(void *arg)
{
	struct gh_rl_rule r = { .limit = 100, .period_ms = 1000, .burst = 50 };
	struct worker *w = arg;

	for (int i = 0; i < 10000; i++)
		if (gh_rl_take(w->rl, "shared", &r, 5000, NULL))
			w->allowed++;
	return NULL;
}

static void
test_threads_share_one_budget(void **state)
{
	struct worker w[4];
	pthread_t t[4];
	struct gh_rl *rl;
	int total = 0;

	(void)state;
	assert_int_equal(gh_rl_new(1000, &rl), GH_OK);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ rl, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		total += w[i].allowed;
	}
	assert_int_equal(total, 50);
	gh_rl_free(rl);
}

static void
test_address_keys(void **state)
{
	char k[96];

	(void)state;
	assert_int_equal(gh_rl_ip_key("ip:", "192.0.2.1", k, sizeof k), GH_OK);
	assert_string_equal(k, "ip:192.0.2.1");
	assert_int_equal(gh_rl_ip_key("ip:", "2001:db8:1:2:3:4:5:6", k,
	    sizeof k), GH_OK);
	assert_string_equal(k, "ip:2001:db8:1:2::/64");
	assert_int_equal(gh_rl_ip_key("ip:", "2001:db8:1:2:ffff::1", k,
	    sizeof k), GH_OK);
	assert_string_equal(k, "ip:2001:db8:1:2::/64");
	assert_int_equal(gh_rl_ip_key("ip:", "::ffff:198.51.100.7", k,
	    sizeof k), GH_OK);
	assert_string_equal(k, "ip:198.51.100.7");
	assert_int_equal(gh_rl_ip_key("ip:", "not-an-ip", k, sizeof k),
	    GH_ERR_INVALID);
	assert_int_equal(gh_rl_ip_key("ip:", "1.2.3.4", k, 6), GH_ERR_LIMIT);
}

/* ---- shared counters in a real redis-server ------------------------------ */

struct redis_proc {
	char dir[64];
	char url[128];
	pid_t pid;
};

/* Starts redis-server on a unix socket in a fresh directory; false when
 * it is not installed. */
static bool
redis_start(struct redis_proc *r)
{
	char sock[96];
	struct stat st;

	if (access("/usr/bin/redis-server", X_OK) != 0)
		return false;
	strcpy(r->dir, "/tmp/gh-redis-XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	snprintf(sock, sizeof sock, "%s/redis.sock", r->dir);
	snprintf(r->url, sizeof r->url, "unix:%s", sock);
	r->pid = fork();
	assert_true(r->pid >= 0);
	if (r->pid == 0) {
		int devnull = open("/dev/null", 1);

		dup2(devnull, 1);
		execl("/usr/bin/redis-server", "redis-server", "--port", "0",
		    "--unixsocket", sock, "--save", "", "--appendonly", "no",
		    "--dir", r->dir, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500 && stat(sock, &st) != 0; i++)
		usleep(10000);
	assert_int_equal(stat(sock, &st), 0);
	return true;
}

static void
redis_stop(struct redis_proc *r)
{
	char cmd[96];

	if (r->pid > 0) {
		kill(r->pid, SIGTERM);
		waitpid(r->pid, NULL, 0);
		r->pid = 0;
	}
	snprintf(cmd, sizeof cmd, "rm -rf %s", r->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", r->dir);
}

static void
test_nodes_share_budgets_through_redis(void **state)
{
	struct gh_rl_rule r = { .limit = 10, .period_ms = 1000, .burst = 3 };
	struct gh_rl_rule f = { .limit = 5, .period_ms = 300000, .burst = 5 };
	struct gh_rl *a, *b;
	struct redis_proc rp;
	int64_t retry, now = 5000000;

	(void)state;
	if (!redis_start(&rp))
		skip();
	assert_int_equal(gh_rl_new_redis(100, rp.url, 1000, &a), GH_OK);
	assert_int_equal(gh_rl_new_redis(100, rp.url, 1000, &b), GH_OK);
	/* Node a spends the burst; node b sees it spent. */
	for (int i = 0; i < 3; i++)
		assert_true(gh_rl_take(a, "ip:x", &r, now, &retry));
	assert_false(gh_rl_take(b, "ip:x", &r, now, &retry));
	assert_int_equal(retry, 100);
	assert_true(gh_rl_take(b, "ip:x", &r, now + 100, &retry));
	/* Failures on one node lock on the other, progressively. */
	for (int i = 0; i < 5; i++)
		gh_rl_penalize(a, "acct:y", &f, now, 3600000);
	assert_false(gh_rl_check(b, "acct:y", &f, now, &retry));
	assert_int_equal(retry, 60000);
	now += 60000;
	assert_true(gh_rl_check(b, "acct:y", &f, now, &retry));
	gh_rl_penalize(b, "acct:y", &f, now, 3600000);
	assert_false(gh_rl_check(a, "acct:y", &f, now, &retry));
	assert_int_equal(retry, 120000);
	gh_rl_reset(a, "acct:y");
	assert_true(gh_rl_check(b, "acct:y", &f, now, &retry));
	/* Redis gone: each node's own table still limits. */
	redis_stop(&rp);
	for (int i = 0; i < 3; i++)
		assert_true(gh_rl_take(a, "ip:z", &r, now, &retry));
	assert_false(gh_rl_take(a, "ip:z", &r, now, &retry));
	gh_rl_free(a);
	gh_rl_free(b);
	assert_int_equal(gh_rl_new_redis(100, "http://nope", 1000, &a),
	    GH_ERR_INVALID);
	assert_int_equal(gh_rl_new_redis(100, "redis://", 1000, &a),
	    GH_ERR_INVALID);
	assert_int_equal(gh_rl_new_redis(100, "redis://h:99999", 1000, &a),
	    GH_ERR_INVALID);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_siphash_matches_the_reference_vectors),
		cmocka_unit_test(test_burst_then_one_per_interval),
		cmocka_unit_test(test_a_full_table_keeps_the_limited_keys),
		cmocka_unit_test(test_failures_delay_progressively),
		cmocka_unit_test(test_threads_share_one_budget),
		cmocka_unit_test(test_address_keys),
		cmocka_unit_test(test_nodes_share_budgets_through_redis),
	};

	/* As in the server: a peer that went away is an error, not a
	 * signal (hiredis writes with write(2)). */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
