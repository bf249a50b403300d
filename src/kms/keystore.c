/*
 * keystore.c: the key store, a SQLite database of its own (WAL,
 * synchronous=FULL, foreign keys, secure_delete) holding wrapped keys:
 * master versions in use, org keys, data keys, customer keys (wrapped by
 * the master, with a fingerprint and a state) and shredded org ids.
 *
 * Untrusted input: the database file, which may be damaged or truncated
 * (PRAGMA quick_check, the application id and the schema version are
 * checked at open); every blob is authenticated by its unwrapper. Secrets:
 * none in plaintext; wrapped blobs only.
 */
#include "kms/keystore.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KS_APP_ID 0x47484b53	/* "GHKS" */
#define KS_SCHEMA 1
#define KS_BUSY_MS 5000

struct ks {
	sqlite3 *db;
	char *path;
};

static const char ks_schema[] =
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);\n"
    "CREATE TABLE master_versions (\n"
    "  version INTEGER PRIMARY KEY CHECK (version > 0),\n"
    "  canary BLOB NOT NULL,\n"
    "  created_at INTEGER NOT NULL);\n"
    "CREATE TABLE org_keys (\n"
    "  org_id TEXT NOT NULL,\n"
    "  version INTEGER NOT NULL CHECK (version > 0),\n"
    "  blob BLOB NOT NULL,\n"
    "  master_version INTEGER NOT NULL\n"
    "    REFERENCES master_versions (version),\n"
    "  byok INTEGER NOT NULL CHECK (byok IN (0, 1)),\n"
    "  created_at INTEGER NOT NULL,\n"
    "  PRIMARY KEY (org_id, version)) WITHOUT ROWID;\n"
    "CREATE TABLE data_keys (\n"
    "  org_id TEXT NOT NULL,\n"
    "  purpose INTEGER NOT NULL,\n"
    "  version INTEGER NOT NULL CHECK (version > 0),\n"
    "  org_key_version INTEGER NOT NULL,\n"
    "  blob BLOB NOT NULL,\n"
    "  created_at INTEGER NOT NULL,\n"
    "  PRIMARY KEY (org_id, purpose, version),\n"
    "  FOREIGN KEY (org_id, org_key_version)\n"
    "    REFERENCES org_keys (org_id, version)) WITHOUT ROWID;\n"
    "CREATE TABLE customer_keys (\n"
    "  org_id TEXT PRIMARY KEY,\n"
    "  blob BLOB,\n"
    "  master_version INTEGER REFERENCES master_versions (version),\n"
    "  fingerprint BLOB NOT NULL,\n"
    "  state TEXT NOT NULL CHECK (state IN ('active', 'revoked')),\n"
    "  created_at INTEGER NOT NULL,\n"
    "  CHECK ((state = 'active') = (blob IS NOT NULL))) WITHOUT ROWID;\n"
    "CREATE TABLE shredded_orgs (\n"
    "  org_id TEXT PRIMARY KEY,\n"
    "  shredded_at INTEGER NOT NULL) WITHOUT ROWID;\n";

static const char ks_settings[] =
    "PRAGMA foreign_keys = ON;"
    "PRAGMA synchronous = FULL;"
    "PRAGMA secure_delete = ON;";

static gh_err
map_rc(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return GH_OK;
	case SQLITE_NOMEM:
		return GH_ERR_NOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return GH_ERR_BUSY;
	case SQLITE_FULL:
		return GH_ERR_FULL;
	case SQLITE_CONSTRAINT:
		return GH_ERR_CONFLICT;
	default:
		return GH_ERR_STORE;
	}
}

/* Why a database could not be used, for errmsg. */
static const char *
ks_why(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return "damaged or truncated";
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return "locked by another process";
	default:
		return "cannot open";
	}
}

static gh_err
ks_fail(struct ks *ks, int rc, const char *what)
{
	gh_err err = map_rc(rc);

	GH_LOG_ERR(err, "key store %s: %s: %s", ks->path, what,
	    sqlite3_errmsg(ks->db));
	return err;
}

