/*
 * server.c: the libmicrohttpd daemon, the per-request lifecycle, responses
 * with security headers, TLS set-up and the worker pool for slow work.
 *
 * Untrusted input: every byte of a request. Before a handler runs, the
 * request line, headers and query are bounded and checked (UTF-8, path
 * segments), the body is bounded by max_body, cookies are parsed with
 * bounds, and X-Forwarded-* are believed only from trusted proxies.
 * Secrets: the TLS private key is read into a secret buffer and wiped as
 * soon as the daemon has loaded it; cookie values (session tokens) are
 * wiped when the request ends and are never logged.
 */
#include "http/http_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TLS_PRIORITIES \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-RSA:-DHE-RSA:" \
	"-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:" \
	"-MAC-ALL:+AEAD"
#define CSP \
	"default-src 'none'; script-src 'self'; style-src 'self'; " \
	"img-src 'self' data:; connect-src 'self'; form-action 'self'; " \
	"frame-ancestors 'none'; base-uri 'none'"
#define HSTS "max-age=63072000; includeSubDomains"
#define PEM_MAX (1024 * 1024)
#define RESP_HEADERS_MAX 32
#define RESP_CTYPE_MAX 128

enum defer_state { DEFER_NONE, DEFER_PENDING, DEFER_DONE };

struct resp_header {
	char *name;
	char *value;
};

struct gh_http_req {
	struct gh_http_server *srv;
	struct MHD_Connection *conn;
	char id[GH_ID_LEN + 1];
	uint64_t start_ns;
	char *raw_uri;
	const char *method;	/* MHD's copy, valid for the request */
	char *path;		/* decoded, checked */
	bool started;
	bool queued;
	unsigned early_status;	/* a refusal decided before the handler */
	const char *early_code;
	const char *early_msg;
	struct gh_buf body;
	struct gh_http_match match;
	char *params[GH_HTTP_SEGS_MAX];
	/* Points at the connection's peer string, or at client_ip when a
	 * trusted proxy's X-Forwarded-For named another address. */
	const char *client_ip_str;
	char client_ip[GH_HTTP_IP_STR_MAX];
	bool secure;
	struct gh_http_kvs cookies;
	struct gh_http_kvs form;
	bool form_parsed;
	enum defer_state defer;
	bool resumed;		/* counted in srv->resumed until completed */
	void (*defer_fn)(void *app, struct gh_http_req *req);
	void (*go_fn)(void *arg);	/* gh_http_suspend */
	void *go_arg;
	/* The response, built by gh_http_respond* and queued by the
	 * access handler on an MHD thread. */
	bool responded;
	unsigned status;
	char ctype[RESP_CTYPE_MAX];
	char *resp_body;
	size_t resp_len;
	struct resp_header hdrs[RESP_HEADERS_MAX];
	size_t nhdrs;
};

/*
 * Per connection (MHD's socket context): the peer address, parsed and
 * formatted once when the connection is accepted rather than for every
 * request of a keep-alive connection, and one spare request struct so that
 * each request does not go through calloc and free (it is larger than
 * malloc's per-thread caches).
 */
struct conn_ctx {
	struct gh_http_cidr peer;
	bool trusted;		/* the peer is a trusted proxy */
	char peer_str[GH_HTTP_IP_STR_MAX];
	struct gh_http_req *spare;
};

struct pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct gh_http_req *q[GH_HTTP_DEFER_QUEUE];
	size_t head, len;
	bool stopping;
	pthread_t *threads;
	size_t nthreads;
};

struct parked {
	struct gh_http_req *req;
	gh_http_park_fn fn;
	void *arg;
	int64_t deadline_ms;
};

/* Parked long polls: list holds those waiting; count also those the park
 * thread is checking, so that it can put them back. */
struct park {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct parked list[GH_HTTP_PARK_MAX];
	size_t len, count;
	uint64_t wakes;
	bool stopping;
	bool started;
	pthread_t thread;
};

struct gh_http_server {
	struct MHD_Daemon *daemon;
	struct gh_http_router *router;
	void *app;
	struct gh_http_config cfg;
	struct gh_http_proxies proxies;
	bool tls;
	bool loopback;
	uint16_t port;
	struct gh_http_metrics *metrics;
	struct pool pool;
	bool pool_started;
	struct park park;
	/* Resumed connections whose answer is not sent yet: stopping waits
	 * for them, or MHD would close them unanswered. */
	atomic_int resumed;
	/* gh_http_suspend: requests suspended and not resumed yet; refused
	 * once stopping. */
	pthread_mutex_t susp_mu;
	size_t suspended;
	bool susp_stopping;
	char *cert_pem;
	struct gh_buf key_pem;
};

/* ---- configuration ---------------------------------------------------------- */

void
gh_http_config_default(struct gh_http_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	gh_strlcpy(cfg->host, "127.0.0.1", sizeof cfg->host);
	cfg->port = 8080;
	cfg->max_body = 1024 * 1024;
	cfg->max_header = 16 * 1024;
	cfg->timeout_s = 30;
	cfg->max_connections = 1024;
}

static unsigned
ncores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 && n < 1024 ? (unsigned)n : 1;
}

/* Reads a PEM file into b (bounded). */
static gh_err
read_pem(const char *key, const char *file, struct gh_buf *b, char *errmsg,
    size_t errmsg_cap)
{
	FILE *f;
	char chunk[4096];
	size_t n;
	gh_err err;

	f = fopen(file, "re");
	if (f == NULL) {
		snprintf(errmsg, errmsg_cap, "%s: cannot read %s: %s", key,
		    file, strerror(errno));
		return GH_ERR_INVALID;
	}
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		gh_buf_put(b, chunk, n);
	gh_wipe(chunk, sizeof chunk);
	err = ferror(f) ? GH_ERR_INVALID : gh_buf_err(b);
	fclose(f);
	if (err == GH_OK && b->len == 0)
		err = GH_ERR_INVALID;
	if (err != GH_OK)
		snprintf(errmsg, errmsg_cap, "%s: cannot read %s (empty, "
		    "unreadable or larger than 1 MiB)", key, file);
	return err != GH_OK ? GH_ERR_INVALID : GH_OK;
}

static gh_err
config_check(const struct gh_http_config *cfg, struct gh_http_server *srv,
    struct sockaddr_storage *ss, char *errmsg, size_t errmsg_cap)
{
	struct gh_http_cidr host;
	bool cert = cfg->tls_cert_file != NULL && cfg->tls_cert_file[0];
	bool key = cfg->tls_key_file != NULL && cfg->tls_key_file[0];
	gh_err err;

