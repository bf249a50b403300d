/*
 * ratelimit.c: GCRA limits in a sharded open-addressing table.
 */
#include "ratelimit/ratelimit_int.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHARDS 16
#define PROBES 8		/* slots looked at before evicting */

struct slot {
	uint64_t h;		/* 0: empty */
	int64_t tat;		/* theoretical arrival time, ms */
	uint32_t strikes;	/* failures since the TAT last passed */
	char key[GH_RL_KEY_MAX];
};

struct shard {
	pthread_mutex_t mu;
	struct slot *slots;
	size_t cap;		/* power of two */
	size_t used;
};

struct gh_rl {
	struct rl_redis *redis;	/* shared counters; NULL: this node only */
	uint8_t sipkey[16];
	struct shard shards[SHARDS];
};

/* ---- SipHash-2-4 -------------------------------------------------------------- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static uint64_t
load_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void
sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = ROTL(v[1], 13);
	v[1] ^= v[0];
	v[0] = ROTL(v[0], 32);
	v[2] += v[3];
	v[3] = ROTL(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = ROTL(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = ROTL(v[1], 17);
	v[1] ^= v[2];
	v[2] = ROTL(v[2], 32);
}

uint64_t
gh_siphash24(const uint8_t k[static 16], const void *data, size_t n)
{
	const uint8_t *p = data;
	uint64_t k0 = load_le64(k), k1 = load_le64(k + 8);
	uint64_t v[4] = { k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
		k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL };
	uint64_t m, last = (uint64_t)n << 56;
	size_t i, tail = n & 7;

	for (i = 0; i + 8 <= n; i += 8) {
		m = load_le64(p + i);
		v[3] ^= m;
		sip_round(v);
		sip_round(v);
		v[0] ^= m;
	}
	for (size_t j = 0; j < tail; j++)
		last |= (uint64_t)p[i + j] << (8 * j);
	v[3] ^= last;
	sip_round(v);
	sip_round(v);
	v[0] ^= last;
	v[2] ^= 0xff;
	for (int r = 0; r < 4; r++)
		sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* ---- the table ------------------------------------------------------------------ */

gh_err
gh_rl_new(size_t max_keys, struct gh_rl **out)
{
	struct gh_rl *rl;
	size_t cap = 8;
	gh_err err;

	*out = NULL;
	if (max_keys < 64)
		max_keys = 64;
	/* At most half full: probes stay short. */
	while (cap * SHARDS < max_keys * 2)
		cap *= 2;
	rl = calloc(1, sizeof *rl);
	if (rl == NULL)
		return GH_ERR_NOMEM;
	err = gh_rand_bytes(rl->sipkey, sizeof rl->sipkey);
	for (int i = 0; err == GH_OK && i < SHARDS; i++) {
		struct shard *s = &rl->shards[i];

		pthread_mutex_init(&s->mu, NULL);
		s->cap = cap;
		s->slots = calloc(cap, sizeof *s->slots);
		if (s->slots == NULL)
			err = GH_ERR_NOMEM;
	}
	if (err != GH_OK) {
		gh_rl_free(rl);
		return err;
	}
	*out = rl;
	return GH_OK;
}

gh_err
gh_rl_new_redis(size_t max_keys, const char *url, unsigned timeout_ms,
    struct gh_rl **out)
{
	struct rl_redis *r = NULL;
	gh_err err;

	*out = NULL;
	err = rl_redis_open(url, timeout_ms, &r);
	if (err == GH_OK)
		err = gh_rl_new(max_keys, out);
	if (err != GH_OK) {
		rl_redis_close(r);
		return err;
	}
	(*out)->redis = r;
	return GH_OK;
}

void
gh_rl_free(struct gh_rl *rl)
{
	if (rl == NULL)
		return;
	rl_redis_close(rl->redis);
	for (int i = 0; i < SHARDS; i++) {
		if (rl->shards[i].slots == NULL)
			continue;
		free(rl->shards[i].slots);
		pthread_mutex_destroy(&rl->shards[i].mu);
	}
	gh_wipe(rl->sipkey, sizeof rl->sipkey);
	free(rl);
}

/* Re-inserts every live slot (TAT still ahead of now) into a fresh array:
 * the open-addressing table has no tombstones, so dropping keys means
 * rebuilding. Called with the shard's lock held. */
