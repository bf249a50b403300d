/*
 * pkcs11_test.c: tests of the PKCS#11 master-key provider against a real
 * SoftHSM2 token. Each test makes its own token in a fresh temporary
 * directory (softhsm2.conf + softhsm2-util --init-token) and removes it
 * afterwards. Secrets: test PINs and random keys only.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kms/kms_int.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

extern char **environ;

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN "gh-test"
#define SO_PIN "87654321"
#define PIN "12345678"
#define BLOB_LEN (12 + GH_KMS_KEY_LEN + 16)

struct fixture {
	char dir[64];
	struct kms_provider *p[2];	/* freed by teardown if a test fails */
};

static const uint8_t aad[] = "org-1|master|v1";

static int
run(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status, rc;

	if (posix_spawn_file_actions_init(&fa) != 0)
		return -1;
	(void)posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO,
	    "/dev/null", O_WRONLY, 0);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		return -1;
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Initialises a second token with label in the fixture's token dir. */
static void
init_token(const char *label)
{
	char *argv[] = { "softhsm2-util", "--init-token", "--free",
		"--label", (char *)label, "--so-pin", SO_PIN, "--pin", PIN,
		NULL };

	if (run(argv) != 0)
		fail_msg("softhsm2-util --init-token --label %s failed "
		    "(is softhsm2 installed?)", label);
}

