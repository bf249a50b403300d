/*
 * auth_test.c: unit tests for password hashing, the password policy,
 * sessions and API tokens. Session and token tests run against a real
 * tenant database in a temporary directory; time is simulated by moving
 * the rows' timestamps, never by sleeping.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <argon2.h>
#include <crypt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/auth_int.h"
#include "store/testing.h"

#define TEST_USER GH_TEST_USER
#define OTHER_USER GH_TEST_OTHER_USER
#define MINUTE (60LL * 1000)
#define HOUR (60 * MINUTE)

/* ---- password hashing ----------------------------------------------------- */

static void
test_argon2id_hash_round_trips_and_refuses_a_wrong_password(void **state)
{
	struct gh_pw_params p;
	char *hash = NULL;
	bool rehash = true;

	(void)state;
	gh_auth_pw_params_default(&p);
	assert_int_equal(gh_auth_pw_hash(&p, "correct horse", &hash), GH_OK);
	assert_non_null(hash);
	assert_true(strncmp(hash, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0);
	assert_true(gh_auth_pw_hash_supported(hash));
	assert_int_equal(gh_auth_pw_verify(&p, hash, "correct horse", &rehash),
	    GH_OK);
	assert_false(rehash);
	assert_int_equal(gh_auth_pw_verify(&p, hash, "correct horsE", &rehash),
	    GH_ERR_DENIED);
	assert_int_equal(gh_auth_pw_verify(&p, hash, "", &rehash),
	    GH_ERR_DENIED);
	gh_str_wipe_free(hash);
}

/* Our PHC encoding is libargon2's: each verifies the other's hashes. */
static void
test_argon2id_hash_matches_libargon2_encoding(void **state)
{
	static const uint8_t salt[16] = "0123456789abcdef";
	struct gh_pw_params p;
	char *hash = NULL, lib[128];
	bool rehash = true;

	(void)state;
	gh_auth_pw_params_default(&p);
	assert_int_equal(gh_auth_pw_hash(&p, "correct horse", &hash), GH_OK);
	assert_int_equal(argon2id_verify(hash, "correct horse", 13), ARGON2_OK);
	assert_int_equal(argon2id_hash_encoded(2, 19456, 1, "correct horse", 13,
	    salt, sizeof salt, 32, lib, sizeof lib), ARGON2_OK);
	assert_int_equal(gh_auth_pw_verify(&p, lib, "correct horse", &rehash),
	    GH_OK);
	assert_int_equal(strlen(hash), strlen(lib));
	gh_str_wipe_free(hash);
}

static long
rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* A hash's 19 MiB stays mapped for the next one, then goes back. */
static void
test_hash_memory_is_returned_by_trim(void **state)
{
	struct gh_pw_params p;
	char *hash = NULL;
	long kept, trimmed;

	(void)state;
	gh_auth_pw_params_default(&p);
	gh_auth_pw_mem_trim(0);
	assert_int_equal(gh_auth_pw_hash(&p, "correct horse", &hash), GH_OK);
	gh_str_wipe_free(hash);
	kept = rss_kib();
	gh_auth_pw_mem_trim(60000);	/* just used: kept */
	assert_true(rss_kib() > kept - 1024);
	gh_auth_pw_mem_trim(0);
	trimmed = rss_kib();
	assert_true(kept > 0 && trimmed > 0);
	assert_true(kept - trimmed >= 18 * 1024);
}

#define GATE_THREADS 6

static void *
gate_worker(void *arg)
{
	const char *hash = arg;
	bool rehash;

	if (gh_auth_pw_verify(&(struct gh_pw_params){ 2, 19456, 1 }, hash,
	    "correct horse", &rehash) != GH_OK)
		return (void *)1;
	return NULL;
}

static void
test_no_more_hashes_run_at_once_than_cores(void **state)
{
	pthread_t th[GATE_THREADS];
	struct gh_pw_params p;
	char *hash = NULL;
	void *ret;
	int i;

	(void)state;
	gh_auth_pw_params_default(&p);
	assert_int_equal(gh_auth_pw_hash(&p, "correct horse", &hash), GH_OK);
	for (i = 0; i < GATE_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, gate_worker,
		    hash), 0);
	for (i = 0; i < GATE_THREADS; i++) {
		assert_int_equal(pthread_join(th[i], &ret), 0);
		assert_null(ret);
	}
	/* Six verifications wanted to run together; the cores bound them. */
	assert_true(auth_hash_peak() >= 1);
	assert_true(auth_hash_peak() <= auth_hash_cap());
	assert_int_equal(auth_hash_cap(), (unsigned)sysconf(
	    _SC_NPROCESSORS_ONLN));
	gh_str_wipe_free(hash);
}

static void
test_two_hashes_of_one_password_differ_by_their_salt(void **state)
{
	struct gh_pw_params p;
	char *a = NULL, *b = NULL;
	bool rehash;

	(void)state;
	gh_auth_pw_params_default(&p);
	assert_int_equal(gh_auth_pw_hash(&p, "same password", &a), GH_OK);
	assert_int_equal(gh_auth_pw_hash(&p, "same password", &b), GH_OK);
	assert_string_not_equal(a, b);
	assert_int_equal(gh_auth_pw_verify(&p, a, "same password", &rehash),
	    GH_OK);
	assert_int_equal(gh_auth_pw_verify(&p, b, "same password", &rehash),
	    GH_OK);
	gh_str_wipe_free(a);
	gh_str_wipe_free(b);
}

static void
test_bcrypt_hash_verifies_and_asks_for_rehash(void **state)
{
	static const char *const prefixes[] = { "$2b$", "$2a$", "$2y$" };
	struct gh_pw_params p;
	struct crypt_data cd;
	char setting[CRYPT_GENSALT_OUTPUT_SIZE], hash[128];
	bool rehash;
	size_t i;

	(void)state;
	gh_auth_pw_params_default(&p);
	for (i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
		memset(&cd, 0, sizeof cd);
		assert_non_null(crypt_gensalt_rn(prefixes[i], 4, NULL, 0,
		    setting, sizeof setting));
		assert_non_null(crypt_rn("legacy pass", setting, &cd,
		    sizeof cd));
		assert_true(cd.output[0] != '*');
		gh_strlcpy(hash, cd.output, sizeof hash);
		assert_true(gh_auth_pw_hash_supported(hash));
		rehash = false;
		assert_int_equal(gh_auth_pw_verify(&p, hash, "legacy pass",
		    &rehash), GH_OK);
		assert_true(rehash);
		assert_int_equal(gh_auth_pw_verify(&p, hash, "legacy pasS",
		    &rehash), GH_ERR_DENIED);
		assert_false(rehash);
	}
	/* A mangled bcrypt string is of no supported kind. */
	hash[10] = '!';
	assert_false(gh_auth_pw_hash_supported(hash));
	assert_int_equal(gh_auth_pw_verify(&p, hash, "legacy pass", &rehash),
	    GH_ERR_INVALID);
}

