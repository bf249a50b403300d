/*
 * router.c: maps (method, path) to a handler. Patterns are absolute paths
 * of literal and {name} segments; at each segment a literal beats a
 * parameter. A path that matches only under other methods gives 405 with
 * the methods for Allow. Once frozen, routes are bucketed by their number of
 * segments, so a request is compared only with routes of its own length.
 *
 * Untrusted input: the request path, already decoded and checked by
 * gh_http_path_valid. Secrets: none.
 */
#include "http/http_int.h"

#include <stdlib.h>
#include <string.h>

struct seg {
	char *text;		/* literal text, or the parameter name */
	size_t len;		/* of text */
	bool param;
};

struct route {
	char method[16];
	char *pattern;
	gh_http_handler fn;
	struct seg segs[GH_HTTP_SEGS_MAX];
	size_t nsegs;
};

struct gh_http_router {
	struct route *v;
	size_t len;
	bool frozen;
	/* After freeze: the indexes of the routes with n segments, in the
	 * order they were added (ties go to the first); NULL: not built
	 * (no memory), every route is tried. */
	size_t *by_nsegs[GH_HTTP_SEGS_MAX + 1];
	size_t n_by_nsegs[GH_HTTP_SEGS_MAX + 1];
	bool indexed;
};

gh_err
gh_http_router_new(struct gh_http_router **out)
{
	*out = calloc(1, sizeof **out);
	return *out != NULL ? GH_OK : GH_ERR_NOMEM;
}

static void
route_clear(struct route *rt)
{
	for (size_t i = 0; i < rt->nsegs; i++)
		free(rt->segs[i].text);
	free(rt->pattern);
}

void
gh_http_router_free(struct gh_http_router *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->len; i++)
		route_clear(&r->v[i]);
	for (size_t n = 0; n <= GH_HTTP_SEGS_MAX; n++)
		free(r->by_nsegs[n]);
	free(r->v);
	free(r);
}