static gh_err
ks_exec(struct ks *ks, const char *sql)
{
	int rc = sqlite3_exec(ks->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? GH_OK : ks_fail(ks, rc, sql);
}

static gh_err
ks_prepare(struct ks *ks, const char *sql, sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v2(ks->db, sql, -1, st, NULL);

	return rc == SQLITE_OK ? GH_OK : ks_fail(ks, rc, "prepare");
}

/* Steps a statement that returns no rows, then finalizes it. */
static gh_err
ks_step_done(struct ks *ks, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	gh_err err = GH_OK;

	if (rc != SQLITE_DONE)
		err = ks_fail(ks, rc, what);
	sqlite3_finalize(st);
	return err;
}

static void
bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* ---- open and create ----------------------------------------------------- */

static gh_err
ks_connect(const char *path, struct ks **out, char *errmsg,
    size_t errmsg_cap)
{
	struct ks *ks;
	gh_err err = GH_OK;
	int rc;

	*out = NULL;
	if ((ks = calloc(1, sizeof *ks)) == NULL ||
	    (ks->path = gh_strdup(path)) == NULL) {
		free(ks);
		return GH_ERR_NOMEM;
	}
	/* No CREATE: the file must exist. kms.c serialises all calls, but
	 * FULLMUTEX keeps a stray concurrent call safe. */
	rc = sqlite3_open_v2(path, &ks->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK) {
		err = ks->db == NULL ? GH_ERR_NOMEM : GH_ERR_STORE;
		snprintf(errmsg, errmsg_cap, "key store %s: %s (%s)", path,
		    ks_why(rc), ks->db != NULL ? sqlite3_errmsg(ks->db) :
		    sqlite3_errstr(rc));
		goto out;
	}
	sqlite3_extended_result_codes(ks->db, 1);
	sqlite3_busy_timeout(ks->db, KS_BUSY_MS);
	sqlite3_db_config(ks->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(ks->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	rc = sqlite3_exec(ks->db, ks_settings, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		err = GH_ERR_STORE;
		snprintf(errmsg, errmsg_cap, "key store %s: %s (%s)", path,
		    ks_why(rc), sqlite3_errmsg(ks->db));
	}
out:
	if (err != GH_OK) {
		ks_close(ks);
		return err;
	}
	*out = ks;
	return GH_OK;
}

/* Reads a one-integer pragma. */
static gh_err
ks_pragma_int(struct ks *ks, const char *sql, int64_t *v)
{
	sqlite3_stmt *st;
	gh_err err;
	int rc;

	if ((err = ks_prepare(ks, sql, &st)) != GH_OK)
		return err;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int64(st, 0);
	else
		err = rc == SQLITE_DONE ? GH_ERR_STORE : map_rc(rc);
	sqlite3_finalize(st);
	return err;
}

gh_err
ks_create(const char *path, char *errmsg, size_t errmsg_cap)
{
	struct ks *ks = NULL;
	char sql[128];
	gh_err err;
	int fd;

	if (path == NULL || path[0] == '\0') {
		snprintf(errmsg, errmsg_cap, "key_store_file is not set");
		return GH_ERR_INVALID;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd < 0) {
		snprintf(errmsg, errmsg_cap, "key store %s: %s", path,
		    errno == EEXIST ? "exists already (refusing to "
		    "overwrite)" : strerror(errno));
		return errno == EEXIST ? GH_ERR_CONFLICT : GH_ERR_STORE;
	}
	(void)fchmod(fd, 0600);
	close(fd);
	if ((err = ks_connect(path, &ks, errmsg, errmsg_cap)) != GH_OK)
		goto out;
	snprintf(sql, sizeof sql, "PRAGMA journal_mode = WAL;"
	    "PRAGMA application_id = %d; PRAGMA user_version = %d;",
	    KS_APP_ID, KS_SCHEMA);
	if ((err = ks_exec(ks, sql)) != GH_OK ||
	    (err = ks_begin(ks)) != GH_OK)
		goto fail;
	if ((err = ks_exec(ks, ks_schema)) != GH_OK) {
		ks_rollback(ks);
		goto fail;
	}
	if ((err = ks_commit(ks)) != GH_OK)
		goto fail;
	goto out;
fail:
	snprintf(errmsg, errmsg_cap, "key store %s: cannot initialise: %s",
	    path, sqlite3_errmsg(ks->db));
out:
	ks_close(ks);
	if (err != GH_OK)
		(void)unlink(path);
	return err;
}

/* PRAGMA quick_check: every row must be "ok". */
static gh_err
ks_quick_check(struct ks *ks, char *errmsg, size_t errmsg_cap)
{
	sqlite3_stmt *st = NULL;
	const char *why = NULL;
	int rc;

	rc = sqlite3_prepare_v2(ks->db, "PRAGMA quick_check", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *r = (const char *)sqlite3_column_text(st,
			    0);

			if (r == NULL || strcmp(r, "ok") != 0) {
				snprintf(errmsg, errmsg_cap, "key store %s: "
				    "damaged or truncated (%s)", ks->path,
				    r != NULL ? r : "?");
				why = errmsg;
				break;
			}
		}
	}
	if (why == NULL && rc != SQLITE_DONE) {
		snprintf(errmsg, errmsg_cap,
		    "key store %s: damaged or truncated (%s)", ks->path,
		    sqlite3_errmsg(ks->db));
		why = errmsg;
	}
	sqlite3_finalize(st);
	return why == NULL ? GH_OK : GH_ERR_STORE;
}

gh_err
ks_open(const char *path, struct ks **out, char *errmsg, size_t errmsg_cap)
{
	struct ks *ks = NULL;
	struct stat st;
	int64_t app = 0, ver = 0, pages = 0, page_size = 0, busy = 1;
	gh_err err;

	*out = NULL;
	if (path == NULL || path[0] == '\0') {
		snprintf(errmsg, errmsg_cap, "key_store_file is not set");
		return GH_ERR_INVALID;
	}
	if (lstat(path, &st) != 0) {
		snprintf(errmsg, errmsg_cap, "key store %s: %s", path,
		    strerror(errno));
		return errno == ENOENT ? GH_ERR_NOTFOUND : GH_ERR_STORE;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(errmsg, errmsg_cap,
		    "key store %s: not a regular file", path);
		return GH_ERR_STORE;
	}
	if ((err = ks_connect(path, &ks, errmsg, errmsg_cap)) != GH_OK)
		return err;
	if ((err = ks_quick_check(ks, errmsg, errmsg_cap)) != GH_OK)
		goto out;
	err = ks_pragma_int(ks, "PRAGMA application_id", &app);
	if (err == GH_OK)
		err = ks_pragma_int(ks, "PRAGMA user_version", &ver);
	if (err != GH_OK || app != KS_APP_ID || ver != KS_SCHEMA) {
		snprintf(errmsg, errmsg_cap, "key store %s: %s", path,
		    app != KS_APP_ID ? "not a gatehouse key store (empty, "
		    "truncated or another file)" : "unknown schema version");
		err = GH_ERR_STORE;
		goto out;
	}
	/*
	 * A file cut short can still pass quick_check when the lost pages
	 * were free. Once the WAL is checkpointed into it, the file must
	 * hold every page its header counts.
	 */
	if ((err = ks_exec(ks, "PRAGMA journal_mode = WAL")) != GH_OK)
		goto fail;
	if ((err = ks_pragma_int(ks, "PRAGMA wal_checkpoint(TRUNCATE)",
	    &busy)) != GH_OK)
		goto fail;
	if ((err = ks_pragma_int(ks, "PRAGMA page_count", &pages)) != GH_OK ||
	    (err = ks_pragma_int(ks, "PRAGMA page_size", &page_size)) != GH_OK)
		goto fail;
	if (busy == 0 && stat(path, &st) == 0 &&
	    (int64_t)st.st_size < pages * page_size) {
		snprintf(errmsg, errmsg_cap, "key store %s: truncated (%lld "
		    "bytes, want %lld)", path, (long long)st.st_size,
		    (long long)(pages * page_size));
		err = GH_ERR_STORE;
		goto out;
	}
	*out = ks;
	return GH_OK;
fail:
	snprintf(errmsg, errmsg_cap, "key store %s: %s (%s)", path,
	    ks_why(sqlite3_extended_errcode(ks->db)), sqlite3_errmsg(ks->db));
out:
	ks_close(ks);
	return err;
}

void
ks_close(struct ks *ks)
{
	if (ks == NULL)
		return;
	if (ks->db != NULL && sqlite3_close(ks->db) != SQLITE_OK)
		GH_PANIC("key store close with unfinalized statements");
	free(ks->path);
	free(ks);
}

gh_err
ks_begin(struct ks *ks)
{
	return ks_exec(ks, "BEGIN IMMEDIATE");
}

gh_err
ks_commit(struct ks *ks)
{
	return ks_exec(ks, "COMMIT");
}

void
ks_rollback(struct ks *ks)
{
	if (sqlite3_get_autocommit(ks->db) == 0)
		(void)sqlite3_exec(ks->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- rows ---------------------------------------------------------------- */

void
ks_rows_free(struct ks_rows *rows)
{
	size_t i;

	for (i = 0; i < rows->n; i++) {
		free(rows->v[i].org_id);
		free(rows->v[i].blob);
	}
	free(rows->v);
	rows->v = NULL;
	rows->n = 0;
}

enum ks_kind { KS_ORG, KS_DATA, KS_CUSTOMER };

/* Reads every row of st into out; columns per kind, see the queries. */
static gh_err
ks_collect(struct ks *ks, sqlite3_stmt *st, enum ks_kind kind,
    struct ks_rows *out)
{
	size_t cap = 0;
	gh_err err = GH_OK;
	int rc;

	out->v = NULL;
	out->n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ks_row *r;
		const void *blob;
		int blob_len;

		if (out->n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct ks_row *v = realloc(out->v, ncap * sizeof *v);

			if (v == NULL) {
				err = GH_ERR_NOMEM;
				goto out;
			}
			out->v = v;
			cap = ncap;
		}
		r = &out->v[out->n];
		memset(r, 0, sizeof *r);
		out->n++;
		r->org_id = gh_strdup((const char *)sqlite3_column_text(st, 0));
		if (r->org_id == NULL) {
			err = GH_ERR_NOMEM;
			goto out;
		}
		r->version = (uint32_t)sqlite3_column_int64(st, 1);
		r->wrap_version = (uint32_t)sqlite3_column_int64(st, 2);
		r->created_at = sqlite3_column_int64(st, 4);
		switch (kind) {
		case KS_ORG:
			r->byok = sqlite3_column_int(st, 5) != 0;
			break;
		case KS_DATA:
			r->purpose = sqlite3_column_int(st, 5);
			break;
		case KS_CUSTOMER:
			r->state = sqlite3_column_int(st, 5) ? KS_CK_ACTIVE :
			    KS_CK_REVOKED;
			if (sqlite3_column_bytes(st, 6) != GH_SHA256_LEN) {
				err = GH_ERR_STORE;
				goto out;
			}
			memcpy(r->fp, sqlite3_column_blob(st, 6),
			    GH_SHA256_LEN);
			break;
		}
		blob = sqlite3_column_blob(st, 3);
		blob_len = sqlite3_column_bytes(st, 3);
		if (blob != NULL && blob_len > 0) {
			if ((r->blob = malloc((size_t)blob_len)) == NULL) {
				err = GH_ERR_NOMEM;
				goto out;
			}
			memcpy(r->blob, blob, (size_t)blob_len);
			r->blob_len = (size_t)blob_len;
		}
	}
	if (rc != SQLITE_DONE)
		err = ks_fail(ks, rc, "read");
out:
	sqlite3_finalize(st);
	if (err != GH_OK)
		ks_rows_free(out);
	return err;
}

gh_err
ks_org_keys(struct ks *ks, const char *org, uint32_t version,
    struct ks_rows *out)
{
	sqlite3_stmt *st;
	gh_err err;

	out->v = NULL;
	out->n = 0;
	err = ks_prepare(ks, "SELECT org_id, version, master_version, blob, "
	    "created_at, byok FROM org_keys "
	    "WHERE (?1 IS NULL OR org_id = ?1) AND (?2 = 0 OR version = ?2) "
	    "ORDER BY org_id, version DESC", &st);
	if (err != GH_OK)
		return err;
	bind_text_or_null(st, 1, org);
	sqlite3_bind_int64(st, 2, version);
	return ks_collect(ks, st, KS_ORG, out);
}

gh_err
ks_data_keys(struct ks *ks, const char *org, int purpose, uint32_t version,
    struct ks_rows *out)
{
	sqlite3_stmt *st;
	gh_err err;

	out->v = NULL;
	out->n = 0;
	err = ks_prepare(ks, "SELECT org_id, version, org_key_version, blob, "
	    "created_at, purpose FROM data_keys "
	    "WHERE (?1 IS NULL OR org_id = ?1) AND (?2 = 0 OR purpose = ?2) "
	    "AND (?3 = 0 OR version = ?3) "
	    "ORDER BY org_id, purpose, version DESC", &st);
	if (err != GH_OK)
		return err;
	bind_text_or_null(st, 1, org);
	sqlite3_bind_int(st, 2, purpose);
	sqlite3_bind_int64(st, 3, version);
	return ks_collect(ks, st, KS_DATA, out);
}

gh_err
ks_customer_keys(struct ks *ks, const char *org, struct ks_rows *out)
{
	sqlite3_stmt *st;
	gh_err err;

	out->v = NULL;
	out->n = 0;
	err = ks_prepare(ks, "SELECT org_id, 0, coalesce(master_version, 0), "
	    "blob, created_at, state = 'active', fingerprint "
	    "FROM customer_keys WHERE (?1 IS NULL OR org_id = ?1) "
	    "ORDER BY org_id", &st);
	if (err != GH_OK)
		return err;
	bind_text_or_null(st, 1, org);
	return ks_collect(ks, st, KS_CUSTOMER, out);
}

gh_err
ks_org_key_put(struct ks *ks, const struct ks_row *r)
{
	sqlite3_stmt *st;
	gh_err err;

	err = ks_prepare(ks, "INSERT OR REPLACE INTO org_keys (org_id, "
	    "version, blob, master_version, byok, created_at) "
	    "VALUES (?, ?, ?, ?, ?, ?)", &st);
	if (err != GH_OK)
		return err;
	sqlite3_bind_text(st, 1, r->org_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, r->version);
	sqlite3_bind_blob(st, 3, r->blob, (int)r->blob_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, r->wrap_version);
	sqlite3_bind_int(st, 5, r->byok ? 1 : 0);
	sqlite3_bind_int64(st, 6, r->created_at ? r->created_at : gh_now_ms());
	return ks_step_done(ks, st, "org key put");
}

gh_err
ks_data_key_put(struct ks *ks, const struct ks_row *r)
{
	sqlite3_stmt *st;
	gh_err err;

	err = ks_prepare(ks, "INSERT OR REPLACE INTO data_keys (org_id, "
	    "purpose, version, org_key_version, blob, created_at) "
	    "VALUES (?, ?, ?, ?, ?, ?)", &st);
	if (err != GH_OK)
		return err;
	sqlite3_bind_text(st, 1, r->org_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, r->purpose);
	sqlite3_bind_int64(st, 3, r->version);
	sqlite3_bind_int64(st, 4, r->wrap_version);
	sqlite3_bind_blob(st, 5, r->blob, (int)r->blob_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, r->created_at ? r->created_at : gh_now_ms());
	return ks_step_done(ks, st, "data key put");
}

gh_err
ks_customer_key_put(struct ks *ks, const struct ks_row *r)
{
	sqlite3_stmt *st;
	gh_err err;

	err = ks_prepare(ks, "INSERT OR REPLACE INTO customer_keys (org_id, "
	    "blob, master_version, fingerprint, state, created_at) "
	    "VALUES (?, ?, ?, ?, ?, ?)", &st);
	if (err != GH_OK)
		return err;
	sqlite3_bind_text(st, 1, r->org_id, -1, SQLITE_STATIC);
	if (r->state == KS_CK_ACTIVE) {
		sqlite3_bind_blob(st, 2, r->blob, (int)r->blob_len,
		    SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, r->wrap_version);
	} else {
		sqlite3_bind_null(st, 2);
		sqlite3_bind_null(st, 3);
	}
	sqlite3_bind_blob(st, 4, r->fp, GH_SHA256_LEN, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->state == KS_CK_ACTIVE ? "active" :
	    "revoked", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, r->created_at ? r->created_at : gh_now_ms());
	return ks_step_done(ks, st, "customer key put");
}

gh_err
ks_data_keys_retire(struct ks *ks, const char *org, int purpose,
    uint32_t keep_from, int *deleted)
{
	sqlite3_stmt *st;
	gh_err err;

	err = ks_prepare(ks, "DELETE FROM data_keys WHERE org_id = ?1 AND "
	    "purpose = ?2 AND version < ?3 AND version < (SELECT max(version) "
	    "FROM data_keys WHERE org_id = ?1 AND purpose = ?2)", &st);
	if (err != GH_OK)
		return err;
	sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, purpose);
	sqlite3_bind_int64(st, 3, keep_from);
	err = ks_step_done(ks, st, "retire");
	*deleted = err == GH_OK ? sqlite3_changes(ks->db) : 0;
	return err;
}

gh_err
ks_org_keys_prune(struct ks *ks, const char *org, uint32_t keep)
{
	sqlite3_stmt *st;
	gh_err err;

	err = ks_prepare(ks, "DELETE FROM org_keys WHERE org_id = ?1 AND "
	    "version <> ?2 AND NOT EXISTS (SELECT 1 FROM data_keys d WHERE "
	    "d.org_id = ?1 AND d.org_key_version = org_keys.version)", &st);
	if (err != GH_OK)
		return err;
	sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, keep);
	return ks_step_done(ks, st, "prune org keys");
}

gh_err
ks_is_shredded(struct ks *ks, const char *org, bool *out)
{
	sqlite3_stmt *st;
	gh_err err;
	int rc;

	*out = false;
	err = ks_prepare(ks, "SELECT 1 FROM shredded_orgs WHERE org_id = ?",
	    &st);
	if (err != GH_OK)
		return err;
	sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = true;
	else if (rc != SQLITE_DONE)
		err = ks_fail(ks, rc, "shredded");
	sqlite3_finalize(st);
	return err;
}

static gh_err
ks_org_exec(struct ks *ks, const char *sql, const char *org)
{
	sqlite3_stmt *st;
	gh_err err;

	if ((err = ks_prepare(ks, sql, &st)) != GH_OK)
		return err;
	sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, gh_now_ms());
	return ks_step_done(ks, st, sql);
}

