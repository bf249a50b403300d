/*
 * kms_test.c: unit tests for the key hierarchy, the file provider, the
 * key store and the AEAD. Each test runs in its own mkdtemp directory with
 * a fresh master key file and key store. Holds only test keys.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#define _XOPEN_SOURCE_EXTENDED 1
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kms/kms_int.h"

#define ORG_A "0123456789abcdef0123456789abcdef"
#define ORG_B "fedcba9876543210fedcba9876543210"

struct fx {
	char dir[64];
	char mk[128];
	char store[128];
	struct gh_kms_config cfg;
	struct gh_kms *kms;
	char msg[512];
};

static const struct gh_kms_aad aad_a = { ORG_A, "users", "totp_seed",
	"42" };

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
fx_open(struct fx *f)
{
	gh_err err = gh_kms_open(&f->cfg, &f->kms, f->msg, sizeof f->msg);

	if (err != GH_OK)
		fail_msg("open: %s", f->msg);
}

static void
fx_reopen(struct fx *f)
{
	gh_kms_free(f->kms);
	f->kms = NULL;
	fx_open(f);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);

	assert_non_null(f);
	strcpy(f->dir, "/tmp/gh-kms-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->mk, sizeof f->mk, "%s/master.key", f->dir);
	snprintf(f->store, sizeof f->store, "%s/keys.db", f->dir);
	f->cfg.provider = "file";
	f->cfg.master_key_file = f->mk;
	f->cfg.key_store_file = f->store;
	assert_int_equal(gh_kms_create(&f->cfg, f->msg, sizeof f->msg), GH_OK);
	fx_open(f);
	assert_int_equal(gh_kms_org_create(f->kms, ORG_A), GH_OK);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	gh_kms_free(f->kms);
	nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void
encrypt_ok(struct fx *f, const struct gh_kms_aad *aad, const char *pt,
    struct gh_buf *ct)
{
	gh_buf_init(ct, 1 << 20, 0);
	assert_int_equal(gh_kms_encrypt(f->kms, GH_KMS_SECRETS, aad, pt,
	    strlen(pt), ct), GH_OK);
}

static gh_err
decrypt(struct fx *f, const struct gh_kms_aad *aad, const struct gh_buf *ct,
    struct gh_buf *pt)
{
	gh_buf_init(pt, 1 << 20, GH_BUF_SECRET);
	return gh_kms_decrypt(f->kms, GH_KMS_SECRETS, aad, ct->data, ct->len,
	    pt);
}

static void
decrypt_is(struct fx *f, const struct gh_kms_aad *aad,
    const struct gh_buf *ct, const char *want)
{
	struct gh_buf pt;

	assert_int_equal(decrypt(f, aad, ct, &pt), GH_OK);
	assert_int_equal(pt.len, strlen(want));
	assert_memory_equal(pt.data, want, pt.len);
	gh_buf_free(&pt);
}

static gh_err
decrypt_err(struct fx *f, const struct gh_kms_aad *aad,
    const struct gh_buf *ct)
{
	struct gh_buf pt;
	gh_err err = decrypt(f, aad, ct, &pt);

	if (err != GH_OK)
		assert_int_equal(pt.len, 0);	/* untouched on failure */
	gh_buf_free(&pt);
	return err;
}

static void
write_file(const char *path, const char *content, mode_t mode)
{
	FILE *fp;

	(void)chmod(path, 0600);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(content, fp);
	fclose(fp);
	assert_int_equal(chmod(path, mode), 0);
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	if (len != NULL)
		*len = (size_t)n;
	return buf;
}

/* The master versions listed in the key file, as "1,2," */
static void
key_file_versions(struct fx *f, char *out, size_t cap)
{
	char *s = read_file(f->mk, NULL), *line, *save = NULL;

	out[0] = '\0';
	line = strtok_r(s, "\n", &save);	/* header */
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		size_t n = strlen(out);

		snprintf(out + n, cap - n, "%.*s,", (int)strcspn(line, " "),
		    line);
	}
	free(s);
}

static gh_err
open_err(struct fx *f)
{
	struct gh_kms *k = NULL;
	gh_err err;

	gh_kms_free(f->kms);
	f->kms = NULL;
	f->msg[0] = '\0';
	err = gh_kms_open(&f->cfg, &k, f->msg, sizeof f->msg);
	if (err == GH_OK)
		gh_kms_free(k);
	else
		assert_null(k);
	return err;
}

/* ---- create and open ----------------------------------------------------- */

