/* outbox_test.c: the outbox worker's timing (kicks, due times, stop) with
 * a callback that records its runs, and its use of the outbox hints on a
 * real store: only hinted orgs are run, a young hint survives an empty
 * outbox, an old one is cleared. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "identity/identity.h"
#include "notify/notify.h"
#include "store/testing.h"

#define ORG_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ORG_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define RUNS_MAX 64

struct recorder {
	pthread_mutex_t mu;
	struct { char org[GH_ID_LEN + 1]; int64_t at; bool had_db; } runs[RUNS_MAX];
	int n;
	int64_t next;		/* what run returns (ms from now; 0: empty) */
	int next_times;		/* how many runs return it */
	int64_t sleep_ms;	/* each run takes this long */
	bool saw_stopping;
};

static gh_err
record_run(void *arg, struct gh_outbox *w, const struct gh_org *org,
    struct gh_db *db, int64_t *next_out)
{
	struct recorder *r = arg;
	int64_t end = gh_now_ms() + r->sleep_ms;

	while (gh_now_ms() < end && !gh_outbox_stopping(w)) {
		struct timespec ts = { 0, 5 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	pthread_mutex_lock(&r->mu);
	if (r->n < RUNS_MAX) {
		gh_strlcpy(r->runs[r->n].org, org->id, GH_ID_LEN + 1);
		r->runs[r->n].at = gh_now_ms();
		r->runs[r->n].had_db = db != NULL;
		r->n++;
	}
	*next_out = 0;
	if (r->next_times > 0) {
		r->next_times--;
		*next_out = gh_now_ms() + r->next;
	}
	r->saw_stopping = gh_outbox_stopping(w);
	pthread_mutex_unlock(&r->mu);
	return GH_OK;
}

static int
runs(struct recorder *r)
{
	int n;

	pthread_mutex_lock(&r->mu);
	n = r->n;
	pthread_mutex_unlock(&r->mu);
	return n;
}

/* Waits up to ms for at least n runs; returns the count. */
static int
wait_runs(struct recorder *r, int n, int64_t ms)
{
	int64_t end = gh_now_ms() + ms;

	while (runs(r) < n && gh_now_ms() < end) {
		struct timespec ts = { 0, 5 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	return runs(r);
}

/* How many times org_id was run. */
static int
ran(struct recorder *r, const char *org_id)
{
	int n = 0;

	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < r->n; i++)
		n += strcmp(r->runs[i].org, org_id) == 0;
	pthread_mutex_unlock(&r->mu);
	return n;
}

static struct gh_outbox *
start(struct recorder *r, struct gh_store *st)
{
	struct gh_outbox_ops ops = { .name = "test", .run = record_run,
	    .arg = r, .st = st, .kind = "test", .poll_ms = 100,
	    .scan_ms = 0, .retry_ms = 1000 };
	struct gh_outbox *w = NULL;

	assert_int_equal(gh_outbox_start(&ops, &w), GH_OK);
	return w;
}

static void
test_a_kick_runs_the_org_at_once_and_once(void **state)
{
	struct recorder r = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct gh_outbox *w = start(&r, NULL);
	int64_t t0 = gh_now_ms();

	(void)state;
	gh_outbox_kick(w, ORG_A);
	gh_outbox_kick(NULL, ORG_A);		/* no-op */
	gh_outbox_kick(w, "../not-an-id");	/* ignored */
	assert_int_equal(wait_runs(&r, 1, 2000), 1);
	assert_string_equal(r.runs[0].org, ORG_A);
	assert_false(r.runs[0].had_db);
	assert_true(r.runs[0].at - t0 < 500);
	/* Empty outbox (next 0): not run again. */
	assert_int_equal(wait_runs(&r, 2, 300), 1);
	gh_outbox_stop(w);
}

static void
test_an_org_runs_again_when_next_due_not_before(void **state)
{
	struct recorder r = { .mu = PTHREAD_MUTEX_INITIALIZER, .next = 300,
	    .next_times = 1 };
	struct gh_outbox *w = start(&r, NULL);

	(void)state;
	gh_outbox_kick(w, ORG_A);
	assert_int_equal(wait_runs(&r, 2, 3000), 2);
	assert_true(r.runs[1].at - r.runs[0].at >= 300);
	assert_true(r.runs[1].at - r.runs[0].at < 1500);
	gh_outbox_stop(w);
}

static void
test_due_times_order_the_runs_and_a_kick_brings_one_forward(void **state)
{
	struct recorder r = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct gh_outbox *w = start(&r, NULL);
	int64_t t0 = gh_now_ms();

	(void)state;
	gh_outbox_due(w, ORG_A, t0 + 400);
	gh_outbox_due(w, ORG_B, t0 + 200);
	gh_outbox_due(w, ORG_B, t0 + 5000);	/* later: keeps 200 */
	assert_int_equal(wait_runs(&r, 2, 3000), 2);
	assert_string_equal(r.runs[0].org, ORG_B);
	assert_string_equal(r.runs[1].org, ORG_A);
	assert_true(r.runs[0].at - t0 >= 200);
	assert_true(r.runs[1].at - t0 >= 400);
	/* A far due time, then a kick: runs now. */
	gh_outbox_due(w, ORG_A, gh_now_ms() + 60 * 1000);
	t0 = gh_now_ms();
	gh_outbox_kick(w, ORG_A);
	assert_int_equal(wait_runs(&r, 3, 2000), 3);
	assert_true(r.runs[2].at - t0 < 500);
	gh_outbox_stop(w);
}

static void
test_stop_interrupts_the_wait_and_the_run(void **state)
{
	struct recorder r = { .mu = PTHREAD_MUTEX_INITIALIZER,
	    .sleep_ms = 10 * 1000 };
	struct gh_outbox *w = start(&r, NULL);
	int64_t t0;

	(void)state;
	gh_outbox_due(w, ORG_B, gh_now_ms() + 60 * 1000);
	gh_outbox_kick(w, ORG_A);
	{
		struct timespec ts = { 0, 100 * 1000 * 1000 };

		nanosleep(&ts, NULL);	/* the run of ORG_A has begun */
	}
	t0 = gh_now_ms();
	gh_outbox_stop(w);
	assert_true(gh_now_ms() - t0 < 2000);
	assert_int_equal(r.n, 1);	/* ORG_B never ran */
	assert_true(r.saw_stopping);
	gh_outbox_stop(NULL);
}

static void
test_bad_ops_are_refused(void **state)
{
	struct gh_outbox_ops ops = { .name = "test", .run = record_run,
	    .retry_ms = 0 };
	struct gh_outbox *w = NULL;

	(void)state;
	assert_int_equal(gh_outbox_start(&ops, &w), GH_ERR_INVALID);
	ops.retry_ms = 1000;
	ops.st = (struct gh_store *)&ops;	/* a store without a kind */
	assert_int_equal(gh_outbox_start(&ops, &w), GH_ERR_INVALID);
	assert_null(w);
}

/* ---- with a store ----------------------------------------------------------- */

static void
new_org(struct gh_store *st, const char *slug, struct gh_org *org)
{
	struct gh_db *dir = NULL, *db = NULL;

	assert_int_equal(gh_store_directory(st, &dir), GH_OK);
	assert_int_equal(gh_identity_org_create(dir, slug, slug, "eu", org),
	    GH_OK);
	gh_db_release(dir);
	assert_int_equal(gh_store_tenant(st, org->id, "eu", true, &db), GH_OK);
	gh_db_release(db);
}

static void
hint(struct gh_store *st, const char *org_id, const char *kind)
{
	struct gh_db *db = NULL;

	assert_int_equal(gh_store_tenant(st, org_id, "eu", false, &db), GH_OK);
	assert_int_equal(gh_db_outbox_hint(db, kind), GH_OK);
	gh_db_release(db);
}

struct seen {
	char ids[8][GH_ID_LEN + 1];
	int n;
};

static void
saw(const char *org_id, void *arg)
{
	struct seen *s = arg;

	if (s->n < 8)
		gh_strlcpy(s->ids[s->n++], org_id, GH_ID_LEN + 1);
}

static void
test_hints_are_read_by_seq_and_cleared_only_when_old(void **state)
{
	struct gh_test_tenant *t = *state;
	struct gh_org a, b;
	struct seen s = { 0 };
	int64_t seq = 0, seq2 = 0;
	bool kept = false;

	new_org(t->st, "alpha", &a);
	new_org(t->st, "beta", &b);
	assert_int_equal(gh_db_outbox_hint(t->db, "Bad-Kind"), GH_ERR_INVALID);
	hint(t->st, a.id, "test");
	hint(t->st, b.id, "other");
	assert_int_equal(gh_store_outbox_hints(t->st, "test", 0, saw, &s, &seq),
	    GH_OK);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.ids[0], a.id);
	/* Nothing new since seq; a new write is seen. */
	s.n = 0;
	assert_int_equal(gh_store_outbox_hints(t->st, "test", seq, saw, &s,
	    &seq2), GH_OK);
	assert_int_equal(s.n, 0);
	assert_int_equal(seq2, seq);
	hint(t->st, a.id, "test");
	assert_int_equal(gh_store_outbox_hints(t->st, "test", seq, saw, &s,
	    &seq2), GH_OK);
	assert_int_equal(s.n, 1);
	assert_true(seq2 > seq);
	/* A young hint stays (its row may not have committed yet), and the
	 * sender is told so... */
	assert_int_equal(gh_store_outbox_hint_clear(t->st, a.id, "test",
	    gh_now_ms(), &kept), GH_OK);
	assert_true(kept);
	s.n = 0;
	assert_int_equal(gh_store_outbox_hints(t->st, "test", 0, saw, &s, &seq),
	    GH_OK);
	assert_int_equal(s.n, 1);
	/* ... an old one goes; the next write sets it again, with a seq
	 * above every earlier one. */
	assert_int_equal(gh_store_outbox_hint_clear(t->st, a.id, "test",
	    gh_now_ms() + GH_STORE_HINT_GRACE_MS + 1000, &kept), GH_OK);
	assert_false(kept);
	s.n = 0;
	assert_int_equal(gh_store_outbox_hints(t->st, "test", 0, saw, &s, &seq),
	    GH_OK);
	assert_int_equal(s.n, 0);
	hint(t->st, a.id, "test");
	assert_int_equal(gh_store_outbox_hints(t->st, "test", seq2, saw, &s,
	    &seq), GH_OK);
	assert_int_equal(s.n, 1);
}

static void
test_the_worker_runs_only_hinted_active_orgs(void **state)
{
	struct gh_test_tenant *t = *state;
	struct recorder r = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct gh_org a, b, c;
	struct gh_outbox *w;
	struct gh_db *dir = NULL;
	struct seen s = { 0 };
	int64_t seq = 0;

	new_org(t->st, "alpha", &a);
	new_org(t->st, "beta", &b);
	new_org(t->st, "gamma", &c);
	hint(t->st, a.id, "test");
	hint(t->st, c.id, "test");
	/* The fixture's tenant has no row in the directory: an org gone. */
	assert_int_equal(gh_db_outbox_hint(t->db, "test"), GH_OK);
	assert_int_equal(gh_store_directory(t->st, &dir), GH_OK);
	assert_int_equal(gh_identity_org_set_state(dir, c.id, "suspended"),
	    GH_OK);
	gh_db_release(dir);
	w = start(&r, t->st);
	/* At start: alpha (hinted, active); not beta (no hint), not gamma
	 * (suspended: its database stays closed). */
	assert_int_equal(wait_runs(&r, 1, 2000), 1);
	assert_string_equal(r.runs[0].org, a.id);
	assert_true(r.runs[0].had_db);
	assert_int_equal(wait_runs(&r, 2, 500), 1);
	/* The gone org's hint was cleared; the suspended one's stays. */
	assert_int_equal(gh_store_outbox_hints(t->st, "test", 0, saw, &s,
	    &seq), GH_OK);
	assert_int_equal(s.n, 2);
	assert_true(strcmp(s.ids[0], t->org_id) != 0 &&
	    strcmp(s.ids[1], t->org_id) != 0);
	/* A hint written by "another process" is found by the poll; and
	 * alpha, whose young hint stayed (a row may still be committing),
	 * is looked at again soon, not only at the next full scan. */
	hint(t->st, b.id, "test");
	assert_int_equal(wait_runs(&r, 3, 5000), 3);
	assert_true(ran(&r, b.id) >= 1);
	assert_true(ran(&r, a.id) >= 2);
	gh_outbox_stop(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_kick_runs_the_org_at_once_and_once),
		cmocka_unit_test(test_an_org_runs_again_when_next_due_not_before),
		cmocka_unit_test(
		    test_due_times_order_the_runs_and_a_kick_brings_one_forward),
		cmocka_unit_test(test_stop_interrupts_the_wait_and_the_run),
		cmocka_unit_test(test_bad_ops_are_refused),
		GH_TEST_TENANT(
		    test_hints_are_read_by_seq_and_cleared_only_when_old),
		GH_TEST_TENANT(test_the_worker_runs_only_hinted_active_orgs),
	};

	return cmocka_run_group_tests_name("outbox", tests, NULL, NULL);
}