static void
test_weaker_argon2id_hash_asks_for_rehash(void **state)
{
	struct gh_pw_params p, stronger;
	const uint8_t salt[16] = "0123456789abcdef";
	char enc[160], *hash = NULL;
	bool rehash = false;

	(void)state;
	gh_auth_pw_params_default(&p);
	/* Imported with less memory and one pass. */
	assert_int_equal(argon2id_hash_encoded(1, 4096, 1, "old pass", 8, salt,
	    sizeof salt, 32, enc, sizeof enc), ARGON2_OK);
	assert_int_equal(gh_auth_pw_verify(&p, enc, "old pass", &rehash),
	    GH_OK);
	assert_true(rehash);
	/* Our own hash, once the configured cost rises. */
	assert_int_equal(gh_auth_pw_hash(&p, "some pass", &hash), GH_OK);
	stronger = p;
	stronger.t_cost = 3;
	assert_int_equal(gh_auth_pw_verify(&stronger, hash, "some pass",
	    &rehash), GH_OK);
	assert_true(rehash);
	assert_int_equal(gh_auth_pw_verify(&p, hash, "some pass", &rehash),
	    GH_OK);
	assert_false(rehash);
	gh_str_wipe_free(hash);
}

static void
test_unsupported_hash_is_invalid(void **state)
{
	static const char *const bad[] = {
		"",
		"plaintext",
		"$1$saltsalt$qjXMvbEw8oaL.CzflDugX/",
		"$5$rounds=5000$salt$hash",
		"$y$j9T$abc$def",
		"$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=16$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		/* Memory above the ceiling: refused, not run. */
		"$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=19456,t=2,p=1$c2FsdH*hbHRzYWx0c2FsdA$"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA",
		/* bcrypt with a cost that would take minutes. */
		"$2b$31$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
	};
	struct gh_pw_params p;
	bool rehash = true;
	size_t i;

	(void)state;
	gh_auth_pw_params_default(&p);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_false(gh_auth_pw_hash_supported(bad[i]));
		assert_int_equal(gh_auth_pw_verify(&p, bad[i], "x", &rehash),
		    GH_ERR_INVALID);
		assert_false(rehash);
	}
	assert_false(gh_auth_pw_hash_supported(NULL));
	assert_int_equal(gh_auth_pw_verify(&p, NULL, "x", &rehash),
	    GH_ERR_INVALID);
}

static void
test_params_below_owasp_minimum_or_above_ceilings_are_refused(void **state)
{
	struct gh_pw_params p, q;
	char *hash = NULL;

	(void)state;
	gh_auth_pw_params_default(&p);
	assert_int_equal(p.m_kib, 19456);
	assert_int_equal(p.t_cost, 2);
	assert_int_equal(p.parallelism, 1);
	assert_int_equal(gh_auth_pw_params_check(&p), GH_OK);
	q = p, q.m_kib = 19455;
	assert_int_equal(gh_auth_pw_params_check(&q), GH_ERR_INVALID);
	assert_int_equal(gh_auth_pw_hash(&q, "password", &hash),
	    GH_ERR_INVALID);
	assert_null(hash);
	q = p, q.t_cost = 1;
	assert_int_equal(gh_auth_pw_params_check(&q), GH_ERR_INVALID);
	q = p, q.parallelism = 0;
	assert_int_equal(gh_auth_pw_params_check(&q), GH_ERR_INVALID);
	q = p, q.t_cost = 11;
	assert_int_equal(gh_auth_pw_params_check(&q), GH_ERR_INVALID);
	q = p, q.m_kib = 1024 * 1024 + 1;
	assert_int_equal(gh_auth_pw_params_check(&q), GH_ERR_INVALID);
	q = p, q.parallelism = 17;
	assert_int_equal(gh_auth_pw_params_check(&q), GH_ERR_INVALID);
	q = p, q.t_cost = 10, q.m_kib = 1024 * 1024, q.parallelism = 16;
	assert_int_equal(gh_auth_pw_params_check(&q), GH_OK);
	assert_int_equal(gh_auth_pw_params_check(NULL), GH_ERR_INVALID);
}

static void
test_overlong_or_malformed_password_is_refused_before_hashing(void **state)
{
	struct gh_pw_params p;
	char big[GH_PW_MAX_LEN + 2], *hash = NULL;
	bool rehash;

	(void)state;
	gh_auth_pw_params_default(&p);
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(gh_auth_pw_hash(&p, big, &hash), GH_ERR_INVALID);
	assert_null(hash);
	assert_int_equal(gh_auth_pw_hash(&p, "bad \xff byte", &hash),
	    GH_ERR_INVALID);
	assert_int_equal(gh_auth_pw_hash(&p, "overlong \xc0\xaf", &hash),
	    GH_ERR_INVALID);
	assert_int_equal(gh_auth_pw_hash(&p, NULL, &hash), GH_ERR_INVALID);
	assert_int_equal(gh_auth_pw_verify(&p, "$2b$04$x", big, &rehash),
	    GH_ERR_INVALID);
	/* Exactly the limit is fine. */
	big[GH_PW_MAX_LEN] = '\0';
	assert_int_equal(gh_auth_pw_hash(&p, big, &hash), GH_OK);
	assert_int_equal(gh_auth_pw_verify(&p, hash, big, &rehash), GH_OK);
	gh_str_wipe_free(hash);
}

static void
test_dummy_verification_spends_a_verification(void **state)
{
	struct gh_pw_params p, q;
	unsigned long before;
	char *hash = NULL;
	bool rehash;

	(void)state;
	gh_auth_pw_params_default(&p);
	assert_int_equal(gh_auth_pw_hash(&p, "Known-user-pass 1", &hash), GH_OK);
	/* A wrong password for a known user costs one argon2id run... */
	before = auth_argon2_runs();
	assert_int_equal(gh_auth_pw_verify(&p, hash, "wrong", &rehash),
	    GH_ERR_DENIED);
	assert_int_equal(auth_argon2_runs() - before, 1);
	/* ...and so does an unknown user, every time (the first call also
	 * makes the dummy hash once: not counted against the next). */
	gh_auth_pw_verify_dummy(&p, "whoever");
	before = auth_argon2_runs();
	gh_auth_pw_verify_dummy(&p, "whoever else");
	assert_int_equal(auth_argon2_runs() - before, 1);
	/* Other parameters than the dummy's: still exactly one run. */
	q = p;
	q.t_cost = 3;
	before = auth_argon2_runs();
	gh_auth_pw_verify_dummy(&q, "with other params");
	assert_int_equal(auth_argon2_runs() - before, 1);
	/* Input that the real verification refuses early is refused early
	 * here too: no run on either path. */
	before = auth_argon2_runs();
	gh_auth_pw_verify_dummy(&p, "bad \xff");
	gh_auth_pw_verify_dummy(NULL, "x");
	assert_int_equal(gh_auth_pw_verify(&p, hash, "bad \xff", &rehash),
	    GH_ERR_INVALID);
	assert_int_equal(auth_argon2_runs() - before, 0);
	gh_str_wipe_free(hash);
}