	memset(ss, 0, sizeof *ss);
	if (memchr(cfg->host, '\0', sizeof cfg->host) == NULL ||
	    !gh_http_ip_parse(cfg->host, strlen(cfg->host), &host)) {
		snprintf(errmsg, errmsg_cap,
		    "host: must be an IPv4 or IPv6 address literal");
		return GH_ERR_INVALID;
	}
	if (inet_pton(AF_INET, cfg->host, &((struct sockaddr_in *)ss)->
	    sin_addr) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(cfg->port);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, cfg->host, &sin6->sin6_addr) != 1) {
			snprintf(errmsg, errmsg_cap,
			    "host: must be an IPv4 or IPv6 address literal");
			return GH_ERR_INVALID;
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(cfg->port);
	}
	srv->loopback = gh_http_ip_loopback(&host);
	if (cfg->max_body == 0 || cfg->max_body > 1024u * 1024 * 1024) {
		snprintf(errmsg, errmsg_cap,
		    "max_body: must be between 1 byte and 1 GiB");
		return GH_ERR_INVALID;
	}
	if (cfg->max_header < 1024 || cfg->max_header > 1024 * 1024) {
		snprintf(errmsg, errmsg_cap,
		    "max_header: must be between 1 KiB and 1 MiB");
		return GH_ERR_INVALID;
	}
	if (cfg->timeout_s == 0 || cfg->timeout_s > 3600) {
		snprintf(errmsg, errmsg_cap,
		    "timeout_s: must be between 1 and 3600");
		return GH_ERR_INVALID;
	}
	if (cfg->max_connections == 0 || cfg->max_connections > 1000000) {
		snprintf(errmsg, errmsg_cap,
		    "max_connections: must be between 1 and 1000000");
		return GH_ERR_INVALID;
	}
	if (cfg->threads > 256 || cfg->workers > 256) {
		snprintf(errmsg, errmsg_cap, "%s: at most 256",
		    cfg->threads > 256 ? "threads" : "workers");
		return GH_ERR_INVALID;
	}
	err = gh_http_proxies_parse(cfg->trusted_proxies,
	    cfg->trusted_proxies_len, &srv->proxies, errmsg, errmsg_cap);
	if (err != GH_OK)
		return err;
	if (cert != key) {
		snprintf(errmsg, errmsg_cap, "%s: tls_cert_file and "
		    "tls_key_file must be set together",
		    cert ? "tls_key_file" : "tls_cert_file");
		return GH_ERR_INVALID;
	}
	if (!cert && !srv->loopback && srv->proxies.len == 0) {
		snprintf(errmsg, errmsg_cap, "listen: plain HTTP is only "
		    "allowed on loopback; configure tls_cert/tls_key or "
		    "trusted_proxies");
		return GH_ERR_INVALID;
	}
	if (cert) {
		struct gh_buf c;

		gh_buf_init(&c, PEM_MAX, 0);
		err = read_pem("tls_cert_file", cfg->tls_cert_file, &c, errmsg,
		    errmsg_cap);
		if (err != GH_OK) {
			gh_buf_free(&c);
			return err;
		}
		srv->cert_pem = gh_buf_take(&c, NULL);
		gh_buf_free(&c);
		if (srv->cert_pem == NULL)
			return GH_ERR_NOMEM;
		err = read_pem("tls_key_file", cfg->tls_key_file,
		    &srv->key_pem, errmsg, errmsg_cap);
		if (err != GH_OK)
			return err;
		srv->tls = true;
	}
	return GH_OK;
}

/* ---- the worker pool ---------------------------------------------------------- */

static void respond_error_now(struct gh_http_req *req, unsigned status,
    const char *code, const char *message);

