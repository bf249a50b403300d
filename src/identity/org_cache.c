/*
 * org_cache.c: organisations by slug, in memory, for the request path
 * (ctx_open). See gh_identity_org_cache_get in identity.h.
 *
 * Correctness rests on two rules. (1) A lookup reads the generation
 * (gh_store_org_gen) before it looks at the cache, and empties the cache
 * when the cached generation differs. (2) An entry is inserted only
 * with the generation read in the same statement as its row, and only
 * while the cache is at that generation. So an entry present at
 * generation g holds the row as it was at g, and a change that commits
 * bumps the generation, which every later lookup sees.
 *
 * Untrusted input: the slug (validated before use). No secrets.
 */
#include "identity/identity.h"
#include "identity/identity_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 1024

struct entry {
	struct entry *next;
	uint64_t hash;
	struct gh_org org;
};

struct gh_org_cache {
	pthread_rwlock_t lock;
	int64_t gen;		/* the generation of every entry; 0: none */
	size_t n;
	struct entry *b[BUCKETS];
};

static uint64_t
slug_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

gh_err
gh_identity_org_cache_new(struct gh_org_cache **out)
{
	struct gh_org_cache *c;

	*out = NULL;
	c = calloc(1, sizeof *c);
	if (c == NULL)
		return GH_ERR_NOMEM;
	if (pthread_rwlock_init(&c->lock, NULL) != 0) {
		free(c);
		return GH_ERR_INTERNAL;
	}
	*out = c;
	return GH_OK;
}

/* Called with the write lock held. */
static void
cache_clear(struct gh_org_cache *c)
{
	for (size_t i = 0; i < BUCKETS; i++) {
		struct entry *e, *next;

		for (e = c->b[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
		c->b[i] = NULL;
	}
	c->n = 0;
}

void
gh_identity_org_cache_free(struct gh_org_cache *c)
{
	if (c == NULL)
		return;
	cache_clear(c);
	pthread_rwlock_destroy(&c->lock);
	free(c);
}

/* True when found at generation gen (copied to *out). */
static bool
cache_find(struct gh_org_cache *c, int64_t gen, const char *slug,
    uint64_t h, struct gh_org *out)
{
	bool found = false;

	pthread_rwlock_rdlock(&c->lock);
	if (c->gen == gen) {
		for (struct entry *e = c->b[h % BUCKETS]; e != NULL;
		    e = e->next) {
			if (e->hash == h && strcmp(e->org.slug, slug) == 0) {
				*out = e->org;
				found = true;
				break;
			}
		}
	}
	pthread_rwlock_unlock(&c->lock);
	return found;
}

/* Empties the cache when gen is newer than it. Never backwards: a thread
 * that read an older generation just misses (cache_find compares) and
 * reads the directory. */
static void
cache_sync(struct gh_org_cache *c, int64_t gen)
{
	bool current;

	pthread_rwlock_rdlock(&c->lock);
	current = c->gen >= gen;
	pthread_rwlock_unlock(&c->lock);
	if (current)
		return;
	pthread_rwlock_wrlock(&c->lock);
	if (c->gen < gen) {
		cache_clear(c);
		c->gen = gen;
	}
	pthread_rwlock_unlock(&c->lock);
}

/* Makes room when full: drops the entries of one bucket (the one about to
 * be used, or the next that has any). With the write lock held. */
static void
cache_evict(struct gh_org_cache *c, size_t from)
{
	for (size_t k = 0; k < BUCKETS; k++) {
		struct entry **bp = &c->b[(from + k) % BUCKETS], *e, *next;

		if (*bp == NULL)
			continue;
		for (e = *bp; e != NULL; e = next) {
			next = e->next;
			free(e);
			c->n--;
		}
		*bp = NULL;
		return;
	}
}

/* Keeps org, read at row_gen, if the cache is still at that generation.
 * Best effort: on ENOMEM the next lookup reads the directory again. */
static void
cache_put(struct gh_org_cache *c, int64_t row_gen, uint64_t h,
    const struct gh_org *org)
{
	struct entry *e, **bp;

	pthread_rwlock_wrlock(&c->lock);
	if (c->gen != row_gen)
		goto out;
	bp = &c->b[h % BUCKETS];
	for (e = *bp; e != NULL; e = e->next)
		if (e->hash == h && strcmp(e->org.slug, org->slug) == 0)
			goto out;	/* another thread put it */
	if (c->n >= GH_ORG_CACHE_MAX)
		cache_evict(c, h % BUCKETS);
	e = malloc(sizeof *e);
	if (e == NULL)
		goto out;
	e->hash = h;
	e->org = *org;
	bp = &c->b[h % BUCKETS];
	e->next = *bp;
	*bp = e;
	c->n++;
out:
	pthread_rwlock_unlock(&c->lock);
}

gh_err
gh_identity_org_cache_get(struct gh_org_cache *c, struct gh_store *st,
    const char *slug, struct gh_org *out)
{
	struct gh_db *dir = NULL;
	int64_t gen, row_gen = 0;
	uint64_t h;
	gh_err err;

	if (!gh_identity_slug_valid(slug))
		return GH_ERR_NOTFOUND;
	h = slug_hash(slug);
	err = gh_store_org_gen(st, &gen);
	if (err == GH_OK) {
		cache_sync(c, gen);
		if (cache_find(c, gen, slug, h, out))
			return GH_OK;
	}
	/* A miss, or the generation is unreadable: the directory. */
	err = gh_store_directory(st, &dir);
	if (err == GH_OK)
		err = identity_org_get_gen(dir, slug, out, &row_gen);
	gh_db_release(dir);
	if (err == GH_OK && row_gen != 0)
		cache_put(c, row_gen, h, out);
	return err;
}
