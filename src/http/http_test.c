/*
 * http_test.c: unit tests for the HTTP capability. The parsers are called
 * directly; the server is started on 127.0.0.1 port 0 and spoken to over a
 * raw socket (and, when libssl is available, an OpenSSL TLS client).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifdef GH_HTTP_TEST_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

#include "http/http.h"
#include "http/http_int.h"

/* ---- a tiny HTTP/1.1 client ------------------------------------------------ */

struct resp {
	int status;
	char head[16384];
	char *body;
	size_t body_len;
	bool closed;		/* the server closed without a response */
};

static int
client_connect(uint16_t port)
{
	struct sockaddr_in sin;
	struct timeval tv = { .tv_sec = 20 };
	int fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	return fd;
}

/* Sends everything; a reset by the server (it refused) is not an error
 * here: the response, or its absence, is what the test checks. */
static void
send_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		c += w;
		n -= (size_t)w;
	}
}

static void
resp_free(struct resp *r)
{
	free(r->body);
	r->body = NULL;
}

/* Case-insensitive header lookup in r->head; copies the value. */
static bool
resp_header(const struct resp *r, const char *name, char *out, size_t cap)
{
	const char *p = strstr(r->head, "\r\n");
	size_t nlen = strlen(name);

	while (p != NULL && p[2] != '\0') {
		const char *line = p + 2, *eol = strstr(line, "\r\n");

		if (eol == NULL)
			break;
		if ((size_t)(eol - line) > nlen && line[nlen] == ':' &&
		    strncasecmp(line, name, nlen) == 0) {
			const char *v = line + nlen + 1;
			size_t vlen;

			while (*v == ' ')
				v++;
			vlen = (size_t)(eol - v);
			if (vlen >= cap)
				vlen = cap - 1;
			memcpy(out, v, vlen);
			out[vlen] = '\0';
			return true;
		}
		p = eol;
	}
	return false;
}

/* Reads one response (Content-Length framing; MHD sends it for buffers). */
static void
read_response(int fd, struct resp *r)
{
	size_t used = 0, want;
	char *end = NULL, cl[32];

	memset(r, 0, sizeof *r);
	while (end == NULL) {
		ssize_t n;

		if (used + 1 >= sizeof r->head)
			fail_msg("response head too large");
		n = recv(fd, r->head + used, 1, 0);
		if (n <= 0) {
			r->closed = true;
			return;
		}
		used += (size_t)n;
		r->head[used] = '\0';
		end = used >= 4 ? strstr(r->head + used - 4, "\r\n\r\n") :
		    NULL;
	}
	assert_int_equal(sscanf(r->head, "HTTP/1.%*d %d", &r->status), 1);
	want = resp_header(r, "Content-Length", cl, sizeof cl) ?
	    strtoul(cl, NULL, 10) : 0;
	r->body = calloc(1, want + 1);
	assert_non_null(r->body);
	while (r->body_len < want) {
		ssize_t n = recv(fd, r->body + r->body_len,
		    want - r->body_len, 0);

		if (n <= 0)
			fail_msg("short body");
		r->body_len += (size_t)n;
	}
}

static void
exchange(uint16_t port, const char *request, struct resp *r)
{
	int fd = client_connect(port);

	send_all(fd, request, strlen(request));
	read_response(fd, r);
	close(fd);
}

static void
get(uint16_t port, const char *path, struct resp *r)
{
	char req[4096];

	snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n"
	    "Connection: close\r\n\r\n", path);
	exchange(port, req, r);
}

static void
assert_json_error(const struct resp *r, const char *code)
{
	json_error_t e;
	json_t *j = json_loadb(r->body, r->body_len, 0, &e);

	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "error")),
	    code);
	assert_non_null(json_string_value(json_object_get(j, "message")));
	assert_true(gh_id_valid(json_string_value(json_object_get(j,
	    "request_id"))));
	json_decref(j);
}

static void
assert_security_headers(const struct resp *r)
{
	char v[1024];

	assert_true(resp_header(r, "Content-Security-Policy", v, sizeof v));
	assert_non_null(strstr(v, "default-src 'none'"));
	assert_non_null(strstr(v, "frame-ancestors 'none'"));
	assert_true(resp_header(r, "X-Content-Type-Options", v, sizeof v));
	assert_string_equal(v, "nosniff");
	assert_true(resp_header(r, "Referrer-Policy", v, sizeof v));
	assert_string_equal(v, "no-referrer");
	assert_true(resp_header(r, "X-Frame-Options", v, sizeof v));
	assert_string_equal(v, "DENY");
	assert_true(resp_header(r, "Cache-Control", v, sizeof v));
	assert_string_equal(v, "no-store");
	assert_true(resp_header(r, "X-Request-Id", v, sizeof v));
	assert_true(gh_id_valid(v));
}

/* ---- test application ------------------------------------------------------------ */

struct app {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool slow_started;
	bool signalled;
	bool woken;		/* what parked requests wait for */
	int parked_checks;
	/* gh_http_suspend: requests handed over by go, for a resumer. */
	struct gh_http_req *susp[8];
	int nsusp;
	bool in_handler;
	bool go_early;		/* go ran before its handler returned */
	gh_err json_err;
	char json_msg[256];
};

static void
h_hello(void *app, struct gh_http_req *req)
{
	gh_http_respond(req, 200, "text/plain; charset=utf-8", "hello", 5);
}

static void
h_user(void *app, struct gh_http_req *req)
{
	json_t *j = json_pack("{s:s, s:s}", "org", gh_http_req_param(req,
	    "org"), "id", gh_http_req_param(req, "id"));

	gh_http_respond_json(req, 200, j);
}

static void
h_user_me(void *app, struct gh_http_req *req)
{
	gh_http_respond(req, 200, "text/plain", "me", 2);
}

static void
h_echo_json(void *app, struct gh_http_req *req)
{
	struct app *a = app;
	json_t *j;

	a->json_err = gh_http_req_json(req, &j, a->json_msg,
	    sizeof a->json_msg);
	if (a->json_err != GH_OK) {
		gh_http_respond_error(req, 400, "invalid_json", a->json_msg);
		return;
	}
	gh_http_respond_json(req, 200, j);
}

static void
h_form(void *app, struct gh_http_req *req)
{
	const char *v = gh_http_req_form(req, "name");

	if (v == NULL)
		v = "(none)";
	gh_http_respond(req, 200, "text/plain", v, strlen(v));
}