static void *
worker_main(void *arg)
{
	struct gh_http_server *srv = arg;
	struct pool *p = &srv->pool;

	for (;;) {
		struct gh_http_req *req;
		struct MHD_Connection *conn;

		pthread_mutex_lock(&p->mu);
		while (p->len == 0 && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->len == 0) {	/* stopping, and drained */
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		req = p->q[p->head];
		p->head = (p->head + 1) % GH_HTTP_DEFER_QUEUE;
		p->len--;
		pthread_mutex_unlock(&p->mu);

		req->defer_fn(srv->app, req);
		if (!req->responded) {
			GH_LOG_ERR(GH_ERR_INTERNAL, "request %s: deferred "
			    "handler for %s sent no response", req->id,
			    req->match.label);
			respond_error_now(req, 500, "internal",
			    "internal error");
		}
		req->defer = DEFER_DONE;
		req->resumed = true;
		atomic_fetch_add(&srv->resumed, 1);
		conn = req->conn;
		/* Once resumed, an MHD thread may finish and free req: this
		 * is the last touch. */
		MHD_resume_connection(conn);
	}
}

static gh_err
pool_start(struct gh_http_server *srv, unsigned n)
{
	struct pool *p = &srv->pool;

	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->threads = calloc(n, sizeof *p->threads);
	if (p->threads == NULL)
		return GH_ERR_NOMEM;
	srv->pool_started = true;
	for (unsigned i = 0; i < n; i++) {
		if (pthread_create(&p->threads[i], NULL, worker_main, srv) !=
		    0) {
			GH_LOG_ERR(GH_ERR_INTERNAL, "worker thread %u", i);
			return GH_ERR_INTERNAL;
		}
		p->nthreads++;
	}
	return GH_OK;
}

/* Lets the workers drain the queue (resuming every suspended connection),
 * then joins them. */
static void
pool_stop(struct gh_http_server *srv)
{
	struct pool *p = &srv->pool;

	if (!srv->pool_started)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (size_t i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	free(p->threads);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	srv->pool_started = false;
}

/* ---- long polls ------------------------------------------------------------------- */

#define PARK_TICK_MS 1000

/* Runs one check of p; true when the request is answered and resumed. */
static bool
park_check(struct gh_http_server *srv, struct parked *p, bool stopping)
{
	struct MHD_Connection *conn;
	bool final = stopping || gh_now_ms() >= p->deadline_ms;
	bool done;

	done = p->fn(srv->app, p->req, p->arg, final);
	if (final && !done)
		GH_LOG_ERR(GH_ERR_INTERNAL, "request %s: parked handler for "
		    "%s did not finish", p->req->id, p->req->match.label);
	if (!done && !final)
		return false;
	if (!p->req->responded)
		respond_error_now(p->req, 500, "internal", "internal error");
	p->req->defer = DEFER_DONE;
	p->req->resumed = true;
	atomic_fetch_add(&p->req->srv->resumed, 1);
	conn = p->req->conn;
	/* Once resumed, an MHD thread may finish and free req. */
	MHD_resume_connection(conn);
	return true;
}

static void *
park_main(void *arg)
{
	struct gh_http_server *srv = arg;
	struct park *pk = &srv->park;
	struct parked batch[GH_HTTP_PARK_MAX];
	uint64_t seen = 0;
	size_t n, kept;
	bool stopping;

	pthread_mutex_lock(&pk->mu);
	for (;;) {
		if (pk->stopping && pk->count == 0)
			break;
		if (!pk->stopping && pk->wakes == seen) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += PARK_TICK_MS / 1000;
			(void)pthread_cond_timedwait(&pk->cv, &pk->mu, &ts);
		}
		seen = pk->wakes;
		stopping = pk->stopping;
		n = pk->len;
		memcpy(batch, pk->list, n * sizeof *batch);
		pk->len = 0;
		pthread_mutex_unlock(&pk->mu);
		kept = 0;
		for (size_t i = 0; i < n; i++)
			if (!park_check(srv, &batch[i], stopping))
				batch[kept++] = batch[i];
		pthread_mutex_lock(&pk->mu);
		/* count reserved these places: they fit. */
		memcpy(pk->list + pk->len, batch, kept * sizeof *batch);
		pk->len += kept;
		pk->count -= n - kept;
	}
	pthread_mutex_unlock(&pk->mu);
	return NULL;
}

static gh_err
park_start(struct gh_http_server *srv)
{
	struct park *pk = &srv->park;

	pthread_mutex_init(&pk->mu, NULL);
	pthread_cond_init(&pk->cv, NULL);
	pk->started = true;
	if (pthread_create(&pk->thread, NULL, park_main, srv) != 0) {
		GH_LOG_ERR(GH_ERR_INTERNAL, "park thread");
		pthread_cond_destroy(&pk->cv);
		pthread_mutex_destroy(&pk->mu);
		pk->started = false;
		return GH_ERR_INTERNAL;
	}
	return GH_OK;
}

/* Answers every parked request (final) and joins the park thread. */
static void
park_stop(struct gh_http_server *srv)
{
	struct park *pk = &srv->park;

	if (!pk->started)
		return;
	pthread_mutex_lock(&pk->mu);
	pk->stopping = true;
	pthread_cond_broadcast(&pk->cv);
	pthread_mutex_unlock(&pk->mu);
	pthread_join(pk->thread, NULL);
	pthread_cond_destroy(&pk->cv);
	pthread_mutex_destroy(&pk->mu);
	pk->started = false;
}

bool
gh_http_park(struct gh_http_req *req, gh_http_park_fn fn, void *arg,
    int64_t deadline_ms)
{
	struct park *pk = &req->srv->park;
	gh_err err;

	if (req->responded || req->defer != DEFER_NONE || fn == NULL) {
		GH_LOG_ERR(GH_ERR_INTERNAL, "request %s: park after a "
		    "response", req->id);
		return false;
	}
	pthread_mutex_lock(&pk->mu);
	if (!pk->started || pk->stopping || pk->count == GH_HTTP_PARK_MAX) {
		pthread_mutex_unlock(&pk->mu);
		GH_LOG_WARN(GH_ERR_LIMIT, "request %s: too many long polls",
		    req->id);
		err = gh_http_resp_header(req, "Retry-After", "5");
		(void)err;
		gh_http_respond_error(req, 503, "unavailable",
		    "too many waiting requests; retry shortly");
		return false;
	}
	req->defer = DEFER_PENDING;
	MHD_suspend_connection(req->conn);
	pk->list[pk->len++] = (struct parked){ req, fn, arg, deadline_ms };
	pk->count++;
	pthread_mutex_unlock(&pk->mu);
	return true;
}

void
gh_http_wake(struct gh_http_req *req)
{
	struct park *pk = &req->srv->park;

	if (!pk->started)
		return;
	pthread_mutex_lock(&pk->mu);
	pk->wakes++;
	pthread_cond_broadcast(&pk->cv);
	pthread_mutex_unlock(&pk->mu);
}

void
gh_http_defer(struct gh_http_req *req,
    void (*fn)(void *app, struct gh_http_req *req))
{
	struct pool *p = &req->srv->pool;
	gh_err err;

	if (req->responded || req->defer != DEFER_NONE) {
		GH_LOG_ERR(GH_ERR_INTERNAL, "request %s: defer after a "
		    "response", req->id);
		return;
	}
	pthread_mutex_lock(&p->mu);
	if (p->stopping || p->len == GH_HTTP_DEFER_QUEUE) {
		pthread_mutex_unlock(&p->mu);
		GH_LOG_WARN(GH_ERR_LIMIT, "request %s: worker queue full",
		    req->id);
		err = gh_http_resp_header(req, "Retry-After", "1");
		(void)err;
		gh_http_respond_error(req, 503, "unavailable",
		    "the server is busy; retry shortly");
		return;
	}
	req->defer_fn = fn;
	req->defer = DEFER_PENDING;
	/* Suspend before a worker can resume. */
	MHD_suspend_connection(req->conn);
	p->q[(p->head + p->len) % GH_HTTP_DEFER_QUEUE] = req;
	p->len++;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* ---- answers from another thread ----------------------------------------------------- */

bool
gh_http_suspend(struct gh_http_req *req, void (*go)(void *arg), void *arg)
{
	struct gh_http_server *srv = req->srv;

	if (req->responded || req->defer != DEFER_NONE || go == NULL) {
		GH_LOG_ERR(GH_ERR_INTERNAL, "request %s: suspend after a "
		    "response", req->id);
		return false;
	}
	pthread_mutex_lock(&srv->susp_mu);
	if (srv->susp_stopping) {
		pthread_mutex_unlock(&srv->susp_mu);
		return false;
	}
	srv->suspended++;
	req->defer = DEFER_PENDING;
	req->go_fn = go;
	req->go_arg = arg;
	MHD_suspend_connection(req->conn);
	pthread_mutex_unlock(&srv->susp_mu);
	return true;
}

void
gh_http_resume(struct gh_http_req *req)
{
	struct gh_http_server *srv = req->srv;
	struct MHD_Connection *conn = req->conn;

	if (!req->responded)
		respond_error_now(req, 500, "internal", "internal error");
	req->defer = DEFER_DONE;
	req->resumed = true;
	atomic_fetch_add(&srv->resumed, 1);
	pthread_mutex_lock(&srv->susp_mu);
	srv->suspended--;
	pthread_mutex_unlock(&srv->susp_mu);
	/* Once resumed, an MHD thread may finish and free req. */
	MHD_resume_connection(conn);
}

/* Refuses new suspensions and waits (bounded) for the suspended requests
 * to be resumed: MHD refuses to stop with suspended connections. False
 * when some are still suspended after the wait. */
static bool
susp_drain(struct gh_http_server *srv)
{
	size_t left = 0;

	pthread_mutex_lock(&srv->susp_mu);
	srv->susp_stopping = true;
	pthread_mutex_unlock(&srv->susp_mu);
	for (int i = 0; i < 3000; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		pthread_mutex_lock(&srv->susp_mu);
		left = srv->suspended;
		pthread_mutex_unlock(&srv->susp_mu);
		if (left == 0)
			return true;
		nanosleep(&ts, NULL);
	}
	GH_LOG_ERR(GH_ERR_INTERNAL, "%zu suspended requests were not "
	    "resumed in 30 s", left);
	return false;
}

/* ---- requests: accessors ----------------------------------------------------------- */

const char *
gh_http_req_method(const struct gh_http_req *req)
{
	return req->method;
}

const char *
gh_http_req_path(const struct gh_http_req *req)
{
	return req->path;
}

const char *
gh_http_req_param(const struct gh_http_req *req, const char *name)
{
	for (size_t i = 0; i < req->match.nparams; i++) {
		if (strcmp(req->match.param_names[i], name) == 0)
			return req->params[i];
	}
	return NULL;
}

const char *
gh_http_req_header(const struct gh_http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *
gh_http_req_query(const struct gh_http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND,
	    name);
}

const char *
gh_http_req_cookie(const struct gh_http_req *req, const char *name)
{
	return gh_http_kvs_get(&req->cookies, name);
}

const char *
gh_http_req_client_ip(const struct gh_http_req *req)
{
	return req->client_ip_str != NULL ? req->client_ip_str : "invalid";
}

const char *
gh_http_req_id(const struct gh_http_req *req)
{
	return req->id;
}

bool
gh_http_req_secure(const struct gh_http_req *req)
{
	return req->secure;
}

const char *
gh_http_req_body(const struct gh_http_req *req, size_t *len_out)
{
	if (len_out != NULL)
		*len_out = req->body.len;
	return gh_buf_cstr(&req->body);
}

gh_err
gh_http_req_json(struct gh_http_req *req, json_t **out, char *errmsg,
    size_t errmsg_cap)
{
	*out = NULL;
	if (!gh_http_media_type_is(gh_http_req_header(req, "Content-Type"),
	    "application/json")) {
		snprintf(errmsg, errmsg_cap,
		    "Content-Type must be application/json");
		return GH_ERR_INVALID;
	}
	return gh_http_json_parse(gh_buf_cstr(&req->body), req->body.len,
	    out, errmsg, errmsg_cap);
}

gh_err
gh_http_req_json_alt(struct gh_http_req *req, const char *alt, json_t **out,
    char *errmsg, size_t errmsg_cap)
{
	const char *ct = gh_http_req_header(req, "Content-Type");

	*out = NULL;
	if (!gh_http_media_type_is(ct, "application/json") &&
	    !gh_http_media_type_is(ct, alt)) {
		snprintf(errmsg, errmsg_cap,
		    "Content-Type must be application/json or %s", alt);
		return GH_ERR_INVALID;
	}
	return gh_http_json_parse(gh_buf_cstr(&req->body), req->body.len,
	    out, errmsg, errmsg_cap);
}

const char *
gh_http_req_form(struct gh_http_req *req, const char *name)
{
	if (!req->form_parsed) {
		req->form_parsed = true;
		if (gh_http_media_type_is(gh_http_req_header(req,
		    "Content-Type"), "application/x-www-form-urlencoded")) {
			gh_err err = gh_http_form_parse(gh_buf_cstr(&req->body),
			    req->body.len, &req->form);

			if (err != GH_OK)
				GH_LOG_INFO("request %s: form refused (%s)",
				    req->id, gh_err_str(err));
		}
	}
	return gh_http_kvs_get(&req->form, name);
}

/* ---- responses ---------------------------------------------------------------------- */

static bool
header_value_valid(const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\r' || *v == '\n')
			return false;
	}
	return true;
}

gh_err
gh_http_resp_header(struct gh_http_req *req, const char *name,
    const char *value)
{
	struct resp_header *h;

	if (name == NULL || value == NULL ||
	    !gh_http_token_valid(name, strlen(name)) ||
	    !header_value_valid(value) ||
	    strcasecmp(name, "Content-Length") == 0 ||
	    strcasecmp(name, "Transfer-Encoding") == 0 ||
	    strcasecmp(name, "Connection") == 0)
		return GH_ERR_INVALID;
	if (req->nhdrs == RESP_HEADERS_MAX)
		return GH_ERR_LIMIT;
	h = &req->hdrs[req->nhdrs];
	h->name = gh_strdup(name);
	h->value = gh_strdup(value);
	if (h->name == NULL || h->value == NULL) {
		free(h->name);
		gh_str_wipe_free(h->value);
		h->name = h->value = NULL;
		return GH_ERR_NOMEM;
	}
	req->nhdrs++;
	return GH_OK;
}

/* A cookie Path attribute (RFC 6265 path-value): starts with '/', printable
 * ASCII without ';', no "." or ".." segments. A trailing '/' is allowed and
 * useful: "/o/acme/" never matches "/o/acme-corp/". */
static bool
cookie_path_valid(const char *path)
{
	size_t n = strlen(path);

	if (n == 0 || n > 1024 || path[0] != '/' || strstr(path, "//") ||
	    strstr(path, "/./") || strstr(path, "/../") ||
	    (n >= 2 && strcmp(path + n - 2, "/.") == 0) ||
	    (n >= 3 && strcmp(path + n - 3, "/..") == 0))
		return false;
	for (size_t i = 0; i < n; i++)
		if (path[i] < 0x21 || path[i] > 0x7e || path[i] == ';')
			return false;
	return true;
}

gh_err
gh_http_set_cookie(struct gh_http_req *req, const char *name,
    const char *value, const char *path, int64_t max_age_s, unsigned flags)
{
	struct gh_buf b;
	bool secure;
	gh_err err;

	if (!gh_http_cookie_name_valid(name) || value == NULL ||
	    !gh_http_cookie_value_valid(value) || path == NULL ||
	    !cookie_path_valid(path) ||
	    ((flags & GH_COOKIE_SAMESITE_LAX) &&
	    (flags & GH_COOKIE_SAMESITE_STRICT)))
		return GH_ERR_INVALID;
	secure = !(req->srv->cfg.dev && req->srv->loopback && !req->secure);
	gh_buf_init(&b, 8192, GH_BUF_SECRET);
	gh_buf_printf(&b, "%s=%s; Path=%s", name, max_age_s < 0 ? "" : value,
	    path);
	if (max_age_s < 0)
		gh_buf_put_str(&b, "; Max-Age=0");
	else if (max_age_s > 0)
		gh_buf_printf(&b, "; Max-Age=%lld", (long long)max_age_s);
	if (flags & GH_COOKIE_HTTPONLY)
		gh_buf_put_str(&b, "; HttpOnly");
	if (flags & GH_COOKIE_SAMESITE_STRICT)
		gh_buf_put_str(&b, "; SameSite=Strict");
	else if (flags & GH_COOKIE_SAMESITE_LAX)
		gh_buf_put_str(&b, "; SameSite=Lax");
	if (secure)
		gh_buf_put_str(&b, "; Secure");
	err = gh_buf_err(&b);
	if (err == GH_OK)
		err = gh_http_resp_header(req, "Set-Cookie", gh_buf_cstr(&b));
	gh_buf_free(&b);
	return err;
}

static void
store_response(struct gh_http_req *req, unsigned status,
    const char *content_type, const void *body, size_t len)
{
	if (req->responded) {
		GH_LOG_ERR(GH_ERR_INTERNAL, "request %s: second response "
		    "ignored", req->id);
		return;
	}
	req->resp_body = malloc(len + 1);
	if (req->resp_body == NULL) {
		GH_LOG_ERR(GH_ERR_NOMEM, "request %s: response", req->id);
		status = 500;	/* sent with an empty body */
		req->resp_len = 0;
	} else {
		if (len > 0)
			memcpy(req->resp_body, body, len);
		req->resp_body[len] = '\0';
		req->resp_len = len;
	}
	req->responded = true;
	req->status = status < 100 || status > 599 ? 500 : status;
	if (content_type == NULL || !header_value_valid(content_type) ||
	    !gh_strlcpy(req->ctype, content_type, sizeof req->ctype))
		gh_strlcpy(req->ctype, "application/octet-stream",
		    sizeof req->ctype);
}

void
gh_http_respond(struct gh_http_req *req, unsigned status,
    const char *content_type, const void *body, size_t len)
{
	store_response(req, status, content_type, body, len);
}

void
gh_http_respond_json(struct gh_http_req *req, unsigned status, json_t *body)
{
	char *s = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;

	json_decref(body);
	if (s == NULL) {
		GH_LOG_ERR(GH_ERR_INTERNAL, "request %s: JSON encoding",
		    req->id);
		respond_error_now(req, 500, "internal", "internal error");
		return;
	}
	store_response(req, status, "application/json", s, strlen(s));
	free(s);
}

static void
respond_error_now(struct gh_http_req *req, unsigned status,
    const char *code, const char *message)
{
	json_t *j = json_pack("{s:s, s:s, s:s}", "error", code, "message",
	    message, "request_id", req->id);
	char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (s == NULL) {
		static const char fallback[] = "{\"error\":\"internal\"}";

		store_response(req, status, "application/json", fallback,
		    sizeof fallback - 1);
		return;
	}
	store_response(req, status, "application/json", s, strlen(s));
	free(s);
}

void
gh_http_respond_error(struct gh_http_req *req, unsigned status,
    const char *code, const char *message)
{
	if (code == NULL || message == NULL || !gh_utf8_valid(code,
	    strlen(code)) || !gh_utf8_valid(message, strlen(message))) {
		code = "internal";
		message = "internal error";
		status = 500;
	}
	respond_error_now(req, status, code, message);
}

void
gh_http_redirect(struct gh_http_req *req, const char *location)
{
	if (location == NULL || gh_http_resp_header(req, "Location",
	    location) != GH_OK) {
		GH_LOG_ERR(GH_ERR_INVALID, "request %s: bad redirect target",
		    req->id);
		respond_error_now(req, 500, "internal", "internal error");
		return;
	}
	store_response(req, 303, "text/plain; charset=utf-8", "", 0);
}

/* ---- metrics ------------------------------------------------------------------------- */

void
gh_http_metrics_signin(struct gh_http_req *req, const char *result)
{
	gh_http_metrics_signin_count(req->srv->metrics, result);
}

void
gh_http_metrics_render(struct gh_http_req *req, struct gh_buf *out)
{
	struct park *pk = &req->srv->park;
	size_t parked;

	gh_http_metrics_write(req->srv->metrics, out);
	pthread_mutex_lock(&pk->mu);
	parked = pk->count;
	pthread_mutex_unlock(&pk->mu);
	gh_buf_printf(out, "# HELP gatehouse_http_parked_requests Long polls "
	    "waiting now.\n# TYPE gatehouse_http_parked_requests gauge\n"
	    "gatehouse_http_parked_requests %zu\n", parked);
}

/* ---- MHD glue ------------------------------------------------------------------------ */

static bool
add_header(struct MHD_Response *r, const char *name, const char *value)
{
	return MHD_add_response_header(r, name, value) == MHD_YES;
}

/* Turns the stored response into an MHD response with the security
 * headers and queues it. */
static enum MHD_Result
queue_stored(struct gh_http_req *req)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	bool ok;

	if (!req->responded)
		respond_error_now(req, 500, "internal", "internal error");
	r = MHD_create_response_from_buffer(req->resp_len,
	    req->resp_body != NULL ? req->resp_body : (char *)"",
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	ok = add_header(r, "Content-Type", req->ctype) &&
	    add_header(r, "Content-Security-Policy", CSP) &&
	    add_header(r, "X-Content-Type-Options", "nosniff") &&
	    add_header(r, "Referrer-Policy", "no-referrer") &&
	    add_header(r, "X-Frame-Options", "DENY") &&
	    add_header(r, "Cache-Control", "no-store") &&
	    add_header(r, "X-Request-Id", req->id);
	if (ok && req->secure)
		ok = add_header(r, "Strict-Transport-Security", HSTS);
	for (size_t i = 0; ok && i < req->nhdrs; i++)
		ok = add_header(r, req->hdrs[i].name, req->hdrs[i].value);
	if (!ok) {
		GH_LOG_ERR(GH_ERR_INTERNAL, "request %s: response headers",
		    req->id);
		MHD_destroy_response(r);
		return MHD_NO;
	}
	ret = MHD_queue_response(req->conn, req->status, r);
	MHD_destroy_response(r);
	if (ret == MHD_YES)
		req->queued = true;
	return ret;
}

static enum MHD_Result
refuse_now(struct gh_http_req *req, unsigned status, const char *code,
    const char *message)
{
	respond_error_now(req, status, code, message);
	return queue_stored(req);
}

static struct conn_ctx *
conn_ctx_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

static bool peer_address(struct MHD_Connection *conn,
    struct gh_http_cidr *peer);

static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct gh_http_server *srv = cls;
	struct conn_ctx *cc = conn_ctx_of(conn);
	struct gh_http_req *req;

	if (cc != NULL && cc->spare != NULL) {
		req = cc->spare;
		cc->spare = NULL;
		memset(req, 0, sizeof *req);
	} else {
		req = calloc(1, sizeof *req);
		if (req == NULL)
			return NULL;
	}
	req->srv = srv;
	req->conn = conn;
	req->start_ns = gh_mono_ns();
	req->match.route = -1;
	req->match.label = "unmatched";
	/* Secret: bodies carry passwords; growth must not leave copies. */
	gh_buf_init(&req->body, srv->cfg.max_body, GH_BUF_SECRET);
	req->raw_uri = gh_strdup(uri);
	if (req->raw_uri == NULL || gh_id_new(req->id) != GH_OK) {
		free(req->raw_uri);
		free(req);
		return NULL;
	}
	return req;
}

