/*
 * redis.c: the GCRA steps of ratelimit.c run in Redis (hiredis), so that
 * several nodes share one budget per key. Each step is one Lua script call,
 * atomic in Redis; a key holds its TAT and strike count and expires once
 * its TAT has passed.
 *
 * Untrusted input: none from clients (keys are built by the server);
 * Redis replies are checked for shape. Secrets: the optional password of
 * the URL, kept only in the connection settings.
 */
#include "ratelimit/ratelimit_int.h"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define KEY_PREFIX "gh:rl:"
#define RECONNECT_MS 1000

/* ARGV: op, now, t, tol, max_delay, burst. Returns {allowed, retry_ms}. */
static const char script[] =
    "local now=tonumber(ARGV[2]) local t=tonumber(ARGV[3])\n"
    "local tol=tonumber(ARGV[4]) local maxd=tonumber(ARGV[5])\n"
    "local burst=tonumber(ARGV[6])\n"
    "if ARGV[1]=='reset' then redis.call('DEL',KEYS[1]) return {1,0} end\n"
    "local v=redis.call('HMGET',KEYS[1],'tat','strikes')\n"
    "local tat=tonumber(v[1]) or 0 local strikes=tonumber(v[2]) or 0\n"
    "local base=tat if base<now then base=now end\n"
    "local nxt=base+t local ok=(nxt-now<=tol) local retry=0\n"
    "if not ok then retry=nxt-now-tol end\n"
    "local newtat=nil\n"
    "if ARGV[1]=='take' and ok then newtat=nxt end\n"
    "if ARGV[1]=='penalize' then\n"
    "  if tat<=now then strikes=0 end\n"
    "  strikes=strikes+1\n"
    "  local debt=t local i=burst\n"
    "  while i<strikes and debt<=tol+maxd do debt=debt*2 i=i+1 end\n"
    "  newtat=base+debt\n"
    "  if newtat-now>tol-t+maxd then newtat=now+tol-t+maxd end\n"
    "end\n"
    "if newtat then\n"
    "  redis.call('HSET',KEYS[1],'tat',newtat,'strikes',strikes)\n"
    "  redis.call('PEXPIRE',KEYS[1],math.max(1,newtat-now))\n"
    "end\n"
    "if ok then return {1,retry} end return {0,retry}\n";

struct rl_redis {
	pthread_mutex_t mu;
	redisContext *c;
	char host[256];		/* or the socket path */
	bool unix_socket;
	int port;
	int db;
	char password[128];
	unsigned timeout_ms;
	char sha[41];		/* of script, for EVALSHA */
	int64_t retry_at_ms;	/* no reconnect before */
};

/* redis://[:password@]host[:port][/db] or unix:/path/to/socket. */
static gh_err
url_parse(const char *url, struct rl_redis *r)
{
	const char *p, *at, *colon, *slash;
	char port[8] = "6379";
	size_t n;

	if (strncmp(url, "unix:", 5) == 0) {
		r->unix_socket = true;
		return gh_strlcpy(r->host, url + 5, sizeof r->host) &&
		    r->host[0] == '/' ? GH_OK : GH_ERR_INVALID;
	}
	if (strncmp(url, "redis://", 8) != 0)
		return GH_ERR_INVALID;
	p = url + 8;
	at = strchr(p, '@');
	if (at != NULL) {
		if (*p != ':' || (size_t)(at - p - 1) >= sizeof r->password)
			return GH_ERR_INVALID;
		memcpy(r->password, p + 1, (size_t)(at - p - 1));
		r->password[at - p - 1] = '\0';
		p = at + 1;
	}
	slash = strchr(p, '/');
	colon = strchr(p, ':');
	if (colon != NULL && slash != NULL && colon > slash)
		colon = NULL;
	n = (size_t)((colon ? colon : slash ? slash : p + strlen(p)) - p);
	if (n == 0 || n >= sizeof r->host)
		return GH_ERR_INVALID;
	memcpy(r->host, p, n);
	r->host[n] = '\0';
	if (colon != NULL) {
		size_t pn = (size_t)((slash ? slash : colon + strlen(colon)) -
		    colon - 1);

		if (pn == 0 || pn >= sizeof port)
			return GH_ERR_INVALID;
		memcpy(port, colon + 1, pn);
		port[pn] = '\0';
	}
	r->port = atoi(port);
	r->db = slash != NULL && slash[1] != '\0' ? atoi(slash + 1) : 0;
	if (r->port < 1 || r->port > 65535 || r->db < 0 || r->db > 15)
		return GH_ERR_INVALID;
	return GH_OK;
}

/* Sends one command and checks its reply is not an error. */
static bool
cmd_ok(redisContext *c, const char *fmt, const char *arg)
{
	redisReply *rep = redisCommand(c, fmt, arg);
	bool ok = rep != NULL && rep->type != REDIS_REPLY_ERROR;

	if (rep != NULL)
		freeReplyObject(rep);
	return ok;
}

