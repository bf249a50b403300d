/*
 * guard.c: brute-force protection of the sign-in endpoints.
 *
 * Two layers, both in src/ratelimit's GCRA table of this node, or in Redis
 * when redis_url is set so that every node shares them:
 *  - request rates: every request to a sign-in endpoint takes from its
 *    client address's budget and from its org's budget, before any work
 *    (and before password hashing is queued); over budget is 429
 *    rate_limited with Retry-After;
 *  - failures: each wrong password (or unknown user) is a strike against
 *    the account as typed from that address, and a lighter one against the
 *    account from anywhere. The first strikes are cheap, later ones double
 *    the wait (progressive delay) up to lockout_max_s; while waiting, the
 *    account is refused from that address (429 too_many_attempts) without
 *    checking the password, so a flood from one address neither guesses
 *    on nor locks out the owner signing in from elsewhere. A success
 *    forgives the account's strikes.
 */
#include "api/api_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "ratelimit/ratelimit.h"

#define GUARD_KEYS 65536
/* Strikes from all addresses together before the account itself waits:
 * this many times the per-address allowance. */
#define ACCOUNT_WIDE_FACTOR 4

gh_err
guard_new(struct gh_app *app)
{
	if (app->cfg.guard.redis_url[0] != '\0')
		return gh_rl_new_redis(GUARD_KEYS, app->cfg.guard.redis_url, 500,
		    &app->rl);
	return gh_rl_new(GUARD_KEYS, &app->rl);
}

void
guard_free(struct gh_app *app)
{
	gh_rl_free(app->rl);
	app->rl = NULL;
}

static struct gh_rl_rule
per_minute(unsigned n, unsigned burst)
{
	struct gh_rl_rule r = { n, 60 * 1000, burst };

	return r;
}

static void
respond_limited(struct gh_http_req *req, const char *code, const char *msg,
    int64_t retry_ms)
{
	char secs[24];

	snprintf(secs, sizeof secs, "%lld", (long long)((retry_ms + 999) /
	    1000 > 0 ? (retry_ms + 999) / 1000 : 1));
	if (gh_http_resp_header(req, "Retry-After", secs) != GH_OK)
		GH_LOG_WARN(GH_ERR_INTERNAL, "Retry-After not set");
	gh_http_respond_error(req, 429, code, msg);
}

bool
guard_signin_rate(struct gh_app *app, struct gh_http_req *req)
{
	const struct gh_guard_config *g = &app->cfg.guard;
	const char *slug = gh_http_req_param(req, "org");
	char ip[GH_RL_KEY_MAX], org[GH_RL_KEY_MAX];
	struct gh_rl_rule r;
	int64_t now = gh_now_ms(), retry = 0;

	if (app->rl == NULL)
		return true;
	if (g->signin_ip_per_min > 0 && gh_rl_ip_key("ip:",
	    gh_http_req_client_ip(req), ip, sizeof ip) == GH_OK) {
		r = per_minute(g->signin_ip_per_min, g->signin_ip_per_min / 3 +
		    1);
		if (!gh_rl_take(app->rl, ip, &r, now, &retry)) {
			gh_http_metrics_signin(req, "rate_limited");
			respond_limited(req, "rate_limited", "Too many sign-in "
			    "requests from your address; retry later.", retry);
			return false;
		}
	}
	if (g->signin_org_per_min > 0 && slug != NULL) {
		snprintf(org, sizeof org, "org:%s", slug);
		r = per_minute(g->signin_org_per_min, g->signin_org_per_min / 6 +
		    1);
		if (!gh_rl_take(app->rl, org, &r, now, &retry)) {
			gh_http_metrics_signin(req, "rate_limited");
			respond_limited(req, "rate_limited", "Too many sign-in "
			    "requests for this organisation; retry later.",
			    retry);
			return false;
		}
	}
	return true;
}

/* The keys of an account as typed: from this address and from anywhere.
 * Names are hashed so that long ones cannot collide by truncation. */
