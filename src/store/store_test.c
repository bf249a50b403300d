/*
 * store_test.c: unit tests for the store: layout, validation, migrations,
 * tenant isolation, error mapping, transactions and the connection pool.
 * Each test works in its own mkdtemp data directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
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

#include "store/migrations.h"
#include "store/store_int.h"

#define ORG_A "0123456789abcdef0123456789abcdef"
#define ORG_B "fedcba9876543210fedcba9876543210"
#define REGION "eu-west"

struct fixture {
	char dir[PATH_MAX];
	struct gh_store *st;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	const char *tmp = getenv("TMPDIR");

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof f->dir, "%s/gh-store-test-XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
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

static int
teardown(void **state)
{
	struct fixture *f = *state;

	gh_store_free(f->st);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void
open_store(struct fixture *f, bool create)
{
	assert_int_equal(gh_store_open(f->dir, create, &f->st), GH_OK);
	assert_non_null(f->st);
}

static void
reopen_store(struct fixture *f)
{
	gh_store_free(f->st);
	f->st = NULL;
	open_store(f, false);
}

static gh_err
insert_user(struct gh_db *db, const char *id, const char *username)
{
	return gh_db_run(db, "INSERT INTO users (id, username, username_key, "
	    "state, role, created_at, updated_at) "
	    "VALUES (?, ?, ?, 'active', 'member', ?, ?)", "tttii", id,
	    username, username, (int64_t)1000, (int64_t)1000);
}

static int64_t
query_int(struct gh_db *db, const char *sql)
{
	struct gh_stmt *s = NULL;
	bool row = false;
	int64_t v;

	assert_int_equal(gh_db_prepare(db, sql, &s), GH_OK);
	assert_int_equal(gh_stmt_step(s, &row), GH_OK);
	assert_true(row);
	v = gh_stmt_int(s, 0);
	gh_stmt_free(s);
	return v;
}

static int64_t
count_users(struct gh_db *db)
{
	return query_int(db, "SELECT COUNT(*) FROM users");
}

static void
tenant_path(const struct fixture *f, const char *org, char *out, size_t cap)
{
	struct gh_buf b;

	gh_buf_init(&b, PATH_MAX, 0);
	assert_int_equal(gh_store_sqlite_path(f->dir, REGION, org, &b), GH_OK);
	assert_true(gh_strlcpy(out, gh_buf_cstr(&b), cap));
	gh_buf_free(&b);
}

/* Names in the data directory other than directory.db and its -wal/-shm. */
static int
count_foreign_entries(const char *dir)
{
	struct dirent *e;
	DIR *d = opendir(dir);
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (strncmp(e->d_name, "directory.db", 12) == 0)
			continue;
		n++;
	}
	closedir(d);
	return n;
}

/* Runs fn in a child and expects it to abort (GH_PANIC). */
static void
expect_panic(struct fixture *f, void (*fn)(struct fixture *))
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		/* cmocka catches SIGABRT in the runner; the child must die. */
		signal(SIGABRT, SIG_DFL);
		fn(f);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

/* ---- layout, validation, migrations -------------------------------------- */

static void
test_open_without_create_on_an_empty_data_dir_is_notfound(void **state)
{
	struct fixture *f = *state;
	struct gh_store *st = NULL;
	char missing[PATH_MAX + 16];

	assert_int_equal(gh_store_open(f->dir, false, &st), GH_ERR_NOTFOUND);
	assert_null(st);
	assert_int_equal(count_foreign_entries(f->dir), 0);
	snprintf(missing, sizeof missing, "%s/nope", f->dir);
	assert_int_equal(gh_store_open(missing, true, &st), GH_ERR_NOTFOUND);
	assert_null(st);
}

static void
test_migrations_are_applied_to_both_kinds_and_reopening_is_idempotent(
    void **state)
{
	struct fixture *f = *state;
	struct gh_db *db = NULL;

	open_store(f, true);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(gh_store_directory(f->st, &db), GH_OK);
		assert_null(gh_db_org_id(db));
		assert_int_equal(query_int(db,
		    "SELECT COUNT(*) FROM schema_migrations"),
		    (int64_t)gh_migrations_directory_len);
		assert_int_equal(query_int(db,
		    "SELECT MAX(version) FROM schema_migrations"),
		    (int64_t)gh_migrations_directory_len);
		assert_int_equal(query_int(db, "SELECT COUNT(*) FROM orgs"), 0);
		gh_db_release(db);

		assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION,
		    round == 0, &db), GH_OK);
		assert_string_equal(gh_db_org_id(db), ORG_A);
		assert_int_equal(query_int(db,
		    "SELECT COUNT(*) FROM schema_migrations"),
		    (int64_t)gh_migrations_tenant_len);
		assert_int_equal(count_users(db), 0);
		assert_int_equal(query_int(db,
		    "SELECT COUNT(*) FROM audit_events"), 0);
		gh_db_release(db);
		reopen_store(f);
	}
}

