/* ratelimit_int.h: shared by the files of src/ratelimit only. */
#ifndef GH_RATELIMIT_INT_H
#define GH_RATELIMIT_INT_H

#include <pthread.h>

#include "ratelimit/ratelimit.h"

struct rl_redis;

/* Parses url (redis://[:password@]host[:port][/db] or unix:/path) and
 * prepares a connection made at first use. GH_ERR_INVALID for a bad
 * URL. */
gh_err rl_redis_open(const char *url, unsigned timeout_ms,
    struct rl_redis **out) GH_MUST_CHECK;
void rl_redis_close(struct rl_redis *r);

/* One GCRA step ("take", "check", "penalize" or "reset") on key in Redis,
 * with the rule's interval t and tolerance tol (ms). False when Redis
 * could not answer (the caller falls back to the node's own table). */
bool rl_redis_step(struct rl_redis *r, const char *key, const char *op,
    int64_t now_ms, int64_t t, int64_t tol, int64_t max_delay_ms,
    uint32_t burst, bool *allowed_out, int64_t *retry_out);

#endif
