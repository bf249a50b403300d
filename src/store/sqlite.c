/*
 * sqlite.c: the SQLite backend of the store: the file layout under the data
 * directory, the per-connection settings and the mapping of SQLite result
 * codes to gh_err.
 *
 * Untrusted input: none reaches this file unchecked. org_id and region come
 * from clients but store.c has validated them (gh_id_valid,
 * gh_store_region_valid) before they are joined into a path. SQL text is the
 * programmers'; values arrive only as bound parameters. Secrets: none are
 * held here, though bound values may be sensitive, so no error message
 * includes them (SQLite's own messages name columns, never values). With
 * page keys set, a tenant connection holds its keys (struct
 * gh_store_crypt, see crypt.c) from open to close and wipes them then.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sqlite3.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"

/* The wal-index header (https://www.sqlite.org/walformat.html, "The
 * WAL-Index Header"): two 48-byte copies at the start of the -shm file,
 * rewritten (copy 2 first, then copy 1) by every commit and every WAL
 * restart; iChange inside counts transactions. */
#define WAL_HDR_BYTES 48
#define WAL_HDR_WORDS (WAL_HDR_BYTES / 4)

struct gh_store_conn {
	sqlite3 *db;
	struct gh_store_crypt *crypt;	/* NULL: a plain database */
	sqlite3_stmt *data_version;	/* prepared on first use */
	/* The wal-index header in the -shm file, through SQLite's mapping
	 * (sqlite_data_version); NULL: not mapped, ask SQLite. */
	const uint32_t *shm;
	bool shm_tried;
	uint32_t shm_seen[WAL_HDR_WORDS];
	int64_t version;		/* data_version when shm_seen was read */
	bool version_ok;
};

static const char sqlite_magic[16] = "SQLite format 3";

struct gh_store_bstmt {
	sqlite3_stmt *stmt;
};

gh_err
gh_store_sqlite_path(const char *data_dir, const char *region,
    const char *org_id, struct gh_buf *out)
{
	gh_buf_reset(out);
	if (org_id == NULL)
		gh_buf_printf(out, "%s/directory.db", data_dir);
	else
		gh_buf_printf(out, "%s/%s/%s.db", data_dir, region, org_id);
	return gh_buf_err(out);
}

/* Makes a creation durable: fsync the directory that holds the new entry. */
static gh_err
sync_dir(const char *dir)
{
	int fd;
	gh_err err = GH_OK;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1 || fsync(fd) == -1) {
		err = GH_ERR_STORE;
		GH_LOG_ERR(err, "fsync of %s: %s", dir, strerror(errno));
	}
	if (fd != -1)
		close(fd);
	return err;
}

/* Creates <data_dir>/<region> with mode 0700 if missing; refuses anything
 * there that is not a plain directory (a symlink, say). */
static gh_err
ensure_region_dir(const char *data_dir, const char *region)
{
	char path[PATH_MAX];
	struct stat sb;
	int n;

	n = snprintf(path, sizeof path, "%s/%s", data_dir, region);
	if (n < 0 || (size_t)n >= sizeof path) {
		GH_LOG_ERR(GH_ERR_LIMIT, "data directory path too long");
		return GH_ERR_LIMIT;
	}
	if (mkdir(path, 0700) == 0)
		return sync_dir(data_dir);
	if (errno != EEXIST) {
		GH_LOG_ERR(GH_ERR_STORE, "mkdir %s: %s", path, strerror(errno));
		return GH_ERR_STORE;
	}
	if (lstat(path, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
		GH_LOG_ERR(GH_ERR_STORE, "%s is not a directory", path);
		return GH_ERR_STORE;
	}
	return GH_OK;
}

/*
 * Creates the database file ourselves, empty and 0600, so that SQLite never
 * creates it with its default 0644; the -wal and -shm files inherit this
 * mode. Another process creating it at the same time is fine.
 */
static gh_err
create_file(const char *path, const char *dir)
{
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1) {
		if (errno == EEXIST)
			return GH_OK;
		GH_LOG_ERR(GH_ERR_STORE, "create %s: %s", path,
		    strerror(errno));
		return GH_ERR_STORE;
	}
	if (fsync(fd) == -1) {
		GH_LOG_ERR(GH_ERR_STORE, "fsync %s: %s", path, strerror(errno));
		close(fd);
		return GH_ERR_STORE;
	}
	close(fd);
	return sync_dir(dir);
}