static void
h_info(void *app, struct gh_http_req *req)
{
	const char *c = gh_http_req_cookie(req, "sid");
	const char *q = gh_http_req_query(req, "q");
	json_t *j = json_pack("{s:s, s:s, s:b, s:s?, s:s?}", "ip",
	    gh_http_req_client_ip(req), "id", gh_http_req_id(req), "secure",
	    gh_http_req_secure(req), "sid", c, "q", q);

	gh_http_respond_json(req, 200, j);
}

static void
h_set_cookie(void *app, struct gh_http_req *req)
{
	/* Paths with dot segments or separators are refused; a trailing
	 * slash, which scopes a cookie to one organisation, is not. */
	if (gh_http_set_cookie(req, "x", "1", "/o/../b", 0, 0) == GH_OK ||
	    gh_http_set_cookie(req, "x", "1", "/o/a;b", 0, 0) == GH_OK ||
	    gh_http_set_cookie(req, "x", "1", "/o/..", 0, 0) == GH_OK ||
	    gh_http_set_cookie(req, "sid", "abc123", "/o/acme/", 3600,
	    GH_COOKIE_HTTPONLY | GH_COOKIE_SAMESITE_LAX) != GH_OK) {
		gh_http_respond_error(req, 500, "internal", "cookie");
		return;
	}
	gh_http_respond(req, 204, "text/plain", "", 0);
}

static void
h_metrics(void *app, struct gh_http_req *req)
{
	struct gh_buf b;

	gh_buf_init(&b, 1 << 20, 0);
	gh_http_metrics_signin(req, "success");
	gh_http_metrics_signin(req, "failure");
	gh_http_metrics_signin(req, "success");
	gh_http_metrics_render(req, &b);
	gh_http_respond(req, 200, "text/plain; version=0.0.4", gh_buf_cstr(&b),
	    b.len);
	gh_buf_free(&b);
}

static void
slow_work(void *app, struct gh_http_req *req)
{
	struct app *a = app;
	struct timespec until;
	bool ok = true;

	/* The deadline only keeps a broken build from hanging the suite. */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 20;
	pthread_mutex_lock(&a->mu);
	a->slow_started = true;
	while (!a->signalled && ok)
		ok = pthread_cond_timedwait(&a->cv, &a->mu, &until) == 0;
	pthread_mutex_unlock(&a->mu);
	if (ok)
		gh_http_respond(req, 200, "text/plain", "slow done", 9);
	else
		gh_http_respond_error(req, 500, "timeout", "never signalled");
}

static void
h_slow(void *app, struct gh_http_req *req)
{
	gh_http_defer(req, slow_work);
}

static void
h_started(void *app, struct gh_http_req *req)
{
	struct app *a = app;
	bool started;

	pthread_mutex_lock(&a->mu);
	started = a->slow_started;
	pthread_mutex_unlock(&a->mu);
	gh_http_respond(req, 200, "text/plain", started ? "yes" : "no", started ?
	    3 : 2);
}

static void
h_signal(void *app, struct gh_http_req *req)
{
	struct app *a = app;

	pthread_mutex_lock(&a->mu);
	a->signalled = true;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	gh_http_respond(req, 200, "text/plain", "signalled", 9);
}

static bool
park_check(void *app, struct gh_http_req *req, void *arg, bool final)
{
	struct app *a = app;
	bool woken;

	pthread_mutex_lock(&a->mu);
	woken = a->woken;
	a->parked_checks++;
	pthread_mutex_unlock(&a->mu);
	if (woken)
		gh_http_respond(req, 200, "text/plain", "woken", 5);
	else if (final)
		gh_http_respond(req, 200, "text/plain", "deadline", 8);
	return woken || final;
}

static void
h_park(void *app, struct gh_http_req *req)
{
	const char *ms = gh_http_req_query(req, "ms");

	(void)gh_http_park(req, park_check, NULL, gh_now_ms() +
	    (ms != NULL ? atoi(ms) : 10000));
}

static struct app *susp_app;	/* go gets only its argument */

