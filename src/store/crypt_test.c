/*
 * crypt_test.c: unit tests for the page encryption of tenant databases
 * (crypt.c and its use by sqlite.c and store.c): round trips, no plaintext
 * on disk, wrong or missing keys, tampering, rekeying, crash safety,
 * eviction, threads, and a printed (not asserted) insert-rate comparison.
 * Each test works in its own mkdtemp data directory with a test key
 * callback holding versioned keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store_int.h"

#define ORG_A "0123456789abcdef0123456789abcdef"
#define ORG_B "fedcba9876543210fedcba9876543210"
#define REGION "eu-west"
#define MAX_VERSIONS 8

/* The test's stand-in for src/kms: versioned keys per ring. */
struct keyring {
	pthread_mutex_t mu;
	uint8_t seed;		/* makes rings differ */
	uint32_t newest;
	bool destroyed[MAX_VERSIONS + 1];
	gh_err fail;		/* returned for every call when not GH_OK */
	bool zero_key;		/* misbehave: hand out an all-zero key */
	atomic_int calls;
};

static gh_err
ring_page_key(void *arg, const char *org_id, uint32_t version,
    uint32_t *version_out, uint8_t key[32])
{
	struct keyring *r = arg;
	gh_err err = GH_OK;
	uint32_t v;

	atomic_fetch_add(&r->calls, 1);
	pthread_mutex_lock(&r->mu);
	v = version == 0 ? r->newest : version;
	if (r->fail != GH_OK)
		err = r->fail;
	else if (v == 0 || v > r->newest || r->destroyed[v])
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK) {
		for (int i = 0; i < 32; i++)
			key[i] = r->zero_key ? 0 : (uint8_t)(r->seed * 31 +
			    v * 7 + i + (uint8_t)org_id[i]);
		*version_out = v;
	}
	pthread_mutex_unlock(&r->mu);
	return err;
}

static void
ring_init(struct keyring *r, uint8_t seed)
{
	memset(r, 0, sizeof *r);
	pthread_mutex_init(&r->mu, NULL);
	r->seed = seed;
	r->newest = 1;
	r->fail = GH_OK;
}

static void
ring_set(struct keyring *r, uint32_t newest, gh_err fail)
{
	pthread_mutex_lock(&r->mu);
	r->newest = newest;
	r->fail = fail;
	pthread_mutex_unlock(&r->mu);
}

struct fixture {
	char dir[PATH_MAX];
	struct gh_store *st;
	struct keyring ring;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	const char *tmp = getenv("TMPDIR");

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof f->dir, "%s/gh-crypt-test-XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	ring_init(&f->ring, 1);
	*state = f;
	return 0;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	gh_store_free(f->st);
	rm_tree(f->dir);
	pthread_mutex_destroy(&f->ring.mu);
	free(f);
	return 0;
}

/* Opens a store on dir with ring's keys (NULL: plain). */
static struct gh_store *
store_with(const char *dir, struct keyring *ring)
{
	struct gh_store *st = NULL;

	assert_int_equal(gh_store_open(dir, true, &st), GH_OK);
	if (ring != NULL)
		gh_store_set_keys(st, &(struct gh_store_keys){ ring_page_key,
		    ring });
	return st;
}

static void
open_store(struct fixture *f)
{
	f->st = store_with(f->dir, &f->ring);
}

static void
reopen_store(struct fixture *f)
{
	gh_store_free(f->st);
	f->st = NULL;
	open_store(f);
}

static gh_err
insert_user(struct gh_db *db, const char *id, const char *name)
{
	return gh_db_run(db, "INSERT INTO users (id, username, username_key, "
	    "display_name, state, role, created_at, updated_at) "
	    "VALUES (?, ?, ?, ?, 'active', 'member', 1000, 1000)", "tttt", id,
	    id, id, name);
}

static gh_err
query_int(struct gh_db *db, const char *sql, int64_t *out)
{
	struct gh_stmt *s = NULL;
	bool row = false;
	gh_err err;

	*out = -1;
	err = gh_db_prepare(db, sql, &s);
	if (err == GH_OK)
		err = gh_stmt_step(s, &row);
	if (err == GH_OK && row)
		*out = gh_stmt_int(s, 0);
	gh_stmt_free(s);
	return err;
}

static int64_t
must_int(struct gh_db *db, const char *sql)
{
	int64_t v;

	assert_int_equal(query_int(db, sql, &v), GH_OK);
	return v;
}

/* PRAGMA integrity_check's verdict, or the error reading it. */
static gh_err
integrity(struct gh_db *db, bool *ok)
{
	struct gh_stmt *s = NULL;
	bool row = false;
	gh_err err;

	*ok = false;
	err = gh_db_prepare(db, "PRAGMA integrity_check", &s);
	if (err == GH_OK)
		err = gh_stmt_step(s, &row);
	if (err == GH_OK && row)
		*ok = strcmp(gh_stmt_text(s, 0), "ok") == 0;
	gh_stmt_free(s);
	return err;
}

static void
tenant_path(const char *dir, const char *org, char *out, size_t cap)
{
	struct gh_buf b;

	gh_buf_init(&b, PATH_MAX, 0);
	assert_int_equal(gh_store_sqlite_path(dir, REGION, org, &b), GH_OK);
	assert_true(gh_strlcpy(out, gh_buf_cstr(&b), cap));
	gh_buf_free(&b);
}