static gh_err
sqlite_map_error(int rc)
{
	switch (rc) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return GH_ERR_CONFLICT;
	default:
		break;
	}
	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT:
		return GH_ERR_INVALID;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return GH_ERR_BUSY;
	case SQLITE_FULL:
		return GH_ERR_FULL;
	default:
		return GH_ERR_STORE;
	}
}

static const char *
sqlite_errmsg(struct gh_store_conn *c)
{
	return sqlite3_errmsg(c->db);
}

/* Runs a pragma and checks the first column of its first row. */
static gh_err
pragma_expect(sqlite3 *db, const char *path, const char *sql,
    const char *want, bool quiet_busy)
{
	sqlite3_stmt *stmt = NULL;
	const char *got;
	gh_err err = GH_OK;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		err = sqlite_map_error(rc);
		if (!(quiet_busy && err == GH_ERR_BUSY))
			GH_LOG_ERR(err, "%s: %s: %s", path, sql,
			    sqlite3_errmsg(db));
		goto out;
	}
	got = (const char *)sqlite3_column_text(stmt, 0);
	if (got == NULL || strcasecmp(got, want) != 0) {
		err = GH_ERR_STORE;
		GH_LOG_ERR(err, "%s: %s returned %s, not %s", path, sql,
		    got != NULL ? got : "NULL", want);
	}
out:
	sqlite3_finalize(stmt);
	return err;
}

/*
 * Switches to WAL (a no-op once the file is in WAL mode). Two processes
 * converting a new file at once can deadlock on the lock upgrade, and
 * SQLite then reports BUSY without calling the busy handler; so retry until
 * the busy timeout is spent.
 */
static gh_err
set_wal(sqlite3 *db, const char *path, int busy_ms)
{
	uint64_t deadline = gh_mono_ns() + (uint64_t)busy_ms * 1000000u;
	gh_err err;

	for (;;) {
		err = pragma_expect(db, path, "PRAGMA journal_mode=WAL", "wal",
		    true);
		if (err != GH_ERR_BUSY || gh_mono_ns() >= deadline)
			break;
		sqlite3_sleep(10);
	}
	if (err == GH_ERR_BUSY)
		GH_LOG_WARN(err, "%s: cannot switch to WAL: %s", path,
		    sqlite3_errmsg(db));
	return err;
}

/*
 * Refuses to mix up the two formats: a plain database starts with SQLite's
 * magic, an encrypted one with ciphertext. Either would fail later anyway
 * (the VFS refuses a plain page 1, SQLite an encrypted one), but with a
 * vaguer message. *empty_out: a new file.
 *
 * Runs on the open connection, before its first statement, and reads the
 * raw bytes through the descriptor SQLite holds (below the encryption
 * layer). It must not open a descriptor of its own: closing it would drop
 * every POSIX lock this process holds on the file, including the shared
 * lock other connections keep while in WAL mode. Another process's last
 * connection would then take the file for its own, checkpoint and delete
 * the WAL under this process's connections, whose later commits would go
 * to an unlinked log that nothing else reads.
 */
static gh_err
check_format(sqlite3 *db, const char *path, const char *org_id,
    bool encrypted, bool *empty_out)
{
	char head[sizeof sqlite_magic];
	sqlite3_file *f = NULL;
	sqlite3_int64 size = 0;
	gh_err err = GH_OK;
	bool plain;
	int rc;

	*empty_out = false;
	rc = sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &f);
	f = gh_store_crypt_raw_file(f);
	if (rc != SQLITE_OK || f == NULL || f->pMethods == NULL ||
	    f->pMethods->xFileSize(f, &size) != SQLITE_OK) {
		err = GH_ERR_STORE;
		GH_LOG_ERR(err, "%s: cannot read the file's size", path);
		return err;
	}
	*empty_out = size == 0;
	if (size < (sqlite3_int64)sizeof head)
		return GH_OK;	/* new, or too short for SQLite to accept */
	if (f->pMethods->xRead(f, head, sizeof head, 0) != SQLITE_OK) {
		err = GH_ERR_STORE;
		GH_LOG_ERR(err, "%s: cannot read the file's header", path);
		return err;
	}
	plain = memcmp(head, sqlite_magic, sizeof head) == 0;
	if (encrypted && plain) {
		err = GH_ERR_STORE;
		GH_LOG_ERR(err, "org %s: the database is plain SQLite but page "
		    "keys are set; refusing to open it", org_id);
	} else if (!encrypted && !plain) {
		err = GH_ERR_STORE;
		GH_LOG_ERR(err, "org %s: the database is not plain SQLite "
		    "(encrypted?) and no page keys are set; refusing to open "
		    "it", org_id);
	}
	return err;
}