static void
req_free(struct gh_http_req *req)
{
	if (req == NULL)
		return;
	for (size_t i = 0; i < req->match.nparams; i++)
		free(req->params[i]);
	for (size_t i = 0; i < req->nhdrs; i++) {
		free(req->hdrs[i].name);
		gh_str_wipe_free(req->hdrs[i].value);	/* Set-Cookie */
	}
	gh_http_kvs_free(&req->cookies);
	gh_http_kvs_free(&req->form);
	gh_buf_free(&req->body);	/* secret: wiped */
	if (req->resp_body != NULL) {
		gh_wipe(req->resp_body, req->resp_len);
		free(req->resp_body);
	}
	free(req->path);
	free(req->raw_uri);
	req->path = req->raw_uri = NULL;
}

/* Per-connection state: see struct conn_ctx. */
static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct gh_http_server *srv = cls;
	struct conn_ctx *cc = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (cc != NULL)
			free(cc->spare);
		free(cc);
		*socket_context = NULL;
		return;
	}
	cc = calloc(1, sizeof *cc);
	if (cc == NULL)
		return;		/* its requests are refused (req_begin) */
	if (!peer_address(conn, &cc->peer)) {
		free(cc);
		return;
	}
	gh_http_ip_format(&cc->peer, cc->peer_str);
	cc->trusted = gh_http_proxies_match(&srv->proxies, &cc->peer);
	*socket_context = cc;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct gh_http_server *srv = cls;
	struct gh_http_req *req = *con_cls;
	struct conn_ctx *cc;

	if (req == NULL)
		return;
	if (req->queued)
		gh_http_metrics_observe(srv->metrics, req->match.route,
		    req->method, req->status, gh_mono_ns() - req->start_ns);
	if (req->resumed)
		atomic_fetch_sub(&srv->resumed, 1);
	req_free(req);
	cc = conn_ctx_of(conn);
	if (cc != NULL && cc->spare == NULL)
		cc->spare = req;	/* reused by the next request */
	else
		free(req);
	*con_cls = NULL;
}