static void
shard_sweep(struct shard *s, int64_t now_ms)
{
	struct slot *fresh = calloc(s->cap, sizeof *fresh);

	if (fresh == NULL)
		return;		/* keep the old table; eviction still works */
	s->used = 0;
	for (size_t i = 0; i < s->cap; i++) {
		struct slot *o = &s->slots[i];
		size_t j;

		if (o->h == 0 || o->tat <= now_ms)
			continue;
		for (j = o->h & (s->cap - 1); fresh[j].h != 0;
		    j = (j + 1) & (s->cap - 1))
			;
		fresh[j] = *o;
		s->used++;
	}
	free(s->slots);
	s->slots = fresh;
}

/* The slot of key: found, or claimed (tat 0), or evicted from the
 * nearest-to-expiry slot among the first PROBES. Lock held. */
static struct slot *
shard_slot(struct shard *s, uint64_t h, const char *key, int64_t now_ms)
{
	struct slot *victim = NULL;
	size_t i = h & (s->cap - 1);

	for (size_t n = 0; n < s->cap; n++, i = (i + 1) & (s->cap - 1)) {
		struct slot *sl = &s->slots[i];

		if (sl->h == 0)
			break;
		if (sl->h == h && strcmp(sl->key, key) == 0)
			return sl;
		if (n < PROBES && (victim == NULL || sl->tat < victim->tat))
			victim = sl;
	}
	if (s->used * 2 >= s->cap) {
		shard_sweep(s, now_ms);
		i = h & (s->cap - 1);
	}
	if (s->used * 2 < s->cap) {
		while (s->slots[i].h != 0)
			i = (i + 1) & (s->cap - 1);
		victim = &s->slots[i];
		s->used++;
	} else if (victim == NULL || victim < s->slots ||
	    victim >= s->slots + s->cap) {
		/* The sweep moved slots: evict at the home position. */
		victim = &s->slots[h & (s->cap - 1)];
	}
	victim->h = h;
	victim->tat = 0;
	victim->strikes = 0;
	gh_strlcpy(victim->key, key, sizeof victim->key);
	return victim;
}

static uint64_t
key_hash(const struct gh_rl *rl, const char *key)
{
	uint64_t h = gh_siphash24(rl->sipkey, key, strlen(key));

	return h != 0 ? h : 1;
}

/* The emission interval and tolerance of a rule, in ms. */
static void
rule_times(const struct gh_rl_rule *rule, int64_t *t_out, int64_t *tol_out)
{
	int64_t t = (int64_t)rule->period_ms / rule->limit;

	*t_out = t < 1 ? 1 : t;
	*tol_out = *t_out * (int64_t)rule->burst;
}

static bool
rule_off(const struct gh_rl_rule *rule)
{
	return rule->limit == 0 || rule->period_ms == 0 || rule->burst == 0;
}

enum op { OP_TAKE, OP_CHECK, OP_PENALIZE };

/* One locked step on key's TAT. */
static bool
rl_step(struct gh_rl *rl, const char *key, const struct gh_rl_rule *rule,
    int64_t now_ms, enum op op, int64_t max_delay_ms, int64_t *retry_out)
{
	char k[GH_RL_KEY_MAX];
	int64_t t, tol, tat, next, debt;
	struct shard *s;
	struct slot *sl;
	uint64_t h;
	bool ok;

	if (retry_out != NULL)
		*retry_out = 0;
	if (rule_off(rule))
		return true;
	rule_times(rule, &t, &tol);
	gh_strlcpy(k, key, sizeof k);
	if (rl->redis != NULL) {
		static const char *const names[] = { "take", "check",
			"penalize" };
		int64_t retry = 0;

		if (rl_redis_step(rl->redis, k, names[op], now_ms, t, tol,
		    max_delay_ms, rule->burst, &ok, &retry)) {
			if (retry_out != NULL && !ok)
				*retry_out = retry;
			return ok;
		}
		/* Redis is down: this node's own table still limits. */
	}
	h = key_hash(rl, k);
	s = &rl->shards[h % SHARDS];
	pthread_mutex_lock(&s->mu);
	sl = shard_slot(s, h, k, now_ms);
	tat = sl->tat > now_ms ? sl->tat : now_ms;
	next = tat + t;
	ok = next - now_ms <= tol;
	if (op == OP_TAKE && ok)
		sl->tat = next;
	if (op == OP_PENALIZE) {
		/* A fully paid-off key starts over. */
		if (sl->tat <= now_ms)
			sl->strikes = 0;
		if (sl->strikes < UINT32_MAX)
			sl->strikes++;
		debt = t;
		for (uint32_t i = rule->burst; i < sl->strikes &&
		    debt <= tol + max_delay_ms; i++)
			debt *= 2;
		next = tat + debt;
		/* The wait (next + t - tol) stays within max_delay_ms. */
		if (next - now_ms > tol - t + max_delay_ms)
			next = now_ms + tol - t + max_delay_ms;
		sl->tat = next;
	}
	if (!ok && retry_out != NULL)
		*retry_out = tat + t - now_ms - tol;
	pthread_mutex_unlock(&s->mu);
	return ok;
}