static void
test_connections_use_wal_full_sync_foreign_keys_and_no_trusted_schema(
    void **state)
{
	struct fixture *f = *state;
	struct gh_db *db = NULL;
	struct gh_stmt *s = NULL;
	bool row;

	open_store(f, true);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &db),
	    GH_OK);
	assert_int_equal(gh_db_prepare(db, "PRAGMA journal_mode", &s), GH_OK);
	assert_int_equal(gh_stmt_step(s, &row), GH_OK);
	assert_true(row);
	assert_string_equal(gh_stmt_text(s, 0), "wal");
	gh_stmt_free(s);
	assert_int_equal(query_int(db, "PRAGMA synchronous"), 2);
	assert_int_equal(query_int(db, "PRAGMA foreign_keys"), 1);
	assert_int_equal(query_int(db, "PRAGMA trusted_schema"), 0);
	gh_db_release(db);
}

static void
test_tenant_handle_cannot_see_other_tenant_rows(void **state)
{
	struct fixture *f = *state;
	struct gh_db *a = NULL, *b = NULL;
	char pa[PATH_MAX], pb[PATH_MAX], region_dir[PATH_MAX + 16];
	struct stat sa, sb;

	open_store(f, true);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &a),
	    GH_OK);
	assert_int_equal(insert_user(a, "u1", "alice"), GH_OK);
	assert_int_equal(gh_db_changes(a), 1);
	assert_int_equal(count_users(a), 1);
	gh_db_release(a);

	assert_int_equal(gh_store_tenant(f->st, ORG_B, REGION, true, &b),
	    GH_OK);
	assert_int_equal(count_users(b), 0);
	/* The same key is free in B: these are separate databases. */
	assert_int_equal(insert_user(b, "u1", "alice"), GH_OK);
	gh_db_release(b);

	tenant_path(f, ORG_A, pa, sizeof pa);
	tenant_path(f, ORG_B, pb, sizeof pb);
	assert_string_not_equal(pa, pb);
	assert_int_equal(stat(pa, &sa), 0);
	assert_int_equal(stat(pb, &sb), 0);
	assert_true(sa.st_ino != sb.st_ino);
	assert_int_equal(sa.st_mode & 0777, 0600);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(region_dir, sizeof region_dir, "%s/%s", f->dir, REGION);
	assert_int_equal(stat(region_dir, &sa), 0);
	assert_int_equal(sa.st_mode & 0777, 0700);
}

static void
test_invalid_org_id_or_region_is_refused_and_creates_nothing(void **state)
{
	static const char *const bad_orgs[] = {
		"../x",
		"0123456789ABCDEF0123456789ABCDEF",
		"0123456789abcdef",
		"0123456789abcdef0123456789abcdef0",
		"../../../../../../../tmp/0123456789abcdef012345",
		"",
	};
	static const char *const bad_regions[] = {
		"", "EU", "1eu", "-eu", "eu/west", "..", "eu_west",
		"a123456789012345678901234567890123",
	};
	struct fixture *f = *state;
	struct gh_db *db;
	size_t i;

	open_store(f, true);
	for (i = 0; i < sizeof bad_orgs / sizeof bad_orgs[0]; i++) {
		db = (struct gh_db *)1;
		assert_int_equal(gh_store_tenant(f->st, bad_orgs[i], REGION,
		    true, &db), GH_ERR_INVALID);
		assert_null(db);
	}
	assert_int_equal(gh_store_tenant(f->st, NULL, REGION, true, &db),
	    GH_ERR_INVALID);
	for (i = 0; i < sizeof bad_regions / sizeof bad_regions[0]; i++) {
		assert_false(gh_store_region_valid(bad_regions[i]));
		assert_int_equal(gh_store_tenant(f->st, ORG_A, bad_regions[i],
		    true, &db), GH_ERR_INVALID);
	}
	assert_int_equal(gh_store_tenant(f->st, ORG_A, NULL, true, &db),
	    GH_ERR_INVALID);
	assert_int_equal(count_foreign_entries(f->dir), 0);

	assert_true(gh_store_region_valid("eu-west"));
	assert_true(gh_store_region_valid("a"));
	assert_true(gh_store_region_valid("a1234567890123456789012345678901"));
}