static bool
param_name_valid(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

/* Splits pattern into rt->segs. "/" has no segment. */
static gh_err
pattern_split(const char *pattern, struct route *rt)
{
	size_t n = strlen(pattern), seg = 1;

	if (n == 0 || pattern[0] != '/' || !gh_http_path_valid(pattern, n))
		return GH_ERR_INVALID;
	if (n == 1)
		return GH_OK;
	for (size_t i = 1; i <= n; i++) {
		size_t len;
		const char *s;
		struct seg *sg;

		if (i < n && pattern[i] != '/')
			continue;
		len = i - seg;
		s = pattern + seg;
		seg = i + 1;
		if (rt->nsegs >= GH_HTTP_SEGS_MAX)
			return GH_ERR_INVALID;
		sg = &rt->segs[rt->nsegs];
		if (len >= 2 && s[0] == '{' && s[len - 1] == '}') {
			if (!param_name_valid(s + 1, len - 2))
				return GH_ERR_INVALID;
			sg->param = true;
			s++;
			len -= 2;
		} else if (memchr(s, '{', len) != NULL ||
		    memchr(s, '}', len) != NULL) {
			return GH_ERR_INVALID;
		}
		sg->text = malloc(len + 1);
		if (sg->text == NULL)
			return GH_ERR_NOMEM;
		memcpy(sg->text, s, len);
		sg->text[len] = '\0';
		sg->len = len;
		rt->nsegs++;
	}
	return GH_OK;
}

/* Two routes collide when they have the same method and the same shape:
 * both would match exactly the same paths. */
static bool
same_shape(const struct route *a, const struct route *b)
{
	if (a->nsegs != b->nsegs || strcmp(a->method, b->method) != 0)
		return false;
	for (size_t i = 0; i < a->nsegs; i++) {
		if (a->segs[i].param != b->segs[i].param)
			return false;
		if (!a->segs[i].param &&
		    strcmp(a->segs[i].text, b->segs[i].text) != 0)
			return false;
	}
	return true;
}

gh_err
gh_http_route(struct gh_http_router *r, const char *method,
    const char *pattern, gh_http_handler fn)
{
	struct route rt, *v;
	gh_err err;

	if (r == NULL || method == NULL || pattern == NULL || fn == NULL)
		return GH_ERR_INVALID;
	if (r->frozen) {
		GH_LOG_ERR(GH_ERR_INVALID, "route %s added after start",
		    pattern);
		return GH_ERR_INVALID;
	}
	memset(&rt, 0, sizeof rt);
	if (!gh_http_token_valid(method, strlen(method)) ||
	    !gh_strlcpy(rt.method, method, sizeof rt.method)) {
		err = GH_ERR_INVALID;
		goto out;
	}
	rt.fn = fn;
	err = pattern_split(pattern, &rt);
	if (err != GH_OK)
		goto out;
	for (size_t i = 0; i < r->len; i++) {
		if (same_shape(&r->v[i], &rt)) {
			err = GH_ERR_INVALID;
			goto out;
		}
	}
	rt.pattern = gh_strdup(pattern);
	if (rt.pattern == NULL) {
		err = GH_ERR_NOMEM;
		goto out;
	}
	v = realloc(r->v, (r->len + 1) * sizeof *v);
	if (v == NULL) {
		err = GH_ERR_NOMEM;
		goto out;
	}
	r->v = v;
	r->v[r->len++] = rt;
	return GH_OK;
out:
	if (err != GH_OK)
		GH_LOG_ERR(err, "route %s %s refused", method != NULL ?
		    method : "-", pattern != NULL ? pattern : "-");
	route_clear(&rt);
	return err;
}

size_t
gh_http_router_len(const struct gh_http_router *r)
{
	return r->len;
}

const char *
gh_http_router_label(const struct gh_http_router *r, size_t i)
{
	return i < r->len ? r->v[i].pattern : "unmatched";
}

void
gh_http_router_freeze(struct gh_http_router *r)
{
	size_t count[GH_HTTP_SEGS_MAX + 1] = { 0 };

	r->frozen = true;
	for (size_t i = 0; i < r->len; i++)
		count[r->v[i].nsegs]++;
	for (size_t n = 0; n <= GH_HTTP_SEGS_MAX; n++) {
		if (count[n] == 0)
			continue;
		r->by_nsegs[n] = malloc(count[n] * sizeof *r->by_nsegs[n]);
		if (r->by_nsegs[n] == NULL)
			goto fail;
	}
	for (size_t i = 0; i < r->len; i++) {
		size_t n = r->v[i].nsegs;

		r->by_nsegs[n][r->n_by_nsegs[n]++] = i;
	}
	r->indexed = true;
	return;
fail:
	/* Without the buckets every route is tried: slower, still right. */
	for (size_t n = 0; n <= GH_HTTP_SEGS_MAX; n++) {
		free(r->by_nsegs[n]);
		r->by_nsegs[n] = NULL;
		r->n_by_nsegs[n] = 0;
	}
}

/* The routes a path of nsegs segments can match: its bucket, or all. */
static size_t
candidates(const struct gh_http_router *r, size_t nsegs, const size_t **idx)
{
	if (!r->indexed) {
		*idx = NULL;
		return r->len;
	}
	*idx = r->by_nsegs[nsegs];
	return r->n_by_nsegs[nsegs];
}

/*
 * Matches rt against the path's segments. On success fills score: bit
 * (SEGS_MAX - 1 - i) set when segment i is a literal, so comparing scores
 * prefers a literal at the leftmost differing segment.
 */
static bool
route_matches(const struct route *rt, const char *path, size_t nsegs,
    const size_t *off, const size_t *len, uint64_t *score)
{
	*score = 0;
	if (rt->nsegs != nsegs)
		return false;
	/* Last segment first: routes sharing a length mostly share their
	 * prefix ("/o/:org/api/v1/...") and differ at the end. */
	for (size_t i = nsegs; i-- > 0;) {
		const struct seg *sg = &rt->segs[i];

		if (sg->param)
			continue;
		if (sg->len != len[i] ||
		    memcmp(sg->text, path + off[i], len[i]) != 0)
			return false;
		*score |= (uint64_t)1 << (GH_HTTP_SEGS_MAX - 1 - i);
	}
	return true;
}

static void
allow_add(char *allow, size_t cap, const char *method)
{
	size_t mlen = strlen(method), pos = 0, used = strlen(allow);

	/* Skip methods already listed. */
	while (pos < used) {
		size_t e = pos;

		while (e < used && allow[e] != ',')
			e++;
		if (e - pos == mlen && memcmp(allow + pos, method, mlen) == 0)
			return;
		pos = e + 2;
	}
	if (used + mlen + 3 > cap)
		return;
	if (used > 0) {
		memcpy(allow + used, ", ", 2);
		used += 2;
	}
	memcpy(allow + used, method, mlen + 1);
}

gh_err
gh_http_router_match(const struct gh_http_router *r, const char *method,
    const char *path, struct gh_http_match *m)
{
	size_t off[GH_HTTP_SEGS_MAX], len[GH_HTTP_SEGS_MAX], nsegs = 0;
	size_t n = strlen(path);
	int best = -1, best_get = -1;
	uint64_t best_score = 0, best_get_score = 0;
	bool any = false;
	const size_t *idx;
	size_t ncand;

	/* Not the whole struct (about 1 KiB): the parameter arrays are read
	 * only up to nparams. */
	m->route = -1;
	m->label = "unmatched";
	m->fn = NULL;
	m->nparams = 0;
	m->allow[0] = '\0';
	if (n > 1) {
		size_t seg = 1;

		for (size_t i = 1; i <= n; i++) {
			if (i < n && path[i] != '/')
				continue;
			if (nsegs >= GH_HTTP_SEGS_MAX)
				return GH_ERR_NOTFOUND;
			off[nsegs] = seg;
			len[nsegs] = i - seg;
			nsegs++;
			seg = i + 1;
		}
	}
	ncand = candidates(r, nsegs, &idx);
	for (size_t k = 0; k < ncand; k++) {
		size_t i = idx != NULL ? idx[k] : k;
		const struct route *rt = &r->v[i];
		uint64_t score;

		if (!route_matches(rt, path, nsegs, off, len, &score))
			continue;
		any = true;
		allow_add(m->allow, sizeof m->allow, rt->method);
		if (strcmp(rt->method, "GET") == 0) {
			allow_add(m->allow, sizeof m->allow, "HEAD");
			if (best_get < 0 || score > best_get_score) {
				best_get = (int)i;
				best_get_score = score;
			}
		}
		if (strcmp(rt->method, method) != 0)
			continue;
		if (best < 0 || score > best_score) {
			best = (int)i;
			best_score = score;
		}
	}
	/* HEAD falls back to the GET route; MHD drops the body. */
	if (best < 0 && strcmp(method, "HEAD") == 0)
		best = best_get;
	if (best < 0)
		return any ? GH_ERR_DENIED : GH_ERR_NOTFOUND;
	m->route = best;
	m->label = r->v[best].pattern;
	m->fn = r->v[best].fn;
	for (size_t i = 0; i < nsegs; i++) {
		const struct seg *sg = &r->v[best].segs[i];

		if (!sg->param)
			continue;
		m->param_names[m->nparams] = sg->text;
		m->param_off[m->nparams] = off[i];
		m->param_len[m->nparams] = len[i];
		m->nparams++;
	}
	return GH_OK;
}

gh_err
gh_http_routes(struct gh_http_router *r, const struct gh_http_route_def *defs,
    size_t n)
{
	gh_err err = GH_OK;

	for (size_t i = 0; err == GH_OK && i < n; i++)
		err = gh_http_route(r, defs[i].method, defs[i].pattern,
		    defs[i].fn);
	return err;
}