static void
susp_go(void *arg)
{
	struct gh_http_req *req = arg;
	struct app *a = susp_app;

	pthread_mutex_lock(&a->mu);
	if (a->in_handler)
		a->go_early = true;
	if (a->nsusp < 8)
		a->susp[a->nsusp++] = req;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

static void
h_susp(void *app, struct gh_http_req *req)
{
	struct app *a = app;
	bool ok;

	pthread_mutex_lock(&a->mu);
	a->in_handler = true;
	susp_app = a;
	pthread_mutex_unlock(&a->mu);
	ok = gh_http_suspend(req, susp_go, req);
	usleep(20 * 1000);	/* go must still wait for this return */
	pthread_mutex_lock(&a->mu);
	a->in_handler = false;
	pthread_mutex_unlock(&a->mu);
	if (!ok)
		gh_http_respond(req, 503, "text/plain", "stopping", 8);
}

static void
h_wake(void *app, struct gh_http_req *req)
{
	struct app *a = app;

	pthread_mutex_lock(&a->mu);
	a->woken = true;
	pthread_mutex_unlock(&a->mu);
	gh_http_wake(req);
	gh_http_respond(req, 200, "text/plain", "ok", 2);
}

struct fixture {
	struct app app;
	struct gh_http_router *router;
	struct gh_http_server *srv;
	uint16_t port;
};

static struct gh_http_router *
make_router(void)
{
	struct gh_http_router *r;

	assert_int_equal(gh_http_router_new(&r), GH_OK);
	assert_int_equal(gh_http_route(r, "GET", "/hello", h_hello), GH_OK);
	assert_int_equal(gh_http_route(r, "GET", "/o/{org}/users/{id}",
	    h_user), GH_OK);
	assert_int_equal(gh_http_route(r, "GET", "/o/{org}/users/me",
	    h_user_me), GH_OK);
	assert_int_equal(gh_http_route(r, "POST", "/json", h_echo_json),
	    GH_OK);
	assert_int_equal(gh_http_route(r, "POST", "/form", h_form), GH_OK);
	assert_int_equal(gh_http_route(r, "GET", "/info", h_info), GH_OK);
	assert_int_equal(gh_http_route(r, "POST", "/info", h_info), GH_OK);
	assert_int_equal(gh_http_route(r, "GET", "/cookie", h_set_cookie),
	    GH_OK);
	assert_int_equal(gh_http_route(r, "GET", "/metrics", h_metrics),
	    GH_OK);
	assert_int_equal(gh_http_route(r, "GET", "/slow", h_slow), GH_OK);
	assert_int_equal(gh_http_route(r, "GET", "/started", h_started),
	    GH_OK);
	assert_int_equal(gh_http_route(r, "GET", "/signal", h_signal), GH_OK);
	assert_int_equal(gh_http_route(r, "GET", "/park", h_park), GH_OK);
	assert_int_equal(gh_http_route(r, "GET", "/wake", h_wake), GH_OK);
	assert_int_equal(gh_http_route(r, "GET", "/susp", h_susp), GH_OK);
	return r;
}

static struct fixture *
start(struct gh_http_config *cfg)
{
	struct fixture *f = calloc(1, sizeof *f);
	char msg[256];

	assert_non_null(f);
	pthread_mutex_init(&f->app.mu, NULL);
	pthread_cond_init(&f->app.cv, NULL);
	f->router = make_router();
	assert_int_equal(gh_http_server_start(cfg, f->router, &f->app,
	    &f->srv, msg, sizeof msg), GH_OK);
	f->port = gh_http_server_port(f->srv);
	assert_true(f->port != 0);
	return f;
}

static void
base_config(struct gh_http_config *cfg)
{
	gh_http_config_default(cfg);
	cfg->port = 0;
	cfg->threads = 1;
	cfg->workers = 2;
	cfg->max_body = 1024;
	cfg->max_header = 4096;
}

static struct fixture *
start_default(void)
{
	struct gh_http_config cfg;

	base_config(&cfg);
	return start(&cfg);
}

static void
stop(struct fixture *f)
{
	gh_http_server_stop(f->srv);
	gh_http_router_free(f->router);
	pthread_cond_destroy(&f->app.cv);
	pthread_mutex_destroy(&f->app.mu);
	free(f);
}

/* ---- server tests ------------------------------------------------------------------ */

static void
test_security_headers_are_on_200_and_404(void **state)
{
	struct fixture *f = start_default();
	struct resp r;
	char v[256];

	get(f->port, "/hello", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "hello");
	assert_security_headers(&r);
	assert_false(resp_header(&r, "Strict-Transport-Security", v,
	    sizeof v));
	resp_free(&r);

	get(f->port, "/nope", &r);
	assert_int_equal(r.status, 404);
	assert_security_headers(&r);
	assert_json_error(&r, "not_found");
	resp_free(&r);
	stop(f);
}

static void
test_router_prefers_literals_and_answers_405_with_allow(void **state)
{
	struct fixture *f = start_default();
	struct resp r;
	char v[256];

	get(f->port, "/o/acme/users/42", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"org\":\"acme\""));
	assert_non_null(strstr(r.body, "\"id\":\"42\""));
	resp_free(&r);

	get(f->port, "/o/acme/users/me", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "me");
	resp_free(&r);

	exchange(f->port, "DELETE /hello HTTP/1.1\r\nHost: t\r\n"
	    "Connection: close\r\n\r\n", &r);
	assert_int_equal(r.status, 405);
	assert_true(resp_header(&r, "Allow", v, sizeof v));
	assert_non_null(strstr(v, "GET"));
	assert_json_error(&r, "method_not_allowed");
	assert_security_headers(&r);
	resp_free(&r);
	stop(f);
}

static void
test_oversized_body_gets_413(void **state)
{
	struct fixture *f = start_default();
	char big[2048 + 256];
	char body[2048];
	struct resp r;
	int fd;

	/* Announced by Content-Length. */
	memset(body, 'a', sizeof body);
	snprintf(big, sizeof big, "POST /json HTTP/1.1\r\nHost: t\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
	    sizeof body);
	fd = client_connect(f->port);
	send_all(fd, big, strlen(big));
	read_response(fd, &r);
	close(fd);
	assert_int_equal(r.status, 413);
	assert_json_error(&r, "body_too_large");
	assert_security_headers(&r);
	resp_free(&r);

	/* Chunked, so only counting finds it. */
	fd = client_connect(f->port);
	send_all(fd, "POST /json HTTP/1.1\r\nHost: t\r\nContent-Type: "
	    "application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
	    strlen("POST /json HTTP/1.1\r\nHost: t\r\nContent-Type: "
	    "application/json\r\nTransfer-Encoding: chunked\r\n\r\n"));
	for (int i = 0; i < 4; i++) {
		send_all(fd, "200\r\n", 5);
		send_all(fd, body, 0x200);
		send_all(fd, "\r\n", 2);
	}
	send_all(fd, "0\r\n\r\n", 5);
	read_response(fd, &r);
	close(fd);
	assert_int_equal(r.status, 413);
	assert_json_error(&r, "body_too_large");
	resp_free(&r);
	stop(f);
}

static void
test_oversized_header_block_is_refused(void **state)
{
	struct fixture *f = start_default();
	static char req[64 * 1024];
	const char *start_line = "GET /hello HTTP/1.1\r\nHost: t\r\nX-Pad: ";
	struct resp r;
	size_t n = strlen(start_line);

	/* Just over max_header (4096): refused by our exact count. */
	memcpy(req, start_line, n);
	memset(req + n, 'p', 4200);
	n += 4200;
	memcpy(req + n, "\r\nConnection: close\r\n\r\n", 24);
	exchange(f->port, req, &r);
	assert_true(r.closed || r.status == 431);
	if (!r.closed)
		assert_json_error(&r, "headers_too_large");
	resp_free(&r);

	/* Far over: MHD's memory limit refuses it before we see it. */
	n = strlen(start_line);
	memcpy(req, start_line, n);
	memset(req + n, 'p', 40000);
	n += 40000;
	memcpy(req + n, "\r\nConnection: close\r\n\r\n", 24);
	exchange(f->port, req, &r);
	assert_true(r.closed || r.status == 431 || r.status == 413 ||
	    r.status == 414);
	resp_free(&r);

	/* The server still answers. */
	get(f->port, "/hello", &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	stop(f);
}

static void
test_bad_paths_give_400(void **state)
{
	struct fixture *f = start_default();
	static const char *const paths[] = { "/a/../b", "/a/%2e%2e/b",
		"/a/%2E%2e/b", "/a/./b", "/a//b", "/hello/", "/a/%ff/b",
		"/a/%c0%af/b", "/a%00b", "/a/%zz", "/a/%2f%2e%2e%2fb" };
	struct resp r;

	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		get(f->port, paths[i], &r);
		if (r.status != 400)
			fail_msg("%s gave %d", paths[i], r.status);
		assert_json_error(&r, "invalid_path");
		assert_security_headers(&r);
		resp_free(&r);
	}
	get(f->port, "/info?q=%ff", &r);
	assert_int_equal(r.status, 400);
	assert_json_error(&r, "invalid_request");
	resp_free(&r);

	exchange(f->port, "GET /hello HTTP/1.1\r\nHost: t\r\nX-Bad: \xff\xfe"
	    "\r\nConnection: close\r\n\r\n", &r);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	stop(f);
}