/*
 * Settings an encrypted connection needs before its first write: the
 * fixed page size with room for the VFS's per-page metadata, temporary
 * data kept in memory (a temp file would be plaintext; the VFS refuses
 * it), and no memory-mapped reads. A new file goes from no journal
 * straight to WAL, so no rollback journal (plaintext) is ever written: its
 * first transaction only creates page 1 of an empty database.
 */
/*
 * Leaves a still-empty database without a rollback journal, so that its
 * conversion to WAL (set_wal) writes no journal file. Reads first: if
 * another connection has converted the file since we found it empty, the
 * pager is in WAL mode now and must stay there.
 */
static int
journal_off_if_new(sqlite3 *db)
{
	sqlite3_stmt *stmt = NULL;
	const char *mode;
	bool wal;
	int rc;

	rc = sqlite3_exec(db, "SELECT 1 FROM sqlite_schema LIMIT 1", NULL,
	    NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt,
		    NULL);
	if (rc == SQLITE_OK && sqlite3_step(stmt) != SQLITE_ROW)
		rc = sqlite3_errcode(db);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(stmt);
		return rc;
	}
	mode = (const char *)sqlite3_column_text(stmt, 0);
	wal = mode != NULL && strcasecmp(mode, "wal") == 0;
	sqlite3_finalize(stmt);
	if (wal)
		return SQLITE_OK;
	return sqlite3_exec(db, "PRAGMA journal_mode=MEMORY", NULL, NULL,
	    NULL);
}