static void
test_missing_tenant_without_create_is_notfound(void **state)
{
	struct fixture *f = *state;
	struct gh_db *db = NULL;
	char p[PATH_MAX];
	struct stat sb;

	open_store(f, true);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &db),
	    GH_ERR_NOTFOUND);
	assert_null(db);
	tenant_path(f, ORG_A, p, sizeof p);
	assert_int_equal(stat(p, &sb), -1);

	/* Once created, create=false finds it, also after a reopen. */
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &db),
	    GH_OK);
	gh_db_release(db);
	reopen_store(f);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &db),
	    GH_OK);
	gh_db_release(db);
}

static void
test_database_claiming_a_newer_schema_is_refused(void **state)
{
	struct fixture *f = *state;
	struct gh_db *db = NULL;
	struct gh_store *st = NULL;
	char p[PATH_MAX], dirdb[PATH_MAX + 16];
	sqlite3 *raw;

	open_store(f, true);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &db),
	    GH_OK);
	gh_db_release(db);
	gh_store_free(f->st);
	f->st = NULL;

	tenant_path(f, ORG_A, p, sizeof p);
	assert_int_equal(sqlite3_open(p, &raw), SQLITE_OK);
	assert_int_equal(sqlite3_exec(raw, "INSERT INTO schema_migrations "
	    "VALUES (9999, '9999_future.sql', 0)", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(raw);

	open_store(f, false);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &db),
	    GH_ERR_STORE);
	assert_null(db);
	gh_store_free(f->st);
	f->st = NULL;

	snprintf(dirdb, sizeof dirdb, "%s/directory.db", f->dir);
	assert_int_equal(sqlite3_open(dirdb, &raw), SQLITE_OK);
	assert_int_equal(sqlite3_exec(raw, "INSERT INTO schema_migrations "
	    "VALUES (9999, '9999_future.sql', 0)", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(raw);
	assert_int_equal(gh_store_open(f->dir, false, &st), GH_ERR_STORE);
	assert_null(st);
}

/* Each child opens the same new data directory and tenant once the parent
 * closes the pipe, so both race through creation and migration. */
static void
test_two_processes_creating_the_same_databases_migrate_once(void **state)
{
	struct fixture *f = *state;
	struct gh_store *st;
	struct gh_db *db;
	pid_t pid[2];
	int fds[2], status, i;
	char c;

	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	for (i = 0; i < 2; i++) {
		pid[i] = fork();
		assert_true(pid[i] != -1);
		if (pid[i] == 0) {
			close(fds[1]);
			if (read(fds[0], &c, 1) != 0)
				_exit(3);
			if (gh_store_open(f->dir, true, &st) != GH_OK)
				_exit(1);
			if (gh_store_tenant(st, ORG_A, REGION, true, &db) !=
			    GH_OK)
				_exit(2);
			gh_db_release(db);
			gh_store_free(st);
			_exit(0);
		}
	}
	close(fds[0]);
	close(fds[1]);
	for (i = 0; i < 2; i++) {
		assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	open_store(f, false);
	assert_int_equal(gh_store_directory(f->st, &db), GH_OK);
	assert_int_equal(query_int(db,
	    "SELECT COUNT(*) FROM schema_migrations"),
	    (int64_t)gh_migrations_directory_len);
	gh_db_release(db);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &db),
	    GH_OK);
	assert_int_equal(query_int(db,
	    "SELECT COUNT(*) FROM schema_migrations"),
	    (int64_t)gh_migrations_tenant_len);
	gh_db_release(db);
}

/* ---- statements and error mapping ---------------------------------------- */