/* Reads a whole file; *len_out 0 and NULL if it does not exist. */
static uint8_t *
slurp(const char *path, size_t *len_out)
{
	struct stat sb;
	uint8_t *p;
	FILE *fp;

	*len_out = 0;
	fp = fopen(path, "rb");
	if (fp == NULL)
		return NULL;
	assert_int_equal(fstat(fileno(fp), &sb), 0);
	p = malloc((size_t)sb.st_size + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)sb.st_size, fp),
	    (size_t)sb.st_size);
	fclose(fp);
	*len_out = (size_t)sb.st_size;
	return p;
}

static void
spit(const char *path, const uint8_t *p, size_t n)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(p, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
}

static void
copy_file(const char *from, const char *to)
{
	uint8_t *p;
	size_t n;

	p = slurp(from, &n);
	if (p == NULL) {
		unlink(to);
		return;
	}
	spit(to, p, n);
	free(p);
}

static bool
contains(const uint8_t *hay, size_t n, const char *needle)
{
	return hay != NULL && memmem(hay, n, needle, strlen(needle)) != NULL;
}

/* ---- round trips and what lands on disk ---------------------------------- */

static void
test_rows_round_trip_through_reopen_on_the_encrypted_layout(void **state)
{
	struct fixture *f = *state;
	struct gh_db *db = NULL;
	char id[32];
	bool ok;

	open_store(f);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &db),
	    GH_OK);
	for (int i = 0; i < 50; i++) {
		snprintf(id, sizeof id, "u%d", i);
		assert_int_equal(insert_user(db, id, "name"), GH_OK);
	}
	assert_int_equal(must_int(db, "PRAGMA page_size"), GH_STORE_PAGE_SIZE);
	gh_db_release(db);
	reopen_store(f);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &db),
	    GH_OK);
	assert_int_equal(must_int(db, "SELECT COUNT(*) FROM users"), 50);
	assert_int_equal(must_int(db, "SELECT COUNT(*) FROM users WHERE "
	    "id = 'u49' AND display_name = 'name'"), 1);
	assert_int_equal(integrity(db, &ok), GH_OK);
	assert_true(ok);
	gh_db_release(db);
	/* The directory stays plain. */
	assert_int_equal(gh_store_directory(f->st, &db), GH_OK);
	assert_int_equal(must_int(db, "SELECT COUNT(*) FROM orgs"), 0);
	gh_db_release(db);
	assert_true(f->ring.calls > 0);
}

static const char *const secrets[] = {
	"correct-horse-battery-staple-7f3a",
	"alice.secret@example.org",
	"JBSWY3DPEHPK3PXP-totp-seed",
	"CREATE TABLE users",		/* the schema itself */
	"SQLite format 3",
};

static void
assert_no_plaintext(const char *db_path)
{
	char wal[PATH_MAX + 8];
	uint8_t *p;
	size_t n, i;

	snprintf(wal, sizeof wal, "%s-wal", db_path);
	p = slurp(db_path, &n);
	assert_non_null(p);
	assert_true(n > 0);
	for (i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
		assert_false(contains(p, n, secrets[i]));
	free(p);
	p = slurp(wal, &n);
	for (i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
		assert_false(contains(p, n, secrets[i]));
	free(p);
}

static void
test_raw_database_and_wal_hold_no_plaintext(void **state)
{
	struct fixture *f = *state;
	struct gh_db *db = NULL;
	char path[PATH_MAX], wal[PATH_MAX + 8], big[9000];
	uint8_t *p;
	size_t n;

	/* A long value spills onto overflow pages. */
	memset(big, 'z', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	memcpy(big + 4000, secrets[0], strlen(secrets[0]));
	open_store(f);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &db),
	    GH_OK);
	assert_int_equal(insert_user(db, "u1", secrets[0]), GH_OK);
	assert_int_equal(gh_db_run(db, "UPDATE users SET email = ? WHERE "
	    "id = 'u1'", "t", secrets[1]), GH_OK);
	assert_int_equal(insert_user(db, "u2", big), GH_OK);
	assert_int_equal(gh_db_run(db, "INSERT INTO settings (key, value, "
	    "updated_at) VALUES ('totp', ?, 0)", "t", secrets[2]), GH_OK);
	gh_db_release(db);

	/* While open: the rows are in the WAL. */
	tenant_path(f->dir, ORG_A, path, sizeof path);
	snprintf(wal, sizeof wal, "%s-wal", path);
	p = slurp(wal, &n);
	assert_non_null(p);
	assert_true(n > 4096);
	free(p);
	assert_no_plaintext(path);

	/* After close: checkpointed into the database file. */
	gh_store_free(f->st);
	f->st = NULL;
	assert_no_plaintext(path);

	/* And the rows are all there. */
	open_store(f);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &db),
	    GH_OK);
	assert_int_equal(must_int(db, "SELECT COUNT(*) FROM users WHERE "
	    "email = 'alice.secret@example.org'"), 1);
	assert_int_equal(must_int(db, "SELECT length(display_name) FROM users "
	    "WHERE id = 'u2'"), (int64_t)strlen(big));
	gh_db_release(db);
	/* Only the database, its WAL and its index exist: no journal or
	 * temporary file was ever left in the region directory. */
	{
		char rdir[PATH_MAX + 16];
		struct dirent *e;
		DIR *d;
		int count = 0;

		snprintf(rdir, sizeof rdir, "%s/%s", f->dir, REGION);
		d = opendir(rdir);
		assert_non_null(d);
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			assert_true(strstr(e->d_name, "-journal") == NULL);
			count++;
		}
		closedir(d);
		assert_true(count <= 3);
	}
}