struct scan {
	size_t total;
	bool bad;
	bool want_cookies;
	/* One Cookie header (the usual case) is parsed where MHD keeps it;
	 * only two or more are joined, into the secret buffer. */
	size_t ncookies;
	const char *cookie;
	size_t cookie_len;
	struct gh_buf *joined;
};

static enum MHD_Result
scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
    size_t key_size, const char *value, size_t value_size)
{
	struct scan *s = cls;

	s->total += key_size + value_size + 4;
	if (!gh_utf8_valid(key, key_size) || (value != NULL &&
	    !gh_utf8_valid(value, value_size)))
		s->bad = true;
	if (s->want_cookies && value != NULL &&
	    strcasecmp(key, "Cookie") == 0) {
		if (s->ncookies++ == 0) {
			s->cookie = value;
			s->cookie_len = value_size;
			return MHD_YES;
		}
		if (s->ncookies == 2)
			gh_buf_put(s->joined, s->cookie, s->cookie_len);
		if (s->joined->len > 0)
			gh_buf_put_str(s->joined, "; ");
		gh_buf_put(s->joined, value, value_size);
	}
	return MHD_YES;
}

static bool
peer_address(struct MHD_Connection *conn, struct gh_http_cidr *peer)
{
	const union MHD_ConnectionInfo *ci;
	char tmp[GH_HTTP_IP_STR_MAX];
	const struct sockaddr *sa;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL)
		return false;
	sa = ci->client_addr;
	if (sa->sa_family == AF_INET) {
		if (inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->
		    sin_addr, tmp, sizeof tmp) == NULL)
			return false;
	} else if (sa->sa_family == AF_INET6) {
		if (inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->
		    sin6_addr, tmp, sizeof tmp) == NULL)
			return false;
	} else {
		return false;
	}
	return gh_http_ip_parse(tmp, strlen(tmp), peer);
}