static void
test_bind_formats_round_trip(void **state)
{
	struct fixture *f = *state;
	struct gh_db *db = NULL;
	struct gh_stmt *s = NULL;
	const uint8_t blob[3] = { 0, 0xff, 7 };
	const void *p;
	size_t len = 99;
	bool row;

	open_store(f, true);
	assert_int_equal(gh_store_directory(f->st, &db), GH_OK);
	assert_int_equal(gh_db_prepare(db,
	    "SELECT ?, ?, ?, ?, ?, ?, ?", &s), GH_OK);
	assert_int_equal(gh_stmt_bind(s, "tibntbb", "héllo",
	    (int64_t)INT64_MIN, blob, sizeof blob, (const char *)NULL,
	    (const void *)NULL, (size_t)0, "", (size_t)0), GH_OK);
	assert_int_equal(gh_stmt_step(s, &row), GH_OK);
	assert_true(row);
	assert_string_equal(gh_stmt_text(s, 0), "héllo");
	assert_true(gh_stmt_int(s, 1) == INT64_MIN);
	p = gh_stmt_blob(s, 2, &len);
	assert_int_equal(len, sizeof blob);
	assert_memory_equal(p, blob, sizeof blob);
	assert_true(gh_stmt_is_null(s, 3));
	assert_null(gh_stmt_text(s, 3));
	assert_true(gh_stmt_is_null(s, 4));
	assert_null(gh_stmt_blob(s, 5, &len));
	assert_int_equal(len, 0);
	/* An empty blob is not SQL NULL. */
	assert_false(gh_stmt_is_null(s, 6));
	assert_non_null(gh_stmt_blob(s, 6, &len));
	assert_int_equal(len, 0);
	assert_int_equal(gh_stmt_step(s, &row), GH_OK);
	assert_false(row);

	gh_stmt_reset(s);
	assert_int_equal(gh_stmt_bind(s, "i", (int64_t)42), GH_OK);
	assert_int_equal(gh_stmt_step(s, &row), GH_OK);
	assert_true(row);
	assert_int_equal(gh_stmt_int(s, 0), 42);
	assert_true(gh_stmt_is_null(s, 1));
	gh_stmt_free(s);
	gh_stmt_free(NULL);

	assert_int_equal(gh_db_prepare(db, "SELEKT 1", &s), GH_ERR_STORE);
	assert_null(s);
	assert_int_equal(gh_db_exec(db, "SELECT * FROM no_such_table"),
	    GH_ERR_STORE);
	gh_db_release(db);
	gh_db_release(NULL);
}

static void
test_duplicate_unique_key_is_a_conflict(void **state)
{
	struct fixture *f = *state;
	struct gh_db *db = NULL;

	open_store(f, true);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &db),
	    GH_OK);
	assert_int_equal(insert_user(db, "u1", "alice"), GH_OK);
	/* Primary key, then a UNIQUE column. */
	assert_int_equal(insert_user(db, "u1", "bob"), GH_ERR_CONFLICT);
	assert_int_equal(insert_user(db, "u2", "alice"), GH_ERR_CONFLICT);
	assert_int_equal(count_users(db), 1);
	gh_db_release(db);
}

static void
test_other_constraint_failures_are_invalid(void **state)
{
	struct fixture *f = *state;
	struct gh_db *db = NULL;

	open_store(f, true);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &db),
	    GH_OK);
	/* CHECK */
	assert_int_equal(gh_db_run(db, "INSERT INTO users (id, username, "
	    "username_key, state, role, created_at, updated_at) "
	    "VALUES ('u1', 'a', 'a', 'weird', 'member', 0, 0)", ""),
	    GH_ERR_INVALID);
	/* NOT NULL */
	assert_int_equal(gh_db_run(db, "INSERT INTO users (id, username, "
	    "username_key, state, role, created_at, updated_at) "
	    "VALUES ('u1', ?, 'a', 'active', 'member', 0, 0)", "n"),
	    GH_ERR_INVALID);
	/* FOREIGN KEY: no such user. */
	assert_int_equal(gh_db_run(db, "INSERT INTO sessions (id, token_hash, "
	    "user_id, created_at, last_seen_at, expires_at, source_ip, "
	    "user_agent) VALUES ('s1', 'h', 'nobody', 0, 0, 0, '', '')", ""),
	    GH_ERR_INVALID);
	assert_int_equal(count_users(db), 0);
	gh_db_release(db);
}

/* ---- transactions -------------------------------------------------------- */

static void
test_rollback_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct gh_db *db = NULL;

	open_store(f, true);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &db),
	    GH_OK);
	gh_db_rollback(db);	/* no transaction: a no-op */
	assert_int_equal(gh_db_begin(db), GH_OK);
	assert_int_equal(insert_user(db, "u1", "alice"), GH_OK);
	assert_int_equal(insert_user(db, "u2", "bob"), GH_OK);
	assert_int_equal(count_users(db), 2);
	gh_db_rollback(db);
	assert_int_equal(count_users(db), 0);

	assert_int_equal(gh_db_begin(db), GH_OK);
	assert_int_equal(insert_user(db, "u3", "carol"), GH_OK);
	assert_int_equal(gh_db_commit(db), GH_OK);
	assert_int_equal(count_users(db), 1);
	gh_db_release(db);
}