/* Copies ORG_A's database and WAL (as found now) into dir2 as org. */
static void
copy_tenant(const struct fixture *f, const char *dir2, const char *org)
{
	char from[PATH_MAX], to[PATH_MAX], a[PATH_MAX + 8], b[PATH_MAX + 8];
	char rdir[PATH_MAX + 16];

	snprintf(rdir, sizeof rdir, "%s/%s", dir2, REGION);
	assert_true(mkdir(rdir, 0700) == 0 || errno == EEXIST);
	tenant_path(f->dir, ORG_A, from, sizeof from);
	tenant_path(dir2, org, to, sizeof to);
	copy_file(from, to);
	snprintf(a, sizeof a, "%s-wal", from);
	snprintf(b, sizeof b, "%s-wal", to);
	copy_file(a, b);
}

static void
test_a_copy_opens_only_with_the_right_key_and_org(void **state)
{
	struct fixture *f = *state;
	struct gh_store *st2;
	struct gh_db *db = NULL;
	struct keyring other;
	char dir2[PATH_MAX + 8];

	open_store(f);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &db),
	    GH_OK);
	for (int i = 0; i < 20; i++) {
		char id[16];

		snprintf(id, sizeof id, "u%d", i);
		assert_int_equal(insert_user(db, id, "x"), GH_OK);
	}
	gh_db_release(db);

	/* A copy taken while running (database + WAL). */
	snprintf(dir2, sizeof dir2, "%s/copy", f->dir);
	assert_int_equal(mkdir(dir2, 0700), 0);
	copy_tenant(f, dir2, ORG_A);

	/* The right key reads it (the control). */
	st2 = store_with(dir2, &f->ring);
	assert_int_equal(gh_store_tenant(st2, ORG_A, REGION, false, &db),
	    GH_OK);
	assert_int_equal(must_int(db, "SELECT COUNT(*) FROM users"), 20);
	gh_db_release(db);
	gh_store_free(st2);
	copy_tenant(f, dir2, ORG_A);

	/* Another key: nothing opens. */
	ring_init(&other, 99);
	st2 = store_with(dir2, &other);
	assert_int_equal(gh_store_tenant(st2, ORG_A, REGION, false, &db),
	    GH_ERR_STORE);
	assert_null(db);
	gh_store_free(st2);

	/* No key at all. */
	st2 = store_with(dir2, NULL);
	assert_int_equal(gh_store_tenant(st2, ORG_A, REGION, false, &db),
	    GH_ERR_STORE);
	gh_store_free(st2);

	/* The same bytes under another org's name: the org id is bound
	 * into every page. */
	copy_tenant(f, dir2, ORG_B);
	st2 = store_with(dir2, &f->ring);
	assert_int_equal(gh_store_tenant(st2, ORG_B, REGION, false, &db),
	    GH_ERR_STORE);
	gh_store_free(st2);
	pthread_mutex_destroy(&other.mu);
}

static void
test_plain_and_encrypted_databases_are_never_mixed_up(void **state)
{
	struct fixture *f = *state;
	struct gh_store *plain;
	struct gh_db *db = NULL;

	/* ORG_B plain, ORG_A encrypted. */
	plain = store_with(f->dir, NULL);
	assert_int_equal(gh_store_tenant(plain, ORG_B, REGION, true, &db),
	    GH_OK);
	assert_int_equal(insert_user(db, "u1", "plain"), GH_OK);
	gh_db_release(db);
	gh_store_free(plain);
	open_store(f);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &db),
	    GH_OK);
	gh_db_release(db);

	assert_int_equal(gh_store_tenant(f->st, ORG_B, REGION, false, &db),
	    GH_ERR_STORE);
	gh_store_free(f->st);
	f->st = NULL;
	plain = store_with(f->dir, NULL);
	assert_int_equal(gh_store_tenant(plain, ORG_A, REGION, false, &db),
	    GH_ERR_STORE);
	assert_int_equal(gh_store_tenant(plain, ORG_B, REGION, false, &db),
	    GH_OK);
	gh_db_release(db);
	/* Key operations need keys. */
	uint32_t v;
	assert_int_equal(gh_store_tenant_min_key_version(plain, ORG_A, REGION,
	    &v), GH_ERR_INVALID);
	assert_int_equal(gh_store_tenant_rekey(plain, ORG_A, REGION, NULL),
	    GH_ERR_INVALID);
	gh_store_free(plain);
}

/* ---- tampering ------------------------------------------------------------ */

/* Opens ORG_A and reads everything; GH_OK only if all pages read. */
static gh_err
read_everything(struct fixture *f)
{
	struct gh_store *st = store_with(f->dir, &f->ring);
	struct gh_db *db = NULL;
	gh_err err;
	bool ok = false;

	err = gh_store_tenant(st, ORG_A, REGION, false, &db);
	if (err == GH_OK) {
		err = integrity(db, &ok);
		if (err == GH_OK && !ok)
			err = GH_ERR_STORE;
		gh_db_release(db);
	}
	gh_store_free(st);
	return err;
}