/* ---- password policy ------------------------------------------------------ */

static const char *
policy_code(const struct gh_pw_policy *pol, const char *pw,
    const struct gh_pw_context *ctx)
{
	const char *code = "unset";
	char reason[256];
	gh_err err;

	err = gh_auth_pw_policy_check(pol, pw, ctx, &code, reason,
	    sizeof reason);
	if (err == GH_OK) {
		assert_null(code);
		return "ok";
	}
	assert_int_equal(err, GH_ERR_INVALID);
	assert_non_null(code);
	assert_true(strlen(reason) > 10);
	/* The sentence never quotes the password. */
	assert_null(strstr(reason, pw));
	return code;
}

static void
test_policy_default_is_valid_and_bounds_are_named(void **state)
{
	struct gh_pw_policy pol, bad;
	const char *field = NULL;

	(void)state;
	gh_auth_pw_policy_default(&pol);
	assert_int_equal(pol.min_length, 10);
	assert_int_equal(pol.min_classes, 0);
	assert_int_equal(pol.min_score, 30);
	assert_true(pol.reject_common && pol.reject_context);
	assert_int_equal(gh_auth_pw_policy_validate(&pol, &field), GH_OK);
	assert_null(field);
	bad = pol, bad.min_length = 7;
	assert_int_equal(gh_auth_pw_policy_validate(&bad, &field),
	    GH_ERR_INVALID);
	assert_string_equal(field, "min_length");
	bad = pol, bad.min_length = 129;
	assert_int_equal(gh_auth_pw_policy_validate(&bad, &field),
	    GH_ERR_INVALID);
	bad = pol, bad.min_classes = 5;
	assert_int_equal(gh_auth_pw_policy_validate(&bad, &field),
	    GH_ERR_INVALID);
	assert_string_equal(field, "min_classes");
	bad = pol, bad.min_score = 101;
	assert_int_equal(gh_auth_pw_policy_validate(&bad, &field),
	    GH_ERR_INVALID);
	assert_string_equal(field, "min_score");
}

static void
test_policy_refuses_common_passwords_and_their_variants(void **state)
{
	static const char *const common[] = {
		"password1", "P@ssw0rd!", "Password1", "iloveyou!!",
		"Qwerty123!", "letmein2024", "Welcome1!", "admin12345",
		"1dragon99", "abcdefgh", "aaaaaaaa", "87654321",
		"passwordpassword", "abcabcabcabc", "zxcvbnm1",
	};
	static const char *const common_long[] = {
		"123456789012", "qwertyuiop123", "qwertyuiopasdf",
		"1234567890!!", "Sunshine2024!", "M0nkey!!!!!!",
	};
	struct gh_pw_policy pol;
	size_t i;

	(void)state;
	gh_auth_pw_policy_default(&pol);
	assert_string_equal(policy_code(&pol, "123456", NULL), "too_short");
	assert_string_equal(policy_code(&pol, "password1", NULL), "too_short");
	for (i = 0; i < sizeof common_long / sizeof common_long[0]; i++)
		assert_string_equal(policy_code(&pol, common_long[i], NULL),
		    "common");
	pol.min_length = 8;
	for (i = 0; i < sizeof common / sizeof common[0]; i++)
		assert_string_equal(policy_code(&pol, common[i], NULL),
		    "common");
	pol.reject_common = false;
	pol.min_score = 0;
	assert_string_equal(policy_code(&pol, "P@ssw0rd!", NULL), "ok");
}

static void
test_policy_accepts_good_passphrases(void **state)
{
	static const char *const good[] = {
		"correct horse battery staple 9!",
		"Tr0ub4dor&3x!",
		"glacier mitten orbit pulse",
		"Vq8#mL2!rT6zPw",
		"späte Zugvögel über Kiel",
	};
	struct gh_pw_policy pol;
	struct gh_pw_context ctx = { "alice", "alice.smith@example.com",
		"acme", "Acme Corporation" };
	size_t i;

	(void)state;
	gh_auth_pw_policy_default(&pol);
	for (i = 0; i < sizeof good / sizeof good[0]; i++) {
		assert_string_equal(policy_code(&pol, good[i], &ctx), "ok");
		assert_string_equal(policy_code(&pol, good[i], NULL), "ok");
	}
}

static void
test_policy_refuses_the_users_own_context(void **state)
{
	struct gh_pw_policy pol;
	struct gh_pw_context ctx = { "Alice", "alice.smith@example.com",
		"acme-corp", "Globex Industries" };
	struct gh_pw_context shorty = { "al", "al@x.io", "ab", "Zy" };

	(void)state;
	gh_auth_pw_policy_default(&pol);
	assert_string_equal(policy_code(&pol, "velvet ALICE lantern 7", &ctx),
	    "contains_username");
	assert_string_equal(policy_code(&pol, "velvet 4lice lantern 7", &ctx),
	    "contains_username");
	assert_string_equal(policy_code(&pol,
	    "Alice.Smith velvet lantern", &ctx), "contains_username");
	ctx.username = "bob";
	assert_string_equal(policy_code(&pol,
	    "Alice.Smith velvet lantern", &ctx), "contains_email");
	assert_string_equal(policy_code(&pol, "velvet ACME-corp lantern",
	    &ctx), "contains_org");
	assert_string_equal(policy_code(&pol,
	    "velvet GlobexIndustries lantern", &ctx), "contains_org");
	assert_string_equal(policy_code(&pol, "velvet acmecorp lantern",
	    &ctx), "contains_org");
	assert_string_equal(policy_code(&pol,
	    "Globex Industries velvet", &ctx), "contains_org");
	/* Strings under three characters are not checked. */
	assert_string_equal(policy_code(&pol, "velvet al ab zy lantern",
	    &shorty), "ok");
	pol.reject_context = false;
	assert_string_equal(policy_code(&pol, "velvet ALICE lantern 7", &ctx),
	    "ok");
}

static void
test_policy_counts_code_points_not_bytes(void **state)
{
	struct gh_pw_policy pol;

	(void)state;
	gh_auth_pw_policy_default(&pol);
	pol.min_score = 0;
	/* Nine characters, 27 bytes: too short despite the bytes. */
	assert_string_equal(policy_code(&pol,
	    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe5\xaf\x86"
	    "\xe7\xa2\xbc\xe3\x81\xa7\xe3\x81\x99\xe3\x80\x82", NULL),
	    "too_short");
	/* Ten characters. */
	assert_string_equal(policy_code(&pol,
	    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe5\xaf\x86"
	    "\xe7\xa2\xbc\xe3\x81\xa7\xe3\x81\x99\xe3\x80\x82\xe7\x8c\xab",
	    NULL), "ok");
}