static void
post(uint16_t port, const char *path, const char *ctype, const char *body,
    size_t len, struct resp *r)
{
	char head[512];
	int fd = client_connect(port);

	snprintf(head, sizeof head, "POST %s HTTP/1.1\r\nHost: t\r\n"
	    "Content-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n"
	    "\r\n", path, ctype, len);
	send_all(fd, head, strlen(head));
	send_all(fd, body, len);
	read_response(fd, r);
	close(fd);
}

static void
test_json_bodies_are_checked_with_clear_messages(void **state)
{
	struct fixture *f = start_default();
	struct resp r;

	post(f->port, "/json", "application/json; charset=utf-8",
	    "{\"a\":1}", 7, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"a\":1}");
	resp_free(&r);

	post(f->port, "/json", "application/json", "{\"a\":", 5, &r);
	assert_int_equal(r.status, 400);
	assert_int_equal(f->app.json_err, GH_ERR_INVALID);
	assert_non_null(strstr(f->app.json_msg, "invalid JSON at line 1"));
	resp_free(&r);

	post(f->port, "/json", "application/json", "{\"a\":1,\"a\":2}", 13,
	    &r);
	assert_int_equal(r.status, 400);
	assert_int_equal(f->app.json_err, GH_ERR_INVALID);
	assert_non_null(strstr(f->app.json_msg, "duplicate key"));
	resp_free(&r);

	post(f->port, "/json", "application/json", "{\"a\":\"\xc3\x28\"}", 9,
	    &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(f->app.json_msg, "body is not valid UTF-8");
	resp_free(&r);

	post(f->port, "/json", "application/json", "[1]", 3, &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(f->app.json_msg, "body must be a JSON object");
	resp_free(&r);

	post(f->port, "/json", "text/plain", "{}", 2, &r);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(f->app.json_msg, "Content-Type"));
	resp_free(&r);
	stop(f);
}

static void
test_form_bodies_reach_the_handler(void **state)
{
	struct fixture *f = start_default();
	struct resp r;

	post(f->port, "/form", "application/x-www-form-urlencoded",
	    "name=J%C3%BCrgen+M&name=second", 30, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "J\xc3\xbcrgen M");
	resp_free(&r);

	post(f->port, "/form", "text/plain", "name=x", 6, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "(none)");
	resp_free(&r);
	stop(f);
}

static void
test_client_ip_ignores_forwarded_for_from_untrusted_peers(void **state)
{
	struct fixture *f = start_default();
	struct resp r;

	exchange(f->port, "GET /info HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: "
	    "203.0.113.5\r\nX-Forwarded-Proto: https\r\nCookie: sid=tok1; "
	    "sid=tok2\r\nConnection: close\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"ip\":\"127.0.0.1\""));
	assert_non_null(strstr(r.body, "\"secure\":false"));
	assert_non_null(strstr(r.body, "\"sid\":\"tok1\""));
	resp_free(&r);
	stop(f);
}

/* One Cookie header is parsed where it stands, several are joined (the
 * first "sid" wins either way), and a keep-alive connection's next request
 * starts clean (the request struct is reused per connection). */
static void
test_cookie_headers_one_or_several_on_one_connection(void **state)
{
	struct fixture *f = start_default();
	int fd = client_connect(f->port);
	static const char *reqs[] = {
		"GET /info HTTP/1.1\r\nHost: t\r\nCookie: sid=one\r\n\r\n",
		"GET /info HTTP/1.1\r\nHost: t\r\nCookie: theme=dark\r\n"
		    "Cookie: sid=two; a=b\r\nCookie: sid=late\r\n\r\n",
		"GET /info HTTP/1.1\r\nHost: t\r\nCookie: \r\nCookie: "
		    "sid=three\r\n\r\n",
		"GET /info?q=x HTTP/1.1\r\nHost: t\r\n\r\n",
	};
	static const char *want[] = {
		"\"sid\":\"one\"", "\"sid\":\"two\"", "\"sid\":\"three\"",
		"\"q\":\"x\"",
	};
	struct resp r;

	for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
		send_all(fd, reqs[i], strlen(reqs[i]));
		read_response(fd, &r);
		assert_int_equal(r.status, 200);
		assert_non_null(strstr(r.body, want[i]));
		assert_non_null(strstr(r.body, "\"ip\":\"127.0.0.1\""));
		if (i == 3)
			assert_non_null(strstr(r.body, "\"sid\":null"));
		resp_free(&r);
	}
	close(fd);
	stop(f);
}

static void
test_client_ip_walks_forwarded_for_from_trusted_proxies(void **state)
{
	struct gh_http_config cfg;
	struct fixture *f;
	struct resp r;
	char v[256];

	base_config(&cfg);
	cfg.trusted_proxies[0] = "127.0.0.0/8";
	cfg.trusted_proxies[1] = "10.0.0.0/8";
	cfg.trusted_proxies_len = 2;
	f = start(&cfg);
	exchange(f->port, "GET /info HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: "
	    "198.51.100.7, 203.0.113.5, 10.1.2.3\r\nX-Forwarded-Proto: https"
	    "\r\nConnection: close\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"ip\":\"203.0.113.5\""));
	assert_non_null(strstr(r.body, "\"secure\":true"));
	assert_true(resp_header(&r, "Strict-Transport-Security", v, sizeof v));
	assert_string_equal(v, "max-age=63072000; includeSubDomains");
	resp_free(&r);

	/* A garbled entry: the peer, not a guess. */
	exchange(f->port, "GET /info HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: "
	    "203.0.113.5, not-an-ip\r\nConnection: close\r\n\r\n", &r);
	assert_non_null(strstr(r.body, "\"ip\":\"127.0.0.1\""));
	assert_non_null(strstr(r.body, "\"secure\":false"));
	resp_free(&r);
	stop(f);
}

static void
test_cookies_are_secure_unless_dev_on_loopback(void **state)
{
	struct gh_http_config cfg;
	struct fixture *f;
	struct resp r;
	char v[512];

	f = start_default();
	get(f->port, "/cookie", &r);
	assert_int_equal(r.status, 204);
	assert_true(resp_header(&r, "Set-Cookie", v, sizeof v));
	assert_string_equal(v, "sid=abc123; Path=/o/acme/; Max-Age=3600; HttpOnly; "
	    "SameSite=Lax; Secure");
	resp_free(&r);
	stop(f);

	base_config(&cfg);
	cfg.dev = true;
	f = start(&cfg);
	get(f->port, "/cookie", &r);
	assert_true(resp_header(&r, "Set-Cookie", v, sizeof v));
	assert_string_equal(v, "sid=abc123; Path=/o/acme/; Max-Age=3600; HttpOnly; "
	    "SameSite=Lax");
	resp_free(&r);
	stop(f);
}