static int
setup(void **state)
{
	struct fixture *f;
	char path[128];
	FILE *fp;

	if (access(MODULE, R_OK) != 0) {
		print_error("SoftHSM2 module %s is missing: install the "
		    "softhsm2 package (the make set-up does)\n", MODULE);
		return -1;
	}
	f = calloc(1, sizeof *f);
	if (f == NULL)
		return -1;
	strcpy(f->dir, "/tmp/gh-p11-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		goto fail;
	(void)snprintf(path, sizeof path, "%s/tokens", f->dir);
	if (mkdir(path, 0700) != 0)
		goto fail;
	(void)snprintf(path, sizeof path, "%s/softhsm2.conf", f->dir);
	fp = fopen(path, "w");
	if (fp == NULL)
		goto fail;
	fprintf(fp, "directories.tokendir = %s/tokens\n"
	    "objectstore.backend = file\nlog.level = ERROR\n", f->dir);
	if (fclose(fp) != 0)
		goto fail;
	/* SoftHSM reads it at C_Initialize: every provider is freed (and
	 * the module finalised) before the next test starts. */
	if (setenv("SOFTHSM2_CONF", path, 1) != 0)
		goto fail;
	{
		char *argv[] = { "softhsm2-util", "--init-token", "--free",
			"--label", TOKEN, "--so-pin", SO_PIN, "--pin", PIN,
			NULL };

		if (run(argv) != 0) {
			print_error("softhsm2-util --init-token failed "
			    "(is softhsm2 installed?)\n");
			goto fail;
		}
	}
	*state = f;
	return 0;
fail:
	free(f);
	return -1;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	size_t i;

	for (i = 0; i < 2; i++) {
		if (f->p[i] != NULL)
			f->p[i]->free(f->p[i]);
	}
	(void)nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static struct kms_provider *
open_ok(struct fixture *f, int slot, bool create)
{
	char msg[256] = "";
	gh_err err;

	err = kms_provider_pkcs11_open(MODULE, TOKEN, PIN, create, &f->p[slot],
	    msg, sizeof msg);
	if (err != GH_OK)
		fail_msg("open (create=%d): %s: %s", create, gh_err_str(err),
		    msg);
	assert_non_null(f->p[slot]);
	assert_string_equal(f->p[slot]->name, "pkcs11");
	return f->p[slot];
}

static void
close_slot(struct fixture *f, int slot)
{
	f->p[slot]->free(f->p[slot]);
	f->p[slot] = NULL;
}

static void
random_key(uint8_t key[GH_KMS_KEY_LEN])
{
	assert_int_equal(gh_rand_bytes(key, GH_KMS_KEY_LEN), GH_OK);
}

/* Wraps key under version into blob (exactly BLOB_LEN bytes). */
static void
wrap_ok(struct kms_provider *p, uint32_t version,
    const uint8_t key[GH_KMS_KEY_LEN], uint8_t blob[BLOB_LEN])
{
	struct gh_buf out;

	gh_buf_init(&out, 1024, 0);
	assert_int_equal(p->wrap(p, version, key, aad, sizeof aad, &out),
	    GH_OK);
	assert_int_equal(out.len, BLOB_LEN);
	memcpy(blob, out.data, BLOB_LEN);
	gh_buf_free(&out);
}

/* ---- tests --------------------------------------------------------------- */

static void
test_create_then_open_finds_version_one(void **state)
{
	struct fixture *f = *state;
	struct kms_provider *p;
	uint32_t v = 0;

	p = open_ok(f, 0, true);
	assert_int_equal(p->current(p, &v), GH_OK);
	assert_int_equal(v, 1);
	close_slot(f, 0);

	p = open_ok(f, 0, false);
	v = 0;
	assert_int_equal(p->current(p, &v), GH_OK);
	assert_int_equal(v, 1);
	assert_true(p->has(p, 1));
	assert_false(p->has(p, 2));
	assert_false(p->has(p, 0));
}

static void
test_open_refuses_a_token_without_master_key(void **state)
{
	struct fixture *f = *state;
	char msg[256] = "";

	assert_int_equal(kms_provider_pkcs11_open(MODULE, TOKEN, PIN, false,
	    &f->p[0], msg, sizeof msg), GH_ERR_NOTFOUND);
	assert_null(f->p[0]);
	assert_non_null(strstr(msg, "holds no gatehouse master key"));
}

static void
test_wrap_then_unwrap_returns_the_key(void **state)
{
	struct fixture *f = *state;
	struct kms_provider *p = open_ok(f, 0, true);
	uint8_t key[GH_KMS_KEY_LEN], back[GH_KMS_KEY_LEN];
	uint8_t blob[BLOB_LEN], blob2[BLOB_LEN];
	struct gh_buf out;

	random_key(key);
	wrap_ok(p, 1, key, blob);
	assert_int_equal(p->unwrap(p, 1, blob, sizeof blob, aad, sizeof aad,
	    back), GH_OK);
	assert_memory_equal(key, back, sizeof key);

	/* A fresh IV each time: the same key never gives the same blob. */
	wrap_ok(p, 1, key, blob2);
	assert_memory_not_equal(blob, blob2, 12);
	assert_memory_not_equal(blob, blob2, sizeof blob);

	/* An empty aad works too, and the blob appends to what out holds. */
	gh_buf_init(&out, 1024, 0);
	gh_buf_put_str(&out, "hdr");
	assert_int_equal(p->wrap(p, 1, key, NULL, 0, &out), GH_OK);
	assert_int_equal(out.len, 3 + BLOB_LEN);
	memset(back, 0, sizeof back);
	assert_int_equal(p->unwrap(p, 1, out.data + 3, BLOB_LEN, NULL, 0,
	    back), GH_OK);
	assert_memory_equal(key, back, sizeof key);
	gh_buf_free(&out);
}

static void
test_tampered_blob_fails_with_crypto_error(void **state)
{
	struct fixture *f = *state;
	struct kms_provider *p = open_ok(f, 0, true);
	uint8_t key[GH_KMS_KEY_LEN], back[GH_KMS_KEY_LEN], zero[GH_KMS_KEY_LEN];
	uint8_t blob[BLOB_LEN], bad[BLOB_LEN + 1];
	size_t i;

	memset(zero, 0, sizeof zero);
	random_key(key);
	wrap_ok(p, 1, key, blob);
	/* One flipped bit in the IV, the ciphertext and the tag. */
	for (i = 0; i < BLOB_LEN; i += 7) {
		memcpy(bad, blob, BLOB_LEN);
		bad[i] ^= 0x01;
		memset(back, 0xaa, sizeof back);
		assert_int_equal(p->unwrap(p, 1, bad, BLOB_LEN, aad,
		    sizeof aad, back), GH_ERR_CRYPTO);
		/* Nothing of the key is left in the caller's buffer. */
		assert_memory_equal(back, zero, sizeof back);
	}
	memcpy(bad, blob, BLOB_LEN);
	bad[BLOB_LEN - 1] ^= 0x80;
	assert_int_equal(p->unwrap(p, 1, bad, BLOB_LEN, aad, sizeof aad,
	    back), GH_ERR_CRYPTO);
	/* Truncated or extended. */
	assert_int_equal(p->unwrap(p, 1, blob, BLOB_LEN - 1, aad, sizeof aad,
	    back), GH_ERR_CRYPTO);
	memcpy(bad, blob, BLOB_LEN);
	bad[BLOB_LEN] = 0;
	assert_int_equal(p->unwrap(p, 1, bad, BLOB_LEN + 1, aad, sizeof aad,
	    back), GH_ERR_CRYPTO);
	assert_int_equal(p->unwrap(p, 1, blob, 27, aad, sizeof aad, back),
	    GH_ERR_INVALID);
	/* The session still works after the failures. */
	assert_int_equal(p->unwrap(p, 1, blob, BLOB_LEN, aad, sizeof aad,
	    back), GH_OK);
	assert_memory_equal(key, back, sizeof key);
}

static void
test_wrong_aad_fails_with_crypto_error(void **state)
{
	struct fixture *f = *state;
	struct kms_provider *p = open_ok(f, 0, true);
	static const uint8_t other[] = "org-2|master|v1";
	uint8_t key[GH_KMS_KEY_LEN], back[GH_KMS_KEY_LEN];
	uint8_t blob[BLOB_LEN];

	random_key(key);
	wrap_ok(p, 1, key, blob);
	assert_int_equal(p->unwrap(p, 1, blob, sizeof blob, other,
	    sizeof other, back), GH_ERR_CRYPTO);
	assert_int_equal(p->unwrap(p, 1, blob, sizeof blob, aad,
	    sizeof aad - 1, back), GH_ERR_CRYPTO);
	assert_int_equal(p->unwrap(p, 1, blob, sizeof blob, NULL, 0, back),
	    GH_ERR_CRYPTO);
}

static void
test_wrong_pin_is_a_clear_error(void **state)
{
	struct fixture *f = *state;
	char msg[256] = "";

	assert_int_equal(kms_provider_pkcs11_open(MODULE, TOKEN, "00000000",
	    true, &f->p[0], msg, sizeof msg), GH_ERR_DENIED);
	assert_null(f->p[0]);
	assert_string_equal(msg, "wrong PKCS#11 PIN for token \"" TOKEN "\"");
	/* And the right PIN still works afterwards. */
	open_ok(f, 0, true);
}

static void
test_unknown_token_label_is_a_clear_error(void **state)
{
	struct fixture *f = *state;
	char msg[256] = "";

	assert_int_equal(kms_provider_pkcs11_open(MODULE, "no-such-token",
	    PIN, false, &f->p[0], msg, sizeof msg), GH_ERR_NOTFOUND);
	assert_null(f->p[0]);
	assert_non_null(strstr(msg,
	    "no PKCS#11 token labelled \"no-such-token\""));
}

static void
test_unloadable_module_is_a_clear_error(void **state)
{
	struct fixture *f = *state;
	char msg[256] = "";

	assert_int_equal(kms_provider_pkcs11_open("/nonexistent/p11.so", TOKEN,
	    PIN, false, &f->p[0], msg, sizeof msg), GH_ERR_INVALID);
	assert_null(f->p[0]);
	assert_non_null(strstr(msg,
	    "cannot load PKCS#11 module /nonexistent/p11.so"));
	/* A shared object that is not a PKCS#11 module. */
	assert_int_equal(kms_provider_pkcs11_open("libc.so.6", TOKEN, PIN,
	    false, &f->p[0], msg, sizeof msg), GH_ERR_INVALID);
	assert_non_null(strstr(msg, "is not a PKCS#11 module"));
}

static void
test_open_refuses_misuse(void **state)
{
	struct fixture *f = *state;
	char msg[256] = "";
	char long_label[40];

	memset(long_label, 'x', sizeof long_label - 1);
	long_label[sizeof long_label - 1] = '\0';
	assert_int_equal(kms_provider_pkcs11_open(NULL, TOKEN, PIN, false,
	    &f->p[0], msg, sizeof msg), GH_ERR_INVALID);
	assert_int_equal(kms_provider_pkcs11_open(MODULE, NULL, PIN, false,
	    &f->p[0], msg, sizeof msg), GH_ERR_INVALID);
	assert_int_equal(kms_provider_pkcs11_open(MODULE, long_label, PIN,
	    false, &f->p[0], msg, sizeof msg), GH_ERR_INVALID);
	assert_int_equal(kms_provider_pkcs11_open(MODULE, TOKEN, "", false,
	    &f->p[0], msg, sizeof msg), GH_ERR_INVALID);
	assert_non_null(strstr(msg, "no PIN"));
	assert_int_equal(kms_provider_pkcs11_open(MODULE, TOKEN, NULL, false,
	    &f->p[0], NULL, 0), GH_ERR_INVALID);
	assert_null(f->p[0]);
}

static void
test_operations_refuse_misuse(void **state)
{
	struct fixture *f = *state;
	struct kms_provider *p = open_ok(f, 0, true);
	uint8_t key[GH_KMS_KEY_LEN], blob[BLOB_LEN];
	struct gh_buf out;

	random_key(key);
	gh_buf_init(&out, 1024, 0);
	assert_int_equal(p->wrap(p, 1, NULL, aad, sizeof aad, &out),
	    GH_ERR_INVALID);
	assert_int_equal(p->wrap(p, 1, key, NULL, 5, &out), GH_ERR_INVALID);
	assert_int_equal(p->wrap(p, 0, key, aad, sizeof aad, &out),
	    GH_ERR_NOTFOUND);
	assert_int_equal(p->wrap(p, 7, key, aad, sizeof aad, &out),
	    GH_ERR_NOTFOUND);
	assert_int_equal(out.len, 0);
	/* A ceiling too low for the blob: the buffer's sticky error. */
	gh_buf_free(&out);
	gh_buf_init(&out, 10, 0);
	assert_int_not_equal(p->wrap(p, 1, key, aad, sizeof aad, &out), GH_OK);
	gh_buf_free(&out);

	wrap_ok(p, 1, key, blob);
	assert_int_equal(p->unwrap(p, 1, NULL, BLOB_LEN, aad, sizeof aad, key),
	    GH_ERR_INVALID);
	assert_int_equal(p->unwrap(p, 2, blob, BLOB_LEN, aad, sizeof aad, key),
	    GH_ERR_NOTFOUND);
	assert_int_equal(p->current(p, NULL), GH_ERR_INVALID);
	assert_int_equal(p->rotate(p, NULL), GH_ERR_INVALID);
	assert_int_equal(p->destroy(p, 9), GH_ERR_NOTFOUND);
}

static void
test_rotate_keeps_both_versions_usable(void **state)
{
	struct fixture *f = *state;
	struct kms_provider *p = open_ok(f, 0, true);
	uint8_t k1[GH_KMS_KEY_LEN], k2[GH_KMS_KEY_LEN], back[GH_KMS_KEY_LEN];
	uint8_t b1[BLOB_LEN], b2[BLOB_LEN];
	uint32_t v = 0;

	random_key(k1);
	random_key(k2);
	wrap_ok(p, 1, k1, b1);
	assert_int_equal(p->rotate(p, &v), GH_OK);
	assert_int_equal(v, 2);
	assert_int_equal(p->current(p, &v), GH_OK);
	assert_int_equal(v, 2);
	assert_true(p->has(p, 1));
	assert_true(p->has(p, 2));
	wrap_ok(p, 2, k2, b2);

	assert_int_equal(p->unwrap(p, 1, b1, BLOB_LEN, aad, sizeof aad, back),
	    GH_OK);
	assert_memory_equal(k1, back, sizeof back);
	assert_int_equal(p->unwrap(p, 2, b2, BLOB_LEN, aad, sizeof aad, back),
	    GH_OK);
	assert_memory_equal(k2, back, sizeof back);
	/* Each blob opens only under its own version. */
	assert_int_equal(p->unwrap(p, 2, b1, BLOB_LEN, aad, sizeof aad, back),
	    GH_ERR_CRYPTO);
	assert_int_equal(p->unwrap(p, 1, b2, BLOB_LEN, aad, sizeof aad, back),
	    GH_ERR_CRYPTO);

	/* The versions persist in the token. */
	close_slot(f, 0);
	p = open_ok(f, 0, false);
	assert_int_equal(p->current(p, &v), GH_OK);
	assert_int_equal(v, 2);
	assert_int_equal(p->unwrap(p, 1, b1, BLOB_LEN, aad, sizeof aad, back),
	    GH_OK);
	assert_memory_equal(k1, back, sizeof back);
	assert_int_equal(p->rotate(p, &v), GH_OK);
	assert_int_equal(v, 3);
}

static void
test_destroyed_version_is_gone(void **state)
{
	struct fixture *f = *state;
	struct kms_provider *p = open_ok(f, 0, true);
	uint8_t key[GH_KMS_KEY_LEN], back[GH_KMS_KEY_LEN];
	uint8_t b1[BLOB_LEN], b2[BLOB_LEN];
	uint32_t v = 0;

	random_key(key);
	wrap_ok(p, 1, key, b1);
	/* The only (current) version cannot be destroyed. */
	assert_int_equal(p->destroy(p, 1), GH_ERR_INVALID);
	assert_true(p->has(p, 1));

	assert_int_equal(p->rotate(p, &v), GH_OK);
	wrap_ok(p, 2, key, b2);
	assert_int_equal(p->destroy(p, 1), GH_OK);
	assert_false(p->has(p, 1));
	assert_true(p->has(p, 2));
	assert_int_not_equal(p->unwrap(p, 1, b1, BLOB_LEN, aad, sizeof aad,
	    back), GH_OK);
	assert_int_equal(p->destroy(p, 1), GH_ERR_NOTFOUND);
	assert_int_equal(p->destroy(p, 2), GH_ERR_INVALID);
	assert_int_equal(p->current(p, &v), GH_OK);
	assert_int_equal(v, 2);
	assert_int_equal(p->unwrap(p, 2, b2, BLOB_LEN, aad, sizeof aad, back),
	    GH_OK);
	assert_memory_equal(key, back, sizeof back);
	/* A rotation after the destroy never reuses a number. */
	assert_int_equal(p->rotate(p, &v), GH_OK);
	assert_int_equal(v, 3);
}

/* The test's own view of the module: initialised by the provider. */
static CK_FUNCTION_LIST_PTR
own_module(void **dl, CK_SLOT_ID *slot)
{
	CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR);
	CK_FUNCTION_LIST_PTR fl = NULL;
	CK_C_INITIALIZE_ARGS args;
	CK_SLOT_ID slots[16];
	CK_TOKEN_INFO info;
	CK_ULONG n = 16, i;

	*dl = dlopen(MODULE, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(*dl);
	*(void **)&get_list = dlsym(*dl, "C_GetFunctionList");
	assert_non_null(get_list);
	assert_int_equal(get_list(&fl), CKR_OK);
	memset(&args, 0, sizeof args);
	args.flags = CKF_OS_LOCKING_OK;
	assert_int_equal(fl->C_Initialize(&args),
	    CKR_CRYPTOKI_ALREADY_INITIALIZED);
	assert_int_equal(fl->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	for (i = 0; i < n; i++) {
		assert_int_equal(fl->C_GetTokenInfo(slots[i], &info), CKR_OK);
		if (memcmp(info.label, TOKEN " ", sizeof TOKEN) == 0)
			break;
	}
	assert_true(i < n);
	*slot = slots[i];
	return fl;
}

/*
 * Opens a session of the test's own on the token (the provider keeps the
 * module initialised and the user logged in) and tries to read the master
 * key's value.
 */
static void
test_master_key_value_cannot_be_read(void **state)
{
	struct fixture *f = *state;
	CK_FUNCTION_LIST_PTR fl;
	CK_SLOT_ID slot;
	CK_ULONG found = 0;
	CK_SESSION_HANDLE s;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	char label[] = "gatehouse-master-1";
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof cls },
		{ CKA_LABEL, label, sizeof label - 1 },
	};
	CK_OBJECT_HANDLE h;
	uint8_t val[64];
	CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE;
	CK_BBOOL never_extr = CK_FALSE, local = CK_FALSE, wrap = CK_TRUE;
	CK_ATTRIBUTE a;
	CK_ATTRIBUTE flags[] = {
		{ CKA_SENSITIVE, &sensitive, sizeof sensitive },
		{ CKA_EXTRACTABLE, &extractable, sizeof extractable },
		{ CKA_NEVER_EXTRACTABLE, &never_extr, sizeof never_extr },
		{ CKA_LOCAL, &local, sizeof local },
		{ CKA_WRAP, &wrap, sizeof wrap },
	};
	void *dl;
	CK_RV rv;

	open_ok(f, 0, true);
	fl = own_module(&dl, &slot);
	assert_int_equal(fl->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL,
	    NULL, &s), CKR_OK);
	rv = fl->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)PIN, strlen(PIN));
	assert_true(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN);

	assert_int_equal(fl->C_FindObjectsInit(s, t, 2), CKR_OK);
	assert_int_equal(fl->C_FindObjects(s, &h, 1, &found), CKR_OK);
	assert_int_equal(fl->C_FindObjectsFinal(s), CKR_OK);
	assert_int_equal(found, 1);

	a.type = CKA_VALUE;
	a.pValue = val;
	a.ulValueLen = sizeof val;
	assert_int_equal(fl->C_GetAttributeValue(s, h, &a, 1),
	    CKR_ATTRIBUTE_SENSITIVE);
	assert_int_equal(fl->C_GetAttributeValue(s, h, flags, 5), CKR_OK);
	assert_int_equal(sensitive, CK_TRUE);
	assert_int_equal(extractable, CK_FALSE);
	assert_int_equal(never_extr, CK_TRUE);
	assert_int_equal(local, CK_TRUE);	/* generated in the token */
	assert_int_equal(wrap, CK_FALSE);

	/* The provider still works beside a foreign session. */
	assert_int_equal(fl->C_CloseSession(s), CKR_OK);
	assert_true(f->p[0]->has(f->p[0], 1));
	/* The provider initialised the module; it finalises it. */
	(void)dlclose(dl);
}