gh_err
ks_generation_bump(struct ks *ks)
{
	return ks_exec(ks, "INSERT INTO meta (name, value) VALUES "
	    "('generation', 1) ON CONFLICT (name) DO UPDATE SET "
	    "value = value + 1");
}

gh_err
ks_org_shred(struct ks *ks, const char *org)
{
	static const char *const sql[] = {
		"DELETE FROM data_keys WHERE org_id = ?1",
		"DELETE FROM org_keys WHERE org_id = ?1",
		"DELETE FROM customer_keys WHERE org_id = ?1",
		("INSERT INTO shredded_orgs (org_id, shredded_at) "
		    "VALUES (?1, ?2)"),
	};
	size_t i;
	gh_err err;

	/* Set for the connection at open too; repeated so that this
	 * guarantee does not depend on a distant line. */
	if ((err = ks_exec(ks, "PRAGMA secure_delete = ON")) != GH_OK)
		return err;
	if ((err = ks_begin(ks)) != GH_OK)
		return err;
	for (i = 0; i < sizeof sql / sizeof sql[0]; i++) {
		if ((err = ks_org_exec(ks, sql[i], org)) != GH_OK) {
			ks_rollback(ks);
			return err;
		}
	}
	if ((err = ks_generation_bump(ks)) != GH_OK ||
	    (err = ks_commit(ks)) != GH_OK) {
		ks_rollback(ks);
		return err;
	}
	/* Copy the zeroed pages into the file and empty the WAL, so the
	 * wrapped keys linger neither in free pages nor in old frames. */
	return ks_exec(ks, "PRAGMA wal_checkpoint(TRUNCATE)");
}