static void
test_create_then_open_round_trips(void **state)
{
	struct fx *f = *state;
	struct gh_buf ct;
	struct stat st;

	encrypt_ok(f, &aad_a, "seed", &ct);
	fx_reopen(f);
	decrypt_is(f, &aad_a, &ct, "seed");
	assert_int_equal(stat(f->mk, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0400);
	assert_int_equal(stat(f->store, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	/* Neither file is ever overwritten. */
	assert_int_equal(gh_kms_create(&f->cfg, f->msg, sizeof f->msg),
	    GH_ERR_CONFLICT);
	assert_non_null(strstr(f->msg, f->store));
	gh_buf_free(&ct);
}

static void
test_create_refuses_an_existing_master_key_file(void **state)
{
	struct fx *f = *state;
	struct gh_kms_config cfg = f->cfg;
	char store2[160];

	snprintf(store2, sizeof store2, "%s/other.db", f->dir);
	cfg.key_store_file = store2;
	assert_int_equal(gh_kms_create(&cfg, f->msg, sizeof f->msg),
	    GH_ERR_CONFLICT);
	assert_non_null(strstr(f->msg, f->mk));
}

static void
test_open_refuses_master_key_modes_wider_than_0400(void **state)
{
	struct fx *f = *state;
	const mode_t modes[] = { 0440, 0600, 0644, 0404, 0500 };
	size_t i;

	for (i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		assert_int_equal(chmod(f->mk, modes[i]), 0);
		assert_int_not_equal(open_err(f), GH_OK);
		assert_non_null(strstr(f->msg, f->mk));
		assert_non_null(strstr(f->msg, "mode"));
	}
	assert_int_equal(chmod(f->mk, 0400), 0);
	fx_open(f);
}

static void
test_open_refuses_a_symlinked_or_irregular_master_key(void **state)
{
	struct fx *f = *state;
	char link[160];

	snprintf(link, sizeof link, "%s/link.key", f->dir);
	assert_int_equal(symlink(f->mk, link), 0);
	f->cfg.master_key_file = link;
	assert_int_not_equal(open_err(f), GH_OK);
	assert_non_null(strstr(f->msg, "symlink"));
	assert_non_null(strstr(f->msg, link));
	f->cfg.master_key_file = f->dir;	/* a directory */
	assert_int_not_equal(open_err(f), GH_OK);
	assert_non_null(strstr(f->msg, "not a regular file"));
	f->cfg.master_key_file = f->mk;
	fx_open(f);
}

static void
test_open_refuses_missing_files(void **state)
{
	struct fx *f = *state;
	char missing[160];

	snprintf(missing, sizeof missing, "%s/nope", f->dir);
	f->cfg.master_key_file = missing;
	assert_int_equal(open_err(f), GH_ERR_NOTFOUND);
	assert_non_null(strstr(f->msg, missing));
	f->cfg.master_key_file = f->mk;
	f->cfg.key_store_file = missing;
	assert_int_equal(open_err(f), GH_ERR_NOTFOUND);
	assert_non_null(strstr(f->msg, missing));
	f->cfg.key_store_file = f->store;
	fx_open(f);
}

static void
test_open_refuses_an_unknown_provider_naming_the_setting(void **state)
{
	struct fx *f = *state;

	f->cfg.provider = "vault";
	assert_int_equal(open_err(f), GH_ERR_INVALID);
	assert_non_null(strstr(f->msg, "provider"));
	assert_non_null(strstr(f->msg, "vault"));
	f->cfg.provider = "file";
	fx_open(f);
}

static void
test_open_refuses_malformed_truncated_or_zero_key_files(void **state)
{
	struct fx *f = *state;
	char *good = read_file(f->mk, NULL), *line2, bad[512];
	const char *zero = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	struct { const char *content, *why; } cases[] = {
		{ "", "empty" },
		{ "gatehouse-master-keys 1\n", "no key" },
		{ "gatehouse-master-keys 2\n1 x\n", "unknown format" },
		{ NULL, "truncated" },		/* good file cut short */
		{ NULL, "duplicate" },		/* line 2 twice */
		{ NULL, "all-zero" },
		{ "gatehouse-master-keys 1\n1 !!!\n", "encoding" },
		{ "gatehouse-master-keys 1\nx AAAA\n", "malformed" },
		{ "gatehouse-master-keys 1\n01 AAAA\n", "malformed" },
	};
	size_t i;

	line2 = strchr(good, '\n') + 1;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *content = cases[i].content;

		if (strcmp(cases[i].why, "truncated") == 0) {
			snprintf(bad, sizeof bad, "%.*s", (int)strlen(good) - 5,
			    good);
			content = bad;
		} else if (strcmp(cases[i].why, "duplicate") == 0) {
			snprintf(bad, sizeof bad, "%s%s", good, line2);
			content = bad;
		} else if (strcmp(cases[i].why, "all-zero") == 0) {
			snprintf(bad, sizeof bad,
			    "gatehouse-master-keys 1\n1 %s\n", zero);
			content = bad;
		}
		write_file(f->mk, content, 0400);
		assert_int_not_equal(open_err(f), GH_OK);
		assert_non_null(strstr(f->msg, f->mk));
		if (strstr(f->msg, cases[i].why) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, f->msg,
			    cases[i].why);
	}
	write_file(f->mk, good, 0400);
	fx_open(f);
	free(good);
}

static void
test_a_key_file_without_the_store_master_version_is_refused(void **state)
{
	struct fx *f = *state;
	struct kms_provider *p;

	/* Another master key file: the store's version 1 does not open. */
	assert_int_equal(unlink(f->mk), 0);
	assert_int_equal(kms_provider_file_open(f->mk, true, &p, f->msg,
	    sizeof f->msg), GH_OK);
	p->free(p);
	assert_int_equal(open_err(f), GH_ERR_CRYPTO);
	assert_non_null(strstr(f->msg, "wrong master key"));
	assert_non_null(strstr(f->msg, f->store));
}

static void
test_a_truncated_key_store_is_refused(void **state)
{
	struct fx *f = *state;
	struct stat st;
	int i;

	/* Enough rows for a multi-page file. */
	for (i = 0; i < 40; i++) {
		char org[40];

		snprintf(org, sizeof org, "org-%032d", i);
		assert_int_equal(gh_kms_org_create(f->kms, org), GH_OK);
	}
	gh_kms_free(f->kms);
	f->kms = NULL;
	assert_int_equal(stat(f->store, &st), 0);
	assert_true(st.st_size > 3 * 4096);
	assert_int_equal(truncate(f->store, st.st_size / 2), 0);
	assert_int_not_equal(open_err(f), GH_OK);
	assert_non_null(strstr(f->msg, f->store));
	if (strstr(f->msg, "truncated") == NULL)
		fail_msg("%s", f->msg);
	assert_int_equal(truncate(f->store, 0), 0);
	assert_int_not_equal(open_err(f), GH_OK);
	assert_non_null(strstr(f->msg, f->store));
	write_file(f->store, "this is not a database at all, not even close, "
	    "and it is long enough to have a header\n", 0600);
	assert_int_not_equal(open_err(f), GH_OK);
	assert_non_null(strstr(f->msg, f->store));
}

/* ---- field encryption ---------------------------------------------------- */

static void
test_encrypt_round_trips_empty_small_and_large_values(void **state)
{
	struct fx *f = *state;
	const size_t sizes[] = { 0, 64, 4096 };
	size_t i;

	for (i = 0; i < 3; i++) {
		uint8_t *v = malloc(sizes[i] + 1);
		struct gh_buf ct, pt;
		uint32_t ver;

		assert_non_null(v);
		memset(v, (int)('a' + i), sizes[i]);
		gh_buf_init(&ct, 1 << 20, 0);
		assert_int_equal(gh_kms_encrypt(f->kms, GH_KMS_ATTRIBUTES,
		    &aad_a, v, sizes[i], &ct), GH_OK);
		assert_int_equal(ct.len, sizes[i] + GH_KMS_OVERHEAD);
		assert_int_equal(ct.data[0], 0x01);
		assert_int_equal(gh_kms_ct_version(ct.data, ct.len, &ver),
		    GH_OK);
		assert_int_equal(ver, 1);
		if (sizes[i] >= 16)
			assert_null(memmem(ct.data, ct.len, v, 16));
		gh_buf_init(&pt, 1 << 20, GH_BUF_SECRET);
		assert_int_equal(gh_kms_decrypt(f->kms, GH_KMS_ATTRIBUTES,
		    &aad_a, ct.data, ct.len, &pt), GH_OK);
		assert_int_equal(pt.len, sizes[i]);
		if (sizes[i] > 0)
			assert_memory_equal(pt.data, v, sizes[i]);
		gh_buf_free(&ct);
		gh_buf_free(&pt);
		free(v);
	}
}

static void
test_many_orgs_and_purposes_share_the_key_cache(void **state)
{
	struct fx *f = *state;
	struct gh_buf ct[50][2];
	char org[50][40];
	int i, round, p;

	for (i = 0; i < 50; i++) {
		snprintf(org[i], sizeof org[i], "org-%032d", i);
		assert_int_equal(gh_kms_org_create(f->kms, org[i]), GH_OK);
	}
	/* 50 org keys and 100 data keys cycle through a smaller cache. */
	for (round = 0; round < 3; round++) {
		for (i = 0; i < 50; i++) {
			for (p = 0; p < 2; p++) {
				struct gh_kms_aad aad = aad_a;
				enum gh_kms_purpose pu = p ? GH_KMS_FILES :
				    GH_KMS_SECRETS;
				struct gh_buf pt;

				aad.org_id = org[i];
				if (round == 0) {
					gh_buf_init(&ct[i][p], 1024, 0);
					assert_int_equal(gh_kms_encrypt(f->kms,
					    pu, &aad, org[i], strlen(org[i]),
					    &ct[i][p]), GH_OK);
				}
				gh_buf_init(&pt, 1024, GH_BUF_SECRET);
				assert_int_equal(gh_kms_decrypt(f->kms, pu,
				    &aad, ct[i][p].data, ct[i][p].len, &pt),
				    GH_OK);
				assert_string_equal(gh_buf_cstr(&pt), org[i]);
				gh_buf_free(&pt);
				if (round == 2)
					gh_buf_free(&ct[i][p]);
			}
		}
	}
}

static void
test_tampered_ciphertexts_are_refused(void **state)
{
	struct fx *f = *state;
	struct gh_buf ct;
	size_t i;

	encrypt_ok(f, &aad_a, "a secret TOTP seed value", &ct);
	for (i = 0; i < ct.len; i++) {
		gh_err err;

		ct.data[i] ^= 0x01;
		err = decrypt_err(f, &aad_a, &ct);
		if (i == 0)
			assert_int_equal(err, GH_ERR_INVALID); /* format */
		else if (i < 5) {
			/* version: 0, no such key, or another key's tag */
			if (err != GH_ERR_NOTFOUND && err != GH_ERR_CRYPTO &&
			    err != GH_ERR_INVALID)
				fail_msg("byte %zu: %d", i, err);
		}
		else
			/* nonce, body, tag */
			assert_int_equal(err, GH_ERR_CRYPTO);
		ct.data[i] ^= 0x01;
	}
	/* Cut short, and too short to hold the overhead. */
	ct.len--;
	assert_int_equal(decrypt_err(f, &aad_a, &ct), GH_ERR_CRYPTO);
	ct.len = GH_KMS_OVERHEAD - 1;
	assert_int_equal(decrypt_err(f, &aad_a, &ct), GH_ERR_INVALID);
	gh_buf_free(&ct);
}

static void
test_ciphertexts_moved_to_another_place_fail(void **state)
{
	struct fx *f = *state;
	struct gh_kms_aad other;
	struct gh_buf ct, pt;

	assert_int_equal(gh_kms_org_create(f->kms, ORG_B), GH_OK);
	encrypt_ok(f, &aad_a, "seed", &ct);
	other = aad_a;
	other.row_id = "43";
	assert_int_equal(decrypt_err(f, &other, &ct), GH_ERR_CRYPTO);
	other = aad_a;
	other.column = "recovery_codes";
	assert_int_equal(decrypt_err(f, &other, &ct), GH_ERR_CRYPTO);
	other = aad_a;
	other.table = "clients";
	assert_int_equal(decrypt_err(f, &other, &ct), GH_ERR_CRYPTO);
	other = aad_a;
	other.org_id = ORG_B;
	assert_int_equal(decrypt_err(f, &other, &ct), GH_ERR_CRYPTO);
	/* Length prefixes: "4" + "2" is not "42". */
	other = aad_a;
	other.column = "totp_seed4";
	other.row_id = "2";
	assert_int_equal(decrypt_err(f, &other, &ct), GH_ERR_CRYPTO);
	/* Another purpose's key. */
	gh_buf_init(&pt, 1024, GH_BUF_SECRET);
	assert_int_equal(gh_kms_decrypt(f->kms, GH_KMS_FILES, &aad_a,
	    ct.data, ct.len, &pt), GH_ERR_CRYPTO);
	gh_buf_free(&pt);
	decrypt_is(f, &aad_a, &ct, "seed");
	gh_buf_free(&ct);
}

static void
test_a_relabelled_key_version_fails(void **state)
{
	struct fx *f = *state;
	struct gh_buf ct;

	encrypt_ok(f, &aad_a, "seed", &ct);
	assert_int_equal(gh_kms_rotate_org(f->kms, ORG_A), GH_OK);
	ct.data[4] = 2;		/* claims version 2, which exists */
	assert_int_equal(decrypt_err(f, &aad_a, &ct), GH_ERR_CRYPTO);
	ct.data[4] = 9;		/* a version that never existed */
	assert_int_not_equal(decrypt_err(f, &aad_a, &ct), GH_OK);
	ct.data[4] = 1;
	decrypt_is(f, &aad_a, &ct, "seed");
	gh_buf_free(&ct);
}

static void
test_misuse_is_refused(void **state)
{
	struct fx *f = *state;
	struct gh_kms_aad bad = aad_a;
	struct gh_buf ct;
	uint8_t zero[GH_KMS_KEY_LEN] = { 0 }, idx[GH_KMS_INDEX_LEN];

	gh_buf_init(&ct, 1024, 0);
	bad.row_id = NULL;
	assert_int_equal(gh_kms_encrypt(f->kms, GH_KMS_SECRETS, &bad, "x", 1,
	    &ct), GH_ERR_INVALID);
	bad = aad_a;
	bad.org_id = "";
	assert_int_equal(gh_kms_encrypt(f->kms, GH_KMS_SECRETS, &bad, "x", 1,
	    &ct), GH_ERR_INVALID);
	assert_int_equal(gh_kms_encrypt(f->kms, GH_KMS_INDEX, &aad_a, "x", 1,
	    &ct), GH_ERR_INVALID);
	assert_int_equal(gh_kms_encrypt(f->kms, (enum gh_kms_purpose)99,
	    &aad_a, "x", 1, &ct), GH_ERR_INVALID);
	bad = aad_a;
	bad.org_id = "no-such-org";
	assert_int_equal(gh_kms_encrypt(f->kms, GH_KMS_SECRETS, &bad, "x", 1,
	    &ct), GH_ERR_NOTFOUND);
	assert_int_equal(gh_kms_blind_index(f->kms, "no-such-org", "t", "c",
	    "v", 1, idx), GH_ERR_NOTFOUND);
	assert_int_equal(ct.len, 0);
	assert_int_equal(gh_kms_org_create(f->kms, ORG_A), GH_ERR_CONFLICT);
	assert_int_equal(gh_kms_customer_key_set(f->kms, ORG_A, zero),
	    GH_ERR_INVALID);
	assert_int_equal(gh_kms_customer_key_revoke(f->kms, ORG_A),
	    GH_ERR_NOTFOUND);
	assert_int_equal(gh_kms_org_shred(f->kms, "no-such-org"),
	    GH_ERR_NOTFOUND);
	assert_string_equal(gh_kms_purpose_name(GH_KMS_SECRETS), "secrets");
	assert_string_equal(gh_kms_purpose_name(GH_KMS_ATTRIBUTES),
	    "attributes");
	assert_string_equal(gh_kms_purpose_name(GH_KMS_FILES), "files");
	assert_string_equal(gh_kms_purpose_name(GH_KMS_BACKUPS), "backups");
	assert_string_equal(gh_kms_purpose_name(GH_KMS_STORAGE), "storage");
	assert_string_equal(gh_kms_purpose_name(GH_KMS_INDEX), "index");
	gh_buf_free(&ct);
}

static void
test_aead_refuses_an_all_zero_key(void **state)
{
	uint8_t zero[GH_KMS_KEY_LEN] = { 0 }, key[GH_KMS_KEY_LEN];
	uint8_t blob[64] = { 0 };
	struct gh_buf out;

	(void)state;
	gh_buf_init(&out, 1024, GH_BUF_SECRET);
	assert_int_equal(kms_aead_open(zero, NULL, 0, blob, sizeof blob, &out),
	    GH_ERR_CRYPTO);
	assert_int_equal(kms_aead_seal(zero, NULL, 0, blob, 4, &out),
	    GH_ERR_CRYPTO);
	memset(key, 7, sizeof key);
	assert_int_equal(kms_aead_open(key, NULL, 0, blob, 27, &out),
	    GH_ERR_INVALID);
	assert_int_equal(kms_aead_seal(key, (const uint8_t *)"ad", 2, blob, 4,
	    &out), GH_OK);
	assert_int_equal(out.len, 4 + 28);
	memcpy(blob, out.data, out.len);
	gh_buf_reset(&out);
	assert_int_equal(kms_aead_open(key, (const uint8_t *)"ad", 2, blob,
	    32, &out), GH_OK);
	assert_int_equal(out.len, 4);
	gh_buf_reset(&out);
	assert_int_equal(kms_aead_open(key, (const uint8_t *)"ae", 2, blob,
	    32, &out), GH_ERR_CRYPTO);
	assert_int_equal(out.len, 0);
	gh_buf_free(&out);
}

/* Input inside the output buffer, which the append moves (128 -> 256
 * bytes of capacity): transformed from its new place, not from freed
 * memory. */
static void
test_aead_input_inside_the_output_buffer(void **state)
{
	uint8_t key[GH_KMS_KEY_LEN], msg[60], *ct;
	const uint8_t *before;
	struct gh_buf out;
	size_t ct_len;

	(void)state;
	memset(key, 9, sizeof key);
	memset(msg, 'm', sizeof msg);
	gh_buf_init(&out, 4096, 0);
	gh_buf_put(&out, msg, sizeof msg);
	before = out.data;
	assert_int_equal(kms_aead_seal(key, NULL, 0, out.data, sizeof msg,
	    &out), GH_OK);
	assert_ptr_not_equal(out.data, before);
	assert_int_equal(out.len, 2 * sizeof msg + 28);
	assert_memory_equal(out.data, msg, sizeof msg);
	/* The ciphertext is not the plaintext, and it opens. */
	assert_memory_not_equal(out.data + sizeof msg + 12, msg, sizeof msg);
	ct_len = out.len - sizeof msg;
	ct = malloc(ct_len);
	assert_non_null(ct);
	memcpy(ct, out.data + sizeof msg, ct_len);
	/* Open from a ciphertext inside the output. */
	gh_buf_free(&out);
	gh_buf_put(&out, ct, ct_len);
	before = out.data;
	assert_int_equal(kms_aead_open(key, NULL, 0, out.data, ct_len, &out),
	    GH_OK);
	assert_ptr_not_equal(out.data, before);
	assert_int_equal(out.len, ct_len + sizeof msg);
	assert_memory_equal(out.data + ct_len, msg, sizeof msg);
	/* Input overlapping the unused part of the buffer is refused. */
	gh_buf_reset(&out);
	gh_buf_put(&out, ct, 8);
	assert_int_equal(kms_aead_open(key, NULL, 0, out.data, ct_len, &out),
	    GH_ERR_INVALID);
	assert_int_equal(out.len, 8);
	free(ct);
	gh_buf_free(&out);
}

/* ---- shredding ----------------------------------------------------------- */

static void
test_shredding_makes_data_unreadable_and_the_id_unusable(void **state)
{
	struct fx *f = *state;
	struct gh_buf ct, ctb;
	struct gh_kms_aad ab = aad_a;
	char *raw;
	size_t raw_len;
	uint8_t key[GH_KMS_KEY_LEN];

	ab.org_id = ORG_B;
	assert_int_equal(gh_kms_org_create(f->kms, ORG_B), GH_OK);
	encrypt_ok(f, &aad_a, "seed", &ct);
	encrypt_ok(f, &ab, "seed b", &ctb);
	assert_int_equal(gh_kms_org_shred(f->kms, ORG_A), GH_OK);
	assert_int_equal(decrypt_err(f, &aad_a, &ct), GH_ERR_NOTFOUND);
	assert_int_equal(gh_kms_org_available(f->kms, ORG_A),
	    GH_ERR_NOTFOUND);
	assert_int_equal(gh_kms_storage_key(f->kms, ORG_A, 0, NULL, key),
	    GH_ERR_NOTFOUND);
	assert_int_equal(gh_kms_org_create(f->kms, ORG_A), GH_ERR_CONFLICT);
	assert_int_equal(gh_kms_org_shred(f->kms, ORG_A), GH_OK);
	/* The other org is untouched, also after a reopen. */
	fx_reopen(f);
	decrypt_is(f, &ab, &ctb, "seed b");
	assert_int_equal(decrypt_err(f, &aad_a, &ct), GH_ERR_NOTFOUND);
	assert_int_equal(gh_kms_org_create(f->kms, ORG_A), GH_ERR_CONFLICT);
	/* The WAL was checkpointed and truncated. */
	raw = read_file(f->store, &raw_len);
	assert_true(raw_len > 0);
	free(raw);
	{
		char wal[160];
		struct stat st;

		snprintf(wal, sizeof wal, "%s-wal", f->store);
		if (stat(wal, &st) == 0)
			assert_true(st.st_size < 64 * 1024);
	}
	gh_buf_free(&ct);
	gh_buf_free(&ctb);
}

/* ---- rotation ------------------------------------------------------------ */

static void
test_master_rotation_keeps_data_and_destroys_old_version(
    void **state)
{
	struct fx *f = *state;
	struct gh_kms_aad ab = aad_a;
	struct gh_buf ct, ctb;
	char versions[64];
	uint32_t v = 0;
	json_t *st;

	ab.org_id = ORG_B;
	assert_int_equal(gh_kms_org_create(f->kms, ORG_B), GH_OK);
	encrypt_ok(f, &aad_a, "seed a", &ct);
	encrypt_ok(f, &ab, "seed b", &ctb);
	assert_int_equal(gh_kms_rotate_master(f->kms, &v), GH_OK);
	assert_int_equal(v, 2);
	key_file_versions(f, versions, sizeof versions);
	assert_string_equal(versions, "2,");
	decrypt_is(f, &aad_a, &ct, "seed a");
	fx_reopen(f);
	decrypt_is(f, &aad_a, &ct, "seed a");
	decrypt_is(f, &ab, &ctb, "seed b");
	assert_int_equal(gh_kms_rotate_master(f->kms, &v), GH_OK);
	assert_int_equal(v, 3);
	fx_reopen(f);
	decrypt_is(f, &ab, &ctb, "seed b");
	assert_int_equal(gh_kms_status(f->kms, &st), GH_OK);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(st,
	    "master"), "current")), 3);
	assert_int_equal(json_array_size(json_object_get(json_object_get(st,
	    "master"), "versions")), 1);
	json_decref(st);
	gh_buf_free(&ct);
	gh_buf_free(&ctb);
}

