/*
 * argon2_time.c: the time of one argon2id computation at given parameters,
 * for the hash-bound limit of password sign-in (cores / this time).
 *
 *   argon2_time T_COST M_KIB PARALLELISM [RUNS [THREADS]]
 *
 * Times one argon2id computation of a raw tag, which is what a sign-in's
 * verification costs (Gatehouse recomputes the tag with the stored salt
 * and compares). Each thread hashes in one working block of its own,
 * faulted in by the warm-up and reused, as the server reuses its blocks:
 * otherwise a thread's malloc arena may hand the 19 MiB back after each
 * hash and the next one pays the page faults, which is not hashing. One
 * warm-up run, then RUNS timed runs (default 20) on each of THREADS
 * threads (default 1) started together. Prints "median_ms min_ms mean_ms
 * rate" on one line: the times of single hashes, and the hashes per second
 * all threads achieved together (with THREADS > 1, what the machine can
 * really hash at once: the hashes share caches and memory bandwidth).
 */
#include <argon2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static unsigned long
arg(const char *s, const char *name)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v == 0) {
		fprintf(stderr, "argon2_time: bad %s: %s\n", name, s);
		exit(2);
	}
	return v;
}

struct job {
	unsigned long t, m, p, runs;
	double *ms;		/* runs timings of this thread */
	pthread_barrier_t *start;
	int rc;
	uint8_t *block;		/* the thread's working memory, reused */
	size_t block_len;
};

static _Thread_local struct job *cur;

static int
block_alloc(uint8_t **memory, size_t bytes)
{
	if (cur->block == NULL) {
		cur->block = malloc(bytes);
		cur->block_len = bytes;
	}
	if (cur->block == NULL || cur->block_len != bytes)
		return ARGON2_MEMORY_ALLOCATION_ERROR;
	*memory = cur->block;
	return ARGON2_OK;
}

static void
block_keep(uint8_t *memory, size_t bytes)
{
	(void)memory;
	(void)bytes;
}

static void *
hash_runs(void *arg)
{
	static const char pw[] = "Bench-Secret-9!xq";
	struct job *j = arg;
	uint8_t salt[16], tag[32];

	memset(salt, 0x5a, sizeof salt);
	cur = j;
	/* run 0 warms up, before the threads start together */
	for (unsigned long i = 0; i <= j->runs; i++) {
		argon2_context c = {
			.out = tag, .outlen = sizeof tag,
			.pwd = (uint8_t *)(uintptr_t)pw, .pwdlen = sizeof pw - 1,
			.salt = salt, .saltlen = sizeof salt,
			.t_cost = (uint32_t)j->t, .m_cost = (uint32_t)j->m,
			.lanes = (uint32_t)j->p, .threads = (uint32_t)j->p,
			.allocate_cbk = block_alloc, .free_cbk = block_keep,
			.flags = ARGON2_DEFAULT_FLAGS,
			.version = ARGON2_VERSION_13,
		};
		double t0;

		if (i == 1)
			pthread_barrier_wait(j->start);
		t0 = now_ms();
		j->rc = argon2_ctx(&c, Argon2_id);
		if (j->rc != ARGON2_OK) {
			if (i == 0)	/* the others wait at the barrier */
				pthread_barrier_wait(j->start);
			return NULL;
		}
		if (i > 0)
			j->ms[i - 1] = now_ms() - t0;
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	unsigned long t, m, p, runs = 20, threads = 1, n;
	pthread_barrier_t start;
	pthread_t *tid;
	struct job *jobs;
	double *ms, sum = 0, t0, wall;

	if (argc < 4 || argc > 6) {
		fprintf(stderr, "usage: %s T_COST M_KIB PARALLELISM [RUNS "
		    "[THREADS]]\n", argv[0]);
		return 2;
	}
	t = arg(argv[1], "t_cost");
	m = arg(argv[2], "m_kib");
	p = arg(argv[3], "parallelism");
	if (argc >= 5)
		runs = arg(argv[4], "runs");
	if (argc == 6)
		threads = arg(argv[5], "threads");
	n = runs * threads;
	ms = calloc(n, sizeof *ms);
	jobs = calloc(threads, sizeof *jobs);
	tid = calloc(threads, sizeof *tid);
	if (ms == NULL || jobs == NULL || tid == NULL ||
	    pthread_barrier_init(&start, NULL, (unsigned)threads + 1) != 0)
		return 1;
	for (unsigned long i = 0; i < threads; i++) {
		jobs[i] = (struct job){ t, m, p, runs, ms + i * runs, &start,
			ARGON2_OK, NULL, 0 };
		if (pthread_create(&tid[i], NULL, hash_runs, &jobs[i]) != 0)
			return 1;
	}
	pthread_barrier_wait(&start);
	t0 = now_ms();
	for (unsigned long i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
	wall = now_ms() - t0;
	for (unsigned long i = 0; i < threads; i++) {
		free(jobs[i].block);
		if (jobs[i].rc != ARGON2_OK) {
			fprintf(stderr, "argon2_time: %s\n",
			    argon2_error_message(jobs[i].rc));
			return 1;
		}
	}
	for (unsigned long i = 0; i < n; i++)
		sum += ms[i];
	qsort(ms, n, sizeof *ms, cmp_double);
	printf("%.3f %.3f %.3f %.2f\n", n % 2 ? ms[n / 2] :
	    (ms[n / 2 - 1] + ms[n / 2]) / 2, ms[0], sum / (double)n,
	    (double)n / (wall / 1e3));
	free(ms);
	free(jobs);
	free(tid);
	pthread_barrier_destroy(&start);
	return 0;
}