/* The rightmost X-Forwarded-Proto value says what the nearest proxy saw. */
static bool
forwarded_https(const char *v)
{
	const char *p;
	size_t n;

	if (v == NULL)
		return false;
	p = strrchr(v, ',');
	p = p != NULL ? p + 1 : v;
	while (*p == ' ' || *p == '\t')
		p++;
	n = strlen(p);
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	return n == 5 && strncasecmp(p, "https", 5) == 0;
}

/*
 * First call: checks everything that does not need the body. A refusal
 * that must not read the body (413 announced, 431) is queued at once and
 * the connection closes; others wait for the end of the upload so that
 * keep-alive survives.
 */
static enum MHD_Result
req_begin(struct gh_http_server *srv, struct gh_http_req *req,
    const char *url, const char *method, const char *version)
{
	struct conn_ctx *cc = conn_ctx_of(req->conn);
	struct scan s = { 0 };
	struct gh_buf cookies;
	const char *cl;
	gh_err err;

	req->method = method;
	if (cc == NULL)
		return MHD_NO;	/* no peer address, or out of memory */
	/* X-Forwarded-For is read only from a trusted proxy: otherwise the
	 * client is the peer, formatted once for the connection. */
	req->client_ip_str = cc->peer_str;
	if (cc->trusted) {
		gh_http_client_ip(&srv->proxies, &cc->peer,
		    gh_http_req_header(req, "X-Forwarded-For"),
		    req->client_ip);
		req->client_ip_str = req->client_ip;
	}
	req->secure = srv->tls || (cc->trusted && forwarded_https(
	    gh_http_req_header(req, "X-Forwarded-Proto")));

	gh_buf_init(&cookies, GH_HTTP_COOKIE_HEADER_MAX, GH_BUF_SECRET);
	s.want_cookies = true;
	s.joined = &cookies;
	s.total = strlen(method) + strlen(req->raw_uri) + strlen(version) + 4;
	MHD_get_connection_values_n(req->conn, MHD_HEADER_KIND, scan_header,
	    &s);
	if (s.total > srv->cfg.max_header) {
		gh_buf_free(&cookies);
		return refuse_now(req, 431, "headers_too_large",
		    "request line and headers are too large");
	}
	if (s.bad) {
		gh_buf_free(&cookies);
		return refuse_now(req, 400, "invalid_header",
		    "a header is not valid UTF-8");
	}
	err = gh_buf_err(&cookies);
	if (err == GH_OK && s.ncookies > 1)
		err = gh_http_cookie_parse(gh_buf_cstr(&cookies), cookies.len,
		    &req->cookies);
	else if (err == GH_OK && s.ncookies == 1)
		err = gh_http_cookie_parse(s.cookie, s.cookie_len,
		    &req->cookies);
	gh_buf_free(&cookies);
	if (err != GH_OK) {
		req->early_status = 400;
		req->early_code = "invalid_cookie";
		req->early_msg = "too many or too large cookies";
	}

	cl = gh_http_req_header(req, "Content-Length");
	if (cl != NULL) {
		char *end;
		unsigned long long n;

		errno = 0;
		n = strtoull(cl, &end, 10);
		if (cl[0] < '0' || cl[0] > '9' || *end != '\0' ||
		    errno != 0)
			return refuse_now(req, 400, "invalid_header",
			    "invalid Content-Length");
		if (n > srv->cfg.max_body)
			return refuse_now(req, 413, "body_too_large",
			    "the request body is too large");
	}

	s.want_cookies = false;
	s.bad = false;
	MHD_get_connection_values_n(req->conn, MHD_GET_ARGUMENT_KIND,
	    scan_header, &s);
	if (s.bad && req->early_status == 0) {
		req->early_status = 400;
		req->early_code = "invalid_request";
		req->early_msg = "the query string is not valid UTF-8";
	}
	/* Our own decoding of the raw target, and MHD's. */
	if (gh_http_path_decode(req->raw_uri, strlen(req->raw_uri),
	    &req->path) != GH_OK || url == NULL ||
	    !gh_http_path_valid(url, strlen(url))) {
		req->early_status = 400;
		req->early_code = "invalid_path";
		req->early_msg = "the request path is not acceptable";
	}
	return MHD_YES;
}