static void
test_an_interrupted_master_rotation_finishes_on_rerun(void **state)
{
	struct fx *f = *state;
	struct kms_provider *p;
	struct gh_buf ct;
	char versions[64];
	uint32_t v = 0;
	json_t *st;

	encrypt_ok(f, &aad_a, "seed", &ct);
	/* Stopped after the new version was made and recorded. */
	kms_test_rotate_master_stop(f->kms, 1);
	assert_int_equal(gh_kms_rotate_master(f->kms, &v), GH_ERR_INTERNAL);
	fx_reopen(f);
	decrypt_is(f, &aad_a, &ct, "seed");
	assert_int_equal(gh_kms_status(f->kms, &st), GH_OK);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(st,
	    "master"), "rotation_pending")), 2);
	json_decref(st);
	assert_int_equal(gh_kms_rotate_master(f->kms, &v), GH_OK);
	assert_int_equal(v, 2);		/* finished, not started anew */
	key_file_versions(f, versions, sizeof versions);
	assert_string_equal(versions, "2,");
	fx_reopen(f);
	decrypt_is(f, &aad_a, &ct, "seed");

	/* Stopped after re-wrapping, before destroying. */
	kms_test_rotate_master_stop(f->kms, 2);
	assert_int_equal(gh_kms_rotate_master(f->kms, &v), GH_ERR_INTERNAL);
	key_file_versions(f, versions, sizeof versions);
	assert_string_equal(versions, "2,3,");
	fx_reopen(f);
	decrypt_is(f, &aad_a, &ct, "seed");
	assert_int_equal(gh_kms_rotate_master(f->kms, &v), GH_OK);
	key_file_versions(f, versions, sizeof versions);
	assert_string_equal(versions, "4,");

	/* Crashed after the provider rotated, before anything was recorded. */
	gh_kms_free(f->kms);
	f->kms = NULL;
	assert_int_equal(kms_provider_file_open(f->mk, false, &p, f->msg,
	    sizeof f->msg), GH_OK);
	assert_int_equal(p->rotate(p, &v), GH_OK);
	assert_int_equal(v, 5);
	p->free(p);
	fx_open(f);
	decrypt_is(f, &aad_a, &ct, "seed");
	assert_int_equal(gh_kms_rotate_master(f->kms, &v), GH_OK);
	key_file_versions(f, versions, sizeof versions);
	assert_string_equal(versions, "6,");
	fx_reopen(f);
	decrypt_is(f, &aad_a, &ct, "seed");
	gh_buf_free(&ct);
}

