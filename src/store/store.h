/*
 * store.h: the data directory. One directory database (organisations,
 * operator audit) and one database per organisation (everything that
 * organisation owns). Capabilities write portable SQL (the dialect SQLite
 * and PostgreSQL share; `?` placeholders) through this narrow interface and
 * never see the backend. Today the backend is SQLite in WAL mode:
 * <data_dir>/directory.db and <data_dir>/<region>/<org-id>.db.
 *
 * Isolation by construction: a tenant handle is a connection to that
 * organisation's own database, so no query through it can name another
 * organisation's rows.
 *
 * Concurrency: gh_store is shared by all threads. A gh_db handle is used by
 * one thread at a time: acquiring it locks it, gh_db_release unlocks it.
 * Lock order: the directory before a tenant; never two tenants at once.
 */
#ifndef GH_STORE_H
#define GH_STORE_H

#include "core/core.h"

struct gh_store;
struct gh_db;
struct gh_stmt;

/* Process-wide SQLite settings (no memory statistics: a global mutex on
 * every allocation). Takes effect only before SQLite's first use in the
 * process, so main calls it first; opening a store calls it too. */
void gh_store_sqlite_setup(void);

/* Opens the data directory (which must exist), creating directory.db if
 * create is true and applying the directory migrations. Fails with
 * GH_ERR_NOTFOUND when the directory database is missing and create is
 * false. */
gh_err gh_store_open(const char *data_dir, bool create,
    struct gh_store **out) GH_MUST_CHECK;
/* Closes every cached connection. NULL is a no-op. Handles must have been
 * released. */
void gh_store_free(struct gh_store *st);
/*
 * Memory bounds, for a server holding many organisations. open_max: the
 * connections kept open across all databases (0: keep the default,
 * GH_STORE_OPEN_MAX_DEFAULT); above it the connections idle the longest
 * are closed, so an organisation used once does not hold its page cache
 * and schema for the life of the process. Handles in use are bounded by
 * the threads, not by this. cache_kib: the page cache of each connection
 * opened from now on, in KiB (0: the backend's default, 2 MiB for
 * SQLite).
 */
#define GH_STORE_OPEN_MAX_DEFAULT 8
void gh_store_set_limits(struct gh_store *st, int open_max, int cache_kib);

/* The data directory path (borrowed for the store's lifetime). */
const char *gh_store_data_dir(const struct gh_store *st);

/*
 * Page encryption of tenant databases. When set, every tenant database is
 * encrypted page by page (AES-256-GCM, the page number and org id as AAD,
 * the key version stored with each page) through a SQLite VFS, WAL
 * included; the directory database stays plain (it holds no customer
 * data). page_key gives the org's page key: version 0 asks for the newest,
 * whose number goes to *version_out. It returns GH_ERR_DENIED while the
 * org's keys are unavailable (a revoked customer key) and GH_ERR_NOTFOUND
 * once they are destroyed; the tenant then does not open. The store wipes
 * every key it is given.
 */
struct gh_store_keys {
	gh_err (*page_key)(void *arg, const char *org_id, uint32_t version,
	    uint32_t *version_out, uint8_t key[32]);
	void *arg;
};

/* Installs the page keys (copied). Call before the first tenant opens.
 * Without it tenant databases are plain SQLite (unit tests only). */
void gh_store_set_keys(struct gh_store *st, const struct gh_store_keys *keys);

/* Re-encrypts every page of a tenant database under the newest page key
 * (a VACUUM through the encrypting VFS: atomic, so a crash leaves the old
 * file whole and re-running finishes the job). *pages_out, if not NULL,
 * gets the page count. */
gh_err gh_store_tenant_rekey(struct gh_store *st, const char *org_id,
    const char *region, int64_t *pages_out) GH_MUST_CHECK;
/* The oldest page-key version still used by any page of the tenant
 * database (so that older versions can be retired). */
gh_err gh_store_tenant_min_key_version(struct gh_store *st,
    const char *org_id, const char *region, uint32_t *version_out)
    GH_MUST_CHECK;