struct slow_client {
	uint16_t port;
	struct resp r;
};

static void *
slow_client_main(void *arg)
{
	struct slow_client *c = arg;

	get(c->port, "/slow", &c->r);
	return NULL;
}

static void
test_deferred_work_does_not_stall_other_requests(void **state)
{
	struct fixture *f = start_default();	/* one MHD thread */
	struct slow_client c = { .port = f->port };
	pthread_t t;
	struct resp r;
	bool started = false;

	assert_int_equal(pthread_create(&t, NULL, slow_client_main, &c), 0);
	/* While /slow blocks on a worker, the only MHD thread must keep
	 * answering; if it were blocked these requests would never be. */
	for (int i = 0; i < 2000 && !started; i++) {
		get(f->port, "/started", &r);
		assert_int_equal(r.status, 200);
		started = strcmp(r.body, "yes") == 0;
		resp_free(&r);
		if (!started)
			usleep(1000);
	}
	assert_true(started);
	get(f->port, "/signal", &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	pthread_join(t, NULL);
	assert_int_equal(c.r.status, 200);
	assert_string_equal(c.r.body, "slow done");
	assert_security_headers(&c.r);
	resp_free(&c.r);
	stop(f);
}

struct park_client {
	uint16_t port;
	const char *path;
	struct resp r;
	int64_t done_ms;
};

static void *
park_client_main(void *arg)
{
	struct park_client *c = arg;

	get(c->port, c->path, &c->r);
	c->done_ms = gh_now_ms();
	return NULL;
}

static void
test_parked_requests_hold_no_thread_and_answer_on_wake(void **state)
{
	struct fixture *f = start_default();	/* one MHD thread */
	struct park_client c[3];
	pthread_t t[3];
	struct resp r;
	int64_t woke;
	int checks = 0;

	/* More parked requests than MHD threads and workers together. */
	for (int i = 0; i < 3; i++) {
		c[i] = (struct park_client){ .port = f->port, .path = "/park" };
		assert_int_equal(pthread_create(&t[i], NULL, park_client_main,
		    &c[i]), 0);
	}
	for (int i = 0; i < 2000 && checks < 3; i++) {
		usleep(1000);
		pthread_mutex_lock(&f->app.mu);
		checks = f->app.parked_checks;
		pthread_mutex_unlock(&f->app.mu);
	}
	/* Parked, yet the server answers, and defers work, meanwhile. */
	get(f->port, "/hello", &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	woke = gh_now_ms();
	get(f->port, "/wake", &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(c[i].r.status, 200);
		assert_string_equal(c[i].r.body, "woken");
		assert_security_headers(&c[i].r);
		assert_true(c[i].done_ms - woke < 900);
		resp_free(&c[i].r);
	}
	stop(f);
}

static void
test_parked_request_is_answered_at_its_deadline_or_at_stop(void **state)
{
	struct fixture *f = start_default();
	struct park_client c = { .port = f->port, .path = "/park?ms=300" };
	struct park_client d = { .port = f->port, .path = "/park?ms=60000" };
	pthread_t t, u;
	int64_t t0 = gh_now_ms();

	assert_int_equal(pthread_create(&t, NULL, park_client_main, &c), 0);
	pthread_join(t, NULL);
	assert_int_equal(c.r.status, 200);
	assert_string_equal(c.r.body, "deadline");
	assert_true(c.done_ms - t0 >= 300 && c.done_ms - t0 < 3000);
	resp_free(&c.r);

	assert_int_equal(pthread_create(&u, NULL, park_client_main, &d), 0);
	usleep(200 * 1000);
	stop(f);	/* must answer the parked request, not hang */
	pthread_join(u, NULL);
	assert_int_equal(d.r.status, 200);
	assert_string_equal(d.r.body, "deadline");
	resp_free(&d.r);
}

static void
test_suspended_requests_are_answered_by_another_thread(void **state)
{
	struct fixture *f = start_default();	/* one MHD thread */
	struct park_client c[3];
	pthread_t t[3];
	struct resp r;
	int n = 0;

	for (int i = 0; i < 3; i++) {
		c[i] = (struct park_client){ .port = f->port, .path = "/susp" };
		assert_int_equal(pthread_create(&t[i], NULL, park_client_main,
		    &c[i]), 0);
	}
	for (int i = 0; i < 5000 && n < 3; i++) {
		usleep(1000);
		pthread_mutex_lock(&f->app.mu);
		n = f->app.nsusp;
		pthread_mutex_unlock(&f->app.mu);
	}
	assert_int_equal(n, 3);
	/* Suspended, yet the one thread serves others meanwhile. */
	get(f->port, "/hello", &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	pthread_mutex_lock(&f->app.mu);
	assert_false(f->app.go_early);
	for (int i = 0; i < n; i++) {
		gh_http_respond(f->app.susp[i], 201, "text/plain", "later", 5);
		gh_http_resume(f->app.susp[i]);
	}
	f->app.nsusp = 0;
	pthread_mutex_unlock(&f->app.mu);
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(c[i].r.status, 201);
		assert_string_equal(c[i].r.body, "later");
		assert_security_headers(&c[i].r);
		resp_free(&c[i].r);
	}
	stop(f);
}

static void
test_metrics_count_requests_and_signins(void **state)
{
	struct fixture *f = start_default();
	struct resp r;

	get(f->port, "/hello", &r);
	resp_free(&r);
	get(f->port, "/nope", &r);
	resp_free(&r);
	get(f->port, "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body,
	    "# TYPE gatehouse_http_requests_total counter\n"));
	assert_non_null(strstr(r.body, "gatehouse_http_requests_total{route="
	    "\"/hello\",method=\"GET\",status=\"200\"} 1\n"));
	assert_non_null(strstr(r.body, "gatehouse_http_requests_total{route="
	    "\"unmatched\",method=\"GET\",status=\"404\"} 1\n"));
	assert_non_null(strstr(r.body,
	    "# TYPE gatehouse_http_request_duration_seconds histogram\n"));
	assert_non_null(strstr(r.body, "gatehouse_http_request_duration_"
	    "seconds_bucket{route=\"/hello\",le=\"+Inf\"} 1\n"));
	assert_non_null(strstr(r.body, "gatehouse_http_request_duration_"
	    "seconds_count{route=\"/hello\"} 1\n"));
	assert_non_null(strstr(r.body, "gatehouse_http_request_duration_"
	    "seconds_sum{route=\"/hello\"} "));
	assert_non_null(strstr(r.body,
	    "gatehouse_signins_total{result=\"success\"} 2\n"));
	assert_non_null(strstr(r.body,
	    "gatehouse_signins_total{result=\"failure\"} 1\n"));
	resp_free(&r);
	stop(f);
}

static void
test_start_refuses_plain_http_off_loopback(void **state)
{
	struct gh_http_config cfg;
	struct gh_http_router *r = make_router();
	struct gh_http_server *srv = NULL;
	char msg[256];

	base_config(&cfg);
	gh_strlcpy(cfg.host, "0.0.0.0", sizeof cfg.host);
	assert_int_equal(gh_http_server_start(&cfg, r, NULL, &srv, msg,
	    sizeof msg), GH_ERR_INVALID);
	assert_null(srv);
	assert_string_equal(msg, "listen: plain HTTP is only allowed on "
	    "loopback; configure tls_cert/tls_key or trusted_proxies");

	base_config(&cfg);
	gh_strlcpy(cfg.host, "localhost", sizeof cfg.host);
	assert_int_equal(gh_http_server_start(&cfg, r, NULL, &srv, msg,
	    sizeof msg), GH_ERR_INVALID);
	assert_non_null(strstr(msg, "host"));

	base_config(&cfg);
	cfg.tls_cert_file = "/nonexistent/cert.pem";
	assert_int_equal(gh_http_server_start(&cfg, r, NULL, &srv, msg,
	    sizeof msg), GH_ERR_INVALID);
	assert_non_null(strstr(msg, "tls_key_file"));

	base_config(&cfg);
	cfg.tls_cert_file = "/nonexistent/cert.pem";
	cfg.tls_key_file = "/nonexistent/key.pem";
	assert_int_equal(gh_http_server_start(&cfg, r, NULL, &srv, msg,
	    sizeof msg), GH_ERR_INVALID);
	assert_non_null(strstr(msg, "tls_cert_file"));

	base_config(&cfg);
	cfg.trusted_proxies[0] = "10.0.0.0/33";
	cfg.trusted_proxies_len = 1;
	assert_int_equal(gh_http_server_start(&cfg, r, NULL, &srv, msg,
	    sizeof msg), GH_ERR_INVALID);
	assert_non_null(strstr(msg, "trusted_proxies"));
	gh_http_router_free(r);
}

static void
test_keep_alive_serves_two_requests_on_one_connection(void **state)
{
	struct fixture *f = start_default();
	struct resp r;
	char v[64];
	int fd = client_connect(f->port);

	for (int i = 0; i < 2; i++) {
		const char *req = "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";

		send_all(fd, req, strlen(req));
		read_response(fd, &r);
		assert_false(r.closed);
		assert_int_equal(r.status, 200);
		assert_false(resp_header(&r, "Connection", v, sizeof v) &&
		    strcasecmp(v, "close") == 0);
		resp_free(&r);
	}
	/* Also after a body. */
	send_all(fd, "POST /json HTTP/1.1\r\nHost: t\r\nContent-Type: "
	    "application/json\r\nContent-Length: 2\r\n\r\n{}",
	    strlen("POST /json HTTP/1.1\r\nHost: t\r\nContent-Type: "
	    "application/json\r\nContent-Length: 2\r\n\r\n{}"));
	read_response(fd, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	close(fd);
	stop(f);
}

/* ---- TLS ------------------------------------------------------------------------ */

#ifdef GH_HTTP_TEST_TLS
static bool
make_cert(char dir[static 64])
{
	char cmd[512];

	strcpy(dir, "/tmp/gh_http_tls_XXXXXX");
	if (mkdtemp(dir) == NULL)
		return false;
	snprintf(cmd, sizeof cmd, "openssl req -x509 -newkey ec -pkeyopt "
	    "ec_paramgen_curve:prime256v1 -nodes -keyout %s/key.pem -out "
	    "%s/cert.pem -days 1 -subj /CN=localhost >/dev/null 2>&1", dir,
	    dir);
	return system(cmd) == 0;
}

static void
rm_cert(const char *dir)
{
	char p[128];

	snprintf(p, sizeof p, "%s/key.pem", dir);
	unlink(p);
	snprintf(p, sizeof p, "%s/cert.pem", dir);
	unlink(p);
	rmdir(dir);
}

/* Returns the negotiated version, or 0 if the handshake failed. */
static int
tls_get(uint16_t port, int max_version, struct resp *r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl;
	int fd, version = 0;
	char buf[16384];
	size_t used = 0;
	const char *req = "GET /hello HTTP/1.1\r\nHost: localhost\r\n"
	    "Connection: close\r\n\r\n";

	memset(r, 0, sizeof *r);
	assert_non_null(ctx);
	if (max_version != 0) {
		/* Let the client really offer the old version, so that the
		 * refusal is the server's. */
		SSL_CTX_set_security_level(ctx, 0);
		SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
		SSL_CTX_set_min_proto_version(ctx, max_version);
		SSL_CTX_set_max_proto_version(ctx, max_version);
	}
	fd = client_connect(port);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) == 1) {
		version = SSL_version(ssl);
		SSL_write(ssl, req, (int)strlen(req));
		for (;;) {
			int n = SSL_read(ssl, buf + used,
			    (int)(sizeof buf - 1 - used));

			if (n <= 0)
				break;
			used += (size_t)n;
		}
		buf[used] = '\0';
		gh_strlcpy(r->head, buf, sizeof r->head);
		sscanf(r->head, "HTTP/1.%*d %d", &r->status);
	}
	ERR_clear_error();
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return version;
}

