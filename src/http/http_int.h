/*
 * http_int.h: private to src/http, its unit tests and the fuzz targets.
 *
 * The pure parsers for untrusted request bytes (paths, forms, cookies,
 * X-Forwarded-For, JSON bodies, media types) live here so that they can be
 * tested and fuzzed without a server. None of them keeps a pointer to its
 * input, and none logs what it parses (cookie values are session tokens).
 */
#ifndef GH_HTTP_INT_H
#define GH_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"
#include "http/http.h"

#define GH_HTTP_PATH_MAX 2048		/* bytes of the decoded path */
#define GH_HTTP_RAW_PATH_MAX (3 * GH_HTTP_PATH_MAX)
#define GH_HTTP_FORM_FIELDS_MAX 64
#define GH_HTTP_COOKIES_MAX 64
#define GH_HTTP_COOKIE_HEADER_MAX 8192	/* bytes of all Cookie headers */
#define GH_HTTP_COOKIE_NAME_MAX 256
#define GH_HTTP_COOKIE_VALUE_MAX 4096
#define GH_HTTP_XFF_MAX 32		/* X-Forwarded-For entries walked */
#define GH_HTTP_IP_STR_MAX 46		/* INET6_ADDRSTRLEN */
#define GH_HTTP_DEFER_QUEUE 256
#define GH_HTTP_SIGNIN_RESULTS_MAX 16

/* ---- name/value lists (form fields, cookies) ---------------------------- */

struct gh_http_kv {
	char *name;
	char *value;
};

/* Owned list; names are unique (the first occurrence wins). */
struct gh_http_kvs {
	struct gh_http_kv *v;
	size_t len;
};

/* The value of name, or NULL. Borrowed until gh_http_kvs_free. */
const char *gh_http_kvs_get(const struct gh_http_kvs *kvs, const char *name);
/* Wipes the values (they may be tokens) and frees. Leaves kvs empty. */
void gh_http_kvs_free(struct gh_http_kvs *kvs);

/* ---- paths ----------------------------------------------------------------- */

/* True if the decoded path p (n bytes) is acceptable: at most
 * GH_HTTP_PATH_MAX bytes, starts with '/', valid UTF-8 without NUL or
 * control characters, and no empty, "." or ".." segment ("/" alone is the
 * root and is allowed). */
bool gh_http_path_valid(const char *p, size_t n);

/*
 * Percent-decodes the path part of a raw request target (raw, n bytes,
 * stopping at '?') into *out (malloc'd, NUL-terminated) and checks it with
 * gh_http_path_valid. GH_ERR_INVALID for a malformed escape or a refused
 * path; *out is NULL on failure.
 */
gh_err gh_http_path_decode(const char *raw, size_t n, char **out)
    GH_MUST_CHECK;

/* ---- forms and cookies ------------------------------------------------------ */

/*
 * Parses an application/x-www-form-urlencoded body: '&'-separated pairs,
 * '+' is a space, %XX escapes. Names and values must be valid UTF-8
 * without NUL. GH_ERR_LIMIT beyond GH_HTTP_FORM_FIELDS_MAX fields,
 * GH_ERR_INVALID for a bad escape or encoding. *out is empty on failure.
 */
gh_err gh_http_form_parse(const char *s, size_t n, struct gh_http_kvs *out)
    GH_MUST_CHECK;

/*
 * Parses a Cookie header value ("a=1; b=2"). Pairs that fail
 * gh_http_cookie_name_valid or gh_http_cookie_value_valid (the value may
 * be quoted) are skipped: a stray cookie from a sibling site must not break sign-in.
 * GH_ERR_LIMIT beyond GH_HTTP_COOKIES_MAX pairs or
 * GH_HTTP_COOKIE_HEADER_MAX bytes. *out is empty on failure.
 */
gh_err gh_http_cookie_parse(const char *s, size_t n, struct gh_http_kvs *out)
    GH_MUST_CHECK;

/* RFC 6265: name is an RFC 7230 token; value is cookie-octets; both
 * bounded (GH_HTTP_COOKIE_NAME_MAX, GH_HTTP_COOKIE_VALUE_MAX). */
bool gh_http_cookie_name_valid(const char *name);
bool gh_http_cookie_value_valid(const char *value);
/* RFC 7230 token (header names, methods). */
bool gh_http_token_valid(const char *s, size_t n);

