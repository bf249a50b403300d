/*
 * json.c: a direct JSON writer into a gh_buf, for hot responses that would
 * otherwise build a jansson tree only to serialise it at once.
 *
 * Its output is byte for byte what json_dumps(..., JSON_COMPACT) gives for
 * the same values (core_test.c compares the two): the same escapes, UTF-8
 * passed through unescaped, and text that is not well-formed UTF-8 refused
 * (jansson refuses it too) rather than sent.
 */
#include "core.h"

#include <string.h>

/*
 * gh_buf_put without the call when the bytes fit (a response is dozens of
 * small puts); keeps the buffer's invariants: NUL-terminated, nothing
 * written once it is in error, and used (what a secret reset wipes)
 * covering every byte written.
 */
static inline void
put(struct gh_buf *b, const void *p, size_t n)
{
	if (b->err == GH_OK && b->data != NULL && n < b->cap - b->len &&
	    b->len + n <= b->max) {
		memcpy(b->data + b->len, p, n);
		b->len += n;
		b->data[b->len] = '\0';
		if (b->len + 1 > b->used)
			b->used = b->len + 1;
		return;
	}
	gh_buf_put(b, p, n);
}

/* Bytes that need an escape: the quote, the backslash and controls. */
static bool
needs_escape(unsigned char c)
{
	return c < 0x20 || c == '"' || c == '\\';
}

static void
put_escape(struct gh_buf *b, unsigned char c)
{
	static const char hex[] = "0123456789ABCDEF";
	char e[6] = { '\\', 'u', '0', '0', 0, 0 };

	switch (c) {
	case '"':  put(b, "\\\"", 2); return;
	case '\\': put(b, "\\\\", 2); return;
	case '\b': put(b, "\\b", 2); return;
	case '\f': put(b, "\\f", 2); return;
	case '\n': put(b, "\\n", 2); return;
	case '\r': put(b, "\\r", 2); return;
	case '\t': put(b, "\\t", 2); return;
	default:
		e[4] = hex[c >> 4];
		e[5] = hex[c & 0xf];
		put(b, e, sizeof e);
	}
}

void
gh_json_put_str(struct gh_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
	size_t n, i, run = 0;
	bool ascii = true;

	/* One pass finds the length and whether there is anything but
	 * ASCII; only then is the UTF-8 checked. */
	for (n = 0; p[n] != '\0'; n++)
		ascii &= p[n] < 0x80;
	if (!ascii && !gh_utf8_valid((const char *)p, n)) {
		gh_buf_fail(b, GH_ERR_INVALID);
		return;
	}
	put(b, "\"", 1);
	for (i = 0; i < n; i++) {
		if (!needs_escape(p[i]))
			continue;
		put(b, p + run, i - run);
		put_escape(b, p[i]);
		run = i + 1;
	}
	put(b, p + run, n - run);
	put(b, "\"", 1);
}

void
gh_json_put_time(struct gh_buf *b, int64_t ms)
{
	char t[26];

	if (ms <= 0) {
		put(b, "null", 4);
		return;
	}
	t[0] = '"';
	gh_time_rfc3339(ms, t + 1);
	t[25] = '"';
	put(b, t, 26);
}