static void
test_release_with_an_open_transaction_rolls_it_back(void **state)
{
	struct fixture *f = *state;
	struct gh_db *db = NULL;

	open_store(f, true);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &db),
	    GH_OK);
	assert_int_equal(gh_db_begin(db), GH_OK);
	assert_int_equal(insert_user(db, "u1", "alice"), GH_OK);
	gh_db_release(db);

	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &db),
	    GH_OK);
	assert_int_equal(count_users(db), 0);
	/* The connection is usable: a new transaction can begin. */
	assert_int_equal(gh_db_begin(db), GH_OK);
	assert_int_equal(gh_db_commit(db), GH_OK);
	gh_db_release(db);
	reopen_store(f);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &db),
	    GH_OK);
	assert_int_equal(count_users(db), 0);
	gh_db_release(db);
}

static void
release_with_live_statement(struct fixture *f)
{
	struct gh_db *db = NULL;
	struct gh_stmt *s = NULL;

	if (gh_store_directory(f->st, &db) != GH_OK ||
	    gh_db_prepare(db, "SELECT 1", &s) != GH_OK)
		_exit(1);
	gh_db_release(db);
}

static void
bind_unknown_letter(struct fixture *f)
{
	struct gh_db *db = NULL;
	struct gh_stmt *s = NULL;

	if (gh_store_directory(f->st, &db) != GH_OK ||
	    gh_db_prepare(db, "SELECT ?", &s) != GH_OK)
		_exit(1);
	if (gh_stmt_bind(s, "x", 1) != GH_OK)
		_exit(2);
}

static void
test_misuse_panics(void **state)
{
	struct fixture *f = *state;

	open_store(f, true);
	expect_panic(f, release_with_live_statement);
	expect_panic(f, bind_unknown_letter);
}

static void
test_disk_full_is_reported_and_writes_nothing(void **state)
{
	struct fixture *f = *state;
	struct gh_db *db = NULL;
	char big[4096], id[32], sql[96];
	gh_err err = GH_OK;
	int i;

	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	open_store(f, true);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &db),
	    GH_OK);
	snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld",
	    (long long)query_int(db, "PRAGMA page_count") + 4);
	assert_int_equal(gh_db_exec(db, sql), GH_OK);

	/* In a transaction: the rows before the failure go too. */
	assert_int_equal(gh_db_begin(db), GH_OK);
	for (i = 0; i < 1000 && err == GH_OK; i++) {
		snprintf(id, sizeof id, "u%d", i);
		err = gh_db_run(db, "INSERT INTO users (id, username, "
		    "username_key, display_name, state, role, created_at, "
		    "updated_at) VALUES (?, ?, ?, ?, 'active', 'member', 0, 0)",
		    "tttt", id, id, id, big);
	}
	assert_int_equal(err, GH_ERR_FULL);
	assert_true(i > 1);
	gh_db_rollback(db);
	assert_int_equal(count_users(db), 0);

	/* Autocommit: the one statement leaves nothing behind. */
	assert_int_equal(gh_db_run(db, "WITH RECURSIVE n(i) AS (SELECT 1 "
	    "UNION ALL SELECT i + 1 FROM n WHERE i < 100) INSERT INTO users "
	    "(id, username, username_key, display_name, state, role, "
	    "created_at, updated_at) SELECT 'u' || i, 'u' || i, 'u' || i, ?, "
	    "'active', 'member', 0, 0 FROM n", "t", big), GH_ERR_FULL);
	assert_int_equal(count_users(db), 0);

	assert_int_equal(gh_db_exec(db, "PRAGMA max_page_count = 1073741823"),
	    GH_OK);
	assert_int_equal(insert_user(db, "u1", "alice"), GH_OK);
	gh_db_release(db);
}

