/*
 * err.c: names for error codes, the panic path and the logger.
 * Handles no untrusted input and holds no secrets; callers must not pass
 * secrets or request bodies to the logger.
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static enum gh_log_level log_min = GH_LOG_LEVEL_INFO;

const char *
gh_err_str(gh_err err)
{
	switch (err) {
	case GH_OK:
		return "ok";
	case GH_ERR_NOMEM:
		return "out of memory";
	case GH_ERR_INVALID:
		return "invalid input";
	case GH_ERR_NOTFOUND:
		return "not found";
	case GH_ERR_DENIED:
		return "denied";
	case GH_ERR_LIMIT:
		return "limit exceeded";
	case GH_ERR_CRYPTO:
		return "cryptographic failure";
	case GH_ERR_STORE:
		return "storage failure";
	case GH_ERR_INTERNAL:
		return "internal error";
	case GH_ERR_CONFLICT:
		return "already exists";
	case GH_ERR_BUSY:
		return "busy";
	case GH_ERR_FULL:
		return "storage full";
	case GH_ERR_IO:
		return "i/o failure";
	}
	return "unknown error";
}

void
gh_panic(const char *fn, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "gatehouse: panic in %s (%s:%d): ", fn, file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void
gh_log_set_level(enum gh_log_level level)
{
	log_min = level;
}

gh_err
gh_log_level_parse(const char *s, enum gh_log_level *out)
{
	static const struct {
		const char *name;
		enum gh_log_level level;
	} names[] = {
		{ "debug", GH_LOG_LEVEL_DEBUG },
		{ "info", GH_LOG_LEVEL_INFO },
		{ "warn", GH_LOG_LEVEL_WARN },
		{ "error", GH_LOG_LEVEL_ERR },
	};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strcmp(s, names[i].name) == 0) {
			*out = names[i].level;
			return GH_OK;
		}
	}
	return GH_ERR_INVALID;
}

void
gh_log(enum gh_log_level level, const char *fn, gh_err err, const char *fmt,
    ...)
{
	static const char *tags[] = { "debug", "info", "warn", "error" };
	char when[25], line[1024];
	va_list ap;
	int n;

	if (level < log_min)
		return;
	gh_time_rfc3339(gh_now_ms(), when);
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		line[0] = '\0';
	/* One write per line so that threads do not interleave. */
	if (err != GH_OK)
		fprintf(stderr, "%s %s %s: %s (%s)\n", when, tags[level], fn,
		    line, gh_err_str(err));
	else
		fprintf(stderr, "%s %s %s: %s\n", when, tags[level], fn, line);
}
