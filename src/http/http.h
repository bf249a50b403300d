/*
 * http.h: the HTTP server on libmicrohttpd: routing, request limits,
 * security headers, cookies, TLS, trusted proxies, a worker pool for slow
 * work (password hashing) and Prometheus metrics; plus the parsers for
 * untrusted request bytes (forms, cookies, JSON bodies).
 *
 * Untrusted input: everything in a request. Paths, headers, cookies, query
 * strings and bodies are bounded and validated here before a handler sees
 * them. Secrets: cookie values pass through (session tokens); they are
 * never logged.
 */
#ifndef GH_HTTP_H
#define GH_HTTP_H

#include <jansson.h>

#include "core/core.h"

struct gh_http_server;
struct gh_http_router;
struct gh_http_req;

/* ---- configuration ------------------------------------------------------- */

#define GH_HTTP_MAX_PROXIES 16

struct gh_http_config {
	char host[64];		/* literal IPv4 or IPv6 address to bind */
	uint16_t port;		/* 0 picks a free port (see gh_http_server_port) */
	unsigned threads;	/* MHD thread pool size; 0 = number of cores */
	unsigned workers;	/* slow-work pool size; 0 = twice the cores */
	size_t max_body;	/* bytes; larger bodies get 413 */
	size_t max_header;	/* bytes of request line + headers; else 431 */
	unsigned timeout_s;	/* idle connection timeout (slow clients) */
	unsigned max_connections;
	bool dev;		/* --dev: allows plain HTTP cookies on loopback */
	const char *tls_cert_file;	/* PEM; TLS when both are set */
	const char *tls_key_file;
	/* Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed:
	 * addresses or CIDR blocks, IPv4 or IPv6. Plain HTTP on a
	 * non-loopback address is refused unless at least one is set. */
	const char *trusted_proxies[GH_HTTP_MAX_PROXIES];
	size_t trusted_proxies_len;
};

/* Defaults: 127.0.0.1:8080, threads/workers 0, max_body 1 MiB,
 * max_header 16 KiB, timeout 30 s, 1024 connections. */
void gh_http_config_default(struct gh_http_config *cfg);

/* ---- routing ------------------------------------------------------------- */

/* Handlers run on an MHD thread and must answer with one gh_http_respond*
 * call (or gh_http_defer). app is the pointer given to gh_http_server_new. */
typedef void (*gh_http_handler)(void *app, struct gh_http_req *req);

gh_err gh_http_router_new(struct gh_http_router **out) GH_MUST_CHECK;
void gh_http_router_free(struct gh_http_router *r);

/*
 * Adds a route. pattern is an absolute path whose segments are literals or
 * {name} parameters ("/o/{org}/api/v1/users/{id}"); name is the label for
 * metrics (use the pattern). A literal segment beats a parameter. A path
 * that matches a pattern with another method answers 405 with Allow.
 */
gh_err gh_http_route(struct gh_http_router *r, const char *method,
    const char *pattern, gh_http_handler fn) GH_MUST_CHECK;

/* One route of a table handed to gh_http_routes. */
struct gh_http_route_def {
	const char *method;
	const char *pattern;
	gh_http_handler fn;
};

/* Adds every route of defs[0..n), stopping at the first failure. */
gh_err gh_http_routes(struct gh_http_router *r,
    const struct gh_http_route_def *defs, size_t n) GH_MUST_CHECK;

/* ---- server ---------------------------------------------------------------- */

/* Validates cfg (TLS files readable, plain HTTP only on loopback unless
 * proxies are trusted, addresses parse) and starts serving. The router is
 * borrowed and must outlive the server. On a bad configuration returns
 * GH_ERR_INVALID with a message naming the key in errmsg. */
gh_err gh_http_server_start(const struct gh_http_config *cfg,
    struct gh_http_router *router, void *app,
    struct gh_http_server **out, char *errmsg, size_t errmsg_cap)
    GH_MUST_CHECK;
/* The bound port (useful with port 0). */
uint16_t gh_http_server_port(const struct gh_http_server *srv);
bool gh_http_server_tls(const struct gh_http_server *srv);
/* Stops accepting, finishes in-flight work, frees. NULL is a no-op. If
 * suspended requests are still not resumed after 30 s, the server is left
 * running and allocated for them (the process is about to exit). */
void gh_http_server_stop(struct gh_http_server *srv);

/* ---- requests -------------------------------------------------------------- */

const char *gh_http_req_method(const struct gh_http_req *req);
/* Decoded path, already checked: valid UTF-8, no NUL, no "." or ".."
 * segments, no empty segments. */
const char *gh_http_req_path(const struct gh_http_req *req);
/* The value of a {name} parameter of the matched route, or NULL. */
const char *gh_http_req_param(const struct gh_http_req *req, const char *name);
/* Header value, case-insensitive name, or NULL. */
const char *gh_http_req_header(const struct gh_http_req *req,
    const char *name);
/* Query string argument, or NULL. */
const char *gh_http_req_query(const struct gh_http_req *req, const char *name);
/* Cookie value from the Cookie header, or NULL. */
const char *gh_http_req_cookie(const struct gh_http_req *req,
    const char *name);
/* The client address: the peer, or, when the peer is a trusted proxy, the
 * rightmost untrusted address of X-Forwarded-For. */
const char *gh_http_req_client_ip(const struct gh_http_req *req);
/* A fresh random id for this request (32 hex chars), also sent back in
 * X-Request-Id. */