static void
test_tls_offers_only_1_2_and_1_3_and_sends_hsts(void **state)
{
	struct gh_http_config cfg;
	struct fixture *f;
	char dir[64], cert[128], key[128], v[256];
	struct resp r;
	int version;

	if (!make_cert(dir)) {
		rm_cert(dir);
		skip();
	}
	snprintf(cert, sizeof cert, "%s/cert.pem", dir);
	snprintf(key, sizeof key, "%s/key.pem", dir);
	base_config(&cfg);
	cfg.tls_cert_file = cert;
	cfg.tls_key_file = key;
	f = start(&cfg);
	assert_true(gh_http_server_tls(f->srv));

	version = tls_get(f->port, 0, &r);
	assert_true(version == TLS1_3_VERSION || version == TLS1_2_VERSION);
	assert_int_equal(r.status, 200);
	assert_true(resp_header(&r, "Strict-Transport-Security", v, sizeof v));
	assert_security_headers(&r);

	version = tls_get(f->port, TLS1_2_VERSION, &r);
	assert_int_equal(version, TLS1_2_VERSION);
	assert_int_equal(r.status, 200);

	assert_int_equal(tls_get(f->port, TLS1_1_VERSION, &r), 0);
	assert_int_equal(tls_get(f->port, TLS1_VERSION, &r), 0);
	stop(f);
	rm_cert(dir);
}
#endif