static gh_err
crypt_settings(sqlite3 *db, const char *path, bool empty, int busy_ms)
{
	static const char *const settings =
	    "PRAGMA page_size=4096;"
	    "PRAGMA temp_store=MEMORY;"
	    "PRAGMA mmap_size=0;";
	uint64_t deadline = gh_mono_ns() + (uint64_t)busy_ms * 1000000u;
	int n, rc;
	gh_err err;

	for (;;) {
		n = GH_STORE_PAGE_RESERVE;
		rc = sqlite3_exec(db, settings, NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_file_control(db, "main",
			    SQLITE_FCNTL_RESERVE_BYTES, &n);
		if (rc == SQLITE_OK && empty)
			rc = journal_off_if_new(db);
		/* As in set_wal: another process or thread making the same
		 * new file can make SQLite report BUSY without waiting. */
		if ((rc & 0xff) != SQLITE_BUSY || gh_mono_ns() >= deadline)
			break;
		sqlite3_sleep(10);
	}
	if (rc != SQLITE_OK) {
		err = sqlite_map_error(rc);
		GH_LOG_ERR(err, "%s: encryption settings: %s", path,
		    sqlite3_errmsg(db));
		return err;
	}
	return GH_OK;
}

/*
 * Process-wide SQLite settings, before SQLite initialises (its first
 * use). No memory statistics: with them every sqlite3_malloc and
 * sqlite3_free takes one process-wide mutex, the most contended lock of
 * the server under concurrent requests (a futex system call per token
 * issued); nothing here reads those statistics.
 */
static pthread_once_t sqlite_setup_once = PTHREAD_ONCE_INIT;

static void
sqlite_setup_once_fn(void)
{
	if (sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK)
		GH_LOG_DEBUG("SQLite was initialised first: memory "
		    "statistics stay on");
}

void
gh_store_sqlite_setup(void)
{
	pthread_once(&sqlite_setup_once, sqlite_setup_once_fn);
}

static gh_err
sqlite_conn_open(const char *data_dir, const char *region,
    const char *org_id, const struct gh_store_keys *keys, bool create,
    int busy_ms, struct gh_store_conn **out)
{
	static const char *const settings =
	    "PRAGMA trusted_schema=OFF;"
	    /* An acknowledged commit survives power loss: WAL is synced on
	     * every commit. */
	    "PRAGMA synchronous=FULL;"
	    "PRAGMA foreign_keys=ON;";
	struct gh_store_conn *c = NULL;
	struct gh_store_crypt *crypt = NULL;
	struct gh_buf path;
	struct stat sb;
	const char *dir;
	char dirbuf[PATH_MAX];
	bool empty = false;
	gh_err err;
	int rc;

	*out = NULL;
	gh_store_sqlite_setup();
	gh_buf_init(&path, PATH_MAX, 0);
	err = gh_store_sqlite_path(data_dir, region, org_id, &path);
	if (err != GH_OK) {
		GH_LOG_ERR(err, "data directory path too long");
		goto out;
	}
	if (keys != NULL && org_id != NULL) {
		/* Keys first: an org whose keys are gone gets no file. */
		err = gh_store_crypt_register();
		if (err == GH_OK)
			err = gh_store_crypt_new(keys, org_id, &crypt);
		if (err != GH_OK)
			goto out;
	}
	if (!create) {
		if (stat(gh_buf_cstr(&path), &sb) == -1) {
			err = errno == ENOENT ? GH_ERR_NOTFOUND : GH_ERR_STORE;
			if (err == GH_ERR_NOTFOUND)
				gh_log(GH_LOG_LEVEL_DEBUG, __func__, err,
				    "%s does not exist", gh_buf_cstr(&path));
			else
				GH_LOG_ERR(err, "stat %s: %s",
				    gh_buf_cstr(&path), strerror(errno));
			goto out;
		}
	} else {
		dir = data_dir;
		if (org_id != NULL) {
			err = ensure_region_dir(data_dir, region);
			if (err != GH_OK)
				goto out;
			snprintf(dirbuf, sizeof dirbuf, "%s/%s", data_dir,
			    region);
			dir = dirbuf;
		}
		err = create_file(gh_buf_cstr(&path), dir);
		if (err != GH_OK)
			goto out;
	}
	c = calloc(1, sizeof *c);
	if (c == NULL) {
		err = GH_ERR_NOMEM;
		GH_LOG_ERR(err, "connection");
		goto out;
	}
	c->crypt = crypt;
	crypt = NULL;
	/*
	 * NOMUTEX: store.c hands a connection to one thread at a time under
	 * its own mutex. No CREATE: the file exists (made above with 0600)
	 * or this is the create=false case. NOFOLLOW: no symlinked database.
	 */
	gh_store_crypt_hand_over(c->crypt);
	rc = sqlite3_open_v2(gh_buf_cstr(&path), &c->db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW |
	    SQLITE_OPEN_EXRESCODE, c->crypt != NULL ? GH_STORE_CRYPT_VFS : NULL);
	gh_store_crypt_hand_over(NULL);
	if (rc == SQLITE_OK && c->crypt != NULL &&
	    !gh_store_crypt_attached(c->crypt)) {
		err = GH_ERR_INTERNAL;
		GH_LOG_ERR(err, "open %s: the VFS did not take the page keys",
		    gh_buf_cstr(&path));
		goto out;
	}
	if (rc != SQLITE_OK) {
		err = c->db == NULL ? GH_ERR_NOMEM : GH_ERR_STORE;
		GH_LOG_ERR(err, "open %s: %s", gh_buf_cstr(&path),
		    c->db != NULL ? sqlite3_errmsg(c->db) :
		    sqlite3_errstr(rc));
		goto out;
	}
	if (org_id != NULL) {
		err = check_format(c->db, gh_buf_cstr(&path), org_id,
		    c->crypt != NULL, &empty);
		if (err != GH_OK)
			goto out;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, busy_ms);
	/* Defensive: no writes to the schema tables, no shadow-table
	 * tricks, whatever SQL a bug lets through. */
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	rc = sqlite3_exec(c->db, settings, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		err = sqlite_map_error(rc);
		GH_LOG_ERR(err, "%s: settings: %s", gh_buf_cstr(&path),
		    sqlite3_errmsg(c->db));
		goto out;
	}
	if (c->crypt != NULL) {
		err = crypt_settings(c->db, gh_buf_cstr(&path), empty,
		    busy_ms);
		if (err != GH_OK)
			goto out;
	}
	err = set_wal(c->db, gh_buf_cstr(&path), busy_ms);
	if (err == GH_OK && c->crypt != NULL)
		err = pragma_expect(c->db, gh_buf_cstr(&path),
		    "PRAGMA temp_store", "2", false);
	if (err != GH_OK)
		goto out;
	*out = c;
	c = NULL;
out:
	if (c != NULL) {
		/* No statement is open, so this closes every file now and
		 * the keys the files borrow can go. */
		if (sqlite3_close(c->db) != SQLITE_OK)
			GH_PANIC("close failed: %s", sqlite3_errmsg(c->db));
		gh_store_crypt_free(c->crypt);
		free(c);
	}
	gh_store_crypt_free(crypt);
	gh_buf_free(&path);
	return err;
}

static void
sqlite_conn_close(struct gh_store_conn *c)
{
	if (c == NULL)
		return;
	sqlite3_finalize(c->data_version);
	if (sqlite3_close(c->db) != SQLITE_OK)
		GH_PANIC("close with unfinalized statements: %s",
		    sqlite3_errmsg(c->db));
	gh_store_crypt_free(c->crypt);	/* wipes the page keys */
	free(c);
}

static void
sqlite_set_busy_timeout(struct gh_store_conn *c, int ms)
{
	sqlite3_busy_timeout(c->db, ms);
}

static gh_err
sqlite_set_cache_kib(struct gh_store_conn *c, int kib)
{
	char sql[64];
	int rc;

	/* A negative cache_size is in KiB. */
	snprintf(sql, sizeof sql, "PRAGMA cache_size=-%d", kib);
	rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		GH_LOG_ERR(sqlite_map_error(rc), "cache size: %s",
		    sqlite3_errmsg(c->db));
		return sqlite_map_error(rc);
	}
	return GH_OK;
}