static void
test_policy_checks_in_the_documented_order(void **state)
{
	struct gh_pw_policy pol;
	struct gh_pw_context ctx = { "carol", NULL, NULL, NULL };
	char big[GH_PW_MAX_LEN + 40];

	(void)state;
	gh_auth_pw_policy_default(&pol);
	assert_string_equal(policy_code(&pol, "short\xff", NULL),
	    "invalid_utf8");
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_string_equal(policy_code(&pol, big, NULL), "too_long");
	/* Multibyte characters across the limit: still too long, not
	 * broken text. */
	for (size_t i = 0; i + 2 < sizeof big; i += 2)
		memcpy(big + i, "\xc3\xa9", 2);
	big[sizeof big - 1] = '\0';
	if (((unsigned char)big[sizeof big - 2] & 0xe0) == 0xc0)
		big[sizeof big - 2] = '\0';
	assert_string_equal(policy_code(&pol, big, NULL), "too_long");
	assert_string_equal(policy_code(&pol, "carol", &ctx), "too_short");
	assert_string_equal(policy_code(&pol, "carol12345", &ctx),
	    "contains_username");
	assert_string_equal(policy_code(&pol, "password12", &ctx), "common");
	pol.min_classes = 3;
	assert_string_equal(policy_code(&pol, "glacier mitten orbit", &ctx),
	    "too_few_classes");
	assert_string_equal(policy_code(&pol, "Glacier mitten orbit", &ctx),
	    "ok");
	pol.min_classes = 0;
	pol.reject_common = false;
	assert_string_equal(policy_code(&pol, "qwertyuiopasdf", &ctx), "ok");
	/* Passes our own rules; libpwquality finds too few different
	 * characters. */
	assert_string_equal(policy_code(&pol, "aB3$aB3$aB3$", &ctx),
	    "too_weak");
	assert_int_equal(gh_auth_pw_policy_check(&pol, NULL, NULL, NULL, NULL,
	    0), GH_ERR_INVALID);
}

/* ---- a tenant database ------------------------------------------------------ */

static void
shift_session(struct gh_db *db, const char *id, const char *column,
    int64_t by_ms)
{
	char sql[128];

	snprintf(sql, sizeof sql, "UPDATE sessions SET %s = %s - ? WHERE "
	    "id = ?", column, column);
	assert_int_equal(gh_db_run(db, sql, "it", by_ms, id), GH_OK);
}

static void
set_user_state(struct gh_db *db, const char *id, const char *st)
{
	assert_int_equal(gh_db_run(db, "UPDATE users SET state = ? WHERE "
	    "id = ?", "tt", st, id), GH_OK);
}

/* ---- sessions ------------------------------------------------------------- */

static const struct gh_session_limits limits = { 12 * HOUR, 30 * MINUTE };

static void
test_session_is_created_and_found_by_its_token(void **state)
{
	struct gh_test_tenant *f = *state;
	char token[GH_TOKEN_LEN + 1], digest_row[GH_TOKEN_HASH_LEN + 1];
	struct gh_session s, found;
	struct gh_stmt *st = NULL;
	bool row;

	assert_int_equal(gh_auth_session_create(f->db, TEST_USER, &limits,
	    "203.0.113.7", "Mozilla/5.0\x01 test", token, &s), GH_OK);
	assert_int_equal(strlen(token), GH_TOKEN_LEN);
	assert_true(gh_id_valid(s.id));
	assert_string_equal(s.user_id, TEST_USER);
	assert_int_equal(s.expires_at, s.created_at + limits.absolute_ms);
	assert_string_equal(s.user_agent, "Mozilla/5.0? test");
	/* Only the digest is stored. */
	assert_int_equal(gh_db_prepare(f->db, "SELECT token_hash FROM sessions "
	    "WHERE id = ?", &st), GH_OK);
	assert_int_equal(gh_stmt_bind(st, "t", s.id), GH_OK);
	assert_int_equal(gh_stmt_step(st, &row), GH_OK);
	assert_true(row);
	gh_strlcpy(digest_row, gh_stmt_text(st, 0), sizeof digest_row);
	gh_stmt_free(st);
	assert_int_equal(strlen(digest_row), GH_TOKEN_HASH_LEN);
	assert_null(strstr(digest_row, token));

	assert_int_equal(gh_auth_session_check(f->db, token, &limits, &found),
	    GH_OK);
	assert_string_equal(found.id, s.id);
	assert_string_equal(found.user_id, TEST_USER);
	assert_string_equal(found.source_ip, "203.0.113.7");
	gh_wipe(token, sizeof token);
}

struct extra_user {
	char id[GH_ID_LEN + 1];
	char state[16];
	int calls;
};

static void
read_extra_user(struct gh_stmt *st, int first, void *arg)
{
	struct extra_user *x = arg;

	gh_strlcpy(x->id, gh_stmt_text(st, first), sizeof x->id);
	gh_strlcpy(x->state, gh_stmt_text(st, first + 1), sizeof x->state);
	x->calls++;
}

static void
test_session_check_with_reads_the_user_in_the_same_row(void **state)
{
	struct gh_test_tenant *f = *state;
	char token[GH_TOKEN_LEN + 1];
	struct extra_user x = { .calls = 0 };
	struct gh_session s, found;

	assert_int_equal(gh_auth_session_create(f->db, TEST_USER, &limits,
	    NULL, NULL, token, &s), GH_OK);
	assert_int_equal(gh_auth_session_check_with(f->db, token, &limits,
	    &found, "u.id, u.state", read_extra_user, &x, sizeof x), GH_OK);
	assert_string_equal(found.id, s.id);
	assert_string_equal(x.id, TEST_USER);
	assert_string_equal(x.state, "active");
	assert_int_equal(x.calls, 1);
	/* A refused session reads nothing. */
	token[5] = token[5] == 'A' ? 'B' : 'A';
	assert_int_equal(gh_auth_session_check_with(f->db, token, &limits,
	    &found, "u.id, u.state", read_extra_user, &x, sizeof x),
	    GH_ERR_DENIED);
	assert_int_equal(x.calls, 1);
	/* Columns without a reader (or the reverse) are a caller's bug. */
	assert_int_equal(gh_auth_session_check_with(f->db, token, &limits,
	    &found, "u.id", NULL, NULL, 0), GH_ERR_INVALID);
	gh_wipe(token, sizeof token);
}

static const char memo_cols[] = "u.id, u.state";

/* A repeated check is answered from the connection's memo: the reader is
 * not called again and the remembered bytes come back. */