static void
test_lost_session_is_reopened(void **state)
{
	struct fixture *f = *state;
	struct kms_provider *p = open_ok(f, 0, true);
	uint8_t key[GH_KMS_KEY_LEN], back[GH_KMS_KEY_LEN], blob[BLOB_LEN];
	CK_FUNCTION_LIST_PTR fl;
	CK_SLOT_ID slot;
	uint32_t v = 0;
	void *dl;

	random_key(key);
	wrap_ok(p, 1, key, blob);
	/* Closes the provider's session too, and so logs the user out. */
	fl = own_module(&dl, &slot);
	assert_int_equal(fl->C_CloseAllSessions(slot), CKR_OK);
	assert_int_equal(p->unwrap(p, 1, blob, BLOB_LEN, aad, sizeof aad,
	    back), GH_OK);
	assert_memory_equal(key, back, sizeof back);
	assert_int_equal(fl->C_CloseAllSessions(slot), CKR_OK);
	assert_int_equal(p->current(p, &v), GH_OK);
	assert_int_equal(v, 1);
	assert_int_equal(fl->C_CloseAllSessions(slot), CKR_OK);
	assert_int_equal(p->rotate(p, &v), GH_OK);
	assert_int_equal(v, 2);
	assert_int_equal(fl->C_CloseAllSessions(slot), CKR_OK);
	wrap_ok(p, 2, key, blob);
	(void)dlclose(dl);
}