static void
test_database_locked_by_another_connection_is_busy(void **state)
{
	struct fixture *f = *state;
	struct gh_db *db = NULL;
	char p[PATH_MAX];
	sqlite3 *raw;
	uint64_t t0;

	open_store(f, true);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &db),
	    GH_OK);
	gh_db_release(db);
	gh_store_set_busy_timeout(f->st, 50);

	tenant_path(f, ORG_A, p, sizeof p);
	assert_int_equal(sqlite3_open(p, &raw), SQLITE_OK);
	assert_int_equal(sqlite3_exec(raw, "BEGIN EXCLUSIVE", NULL, NULL,
	    NULL), SQLITE_OK);

	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &db),
	    GH_OK);
	t0 = gh_mono_ns();
	assert_int_equal(gh_db_begin(db), GH_ERR_BUSY);
	assert_int_equal(insert_user(db, "u1", "alice"), GH_ERR_BUSY);
	assert_true(gh_mono_ns() - t0 < 2000000000ull);
	/* Readers are not blocked in WAL mode. */
	assert_int_equal(count_users(db), 0);

	assert_int_equal(sqlite3_exec(raw, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(raw);
	assert_int_equal(insert_user(db, "u1", "alice"), GH_OK);
	gh_db_release(db);
}

/* ---- the pool and threads ------------------------------------------------ */

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
		gh_db_release(db);
	}
	return NULL;
}

static void
test_four_threads_insert_into_one_tenant_and_all_rows_survive_reopen(
    void **state)
{
	struct fixture *f = *state;
	struct worker w[N_THREADS];
	pthread_t t[N_THREADS];
	atomic_int failures = 0;
	struct gh_db *db = NULL;
	int i;

	open_store(f, true);
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
	assert_int_equal(count_users(db), N_THREADS * N_INSERTS);
	gh_db_release(db);
}

struct waiter {
	struct gh_store *st;
	struct gh_db *db;
	atomic_int done;
};

static void *
acquire_worker(void *arg)
{
	struct waiter *w = arg;

	if (gh_store_tenant(w->st, ORG_A, REGION, false, &w->db) != GH_OK)
		w->db = NULL;
	atomic_store(&w->done, 1);
	return NULL;
}

static void
test_pool_caps_connections_per_database_and_waits_for_a_release(
    void **state)
{
	struct fixture *f = *state;
	struct gh_db *db[GH_STORE_POOL_MAX], *other = NULL;
	struct timespec ts = { 0, 200 * 1000 * 1000 };
	struct waiter w;
	pthread_t t;
	int i, j;

	open_store(f, true);
	for (i = 0; i < GH_STORE_POOL_MAX; i++) {
		assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true,
		    &db[i]), GH_OK);
		for (j = 0; j < i; j++)
			assert_ptr_not_equal(db[i], db[j]);
	}
	/* Another database is not held up by A's full pool. */
	assert_int_equal(gh_store_tenant(f->st, ORG_B, REGION, true, &other),
	    GH_OK);
	gh_db_release(other);

	w.st = f->st;
	w.db = NULL;
	atomic_init(&w.done, 0);
	assert_int_equal(pthread_create(&t, NULL, acquire_worker, &w), 0);
	nanosleep(&ts, NULL);
	assert_int_equal(atomic_load(&w.done), 0);
	gh_db_release(db[2]);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&w.done), 1);
	assert_ptr_equal(w.db, db[2]);
	gh_db_release(w.db);
	for (i = 0; i < GH_STORE_POOL_MAX; i++)
		if (i != 2)
			gh_db_release(db[i]);
}

/*
 * SQLite drops a connection's page cache when another one committed: the
 * thread that committed last gets its connection back (its cache is
 * current), any other thread the most recently released other one.
 */
static void
test_pool_keeps_the_last_committers_connection_for_its_thread(
    void **state)
{
	struct fixture *f = *state;
	struct gh_db *a = NULL, *b = NULL, *again = NULL;
	struct waiter w;
	pthread_t t;

	open_store(f, true);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &a),
	    GH_OK);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &b),
	    GH_OK);
	assert_ptr_not_equal(a, b);
	assert_int_equal(gh_db_begin(a), GH_OK);
	assert_int_equal(gh_db_exec(a, "CREATE TABLE pool_t (x INTEGER)"),
	    GH_OK);
	assert_int_equal(gh_db_commit(a), GH_OK);
	gh_db_release(a);
	gh_db_release(b);	/* b: the most recently released */

	/* Another thread: b, though a's cache is the current one. */
	w.st = f->st;
	w.db = NULL;
	atomic_init(&w.done, 0);
	assert_int_equal(pthread_create(&t, NULL, acquire_worker, &w), 0);
	pthread_join(t, NULL);
	assert_ptr_equal(w.db, b);
	gh_db_release(w.db);

	/* This thread committed on a: a again, though b went back last. */
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false,
	    &again), GH_OK);
	assert_ptr_equal(again, a);
	gh_db_release(again);

	/* Another thread, a the only idle connection: a. */
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false,
	    &again), GH_OK);
	assert_ptr_equal(again, a);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &b),
	    GH_OK);
	assert_ptr_not_equal(b, a);
	gh_db_release(again);
	w.db = NULL;
	atomic_init(&w.done, 0);
	assert_int_equal(pthread_create(&t, NULL, acquire_worker, &w), 0);
	pthread_join(t, NULL);
	assert_ptr_equal(w.db, a);
	gh_db_release(w.db);
	gh_db_release(b);
}