/* ---- parser tests --------------------------------------------------------------- */

static void
test_path_check_refuses_traversal_and_junk(void **state)
{
	char *p;

	assert_true(gh_http_path_valid("/", 1));
	assert_true(gh_http_path_valid("/a/b.c/..d", 10));
	assert_false(gh_http_path_valid("", 0));
	assert_false(gh_http_path_valid("a/b", 3));
	assert_false(gh_http_path_valid("/a/../b", 7));
	assert_false(gh_http_path_valid("/a/..", 5));
	assert_false(gh_http_path_valid("/./a", 4));
	assert_false(gh_http_path_valid("/a//b", 5));
	assert_false(gh_http_path_valid("/a/", 3));
	assert_false(gh_http_path_valid("/a\0b", 4));
	assert_false(gh_http_path_valid("/\xff", 2));

	assert_int_equal(gh_http_path_decode("/a%20b?x=1", 10, &p), GH_OK);
	assert_string_equal(p, "/a b");
	free(p);
	assert_int_equal(gh_http_path_decode("/a/%2e%2e/b", 11, &p),
	    GH_ERR_INVALID);
	assert_null(p);
	assert_int_equal(gh_http_path_decode("/a%2", 4, &p), GH_ERR_INVALID);
	assert_int_equal(gh_http_path_decode("/a%00", 5, &p), GH_ERR_INVALID);
	assert_int_equal(gh_http_path_decode("http://x/", 9, &p),
	    GH_ERR_INVALID);
}

static void
test_form_parse_decodes_and_bounds_fields(void **state)
{
	struct gh_http_kvs kv;
	char big[64 * 6 + 16];
	size_t n = 0;

	assert_int_equal(gh_http_form_parse("a=1&b=x+y%21&a=2&&c", 19, &kv),
	    GH_OK);
	assert_string_equal(gh_http_kvs_get(&kv, "a"), "1");
	assert_string_equal(gh_http_kvs_get(&kv, "b"), "x y!");
	assert_string_equal(gh_http_kvs_get(&kv, "c"), "");
	assert_null(gh_http_kvs_get(&kv, "d"));
	gh_http_kvs_free(&kv);

	assert_int_equal(gh_http_form_parse("a=%ff", 5, &kv), GH_ERR_INVALID);
	assert_int_equal(kv.len, 0);
	assert_int_equal(gh_http_form_parse("a=%00", 5, &kv), GH_ERR_INVALID);
	assert_int_equal(gh_http_form_parse("a=%4", 4, &kv), GH_ERR_INVALID);
	assert_int_equal(gh_http_form_parse("=x", 2, &kv), GH_ERR_INVALID);

	for (int i = 0; i < 65; i++)
		n += (size_t)sprintf(big + n, "%sf%d=", i ? "&" : "", i);
	assert_int_equal(gh_http_form_parse(big, n, &kv), GH_ERR_LIMIT);
	assert_int_equal(kv.len, 0);
}

static void
test_cookie_parse_skips_junk_and_keeps_the_first(void **state)
{
	struct gh_http_kvs kv;
	const char *h = "sid=abc; theme=\"dark\"; bad name=x; sid=evil; "
	    "noeq; v=a,b; ok=1";
	char big[GH_HTTP_COOKIE_HEADER_MAX + 2];

	assert_int_equal(gh_http_cookie_parse(h, strlen(h), &kv), GH_OK);
	assert_string_equal(gh_http_kvs_get(&kv, "sid"), "abc");
	assert_string_equal(gh_http_kvs_get(&kv, "theme"), "dark");
	assert_null(gh_http_kvs_get(&kv, "v"));
	assert_string_equal(gh_http_kvs_get(&kv, "ok"), "1");
	gh_http_kvs_free(&kv);

	memset(big, 'a', sizeof big);
	assert_int_equal(gh_http_cookie_parse(big, sizeof big, &kv),
	    GH_ERR_LIMIT);

	assert_true(gh_http_cookie_name_valid("__Host-sid"));
	assert_false(gh_http_cookie_name_valid("a=b"));
	assert_false(gh_http_cookie_name_valid(""));
	assert_true(gh_http_cookie_value_valid("abc-_.~"));
	assert_false(gh_http_cookie_value_valid("a;b"));
	assert_false(gh_http_cookie_value_valid("a b"));
}

static void
test_forwarded_for_is_believed_only_from_trusted_proxies(void **state)
{
	const char *list[] = { "10.0.0.0/8", "2001:db8::/32", "192.0.2.1" };
	struct gh_http_proxies p;
	struct gh_http_cidr peer;
	char out[GH_HTTP_IP_STR_MAX], msg[128];
	const char *bad[] = { "10.0.0.0/x" };

	assert_int_equal(gh_http_proxies_parse(list, 3, &p, msg, sizeof msg),
	    GH_OK);
	assert_true(gh_http_ip_parse("10.9.9.9", 8, &peer));
	gh_http_client_ip(&p, &peer, "1.1.1.1, 198.51.100.1, 10.0.0.2",
	    out);
	assert_string_equal(out, "198.51.100.1");
	gh_http_client_ip(&p, &peer, "2001:db8::5, 192.0.2.1", out);
	assert_string_equal(out, "10.9.9.9");	/* only proxies */
	gh_http_client_ip(&p, &peer, "1.1.1.1, junk", out);
	assert_string_equal(out, "10.9.9.9");
	gh_http_client_ip(&p, &peer, "::ffff:198.51.100.2", out);
	assert_string_equal(out, "198.51.100.2");

	assert_true(gh_http_ip_parse("203.0.113.9", 11, &peer));
	gh_http_client_ip(&p, &peer, "1.1.1.1", out);
	assert_string_equal(out, "203.0.113.9");

	assert_int_equal(gh_http_proxies_parse(bad, 1, &p, msg, sizeof msg),
	    GH_ERR_INVALID);
	assert_non_null(strstr(msg, "trusted_proxies"));
}