static void
test_create_refuses_a_token_with_master_keys(void **state)
{
	struct fixture *f = *state;
	char msg[256] = "";
	uint32_t v = 0;

	open_ok(f, 0, true);
	close_slot(f, 0);
	assert_int_equal(kms_provider_pkcs11_open(MODULE, TOKEN, PIN, true,
	    &f->p[0], msg, sizeof msg), GH_ERR_CONFLICT);
	assert_null(f->p[0]);
	assert_non_null(strstr(msg, "already holds"));
	/* Nothing was added. */
	open_ok(f, 0, false);
	assert_int_equal(f->p[0]->current(f->p[0], &v), GH_OK);
	assert_int_equal(v, 1);
	assert_false(f->p[0]->has(f->p[0], 2));
}

static void
test_tokens_are_found_by_label_among_several(void **state)
{
	struct fixture *f = *state;
	struct kms_provider *p;
	char msg[256] = "";
	uint32_t v = 0;

	init_token("gh-other");
	p = open_ok(f, 0, true);
	assert_int_equal(kms_provider_pkcs11_open(MODULE, "gh-other", PIN,
	    true, &f->p[1], msg, sizeof msg), GH_OK);
	assert_int_equal(f->p[1]->rotate(f->p[1], &v), GH_OK);
	assert_int_equal(v, 2);
	/* The tokens hold their own keys. */
	assert_int_equal(p->current(p, &v), GH_OK);
	assert_int_equal(v, 1);
}