/* Connects when not connected (at most once a second). Lock held. */
static bool
ensure_conn(struct rl_redis *r)
{
	struct timeval tv = { (time_t)(r->timeout_ms / 1000),
		(suseconds_t)(r->timeout_ms % 1000) * 1000 };
	char db[8];

	if (r->c != NULL)
		return true;
	if (gh_now_ms() < r->retry_at_ms)
		return false;
	r->retry_at_ms = gh_now_ms() + RECONNECT_MS;
	r->c = r->unix_socket ? redisConnectUnixWithTimeout(r->host, tv) :
	    redisConnectWithTimeout(r->host, r->port, tv);
	if (r->c == NULL || r->c->err != 0 ||
	    redisSetTimeout(r->c, tv) != REDIS_OK ||
	    (r->password[0] != '\0' && !cmd_ok(r->c, "AUTH %s",
	    r->password))) {
		GH_LOG_WARN(GH_ERR_IO, "redis %s: cannot connect: %s",
		    r->host, r->c != NULL ? r->c->errstr : "out of memory");
		if (r->c != NULL)
			redisFree(r->c);
		r->c = NULL;
		return false;
	}
	snprintf(db, sizeof db, "%d", r->db);
	if (r->db != 0 && !cmd_ok(r->c, "SELECT %s", db)) {
		redisFree(r->c);
		r->c = NULL;
		return false;
	}
	return true;
}

gh_err
rl_redis_open(const char *url, unsigned timeout_ms, struct rl_redis **out)
{
	unsigned char d[SHA_DIGEST_LENGTH];
	struct rl_redis *r;

	*out = NULL;
	r = calloc(1, sizeof *r);
	if (r == NULL)
		return GH_ERR_NOMEM;
	if (url == NULL || url_parse(url, r) != GH_OK) {
		gh_wipe(r, sizeof *r);
		free(r);
		return GH_ERR_INVALID;
	}
	r->timeout_ms = timeout_ms ? timeout_ms : 500;
	SHA1((const unsigned char *)script, strlen(script), d);
	gh_hex_encode(d, sizeof d, r->sha);
	pthread_mutex_init(&r->mu, NULL);
	*out = r;
	return GH_OK;
}

void
rl_redis_close(struct rl_redis *r)
{
	if (r == NULL)
		return;
	if (r->c != NULL)
		redisFree(r->c);
	pthread_mutex_destroy(&r->mu);
	gh_wipe(r, sizeof *r);
	free(r);
}

static redisReply *
run_script(redisContext *c, const char *sha, const char *key,
    const char *const argv[6])
{
	redisReply *rep;

	rep = redisCommand(c, "EVALSHA %s 1 %s %s %s %s %s %s %s", sha, key,
	    argv[0], argv[1], argv[2], argv[3], argv[4], argv[5]);
	if (rep != NULL && rep->type == REDIS_REPLY_ERROR &&
	    strncmp(rep->str, "NOSCRIPT", 8) == 0) {
		freeReplyObject(rep);
		rep = redisCommand(c, "EVAL %s 1 %s %s %s %s %s %s %s", script,
		    key, argv[0], argv[1], argv[2], argv[3], argv[4],
		    argv[5]);
	}
	return rep;
}

bool
rl_redis_step(struct rl_redis *r, const char *key, const char *op,
    int64_t now_ms, int64_t t, int64_t tol, int64_t max_delay_ms,
    uint32_t burst, bool *allowed_out, int64_t *retry_out)
{
	char k[GH_RL_KEY_MAX + sizeof KEY_PREFIX], a[5][24];
	const char *argv[6] = { op, a[0], a[1], a[2], a[3], a[4] };
	redisReply *rep = NULL;
	bool ok = false;

	snprintf(k, sizeof k, KEY_PREFIX "%s", key);
	snprintf(a[0], sizeof a[0], "%lld", (long long)now_ms);
	snprintf(a[1], sizeof a[1], "%lld", (long long)t);
	snprintf(a[2], sizeof a[2], "%lld", (long long)tol);
	snprintf(a[3], sizeof a[3], "%lld", (long long)max_delay_ms);
	snprintf(a[4], sizeof a[4], "%u", burst);
	pthread_mutex_lock(&r->mu);
	if (ensure_conn(r))
		rep = run_script(r->c, r->sha, k, argv);
	if (rep != NULL && rep->type == REDIS_REPLY_ARRAY &&
	    rep->elements == 2 &&
	    rep->element[0]->type == REDIS_REPLY_INTEGER &&
	    rep->element[1]->type == REDIS_REPLY_INTEGER) {
		*allowed_out = rep->element[0]->integer == 1;
		*retry_out = rep->element[1]->integer;
		ok = true;
	} else if (r->c != NULL) {
		GH_LOG_WARN(GH_ERR_IO, "redis %s: rate limit step failed: %s",
		    r->host, rep == NULL ? r->c->errstr :
		    rep->type == REDIS_REPLY_ERROR ? rep->str : "bad reply");
		/* A broken connection is dropped; the next step reconnects. */
		if (rep == NULL || r->c->err != 0) {
			redisFree(r->c);
			r->c = NULL;
		}
	}
	if (rep != NULL)
		freeReplyObject(rep);
	pthread_mutex_unlock(&r->mu);
	return ok;
}
