/*
 * store_int.h: private to src/store and its tests.
 *
 * The generic layer (store.c: pool, transactions, migrations, the gh_db and
 * gh_stmt API) talks to a database only through struct gh_store_backend.
 * Today the only backend is SQLite (sqlite.c). A PostgreSQL backend would be
 * a second table beside it (pg.c): it would map a tenant to a schema instead
 * of a file, translate the common dialect on the way in (`?` placeholders to
 * $1..$n, BLOB to BYTEA; see the note on prepare below) and map SQLSTATEs to
 * gh_err in its own map_error. No caller of store.h changes.
 */
#ifndef GH_STORE_INT_H
#define GH_STORE_INT_H

#include "store/store.h"

/* Connections cached per database (the directory and each tenant). */
#define GH_STORE_POOL_MAX 4
/* Connections kept open across all databases unless gh_store_set_limits
 * says otherwise. Above it the least recently released idle connections
 * are closed, so touching many tenants can exhaust neither file
 * descriptors (each SQLite connection holds the database, -wal and -shm)
 * nor memory. Handles in use are bounded by the threads, not by this. */
#define GH_STORE_OPEN_MAX GH_STORE_OPEN_MAX_DEFAULT
/* How long a statement waits for another writer before GH_ERR_BUSY. */
#define GH_STORE_BUSY_MS 5000

/* A backend connection and statement are opaque to the generic layer. */
struct gh_store_conn;
struct gh_store_bstmt;

struct gh_store_backend {
	const char *name;

	/*
	 * Opens one connection to the directory database (org_id and region
	 * NULL) or to org_id's tenant database in region, both already
	 * validated. With create, makes the database if it is missing;
	 * without, fails GH_ERR_NOTFOUND and creates nothing. Applies the
	 * per-connection settings; migrations are the caller's job.
	 */
	/*
	 * keys (tenants only; NULL: plain) encrypt the tenant database page
	 * by page; the newest key is fetched before anything is created, so
	 * a callback error (GH_ERR_DENIED, GH_ERR_NOTFOUND) is returned as
	 * is and leaves no file behind. A plain database with keys, or an
	 * encrypted one without, fails GH_ERR_STORE.
	 */
	gh_err (*conn_open)(const char *data_dir, const char *region,
	    const char *org_id, const struct gh_store_keys *keys,
	    bool create, int busy_ms, struct gh_store_conn **out);
	/* Closes; NULL is a no-op. Statements must be finalized first. */
	void (*conn_close)(struct gh_store_conn *c);
	void (*set_busy_timeout)(struct gh_store_conn *c, int ms);
	/* Bounds the connection's page cache to kib KiB. */
	gh_err (*set_cache_kib)(struct gh_store_conn *c, int kib);
	/* True while an explicit transaction is open. */
	bool (*in_txn)(struct gh_store_conn *c);
	int64_t (*changes)(struct gh_store_conn *c);
	/* Rows changed through this connection since it opened (every
	 * write statement, committed or not). */
	int64_t (*total_changes)(struct gh_store_conn *c);
	/* Whether a table exists (the one catalogue query that differs
	 * between dialects). */
	gh_err (*table_exists)(struct gh_store_conn *c, const char *table,
	    bool *out);

	/*
	 * Runs parameterless SQL, possibly several statements. Native error
	 * codes go through map_error; the failure is logged by the caller
	 * with errmsg.
	 */
	int (*exec)(struct gh_store_conn *c, const char *sql);
	/*
	 * Prepares one statement in the common dialect. This is where a PG
	 * backend rewrites `?` to `$n` (outside string literals) and BLOB to
	 * BYTEA before PQprepare.
	 */
	int (*prepare)(struct gh_store_conn *c, const char *sql,
	    struct gh_store_bstmt **out);
	void (*finalize)(struct gh_store_bstmt *s);
	void (*reset)(struct gh_store_bstmt *s);
	/* Parameters are 1-based. */
	int (*bind_text)(struct gh_store_bstmt *s, int i, const char *v);
	int (*bind_int)(struct gh_store_bstmt *s, int i, int64_t v);
	int (*bind_blob)(struct gh_store_bstmt *s, int i, const void *p,
	    size_t n);
	int (*bind_null)(struct gh_store_bstmt *s, int i);
	/* Returns the backend's row, done or error code; see is_row/is_done. */
	int (*step)(struct gh_store_bstmt *s);
	bool (*is_row)(int rc);
	bool (*is_done)(int rc);
	bool (*is_ok)(int rc);