gh_err
ks_meta_get(struct ks *ks, const char *name, uint32_t *v)
{
	sqlite3_stmt *st;
	gh_err err;
	int rc;

	err = ks_prepare(ks, "SELECT value FROM meta WHERE name = ?", &st);
	if (err != GH_OK)
		return err;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v = (uint32_t)sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		err = GH_ERR_NOTFOUND;
	else
		err = ks_fail(ks, rc, "meta");
	sqlite3_finalize(st);
	return err;
}

gh_err
ks_meta_set(struct ks *ks, const char *name, uint32_t v)
{
	sqlite3_stmt *st;
	gh_err err;

	err = ks_prepare(ks, "INSERT OR REPLACE INTO meta (name, value) "
	    "VALUES (?, ?)", &st);
	if (err != GH_OK)
		return err;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, v);
	return ks_step_done(ks, st, "meta set");
}

gh_err
ks_meta_del(struct ks *ks, const char *name)
{
	sqlite3_stmt *st;
	gh_err err;

	err = ks_prepare(ks, "DELETE FROM meta WHERE name = ?", &st);
	if (err != GH_OK)
		return err;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	return ks_step_done(ks, st, "meta del");
}

gh_err
ks_master_add(struct ks *ks, uint32_t version, const uint8_t *canary,
    size_t canary_len)
{
	sqlite3_stmt *st;
	gh_err err;

	err = ks_prepare(ks, "INSERT OR IGNORE INTO master_versions "
	    "(version, canary, created_at) VALUES (?, ?, ?)", &st);
	if (err != GH_OK)
		return err;
	sqlite3_bind_int64(st, 1, version);
	sqlite3_bind_blob(st, 2, canary, (int)canary_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, gh_now_ms());
	return ks_step_done(ks, st, "master add");
}