/* ---- addresses and trusted proxies -------------------------------------------- */

struct gh_http_cidr {
	int family;		/* AF_INET or AF_INET6 */
	uint8_t addr[16];	/* 4 or 16 bytes used */
	unsigned prefix;	/* bits */
};

struct gh_http_proxies {
	struct gh_http_cidr v[GH_HTTP_MAX_PROXIES];
	size_t len;
};

/* Parses an IPv4 or IPv6 literal (n bytes, no brackets or port). An
 * IPv4-mapped IPv6 address becomes IPv4. prefix is the full length. */
bool gh_http_ip_parse(const char *s, size_t n, struct gh_http_cidr *out);
/* Formats ip's address (not its prefix); out holds GH_HTTP_IP_STR_MAX. */
void gh_http_ip_format(const struct gh_http_cidr *ip,
    char out[static GH_HTTP_IP_STR_MAX]);
bool gh_http_ip_loopback(const struct gh_http_cidr *ip);

/* Parses addresses and CIDR blocks ("10.0.0.0/8", "::1"). On failure
 * returns GH_ERR_INVALID with a message naming trusted_proxies. */
gh_err gh_http_proxies_parse(const char *const *list, size_t n,
    struct gh_http_proxies *out, char *errmsg, size_t errmsg_cap)
    GH_MUST_CHECK;
bool gh_http_proxies_match(const struct gh_http_proxies *p,
    const struct gh_http_cidr *ip);

/*
 * Picks the client address. peer is the connected address. Only when it is
 * a trusted proxy is xff (may be NULL) read, from the right: the first
 * entry that is not a trusted proxy is the client. An entry that does not
 * parse as an address, or a chain made only of proxies, gives the peer.
 */
void gh_http_client_ip(const struct gh_http_proxies *p,
    const struct gh_http_cidr *peer, const char *xff,
    char out[static GH_HTTP_IP_STR_MAX]);

/* ---- bodies -------------------------------------------------------------------- */

/* True if the Content-Type value ct is type (case-insensitive) with at
 * most a charset=utf-8 parameter. */
bool gh_http_media_type_is(const char *ct, const char *type);

/*
 * Parses body (n bytes) as a JSON object: valid UTF-8, no NUL, no
 * duplicate keys. GH_ERR_INVALID with a client-facing message otherwise.
 */
gh_err gh_http_json_parse(const char *body, size_t n, json_t **out,
    char *errmsg, size_t errmsg_cap) GH_MUST_CHECK;

/* ---- router internals ----------------------------------------------------------- */

#define GH_HTTP_SEGS_MAX 32

struct gh_http_match {
	int route;			/* index, or -1 */
	const char *label;		/* the route name, or "unmatched" */
	gh_http_handler fn;
	size_t nparams;
	const char *param_names[GH_HTTP_SEGS_MAX];	/* borrowed */
	size_t param_off[GH_HTTP_SEGS_MAX];	/* into the path */
	size_t param_len[GH_HTTP_SEGS_MAX];
	char allow[128];		/* for 405: "GET, POST" */
};

/* Matches a checked path. Returns GH_OK (match filled), GH_ERR_NOTFOUND
 * (404) or GH_ERR_DENIED (405, allow filled). */
gh_err gh_http_router_match(const struct gh_http_router *r,
    const char *method, const char *path, struct gh_http_match *m)
    GH_MUST_CHECK;
size_t gh_http_router_len(const struct gh_http_router *r);
const char *gh_http_router_label(const struct gh_http_router *r, size_t i);
void gh_http_router_freeze(struct gh_http_router *r);

/* ---- metrics internals ------------------------------------------------------------ */

struct gh_http_metrics;

gh_err gh_http_metrics_new(const struct gh_http_router *r,
    struct gh_http_metrics **out) GH_MUST_CHECK;
void gh_http_metrics_free(struct gh_http_metrics *m);
/* route is an index or -1 for unmatched. */
void gh_http_metrics_observe(struct gh_http_metrics *m, int route,
    const char *method, unsigned status, uint64_t duration_ns);
void gh_http_metrics_signin_count(struct gh_http_metrics *m,
    const char *result);
void gh_http_metrics_write(struct gh_http_metrics *m, struct gh_buf *out);

#endif