static void
test_org_rotation_keeps_old_data_until_retired(void **state)
{
	struct fx *f = *state;
	struct gh_buf ct1, ct2;
	uint8_t idx1[GH_KMS_INDEX_LEN], idx2[GH_KMS_INDEX_LEN];
	uint8_t sk1[GH_KMS_KEY_LEN], sk2[GH_KMS_KEY_LEN];
	uint32_t v = 0, sv = 0;

	encrypt_ok(f, &aad_a, "old", &ct1);
	assert_int_equal(gh_kms_blind_index(f->kms, ORG_A, "users", "email",
	    "a@b", 3, idx1), GH_OK);
	assert_int_equal(gh_kms_storage_key(f->kms, ORG_A, 0, &sv, sk1),
	    GH_OK);
	assert_int_equal(sv, 1);
	assert_int_equal(gh_kms_rotate_org(f->kms, ORG_A), GH_OK);
	assert_int_equal(gh_kms_current_version(f->kms, ORG_A, GH_KMS_SECRETS,
	    &v), GH_OK);
	assert_int_equal(v, 2);
	assert_int_equal(gh_kms_current_version(f->kms, ORG_A, GH_KMS_INDEX,
	    &v), GH_OK);
	assert_int_equal(v, 1);
	encrypt_ok(f, &aad_a, "new", &ct2);
	assert_int_equal(gh_kms_ct_version(ct2.data, ct2.len, &v), GH_OK);
	assert_int_equal(v, 2);
	decrypt_is(f, &aad_a, &ct1, "old");
	decrypt_is(f, &aad_a, &ct2, "new");
	assert_int_equal(gh_kms_blind_index(f->kms, ORG_A, "users", "email",
	    "a@b", 3, idx2), GH_OK);
	assert_memory_equal(idx1, idx2, sizeof idx1);
	/* Old storage key still there by number; the newest is a new one. */
	assert_int_equal(gh_kms_storage_key(f->kms, ORG_A, 1, &sv, sk2),
	    GH_OK);
	assert_memory_equal(sk1, sk2, sizeof sk1);
	assert_int_equal(gh_kms_storage_key(f->kms, ORG_A, 0, &sv, sk2),
	    GH_OK);
	assert_int_equal(sv, 2);
	assert_memory_not_equal(sk1, sk2, sizeof sk1);
	fx_reopen(f);
	decrypt_is(f, &aad_a, &ct1, "old");
	/* Retire: the old version goes, the newest never does. */
	assert_int_equal(gh_kms_retire(f->kms, ORG_A, GH_KMS_SECRETS, 2),
	    GH_OK);
	assert_int_equal(decrypt_err(f, &aad_a, &ct1), GH_ERR_NOTFOUND);
	decrypt_is(f, &aad_a, &ct2, "new");
	assert_int_equal(gh_kms_retire(f->kms, ORG_A, GH_KMS_SECRETS, 99),
	    GH_OK);
	decrypt_is(f, &aad_a, &ct2, "new");
	fx_reopen(f);
	assert_int_equal(decrypt_err(f, &aad_a, &ct1), GH_ERR_NOTFOUND);
	decrypt_is(f, &aad_a, &ct2, "new");
	/* And a second rotation still reads everything left. */
	assert_int_equal(gh_kms_rotate_org(f->kms, ORG_A), GH_OK);
	decrypt_is(f, &aad_a, &ct2, "new");
	gh_buf_free(&ct1);
	gh_buf_free(&ct2);
}