/* Closes the org's cached connections (after its keys changed or were
 * destroyed), so that the next acquire opens with the current keys. Waits
 * for handles in use: never call it while holding one of that org. */
void gh_store_tenant_evict(struct gh_store *st, const char *org_id);

/* Acquires the directory database. Release with gh_db_release. */
gh_err gh_store_directory(struct gh_store *st, struct gh_db **out)
    GH_MUST_CHECK;

/* Acquires org_id's tenant database in region, creating the file and
 * applying pending tenant migrations when create is true (else
 * GH_ERR_NOTFOUND if absent). org_id must satisfy gh_id_valid and region
 * gh_store_region_valid: nothing from a client reaches the file system
 * otherwise. Release with gh_db_release. */
gh_err gh_store_tenant(struct gh_store *st, const char *org_id,
    const char *region, bool create, struct gh_db **out) GH_MUST_CHECK;

/*
 * The generation of the organisations in the directory: a counter that
 * every change of the orgs table bumps in its own transaction
 * (src/identity/org.c), whichever process makes it (the server's admin
 * API, the CLI). Cheap enough for every request: a few connections kept
 * open ask the backend whether anything committed to the directory since
 * they last looked, and read the counter only then. Once a change has
 * committed, every later call returns the new value. For caches of
 * organisations (gh_identity_org_cache).
 */
gh_err gh_store_org_gen(struct gh_store *st, int64_t *out) GH_MUST_CHECK;

/*
 * Outbox hints: "this org may have pending rows in its outbox of kind"
 * (kind: 1-32 chars of [a-z_], e.g. "mail", "bcl"), in the directory, so
 * that a sender finds the orgs with work without opening every tenant.
 *
 * gh_db_outbox_hint puts the hint of db's org (a tenant handle, usually
 * inside the transaction that queues the row). It commits at once, through
 * a directory connection of the store's own (never a pooled handle, so the
 * lock order holds), and so precedes the caller's commit: a hint with
 * nothing behind it is harmless, a row without one would be missed. So a
 * tenant's write transaction may wait for the directory's write lock, and
 * nothing may wait for an existing tenant's write lock while it holds the
 * directory's (an org rename opens the tenant's transaction first).
 */
gh_err gh_db_outbox_hint(struct gh_db *db, const char *kind) GH_MUST_CHECK;
/* Calls fn for each org with a pending hint of kind written after after_seq
 * (0: every one); *seq_out gets the newest seq read (after_seq when none),
 * for the next call. One directory query. */
gh_err gh_store_outbox_hints(struct gh_store *st, const char *kind,
    int64_t after_seq, void (*fn)(const char *org_id, void *arg), void *arg,
    int64_t *seq_out) GH_MUST_CHECK;
/*
 * Clears org_id's hint of kind, for a sender that found the outbox empty
 * at checked_at (read before looking). A writer may have put the hint and
 * not yet committed its row, invisible to that look; so only a hint put
 * more than GH_STORE_HINT_GRACE_MS before checked_at is cleared (a
 * transaction never lasts that long), and a younger one stays until a
 * later look: *kept_out (may be NULL) says a hint is still pending, so
 * that the sender looks again soon.
 */
#define GH_STORE_HINT_GRACE_MS (120 * 1000)
gh_err gh_store_outbox_hint_clear(struct gh_store *st, const char *org_id,
    const char *kind, int64_t checked_at, bool *kept_out) GH_MUST_CHECK;

/* Region names: 1-32 chars of [a-z0-9-], starting with a letter. */
bool gh_store_region_valid(const char *region);

/* Unlocks the handle for other threads. Rolls back an open transaction.
 * NULL is a no-op. */
void gh_db_release(struct gh_db *db);

/* For tenant handles, the organisation id (borrowed); NULL for the
 * directory. */
const char *gh_db_org_id(const struct gh_db *db);

/* Transactions. BEGIN takes the write lock at once so that a transaction
 * never fails half-way on a lock upgrade. */
gh_err gh_db_begin(struct gh_db *db) GH_MUST_CHECK;
gh_err gh_db_commit(struct gh_db *db) GH_MUST_CHECK;
/* Safe to call when no transaction is open. */
void gh_db_rollback(struct gh_db *db);

