/*
 * secret.c: locked, undumpable memory for keys, passwords and tokens, and
 * the wiping and constant-time comparison helpers.
 * Holds secrets by design; never logs them.
 */
#include "core.h"
#include "core_int.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static size_t
page_round(size_t n)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t p = page > 0 ? (size_t)page : 4096;

	return (n + p - 1) / p * p;
}

void *
gh_secure_alloc(size_t n)
{
	size_t len = page_round(n ? n : 1);
	void *p;

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
