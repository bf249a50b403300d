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
	case '"':  gh_buf_put(b, "\\\"", 2); return;
	case '\\': gh_buf_put(b, "\\\\", 2); return;
	case '\b': gh_buf_put(b, "\\b", 2); return;
	case '\f': gh_buf_put(b, "\\f", 2); return;
	case '\n': gh_buf_put(b, "\\n", 2); return;
	case '\r': gh_buf_put(b, "\\r", 2); return;
	case '\t': gh_buf_put(b, "\\t", 2); return;
	default:
		e[4] = hex[c >> 4];
		e[5] = hex[c & 0xf];
		gh_buf_put(b, e, sizeof e);
	}
}

void
gh_json_put_str(struct gh_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
	size_t n = strlen((const char *)p), run = 0;

	if (!gh_utf8_valid((const char *)p, n)) {
		gh_buf_fail(b, GH_ERR_INVALID);
		return;
	}
	gh_buf_put(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		if (!needs_escape(p[i]))
			continue;
		gh_buf_put(b, p + run, i - run);
		put_escape(b, p[i]);
		run = i + 1;
	}
	gh_buf_put(b, p + run, n - run);
	gh_buf_put(b, "\"", 1);
}

void
gh_json_put_time(struct gh_buf *b, int64_t ms)
{
	char t[25];

	if (ms <= 0) {
		gh_buf_put(b, "null", 4);
		return;
	}
	gh_time_rfc3339(ms, t);
	gh_buf_put(b, "\"", 1);
	gh_buf_put(b, t, 24);
	gh_buf_put(b, "\"", 1);
}
