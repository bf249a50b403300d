/*
 * rand.c: gh_rand_public, random bytes for values that are public once
 * used (identifiers, AEAD and page nonces), drawn from this thread's pool.
 *
 * The pool is filled RAND_POOL bytes at a time from the OpenSSL DRBG: one
 * RAND_bytes call (its fork check is a getpid system call, plus the DRBG's
 * fixed costs) for hundreds of identifiers or nonces instead of one each.
 * Every byte handed out is still an independent DRBG output used once, so
 * uniqueness bounds are those of random values (q^2 / 2^97 for q 96-bit
 * nonces). Bytes handed out are zeroed in the pool at once, so none is
 * handed out twice. A forked child inherits its parent's pool and would
 * repeat it: a pthread_atfork handler bumps a generation that empties every
 * pool in the child.
 *
 * Not for secrets (keys, bearer tokens, codes): the unused rest of a pool
 * would sit in ordinary memory. Those keep gh_rand_bytes.
 */
#include "core.h"

#include <pthread.h>
#include <string.h>

#define RAND_POOL 4096	/* bytes per thread */

struct rand_pool {
	uint8_t b[RAND_POOL];
	size_t left;		/* unused bytes: b[0 .. left) */
	unsigned generation;
};

static _Thread_local struct rand_pool pool;
static _Atomic unsigned fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static bool atfork_ok;

static void
on_fork_child(void)
{
	fork_generation++;
}

static void
atfork_register(void)
{
	atfork_ok = pthread_atfork(NULL, NULL, on_fork_child) == 0;
}

gh_err
gh_rand_public(void *out, size_t n)
{
	struct rand_pool *p = &pool;
	unsigned gen;
	gh_err err;

	/* Without the fork handler a child could repeat a pool: no pool. */
	if (pthread_once(&atfork_once, atfork_register) != 0 || !atfork_ok ||
	    n > RAND_POOL / 4)
		return gh_rand_bytes(out, n);
	gen = fork_generation;
	if (p->generation != gen)
		p->left = 0;
	if (p->left < n) {
		if ((err = gh_rand_bytes(p->b, sizeof p->b)) != GH_OK) {
			p->left = 0;
			return err;
		}
		p->left = sizeof p->b;
		p->generation = gen;
	}
	p->left -= n;
	memcpy(out, p->b + p->left, n);
	memset(p->b + p->left, 0, n);
	return GH_OK;
}