/* ---- bring your own key -------------------------------------------------- */

static void
assert_denied_everywhere(struct fx *f, const struct gh_buf *ct)
{
	uint8_t idx[GH_KMS_INDEX_LEN], key[GH_KMS_KEY_LEN];
	struct gh_buf out;
	uint32_t v;

	assert_int_equal(gh_kms_org_available(f->kms, ORG_A), GH_ERR_DENIED);
	assert_int_equal(decrypt_err(f, &aad_a, ct), GH_ERR_DENIED);
	gh_buf_init(&out, 1024, 0);
	assert_int_equal(gh_kms_encrypt(f->kms, GH_KMS_SECRETS, &aad_a, "x", 1,
	    &out), GH_ERR_DENIED);
	gh_buf_free(&out);
	assert_int_equal(gh_kms_blind_index(f->kms, ORG_A, "t", "c", "v", 1,
	    idx), GH_ERR_DENIED);
	assert_int_equal(gh_kms_storage_key(f->kms, ORG_A, 0, &v, key),
	    GH_ERR_DENIED);
	assert_int_equal(gh_kms_current_version(f->kms, ORG_A,
	    GH_KMS_SECRETS, &v), GH_ERR_DENIED);
	assert_int_equal(gh_kms_rotate_org(f->kms, ORG_A), GH_ERR_DENIED);
}