static void
test_flipping_any_byte_of_any_page_makes_reads_fail(void **state)
{
	struct fixture *f = *state;
	struct gh_db *db = NULL;
	char path[PATH_MAX], wal[PATH_MAX + 8], id[16];
	uint8_t *orig, *p;
	size_t n, pg, npages;
	static const size_t offsets[] = { 0, 17, 2000, 4063, 4064, 4070,
	    4090 };

	open_store(f);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &db),
	    GH_OK);
	for (int i = 0; i < 200; i++) {
		snprintf(id, sizeof id, "u%d", i);
		assert_int_equal(insert_user(db, id, "some name"), GH_OK);
	}
	gh_db_release(db);
	gh_store_free(f->st);	/* checkpoints: all in the file */
	f->st = NULL;
	tenant_path(f->dir, ORG_A, path, sizeof path);
	snprintf(wal, sizeof wal, "%s-wal", path);
	assert_int_equal(access(wal, F_OK), -1);
	orig = slurp(path, &n);
	assert_non_null(orig);
	npages = n / GH_STORE_PAGE_SIZE;
	assert_true(npages >= 4);
	assert_int_equal(read_everything(f), GH_OK);

	p = malloc(n);
	assert_non_null(p);
	for (pg = 0; pg < npages; pg++) {
		/* Body, version, nonce and tag: a different spot each page. */
		size_t at = pg * GH_STORE_PAGE_SIZE +
		    offsets[pg % (sizeof offsets / sizeof offsets[0])];

		memcpy(p, orig, n);
		p[at] ^= 0x01;
		spit(path, p, n);
		assert_int_not_equal(read_everything(f), GH_OK);
	}
	/* Two pages swapped: each is authentic, but not at that place. */
	memcpy(p, orig, n);
	memcpy(p + 2 * GH_STORE_PAGE_SIZE, orig + 3 * GH_STORE_PAGE_SIZE,
	    GH_STORE_PAGE_SIZE);
	memcpy(p + 3 * GH_STORE_PAGE_SIZE, orig + 2 * GH_STORE_PAGE_SIZE,
	    GH_STORE_PAGE_SIZE);
	spit(path, p, n);
	assert_int_not_equal(read_everything(f), GH_OK);
	/* A truncated page. */
	spit(path, orig, n - 100);
	assert_int_not_equal(read_everything(f), GH_OK);
	/* The original still reads. */
	spit(path, orig, n);
	assert_int_equal(read_everything(f), GH_OK);
	free(p);
	free(orig);
}

static void
test_a_tampered_wal_frame_fails_the_read(void **state)
{
	struct fixture *f = *state;
	struct gh_db *db = NULL;
	char path[PATH_MAX], wal[PATH_MAX + 8], walcopy[PATH_MAX + 16];
	char dbcopy[PATH_MAX + 16];
	uint8_t *p;
	size_t n;

	open_store(f);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &db),
	    GH_OK);
	assert_int_equal(insert_user(db, "u1", "before"), GH_OK);
	gh_db_release(db);
	gh_store_free(f->st);
	f->st = NULL;
	/* Now one committed transaction lives only in the WAL. */
	open_store(f);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &db),
	    GH_OK);
	assert_int_equal(insert_user(db, "u2", "in the wal"), GH_OK);
	tenant_path(f->dir, ORG_A, path, sizeof path);
	snprintf(wal, sizeof wal, "%s-wal", path);
	snprintf(walcopy, sizeof walcopy, "%s.copy-wal", path);
	snprintf(dbcopy, sizeof dbcopy, "%s.copy", path);
	copy_file(path, dbcopy);
	copy_file(wal, walcopy);
	gh_db_release(db);
	gh_store_free(f->st);
	f->st = NULL;

	/* Restore the crash-consistent copy with a flipped byte in the
	 * page image of the last frame (the commit frame). */
	copy_file(dbcopy, path);
	p = slurp(walcopy, &n);
	assert_non_null(p);
	assert_true(n >= 32 + 4120);
	p[n - 1000] ^= 0x80;
	spit(wal, p, n);
	free(p);
	{
		/* Recovery ends the log before the bad frame, so the
		 * transaction is gone but nothing unauthentic is served. */
		struct gh_store *st = store_with(f->dir, &f->ring);
		gh_err err = gh_store_tenant(st, ORG_A, REGION, false, &db);

		if (err == GH_OK) {
			int64_t v;

			err = query_int(db, "SELECT COUNT(*) FROM users "
			    "WHERE id = 'u2'", &v);
			assert_true(err != GH_OK || v == 0);
			assert_int_equal(must_int(db, "SELECT COUNT(*) FROM "
			    "users WHERE id = 'u1'"), 1);
			gh_db_release(db);
		}
		gh_store_free(st);
	}
	unlink(dbcopy);
	unlink(walcopy);
}

/* ---- keys: rotation, eviction, refusal ------------------------------------ */