bool
gh_rl_take(struct gh_rl *rl, const char *key, const struct gh_rl_rule *rule,
    int64_t now_ms, int64_t *retry_after_ms)
{
	return rl_step(rl, key, rule, now_ms, OP_TAKE, 0, retry_after_ms);
}

bool
gh_rl_check(struct gh_rl *rl, const char *key, const struct gh_rl_rule *rule,
    int64_t now_ms, int64_t *retry_after_ms)
{
	return rl_step(rl, key, rule, now_ms, OP_CHECK, 0, retry_after_ms);
}

void
gh_rl_penalize(struct gh_rl *rl, const char *key,
    const struct gh_rl_rule *rule, int64_t now_ms, int64_t max_delay_ms)
{
	(void)rl_step(rl, key, rule, now_ms, OP_PENALIZE, max_delay_ms, NULL);
}

void
gh_rl_reset(struct gh_rl *rl, const char *key)
{
	char k[GH_RL_KEY_MAX];
	uint64_t h;
	struct shard *s;
	size_t i;

	gh_strlcpy(k, key, sizeof k);
	if (rl->redis != NULL) {
		bool ok;
		int64_t retry;

		(void)rl_redis_step(rl->redis, k, "reset", 0, 1, 1, 0, 1, &ok,
		    &retry);
	}
	h = key_hash(rl, k);
	s = &rl->shards[h % SHARDS];
	pthread_mutex_lock(&s->mu);
	for (i = h & (s->cap - 1); s->slots[i].h != 0;
	    i = (i + 1) & (s->cap - 1)) {
		if (s->slots[i].h == h && strcmp(s->slots[i].key, k) == 0) {
			/* A TAT in the past is the same as no entry. */
			s->slots[i].tat = 0;
			s->slots[i].strikes = 0;
			break;
		}
	}
	pthread_mutex_unlock(&s->mu);
}

size_t
gh_rl_size(struct gh_rl *rl)
{
	size_t n = 0;

	for (int i = 0; i < SHARDS; i++) {
		pthread_mutex_lock(&rl->shards[i].mu);
		n += rl->shards[i].used;
		pthread_mutex_unlock(&rl->shards[i].mu);
	}
	return n;
}

gh_err
gh_rl_ip_key(const char *prefix, const char *ip, char *out, size_t cap)
{
	unsigned char a[16];
	char txt[INET6_ADDRSTRLEN];
	int n;

	if (ip == NULL)
		return GH_ERR_INVALID;
	if (inet_pton(AF_INET, ip, a) == 1) {
		n = snprintf(out, cap, "%s%s", prefix, ip);
	} else if (inet_pton(AF_INET6, ip, a) == 1) {
		/* An IPv4-mapped address is its IPv4 address. */
		static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0,
			0, 0, 0, 0xff, 0xff };

		if (memcmp(a, mapped, sizeof mapped) == 0) {
			if (inet_ntop(AF_INET, a + 12, txt, sizeof txt) == NULL)
				return GH_ERR_INVALID;
			n = snprintf(out, cap, "%s%s", prefix, txt);
		} else {
			memset(a + 8, 0, 8);
			if (inet_ntop(AF_INET6, a, txt, sizeof txt) == NULL)
				return GH_ERR_INVALID;
			n = snprintf(out, cap, "%s%s/64", prefix, txt);
		}
	} else {
		return GH_ERR_INVALID;
	}
	return n > 0 && (size_t)n < cap ? GH_OK : GH_ERR_LIMIT;
}
