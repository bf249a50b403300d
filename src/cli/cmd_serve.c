/*
 * cmd_serve.c: gatehouse serve. Reads the configuration, opens the store,
 * binds, and serves until SIGINT or SIGTERM, then drains and exits 0.
 * Secrets: none of its own; core dumps are disabled so that no key, token
 * or password in memory can reach one.
 */
#include "auth/auth.h"
#include "cli/cli_int.h"
#include "notify/notify.h"
#include "policy/policy.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

struct url_ctx {
	const char *base;
	int shown;
};

static void
print_org_url(const struct gh_org *org, void *arg)
{
	struct url_ctx *u = arg;

	if (strcmp(org->state, "active") != 0 || u->shown >= 10)
		return;
	printf("  sign in to %s: %s/o/%s/login\n", org->slug, u->base,
	    org->slug);
	u->shown++;
}

static void
evict_one(const struct gh_org *org, void *arg)
{
	gh_store_tenant_evict(arg, org->id);
}

/* Drops every cached tenant connection, so that the next request opens
 * with the current keys. */
static void
evict_all(struct gh_store *st)
{
	struct gh_db *dir = NULL;

	if (gh_store_directory(st, &dir) != GH_OK)
		return;
	/* Collecting first would be tidier; evicting does not touch the
	 * directory connection, so iterating while evicting is safe. */
	if (gh_identity_org_list(dir, evict_one, st) != GH_OK)
		GH_LOG_WARN(GH_ERR_STORE, "cannot list organisations to evict");
	gh_db_release(dir);
	GH_LOG_INFO("keys changed: tenant connections reopened");
}

/* Splits trusted_proxies (comma-separated) into hc; buf keeps the
 * strings. */
static gh_err
proxies_split(char *buf, struct gh_http_config *hc)
{
	char *save = NULL, *tok;

	for (tok = strtok_r(buf, ", ", &save); tok != NULL;
	    tok = strtok_r(NULL, ", ", &save)) {
		if (hc->trusted_proxies_len == GH_HTTP_MAX_PROXIES) {
			fprintf(stderr, "gatehouse: trusted_proxies: at most %d "
			    "entries\n", GH_HTTP_MAX_PROXIES);
			return GH_ERR_INVALID;
		}
		hc->trusted_proxies[hc->trusted_proxies_len++] = tok;
	}
	return GH_OK;
}

static gh_err
http_config(struct gh_config *cfg, char *proxies, struct gh_http_config *hc)
{
	gh_http_config_default(hc);
	if (config_listen(cfg->listen, hc->host, sizeof hc->host, &hc->port) !=
	    GH_OK)
		return GH_ERR_INVALID;
	hc->threads = cfg->http_threads;
	hc->workers = cfg->http_workers;
	hc->max_body = cfg->max_body_bytes;
	hc->max_header = cfg->max_header_bytes;
	hc->timeout_s = cfg->connection_timeout_s;
	hc->max_connections = cfg->max_connections;
	hc->dev = cfg->dev;
	hc->tls_cert_file = cfg->tls_cert[0] ? cfg->tls_cert : NULL;
	hc->tls_key_file = cfg->tls_key[0] ? cfg->tls_key : NULL;
	gh_strlcpy(proxies, cfg->trusted_proxies, sizeof cfg->trusted_proxies);
	return proxies_split(proxies, hc);
}

/* Starts the mailer when smtp_host is set (*out stays NULL otherwise). */
static gh_err
mailer_start(const struct gh_config *cfg, const char *base,
    struct gh_store *st, struct gh_mailer **out)
{
	struct gh_mailer_config mc = { .port = cfg->smtp_port,
		.timeout_s = cfg->smtp_timeout_s };

	*out = NULL;
	if (cfg->smtp_host[0] == '\0')
		return GH_OK;
	if (!gh_mail_addr_valid(cfg->smtp_from)) {
		fprintf(stderr, "gatehouse: smtp_from: not a bare e-mail "
		    "address\n");
		return GH_ERR_INVALID;
	}
	gh_strlcpy(mc.host, cfg->smtp_host, sizeof mc.host);
	gh_strlcpy(mc.from, cfg->smtp_from, sizeof mc.from);
	gh_strlcpy(mc.helo, cfg->smtp_helo, sizeof mc.helo);
	gh_strlcpy(mc.base_url, base, sizeof mc.base_url);
	return gh_mailer_start(st, &mc, out);
}