static void
test_two_providers_share_the_module(void **state)
{
	struct fixture *f = *state;
	uint8_t key[GH_KMS_KEY_LEN], back[GH_KMS_KEY_LEN], blob[BLOB_LEN];

	open_ok(f, 0, true);
	open_ok(f, 1, false);
	random_key(key);
	wrap_ok(f->p[0], 1, key, blob);
	/* Freeing one leaves the other initialised and logged in. */
	close_slot(f, 0);
	assert_int_equal(f->p[1]->unwrap(f->p[1], 1, blob, BLOB_LEN, aad,
	    sizeof aad, back), GH_OK);
	assert_memory_equal(key, back, sizeof back);
}

struct worker {
	struct kms_provider *p;
	uint32_t version;
	int rounds;
	int failures;
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	uint8_t key[GH_KMS_KEY_LEN], back[GH_KMS_KEY_LEN];
	struct gh_buf out;
	int i;

	for (i = 0; i < w->rounds; i++) {
		gh_buf_init(&out, 1024, 0);
		if (gh_rand_bytes(key, sizeof key) != GH_OK ||
		    w->p->wrap(w->p, w->version, key, aad, sizeof aad,
		    &out) != GH_OK || out.len != BLOB_LEN ||
		    w->p->unwrap(w->p, w->version, out.data, out.len, aad,
		    sizeof aad, back) != GH_OK ||
		    memcmp(key, back, sizeof key) != 0)
			w->failures++;
		gh_buf_free(&out);
	}
	return NULL;
}