static void
test_rekey_moves_every_page_to_the_newest_key(void **state)
{
	struct fixture *f = *state;
	struct gh_db *db = NULL;
	uint32_t v = 0;
	int64_t pages = 0;
	char id[16];

	open_store(f);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &db),
	    GH_OK);
	for (int i = 0; i < 300; i++) {
		snprintf(id, sizeof id, "u%d", i);
		assert_int_equal(insert_user(db, id, "rotated"), GH_OK);
	}
	gh_db_release(db);
	assert_int_equal(gh_store_tenant_min_key_version(f->st, ORG_A, REGION,
	    &v), GH_OK);
	assert_int_equal(v, 1);

	/* Version 2 arrives; new writes use it once connections reopen. */
	ring_set(&f->ring, 2, GH_OK);
	gh_store_tenant_evict(f->st, ORG_A);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &db),
	    GH_OK);
	assert_int_equal(insert_user(db, "new", "under v2"), GH_OK);
	gh_db_release(db);
	assert_int_equal(gh_store_tenant_min_key_version(f->st, ORG_A, REGION,
	    &v), GH_OK);
	assert_int_equal(v, 1);

	assert_int_equal(gh_store_tenant_rekey(f->st, ORG_A, REGION, &pages),
	    GH_OK);
	assert_true(pages > 3);
	assert_int_equal(gh_store_tenant_min_key_version(f->st, ORG_A, REGION,
	    &v), GH_OK);
	assert_int_equal(v, 2);
	/* Re-running is harmless. */
	assert_int_equal(gh_store_tenant_rekey(f->st, ORG_A, REGION, NULL),
	    GH_OK);

	/* Version 1 can go: everything still reads. */
	pthread_mutex_lock(&f->ring.mu);
	f->ring.destroyed[1] = true;
	pthread_mutex_unlock(&f->ring.mu);
	reopen_store(f);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &db),
	    GH_OK);
	assert_int_equal(must_int(db, "SELECT COUNT(*) FROM users"), 301);
	bool ok;
	assert_int_equal(integrity(db, &ok), GH_OK);
	assert_true(ok);
	gh_db_release(db);
}

static void
test_pages_under_an_older_key_read_after_rotation(void **state)
{
	struct fixture *f = *state;
	struct gh_db *db = NULL;

	open_store(f);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &db),
	    GH_OK);
	assert_int_equal(insert_user(db, "u1", "v1"), GH_OK);
	gh_db_release(db);
	ring_set(&f->ring, 3, GH_OK);
	reopen_store(f);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &db),
	    GH_OK);
	assert_int_equal(insert_user(db, "u2", "v3"), GH_OK);
	assert_int_equal(must_int(db, "SELECT COUNT(*) FROM users"), 2);
	gh_db_release(db);
	/* Destroying version 1 while pages need it makes them fail. */
	pthread_mutex_lock(&f->ring.mu);
	f->ring.destroyed[1] = true;
	pthread_mutex_unlock(&f->ring.mu);
	reopen_store(f);
	assert_int_not_equal(read_everything(f), GH_OK);
}

static void
test_after_eviction_denied_or_destroyed_keys_keep_the_tenant_closed(
    void **state)
{
	struct fixture *f = *state;
	struct gh_db *db = NULL, *held = NULL;
	char path[PATH_MAX];

	open_store(f);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &db),
	    GH_OK);
	assert_int_equal(insert_user(db, "u1", "x"), GH_OK);
	gh_db_release(db);

	/* A revoked customer key: cached connections still hold the key
	 * until evicted. */
	ring_set(&f->ring, 1, GH_ERR_DENIED);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &db),
	    GH_OK);
	gh_db_release(db);
	gh_store_tenant_evict(f->st, ORG_A);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &db),
	    GH_ERR_DENIED);
	assert_null(db);

	/* Restored, then destroyed (crypto-shredding). */
	ring_set(&f->ring, 1, GH_OK);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &held),
	    GH_OK);
	ring_set(&f->ring, 1, GH_ERR_NOTFOUND);
	/* evict waits for the held handle; release it from here first. */
	gh_db_release(held);
	gh_store_tenant_evict(f->st, ORG_A);
	assert_int_equal(gh_store_open_count(f->st), 1);	/* directory */
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &db),
	    GH_ERR_NOTFOUND);
	/* A new org whose keys are unavailable gets no file at all. */
	assert_int_equal(gh_store_tenant(f->st, ORG_B, REGION, true, &db),
	    GH_ERR_NOTFOUND);
	tenant_path(f->dir, ORG_B, path, sizeof path);
	assert_int_equal(access(path, F_OK), -1);
}

struct evict_arg {
	struct gh_store *st;
	atomic_int done;
};

static void *
evict_worker(void *arg)
{
	struct evict_arg *a = arg;

	gh_store_tenant_evict(a->st, ORG_A);
	atomic_store(&a->done, 1);
	return NULL;
}

static void
test_evict_waits_for_handles_in_use_and_closes_them(void **state)
{
	struct fixture *f = *state;
	struct gh_db *held = NULL, *db = NULL;
	struct timespec ts = { 0, 150 * 1000 * 1000 };
	struct evict_arg a;
	pthread_t t;

	open_store(f);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &held),
	    GH_OK);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &db),
	    GH_OK);
	gh_db_release(db);
	assert_int_equal(gh_store_open_count(f->st), 3);
	a.st = f->st;
	atomic_init(&a.done, 0);
	assert_int_equal(pthread_create(&t, NULL, evict_worker, &a), 0);
	nanosleep(&ts, NULL);
	assert_int_equal(atomic_load(&a.done), 0);
	assert_int_equal(gh_store_open_count(f->st), 2);	/* idle closed */
	assert_int_equal(insert_user(held, "u1", "still works"), GH_OK);
	gh_db_release(held);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&a.done), 1);
	assert_int_equal(gh_store_open_count(f->st), 1);
}

static gh_err
bad_version_key(void *arg, const char *org_id, uint32_t version,
    uint32_t *version_out, uint8_t key[32])
{
	(void)arg;
	(void)org_id;
	(void)version;
	memset(key, 7, 32);
	*version_out = 0;
	return GH_OK;
}