int
cmd_serve(int argc, char **argv)
{
	char proxies[sizeof ((struct gh_config *)0)->trusted_proxies];
	struct gh_http_router *router = NULL;
	struct gh_http_server *srv = NULL;
	struct gh_app_config acfg = { 0 };
	struct gh_http_config hc;
	struct gh_store *st = NULL;
	struct gh_kms *kms = NULL;
	struct gh_app *app = NULL;
	struct gh_mailer *mailer = NULL;
	struct gh_geo *geo = NULL;
	struct gh_config cfg;
	struct gh_db *dir = NULL;
	struct url_ctx urls;
	struct cli_opts o;
	char errmsg[256], base[300];
	sigset_t sigs;
	int sig = 0, rc = EXIT_FAIL;
	gh_err err;

	if (cli_parse(argc, argv, "config data-dir listen dev", &o) != GH_OK ||
	    cli_config(&o, &cfg) != GH_OK)
		return EXIT_USAGE;
	if (o.nargs != 0) {
		fprintf(stderr, "gatehouse: serve takes no arguments\n");
		return EXIT_USAGE;
	}
	if (http_config(&cfg, proxies, &hc) != GH_OK)
		return EXIT_USAGE;
	/* Signals are taken by sigwait below; block them before any thread
	 * starts so that every thread inherits the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	config_pw_params(&cfg, &acfg.pw);
	acfg.session.absolute_ms = (int64_t)cfg.session_lifetime_s * 1000;
	acfg.session.idle_ms = (int64_t)cfg.session_idle_timeout_s * 1000;
	config_base_url(&cfg, acfg.base_url, sizeof acfg.base_url);
	acfg.approval_ttl_ms = (int64_t)cfg.mfa_approval_ttl_s * 1000;
	acfg.oidc_key_delay_ms = (int64_t)cfg.oidc_key_publish_delay_s * 1000;
	acfg.bcl_retry_s = cfg.oidc_backchannel_retry_s;
	acfg.guard.signin_ip_per_min = cfg.signin_rate_ip_per_min;
	acfg.guard.signin_org_per_min = cfg.signin_rate_org_per_min;
	acfg.guard.lockout_failures = cfg.lockout_failures;
	acfg.guard.lockout_max_s = cfg.lockout_max_s;
	gh_strlcpy(acfg.guard.redis_url, cfg.redis_url,
	    sizeof acfg.guard.redis_url);
	if (cli_store(&cfg, &st, &kms) != GH_OK)
		goto out;
	config_base_url(&cfg, base, sizeof base);
	/* The country file of security policies: a bad file stops start-up
	 * rather than silently leaving every country unknown. */
	if (cfg.geoip_file[0] != '\0') {
		err = gh_geo_load(cfg.geoip_file, &geo, errmsg, sizeof errmsg);
		if (err != GH_OK) {
			fprintf(stderr, "gatehouse: geoip_file: %s\n",
			    err == GH_ERR_NOMEM ? gh_err_str(err) : errmsg);
			rc = EXIT_USAGE;
			goto out;
		}
	}
	err = gh_api_app_new(st, kms, &acfg, &app);
	if (err == GH_OK)
		gh_api_app_set_geo(app, geo);
	if (err == GH_OK)
		err = mailer_start(&cfg, base, st, &mailer);
	if (err == GH_OK)
		gh_api_app_set_mailer(app, mailer);
	if (err == GH_OK)
		err = gh_api_bcl_start(app);
	if (err == GH_OK)
		err = gh_http_router_new(&router);
	if (err == GH_OK)
		err = gh_api_routes(router);
	if (err == GH_ERR_INVALID && app == NULL && cfg.redis_url[0] != '\0') {
		fprintf(stderr, "gatehouse: redis_url: must be "
		    "redis://[:password@]host[:port][/db] or unix:/path\n");
		goto out;
	}
	if (err != GH_OK) {
		fprintf(stderr, "gatehouse: start-up failed: %s\n",
		    gh_err_str(err));
		goto out;
	}
	errmsg[0] = '\0';
	err = gh_http_server_start(&hc, router, app, &srv, errmsg,
	    sizeof errmsg);
	if (err != GH_OK) {
		fprintf(stderr, "gatehouse: cannot serve: %s\n",
		    errmsg[0] ? errmsg : gh_err_str(err));
		rc = err == GH_ERR_INVALID ? EXIT_USAGE : EXIT_FAIL;
		goto out;
	}
	printf("gatehouse %s: serving %s on %s port %u%s\n",
	    cfg.tls_cert[0] ? "https" : "http", cfg.data_dir, hc.host,
	    gh_http_server_port(srv), cfg.dev ? " (dev mode)" : "");
	urls.base = base;
	urls.shown = 0;
	if (gh_store_directory(st, &dir) == GH_OK &&
	    gh_identity_org_list(dir, print_org_url, &urls) != GH_OK)
		GH_LOG_WARN(GH_ERR_STORE, "cannot list organisations");
	gh_db_release(dir);
	fflush(stdout);
	GH_LOG_INFO("serving on %s port %u", hc.host, gh_http_server_port(srv));
	/* Wait for a signal; meanwhile pick up key changes made by the CLI
	 * (rotations, customer keys): cached tenant connections hold page
	 * keys, so they are dropped when keys changed. */
	for (;;) {
		struct timespec tick = { 1, 0 };
		bool changed = false;

		sig = sigtimedwait(&sigs, NULL, &tick);
		if (sig > 0)
			break;
		/* argon2id memory (19 MiB a hash) goes back once sign-ins
		 * pause. */
		gh_auth_pw_mem_trim(1000);
		if (gh_kms_refresh(kms, &changed) != GH_OK)
			GH_LOG_WARN(GH_ERR_STORE, "key store refresh failed");
		else if (changed)
			evict_all(st);
	}
	GH_LOG_INFO("signal %d: draining and stopping", sig);
	rc = 0;
out:
	gh_http_server_stop(srv);
	gh_api_bcl_stop(app);
	gh_mailer_stop(mailer);
	gh_http_router_free(router);
	gh_api_app_free(app);
	gh_geo_free(geo);
	cli_close(st, kms);
	return rc;
}