static void
test_two_threads_wrap_concurrently(void **state)
{
	struct fixture *f = *state;
	struct kms_provider *p = open_ok(f, 0, true);
	struct worker w[2] = {
		{ p, 1, 300, 0 },
		{ p, 2, 300, 0 },
	};
	pthread_t th[2];
	uint32_t v = 0;
	int i;

	assert_int_equal(p->rotate(p, &v), GH_OK);
	for (i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker_run,
		    &w[i]), 0);
	/* The main thread lists versions meanwhile. */
	for (i = 0; i < 50; i++) {
		assert_int_equal(p->current(p, &v), GH_OK);
		assert_int_equal(v, 2);
	}
	for (i = 0; i < 2; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_int_equal(w[0].failures, 0);
	assert_int_equal(w[1].failures, 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_create_then_open_finds_version_one),
		T(test_open_refuses_a_token_without_master_key),
		T(test_wrap_then_unwrap_returns_the_key),
		T(test_tampered_blob_fails_with_crypto_error),
		T(test_wrong_aad_fails_with_crypto_error),
		T(test_wrong_pin_is_a_clear_error),
		T(test_unknown_token_label_is_a_clear_error),
		T(test_unloadable_module_is_a_clear_error),
		T(test_open_refuses_misuse),
		T(test_operations_refuse_misuse),
		T(test_rotate_keeps_both_versions_usable),
		T(test_destroyed_version_is_gone),
		T(test_master_key_value_cannot_be_read),
		T(test_lost_session_is_reopened),
		T(test_create_refuses_a_token_with_master_keys),
		T(test_tokens_are_found_by_label_among_several),
		T(test_two_providers_share_the_module),
		T(test_two_threads_wrap_concurrently),
	};

	if (access(MODULE, R_OK) != 0) {
		fprintf(stderr, "FAIL: SoftHSM2 module %s is missing: install "
		    "the softhsm2 package (the make set-up does)\n", MODULE);
		return 1;
	}
	return cmocka_run_group_tests_name("kms_pkcs11", tests, NULL, NULL);
}