static void
test_a_zero_key_or_version_from_the_callback_is_refused(void **state)
{
	struct fixture *f = *state;
	struct gh_db *db = NULL;

	open_store(f);
	f->ring.zero_key = true;
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &db),
	    GH_ERR_CRYPTO);
	f->ring.zero_key = false;
	gh_store_set_keys(f->st, &(struct gh_store_keys){ bad_version_key,
	    NULL });
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &db),
	    GH_ERR_CRYPTO);
	/* Malformed names never reach the file system. */
	uint32_t v;
	assert_int_equal(gh_store_tenant_min_key_version(f->st, "../x",
	    REGION, &v), GH_ERR_INVALID);
	assert_int_equal(gh_store_tenant_rekey(f->st, ORG_A, "../x", NULL),
	    GH_ERR_INVALID);
	/* A missing tenant (with working keys: the scan goes through a
	 * connection, and a bad key refuses that first). */
	gh_store_set_keys(f->st, &(struct gh_store_keys){ ring_page_key,
	    &f->ring });
	assert_int_equal(gh_store_tenant_min_key_version(f->st, ORG_A,
	    REGION, &v), GH_ERR_NOTFOUND);
}

/* ---- SQLite features that would want temporary files --------------------- */

static void
test_big_sorts_indexes_and_vacuum_need_no_temporary_file(void **state)
{
	struct fixture *f = *state;
	struct gh_db *db = NULL;
	bool ok;

	open_store(f);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &db),
	    GH_OK);
	/* ~12 MB of rows: more than the page cache, so a sorter would
	 * spill to disk if it could. */
	assert_int_equal(gh_db_exec(db, "WITH RECURSIVE n(i) AS (SELECT 1 "
	    "UNION ALL SELECT i + 1 FROM n WHERE i < 30000) INSERT INTO users "
	    "(id, username, username_key, display_name, state, role, "
	    "created_at, updated_at) SELECT 'u' || i, 'u' || i, 'u' || i, "
	    "hex(randomblob(200)), 'active', 'member', i, i FROM n"), GH_OK);
	assert_int_equal(must_int(db, "SELECT COUNT(*) FROM (SELECT "
	    "display_name FROM users ORDER BY display_name DESC)"), 30000);
	assert_int_equal(gh_db_exec(db, "CREATE INDEX users_dn ON users "
	    "(display_name)"), GH_OK);
	assert_int_equal(gh_db_exec(db, "DELETE FROM users WHERE created_at "
	    "% 2 = 0"), GH_OK);
	assert_int_equal(gh_db_exec(db, "VACUUM"), GH_OK);
	assert_int_equal(must_int(db, "SELECT COUNT(*) FROM users"), 15000);
	assert_int_equal(integrity(db, &ok), GH_OK);
	assert_true(ok);
	gh_db_release(db);
	reopen_store(f);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &db),
	    GH_OK);
	assert_int_equal(integrity(db, &ok), GH_OK);
	assert_true(ok);
	gh_db_release(db);
}

/* ---- crash safety --------------------------------------------------------- */

#define CRASH_ROUNDS 4

/*
 * The child writes transactions of a few rows (some spilling onto
 * overflow pages) and reports each committed transaction's number on the
 * pipe after the commit returns.
 */
static void
crash_child(struct fixture *f, int round, int fd)
{
	struct gh_store *st = NULL;
	struct gh_db *db = NULL;
	char id[48], big[6000];

	memset(big, 'q', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	if (gh_store_open(f->dir, true, &st) != GH_OK)
		_exit(2);
	gh_store_set_keys(st, &(struct gh_store_keys){ ring_page_key,
	    &f->ring });
	for (int32_t t = 0;; t++) {
		if (gh_store_tenant(st, ORG_A, REGION, true, &db) != GH_OK)
			_exit(3);
		if (gh_db_begin(db) != GH_OK)
			_exit(4);
		for (int i = 0; i < 4; i++) {
			snprintf(id, sizeof id, "r%d-t%d-%d", round, (int)t, i);
			if (insert_user(db, id, i == 0 ? big : "small") !=
			    GH_OK)
				_exit(5);
		}
		if (gh_db_commit(db) != GH_OK)
			_exit(6);
		gh_db_release(db);
		if (write(fd, &t, sizeof t) != sizeof t)
			_exit(7);
	}
}

static void
test_a_writer_killed_mid_write_loses_no_committed_row(void **state)
{
	struct fixture *f = *state;
	struct gh_db *db = NULL;
	int64_t expect = 0;
	bool ok;

	for (int round = 0; round < CRASH_ROUNDS; round++) {
		int32_t t, last = -1;
		int fds[2], status;
		pid_t pid;

		assert_int_equal(pipe(fds), 0);
		fflush(NULL);
		pid = fork();
		assert_true(pid != -1);
		if (pid == 0) {
			close(fds[0]);
			crash_child(f, round, fds[1]);
			_exit(0);
		}
		close(fds[1]);
		/* Let it commit a varying number of transactions. */
		while (read(fds[0], &t, sizeof t) == sizeof t) {
			last = t;
			if (t >= 40 + round * 37)
				break;
		}
		kill(pid, SIGKILL);
		while (read(fds[0], &t, sizeof t) == sizeof t)
			last = t;
		close(fds[0]);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		assert_true(last >= 0);

		/* Every reported transaction is there, whole. */
		open_store(f);
		assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false,
		    &db), GH_OK);
		assert_int_equal(integrity(db, &ok), GH_OK);
		assert_true(ok);
		{
			char sql[160];
			int64_t n;

			snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM users "
			    "WHERE id LIKE 'r%d-t%%'", round);
			n = must_int(db, sql);
			/* At most the one transaction in flight may also
			 * have committed before its report. */
			assert_true(n == 4 * (int64_t)(last + 1) ||
			    n == 4 * (int64_t)(last + 2));
			expect += n;
			for (int32_t i = 0; i <= last; i++) {
				snprintf(sql, sizeof sql, "SELECT COUNT(*) "
				    "FROM users WHERE id = 'r%d-t%d-0' AND "
				    "length(display_name) = 5999", round,
				    (int)i);
				assert_int_equal(must_int(db, sql), 1);
			}
		}
		assert_int_equal(must_int(db, "SELECT COUNT(*) FROM users"),
		    expect);
		gh_db_release(db);
		gh_store_free(f->st);
		f->st = NULL;
	}
}