gh_err
ks_master_canaries(struct ks *ks, struct ks_rows *out)
{
	sqlite3_stmt *st;
	gh_err err;

	out->v = NULL;
	out->n = 0;
	err = ks_prepare(ks, "SELECT '', version, version, canary, "
	    "created_at, 0 FROM master_versions ORDER BY version", &st);
	if (err != GH_OK)
		return err;
	return ks_collect(ks, st, KS_ORG, out);
}

gh_err
ks_master_del(struct ks *ks, uint32_t version)
{
	sqlite3_stmt *st;
	gh_err err;

	err = ks_prepare(ks, "DELETE FROM master_versions WHERE version = ?",
	    &st);
	if (err != GH_OK)
		return err;
	sqlite3_bind_int64(st, 1, version);
	return ks_step_done(ks, st, "master del");
}

gh_err
ks_master_referenced(struct ks *ks, uint32_t version, bool *out)
{
	sqlite3_stmt *st;
	gh_err err;
	int rc;

	*out = true;
	err = ks_prepare(ks, "SELECT EXISTS (SELECT 1 FROM org_keys WHERE "
	    "master_version = ?1) OR EXISTS (SELECT 1 FROM customer_keys "
	    "WHERE master_version = ?1)", &st);
	if (err != GH_OK)
		return err;
	sqlite3_bind_int64(st, 1, version);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int(st, 0) != 0;
	else
		err = ks_fail(ks, rc, "master referenced");
	sqlite3_finalize(st);
	return err;
}
