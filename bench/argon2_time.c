/*
 * argon2_time.c: the time of one argon2id computation at given parameters,
 * for the hash-bound limit of password sign-in (cores / this time).
 *
 *   argon2_time T_COST M_KIB PARALLELISM [RUNS]
 *
 * Times argon2id_hash_raw, which is what a sign-in's verification costs
 * (Gatehouse recomputes the tag with the stored salt and compares). One
 * warm-up run, then RUNS timed runs (default 20) on one thread. Prints
 * "median_ms min_ms mean_ms" on one line.
 */
#include <argon2.h>
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

int
main(int argc, char **argv)
{
	static const char pw[] = "Bench-Secret-9!xq";
	uint8_t salt[16], tag[32];
	unsigned long t, m, p, runs = 20;
	double *ms, sum = 0;
	int rc;

	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: %s T_COST M_KIB PARALLELISM [RUNS]\n",
		    argv[0]);
		return 2;
	}
	t = arg(argv[1], "t_cost");
	m = arg(argv[2], "m_kib");
	p = arg(argv[3], "parallelism");
	if (argc == 5)
		runs = arg(argv[4], "runs");
	ms = calloc(runs, sizeof *ms);
	if (ms == NULL)
		return 1;
	memset(salt, 0x5a, sizeof salt);

	for (unsigned long i = 0; i <= runs; i++) {
		double t0 = now_ms();

		rc = argon2id_hash_raw((uint32_t)t, (uint32_t)m, (uint32_t)p,
		    pw, sizeof pw - 1, salt, sizeof salt, tag, sizeof tag);
		if (rc != ARGON2_OK) {
			fprintf(stderr, "argon2_time: %s\n",
			    argon2_error_message(rc));
			return 1;
		}
		if (i > 0) {	/* run 0 warms up */
			ms[i - 1] = now_ms() - t0;
			sum += ms[i - 1];
		}
	}
	qsort(ms, runs, sizeof *ms, cmp_double);
	printf("%.3f %.3f %.3f\n", runs % 2 ? ms[runs / 2] :
	    (ms[runs / 2 - 1] + ms[runs / 2]) / 2, ms[0], sum / (double)runs);
	free(ms);
	return 0;
}