/* Runs SQL without parameters or results (may hold several statements). */
gh_err gh_db_exec(struct gh_db *db, const char *sql) GH_MUST_CHECK;
/* Rows changed by the last INSERT, UPDATE or DELETE. */
int64_t gh_db_changes(struct gh_db *db);

/*
 * What this connection sees of the database, as two counters: the two are
 * the same as at an earlier call only if nothing committed to the database
 * since (through any connection, of any process, this one included). Cheap
 * while nothing commits (no system call). False, and out unset, inside a
 * transaction (own writes may still be rolled back) or on a store error:
 * the caller then reads the data.
 */
struct gh_db_version {
	int64_t others;		/* the backend's data version */
	int64_t own;		/* rows changed through this connection */
};
bool gh_db_version(struct gh_db *db, struct gh_db_version *out);
/*
 * The connection's memo: size zeroed bytes, allocated on first use (NULL
 * if that fails), wiped and freed when the connection closes. One user
 * only (the session check, src/auth/session.c); every call passes the
 * same size. Reached only by the thread holding the handle.
 */
void *gh_db_memo(struct gh_db *db, size_t size);

/* Prepares one statement. The statement borrows db and must be freed
 * before db is released. */
gh_err gh_db_prepare(struct gh_db *db, const char *sql,
    struct gh_stmt **out) GH_MUST_CHECK;

/*
 * Binds parameters 1..n from a format string, one letter each:
 *   t  const char *          text (NULL binds SQL NULL)
 *   i  int64_t               integer
 *   b  const void *, size_t  blob (NULL binds SQL NULL)
 *   n  (no argument)         SQL NULL
 */
gh_err gh_stmt_bind(struct gh_stmt *st, const char *fmt, ...) GH_MUST_CHECK;

/* Like gh_stmt_bind but starting at parameter index first (1-based), for
 * callers that bind one value at a time. */
gh_err gh_stmt_bind_at(struct gh_stmt *st, int first, const char *fmt, ...)
    GH_MUST_CHECK;

/* True when the statement cannot change the database. */
bool gh_stmt_readonly(struct gh_stmt *st);

/* Steps. GH_OK with *row true for a row, false when done. Maps the
 * backend's errors: unique violation GH_ERR_CONFLICT, lock timeout
 * GH_ERR_BUSY, disk full GH_ERR_FULL, anything else GH_ERR_STORE. */
gh_err gh_stmt_step(struct gh_stmt *st, bool *row) GH_MUST_CHECK;
/* Steps a statement expected to return no rows. */
gh_err gh_stmt_run(struct gh_stmt *st) GH_MUST_CHECK;
/* Resets for re-execution with new bindings. */
void gh_stmt_reset(struct gh_stmt *st);

/* Column accessors, 0-based. Text is borrowed until the next step/free;
 * NULL for SQL NULL. */
const char *gh_stmt_text(struct gh_stmt *st, int col);
int64_t gh_stmt_int(struct gh_stmt *st, int col);
bool gh_stmt_is_null(struct gh_stmt *st, int col);
const void *gh_stmt_blob(struct gh_stmt *st, int col, size_t *len_out);

/* Result shape, for generic consumers (the operator's db sql command). */
enum gh_col_type { GH_COL_NULL, GH_COL_INT, GH_COL_REAL, GH_COL_TEXT,
	GH_COL_BLOB };
int gh_stmt_columns(struct gh_stmt *st);
/* Borrowed until the statement is freed. */
const char *gh_stmt_column_name(struct gh_stmt *st, int col);
/* The type of col in the current row. */
enum gh_col_type gh_stmt_column_type(struct gh_stmt *st, int col);

/* Finalizes. NULL is a no-op. */
void gh_stmt_free(struct gh_stmt *st);

/* Convenience: prepare, bind, run, free (no result rows). */
gh_err gh_db_run(struct gh_db *db, const char *sql, const char *fmt, ...)
    GH_MUST_CHECK;

#endif
