/*
 * store.c: the backend-neutral half of the store: validation of tenant
 * names, the per-database connection pool, transactions, migrations,
 * statements and the mapping of backend failures to gh_err and log lines.
 *
 * Untrusted input: org_id and region reach gh_store_tenant from clients;
 * both are validated here before the backend sees them, so nothing else
 * reaches the file system. Bound values are passed through to the backend
 * and never logged. Secrets: none held; values bound by callers (password
 * hashes, token hashes) are copied by the backend and not kept here. The
 * page-key callback is kept (a function and its argument, no key); the
 * backend fetches and holds the keys per connection.
 */
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/migrations.h"
#include "store/store_int.h"

/* One cached database: the directory or one tenant. */
struct pool {
	struct pool *next;	/* in its hash bucket */
	char *key;		/* "" for the directory, else region/org_id */
	char *region;		/* NULL for the directory */
	char *org_id;		/* NULL for the directory */
	struct gh_db *conns[GH_STORE_POOL_MAX];
	int n_conns;		/* open connections in conns */
	int n_opening;		/* slots reserved by threads opening */
	bool migrated;		/* migrations checked by this process */
	unsigned gen;		/* bumped by an eviction */
	/* The connection that committed last (NULL: none known) and the
	 * thread that committed on it. SQLite drops a connection's whole
	 * page cache when it finds that another one committed; the last
	 * committer's is current. A thread that writes tends to write
	 * again (the group-commit writer does nothing else), so that
	 * connection is kept for its thread: handed to it first, to others
	 * only when nothing else is idle. Only a preference: SQLite checks
	 * every cache itself. */
	struct gh_db *warm;
	pthread_t warm_thread;
};

/*
 * Prepared statements are kept per connection and reused: parsing SQL
 * dominated short requests. Keyed by the SQL text; least recently used
 * goes first; one statement is handed out once at a time.
 */
#define STMT_CACHE_N 32

struct stmt_slot {
	char *sql;			/* NULL: free slot */
	uint64_t hash;
	struct gh_store_bstmt *b;
	bool busy;			/* handed out */
	uint64_t used;			/* LRU clock */
};

struct gh_db {
	struct gh_store *st;
	struct pool *pool;
	struct gh_store_conn *conn;
	bool in_use;
	int n_stmts;		/* live statements; must be 0 on release */
	unsigned gen;		/* the pool's gen when this was opened */
	struct gh_db *next_victim;	/* lists of connections to close */
	/* The idle list (st->idle_*), most recently released first: a
	 * cached connection not in use is on it, and only such one. */
	struct gh_db *idle_prev, *idle_next;
	uint64_t released;	/* st->releases at its last release */
	struct stmt_slot cache[STMT_CACHE_N];
	void *memo;		/* gh_db_memo: wiped and freed on close */
	size_t memo_size;
	uint64_t clock;
};

struct gh_stmt {
	struct gh_db *db;
	struct gh_store_bstmt *b;
	int slot;		/* cache slot, or -1 when not cached */
};

/*
 * Probes of the organisations' generation (gh_store_org_gen): a few
 * connections to the directory kept out of the pool, each under its own
 * lock, so that the per-request check never waits on the pool's lock.
 */
#define DIR_PROBES 4

struct dir_probe {
	pthread_mutex_t mu;
	struct gh_store_conn *conn;	/* NULL until first used */
	struct gh_store_bstmt *gen_stmt;
	bool seen;			/* version and gen are current */
	int64_t version;		/* the backend's data version */
	int64_t gen;			/* org_generation at that version */
};

/* Pools by hash of their key: with a thousand organisations open, a
 * list walked under st->mu on every acquire showed in the latency. */
#define POOL_BUCKETS 1024

struct gh_store {
	const struct gh_store_backend *be;
	char *data_dir;
	pthread_mutex_t mu;
	pthread_cond_t cv;	/* a handle was released, a slot freed */
	struct pool *pools[POOL_BUCKETS];
	/* Idle cached connections, most recently released at the head; the
	 * tail is closed first when more than open_max are open. */
	struct gh_db *idle_head, *idle_tail;
	int n_open;		/* connections open across all pools */
	uint64_t releases;	/* handles released so far */
	int open_max;
	int cache_kib;		/* page cache per connection; 0: default */
	int busy_ms;
	struct gh_store_keys keys;	/* page_key NULL: plain tenants */
	struct dir_probe probes[DIR_PROBES];
	atomic_uint probe_next;
	/* Outbox hints are written through a directory connection of their
	 * own (gh_db_outbox_hint), by threads holding a tenant handle. */
	pthread_mutex_t hint_mu;
	struct gh_store_conn *hint_conn;	/* NULL until first used */
};

/* Finalizes the cached statements of db. */
static void
cache_drop(struct gh_db *db)
{
	for (int i = 0; i < STMT_CACHE_N; i++) {
		struct stmt_slot *c = &db->cache[i];

		if (c->sql == NULL)
			continue;
		if (c->busy)
			GH_PANIC("closing a connection with a statement out");
		db->st->be->finalize(c->b);
		free(c->sql);
		memset(c, 0, sizeof *c);
	}
}

/* Closes db's connection (its cached statements first) and frees db. */
static void
db_close(struct gh_db *db)
{
	cache_drop(db);
	db->st->be->conn_close(db->conn);
	if (db->memo != NULL)
		gh_wipe(db->memo, db->memo_size);
	free(db->memo);
	free(db);
}

/*
 * FNV-1a style, eight bytes a step: statements are hashed on every
 * prepare, and byte-at-a-time hashing of the longer ones (the session
 * check's is 400 bytes) showed in the profile of GET /me. Only equality
 * matters (a hit is confirmed with strcmp), so word-wise mixing is fine.
 */
static uint64_t
sql_hash(const char *sql)
{
	size_t n = strlen(sql), i = 0;
	uint64_t h = 1469598103934665603ULL ^ n, w;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, sql + i, 8);
		h = (h ^ w) * 1099511628211ULL;
		h ^= h >> 32;
	}
	for (; i < n; i++)
		h = (h ^ (unsigned char)sql[i]) * 1099511628211ULL;
	return h;
}

/* ---- the idle list (called with st->mu held) ------------------------------ */