static void
test_store_closes_released_connections_above_its_open_limit(void **state)
{
	struct fixture *f = *state;
	struct gh_db *db = NULL, *held = NULL;
	char org[GH_ID_LEN + 1];

	open_store(f, true);
	assert_int_equal(gh_store_open_count(f->st), 1);	/* directory */
	gh_store_set_open_max(f->st, 3);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &held),
	    GH_OK);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(gh_id_new(org), GH_OK);
		assert_int_equal(gh_store_tenant(f->st, org, REGION, true, &db),
		    GH_OK);
		assert_int_equal(insert_user(db, "u1", "alice"), GH_OK);
		gh_db_release(db);
		assert_true(gh_store_open_count(f->st) <= 3);
	}
	/* The held handle is untouched and still works. */
	assert_int_equal(count_users(held), 0);
	gh_db_release(held);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &db),
	    GH_OK);
	gh_db_release(db);
}

/* Whether db is a connection marked by mark_conn (a TEMP table lives
 * exactly as long as its connection). */
static bool
conn_marked(struct gh_db *db)
{
	struct gh_stmt *st = NULL;
	bool ok = gh_db_prepare(db, "SELECT COUNT(*) FROM temp.mark", &st) ==
	    GH_OK;

	gh_stmt_free(st);
	return ok;
}

static void
test_store_keeps_a_busy_orgs_connections_after_many_orgs(void **state)
{
	struct fixture *f = *state;
	struct gh_db *a1 = NULL, *a2 = NULL, *db = NULL;
	char org[GH_ID_LEN + 1];

	open_store(f, true);
	gh_store_set_open_max(f->st, 3);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(gh_id_new(org), GH_OK);
		assert_int_equal(gh_store_tenant(f->st, org, REGION, true, &db),
		    GH_OK);
		gh_db_release(db);
		assert_true(gh_store_open_count(f->st) <= 3);
	}
	/* Two threads' worth of one busy org, opened past the bound: the
	 * connections idle the longest go, not these. */
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &a1),
	    GH_OK);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &a2),
	    GH_OK);
	assert_int_equal(gh_db_exec(a1, "CREATE TEMP TABLE mark (x)"), GH_OK);
	assert_int_equal(gh_db_exec(a2, "CREATE TEMP TABLE mark (x)"), GH_OK);
	gh_db_release(a1);
	gh_db_release(a2);
	assert_true(gh_store_open_count(f->st) <= 3);
	for (int round = 0; round < 3; round++) {
		assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false,
		    &a1), GH_OK);
		assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false,
		    &a2), GH_OK);
		assert_true(conn_marked(a1));
		assert_true(conn_marked(a2));
		gh_db_release(a2);
		gh_db_release(a1);
		assert_true(gh_store_open_count(f->st) <= 3);
	}
	/* Touching more orgs than the bound since, the org idle the longest
	 * is closed: its next handle is a fresh connection. */
	for (int i = 0; i < 4; i++) {
		assert_int_equal(gh_id_new(org), GH_OK);
		assert_int_equal(gh_store_tenant(f->st, org, REGION, true, &db),
		    GH_OK);
		gh_db_release(db);
	}
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &a1),
	    GH_OK);
	assert_false(conn_marked(a1));
	gh_db_release(a1);
	assert_true(gh_store_open_count(f->st) <= 3);
}

/*
 * Each SQLite connection of a process in WAL mode holds a shared lock on
 * byte 128 of the -shm file (its dead-man switch: while any process holds
 * it, nobody rebuilds the wal-index). POSIX locks go when the process
 * closes ANY descriptor of the file, so the organisations' generation
 * probe, which reads the wal-index header, must do so through SQLite's
 * own mapping. Returns 1 when a child process sees the lock held.
 */
