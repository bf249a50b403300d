/*
 * kms_speed.c: field encryption throughput through the real kms API
 * (gh_kms_encrypt / gh_kms_decrypt, AES-256-GCM with the AAD binding),
 * for a value size, printed as "<encrypt ops/s> <decrypt ops/s>".
 * usage: kms_speed DIR BYTES SECONDS   (DIR: an empty scratch directory)
 *
 * Measured like `openssl speed`, which it is compared with: each loop runs
 * for SECONDS of wall-clock time and its count is divided by the CPU time
 * the process used (openssl speed divides by user time unless -elapsed;
 * here user + system, so the DRBG's system calls count against the kms).
 * On a shared machine wall-clock rates would charge the kms, and not
 * openssl, for the time other processes ran. The clock is read once per
 * BATCH operations, not per operation: openssl speed reads none (an alarm
 * stops it), and a clock read is a sizeable part of a 64-byte operation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 64

#include "kms/kms.h"

static double
clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double
now_s(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

static double
cpu_s(void)
{
	return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

int
main(int argc, char **argv)
{
	char key[4096], store[4096], msg[512], org[GH_ID_LEN + 1];
	struct gh_kms_aad aad = { NULL, "user_attributes", "passport",
		"0123456789abcdef0123456789abcdef" };
	struct gh_kms_config cfg = { 0 };
	struct gh_buf ct, pt;
	struct gh_kms *kms;
	double secs, t0, c0, enc, dec;
	size_t len;
	long n;
	int b;
	uint8_t *val;

	if (argc != 4)
		return 2;
	len = strtoul(argv[2], NULL, 10);
	secs = atof(argv[3]);
	snprintf(key, sizeof key, "%s/master-key", argv[1]);
	snprintf(store, sizeof store, "%s/keystore", argv[1]);
	cfg.provider = "file";
	cfg.master_key_file = key;
	cfg.key_store_file = store;
	if (gh_kms_create(&cfg, msg, sizeof msg) != GH_OK ||
	    gh_kms_open(&cfg, &kms, msg, sizeof msg) != GH_OK ||
	    gh_id_new(org) != GH_OK || gh_kms_org_create(kms, org) != GH_OK) {
		fprintf(stderr, "kms_speed: %s\n", msg);
		return 1;
	}
	aad.org_id = org;
	val = calloc(1, len ? len : 1);
	gh_buf_init(&ct, len + GH_KMS_OVERHEAD + 64, 0);
	gh_buf_init(&pt, len + 64, GH_BUF_SECRET);
	for (n = 0, t0 = now_s(), c0 = cpu_s(); now_s() - t0 < secs;) {
		for (b = 0; b < BATCH; b++, n++) {
			gh_buf_reset(&ct);
			if (gh_kms_encrypt(kms, GH_KMS_ATTRIBUTES, &aad, val,
			    len, &ct) != GH_OK)
				return 1;
		}
	}
	enc = n / (cpu_s() - c0);
	for (n = 0, t0 = now_s(), c0 = cpu_s(); now_s() - t0 < secs;) {
		for (b = 0; b < BATCH; b++, n++) {
			gh_buf_reset(&pt);
			if (gh_kms_decrypt(kms, GH_KMS_ATTRIBUTES, &aad,
			    ct.data, ct.len, &pt) != GH_OK)
				return 1;
		}
	}
	dec = n / (cpu_s() - c0);
	printf("%.0f %.0f\n", enc, dec);
	gh_buf_free(&ct);
	gh_buf_free(&pt);
	free(val);
	gh_kms_free(kms);
	return 0;
}