static void
idle_push(struct gh_store *st, struct gh_db *db)
{
	db->idle_prev = NULL;
	db->idle_next = st->idle_head;
	if (st->idle_head != NULL)
		st->idle_head->idle_prev = db;
	else
		st->idle_tail = db;
	st->idle_head = db;
}

static void
idle_unlink(struct gh_store *st, struct gh_db *db)
{
	if (db->idle_prev != NULL)
		db->idle_prev->idle_next = db->idle_next;
	else
		st->idle_head = db->idle_next;
	if (db->idle_next != NULL)
		db->idle_next->idle_prev = db->idle_prev;
	else
		st->idle_tail = db->idle_prev;
	db->idle_prev = db->idle_next = NULL;
}

/* The database's name in logs: "directory" or the org id. */
static const char *
db_name(const struct gh_db *db)
{
	return db->pool->org_id != NULL ? db->pool->org_id : "directory";
}

/*
 * Logs a backend failure where it happened, at the level its kind deserves:
 * the store failing is an error, a lock timeout a warning, a constraint the
 * caller will report anyway only a debug line. The backend's message names
 * tables and columns, never bound values.
 */
static gh_err
db_fail(struct gh_db *db, const char *what, int rc)
{
	const struct gh_store_backend *be = db->st->be;
	gh_err err = be->map_error(rc);
	const char *msg = be->errmsg(db->conn);

	switch (err) {
	case GH_ERR_BUSY:
		GH_LOG_WARN(err, "%s: %s: %s", db_name(db), what, msg);
		break;
	case GH_ERR_CONFLICT:
	case GH_ERR_INVALID:
		gh_log(GH_LOG_LEVEL_DEBUG, __func__, err, "%s: %s: %s",
		    db_name(db), what, msg);
		break;
	default:
		GH_LOG_ERR(err, "%s: %s: %s", db_name(db), what, msg);
		break;
	}
	return err;
}

bool
gh_store_region_valid(const char *region)
{
	size_t i;

	if (region == NULL || !(region[0] >= 'a' && region[0] <= 'z'))
		return false;
	for (i = 0; region[i] != '\0'; i++) {
		char c = region[i];

		if (i >= 32)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-'))
			return false;
	}
	return true;
}

/* ---- migrations ---------------------------------------------------------- */

static gh_err
max_version(struct gh_db *db, int64_t *out)
{
	struct gh_stmt *s = NULL;
	bool row;
	gh_err err;

	*out = 0;
	err = gh_db_prepare(db, "SELECT COALESCE(MAX(version), 0) "
	    "FROM schema_migrations", &s);
	if (err != GH_OK)
		goto out;
	err = gh_stmt_step(s, &row);
	if (err != GH_OK)
		goto out;
	if (row)
		*out = gh_stmt_int(s, 0);
out:
	gh_stmt_free(s);
	return err;
}

static gh_err
refuse_newer(struct gh_db *db, int64_t have, size_t known)
{
	GH_LOG_ERR(GH_ERR_STORE, "%s: database schema version %lld is newer "
	    "than this binary knows (%zu); refusing to use it (upgrade "
	    "gatehouse)", db_name(db), (long long)have, known);
	return GH_ERR_STORE;
}

/*
 * Applies each pending migration in its own write transaction together with
 * its schema_migrations row. The version is re-read inside the transaction,
 * so two processes opening the same new database apply each migration once.
 */
static gh_err
migrate(struct gh_db *db)
{
	const struct gh_migration *m;
	size_t n, i;
	int64_t have;
	bool exists;
	gh_err err;

	if (db->pool->org_id == NULL) {
		m = gh_migrations_directory;
		n = gh_migrations_directory_len;
	} else {
		m = gh_migrations_tenant;
		n = gh_migrations_tenant_len;
	}
	err = db->st->be->table_exists(db->conn, "schema_migrations", &exists);
	if (err != GH_OK)
		return err;
	have = 0;
	if (exists) {
		err = max_version(db, &have);
		if (err != GH_OK)
			return err;
	}
	if (have > (int64_t)n)
		return refuse_newer(db, have, n);
	for (i = 0; i < n; i++) {
		if (m[i].version <= have)
			continue;
		err = gh_db_begin(db);
		if (err != GH_OK)
			return err;
		err = gh_db_exec(db, "CREATE TABLE IF NOT EXISTS "
		    "schema_migrations (version BIGINT PRIMARY KEY, "
		    "name TEXT NOT NULL, applied_at BIGINT NOT NULL)");
		if (err == GH_OK)
			err = max_version(db, &have);
		if (err != GH_OK)
			goto fail;
		if (have > (int64_t)n) {
			err = refuse_newer(db, have, n);
			goto fail;
		}
		if (m[i].version <= have) {
			/* Another process got there first. */
			gh_db_rollback(db);
			continue;
		}
		err = gh_db_exec(db, m[i].sql);
		if (err == GH_OK)
			err = gh_db_run(db, "INSERT INTO schema_migrations "
			    "(version, name, applied_at) VALUES (?, ?, ?)",
			    "iti", (int64_t)m[i].version, m[i].name,
			    gh_now_ms());
		if (err == GH_OK)
			err = gh_db_commit(db);
		if (err != GH_OK) {
			GH_LOG_ERR(err, "%s: migration %s failed",
			    db_name(db), m[i].name);
			goto fail;
		}
		GH_LOG_INFO("%s: applied migration %s", db_name(db),
		    m[i].name);
		have = m[i].version;
	}
	return GH_OK;
fail:
	gh_db_rollback(db);
	return err;
}

/* ---- the pool ------------------------------------------------------------ */

static void
pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	free(p->key);
	free(p->region);
	free(p->org_id);
	free(p);
}

static struct pool **
pool_bucket(struct gh_store *st, const char *key)
{
	return &st->pools[sql_hash(key) % POOL_BUCKETS];
}

/* Finds or adds the pool for key. Called with st->mu held. */
static gh_err
pool_get(struct gh_store *st, const char *region, const char *org_id,
    const char *key, struct pool **out)
{
	struct pool **bucket = pool_bucket(st, key);
	struct pool *p;

	for (p = *bucket; p != NULL; p = p->next)
		if (strcmp(p->key, key) == 0) {
			*out = p;
			return GH_OK;
		}
	p = calloc(1, sizeof *p);
	if (p == NULL)
		goto nomem;
	p->key = gh_strdup(key);
	p->region = gh_strdup(region);
	p->org_id = gh_strdup(org_id);
	if (p->key == NULL || (region != NULL && p->region == NULL) ||
	    (org_id != NULL && p->org_id == NULL))
		goto nomem;
	p->next = *bucket;
	*bucket = p;
	*out = p;
	return GH_OK;
nomem:
	pool_free(p);
	GH_LOG_ERR(GH_ERR_NOMEM, "pool");
	return GH_ERR_NOMEM;
}