static int
shm_lock_seen_from_outside(const char *shm_path)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			.l_start = 128, .l_len = 1 };
		int fd = open(shm_path, O_RDWR | O_CLOEXEC);

		if (fd == -1 || fcntl(fd, F_GETLK, &fl) == -1)
			_exit(2);
		_exit(fl.l_type == F_UNLCK ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void
test_the_generation_probe_keeps_the_process_shm_locks(void **state)
{
	struct fixture *f = *state;
	char shm[PATH_MAX + 32];
	int64_t gen1 = -1, gen2 = -1;
	int before, after;

	open_store(f, true);
	snprintf(shm, sizeof shm, "%s/directory.db-shm", f->dir);
	assert_int_equal(gh_store_org_gen(f->st, &gen1), GH_OK);
	before = shm_lock_seen_from_outside(shm);
	/* The first call maps the header; the later ones read it. */
	for (int i = 0; i < 8; i++)
		assert_int_equal(gh_store_org_gen(f->st, &gen2), GH_OK);
	after = shm_lock_seen_from_outside(shm);
	assert_int_equal(gen1, gen2);
	assert_int_equal(before, 1);
	assert_int_equal(after, 1);
}

static bool
version_eq(const struct gh_db_version *x, const struct gh_db_version *y)
{
	return x->others == y->others && x->own == y->own;
}

/* gh_db_version stays while nothing commits and moves with any commit:
 * this connection's, another connection's; none inside a transaction. */
static void
test_db_version_moves_with_every_commit(void **state)
{
	struct fixture *f = *state;
	struct gh_db_version v1, v2;
	struct gh_db *a = NULL, *b = NULL;

	open_store(f, true);
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, true, &a),
	    GH_OK);
	assert_int_equal(count_users(a), 0);
	assert_true(gh_db_version(a, &v1));
	for (int i = 0; i < 4; i++) {
		assert_int_equal(count_users(a), 0);
		assert_true(gh_db_version(a, &v2));
		assert_true(version_eq(&v1, &v2));
	}
	assert_int_equal(insert_user(a, "u1", "alice"), GH_OK);
	assert_true(gh_db_version(a, &v2));
	assert_false(version_eq(&v1, &v2));
	v1 = v2;
	/* a is held: the pool opens a second connection. */
	assert_int_equal(gh_store_tenant(f->st, ORG_A, REGION, false, &b),
	    GH_OK);
	assert_int_equal(insert_user(b, "u2", "bob"), GH_OK);
	gh_db_release(b);
	assert_true(gh_db_version(a, &v2));
	assert_false(version_eq(&v1, &v2));
	assert_int_equal(gh_db_begin(a), GH_OK);
	assert_false(gh_db_version(a, &v2));
	gh_db_rollback(a);
	/* The memo: zeroed, one size. */
	assert_non_null(gh_db_memo(a, 64));
	assert_int_equal(((unsigned char *)gh_db_memo(a, 64))[63], 0);
	gh_db_release(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_open_without_create_on_an_empty_data_dir_is_notfound),
		T(test_migrations_are_applied_to_both_kinds_and_reopening_is_idempotent),
		T(test_connections_use_wal_full_sync_foreign_keys_and_no_trusted_schema),
		T(test_tenant_handle_cannot_see_other_tenant_rows),
		T(test_invalid_org_id_or_region_is_refused_and_creates_nothing),
		T(test_missing_tenant_without_create_is_notfound),
		T(test_database_claiming_a_newer_schema_is_refused),
		T(test_two_processes_creating_the_same_databases_migrate_once),
		T(test_bind_formats_round_trip),
		T(test_db_version_moves_with_every_commit),
		T(test_duplicate_unique_key_is_a_conflict),
		T(test_other_constraint_failures_are_invalid),
		T(test_rollback_leaves_nothing),
		T(test_release_with_an_open_transaction_rolls_it_back),
		T(test_misuse_panics),
		T(test_disk_full_is_reported_and_writes_nothing),
		T(test_database_locked_by_another_connection_is_busy),
		T(test_four_threads_insert_into_one_tenant_and_all_rows_survive_reopen),
		T(test_pool_caps_connections_per_database_and_waits_for_a_release),
		T(test_pool_keeps_the_last_committers_connection_for_its_thread),
		T(test_store_closes_released_connections_above_its_open_limit),
		T(test_store_keeps_a_busy_orgs_connections_after_many_orgs),
		T(test_the_generation_probe_keeps_the_process_shm_locks),
#undef T
	};

	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