static int64_t
sqlite_total_changes(struct gh_store_conn *c)
{
	return sqlite3_total_changes64(c->db);
}

static bool
sqlite_in_txn(struct gh_store_conn *c)
{
	return sqlite3_get_autocommit(c->db) == 0;
}

static int64_t
sqlite_changes(struct gh_store_conn *c)
{
	return sqlite3_changes64(c->db);
}

/*
 * Finds the wal-index header through SQLite's own mapping of the -shm file
 * (region 0 of the connection's xShmMap), once the connection has read, so
 * the mapping exists. Never through a descriptor of our own: POSIX locks
 * belong to the process, and closing any descriptor of the -shm file
 * would drop every lock SQLite holds on it in this process (its
 * dead-man-switch and read marks), letting another process rebuild the
 * wal-index under live readers. The region stays mapped, at the same
 * address, until the connection closes. Best effort: without it every
 * call asks SQLite.
 */
#define WAL_INDEX_REGION 32768	/* SQLite's wal-index region size */

static void
shm_map(struct gh_store_conn *c)
{
	sqlite3_file *f = NULL;
	void volatile *p = NULL;

	c->shm_tried = true;
	if (sqlite3_file_control(c->db, "main", SQLITE_FCNTL_FILE_POINTER,
	    &f) != SQLITE_OK || f == NULL || f->pMethods == NULL ||
	    f->pMethods->iVersion < 2 || f->pMethods->xShmMap == NULL)
		return;
	if (f->pMethods->xShmMap(f, 0, WAL_INDEX_REGION, 0, &p) ==
	    SQLITE_OK && p != NULL)
		c->shm = (const uint32_t *)p;
}

/* Reads both header copies as SQLite's readers do (copy 1, a barrier,
 * copy 2); false when they differ (a commit is being written). */