/*
 * Drops a pool that holds no connection, so that probing for tenants that
 * do not exist cannot grow the list. Called with st->mu held.
 */
static void
pool_drop_if_empty(struct gh_store *st, struct pool *p)
{
	struct pool **pp;

	if (p->n_conns != 0 || p->n_opening != 0)
		return;
	for (pp = pool_bucket(st, p->key); *pp != NULL; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			pool_free(p);
			return;
		}
}

/* Takes db out of its pool, dropping the pool if it empties. Called with
 * st->mu held. */
static void
pool_remove(struct gh_store *st, struct gh_db *db)
{
	struct pool *p = db->pool;
	int i;

	st->n_open--;
	if (p->warm == db)
		p->warm = NULL;
	for (i = 0; i < p->n_conns; i++)
		if (p->conns[i] == db) {
			p->conns[i] = p->conns[--p->n_conns];
			p->conns[p->n_conns] = NULL;
			break;
		}
	pool_drop_if_empty(st, p);
}

/* Opens one connection for p and migrates on the first use in this
 * process. Called without st->mu; p stays alive since our reserved slot
 * keeps n_opening above zero. */
static gh_err
conn_new(struct gh_store *st, struct pool *p, const struct gh_store_keys *keys,
    bool create, bool migrated, unsigned gen, int cache_kib,
    struct gh_db **out)
{
	struct gh_db *db;
	gh_err err;

	*out = NULL;
	db = calloc(1, sizeof *db);
	if (db == NULL) {
		GH_LOG_ERR(GH_ERR_NOMEM, "connection");
		return GH_ERR_NOMEM;
	}
	db->st = st;
	db->pool = p;
	db->in_use = true;
	db->gen = gen;
	err = st->be->conn_open(st->data_dir, p->region, p->org_id, keys,
	    create, st->busy_ms, &db->conn);
	if (err == GH_OK && cache_kib > 0)
		err = st->be->set_cache_kib(db->conn, cache_kib);
	if (err == GH_OK && !migrated)
		err = migrate(db);
	if (err != GH_OK) {
		db_close(db);
		return err;
	}
	*out = db;
	return GH_OK;
}

/*
 * The idle connection of p to hand out, or NULL: to the thread that
 * committed last, its connection (p->warm); to any other thread the most
 * recently released one but p->warm (whose cache is the likeliest to be
 * current), and p->warm only when nothing else is idle. Called with st->mu
 * held.
 */
static struct gh_db *
pool_pick(struct pool *p)
{
	struct gh_db *db, *warm = p->warm, *best = NULL;
	int i;

	if (warm != NULL && (warm->in_use || warm->gen != p->gen))
		warm = NULL;
	if (warm != NULL && pthread_equal(p->warm_thread, pthread_self()))
		return warm;
	for (i = 0; i < p->n_conns; i++) {
		db = p->conns[i];
		if (db->in_use || db->gen != p->gen || db == warm)
			continue;
		if (best == NULL || db->released > best->released)
			best = db;
	}
	return best != NULL ? best : warm;
}

/* Hands out a free connection to region/org_id (NULL, NULL: the
 * directory), opening one if under the cap, else waiting for a release. */
static gh_err
acquire(struct gh_store *st, const char *region, const char *org_id,
    bool create, struct gh_db **out)
{
	/* "region/org_id" (both validated and bounded by the callers), or
	 * "" for the directory: on the stack, as it is built per request. */
	char key[128];
	struct pool *p;
	struct gh_db *db = NULL;
	struct gh_store_keys keys;
	bool migrated, with_keys;
	unsigned gen;
	gh_err err = GH_OK;
	int cache_kib;

	*out = NULL;
	key[0] = '\0';
	if (org_id != NULL) {
		size_t rl = strlen(region), ol = strlen(org_id);

		if (rl + 1 + ol >= sizeof key) {
			GH_LOG_ERR(GH_ERR_LIMIT, "pool key");
			return GH_ERR_LIMIT;
		}
		memcpy(key, region, rl);
		key[rl] = '/';
		memcpy(key + rl + 1, org_id, ol + 1);
	}
	pthread_mutex_lock(&st->mu);
	for (;;) {
		/* Looked up afresh after each wait: an empty pool may have
		 * been dropped meanwhile. */
		err = pool_get(st, region, org_id, key, &p);
		if (err != GH_OK)
			break;
		db = pool_pick(p);
		if (db != NULL) {
			db->in_use = true;
			idle_unlink(st, db);
			break;
		}
		if (p->n_conns + p->n_opening < GH_STORE_POOL_MAX) {
			p->n_opening++;
			migrated = p->migrated;
			gen = p->gen;
			keys = st->keys;
			with_keys = org_id != NULL && keys.page_key != NULL;
			cache_kib = st->cache_kib;
			pthread_mutex_unlock(&st->mu);
			/* Opening and migrating do I/O: not under the lock. */
			err = conn_new(st, p, with_keys ? &keys : NULL, create,
			    migrated, gen, cache_kib, &db);
			if (err == GH_OK && org_id != NULL)
				GH_LOG_DEBUG("org %s: database opened", org_id);
			pthread_mutex_lock(&st->mu);
			p->n_opening--;
			if (err == GH_OK) {
				st->n_open++;
				p->conns[p->n_conns++] = db;
				p->migrated = true;
			} else {
				pool_drop_if_empty(st, p);
			}
			/* A waiter may now open in our place, or an
			 * eviction may be waiting for openers. */
			pthread_cond_broadcast(&st->cv);
			break;
		}
		pthread_cond_wait(&st->cv, &st->mu);
	}
	pthread_mutex_unlock(&st->mu);
	if (err == GH_OK)
		*out = db;
	return err;
}

gh_err
gh_store_directory(struct gh_store *st, struct gh_db **out)
{
	return acquire(st, NULL, NULL, false, out);
}

