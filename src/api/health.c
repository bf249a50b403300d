/*
 * health.c: liveness, readiness and Prometheus metrics.
 * No untrusted input beyond the request itself; no secrets.
 */
#include "api/api_int.h"

/* A constant: no JSON built per probe. */
static void
h_healthz(void *app, struct gh_http_req *req)
{
	static const char ok[] = "{\"status\":\"ok\"}";

	gh_http_respond(req, 200, "application/json", ok, sizeof ok - 1);
}

static void
h_readyz(void *appv, struct gh_http_req *req)
{
	struct gh_app *app = appv;
	struct gh_db *dir = NULL;
	gh_err err;

	err = gh_store_directory(app->store, &dir);
	if (err == GH_OK)
		err = gh_db_exec(dir, "SELECT 1");
	gh_db_release(dir);
	if (err != GH_OK) {
		gh_http_respond_error(req, 503, "not_ready",
		    "The directory database does not answer.");
		return;
	}
	gh_http_respond_json(req, 200, json_pack("{s:s}", "status", "ready"));
}

static void
h_metrics(void *app, struct gh_http_req *req)
{
	struct gh_buf b;

	gh_buf_init(&b, 4 * 1024 * 1024, 0);
	gh_http_metrics_render(req, &b);
	if (gh_buf_err(&b) != GH_OK) {
		gh_buf_free(&b);
		respond_err(req, GH_ERR_INTERNAL);
		return;
	}
	gh_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8",
	    b.data, b.len);
	gh_buf_free(&b);
}

gh_err
routes_health(struct gh_http_router *r)
{
	static const struct gh_http_route_def routes[] = {
		{ "GET", "/healthz", h_healthz },
		{ "GET", "/readyz", h_readyz },
		{ "GET", "/metrics", h_metrics },
	};

	return gh_http_routes(r, routes, sizeof routes / sizeof *routes);
}