static void
test_session_check_memo_answers_a_repeat(void **state)
{
	struct gh_test_tenant *f = *state;
	char token[GH_TOKEN_LEN + 1];
	struct extra_user x = { .calls = 0 };
	struct gh_session s, found;

	assert_int_equal(gh_auth_session_create(f->db, TEST_USER, &limits,
	    NULL, NULL, token, &s), GH_OK);
	assert_int_equal(gh_auth_session_check_with(f->db, token, &limits,
	    &found, memo_cols, read_extra_user, &x, sizeof x), GH_OK);
	assert_int_equal(x.calls, 1);
	memset(&x, 0, sizeof x);
	memset(&found, 0, sizeof found);
	assert_int_equal(gh_auth_session_check_with(f->db, token, &limits,
	    &found, memo_cols, read_extra_user, &x, sizeof x), GH_OK);
	assert_int_equal(x.calls, 1);	/* the copy, not a second read */
	assert_string_equal(x.id, TEST_USER);
	assert_string_equal(found.id, s.id);
	gh_wipe(token, sizeof token);
}

/* Any commit ends the memo: a revocation through this connection, then
 * one through another connection (as another request or process would),
 * then a disabled user, each refuse on the very next check. */
static void
test_session_check_memo_sees_every_commit(void **state)
{
	struct gh_test_tenant *f = *state;
	char t1[GH_TOKEN_LEN + 1], t2[GH_TOKEN_LEN + 1];
	char t3[GH_TOKEN_LEN + 1];
	struct extra_user x = { .calls = 0 };
	struct gh_session s1, s2, s3, found;
	struct gh_db *other = NULL;

	assert_int_equal(gh_auth_session_create(f->db, TEST_USER, &limits,
	    NULL, NULL, t1, &s1), GH_OK);
	assert_int_equal(gh_auth_session_create(f->db, TEST_USER, &limits,
	    NULL, NULL, t2, &s2), GH_OK);
	assert_int_equal(gh_auth_session_create(f->db, TEST_USER, &limits,
	    NULL, NULL, t3, &s3), GH_OK);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(gh_auth_session_check_with(f->db, t1, &limits,
		    &found, memo_cols, read_extra_user, &x, sizeof x), GH_OK);
		assert_int_equal(gh_auth_session_check_with(f->db, t2, &limits,
		    &found, memo_cols, read_extra_user, &x, sizeof x), GH_OK);
		assert_int_equal(gh_auth_session_check_with(f->db, t3, &limits,
		    &found, memo_cols, read_extra_user, &x, sizeof x), GH_OK);
	}
	assert_int_equal(x.calls, 3);
	/* This connection. */
	assert_int_equal(gh_auth_session_revoke(f->db, s1.id, TEST_USER),
	    GH_OK);
	assert_int_equal(gh_auth_session_check_with(f->db, t1, &limits,
	    &found, memo_cols, read_extra_user, &x, sizeof x), GH_ERR_DENIED);
	assert_int_equal(gh_auth_session_check_with(f->db, t2, &limits,
	    &found, memo_cols, read_extra_user, &x, sizeof x), GH_OK);
	/* Another connection of the same database (f->db is held, so the
	 * pool opens a second one). */
	assert_int_equal(gh_store_tenant(f->st, f->org_id, "eu", false,
	    &other), GH_OK);
	assert_int_equal(gh_auth_session_revoke(other, s2.id, TEST_USER),
	    GH_OK);
	gh_db_release(other);
	assert_int_equal(gh_auth_session_check_with(f->db, t2, &limits,
	    &found, memo_cols, read_extra_user, &x, sizeof x), GH_ERR_DENIED);
	assert_int_equal(gh_auth_session_check_with(f->db, t3, &limits,
	    &found, memo_cols, read_extra_user, &x, sizeof x), GH_OK);
	assert_int_equal(gh_store_tenant(f->st, f->org_id, "eu", false,
	    &other), GH_OK);
	assert_int_equal(gh_db_run(other, "UPDATE users SET state = "
	    "'disabled' WHERE id = ?", "t", TEST_USER), GH_OK);
	gh_db_release(other);
	assert_int_equal(gh_auth_session_check_with(f->db, t3, &limits,
	    &found, memo_cols, read_extra_user, &x, sizeof x), GH_ERR_DENIED);
	gh_wipe(t1, sizeof t1);
	gh_wipe(t2, sizeof t2);
	gh_wipe(t3, sizeof t3);
}

/* Inside a transaction the memo is neither used nor filled: a rolled
 * back revocation must not be remembered, nor a remembered row hide it. */
static void
test_session_check_memo_not_in_a_transaction(void **state)
{
	struct gh_test_tenant *f = *state;
	char token[GH_TOKEN_LEN + 1];
	struct extra_user x = { .calls = 0 };
	struct gh_session s, found;

	assert_int_equal(gh_auth_session_create(f->db, TEST_USER, &limits,
	    NULL, NULL, token, &s), GH_OK);
	assert_int_equal(gh_auth_session_check_with(f->db, token, &limits,
	    &found, memo_cols, read_extra_user, &x, sizeof x), GH_OK);
	assert_int_equal(gh_db_begin(f->db), GH_OK);
	assert_int_equal(gh_auth_session_revoke(f->db, s.id, TEST_USER),
	    GH_OK);
	assert_int_equal(gh_auth_session_check_with(f->db, token, &limits,
	    &found, memo_cols, read_extra_user, &x, sizeof x), GH_ERR_DENIED);
	gh_db_rollback(f->db);
	assert_int_equal(gh_auth_session_check_with(f->db, token, &limits,
	    &found, memo_cols, read_extra_user, &x, sizeof x), GH_OK);
	gh_wipe(token, sizeof token);
}

static void
test_session_check_refuses_a_wrong_or_malformed_token(void **state)
{
	struct gh_test_tenant *f = *state;
	char token[GH_TOKEN_LEN + 1];
	struct gh_session s;

	assert_int_equal(gh_auth_session_create(f->db, TEST_USER, &limits,
	    NULL, NULL, token, &s), GH_OK);
	token[5] = token[5] == 'A' ? 'B' : 'A';
	assert_int_equal(gh_auth_session_check(f->db, token, &limits, &s),
	    GH_ERR_DENIED);
	assert_int_equal(gh_auth_session_check(f->db, "short", &limits, &s),
	    GH_ERR_DENIED);
	assert_int_equal(gh_auth_session_check(f->db, NULL, &limits, &s),
	    GH_ERR_DENIED);
	assert_int_equal(gh_auth_session_check(f->db,
	    "' OR 1=1 --'''''''''''''''''''''''''''''''", &limits, &s),
	    GH_ERR_DENIED);
	/* A session for a user who does not exist cannot be made. */
	assert_int_equal(gh_auth_session_create(f->db,
	    "cccccccccccccccccccccccccccccccc", &limits, NULL, NULL, token,
	    &s), GH_ERR_NOTFOUND);
	assert_int_equal(gh_auth_session_create(f->db, "not-an-id", &limits,
	    NULL, NULL, token, &s), GH_ERR_INVALID);
	assert_string_equal(token, "");
	/* Misuse: no limits, no callback. */
	assert_int_equal(gh_auth_session_check(f->db, token, NULL, &s),
	    GH_ERR_INVALID);
	assert_int_equal(gh_auth_session_list(f->db, TEST_USER, &limits, NULL,
	    NULL), GH_ERR_INVALID);
	assert_int_equal(gh_auth_session_revoke(f->db, NULL, NULL),
	    GH_ERR_INVALID);
}