gh_err
gh_store_tenant(struct gh_store *st, const char *org_id, const char *region,
    bool create, struct gh_db **out)
{
	*out = NULL;
	/* Nothing from a client reaches the file system unchecked. */
	if (org_id == NULL || !gh_id_valid(org_id)) {
		gh_log(GH_LOG_LEVEL_DEBUG, __func__, GH_ERR_INVALID,
		    "malformed org id");
		return GH_ERR_INVALID;
	}
	if (!gh_store_region_valid(region)) {
		gh_log(GH_LOG_LEVEL_DEBUG, __func__, GH_ERR_INVALID,
		    "org %s: malformed region", org_id);
		return GH_ERR_INVALID;
	}
	return acquire(st, region, org_id, create, out);
}

/*
 * Takes idle connections out of their pools, least recently released
 * first, until no more than open_max are open, and links them through
 * next_victim for closing outside the lock. Called with st->mu held.
 */
static struct gh_db *
idle_trim(struct gh_store *st)
{
	struct gh_db *victims = NULL, *db;

	while (st->n_open > st->open_max && (db = st->idle_tail) != NULL) {
		idle_unlink(st, db);
		pool_remove(st, db);
		db->next_victim = victims;
		victims = db;
	}
	return victims;
}

/* Closes a victim list; then hands the freed heap back to the system, so
 * that a burst of organisations leaves no lasting footprint. Called
 * without st->mu (closing may checkpoint). */
static void
victims_close(struct gh_db *victims)
{
	struct gh_db *db;

	if (victims == NULL)
		return;
	while ((db = victims) != NULL) {
		victims = db->next_victim;
		db_close(db);
	}
	malloc_trim(0);
}

void
gh_db_release(struct gh_db *db)
{
	struct gh_db *victims;
	struct gh_store *st;

	if (db == NULL)
		return;
	st = db->st;
	if (db->n_stmts != 0)
		GH_PANIC("%s: released with %d live statement(s)", db_name(db),
		    db->n_stmts);
	if (!db->in_use)
		GH_PANIC("%s: released twice", db_name(db));
	gh_db_rollback(db);
	pthread_mutex_lock(&st->mu);
	/* If the rollback failed (logged), never hand this connection to
	 * another thread mid-transaction: close it. Likewise when the org's
	 * keys changed while it was out (gh_store_tenant_evict). */
	if (st->be->in_txn(db->conn) || db->gen != db->pool->gen) {
		pool_remove(st, db);
		pthread_cond_broadcast(&st->cv);
		pthread_mutex_unlock(&st->mu);
		db_close(db);
		return;
	}
	db->in_use = false;
	db->released = ++st->releases;
	idle_push(st, db);
	/* Over the bound, the connections idle the longest go (perhaps
	 * this one, when it is the only idle one), not the one just used:
	 * a busy organisation keeps its connections however many others
	 * were touched since. */
	victims = idle_trim(st);
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);
	victims_close(victims);
}

const char *
gh_db_org_id(const struct gh_db *db)
{
	return db->pool->org_id;
}

/* ---- page keys ----------------------------------------------------------- */

void
gh_store_set_keys(struct gh_store *st, const struct gh_store_keys *keys)
{
	pthread_mutex_lock(&st->mu);
	if (keys != NULL && keys->page_key != NULL)
		st->keys = *keys;
	else
		st->keys = (struct gh_store_keys){ NULL, NULL };
	pthread_mutex_unlock(&st->mu);
}

/*
 * Takes the org's idle connections opened before this eviction out of
 * their pools and links them through next_victim; reports whether any
 * such connection is still in use or being opened. Called with st->mu.
 */
static struct gh_db *
evict_collect(struct gh_store *st, const char *org_id, bool *busy)
{
	struct pool *p, *next;
	struct gh_db *victims = NULL, *db;
	bool last;
	int i, b;

	*busy = false;
	for (b = 0; b < POOL_BUCKETS; b++)
	for (p = st->pools[b]; p != NULL; p = next) {
		next = p->next;
		if (p->org_id == NULL || strcmp(p->org_id, org_id) != 0)
			continue;
		if (p->n_opening != 0)
			*busy = true;
		/* Downwards: pool_remove moves the last entry into i. */
		for (i = p->n_conns - 1; i >= 0; i--) {
			db = p->conns[i];
			if (db->gen == p->gen)
				continue;
			if (db->in_use) {
				*busy = true;
				continue;
			}
			last = p->n_conns == 1 && p->n_opening == 0;
			idle_unlink(st, db);
			pool_remove(st, db);	/* frees p if it empties */
			db->next_victim = victims;
			victims = db;
			if (last)
				break;
		}
	}
	return victims;
}

/*
 * Marks the org's connections stale and closes the idle ones; stale
 * handles in use are closed when released. With wait, returns only once
 * none is left, so that every later operation uses freshly fetched keys.
 */
static void
evict(struct gh_store *st, const char *org_id, bool wait)
{
	struct gh_db *victims, *db;
	struct pool *p;
	bool busy;
	int b;

	pthread_mutex_lock(&st->mu);
	for (b = 0; b < POOL_BUCKETS; b++)
		for (p = st->pools[b]; p != NULL; p = p->next)
			if (p->org_id != NULL &&
			    strcmp(p->org_id, org_id) == 0)
				p->gen++;
	for (;;) {
		victims = evict_collect(st, org_id, &busy);
		if (victims != NULL) {
			/* Closing does I/O (a checkpoint): not under the
			 * lock. */
			pthread_mutex_unlock(&st->mu);
			while ((db = victims) != NULL) {
				victims = db->next_victim;
				db_close(db);
			}
			pthread_mutex_lock(&st->mu);
			pthread_cond_broadcast(&st->cv);
			continue;
		}
		if (!busy || !wait)
			break;
		/* Handles in use are closed by gh_db_release; openers
		 * broadcast when done. */
		pthread_cond_wait(&st->cv, &st->mu);
	}
	pthread_mutex_unlock(&st->mu);
}

void
gh_store_tenant_evict(struct gh_store *st, const char *org_id)
{
	if (org_id != NULL)
		evict(st, org_id, true);
}