const char *gh_http_req_id(const struct gh_http_req *req);
/* True when the client reached us over TLS (directly, or through a trusted
 * proxy saying X-Forwarded-Proto: https). */
bool gh_http_req_secure(const struct gh_http_req *req);
/* The raw body (bounded by max_body), NUL-terminated. */
const char *gh_http_req_body(const struct gh_http_req *req, size_t *len_out);

/*
 * Parses the body as a JSON object: Content-Type must be application/json,
 * the bytes valid UTF-8, no duplicate keys, no NUL. On failure returns
 * GH_ERR_INVALID with a message for the client in errmsg. The object is
 * owned by the caller (json_decref).
 */
gh_err gh_http_req_json(struct gh_http_req *req, json_t **out, char *errmsg,
    size_t errmsg_cap) GH_MUST_CHECK;

/* gh_http_req_json that also accepts the media type alt (e.g.
 * "application/scim+json", RFC 7644 section 3.1). */
gh_err gh_http_req_json_alt(struct gh_http_req *req, const char *alt,
    json_t **out, char *errmsg, size_t errmsg_cap) GH_MUST_CHECK;

/* Form field from an application/x-www-form-urlencoded body, or NULL (also
 * NULL when the body is not such a form). */
const char *gh_http_req_form(struct gh_http_req *req, const char *name);

/* ---- responses ------------------------------------------------------------ */

/* Adds a header to the coming response. Refuses CR, LF and NUL. */
gh_err gh_http_resp_header(struct gh_http_req *req, const char *name,
    const char *value) GH_MUST_CHECK;

enum gh_http_cookie_flags {
	GH_COOKIE_HTTPONLY = 1,
	GH_COOKIE_SAMESITE_LAX = 2,
	GH_COOKIE_SAMESITE_STRICT = 4,
};
/* Sets a cookie scoped to path. max_age_s < 0 deletes it; 0 makes a
 * session cookie. Secure is always added unless the server runs --dev on a
 * loopback address without TLS. */
gh_err gh_http_set_cookie(struct gh_http_req *req, const char *name,
    const char *value, const char *path, int64_t max_age_s, unsigned flags)
    GH_MUST_CHECK;

/* Sends body (copied) with status and content type. */
void gh_http_respond(struct gh_http_req *req, unsigned status,
    const char *content_type, const void *body, size_t len);
/* Sends a JSON value (reference stolen) as application/json. */
void gh_http_respond_json(struct gh_http_req *req, unsigned status,
    json_t *body);
/* Sends {"error": code, "message": message} (plus "request_id"). */
void gh_http_respond_error(struct gh_http_req *req, unsigned status,
    const char *code, const char *message);
/* Sends a 303 See Other to location. */
void gh_http_redirect(struct gh_http_req *req, const char *location);

/*
 * Moves slow work off the MHD threads: the connection is suspended, fn runs
 * on the worker pool (bounded concurrency, so hashing cannot exhaust
 * memory) and must answer with a gh_http_respond* call; then the connection
 * resumes. Other connections keep being served meanwhile.
 */
void gh_http_defer(struct gh_http_req *req,
    void (*fn)(void *app, struct gh_http_req *req));

/*
 * Long polls. gh_http_park suspends the connection without holding any
 * thread; the server's one park thread calls fn(app, req, arg, final)
 * after each gh_http_wake on the same server, about once a second, and
 * finally (final true) at deadline_ms or when the server stops. fn returns
 * true when it has answered (then it owns no more of arg: it frees it);
 * with final it must answer. At most GH_HTTP_PARK_MAX requests are parked
 * at once: beyond, the request is answered 503 with Retry-After and fn is
 * never called, so the caller frees arg when this returns false.
 */
#define GH_HTTP_PARK_MAX 64
typedef bool (*gh_http_park_fn)(void *app, struct gh_http_req *req,
    void *arg, bool final);
bool gh_http_park(struct gh_http_req *req, gh_http_park_fn fn, void *arg,
    int64_t deadline_ms);
/* Makes the park thread call every parked fn soon (something they may
 * wait for happened in this process). Never blocks for long. */
void gh_http_wake(struct gh_http_req *req);

/*
 * Answers from another thread without holding any meanwhile (a writer
 * that commits many requests' rows at once). gh_http_suspend suspends
 * the connection; once the handler has returned, go(arg) is called on the
 * MHD thread, and from then on one other thread answers with one
 * gh_http_respond* call and then calls gh_http_resume, exactly once
 * (without an answer it sends 500). Not before go: the handler has not
 * returned yet. False while the server stops (nothing suspended, go never
 * called): the caller answers on the spot. gh_http_server_stop waits for
 * every suspended request to resume, so whatever resumes them must keep
 * running until it returns.
 */
bool gh_http_suspend(struct gh_http_req *req, void (*go)(void *arg),
    void *arg);
void gh_http_resume(struct gh_http_req *req);

/* ---- metrics --------------------------------------------------------------- */

/* Counts a sign-in attempt by result ("success", "failure", "locked", ...:
 * at most 16 distinct values). */
void gh_http_metrics_signin(struct gh_http_req *req, const char *result);
/* Appends the Prometheus text exposition: gatehouse_http_requests_total
 * {route,method,status}, gatehouse_http_request_duration_seconds histogram
 * {route}, gatehouse_signins_total{result}. */
void gh_http_metrics_render(struct gh_http_req *req, struct gh_buf *out);

#endif