static void
test_session_expires_after_idle_time_and_use_refreshes_it(void **state)
{
	struct gh_test_tenant *f = *state;
	char token[GH_TOKEN_LEN + 1];
	struct gh_session s, found;

	assert_int_equal(gh_auth_session_create(f->db, TEST_USER, &limits,
	    NULL, NULL, token, &s), GH_OK);
	/* Used 20 minutes ago: still live, and the use is recorded. */
	shift_session(f->db, s.id, "last_seen_at", 20 * MINUTE);
	assert_int_equal(gh_auth_session_check(f->db, token, &limits, &found),
	    GH_OK);
	assert_true(found.last_seen_at >= s.last_seen_at);
	/* Used 20 more minutes ago after the refresh: still live. */
	shift_session(f->db, s.id, "last_seen_at", 20 * MINUTE);
	assert_int_equal(gh_auth_session_check(f->db, token, &limits, &found),
	    GH_OK);
	/* Untouched for 31 minutes: gone. */
	shift_session(f->db, s.id, "last_seen_at", 31 * MINUTE);
	assert_int_equal(gh_auth_session_check(f->db, token, &limits, &found),
	    GH_ERR_DENIED);
}

static void
test_session_expires_at_its_absolute_limit(void **state)
{
	struct gh_test_tenant *f = *state;
	char token[GH_TOKEN_LEN + 1];
	struct gh_session s, found;
	struct gh_session_limits shorter = { 2 * HOUR, 30 * MINUTE };

	assert_int_equal(gh_auth_session_create(f->db, TEST_USER, &limits,
	    NULL, NULL, token, &s), GH_OK);
	/* Created 3 hours ago and in use since: the 12-hour limit holds,
	 * a policy lowered to 2 hours ends it. */
	shift_session(f->db, s.id, "created_at", 3 * HOUR);
	assert_int_equal(gh_auth_session_check(f->db, token, &limits, &found),
	    GH_OK);
	assert_int_equal(gh_auth_session_check(f->db, token, &shorter,
	    &found), GH_ERR_DENIED);
	/* Past the stored expiry, though used a minute ago. */
	shift_session(f->db, s.id, "expires_at", 12 * HOUR + MINUTE);
	assert_int_equal(gh_auth_session_check(f->db, token, &limits, &found),
	    GH_ERR_DENIED);
}

static void
count_session(const struct gh_session *s, void *arg)
{
	int64_t *prev = arg;

	/* Newest first. */
	assert_true(prev[1] == 0 || s->created_at <= prev[1]);
	prev[1] = s->created_at;
	prev[0]++;
}

static void
test_session_revoke_is_owner_checked_and_final(void **state)
{
	struct gh_test_tenant *f = *state;
	char token[GH_TOKEN_LEN + 1], other[GH_TOKEN_LEN + 1];
	struct gh_session s, o, found;
	int64_t seen[2] = { 0, 0 };

	assert_int_equal(gh_auth_session_create(f->db, TEST_USER, &limits,
	    NULL, NULL, token, &s), GH_OK);
	assert_int_equal(gh_auth_session_create(f->db, TEST_USER, &limits,
	    NULL, NULL, other, &o), GH_OK);
	shift_session(f->db, s.id, "created_at", MINUTE);
	assert_int_equal(gh_auth_session_list(f->db, TEST_USER, &limits,
	    count_session, seen), GH_OK);
	assert_int_equal(seen[0], 2);
	/* Bob cannot revoke Alice's session. */
	assert_int_equal(gh_auth_session_revoke(f->db, s.id, OTHER_USER),
	    GH_ERR_NOTFOUND);
	assert_int_equal(gh_auth_session_revoke(f->db, s.id, TEST_USER),
	    GH_OK);
	assert_int_equal(gh_auth_session_revoke(f->db, s.id, NULL),
	    GH_ERR_NOTFOUND);
	assert_int_equal(gh_auth_session_check(f->db, token, &limits, &found),
	    GH_ERR_DENIED);
	assert_int_equal(gh_auth_session_check(f->db, other, &limits, &found),
	    GH_OK);
	seen[0] = seen[1] = 0;
	assert_int_equal(gh_auth_session_list(f->db, TEST_USER, &limits,
	    count_session, seen), GH_OK);
	assert_int_equal(seen[0], 1);
}

static void
test_session_revoke_user_ends_every_session_of_that_user(void **state)
{
	struct gh_test_tenant *f = *state;
	char t1[GH_TOKEN_LEN + 1], t2[GH_TOKEN_LEN + 1], tb[GH_TOKEN_LEN + 1];
	struct gh_session s;
	int64_t count = -1;

	assert_int_equal(gh_auth_session_create(f->db, TEST_USER, &limits,
	    NULL, NULL, t1, &s), GH_OK);
	assert_int_equal(gh_auth_session_create(f->db, TEST_USER, &limits,
	    NULL, NULL, t2, &s), GH_OK);
	assert_int_equal(gh_auth_session_create(f->db, OTHER_USER, &limits,
	    NULL, NULL, tb, &s), GH_OK);
	assert_int_equal(gh_auth_session_revoke_user(f->db, TEST_USER, &count),
	    GH_OK);
	assert_int_equal(count, 2);
	assert_int_equal(gh_auth_session_check(f->db, t1, &limits, &s),
	    GH_ERR_DENIED);
	assert_int_equal(gh_auth_session_check(f->db, t2, &limits, &s),
	    GH_ERR_DENIED);
	assert_int_equal(gh_auth_session_check(f->db, tb, &limits, &s), GH_OK);
	assert_int_equal(gh_auth_session_revoke_user(f->db, TEST_USER, &count),
	    GH_OK);
	assert_int_equal(count, 0);
}

/* An oidc_tokens row as the token endpoint writes it. */
static void
token_in_session(struct gh_db *db, const char *session_id,
    const char *client_id, const char *user_id)
{
	char id[GH_ID_LEN + 1];

	assert_int_equal(gh_id_new(id), GH_OK);
	assert_int_equal(gh_db_run(db, "INSERT INTO oidc_tokens (id, kind, "
	    "client_id, user_id, session_id, scope, family, created_at, "
	    "expires_at) VALUES (?, 'access', ?, ?, ?, 'openid', 'f', 0, 1)",
	    "tttt", id, client_id, user_id, session_id), GH_OK);
}

static int64_t
outbox_count(struct gh_db *db, const char *session_id)
{
	struct gh_stmt *st = NULL;
	int64_t n = -1;
	bool row = false;

	assert_int_equal(gh_db_prepare(db, "SELECT COUNT(*) FROM "
	    "oidc_logout_outbox WHERE (? IS NULL OR session_id = ?)", &st),
	    GH_OK);
	assert_int_equal(gh_stmt_bind(st, "tt", session_id, session_id),
	    GH_OK);
	assert_int_equal(gh_stmt_step(st, &row), GH_OK);
	assert_true(row);
	n = gh_stmt_int(st, 0);
	gh_stmt_free(st);
	return n;
}