/* ---- threads -------------------------------------------------------------- */

#define N_THREADS 4
#define N_INSERTS 200

struct worker {
	struct gh_store *st;
	int n;
	atomic_int *failures;
};

static void *
insert_worker(void *arg)
{
	struct worker *w = arg;
	struct gh_db *db;
	char id[32];

	for (int i = 0; i < N_INSERTS; i++) {
		snprintf(id, sizeof id, "t%d-%d", w->n, i);
		if (gh_store_tenant(w->st, ORG_A, REGION, true, &db) != GH_OK) {
			atomic_fetch_add(w->failures, 1);
			continue;
		}
		if (insert_user(db, id, id) != GH_OK)
			atomic_fetch_add(w->failures, 1);
		/* Readers too, so pages move between WAL and file while
		 * others write. */
		if (i % 50 == 0) {
			int64_t v;

			if (query_int(db, "SELECT COUNT(*) FROM users", &v) !=
			    GH_OK)
				atomic_fetch_add(w->failures, 1);
		}
		gh_db_release(db);
	}
	return NULL;
}

static void
test_four_threads_write_concurrently_through_the_pool(void **state)
{
	struct fixture *f = *state;
	struct worker w[N_THREADS];
	pthread_t t[N_THREADS];
	atomic_int failures = 0;
	struct gh_db *db = NULL;
	bool ok;
	int i;

	open_store(f);
	for (i = 0; i < N_THREADS; i++) {
		w[i] = (struct worker){ f->st, i, &failures };
		assert_int_equal(pthread_create(&t[i], NULL, insert_worker,
		    &w[i]), 0);
	}
	for (i = 0; i < N_THREADS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&failures), 0);
	reopen_store(f);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &db),
	    GH_OK);
	assert_int_equal(must_int(db, "SELECT COUNT(*) FROM users"),
	    N_THREADS * N_INSERTS);
	assert_int_equal(integrity(db, &ok), GH_OK);
	assert_true(ok);
	gh_db_release(db);
}

static void
test_two_processes_creating_one_encrypted_tenant_both_succeed(void **state)
{
	struct fixture *f = *state;
	struct gh_store *st;
	struct gh_db *db = NULL;
	pid_t pid[2];
	int status, i;

	/* The directory first, so only the tenant's creation races. */
	gh_store_free(store_with(f->dir, NULL));
	fflush(NULL);
	for (i = 0; i < 2; i++) {
		pid[i] = fork();
		assert_true(pid[i] != -1);
		if (pid[i] == 0) {
			char id[8];

			st = store_with(f->dir, &f->ring);
			snprintf(id, sizeof id, "p%d", i);
			if (gh_store_tenant(st, ORG_A, REGION, true, &db) !=
			    GH_OK || insert_user(db, id, "racer") != GH_OK)
				_exit(1);
			gh_db_release(db);
			gh_store_free(st);
			_exit(0);
		}
	}
	for (i = 0; i < 2; i++) {
		assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	open_store(f);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &db),
	    GH_OK);
	assert_int_equal(must_int(db, "SELECT COUNT(*) FROM users"), 2);
	assert_int_equal(must_int(db, "SELECT COUNT(*) FROM "
	    "schema_migrations"), must_int(db, "SELECT MAX(version) FROM "
	    "schema_migrations"));
	gh_db_release(db);
}

static void
test_rekey_with_a_handle_held_does_not_wait_for_it(void **state)
{
	struct fixture *f = *state;
	struct gh_db *held = NULL;
	uint32_t v;

	open_store(f);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &held),
	    GH_OK);
	assert_int_equal(insert_user(held, "u1", "x"), GH_OK);
	ring_set(&f->ring, 2, GH_OK);
	assert_int_equal(gh_store_tenant_rekey(f->st, ORG_A, REGION, NULL),
	    GH_OK);
	assert_int_equal(gh_store_tenant_min_key_version(f->st, ORG_A, REGION,
	    &v), GH_OK);
	assert_int_equal(v, 2);
	/* The held handle still works and is retired on release; what stays
	 * open is the directory's connection and the tenant connection the
	 * scan used, under the current keys. */
	assert_int_equal(must_int(held, "SELECT COUNT(*) FROM users"), 1);
	gh_db_release(held);
	assert_int_equal(gh_store_open_count(f->st), 2);
}

/* ---- measurement (printed, not asserted) ---------------------------------- */