	/* Columns are 0-based; NULL for SQL NULL. */
	const char *(*col_text)(struct gh_store_bstmt *s, int col);
	int64_t (*col_int)(struct gh_store_bstmt *s, int col);
	bool (*col_is_null)(struct gh_store_bstmt *s, int col);
	int (*col_count)(struct gh_store_bstmt *s);
	const char *(*col_name)(struct gh_store_bstmt *s, int col);
	enum gh_col_type (*col_type)(struct gh_store_bstmt *s, int col);
	bool (*readonly)(struct gh_store_bstmt *s);
	const void *(*col_blob)(struct gh_store_bstmt *s, int col,
	    size_t *len_out);

	/* Native code to gh_err: unique/primary key GH_ERR_CONFLICT, other
	 * constraints GH_ERR_INVALID, locks GH_ERR_BUSY, full GH_ERR_FULL,
	 * anything else GH_ERR_STORE. */
	gh_err (*map_error)(int rc);
	/* The backend's message for the last failure on c (no bound values). */
	const char *(*errmsg)(struct gh_store_conn *c);

	/* Rewrites every page of an encrypted tenant database under the
	 * connection's newest key, atomically; *pages_out gets the page
	 * count. */
	gh_err (*rekey)(struct gh_store_conn *c, int64_t *pages_out);
	/* The oldest page-key version on disk for the database of c, an
	 * encrypted tenant connection (0 when no page is sealed yet). */
	gh_err (*min_key_version)(struct gh_store_conn *c,
	    uint32_t *version_out);
	/*
	 * A number that differs between two calls on c when another
	 * connection, of any process, committed to the database in between
	 * (SQLite: PRAGMA data_version; PostgreSQL would read a counter
	 * bumped by the same commits). Cheap: no table is read.
	 */
	gh_err (*data_version)(struct gh_store_conn *c, int64_t *out);
};

extern const struct gh_store_backend gh_store_backend_sqlite;

/*
 * For tests: the busy timeout (ms) for connections opened from now on and
 * for every idle cached connection, so a lock test need not wait 5 s.
 */
void gh_store_set_busy_timeout(struct gh_store *st, int ms);

/* For tests: lowers the open_max of gh_store_set_limits, and counts open
 * connections. */
void gh_store_set_open_max(struct gh_store *st, int n);
int gh_store_open_count(struct gh_store *st);

/* Builds <data_dir>/directory.db or <data_dir>/<region>/<org_id>.db into
 * out (cleared first); for the SQLite backend and tests. */
gh_err gh_store_sqlite_path(const char *data_dir, const char *region,
    const char *org_id, struct gh_buf *out) GH_MUST_CHECK;

/* ---- crypt.c: the page-encrypting VFS ------------------------------------ */

#define GH_STORE_CRYPT_VFS "gh-crypt"
/* Encrypted databases have this fixed page size, and SQLite reserves the
 * last GH_STORE_PAGE_RESERVE bytes of each page for the key version, nonce
 * and tag. */
#define GH_STORE_PAGE_SIZE 4096
#define GH_STORE_PAGE_RESERVE 32

/* One connection's page keys: the newest, fetched at creation, and a few
 * older versions fetched as pages need them. */
struct gh_store_crypt;

/* Registers the VFS with SQLite (once per process; not as the default). */
gh_err gh_store_crypt_register(void) GH_MUST_CHECK;
/* Fetches org_id's newest page key through keys (copied). Callback errors
 * are returned as they are. */
gh_err gh_store_crypt_new(const struct gh_store_keys *keys,
    const char *org_id, struct gh_store_crypt **out) GH_MUST_CHECK;
/* Wipes and frees. NULL is a no-op. Only after the connection using it is
 * closed: its files borrow it. */
void gh_store_crypt_free(struct gh_store_crypt *c);
/* The newest key's version. */
uint32_t gh_store_crypt_version(const struct gh_store_crypt *c);
/* Hands c to the next main database this thread opens through the VFS:
 * call right before sqlite3_open_v2 and with NULL right after. */
void gh_store_crypt_hand_over(struct gh_store_crypt *c);
/* Whether the VFS took c for the database just opened. */
bool gh_store_crypt_attached(const struct gh_store_crypt *c);
/* The file under f: f itself for a plain database, the unix VFS's file
 * below the encryption layer for one opened through gh-crypt. For raw
 * reads through the descriptor SQLite already holds: opening and closing
 * another descriptor of a database file would drop every POSIX lock the
 * process holds on it, and with them other connections' claim to the
 * WAL (see sqlite.c, check_format). */
struct sqlite3_file *gh_store_crypt_raw_file(struct sqlite3_file *f);

/* Reads the key version of every sealed page of the database file db and
 * of every frame of its WAL file wal (NULL: none open), stale frames
 * included, through those SQLite files (their own descriptors, raw under
 * the encryption layer); *version_out gets the smallest (0 if none).
 * GH_ERR_INVALID for a plain database. */
gh_err gh_store_crypt_min_version(struct sqlite3_file *db,
    struct sqlite3_file *wal, uint32_t *version_out) GH_MUST_CHECK;

#endif