static void
test_session_revoke_queues_one_logout_per_client_of_the_session(void **state)
{
	struct gh_test_tenant *f = *state;
	char t1[GH_TOKEN_LEN + 1], t2[GH_TOKEN_LEN + 1], tb[GH_TOKEN_LEN + 1];
	const char *c1 = "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1";
	const char *c2 = "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2";
	struct gh_session s1, s2, sb;
	int64_t count;

	assert_int_equal(gh_auth_session_create(f->db, TEST_USER, &limits,
	    NULL, NULL, t1, &s1), GH_OK);
	assert_int_equal(gh_auth_session_create(f->db, TEST_USER, &limits,
	    NULL, NULL, t2, &s2), GH_OK);
	assert_int_equal(gh_auth_session_create(f->db, OTHER_USER, &limits,
	    NULL, NULL, tb, &sb), GH_OK);
	/* Two tokens of c1 and one of c2 in s1; c1 in s2 and in Bob's. */
	token_in_session(f->db, s1.id, c1, TEST_USER);
	token_in_session(f->db, s1.id, c1, TEST_USER);
	token_in_session(f->db, s1.id, c2, TEST_USER);
	token_in_session(f->db, s2.id, c1, TEST_USER);
	token_in_session(f->db, sb.id, c1, OTHER_USER);
	/* Refused revocations queue nothing. */
	assert_int_equal(gh_auth_session_revoke(f->db, s1.id, OTHER_USER),
	    GH_ERR_NOTFOUND);
	assert_int_equal(outbox_count(f->db, NULL), 0);
	assert_int_equal(gh_auth_session_revoke(f->db, s1.id, NULL), GH_OK);
	assert_int_equal(outbox_count(f->db, s1.id), 2);
	assert_int_equal(gh_auth_session_revoke(f->db, s1.id, NULL),
	    GH_ERR_NOTFOUND);
	assert_int_equal(outbox_count(f->db, NULL), 2);
	/* The user's other live session, not the revoked one nor Bob's. */
	assert_int_equal(gh_auth_session_revoke_user(f->db, TEST_USER, &count),
	    GH_OK);
	assert_int_equal(count, 1);
	assert_int_equal(outbox_count(f->db, s2.id), 1);
	assert_int_equal(outbox_count(f->db, sb.id), 0);
	assert_int_equal(outbox_count(f->db, NULL), 3);
}

static void
test_session_of_a_disabled_user_is_refused(void **state)
{
	struct gh_test_tenant *f = *state;
	char token[GH_TOKEN_LEN + 1];
	struct gh_session s;

	assert_int_equal(gh_auth_session_create(f->db, TEST_USER, &limits,
	    NULL, NULL, token, &s), GH_OK);
	set_user_state(f->db, TEST_USER, "disabled");
	assert_int_equal(gh_auth_session_check(f->db, token, &limits, &s),
	    GH_ERR_DENIED);
	assert_int_equal(gh_auth_session_create(f->db, TEST_USER, &limits,
	    NULL, NULL, token, &s), GH_ERR_DENIED);
	set_user_state(f->db, TEST_USER, "active");
	assert_int_equal(gh_auth_session_check(f->db, "x", &limits, &s),
	    GH_ERR_DENIED);
}

static void
test_csrf_token_is_bound_to_its_session(void **state)
{
	char token[GH_TOKEN_LEN + 1], other[GH_TOKEN_LEN + 1];
	char csrf[GH_TOKEN_LEN + 1], csrf2[GH_TOKEN_LEN + 1];

	(void)state;
	memset(token, 'A', GH_TOKEN_LEN);
	token[GH_TOKEN_LEN] = '\0';
	memcpy(other, token, sizeof other);
	other[0] = 'B';
	gh_auth_session_csrf(token, csrf);
	gh_auth_session_csrf(token, csrf2);
	assert_int_equal(strlen(csrf), GH_TOKEN_LEN);
	assert_string_equal(csrf, csrf2);
	assert_string_not_equal(csrf, token);
	assert_true(gh_auth_session_csrf_ok(token, csrf));
	assert_false(gh_auth_session_csrf_ok(other, csrf));
	csrf2[3] = csrf2[3] == 'x' ? 'y' : 'x';
	assert_false(gh_auth_session_csrf_ok(token, csrf2));
	assert_false(gh_auth_session_csrf_ok(token, ""));
	assert_false(gh_auth_session_csrf_ok(token, NULL));
	csrf[GH_TOKEN_LEN - 1] = '\0';
	assert_false(gh_auth_session_csrf_ok(token, csrf));
	assert_false(gh_auth_session_csrf_ok(NULL, csrf));
}

/* ---- API tokens ---------------------------------------------------------- */

static void
count_token(const struct gh_api_token *t, void *arg)
{
	(void)t;
	(*(int *)arg)++;
}

static void
test_api_token_is_created_checked_and_its_use_recorded(void **state)
{
	struct gh_test_tenant *f = *state;
	char token[GH_API_TOKEN_LEN + 1];
	struct gh_api_token t, found;
	int64_t now = gh_now_ms();
	int n = 0;

	assert_int_equal(gh_auth_api_token_create(f->db, TEST_USER, "deploy",
	    now + HOUR, token, &t), GH_OK);
	assert_int_equal(strlen(token), GH_API_TOKEN_LEN);
	assert_true(strncmp(token, "gh_", 3) == 0);
	assert_string_equal(t.name, "deploy");
	assert_int_equal(t.last_used_at, 0);
	assert_int_equal(gh_auth_api_token_check(f->db, token, &found), GH_OK);
	assert_string_equal(found.id, t.id);
	assert_string_equal(found.user_id, TEST_USER);
	assert_true(found.last_used_at >= now);
	assert_int_equal(gh_auth_api_token_list(f->db, TEST_USER, count_token,
	    &n), GH_OK);
	assert_int_equal(n, 1);
	n = 0;
	assert_int_equal(gh_auth_api_token_list(f->db, OTHER_USER, count_token,
	    &n), GH_OK);
	assert_int_equal(n, 0);
	assert_int_equal(gh_auth_api_token_list(f->db, NULL, count_token, &n),
	    GH_OK);
	assert_int_equal(n, 1);
	/* Wrong secret, missing prefix, session-shaped token. */
	token[10] = token[10] == 'A' ? 'B' : 'A';
	assert_int_equal(gh_auth_api_token_check(f->db, token, &found),
	    GH_ERR_DENIED);
	assert_int_equal(gh_auth_api_token_check(f->db, token + 3, &found),
	    GH_ERR_DENIED);
	assert_int_equal(gh_auth_api_token_check(f->db, NULL, &found),
	    GH_ERR_DENIED);
}