static void
test_json_parse_reports_line_column_and_duplicates(void **state)
{
	json_t *j;
	char msg[256];

	assert_int_equal(gh_http_json_parse("{\"a\":[1,2]}", 11, &j, msg,
	    sizeof msg), GH_OK);
	json_decref(j);
	assert_int_equal(gh_http_json_parse("{\"a\" 1}", 7, &j, msg,
	    sizeof msg), GH_ERR_INVALID);
	assert_null(j);
	assert_non_null(strstr(msg, "invalid JSON at line 1 column"));
	assert_int_equal(gh_http_json_parse("{\"a\":1,\"a\":1}", 13, &j, msg,
	    sizeof msg), GH_ERR_INVALID);
	assert_non_null(strstr(msg, "duplicate key"));
	assert_int_equal(gh_http_json_parse("{\"a\":\"\\u0000\"}", 14, &j,
	    msg, sizeof msg), GH_ERR_INVALID);
	assert_int_equal(gh_http_json_parse("{}\0", 3, &j, msg, sizeof msg),
	    GH_ERR_INVALID);
	assert_int_equal(gh_http_json_parse("\"s\"", 3, &j, msg, sizeof msg),
	    GH_ERR_INVALID);
	assert_string_equal(msg, "body must be a JSON object");

	assert_true(gh_http_media_type_is("application/json",
	    "application/json"));
	assert_true(gh_http_media_type_is("Application/JSON; charset=UTF-8",
	    "application/json"));
	assert_false(gh_http_media_type_is("application/json; charset=latin1",
	    "application/json"));
	assert_false(gh_http_media_type_is("application/jsonx",
	    "application/json"));
}

static void
noop(void *app, struct gh_http_req *req)
{
	gh_http_respond(req, 204, "text/plain", "", 0);
}

static void
test_router_refuses_bad_and_ambiguous_patterns(void **state)
{
	struct gh_http_router *r;
	struct gh_http_match m;

	assert_int_equal(gh_http_router_new(&r), GH_OK);
	assert_int_equal(gh_http_route(r, "GET", "/a/{x}", noop), GH_OK);
	assert_int_equal(gh_http_route(r, "GET", "/a/{y}", noop),
	    GH_ERR_INVALID);
	assert_int_equal(gh_http_route(r, "GET", "a", noop), GH_ERR_INVALID);
	assert_int_equal(gh_http_route(r, "GET", "/a/{x", noop),
	    GH_ERR_INVALID);
	assert_int_equal(gh_http_route(r, "GE T", "/b", noop),
	    GH_ERR_INVALID);
	assert_int_equal(gh_http_route(r, "GET", "/a/../b", noop),
	    GH_ERR_INVALID);
	assert_int_equal(gh_http_route(r, "PUT", "/a/{x}", noop), GH_OK);
	assert_int_equal(gh_http_router_match(r, "POST", "/a/1", &m),
	    GH_ERR_DENIED);
	assert_string_equal(m.allow, "GET, HEAD, PUT");
	assert_int_equal(gh_http_router_match(r, "GET", "/b", &m),
	    GH_ERR_NOTFOUND);
	assert_int_equal(gh_http_router_match(r, "HEAD", "/a/1", &m), GH_OK);
	gh_http_router_free(r);
}

static void
test_route_table_registers_all_and_stops_at_a_refusal(void **state)
{
	static const struct gh_http_route_def ok[] = {
		{ "GET", "/a/{x}", h_hello },
		{ "POST", "/a/{x}", h_hello },
	};
	static const struct gh_http_route_def bad[] = {
		{ "GET", "/b", h_hello },
		{ "GET", "no-leading-slash", h_hello },
		{ "GET", "/c", h_hello },
	};
	struct gh_http_router *r;

	(void)state;
	assert_int_equal(gh_http_router_new(&r), GH_OK);
	assert_int_equal(gh_http_routes(r, ok, 2), GH_OK);
	/* The same shapes again are refused: both were registered. */
	assert_int_not_equal(gh_http_route(r, "GET", "/a/{y}", h_hello), GH_OK);
	assert_int_not_equal(gh_http_route(r, "POST", "/a/{y}", h_hello),
	    GH_OK);
	assert_int_not_equal(gh_http_routes(r, bad, 3), GH_OK);
	/* It stopped at the refusal: /c was never added. */
	assert_int_equal(gh_http_route(r, "GET", "/c", h_hello), GH_OK);
	gh_http_router_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_check_refuses_traversal_and_junk),
		cmocka_unit_test(
		    test_route_table_registers_all_and_stops_at_a_refusal),
		cmocka_unit_test(test_form_parse_decodes_and_bounds_fields),
		cmocka_unit_test(
		    test_cookie_parse_skips_junk_and_keeps_the_first),
		cmocka_unit_test(
		    test_forwarded_for_is_believed_only_from_trusted_proxies),
		cmocka_unit_test(
		    test_json_parse_reports_line_column_and_duplicates),
		cmocka_unit_test(
		    test_router_refuses_bad_and_ambiguous_patterns),
		cmocka_unit_test(test_security_headers_are_on_200_and_404),
		cmocka_unit_test(
		    test_router_prefers_literals_and_answers_405_with_allow),
		cmocka_unit_test(test_oversized_body_gets_413),
		cmocka_unit_test(test_oversized_header_block_is_refused),
		cmocka_unit_test(test_bad_paths_give_400),
		cmocka_unit_test(
		    test_json_bodies_are_checked_with_clear_messages),
		cmocka_unit_test(test_form_bodies_reach_the_handler),
		cmocka_unit_test(
		    test_client_ip_ignores_forwarded_for_from_untrusted_peers),
		cmocka_unit_test(
		    test_client_ip_walks_forwarded_for_from_trusted_proxies),
		cmocka_unit_test(test_cookies_are_secure_unless_dev_on_loopback),
		cmocka_unit_test(
		    test_cookie_headers_one_or_several_on_one_connection),
		cmocka_unit_test(
		    test_deferred_work_does_not_stall_other_requests),
		cmocka_unit_test(
		    test_parked_requests_hold_no_thread_and_answer_on_wake),
		cmocka_unit_test(
		    test_parked_request_is_answered_at_its_deadline_or_at_stop),
		cmocka_unit_test(
		    test_suspended_requests_are_answered_by_another_thread),
		cmocka_unit_test(test_metrics_count_requests_and_signins),
		cmocka_unit_test(test_start_refuses_plain_http_off_loopback),
		cmocka_unit_test(
		    test_keep_alive_serves_two_requests_on_one_connection),
#ifdef GH_HTTP_TEST_TLS
		cmocka_unit_test(
		    test_tls_offers_only_1_2_and_1_3_and_sends_hsts),
#endif
	};

	return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
