/*
 * secret.c: locked, undumpable memory for keys, passwords and tokens, and
 * the wiping and constant-time comparison helpers.
 * Holds secrets by design; never logs them.
 */
#include "core.h"
#include "core_int.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * Freed one-page regions are kept (wiped, still locked and undumpable) for
 * the next allocation: a request with a cookie or an encrypted attribute
 * would otherwise pay an mmap, mlock, munlock and munmap, and the munmap of
 * a multi-threaded process flushes the TLB of every CPU. The cache is
 * bounded; larger regions are always unmapped.
 */
#define SECURE_CACHE_N 32

static pthread_mutex_t secure_mu = PTHREAD_MUTEX_INITIALIZER;
static void *secure_cache[SECURE_CACHE_N];
static int secure_cached;

static size_t
page_size(void)
{
	long page = sysconf(_SC_PAGESIZE);

	return page > 0 ? (size_t)page : 4096;
}

static size_t
page_round(size_t n)
{
	size_t p = page_size();

	return (n + p - 1) / p * p;
}

size_t
gh_secure_usable(size_t n)
{
	return page_round(n ? n : 1);
}

/* A cached page, or NULL. */
static void *
cache_take(void)
{
	void *p = NULL;

	pthread_mutex_lock(&secure_mu);
	if (secure_cached > 0)
		p = secure_cache[--secure_cached];
	pthread_mutex_unlock(&secure_mu);
	return p;
}

/* Keeps p (one page, already wiped); false when the cache is full. */
static bool
cache_put(void *p)
{
	bool kept = false;

	pthread_mutex_lock(&secure_mu);
	if (secure_cached < SECURE_CACHE_N) {
		secure_cache[secure_cached++] = p;
		kept = true;
	}
	pthread_mutex_unlock(&secure_mu);
	return kept;
}

void *
gh_secure_alloc(size_t n)
{
	size_t len = page_round(n ? n : 1);
	void *p;

	if (len == page_size() && (p = cache_take()) != NULL)
		return p;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* Both are best effort: RLIMIT_MEMLOCK may be small for non-root. */
	(void)mlock(p, len);
	(void)madvise(p, len, MADV_DONTDUMP);
	return p;
}

void
gh_secure_free(void *p, size_t n)
{
	size_t len;

	if (p == NULL)
		return;
	len = page_round(n ? n : 1);
	OPENSSL_cleanse(p, len);
	if (len == page_size() && cache_put(p))
		return;
	(void)munlock(p, len);
	munmap(p, len);
}

void
gh_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		OPENSSL_cleanse(p, n);
}

bool
gh_ct_eq(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

gh_err
gh_secret_new(size_t len, struct gh_secret **out)
{
	struct gh_secret *s;

	*out = NULL;
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return GH_ERR_NOMEM;
	s->data = gh_secure_alloc(len + 1);
	if (s->data == NULL) {
		free(s);
		return GH_ERR_NOMEM;
	}
	s->len = len;
	*out = s;
	return GH_OK;
}

gh_err
gh_secret_from_str(const char *str, struct gh_secret **out)
{
	size_t n = strlen(str);
	gh_err err;

	err = gh_secret_new(n, out);
	if (err != GH_OK)
		return err;
	memcpy((*out)->data, str, n);
	(*out)->data[n] = '\0';
	return GH_OK;
}

void
gh_secret_free(struct gh_secret *s)
{
	if (s == NULL)
		return;
	gh_secure_free(s->data, s->len + 1);
	free(s);
}

void
gh_str_wipe_free(char *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}