static double
insert_rate(const char *dir, struct keyring *ring, const char *org, int n,
    bool one_txn)
{
	struct gh_store *st = store_with(dir, ring);
	struct gh_db *db = NULL;
	uint64_t t0;
	char id[32];

	assert_int_equal(gh_store_tenant(st, org, REGION, true, &db), GH_OK);
	t0 = gh_mono_ns();
	if (one_txn)
		assert_int_equal(gh_db_begin(db), GH_OK);
	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof id, "%c%d", one_txn ? 'b' : 'a', i);
		assert_int_equal(insert_user(db, id, "a display name of "
		    "moderate length for the benchmark"), GH_OK);
	}
	if (one_txn)
		assert_int_equal(gh_db_commit(db), GH_OK);
	t0 = gh_mono_ns() - t0;
	gh_db_release(db);
	gh_store_free(st);
	return (double)n / ((double)t0 / 1e9);
}

static double
best(double a, double b)
{
	return a > b ? a : b;
}

static void
test_print_insert_rates_with_and_without_encryption(void **state)
{
	struct fixture *f = *state;
	double pa = 0, ca = 0, pb = 0, cb = 0;
	char org[GH_ID_LEN + 1];

	/* Interleaved and repeated, best of three: the autocommit case is
	 * bound by fsync and noisy. */
	for (int round = 0; round < 3; round++) {
		assert_int_equal(gh_id_new(org), GH_OK);
		pa = best(pa, insert_rate(f->dir, NULL, org, 500, false));
		assert_int_equal(gh_id_new(org), GH_OK);
		ca = best(ca, insert_rate(f->dir, &f->ring, org, 500, false));
		assert_int_equal(gh_id_new(org), GH_OK);
		pb = best(pb, insert_rate(f->dir, NULL, org, 30000, true));
		assert_int_equal(gh_id_new(org), GH_OK);
		cb = best(cb, insert_rate(f->dir, &f->ring, org, 30000, true));
	}
	printf("# insert rate, autocommit (fsync per commit): plain %.0f/s, "
	    "encrypted %.0f/s (%+.1f%%)\n", pa, ca, 100.0 * (ca / pa - 1.0));
	printf("# insert rate, one transaction of 30000 rows: plain %.0f/s, "
	    "encrypted %.0f/s (%+.1f%%)\n", pb, cb, 100.0 * (cb / pb - 1.0));
}

/*
 * Whether another process finds this one holding a lock on the database
 * file's shared-lock range (SQLite's unix VFS: bytes after PENDING_BYTE,
 * 0x40000000): 1 yes, 0 no, 2 the child failed.
 */
static int
lock_seen_from_outside(const char *path)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			.l_start = 0x40000000 + 2, .l_len = 510 };
		int fd = open(path, O_RDWR | O_CLOEXEC);

		if (fd == -1 || fcntl(fd, F_GETLK, &fl) == -1)
			_exit(2);
		_exit(fl.l_type == F_UNLCK ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/*
 * A WAL-mode connection keeps a shared lock on the database file; the
 * last connection of any process to close takes it exclusively and
 * deletes the WAL. POSIX locks belong to the process and go when it
 * closes ANY descriptor of the file, so opening another connection must
 * not open and close a descriptor of its own (it once did, to check the
 * file's format): the locks would vanish, another process's last close
 * would delete the WAL, and this process's later commits would go to an
 * unlinked file that no reader sees.
 */
static void
test_opening_a_second_connection_keeps_the_process_locks(void **state)
{
	struct fixture *f = *state;
	struct gh_db *db1 = NULL, *db2 = NULL;
	char path[PATH_MAX];
	int before, after;
	gh_err err;

	open_store(f);
	tenant_path(f->dir, ORG_A, path, sizeof path);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &db1),
	    GH_OK);
	assert_int_equal(insert_user(db1, "u1", "one"), GH_OK);
	before = lock_seen_from_outside(path);
	/* db1 is held, so this opens a second connection. */
	err = gh_store_tenant(f->st, ORG_A, REGION, false, &db2);
	after = lock_seen_from_outside(path);
	gh_db_release(db2);
	gh_db_release(db1);
	assert_int_equal(err, GH_OK);
	assert_int_equal(before, 1);
	assert_int_equal(after, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_rows_round_trip_through_reopen_on_the_encrypted_layout),
		T(test_raw_database_and_wal_hold_no_plaintext),
		T(test_a_copy_opens_only_with_the_right_key_and_org),
		T(test_plain_and_encrypted_databases_are_never_mixed_up),
		T(test_flipping_any_byte_of_any_page_makes_reads_fail),
		T(test_a_tampered_wal_frame_fails_the_read),
		T(test_rekey_moves_every_page_to_the_newest_key),
		T(test_pages_under_an_older_key_read_after_rotation),
		T(test_after_eviction_denied_or_destroyed_keys_keep_the_tenant_closed),
		T(test_evict_waits_for_handles_in_use_and_closes_them),
		T(test_a_zero_key_or_version_from_the_callback_is_refused),
		T(test_big_sorts_indexes_and_vacuum_need_no_temporary_file),
		T(test_a_writer_killed_mid_write_loses_no_committed_row),
		T(test_four_threads_write_concurrently_through_the_pool),
		T(test_two_processes_creating_one_encrypted_tenant_both_succeed),
		T(test_rekey_with_a_handle_held_does_not_wait_for_it),
		T(test_opening_a_second_connection_keeps_the_process_locks),
		T(test_print_insert_rates_with_and_without_encryption),
#undef T
	};

	return cmocka_run_group_tests_name("store_crypt", tests, NULL, NULL);
}