static bool
shm_read(const struct gh_store_conn *c, uint32_t out[WAL_HDR_WORDS])
{
	bool same = true;

	for (int i = 0; i < WAL_HDR_WORDS; i++)
		out[i] = __atomic_load_n(&c->shm[i], __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	for (int i = 0; i < WAL_HDR_WORDS; i++)
		if (__atomic_load_n(&c->shm[WAL_HDR_WORDS + i],
		    __ATOMIC_RELAXED) != out[i])
			same = false;
	return same;
}

/*
 * PRAGMA data_version: changes when another connection, of this process
 * or another, commits to the database. It takes a read transaction (file
 * locks, an fstat: a few system calls), so it is asked only when the
 * wal-index header moved since the last answer: any commit rewrites it
 * before it returns, so an unchanged header means nothing committed. The
 * header is read before the pragma: a commit in between moves it again
 * and the next call asks again.
 */
static gh_err
sqlite_data_version(struct gh_store_conn *c, int64_t *out)
{
	uint32_t hdr[WAL_HDR_WORDS];
	bool steady = false;
	int rc;

	if (c->shm != NULL) {
		steady = shm_read(c, hdr);
		if (steady && c->version_ok &&
		    memcmp(hdr, c->shm_seen, sizeof hdr) == 0) {
			*out = c->version;
			return GH_OK;
		}
	}
	if (c->data_version == NULL) {
		rc = sqlite3_prepare_v2(c->db, "PRAGMA data_version", -1,
		    &c->data_version, NULL);
		if (rc != SQLITE_OK) {
			GH_LOG_ERR(sqlite_map_error(rc), "data_version: %s",
			    sqlite3_errmsg(c->db));
			return sqlite_map_error(rc);
		}
	}
	rc = sqlite3_step(c->data_version);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(c->data_version, 0);
	sqlite3_reset(c->data_version);
	if (rc != SQLITE_ROW) {
		c->version_ok = false;
		GH_LOG_ERR(sqlite_map_error(rc), "data_version: %s",
		    sqlite3_errmsg(c->db));
		return sqlite_map_error(rc);
	}
	c->version_ok = steady;
	if (steady) {
		memcpy(c->shm_seen, hdr, sizeof hdr);
		c->version = *out;
	}
	if (c->shm == NULL && !c->shm_tried)
		shm_map(c);
	return GH_OK;
}

static gh_err
sqlite_table_exists(struct gh_store_conn *c, const char *table, bool *out)
{
	sqlite3_stmt *stmt = NULL;
	gh_err err = GH_OK;
	int rc;

	*out = false;
	rc = sqlite3_prepare_v2(c->db, "SELECT 1 FROM sqlite_schema "
	    "WHERE type = 'table' AND name = ?", -1, &stmt, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(stmt, 1, table, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*out = true;
	else if (rc != SQLITE_DONE) {
		err = sqlite_map_error(rc);
		GH_LOG_ERR(err, "catalogue: %s", sqlite3_errmsg(c->db));
	}
	sqlite3_finalize(stmt);
	return err;
}

static int
sqlite_exec(struct gh_store_conn *c, const char *sql)
{
	return sqlite3_exec(c->db, sql, NULL, NULL, NULL);
}

static int
sqlite_prepare(struct gh_store_conn *c, const char *sql,
    struct gh_store_bstmt **out)
{
	struct gh_store_bstmt *s;
	const char *tail = NULL;
	int rc;

	*out = NULL;
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return SQLITE_NOMEM;
	rc = sqlite3_prepare_v2(c->db, sql, -1, &s->stmt, &tail);
	if (rc == SQLITE_OK && s->stmt == NULL)
		rc = SQLITE_MISUSE;	/* empty SQL or only a comment */
	if (rc != SQLITE_OK) {
		sqlite3_finalize(s->stmt);
		free(s);
		return rc;
	}
	*out = s;
	return SQLITE_OK;
}

static void
sqlite_finalize(struct gh_store_bstmt *s)
{
	if (s == NULL)
		return;
	sqlite3_finalize(s->stmt);
	free(s);
}

static void
sqlite_reset(struct gh_store_bstmt *s)
{
	/* The result repeats the last step's error, reported then. */
	(void)sqlite3_reset(s->stmt);
	sqlite3_clear_bindings(s->stmt);
}

static int
sqlite_bind_text(struct gh_store_bstmt *s, int i, const char *v)
{
	return sqlite3_bind_text64(s->stmt, i, v, strlen(v), SQLITE_TRANSIENT,
	    SQLITE_UTF8);
}

static int
sqlite_bind_int(struct gh_store_bstmt *s, int i, int64_t v)
{
	return sqlite3_bind_int64(s->stmt, i, v);
}

static int
sqlite_bind_blob(struct gh_store_bstmt *s, int i, const void *p, size_t n)
{
	/* A non-NULL pointer with n == 0 binds an empty blob, not NULL. */
	return sqlite3_bind_blob64(s->stmt, i, p, n, SQLITE_TRANSIENT);
}

static int
sqlite_bind_null(struct gh_store_bstmt *s, int i)
{
	return sqlite3_bind_null(s->stmt, i);
}

static int
sqlite_step(struct gh_store_bstmt *s)
{
	return sqlite3_step(s->stmt);
}

static bool
sqlite_is_row(int rc)
{
	return rc == SQLITE_ROW;
}

static bool
sqlite_is_done(int rc)
{
	return rc == SQLITE_DONE;
}

static bool
sqlite_is_ok(int rc)
{
	return rc == SQLITE_OK;
}

static const char *
sqlite_col_text(struct gh_store_bstmt *s, int col)
{
	return (const char *)sqlite3_column_text(s->stmt, col);
}

static int64_t
sqlite_col_int(struct gh_store_bstmt *s, int col)
{
	return sqlite3_column_int64(s->stmt, col);
}

static bool
sqlite_col_is_null(struct gh_store_bstmt *s, int col)
{
	return sqlite3_column_type(s->stmt, col) == SQLITE_NULL;
}

static int
sqlite_col_count(struct gh_store_bstmt *s)
{
	return sqlite3_column_count(s->stmt);
}

static const char *
sqlite_col_name(struct gh_store_bstmt *s, int col)
{
	return sqlite3_column_name(s->stmt, col);
}

static enum gh_col_type
sqlite_col_type(struct gh_store_bstmt *s, int col)
{
	switch (sqlite3_column_type(s->stmt, col)) {
	case SQLITE_INTEGER:
		return GH_COL_INT;
	case SQLITE_FLOAT:
		return GH_COL_REAL;
	case SQLITE_BLOB:
		return GH_COL_BLOB;
	case SQLITE_NULL:
		return GH_COL_NULL;
	default:
		return GH_COL_TEXT;
	}
}

static bool
sqlite_readonly(struct gh_store_bstmt *s)
{
	return sqlite3_stmt_readonly(s->stmt) != 0;
}

static const void *
sqlite_col_blob(struct gh_store_bstmt *s, int col, size_t *len_out)
{
	static const unsigned char empty[1];
	const void *p;
	int n;

	if (sqlite3_column_type(s->stmt, col) == SQLITE_NULL) {
		if (len_out != NULL)
			*len_out = 0;
		return NULL;
	}
	p = sqlite3_column_blob(s->stmt, col);
	n = sqlite3_column_bytes(s->stmt, col);
	if (len_out != NULL)
		*len_out = n > 0 ? (size_t)n : 0;
	/* SQLite returns NULL for an empty blob; keep it apart from SQL
	 * NULL. */
	return p != NULL ? p : empty;
}

/*
 * VACUUM rebuilds the database in memory (temp_store=MEMORY) and writes
 * every page back through the WAL under the connection's newest key, in
 * one transaction. The TRUNCATE checkpoint then moves those pages into the
 * database file and empties the WAL, so no page under an older key stays
 * on disk. A crash before the commit leaves the old database whole; one
 * after it leaves the new one in the WAL; re-running finishes either way.
 */
static gh_err
sqlite_rekey(struct gh_store_conn *c, int64_t *pages_out)
{
	sqlite3_stmt *stmt = NULL;
	gh_err err = GH_OK;
	int rc;

	*pages_out = 0;
	if (c->crypt == NULL) {
		GH_LOG_ERR(GH_ERR_INVALID, "rekey of a plain database");
		return GH_ERR_INVALID;
	}
	rc = sqlite3_exec(c->db, "VACUUM", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		err = sqlite_map_error(rc);
		GH_LOG_ERR(err, "rekey: vacuum: %s", sqlite3_errmsg(c->db));
		return err;
	}
	rc = sqlite3_prepare_v2(c->db, "PRAGMA wal_checkpoint(TRUNCATE)", -1,
	    &stmt, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		err = sqlite_map_error(rc);
		GH_LOG_ERR(err, "rekey: checkpoint: %s", sqlite3_errmsg(c->db));
		goto out;
	}
	if (sqlite3_column_int(stmt, 0) != 0) {
		/* Readers held older snapshots: the new pages are safe in
		 * the WAL but not yet in the database file. */
		err = GH_ERR_BUSY;
		GH_LOG_WARN(err, "rekey: checkpoint incomplete; run again");
		goto out;
	}
	sqlite3_finalize(stmt);
	stmt = NULL;
	rc = sqlite3_prepare_v2(c->db, "PRAGMA page_count", -1, &stmt, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		err = sqlite_map_error(rc);
		GH_LOG_ERR(err, "rekey: page count: %s", sqlite3_errmsg(c->db));
		goto out;
	}
	*pages_out = sqlite3_column_int64(stmt, 0);
	GH_LOG_INFO("rekeyed %lld pages under page key version %u",
	    (long long)*pages_out, (unsigned)gh_store_crypt_version(c->crypt));
out:
	sqlite3_finalize(stmt);
	return err;
}

static gh_err
sqlite_min_key_version(struct gh_store_conn *c, uint32_t *version_out)
{
	sqlite3_file *db_file = NULL, *wal = NULL;
	int rc;

	*version_out = 0;
	/* A read opens the WAL (if any) for this connection. */
	rc = sqlite3_exec(c->db, "SELECT 1 FROM sqlite_schema LIMIT 1", NULL,
	    NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_file_control(c->db, "main",
		    SQLITE_FCNTL_FILE_POINTER, &db_file);
	if (rc == SQLITE_OK)
		rc = sqlite3_file_control(c->db, "main",
		    SQLITE_FCNTL_JOURNAL_POINTER, &wal);
	if (rc != SQLITE_OK) {
		GH_LOG_ERR(GH_ERR_STORE, "min key version: %s",
		    sqlite3_errmsg(c->db));
		return sqlite_map_error(rc);
	}
	return gh_store_crypt_min_version(db_file, wal, version_out);
}

const struct gh_store_backend gh_store_backend_sqlite = {
	.name = "sqlite",
	.conn_open = sqlite_conn_open,
	.conn_close = sqlite_conn_close,
	.set_busy_timeout = sqlite_set_busy_timeout,
	.set_cache_kib = sqlite_set_cache_kib,
	.in_txn = sqlite_in_txn,
	.total_changes = sqlite_total_changes,
	.changes = sqlite_changes,
	.table_exists = sqlite_table_exists,
	.exec = sqlite_exec,
	.prepare = sqlite_prepare,
	.finalize = sqlite_finalize,
	.reset = sqlite_reset,
	.bind_text = sqlite_bind_text,
	.bind_int = sqlite_bind_int,
	.bind_blob = sqlite_bind_blob,
	.bind_null = sqlite_bind_null,
	.step = sqlite_step,
	.is_row = sqlite_is_row,
	.is_done = sqlite_is_done,
	.is_ok = sqlite_is_ok,
	.col_text = sqlite_col_text,
	.col_int = sqlite_col_int,
	.col_is_null = sqlite_col_is_null,
	.col_blob = sqlite_col_blob,
	.col_count = sqlite_col_count,
	.col_name = sqlite_col_name,
	.col_type = sqlite_col_type,
	.readonly = sqlite_readonly,
	.map_error = sqlite_map_error,
	.errmsg = sqlite_errmsg,
	.rekey = sqlite_rekey,
	.min_key_version = sqlite_min_key_version,
	.data_version = sqlite_data_version,
};