static bool
account_keys(struct api_ctx *ctx, const char *username,
    char here[static GH_RL_KEY_MAX], char anywhere[static GH_RL_KEY_MAX])
{
	uint8_t d[GH_SHA256_LEN];
	char hex[33], ipk[56];
	char name[GH_USERNAME_MAX + 1];
	char buf[GH_SLUG_MAX + GH_USERNAME_MAX + 2];
	size_t i;

	if (username == NULL)
		return false;
	for (i = 0; username[i] != '\0' && i < GH_USERNAME_MAX; i++)
		name[i] = (char)tolower((unsigned char)username[i]);
	name[i] = '\0';
	snprintf(buf, sizeof buf, "%s/%s", ctx->org.id, name);
	gh_sha256(buf, strlen(buf), d);
	gh_hex_encode(d, 16, hex);
	if (gh_rl_ip_key("", gh_http_req_client_ip(ctx->req), ipk,
	    sizeof ipk) != GH_OK)
		gh_strlcpy(ipk, "?", sizeof ipk);
	snprintf(here, GH_RL_KEY_MAX, "acct:%s@%s", hex, ipk);
	snprintf(anywhere, GH_RL_KEY_MAX, "acct:%s", hex);
	return true;
}

static void
account_rules(const struct gh_guard_config *g, struct gh_rl_rule *here,
    struct gh_rl_rule *anywhere)
{
	/* Strikes drain at the allowance per quarter hour. */
	here->limit = g->lockout_failures;
	here->period_ms = 15 * 60 * 1000;
	here->burst = g->lockout_failures;
	*anywhere = *here;
	anywhere->limit *= ACCOUNT_WIDE_FACTOR;
	anywhere->burst *= ACCOUNT_WIDE_FACTOR;
}

bool
guard_account_locked(struct api_ctx *ctx, const char *username,
    int64_t *retry_s_out)
{
	const struct gh_guard_config *g = &ctx->app->cfg.guard;
	char here[GH_RL_KEY_MAX], anywhere[GH_RL_KEY_MAX];
	struct gh_rl_rule rh, ra;
	int64_t now = gh_now_ms(), r1 = 0, r2 = 0;
	bool ok;

	*retry_s_out = 0;
	if (ctx->app->rl == NULL || g->lockout_failures == 0 ||
	    !account_keys(ctx, username, here, anywhere))
		return false;
	account_rules(g, &rh, &ra);
	ok = gh_rl_check(ctx->app->rl, here, &rh, now, &r1);
	if (!gh_rl_check(ctx->app->rl, anywhere, &ra, now, &r2))
		ok = false;
	if (!ok)
		*retry_s_out = ((r1 > r2 ? r1 : r2) + 999) / 1000;
	return !ok;
}

void
guard_account_failed(struct api_ctx *ctx, const char *username)
{
	const struct gh_guard_config *g = &ctx->app->cfg.guard;
	char here[GH_RL_KEY_MAX], anywhere[GH_RL_KEY_MAX];
	struct gh_rl_rule rh, ra;
	int64_t now = gh_now_ms(), max = (int64_t)g->lockout_max_s * 1000;

	if (ctx->app->rl == NULL || g->lockout_failures == 0 ||
	    !account_keys(ctx, username, here, anywhere))
		return;
	account_rules(g, &rh, &ra);
	gh_rl_penalize(ctx->app->rl, here, &rh, now, max);
	gh_rl_penalize(ctx->app->rl, anywhere, &ra, now, max);
}

void
guard_account_succeeded(struct api_ctx *ctx, const char *username)
{
	char here[GH_RL_KEY_MAX], anywhere[GH_RL_KEY_MAX];

	if (ctx->app->rl == NULL || !account_keys(ctx, username, here,
	    anywhere))
		return;
	gh_rl_reset(ctx->app->rl, here);
	gh_rl_reset(ctx->app->rl, anywhere);
}

void
guard_respond_locked(struct gh_http_req *req, int64_t retry_s)
{
	respond_limited(req, "too_many_attempts", "Too many failed sign-ins "
	    "for this account; wait before trying again.", retry_s * 1000);
}