static void
test_revoked_customer_key_denies_until_it_returns(void **state)
{
	struct fx *f = *state;
	uint8_t ck[GH_KMS_KEY_LEN], other[GH_KMS_KEY_LEN];
	uint8_t idx1[GH_KMS_INDEX_LEN], idx2[GH_KMS_INDEX_LEN];
	struct gh_buf ct;
	json_t *st, *org;

	memset(ck, 0x5a, sizeof ck);
	memset(other, 0xa5, sizeof other);
	encrypt_ok(f, &aad_a, "seed", &ct);
	assert_int_equal(gh_kms_blind_index(f->kms, ORG_A, "t", "c", "v", 1,
	    idx1), GH_OK);
	assert_int_equal(gh_kms_customer_key_set(f->kms, ORG_A, ck), GH_OK);
	fx_reopen(f);
	decrypt_is(f, &aad_a, &ct, "seed");
	assert_int_equal(gh_kms_org_available(f->kms, ORG_A), GH_OK);

	assert_int_equal(gh_kms_customer_key_revoke(f->kms, ORG_A), GH_OK);
	assert_denied_everywhere(f, &ct);
	fx_reopen(f);
	assert_denied_everywhere(f, &ct);
	assert_int_equal(gh_kms_status(f->kms, &st), GH_OK);
	org = json_object_get(json_object_get(st, "orgs"), ORG_A);
	assert_string_equal(json_string_value(json_object_get(org,
	    "customer_key")), "revoked");
	json_decref(st);
	/* A master rotation still works while revoked. */
	assert_int_equal(gh_kms_rotate_master(f->kms, NULL), GH_OK);
	assert_int_equal(gh_kms_customer_key_set(f->kms, ORG_A, other),
	    GH_ERR_DENIED);
	assert_denied_everywhere(f, &ct);

	assert_int_equal(gh_kms_customer_key_set(f->kms, ORG_A, ck), GH_OK);
	decrypt_is(f, &aad_a, &ct, "seed");
	assert_int_equal(gh_kms_blind_index(f->kms, ORG_A, "t", "c", "v", 1,
	    idx2), GH_OK);
	assert_memory_equal(idx1, idx2, sizeof idx1);
	assert_int_equal(gh_kms_rotate_org(f->kms, ORG_A), GH_OK);
	fx_reopen(f);
	decrypt_is(f, &aad_a, &ct, "seed");

	/* Replacing an active key re-wraps: the old one no longer matters. */
	assert_int_equal(gh_kms_customer_key_set(f->kms, ORG_A, other),
	    GH_OK);
	assert_int_equal(gh_kms_customer_key_revoke(f->kms, ORG_A), GH_OK);
	assert_int_equal(gh_kms_customer_key_set(f->kms, ORG_A, ck),
	    GH_ERR_DENIED);
	assert_int_equal(gh_kms_customer_key_set(f->kms, ORG_A, other),
	    GH_OK);
	fx_reopen(f);
	decrypt_is(f, &aad_a, &ct, "seed");
	gh_buf_free(&ct);
}

/* ---- blind index --------------------------------------------------------- */