/* Validates a tenant's names and that its database is encrypted. */
static gh_err
check_encrypted_tenant(struct gh_store *st, const char *org_id,
    const char *region, const char *what)
{
	bool with_keys;

	if (org_id == NULL || !gh_id_valid(org_id) ||
	    !gh_store_region_valid(region)) {
		gh_log(GH_LOG_LEVEL_DEBUG, what, GH_ERR_INVALID,
		    "malformed org id or region");
		return GH_ERR_INVALID;
	}
	pthread_mutex_lock(&st->mu);
	with_keys = st->keys.page_key != NULL;
	pthread_mutex_unlock(&st->mu);
	if (!with_keys) {
		GH_LOG_ERR(GH_ERR_INVALID, "org %s: %s: tenant databases are "
		    "not encrypted (no page keys set)", org_id, what);
		return GH_ERR_INVALID;
	}
	return GH_OK;
}

gh_err
gh_store_tenant_rekey(struct gh_store *st, const char *org_id,
    const char *region, int64_t *pages_out)
{
	struct gh_store_conn *conn = NULL;
	struct gh_store_keys keys;
	int64_t pages = 0;
	gh_err err;
	int busy_ms;

	if (pages_out != NULL)
		*pages_out = 0;
	err = check_encrypted_tenant(st, org_id, region, "rekey");
	if (err != GH_OK)
		return err;
	/*
	 * Cached connections may hold an older newest key: retire them
	 * (those in use when released; not waited for, so a caller holding
	 * one of the org's handles cannot deadlock here). The rewrite runs
	 * on a connection of its own, which fetches the newest key now.
	 */
	evict(st, org_id, false);
	pthread_mutex_lock(&st->mu);
	keys = st->keys;
	busy_ms = st->busy_ms;
	pthread_mutex_unlock(&st->mu);
	err = st->be->conn_open(st->data_dir, region, org_id, &keys, false,
	    busy_ms, &conn);
	if (err != GH_OK)
		return err;
	err = st->be->rekey(conn, &pages);
	st->be->conn_close(conn);
	if (err == GH_OK && pages_out != NULL)
		*pages_out = pages;
	return err;
}

gh_err
gh_store_tenant_min_key_version(struct gh_store *st, const char *org_id,
    const char *region, uint32_t *version_out)
{
	struct gh_db *db = NULL;
	gh_err err;

	*version_out = 0;
	err = check_encrypted_tenant(st, org_id, region, "min key version");
	if (err != GH_OK)
		return err;
	/* Through a connection's own descriptors: see check_format in
	 * sqlite.c for why no other descriptor of the files may be opened. */
	err = gh_store_tenant(st, org_id, region, false, &db);
	if (err == GH_OK)
		err = st->be->min_key_version(db->conn, version_out);
	gh_db_release(db);
	return err;
}

/* ---- the organisations' generation ----------------------------------------- */

static void
probe_close(struct gh_store *st, struct dir_probe *p)
{
	if (p->gen_stmt != NULL)
		st->be->finalize(p->gen_stmt);
	st->be->conn_close(p->conn);
	p->gen_stmt = NULL;
	p->conn = NULL;
	p->seen = false;
}

/* Reads the generation through p (locked), reading the table only when
 * something committed to the directory since p last looked. */
static gh_err
probe_read(struct gh_store *st, struct dir_probe *p, int64_t *out)
{
	int64_t v;
	gh_err err;
	int rc;

	if (p->conn == NULL) {
		err = st->be->conn_open(st->data_dir, NULL, NULL, NULL, false,
		    st->busy_ms, &p->conn);
		if (err != GH_OK)
			return err;
	}
	err = st->be->data_version(p->conn, &v);
	if (err != GH_OK)
		goto fail;
	if (p->seen && v == p->version) {
		*out = p->gen;
		return GH_OK;
	}
	if (p->gen_stmt == NULL) {
		rc = st->be->prepare(p->conn, "SELECT gen FROM org_generation "
		    "WHERE id = 1", &p->gen_stmt);
		if (!st->be->is_ok(rc)) {
			err = st->be->map_error(rc);
			GH_LOG_ERR(err, "directory: org generation: %s",
			    st->be->errmsg(p->conn));
			goto fail;
		}
	}
	rc = st->be->step(p->gen_stmt);
	if (st->be->is_row(rc))
		p->gen = st->be->col_int(p->gen_stmt, 0);
	st->be->reset(p->gen_stmt);
	if (!st->be->is_row(rc)) {
		err = st->be->is_done(rc) ? GH_ERR_STORE : st->be->map_error(rc);
		GH_LOG_ERR(err, "directory: org generation unreadable");
		goto fail;
	}
	/* v was read first: a commit in between only makes the next call
	 * read the table again. */
	p->version = v;
	p->seen = true;
	*out = p->gen;
	return GH_OK;
fail:
	probe_close(st, p);
	return err;
}

gh_err
gh_store_org_gen(struct gh_store *st, int64_t *out)
{
	static _Thread_local unsigned hint = UINT_MAX;
	struct dir_probe *p = NULL;
	gh_err err;

	if (hint == UINT_MAX)
		hint = atomic_fetch_add(&st->probe_next, 1);
	for (unsigned i = 0; i < DIR_PROBES && p == NULL; i++) {
		struct dir_probe *c = &st->probes[(hint + i) % DIR_PROBES];

		if (pthread_mutex_trylock(&c->mu) == 0)
			p = c;
	}
	if (p == NULL) {
		p = &st->probes[hint % DIR_PROBES];
		pthread_mutex_lock(&p->mu);
	}
	err = probe_read(st, p, out);
	pthread_mutex_unlock(&p->mu);
	return err;
}

/* ---- outbox hints -------------------------------------------------------- */