static void
test_api_token_create_refuses_bad_names_and_expiries(void **state)
{
	struct gh_test_tenant *f = *state;
	char token[GH_API_TOKEN_LEN + 1], long_name[66];
	struct gh_api_token t;
	int64_t now = gh_now_ms();

	memset(long_name, 'n', 65);
	long_name[65] = '\0';
	assert_int_equal(gh_auth_api_token_create(f->db, TEST_USER, "",
	    now + HOUR, token, &t), GH_ERR_INVALID);
	assert_int_equal(gh_auth_api_token_create(f->db, TEST_USER, long_name,
	    now + HOUR, token, &t), GH_ERR_INVALID);
	long_name[64] = '\0';
	assert_int_equal(gh_auth_api_token_create(f->db, TEST_USER, long_name,
	    now + HOUR, token, &t), GH_OK);
	assert_int_equal(gh_auth_api_token_create(f->db, TEST_USER, "bad\xff",
	    now + HOUR, token, &t), GH_ERR_INVALID);
	assert_int_equal(gh_auth_api_token_create(f->db, TEST_USER, "ci",
	    now - 1, token, &t), GH_ERR_INVALID);
	assert_string_equal(token, "");
	assert_int_equal(gh_auth_api_token_create(f->db, TEST_USER, "ci",
	    now + GH_API_TOKEN_MAX_TTL_MS + MINUTE, token, &t),
	    GH_ERR_INVALID);
	assert_int_equal(gh_auth_api_token_create(f->db, TEST_USER, "ci",
	    now + GH_API_TOKEN_MAX_TTL_MS - MINUTE, token, &t), GH_OK);
}

static void
test_api_token_expired_or_revoked_is_refused(void **state)
{
	struct gh_test_tenant *f = *state;
	char t1[GH_API_TOKEN_LEN + 1], t2[GH_API_TOKEN_LEN + 1];
	struct gh_api_token a, b, found;
	int n = 0;

	assert_int_equal(gh_auth_api_token_create(f->db, TEST_USER, "one",
	    gh_now_ms() + HOUR, t1, &a), GH_OK);
	assert_int_equal(gh_auth_api_token_create(f->db, TEST_USER, "two",
	    gh_now_ms() + HOUR, t2, &b), GH_OK);
	assert_int_equal(gh_db_run(f->db, "UPDATE api_tokens SET expires_at = "
	    "? WHERE id = ?", "it", gh_now_ms() - 1, a.id), GH_OK);
	assert_int_equal(gh_auth_api_token_check(f->db, t1, &found),
	    GH_ERR_DENIED);
	assert_int_equal(gh_auth_api_token_revoke(f->db, b.id), GH_OK);
	assert_int_equal(gh_auth_api_token_revoke(f->db, b.id),
	    GH_ERR_NOTFOUND);
	assert_int_equal(gh_auth_api_token_revoke(f->db,
	    "cccccccccccccccccccccccccccccccc"), GH_ERR_NOTFOUND);
	assert_int_equal(gh_auth_api_token_check(f->db, t2, &found),
	    GH_ERR_DENIED);
	assert_int_equal(gh_auth_api_token_list(f->db, TEST_USER, count_token,
	    &n), GH_OK);
	assert_int_equal(n, 0);
}

static void
test_api_token_of_a_disabled_user_is_refused(void **state)
{
	struct gh_test_tenant *f = *state;
	char token[GH_API_TOKEN_LEN + 1], second[GH_API_TOKEN_LEN + 1];
	struct gh_api_token t, found;

	assert_int_equal(gh_auth_api_token_create(f->db, OTHER_USER, "bot",
	    gh_now_ms() + HOUR, token, &t), GH_OK);
	set_user_state(f->db, OTHER_USER, "disabled");
	assert_int_equal(gh_auth_api_token_check(f->db, token, &found),
	    GH_ERR_DENIED);
	assert_int_equal(gh_auth_api_token_create(f->db, OTHER_USER, "bot2",
	    gh_now_ms() + HOUR, second, &t), GH_ERR_DENIED);
	set_user_state(f->db, OTHER_USER, "active");
	assert_int_equal(gh_auth_api_token_check(f->db, token, &found), GH_OK);
}

#define DB_TEST(fn) GH_TEST_TENANT_USERS(fn)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_argon2id_hash_round_trips_and_refuses_a_wrong_password),
		cmocka_unit_test(test_argon2id_hash_matches_libargon2_encoding),
		cmocka_unit_test(test_hash_memory_is_returned_by_trim),
		cmocka_unit_test(
		    test_two_hashes_of_one_password_differ_by_their_salt),
		cmocka_unit_test(test_bcrypt_hash_verifies_and_asks_for_rehash),
		cmocka_unit_test(test_no_more_hashes_run_at_once_than_cores),
		cmocka_unit_test(test_weaker_argon2id_hash_asks_for_rehash),
		cmocka_unit_test(test_unsupported_hash_is_invalid),
		cmocka_unit_test(
		  test_params_below_owasp_minimum_or_above_ceilings_are_refused),
		cmocka_unit_test(
		  test_overlong_or_malformed_password_is_refused_before_hashing),
		cmocka_unit_test(test_dummy_verification_spends_a_verification),
		cmocka_unit_test(
		    test_policy_default_is_valid_and_bounds_are_named),
		cmocka_unit_test(
		    test_policy_refuses_common_passwords_and_their_variants),
		cmocka_unit_test(test_policy_accepts_good_passphrases),
		cmocka_unit_test(test_policy_refuses_the_users_own_context),
		cmocka_unit_test(test_policy_counts_code_points_not_bytes),
		cmocka_unit_test(test_policy_checks_in_the_documented_order),
		DB_TEST(test_session_is_created_and_found_by_its_token),
		DB_TEST(test_session_check_with_reads_the_user_in_the_same_row),
		DB_TEST(test_session_check_memo_answers_a_repeat),
		DB_TEST(test_session_check_memo_sees_every_commit),
		DB_TEST(test_session_check_memo_not_in_a_transaction),
		DB_TEST(test_session_check_refuses_a_wrong_or_malformed_token),
		DB_TEST(
		    test_session_expires_after_idle_time_and_use_refreshes_it),
		DB_TEST(test_session_expires_at_its_absolute_limit),
		DB_TEST(test_session_revoke_is_owner_checked_and_final),
		DB_TEST(
		    test_session_revoke_user_ends_every_session_of_that_user),
		DB_TEST(
		    test_session_revoke_queues_one_logout_per_client_of_the_session),
		DB_TEST(test_session_of_a_disabled_user_is_refused),
		cmocka_unit_test(test_csrf_token_is_bound_to_its_session),
		DB_TEST(
		    test_api_token_is_created_checked_and_its_use_recorded),
		DB_TEST(test_api_token_create_refuses_bad_names_and_expiries),
		DB_TEST(test_api_token_expired_or_revoked_is_refused),
		DB_TEST(test_api_token_of_a_disabled_user_is_refused),
	};

	return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