static void
test_blind_index_is_deterministic_per_org_and_column(void **state)
{
	struct fx *f = *state;
	uint8_t a1[GH_KMS_INDEX_LEN], a2[GH_KMS_INDEX_LEN];
	uint8_t b[GH_KMS_INDEX_LEN], c[GH_KMS_INDEX_LEN];
	uint8_t t[GH_KMS_INDEX_LEN], v[GH_KMS_INDEX_LEN];

	assert_int_equal(gh_kms_org_create(f->kms, ORG_B), GH_OK);
	assert_int_equal(gh_kms_blind_index(f->kms, ORG_A, "users", "email",
	    "x@y", 3, a1), GH_OK);
	fx_reopen(f);
	assert_int_equal(gh_kms_blind_index(f->kms, ORG_A, "users", "email",
	    "x@y", 3, a2), GH_OK);
	assert_memory_equal(a1, a2, sizeof a1);
	assert_int_equal(gh_kms_blind_index(f->kms, ORG_B, "users", "email",
	    "x@y", 3, b), GH_OK);
	assert_memory_not_equal(a1, b, sizeof a1);
	assert_int_equal(gh_kms_blind_index(f->kms, ORG_A, "users", "phone",
	    "x@y", 3, c), GH_OK);
	assert_memory_not_equal(a1, c, sizeof a1);
	assert_int_equal(gh_kms_blind_index(f->kms, ORG_A, "admins", "email",
	    "x@y", 3, t), GH_OK);
	assert_memory_not_equal(a1, t, sizeof a1);
	assert_int_equal(gh_kms_blind_index(f->kms, ORG_A, "users", "email",
	    "x@z", 3, v), GH_OK);
	assert_memory_not_equal(a1, v, sizeof a1);
	assert_int_equal(gh_kms_rotate_master(f->kms, NULL), GH_OK);
	assert_int_equal(gh_kms_blind_index(f->kms, ORG_A, "users", "email",
	    "x@y", 3, a2), GH_OK);
	assert_memory_equal(a1, a2, sizeof a1);
}

/* ---- status -------------------------------------------------------------- */

static void
test_status_lists_versions_and_customer_keys(void **state)
{
	struct fx *f = *state;
	json_t *st, *org, *dk;

	assert_int_equal(gh_kms_rotate_org(f->kms, ORG_A), GH_OK);
	assert_int_equal(gh_kms_status(f->kms, &st), GH_OK);
	assert_string_equal(json_string_value(json_object_get(st, "provider")),
	    "file");
	org = json_object_get(json_object_get(st, "orgs"), ORG_A);
	assert_non_null(org);
	assert_int_equal(json_integer_value(json_object_get(org, "org_key")),
	    2);
	assert_string_equal(json_string_value(json_object_get(org,
	    "customer_key")), "none");
	dk = json_object_get(org, "data_keys");
	assert_int_equal(json_array_size(json_object_get(dk, "secrets")), 2);
	assert_int_equal(json_integer_value(json_array_get(json_object_get(dk,
	    "secrets"), 1)), 2);
	assert_int_equal(json_array_size(json_object_get(dk, "index")), 1);
	json_decref(st);
}

/* ---- another process ----------------------------------------------------- */

static void
test_refresh_notices_changes_made_by_another_handle(void **state)
{
	struct fx *f = *state;
	struct gh_kms *cli = NULL;
	struct gh_buf ct1, ct2, ct3;
	struct gh_kms_aad ab = aad_a;
	uint8_t ck[GH_KMS_KEY_LEN];
	bool changed = true;
	uint32_t v;

	ab.org_id = ORG_B;
	memset(ck, 0x33, sizeof ck);
	encrypt_ok(f, &aad_a, "one", &ct1);
	assert_int_equal(gh_kms_refresh(f->kms, &changed), GH_OK);
	assert_false(changed);
	assert_int_equal(gh_kms_open(&f->cfg, &cli, f->msg, sizeof f->msg),
	    GH_OK);

	/* The CLI rotates the org: new writes move to version 2. */
	assert_int_equal(gh_kms_rotate_org(cli, ORG_A), GH_OK);
	assert_int_equal(gh_kms_refresh(f->kms, &changed), GH_OK);
	assert_true(changed);
	encrypt_ok(f, &aad_a, "two", &ct2);
	assert_int_equal(gh_kms_ct_version(ct2.data, ct2.len, &v), GH_OK);
	assert_int_equal(v, 2);
	assert_int_equal(gh_kms_refresh(f->kms, &changed), GH_OK);
	assert_false(changed);	/* its own changes do not count */

	/* The CLI rotates the master and destroys version 1; the server,
	 * not yet refreshed, must not wrap a new org under version 1. */
	assert_int_equal(gh_kms_rotate_master(cli, &v), GH_OK);
	assert_int_equal(gh_kms_org_create(f->kms, ORG_B), GH_OK);
	encrypt_ok(f, &ab, "three", &ct3);

	/* The CLI revokes a customer key: the server denies at once. */
	assert_int_equal(gh_kms_customer_key_set(cli, ORG_A, ck), GH_OK);
	assert_int_equal(gh_kms_customer_key_revoke(cli, ORG_A), GH_OK);
	assert_int_equal(gh_kms_refresh(f->kms, &changed), GH_OK);
	assert_true(changed);
	assert_int_equal(decrypt_err(f, &aad_a, &ct1), GH_ERR_DENIED);
	assert_int_equal(gh_kms_customer_key_set(cli, ORG_A, ck), GH_OK);
	gh_kms_free(cli);

	fx_reopen(f);
	decrypt_is(f, &aad_a, &ct1, "one");
	decrypt_is(f, &aad_a, &ct2, "two");
	decrypt_is(f, &ab, &ct3, "three");
	gh_buf_free(&ct1);
	gh_buf_free(&ct2);
	gh_buf_free(&ct3);
}

/* ---- threads ------------------------------------------------------------- */

#define T_THREADS 4
#define T_ROUNDS 300

struct t_arg {
	struct fx *f;
	int id;
	int done;
	int failures;
	struct gh_buf ct[T_ROUNDS];
	pthread_barrier_t *half, *rotated;
};

static void *
t_worker(void *p)
{
	struct t_arg *a = p;
	char row[32], val[64];
	int i;

	for (i = 0; i < T_ROUNDS; i++) {
		struct gh_kms_aad aad = aad_a;
		struct gh_buf pt;

		snprintf(row, sizeof row, "%d-%d", a->id, i);
		snprintf(val, sizeof val, "value %d of thread %d", i, a->id);
		aad.row_id = row;
		gh_buf_init(&a->ct[i], 1024, 0);
		gh_buf_init(&pt, 1024, GH_BUF_SECRET);
		if (gh_kms_encrypt(a->f->kms, GH_KMS_SECRETS, &aad, val,
		    strlen(val), &a->ct[i]) != GH_OK ||
		    gh_kms_decrypt(a->f->kms, GH_KMS_SECRETS, &aad,
		    a->ct[i].data, a->ct[i].len, &pt) != GH_OK ||
		    pt.len != strlen(val) || memcmp(pt.data, val, pt.len) != 0)
			a->failures++;
		gh_buf_free(&pt);
		/* Rounds between the two barriers race the rotation; the
		 * last quarter surely comes after it. */
		if (i == T_ROUNDS / 2)
			pthread_barrier_wait(a->half);
		if (i == 3 * T_ROUNDS / 4)
			pthread_barrier_wait(a->rotated);
		a->done++;
	}
	return NULL;
}