static void
run_handler(struct gh_http_server *srv, struct gh_http_req *req)
{
	gh_err err;

	err = gh_http_router_match(srv->router, req->method, req->path,
	    &req->match);
	if (err == GH_ERR_NOTFOUND) {
		respond_error_now(req, 404, "not_found", "no such resource");
		return;
	}
	if (err == GH_ERR_DENIED) {
		if (gh_http_resp_header(req, "Allow", req->match.allow) !=
		    GH_OK)
			GH_LOG_WARN(GH_ERR_NOMEM, "request %s: Allow", req->id);
		respond_error_now(req, 405, "method_not_allowed",
		    "method not allowed for this resource");
		return;
	}
	for (size_t i = 0; i < req->match.nparams; i++) {
		req->params[i] = malloc(req->match.param_len[i] + 1);
		if (req->params[i] == NULL) {
			respond_error_now(req, 500, "internal",
			    "internal error");
			return;
		}
		memcpy(req->params[i], req->path + req->match.param_off[i],
		    req->match.param_len[i]);
		req->params[i][req->match.param_len[i]] = '\0';
	}
	req->match.fn(srv->app, req);
}

static enum MHD_Result
on_access(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct gh_http_server *srv = cls;
	struct gh_http_req *req = *con_cls;

	if (req == NULL)
		return MHD_NO;	/* on_uri could not allocate */
	if (!req->started) {
		req->started = true;
		return req_begin(srv, req, url, method, version);
	}
	if (*upload_data_size > 0) {
		if (!req->queued && req->early_status != 413) {
			gh_buf_put(&req->body, upload_data, *upload_data_size);
			if (gh_buf_err(&req->body) != GH_OK) {
				req->early_status = 413;
				req->early_code = "body_too_large";
				req->early_msg =
				    "the request body is too large";
				gh_buf_free(&req->body);
				/* Answer now if MHD lets us; else the rest
				 * is drained unstored and 413 goes last. */
				respond_error_now(req, 413, req->early_code,
				    req->early_msg);
				(void)queue_stored(req);
			}
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->queued)
		return MHD_YES;
	if (req->defer == DEFER_DONE)
		return queue_stored(req);
	if (req->defer == DEFER_PENDING)
		return MHD_YES;	/* spurious call while suspended */
	if (req->early_status != 0) {
		gh_buf_free(&req->body);
		if (!req->responded)
			respond_error_now(req, req->early_status,
			    req->early_code, req->early_msg);
		return queue_stored(req);
	}
	run_handler(srv, req);
	if (req->defer == DEFER_PENDING) {
		void (*go)(void *) = req->go_fn;

		/* Hands a gh_http_suspend request over: it may be answered,
		 * resumed and freed from now on. */
		req->go_fn = NULL;
		if (go != NULL)
			go(req->go_arg);
		return MHD_YES;
	}
	return queue_stored(req);
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof msg, fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	GH_LOG_WARN(GH_ERR_INTERNAL, "libmicrohttpd: %s", msg);
}

/* ---- server lifecycle ------------------------------------------------------------------ */

gh_err
gh_http_server_start(const struct gh_http_config *cfg,
    struct gh_http_router *router, void *app,
    struct gh_http_server **out, char *errmsg, size_t errmsg_cap)
{
	struct gh_http_server *srv;
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *di;
	struct MHD_OptionItem opts[16];
	size_t nopts = 0;
	unsigned flags, threads, workers;
	size_t mem;
	gh_err err;

	*out = NULL;
	if (errmsg_cap > 0)
		errmsg[0] = '\0';
	if (cfg == NULL || router == NULL) {
		snprintf(errmsg, errmsg_cap, "internal: no config or router");
		return GH_ERR_INVALID;
	}
	srv = calloc(1, sizeof *srv);
	if (srv == NULL)
		return GH_ERR_NOMEM;
	pthread_mutex_init(&srv->susp_mu, NULL);
	srv->cfg = *cfg;
	srv->cfg.tls_cert_file = NULL;
	srv->cfg.tls_key_file = NULL;
	memset(srv->cfg.trusted_proxies, 0, sizeof srv->cfg.trusted_proxies);
	srv->router = router;
	srv->app = app;
	gh_buf_init(&srv->key_pem, PEM_MAX, GH_BUF_SECRET);
	err = config_check(cfg, srv, &ss, errmsg, errmsg_cap);
	if (err != GH_OK)
		goto fail;

	gh_http_router_freeze(router);
	err = gh_http_metrics_new(router, &srv->metrics);
	if (err != GH_OK)
		goto fail;
	/* jansson's hash seed must be set before threads race for it. */
	json_object_seed(0);
	/* Twice the cores: password hashing is gated to the cores (see
	 * src/auth/password.c), so the other half overlaps the hashes with
	 * the database commits (fsync waits) of finished ones. */
	workers = cfg->workers != 0 ? cfg->workers : 2 * ncores();
	threads = cfg->threads != 0 ? cfg->threads : ncores();
	err = pool_start(srv, workers);
	if (err == GH_OK)
		err = park_start(srv);
	if (err != GH_OK)
		goto fail;

	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	    MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (srv->tls)
		flags |= MHD_USE_TLS;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* The pool holds the read buffer (request line and headers), the
	 * parsed header table and the response headers: twice max_header
	 * (room for some 300 headers filling max_header) and 4 KiB for the
	 * response headers. req_begin enforces max_header exactly. Bodies do
	 * not live here: each chunk is copied out as it arrives (on_access),
	 * so the largest body does not depend on it. No larger than that:
	 * libmicrohttpd zeroes the whole pool for every request of a
	 * keep-alive connection (it was 16 KiB larger). */
	mem = cfg->max_header * 2 + 4 * 1024;
	/* The logger goes first so that MHD reports option errors to it. */
	opts[nopts++] = (struct MHD_OptionItem){ MHD_OPTION_EXTERNAL_LOGGER,
	    (intptr_t)on_mhd_log, srv };
	opts[nopts++] = (struct MHD_OptionItem){ MHD_OPTION_SOCK_ADDR, 0,
	    &ss };
	if (threads > 1)
		opts[nopts++] = (struct MHD_OptionItem){
		    MHD_OPTION_THREAD_POOL_SIZE, threads, NULL };
	opts[nopts++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT,
	    cfg->timeout_s, NULL };
	opts[nopts++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT,
	    cfg->max_connections, NULL };
	opts[nopts++] = (struct MHD_OptionItem){
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)mem, NULL };
	opts[nopts++] = (struct MHD_OptionItem){ MHD_OPTION_URI_LOG_CALLBACK,
	    (intptr_t)on_uri, srv };
	opts[nopts++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_COMPLETED,
	    (intptr_t)on_completed, srv };
	opts[nopts++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_CONNECTION,
	    (intptr_t)on_connection, srv };
	if (srv->tls) {
		opts[nopts++] = (struct MHD_OptionItem){
		    MHD_OPTION_HTTPS_MEM_CERT, 0, srv->cert_pem };
		opts[nopts++] = (struct MHD_OptionItem){
		    MHD_OPTION_HTTPS_MEM_KEY, 0, srv->key_pem.data };
		opts[nopts++] = (struct MHD_OptionItem){
		    MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES };
	}
	opts[nopts++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	srv->daemon = MHD_start_daemon(flags, cfg->port, NULL, NULL, on_access,
	    srv, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	/* The daemon has loaded the key (or failed to): wipe our copy. */
	if (srv->key_pem.data != NULL)
		OPENSSL_cleanse(srv->key_pem.data, srv->key_pem.cap);
	gh_buf_free(&srv->key_pem);
	if (srv->daemon == NULL) {
		snprintf(errmsg, errmsg_cap, "listen: cannot serve on %s port "
		    "%u (address in use, or bad TLS certificate or key)",
		    cfg->host, (unsigned)cfg->port);
		err = GH_ERR_INVALID;
		goto fail;
	}
	di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = di != NULL ? di->port : cfg->port;
	GH_LOG_INFO("serving %s on %s port %u with %u threads and %u "
	    "workers", srv->tls ? "HTTPS" : "HTTP", cfg->host,
	    (unsigned)srv->port, threads, workers);
	*out = srv;
	return GH_OK;
fail:
	gh_http_server_stop(srv);
	return err;
}

uint16_t
gh_http_server_port(const struct gh_http_server *srv)
{
	return srv->port;
}

bool
gh_http_server_tls(const struct gh_http_server *srv)
{
	return srv->tls;
}

void
gh_http_server_stop(struct gh_http_server *srv)
{
	if (srv == NULL)
		return;
	/*
	 * No MHD_quiesce_daemon here: with a thread pool and epoll, MHD
	 * 0.9.75 races its own workers removing the listen socket from their
	 * epoll sets and aborts the process when it loses ("Failed to remove
	 * listen FD from epoll set"; an open MHD defect). The socket keeps
	 * accepting until MHD_stop_daemon closes it; what arrives meanwhile
	 * needing a worker or a long poll is answered 503.
	 *
	 * Every suspended connection is resumed before the daemon stops:
	 * MHD refuses to stop with suspended connections.
	 */
	park_stop(srv);
	pool_stop(srv);
	if (!susp_drain(srv)) {
		/* Whoever holds them (the token writer, stuck on a busy
		 * database) resumes them later through srv: the daemon keeps
		 * running and srv stays allocated until the process exits,
		 * rather than freed under them. */
		GH_LOG_ERR(GH_ERR_INTERNAL, "leaving the HTTP server running "
		    "for the suspended requests");
		return;
	}
	/* Let MHD's threads send what the workers and long polls answered
	 * (bounded: a client that stopped reading is cut off). */
	for (int i = 0; i < 500 && atomic_load(&srv->resumed) > 0; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	if (srv->daemon != NULL)
		MHD_stop_daemon(srv->daemon);
	gh_http_metrics_free(srv->metrics);
	free(srv->cert_pem);
	gh_buf_free(&srv->key_pem);
	pthread_mutex_destroy(&srv->susp_mu);
	free(srv);
}