static bool
hint_kind_valid(const char *kind)
{
	size_t n = kind != NULL ? strlen(kind) : 0;

	if (n == 0 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((kind[i] < 'a' || kind[i] > 'z') && kind[i] != '_')
			return false;
	return true;
}

/* Runs the hint upsert on st->hint_conn (hint_mu held), opening it first. */
static gh_err
hint_write(struct gh_store *st, const char *org_id, const char *kind,
    int64_t now)
{
	struct gh_store_bstmt *b = NULL;
	gh_err err = GH_OK;
	int rc;

	if (st->hint_conn == NULL) {
		err = st->be->conn_open(st->data_dir, NULL, NULL, NULL, false,
		    st->busy_ms, &st->hint_conn);
		if (err != GH_OK)
			return err;
	}
	/* One statement: it commits on its own, under the directory's write
	 * lock, so seq follows the order of the commits. */
	rc = st->be->prepare(st->hint_conn, "INSERT INTO outbox_hints (org_id, "
	    "kind, seq, at, pending) VALUES (?, ?, (SELECT COALESCE(MAX(seq), "
	    "0) + 1 FROM outbox_hints), ?, 1) ON CONFLICT (org_id, kind) DO "
	    "UPDATE SET seq = excluded.seq, at = excluded.at, pending = 1",
	    &b);
	if (st->be->is_ok(rc))
		rc = st->be->bind_text(b, 1, org_id);
	if (st->be->is_ok(rc))
		rc = st->be->bind_text(b, 2, kind);
	if (st->be->is_ok(rc))
		rc = st->be->bind_int(b, 3, now);
	if (st->be->is_ok(rc))
		rc = st->be->step(b);
	if (!st->be->is_ok(rc) && !st->be->is_done(rc)) {
		err = st->be->map_error(rc);
		GH_LOG_ERR(err, "org %s: outbox hint %s: %s", org_id, kind,
		    st->be->errmsg(st->hint_conn));
	}
	if (b != NULL)
		st->be->finalize(b);
	if (err != GH_OK) {
		st->be->conn_close(st->hint_conn);
		st->hint_conn = NULL;
	}
	return err;
}

gh_err
gh_db_outbox_hint(struct gh_db *db, const char *kind)
{
	const char *org_id = db != NULL ? gh_db_org_id(db) : NULL;
	struct gh_store *st;
	gh_err err;

	if (org_id == NULL || !hint_kind_valid(kind))
		return GH_ERR_INVALID;
	st = db->st;
	pthread_mutex_lock(&st->hint_mu);
	err = hint_write(st, org_id, kind, gh_now_ms());
	pthread_mutex_unlock(&st->hint_mu);
	return err;
}

gh_err
gh_store_outbox_hints(struct gh_store *st, const char *kind,
    int64_t after_seq, void (*fn)(const char *org_id, void *arg), void *arg,
    int64_t *seq_out)
{
	struct gh_db *dir = NULL;
	struct gh_stmt *q = NULL;
	char org_id[GH_ID_LEN + 1];
	bool row = true;
	gh_err err;

	if (!hint_kind_valid(kind))
		return GH_ERR_INVALID;
	*seq_out = after_seq;
	err = gh_store_directory(st, &dir);
	if (err == GH_OK)
		err = gh_db_prepare(dir, "SELECT org_id, seq, pending FROM "
		    "outbox_hints WHERE kind = ? AND seq > ? ORDER BY seq", &q);
	if (err == GH_OK)
		err = gh_stmt_bind(q, "ti", kind, after_seq);
	while (err == GH_OK) {
		err = gh_stmt_step(q, &row);
		if (err != GH_OK || !row)
			break;
		*seq_out = gh_stmt_int(q, 1);
		if (gh_stmt_int(q, 2) == 0 ||
		    !gh_strlcpy(org_id, gh_stmt_text(q, 0), sizeof org_id))
			continue;
		fn(org_id, arg);
	}
	gh_stmt_free(q);
	gh_db_release(dir);
	return err;
}

gh_err
gh_store_outbox_hint_clear(struct gh_store *st, const char *org_id,
    const char *kind, int64_t checked_at, bool *kept_out)
{
	struct gh_db *dir = NULL;
	struct gh_stmt *q = NULL;
	bool row = false;
	gh_err err;

	if (kept_out != NULL)
		*kept_out = false;
	if (!hint_kind_valid(kind) || org_id == NULL)
		return GH_ERR_INVALID;
	err = gh_store_directory(st, &dir);
	if (err == GH_OK)
		err = gh_db_run(dir, "UPDATE outbox_hints SET pending = 0 WHERE "
		    "org_id = ? AND kind = ? AND pending = 1 AND at < ?", "tti",
		    org_id, kind, checked_at - GH_STORE_HINT_GRACE_MS);
	if (err == GH_OK && kept_out != NULL)
		err = gh_db_prepare(dir, "SELECT 1 FROM outbox_hints WHERE "
		    "org_id = ? AND kind = ? AND pending = 1", &q);
	if (q != NULL) {
		err = gh_stmt_bind(q, "tt", org_id, kind);
		if (err == GH_OK)
			err = gh_stmt_step(q, &row);
		gh_stmt_free(q);
		*kept_out = err == GH_OK && row;
	}
	gh_db_release(dir);
	return err;
}

/* ---- the store ----------------------------------------------------------- */

gh_err
gh_store_open(const char *data_dir, bool create, struct gh_store **out)
{
	struct gh_store *st = NULL;
	struct gh_db *db = NULL;
	struct stat sb;
	gh_err err;

	*out = NULL;
	if (data_dir == NULL || data_dir[0] == '\0') {
		GH_LOG_ERR(GH_ERR_INVALID, "no data directory");
		return GH_ERR_INVALID;
	}
	if (stat(data_dir, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
		GH_LOG_ERR(GH_ERR_NOTFOUND, "data directory %s does not exist",
		    data_dir);
		return GH_ERR_NOTFOUND;
	}
	st = calloc(1, sizeof *st);
	if (st == NULL) {
		GH_LOG_ERR(GH_ERR_NOMEM, "store");
		return GH_ERR_NOMEM;
	}
	st->be = &gh_store_backend_sqlite;
	st->busy_ms = GH_STORE_BUSY_MS;
	st->open_max = GH_STORE_OPEN_MAX;
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->cv, NULL);
	for (int i = 0; i < DIR_PROBES; i++)
		pthread_mutex_init(&st->probes[i].mu, NULL);
	pthread_mutex_init(&st->hint_mu, NULL);
	st->data_dir = gh_strdup(data_dir);
	if (st->data_dir == NULL) {
		err = GH_ERR_NOMEM;
		GH_LOG_ERR(err, "store");
		goto out;
	}
	/* Opens and migrates directory.db now, so that a bad data
	 * directory fails at startup rather than on the first request. */
	err = acquire(st, NULL, NULL, create, &db);
	if (err != GH_OK)
		goto out;
	gh_db_release(db);
	*out = st;
	st = NULL;
out:
	gh_store_free(st);
	return err;
}

void
gh_store_free(struct gh_store *st)
{
	struct pool *p, *next;
	int i, b;

	if (st == NULL)
		return;
	for (b = 0; b < POOL_BUCKETS; b++)
	for (p = st->pools[b]; p != NULL; p = next) {
		next = p->next;
		if (p->n_opening != 0)
			GH_PANIC("store freed while a connection is opening");
		for (i = 0; i < p->n_conns; i++) {
			if (p->conns[i]->in_use)
				GH_PANIC("%s: store freed with a handle "
				    "still acquired", db_name(p->conns[i]));
			db_close(p->conns[i]);
		}
		pool_free(p);
	}
	for (i = 0; i < DIR_PROBES; i++) {
		probe_close(st, &st->probes[i]);
		pthread_mutex_destroy(&st->probes[i].mu);
	}
	st->be->conn_close(st->hint_conn);
	pthread_mutex_destroy(&st->hint_mu);
	pthread_cond_destroy(&st->cv);
	pthread_mutex_destroy(&st->mu);
	free(st->data_dir);
	free(st);
}

const char *
gh_store_data_dir(const struct gh_store *st)
{
	return st->data_dir;
}

void
gh_store_set_busy_timeout(struct gh_store *st, int ms)
{
	struct pool *p;
	int i, b;

	pthread_mutex_lock(&st->mu);
	st->busy_ms = ms;
	for (b = 0; b < POOL_BUCKETS; b++)
		for (p = st->pools[b]; p != NULL; p = p->next)
			for (i = 0; i < p->n_conns; i++)
				if (!p->conns[i]->in_use)
					st->be->set_busy_timeout(
					    p->conns[i]->conn, ms);
	pthread_mutex_unlock(&st->mu);
}

void
gh_store_set_limits(struct gh_store *st, int open_max, int cache_kib)
{
	struct gh_db *victims;

	pthread_mutex_lock(&st->mu);
	if (open_max > 0)
		st->open_max = open_max;
	st->cache_kib = cache_kib > 0 ? cache_kib : 0;
	victims = idle_trim(st);
	pthread_mutex_unlock(&st->mu);
	victims_close(victims);
}

void
gh_store_set_open_max(struct gh_store *st, int n)
{
	pthread_mutex_lock(&st->mu);
	st->open_max = n;
	pthread_mutex_unlock(&st->mu);
}

int
gh_store_open_count(struct gh_store *st)
{
	int n;

	pthread_mutex_lock(&st->mu);
	n = st->n_open;
	pthread_mutex_unlock(&st->mu);
	return n;
}

/* ---- transactions and statements ----------------------------------------- */

gh_err
gh_db_exec(struct gh_db *db, const char *sql)
{
	int rc = db->st->be->exec(db->conn, sql);

	if (!db->st->be->is_ok(rc))
		return db_fail(db, "exec", rc);
	return GH_OK;
}

gh_err
gh_db_begin(struct gh_db *db)
{
	int rc;

	if (db->st->be->in_txn(db->conn))
		GH_PANIC("%s: transaction already open", db_name(db));
	/* IMMEDIATE takes the write lock now, so the transaction cannot
	 * fail later on a lock upgrade. (PG: plain BEGIN.) */
	rc = db->st->be->exec(db->conn, "BEGIN IMMEDIATE");
	if (!db->st->be->is_ok(rc))
		return db_fail(db, "begin", rc);
	return GH_OK;
}

gh_err
gh_db_commit(struct gh_db *db)
{
	struct gh_store *st = db->st;
	int rc = st->be->exec(db->conn, "COMMIT");

	if (!st->be->is_ok(rc))
		return db_fail(db, "commit", rc);
	/* db is in use, so in its pool: the pointer stays valid until it
	 * leaves the pool (pool_remove clears it). */
	pthread_mutex_lock(&st->mu);
	db->pool->warm = db;
	db->pool->warm_thread = pthread_self();
	pthread_mutex_unlock(&st->mu);
	return GH_OK;
}

void
gh_db_rollback(struct gh_db *db)
{
	int rc;

	/* SQLite may already have rolled back on its own (after FULL or
	 * an I/O error), which is why this asks first. */
	if (!db->st->be->in_txn(db->conn))
		return;
	rc = db->st->be->exec(db->conn, "ROLLBACK");
	if (!db->st->be->is_ok(rc))
		(void)db_fail(db, "rollback", rc);
}

int64_t
gh_db_changes(struct gh_db *db)
{
	return db->st->be->changes(db->conn);
}

bool
gh_db_version(struct gh_db *db, struct gh_db_version *out)
{
	const struct gh_store_backend *be = db->st->be;

	/* Inside a transaction this connection may see its own writes,
	 * which a rollback takes back without a trace in either count. A
	 * statement still open holds a read snapshot: data_version would
	 * answer for that old snapshot. */
	if (db->n_stmts != 0 || be->in_txn(db->conn) ||
	    be->data_version(db->conn,
	    &out->others) != GH_OK)
		return false;
	out->own = be->total_changes(db->conn);
	return true;
}

void *
gh_db_memo(struct gh_db *db, size_t size)
{
	if (db->memo == NULL) {
		db->memo = calloc(1, size);
		db->memo_size = db->memo != NULL ? size : 0;
	}
	if (db->memo != NULL && db->memo_size != size)
		GH_PANIC("%s: memo asked with two sizes", db_name(db));
	return db->memo;
}

/* A cached, idle statement for sql, or -1. */
static int
cache_find(struct gh_db *db, const char *sql, uint64_t h)
{
	for (int i = 0; i < STMT_CACHE_N; i++) {
		struct stmt_slot *c = &db->cache[i];

		if (c->sql != NULL && !c->busy && c->hash == h &&
		    strcmp(c->sql, sql) == 0)
			return i;
	}
	return -1;
}

/* A slot for a new statement: a free one, else the least recently used
 * idle one (finalized first), else -1. */
static int
cache_victim(struct gh_db *db)
{
	int best = -1;

	for (int i = 0; i < STMT_CACHE_N; i++) {
		struct stmt_slot *c = &db->cache[i];

		if (c->sql == NULL)
			return i;
		if (!c->busy && (best < 0 || c->used < db->cache[best].used))
			best = i;
	}
	if (best >= 0) {
		db->st->be->finalize(db->cache[best].b);
		free(db->cache[best].sql);
		memset(&db->cache[best], 0, sizeof db->cache[best]);
	}
	return best;
}

gh_err
gh_db_prepare(struct gh_db *db, const char *sql, struct gh_stmt **out)
{
	uint64_t h = sql_hash(sql);
	struct gh_stmt *s;
	int i, rc;

	*out = NULL;
	s = calloc(1, sizeof *s);
	if (s == NULL) {
		GH_LOG_ERR(GH_ERR_NOMEM, "%s: statement", db_name(db));
		return GH_ERR_NOMEM;
	}
	s->db = db;
	s->slot = -1;
	if ((i = cache_find(db, sql, h)) >= 0) {
		s->b = db->cache[i].b;
	} else {
		rc = db->st->be->prepare(db->conn, sql, &s->b);
		if (!db->st->be->is_ok(rc)) {
			free(s);
			return db_fail(db, "prepare", rc);
		}
		if ((i = cache_victim(db)) >= 0 &&
		    (db->cache[i].sql = strdup(sql)) != NULL) {
			db->cache[i].hash = h;
			db->cache[i].b = s->b;
		} else {
			i = -1;		/* served uncached */
		}
	}
	if (i >= 0) {
		db->cache[i].busy = true;
		db->cache[i].used = ++db->clock;
		s->slot = i;
	}
	db->n_stmts++;
	*out = s;
	return GH_OK;
}

static gh_err
stmt_vbind(struct gh_stmt *s, int first, const char *fmt, va_list ap)
{
	const struct gh_store_backend *be = s->db->st->be;
	const char *t;
	const void *p;
	size_t n;
	int k, i, rc;

	for (k = 0; fmt[k] != '\0'; k++) {
		i = first - 1 + k;
		switch (fmt[k]) {
		case 't':
			t = va_arg(ap, const char *);
			rc = t != NULL ? be->bind_text(s->b, i + 1, t) :
			    be->bind_null(s->b, i + 1);
			break;
		case 'i':
			rc = be->bind_int(s->b, i + 1, va_arg(ap, int64_t));
			break;
		case 'b':
			p = va_arg(ap, const void *);
			n = va_arg(ap, size_t);
			rc = p != NULL ? be->bind_blob(s->b, i + 1, p, n) :
			    be->bind_null(s->b, i + 1);
			break;
		case 'n':
			rc = be->bind_null(s->b, i + 1);
			break;
		default:
			GH_PANIC("unknown bind format letter '%c' in \"%s\"",
			    fmt[k], fmt);
		}
		if (!be->is_ok(rc))
			return db_fail(s->db, "bind", rc);
	}
	return GH_OK;
}

gh_err
gh_stmt_bind(struct gh_stmt *s, const char *fmt, ...)
{
	va_list ap;
	gh_err err;

	va_start(ap, fmt);
	err = stmt_vbind(s, 1, fmt, ap);
	va_end(ap);
	return err;
}

gh_err
gh_stmt_bind_at(struct gh_stmt *s, int first, const char *fmt, ...)
{
	va_list ap;
	gh_err err;

	if (first < 1)
		GH_PANIC("bind index %d", first);
	va_start(ap, fmt);
	err = stmt_vbind(s, first, fmt, ap);
	va_end(ap);
	return err;
}

bool
gh_stmt_readonly(struct gh_stmt *s)
{
	return s->db->st->be->readonly(s->b);
}

int
gh_stmt_columns(struct gh_stmt *s)
{
	return s->db->st->be->col_count(s->b);
}

const char *
gh_stmt_column_name(struct gh_stmt *s, int col)
{
	return s->db->st->be->col_name(s->b, col);
}

enum gh_col_type
gh_stmt_column_type(struct gh_stmt *s, int col)
{
	return s->db->st->be->col_type(s->b, col);
}

gh_err
gh_stmt_step(struct gh_stmt *s, bool *row)
{
	const struct gh_store_backend *be = s->db->st->be;
	gh_err err;
	int rc;

	*row = false;
	rc = be->step(s->b);
	if (be->is_row(rc)) {
		*row = true;
		return GH_OK;
	}
	if (be->is_done(rc))
		return GH_OK;
	err = db_fail(s->db, "step", rc);
	/* Release the statement's locks now; the error was taken above. */
	be->reset(s->b);
	return err;
}

gh_err
gh_stmt_run(struct gh_stmt *s)
{
	bool row;
	gh_err err;

	/* Rows (a stray RETURNING, say) are drained, not an error: the
	 * write has happened by the first step. */
	do {
		err = gh_stmt_step(s, &row);
	} while (err == GH_OK && row);
	return err;
}

void
gh_stmt_reset(struct gh_stmt *s)
{
	s->db->st->be->reset(s->b);
}

const char *
gh_stmt_text(struct gh_stmt *s, int col)
{
	return s->db->st->be->col_text(s->b, col);
}

int64_t
gh_stmt_int(struct gh_stmt *s, int col)
{
	return s->db->st->be->col_int(s->b, col);
}

bool
gh_stmt_is_null(struct gh_stmt *s, int col)
{
	return s->db->st->be->col_is_null(s->b, col);
}

const void *
gh_stmt_blob(struct gh_stmt *s, int col, size_t *len_out)
{
	return s->db->st->be->col_blob(s->b, col, len_out);
}

void
gh_stmt_free(struct gh_stmt *s)
{
	if (s == NULL)
		return;
	if (s->slot >= 0) {
		/* Back to the cache: reset (releasing its read lock) and
		 * clear the bindings, which may hold secrets' digests. */
		s->db->st->be->reset(s->b);
		s->db->cache[s->slot].busy = false;
	} else {
		s->db->st->be->finalize(s->b);
	}
	s->db->n_stmts--;
	free(s);
}

gh_err
gh_db_run(struct gh_db *db, const char *sql, const char *fmt, ...)
{
	struct gh_stmt *s = NULL;
	va_list ap;
	gh_err err;

	err = gh_db_prepare(db, sql, &s);
	if (err != GH_OK)
		goto out;
	va_start(ap, fmt);
	err = stmt_vbind(s, 1, fmt, ap);
	va_end(ap);
	if (err != GH_OK)
		goto out;
	err = gh_stmt_run(s);
out:
	gh_stmt_free(s);
	return err;
}