static void
test_concurrent_use_loses_nothing_across_an_org_rotation(void **state)
{
	struct fx *f = *state;
	struct t_arg args[T_THREADS];
	pthread_t th[T_THREADS];
	pthread_barrier_t half, rotated;
	int t, i, v1 = 0, v2 = 0;

	pthread_barrier_init(&half, NULL, T_THREADS + 1);
	pthread_barrier_init(&rotated, NULL, T_THREADS + 1);
	for (t = 0; t < T_THREADS; t++) {
		memset(&args[t], 0, sizeof args[t]);
		args[t].f = f;
		args[t].id = t;
		args[t].half = &half;
		args[t].rotated = &rotated;
		assert_int_equal(pthread_create(&th[t], NULL, t_worker,
		    &args[t]), 0);
	}
	/* Rotate while every thread is mid-way and still running. */
	pthread_barrier_wait(&half);
	assert_int_equal(gh_kms_rotate_org(f->kms, ORG_A), GH_OK);
	pthread_barrier_wait(&rotated);
	for (t = 0; t < T_THREADS; t++)
		pthread_join(th[t], NULL);
	pthread_barrier_destroy(&half);
	pthread_barrier_destroy(&rotated);
	fx_reopen(f);
	for (t = 0; t < T_THREADS; t++) {
		assert_int_equal(args[t].failures, 0);
		assert_int_equal(args[t].done, T_ROUNDS);
		for (i = 0; i < T_ROUNDS; i++) {
			struct gh_kms_aad aad = aad_a;
			char row[32], val[64];
			uint32_t v;

			snprintf(row, sizeof row, "%d-%d", t, i);
			snprintf(val, sizeof val, "value %d of thread %d", i,
			    t);
			aad.row_id = row;
			decrypt_is(f, &aad, &args[t].ct[i], val);
			assert_int_equal(gh_kms_ct_version(args[t].ct[i].data,
			    args[t].ct[i].len, &v), GH_OK);
			if (v == 1)
				v1++;
			else
				v2++;
			gh_buf_free(&args[t].ct[i]);
		}
	}
	/* Both versions were in use: the rotation happened mid-stream (the
	 * last quarter of each thread's rounds came after it). */
	assert_true(v1 >= T_THREADS * (T_ROUNDS / 2));
	assert_true(v2 > 0);
}

#define N_SEALS 600	/* two refills of the per-thread nonce pool (256) */
#define N_NONCE 12

/* Appends the nonces of n fresh ciphertexts to out (n * N_NONCE bytes). */
static void
seal_nonces(struct fx *f, int n, uint8_t *out)
{
	int i;

	for (i = 0; i < n; i++) {
		struct gh_buf ct;

		gh_buf_init(&ct, 1024, 0);
		assert_int_equal(gh_kms_encrypt(f->kms, GH_KMS_ATTRIBUTES,
		    &aad_a, "v", 1, &ct), GH_OK);
		memcpy(out + (size_t)i * N_NONCE, ct.data + 5, N_NONCE);
		gh_buf_free(&ct);
	}
}

static bool
nonces_distinct(const uint8_t *a, int n)
{
	int i, j;

	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (memcmp(a + i * N_NONCE, a + j * N_NONCE,
			    N_NONCE) == 0)
				return false;
	return true;
}

static void
test_nonces_never_repeat_even_across_fork(void **state)
{
	struct fx *f = *state;
	uint8_t all[3 * N_SEALS * N_NONCE];
	int fd[2];
	pid_t pid;
	int st;

	seal_nonces(f, N_SEALS, all);
	/* A child inherits the parent's half-used pool: both must still
	 * draw different nonces afterwards. */
	assert_int_equal(pipe(fd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		uint8_t mine[N_SEALS * N_NONCE];

		close(fd[0]);
		seal_nonces(f, N_SEALS, mine);
		_exit(write(fd[1], mine, sizeof mine) == sizeof mine ? 0 : 1);
	}
	close(fd[1]);
	seal_nonces(f, N_SEALS, all + N_SEALS * N_NONCE);
	assert_int_equal(read(fd[0], all + 2 * N_SEALS * N_NONCE,
	    N_SEALS * N_NONCE), N_SEALS * N_NONCE);
	close(fd[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_true(nonces_distinct(all, 3 * N_SEALS));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_create_then_open_round_trips),
		T(test_create_refuses_an_existing_master_key_file),
		T(test_open_refuses_master_key_modes_wider_than_0400),
		T(test_open_refuses_a_symlinked_or_irregular_master_key),
		T(test_open_refuses_missing_files),
		T(test_open_refuses_an_unknown_provider_naming_the_setting),
		T(test_open_refuses_malformed_truncated_or_zero_key_files),
		T(test_a_key_file_without_the_store_master_version_is_refused),
		T(test_a_truncated_key_store_is_refused),
		T(test_encrypt_round_trips_empty_small_and_large_values),
		T(test_many_orgs_and_purposes_share_the_key_cache),
		T(test_tampered_ciphertexts_are_refused),
		T(test_ciphertexts_moved_to_another_place_fail),
		T(test_a_relabelled_key_version_fails),
		T(test_misuse_is_refused),
		cmocka_unit_test(test_aead_refuses_an_all_zero_key),
		cmocka_unit_test(test_aead_input_inside_the_output_buffer),
		T(test_shredding_makes_data_unreadable_and_the_id_unusable),
		T(test_master_rotation_keeps_data_and_destroys_old_version),
		T(test_an_interrupted_master_rotation_finishes_on_rerun),
		T(test_org_rotation_keeps_old_data_until_retired),
		T(test_revoked_customer_key_denies_until_it_returns),
		T(test_blind_index_is_deterministic_per_org_and_column),
		T(test_status_lists_versions_and_customer_keys),
		T(test_refresh_notices_changes_made_by_another_handle),
		T(test_concurrent_use_loses_nothing_across_an_org_rotation),
		T(test_nonces_never_repeat_even_across_fork),
#undef T
	};

	gh_log_set_level(GH_LOG_LEVEL_ERR);
	return cmocka_run_group_tests_name("kms", tests, NULL, NULL);
}
