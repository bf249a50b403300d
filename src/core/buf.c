/*
 * buf.c: the growable, ceiling-bound, sticky-error buffer.
 * Secret buffers (GH_BUF_SECRET) live in locked, undumpable memory and are
 * wiped on reset, on free and on growth (copy then cleanse; never realloc).
 * Writes stay below len + 1, and used records the furthest any write went
 * since the last wipe (a caller may shorten len, as a rollback does), so a
 * reset wipes what was written, not the whole capacity: a 64-byte secret in
 * a one-page buffer costs 64 bytes of wiping, not 4 KiB.
 */
#include "core.h"
#include "core_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
gh_buf_init(struct gh_buf *b, size_t max, unsigned flags)
{
	memset(b, 0, sizeof *b);
	b->max = max;
	b->flags = flags;
}

static void
buf_release(struct gh_buf *b)
{
	if (b->data == NULL)
		return;
	if (b->flags & GH_BUF_SECRET)
		gh_secure_free(b->data, b->cap);
	else
		free(b->data);
	b->data = NULL;
	b->cap = 0;
	b->len = 0;
	b->used = 0;
}

/* Records that bytes up to len (and its NUL) have been written. */
static void
buf_mark(struct gh_buf *b)
{
	if (b->len + 1 > b->used)
		b->used = b->len + 1;
}

/* Wipes what a secret buffer ever held and leaves it empty. */
static void
buf_clear(struct gh_buf *b)
{
	if (b->data != NULL) {
		if (b->flags & GH_BUF_SECRET)
			gh_wipe(b->data, b->used < b->cap ? b->used : b->cap);
		b->data[0] = '\0';
		b->used = 1;
	}
	b->len = 0;
}

void
gh_buf_reset(struct gh_buf *b)
{
	buf_clear(b);
	b->err = GH_OK;
}

void
gh_buf_free(struct gh_buf *b)
{
	buf_release(b);
	b->err = GH_OK;
}

gh_err
gh_buf_err(const struct gh_buf *b)
{
	return b->err;
}

static void
buf_fail(struct gh_buf *b, gh_err err)
{
	buf_clear(b);
	b->err = err;
}

/* Makes room for n more bytes plus the NUL. */
static bool
buf_reserve(struct gh_buf *b, size_t n)
{
	size_t need, cap;
	uint8_t *p;

	if (b->err != GH_OK)
		return false;
	if (n > b->max || b->len > b->max - n) {
		buf_fail(b, GH_ERR_LIMIT);
		return false;
	}
	need = b->len + n + 1;
	if (need <= b->cap)
		return true;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (b->flags & GH_BUF_SECRET) {
		cap = gh_secure_usable(cap);
		p = gh_secure_alloc(cap);
	} else
		p = malloc(cap);
	if (p == NULL) {
		buf_fail(b, GH_ERR_NOMEM);
		return false;
	}
	if (b->data != NULL)
		memcpy(p, b->data, b->len + 1);
	else
		p[0] = '\0';
	{
		size_t len = b->len;

		buf_release(b);
		b->len = len;
	}
	b->data = p;
	b->cap = cap;
	b->used = b->len + 1;
	return true;
}

bool
gh_buf_reserve(struct gh_buf *b, size_t n)
{
	return buf_reserve(b, n);
}

void
gh_buf_fail(struct gh_buf *b, gh_err err)
{
	if (b->err == GH_OK)
		buf_fail(b, err != GH_OK ? err : GH_ERR_INTERNAL);
}

void
gh_buf_put(struct gh_buf *b, const void *p, size_t n)
{
	if (!buf_reserve(b, n))
		return;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	buf_mark(b);
}

uint8_t *
gh_buf_append(struct gh_buf *b, size_t n)
{
	uint8_t *p;

	if (!buf_reserve(b, n))
		return NULL;
	p = b->data + b->len;
	b->len += n;
	b->data[b->len] = '\0';
	buf_mark(b);
	return p;
}

void
gh_buf_put_str(struct gh_buf *b, const char *s)
{
	gh_buf_put(b, s, strlen(s));
}

void
gh_buf_put_u8(struct gh_buf *b, uint8_t v)
{
	gh_buf_put(b, &v, 1);
}

void
gh_buf_put_u64(struct gh_buf *b, uint64_t v)
{
	uint8_t be[8];

	for (int i = 7; i >= 0; i--) {
		be[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
	gh_buf_put(b, be, sizeof be);
}

void
gh_buf_put_str16(struct gh_buf *b, const char *s)
{
	size_t n = strlen(s);
	uint8_t be[2];

	if (n > UINT16_MAX) {
		if (b->err == GH_OK)
			buf_fail(b, GH_ERR_LIMIT);
		return;
	}
	be[0] = (uint8_t)(n >> 8);
	be[1] = (uint8_t)(n & 0xff);
	gh_buf_put(b, be, sizeof be);
	gh_buf_put(b, s, n);
}

void
gh_buf_vprintf(struct gh_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	if (b->err != GH_OK)
		return;
	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		buf_fail(b, GH_ERR_INTERNAL);
		return;
	}
	if (!buf_reserve(b, (size_t)n))
		return;
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	buf_mark(b);
}

void
gh_buf_printf(struct gh_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	gh_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

char *
gh_buf_take(struct gh_buf *b, size_t *len_out)
{
	char *s;

	if (b->err != GH_OK)
		return NULL;
	if (b->flags & GH_BUF_SECRET)
		GH_PANIC("secret buffers cannot be taken");
	if (b->data == NULL && !buf_reserve(b, 0))
		return NULL;
	s = (char *)b->data;
	if (len_out != NULL)
		*len_out = b->len;
	b->data = NULL;
	b->cap = 0;
	b->len = 0;
	b->used = 0;
	return s;
}

const char *
gh_buf_cstr(const struct gh_buf *b)
{
	if (b->data == NULL || b->err != GH_OK)
		return "";
	return (const char *)b->data;
}
