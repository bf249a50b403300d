/*
 * ratelimit.h: request rate limits by key (an IP, an org, an account),
 * with the generic cell rate algorithm (GCRA): one timestamp per key, the
 * theoretical arrival time (TAT) of the next request, so a limit costs 8
 * bytes of state plus its key and never needs a timer.
 *
 * A rule allows `limit` requests per `period_ms` on average, and up to
 * `burst` at once. Keys live in a fixed-size table of one node's memory
 * (sharded, each shard under its own lock); a key whose TAT has passed
 * holds no information and is dropped first when the table is full, then
 * the key closest to passing. Keys are hashed with SipHash-2-4 under a
 * random key, so a client cannot aim collisions at one bucket.
 */
#ifndef GH_RATELIMIT_H
#define GH_RATELIMIT_H

#include "core/core.h"

#define GH_RL_KEY_MAX 96	/* bytes of a key, NUL included */

struct gh_rl_rule {
	uint32_t limit;		/* requests per period, >= 1 */
	uint32_t period_ms;	/* >= 1 */
	uint32_t burst;		/* requests allowed at once, >= 1 */
};

struct gh_rl;

/* A table for about max_keys keys (at least 64). */
gh_err gh_rl_new(size_t max_keys, struct gh_rl **out) GH_MUST_CHECK;
/* The same, with the counters kept in Redis at url
 * (redis://[:password@]host[:port][/db] or unix:/path/to/socket) so that
 * every node sharing it shares each key's budget; each step is one atomic
 * script call waiting at most timeout_ms. While Redis cannot answer, the
 * node's own table limits alone (logged). The process must ignore
 * SIGPIPE (the server does). GH_ERR_INVALID for a bad url;
 * Redis itself is first reached at the first step. */
gh_err gh_rl_new_redis(size_t max_keys, const char *url, unsigned timeout_ms,
    struct gh_rl **out) GH_MUST_CHECK;
void gh_rl_free(struct gh_rl *rl);

/*
 * Counts one request for key under rule at now_ms. True when it is
 * allowed; false when it is over the limit, with *retry_after_ms (if not
 * NULL) set to the wait until one would be. A refused request costs
 * nothing: it does not push the next allowed time further. Keys longer
 * than GH_RL_KEY_MAX - 1 bytes are cut.
 */
bool gh_rl_take(struct gh_rl *rl, const char *key,
    const struct gh_rl_rule *rule, int64_t now_ms, int64_t *retry_after_ms);

/* Like gh_rl_take but changes nothing: whether a take would be allowed
 * now. Used to refuse before doing work whose failure is what counts. */
bool gh_rl_check(struct gh_rl *rl, const char *key,
    const struct gh_rl_rule *rule, int64_t now_ms, int64_t *retry_after_ms);

/*
 * Counts a failure against key: the first `burst` failures each add one
 * interval (period_ms / limit) of delay; each later one adds twice what
 * the one before added (progressive), until the delay would pass
 * max_delay_ms beyond the burst. The count starts over once the key's
 * delay has fully passed.
 */
void gh_rl_penalize(struct gh_rl *rl, const char *key,
    const struct gh_rl_rule *rule, int64_t now_ms, int64_t max_delay_ms);

/* Forgets key (e.g. after a successful sign-in). */
void gh_rl_reset(struct gh_rl *rl, const char *key);

/* How many keys the table holds now (for metrics and tests). */
size_t gh_rl_size(struct gh_rl *rl);

/*
 * Writes the limit key of a client address: an IPv4 address as is, an
 * IPv6 address as its /64 prefix (one host usually owns a whole /64, so
 * per-address limits would be trivially dodged), prefixed with prefix
 * ("signin-ip:"). GH_ERR_INVALID when ip is not an address.
 */
gh_err gh_rl_ip_key(const char *prefix, const char *ip, char *out,
    size_t cap) GH_MUST_CHECK;

/* SipHash-2-4 of p under the 16-byte key k (exposed for its test
 * vectors). */
uint64_t gh_siphash24(const uint8_t k[static 16], const void *p, size_t n);

#endif
