/*
 * password.c: argon2id password hashes (libargon2) and verification of
 * argon2id PHC strings and imported bcrypt hashes (libxcrypt).
 *
 * Untrusted input: the password (from a client; bounded to GH_PW_MAX_LEN
 * bytes of UTF-8 before any work) and the stored hash (from the database or
 * an import; parsed strictly, and its cost parameters bounded so that an
 * imported hash cannot make one verification run for minutes).
 *
 * Secrets: the password is borrowed and never copied except into libxcrypt's
 * struct crypt_data, which is wiped after use. Every derived tag is wiped.
 * Nothing here logs a password or a hash.
 *
 * Concurrency: at most as many hash lanes run at once as there are online
 * cores (the hash gate below). More would only share the cores and add
 * latency; fewer would idle them. The server's worker pool is larger than
 * that, so that while some sign-ins wait for their database commit (an
 * fsync) others are hashing. The gate also bounds hash memory (m_kib per
 * lane) however many workers there are.
 *
 * Memory: each hash needs m_kib of working memory (19 MiB by default).
 * Through malloc it stayed resident after the hash (glibc raises its mmap
 * threshold after the first such block is freed, and every worker thread's
 * arena then kept one: some 90 MB in an idle server after a few
 * sign-ins). Here it is mapped directly, wiped by libargon2 before it is
 * handed back, kept for the next hash while sign-ins follow each other
 * (faulting in 19 MiB costs a few milliseconds) and unmapped by
 * gh_auth_pw_mem_trim once unused for a second.
 */
#include "auth/auth.h"
#include "auth/auth_int.h"

#include <argon2.h>
#include <crypt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Counts argon2id computations, so that tests can prove that an unknown
 * user costs one hash like a known one, without timing anything. */
static _Atomic unsigned long argon2_runs;

unsigned long
auth_argon2_runs(void)
{
	return argon2_runs;
}

/* ---- the hash gate: a counting semaphore of cores ---------------------- */

static pthread_once_t gate_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static unsigned gate_free, gate_cap;
static _Atomic unsigned lanes_running, lanes_peak;

static void
gate_init(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	gate_cap = n < 1 ? 1 : n > 1024 ? 1024 : (unsigned)n;
	gate_free = gate_cap;
}

/* Waits for lanes (a hash's parallelism, at most every core); returns how
 * many were taken, for gate_leave. */
static unsigned
gate_enter(uint32_t lanes)
{
	unsigned n, running, peak;

	pthread_once(&gate_once, gate_init);
	n = lanes < 1 ? 1 : lanes > gate_cap ? gate_cap : (unsigned)lanes;
	pthread_mutex_lock(&gate_mu);
	while (gate_free < n)
		pthread_cond_wait(&gate_cv, &gate_mu);
	gate_free -= n;
	pthread_mutex_unlock(&gate_mu);
	running = atomic_fetch_add(&lanes_running, n) + n;
	peak = atomic_load(&lanes_peak);
	while (running > peak &&
	    !atomic_compare_exchange_weak(&lanes_peak, &peak, running))
		;
	return n;
}

static void
gate_leave(unsigned n)
{
	atomic_fetch_sub(&lanes_running, n);
	pthread_mutex_lock(&gate_mu);
	gate_free += n;
	pthread_mutex_unlock(&gate_mu);
	pthread_cond_broadcast(&gate_cv);
}

/* ---- hash memory: mapped, reused while busy, unmapped when idle ---------- */

#define MEM_CACHE_MAX 16	/* idle blocks kept; beyond, unmapped at once */

struct mem_block {
	uint8_t *p;
	size_t n;
	uint64_t idle_since_ns;
};

/* Under gate_mu. */
static struct mem_block mem_cache[MEM_CACHE_MAX];
static unsigned mem_cached;

static int
mem_alloc(uint8_t **memory, size_t bytes)
{
	void *p = NULL;

	pthread_mutex_lock(&gate_mu);
	for (unsigned i = 0; i < mem_cached; i++) {
		if (mem_cache[i].n != bytes)
			continue;
		p = mem_cache[i].p;
		mem_cache[i] = mem_cache[--mem_cached];
		break;
	}
	pthread_mutex_unlock(&gate_mu);
	if (p == NULL) {
		p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return ARGON2_MEMORY_ALLOCATION_ERROR;
	}
	*memory = p;
	return ARGON2_OK;
}

/* libargon2 has wiped the block (FLAG_clear_internal_memory) before this. */
static void
mem_free(uint8_t *memory, size_t bytes)
{
	bool kept = false;

	pthread_mutex_lock(&gate_mu);
	if (mem_cached < MEM_CACHE_MAX) {
		mem_cache[mem_cached++] = (struct mem_block){ memory, bytes,
			gh_mono_ns() };
		kept = true;
	}
	pthread_mutex_unlock(&gate_mu);
	if (!kept)
		munmap(memory, bytes);
}

void
gh_auth_pw_mem_trim(uint64_t idle_ms)
{
	struct mem_block drop[MEM_CACHE_MAX];
	uint64_t now = gh_mono_ns();
	unsigned n = 0, i = 0;

	pthread_mutex_lock(&gate_mu);
	while (i < mem_cached) {
		if (now - mem_cache[i].idle_since_ns >= idle_ms * 1000000u) {
			drop[n++] = mem_cache[i];
			mem_cache[i] = mem_cache[--mem_cached];
		} else {
			i++;
		}
	}
	pthread_mutex_unlock(&gate_mu);
	for (i = 0; i < n; i++)
		munmap(drop[i].p, drop[i].n);
}

/* One argon2id computation of a raw tag, in the gate, on mapped memory. */
static int
argon2id_run(uint32_t t_cost, uint32_t m_kib, uint32_t parallelism,
    const char *password, size_t pw_len, const uint8_t *salt,
    size_t salt_len, uint8_t *tag, size_t tag_len)
{
	argon2_context c = {
		.out = tag, .outlen = (uint32_t)tag_len,
		.pwd = (uint8_t *)(uintptr_t)password,
		.pwdlen = (uint32_t)pw_len,
		.salt = (uint8_t *)(uintptr_t)salt,
		.saltlen = (uint32_t)salt_len,
		.t_cost = t_cost, .m_cost = m_kib,
		.lanes = parallelism, .threads = parallelism,
		.allocate_cbk = mem_alloc, .free_cbk = mem_free,
		.flags = ARGON2_DEFAULT_FLAGS,
		.version = ARGON2_VERSION_13,
	};
	unsigned lanes;
	int rc;

	argon2_runs++;
	lanes = gate_enter(parallelism);
	rc = argon2_ctx(&c, Argon2_id);
	gate_leave(lanes);
	return rc;
}

unsigned
auth_hash_peak(void)
{
	return atomic_load(&lanes_peak);
}

unsigned
auth_hash_cap(void)
{
	pthread_once(&gate_once, gate_init);
	return gate_cap;
}

#define PW_SALT_LEN 16
#define PW_TAG_LEN 32
#define PW_SALT_MAX 64		/* bytes accepted in a stored argon2id salt */
#define PW_TAG_MIN 16		/* bytes accepted in a stored argon2id tag */
#define PW_TAG_MAX 64

/* Ceilings, for configured parameters and for stored hashes alike. */
#define PW_T_MAX 10
#define PW_M_MAX (1024u * 1024u)	/* KiB: 1 GiB */
#define PW_P_MAX 16
/* OWASP's minimum for argon2id. */
#define PW_T_MIN 2
#define PW_M_MIN 19456u
#define PW_P_MIN 1

/* bcrypt: "$2b$" cost "$" 22 chars of salt, 31 of hash. */
#define BCRYPT_LEN 60
/* Costs above this take seconds per attempt; such a hash is refused rather
 * than let one sign-in attempt occupy a core. */
#define BCRYPT_COST_MAX 16

/* A parsed "$argon2id$v=19$m=..,t=..,p=..$salt$tag". */
struct argon2_phc {
	uint32_t m_kib;
	uint32_t t_cost;
	uint32_t parallelism;
	uint8_t salt[PW_SALT_MAX];
	size_t salt_len;
	uint8_t tag[PW_TAG_MAX];
	size_t tag_len;
};

void
gh_auth_pw_params_default(struct gh_pw_params *p)
{
	p->t_cost = PW_T_MIN;
	p->m_kib = PW_M_MIN;
	p->parallelism = PW_P_MIN;
}

gh_err
gh_auth_pw_params_check(const struct gh_pw_params *p)
{
	if (p == NULL)
		return GH_ERR_INVALID;
	if (p->t_cost < PW_T_MIN || p->t_cost > PW_T_MAX)
		return GH_ERR_INVALID;
	if (p->m_kib < PW_M_MIN || p->m_kib > PW_M_MAX)
		return GH_ERR_INVALID;
	if (p->parallelism < PW_P_MIN || p->parallelism > PW_P_MAX)
		return GH_ERR_INVALID;
	return GH_OK;
}

/* The password rules every hash and verification applies first: at most
 * GH_PW_MAX_LEN bytes, well-formed UTF-8 and no NUL. */
static gh_err
password_ok(const char *password, size_t *len_out)
{
	size_t len;

	if (password == NULL)
		return GH_ERR_INVALID;
	len = strnlen(password, GH_PW_MAX_LEN + 1);
	if (len > GH_PW_MAX_LEN || !gh_utf8_valid(password, len))
		return GH_ERR_INVALID;
	*len_out = len;
	return GH_OK;
}

/* Standard base64 without padding, as PHC strings use; out holds
 * 4 * ceil(n / 3) + 1 bytes. */
static void
b64_encode_nopad(const uint8_t *in, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789+/";
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		    in[i + 2];

		out[o++] = a[v >> 18];
		out[o++] = a[(v >> 12) & 63];
		out[o++] = a[(v >> 6) & 63];
		out[o++] = a[v & 63];
	}
	if (n - i == 1) {
		out[o++] = a[in[i] >> 2];
		out[o++] = a[(in[i] & 3) << 4];
	} else if (n - i == 2) {
		out[o++] = a[in[i] >> 2];
		out[o++] = a[(in[i] & 3) << 4 | in[i + 1] >> 4];
		out[o++] = a[(in[i + 1] & 15) << 2];
	}
	out[o] = '\0';
}

gh_err
gh_auth_pw_hash(const struct gh_pw_params *p, const char *password,
    char **hash_out)
{
	uint8_t salt[PW_SALT_LEN], tag[PW_TAG_LEN];
	char salt64[4 * ((PW_SALT_LEN + 2) / 3) + 1];
	char tag64[4 * ((PW_TAG_LEN + 2) / 3) + 1];
	char *enc = NULL;
	size_t pw_len, enc_len;
	gh_err err;
	int rc;

	*hash_out = NULL;
	err = gh_auth_pw_params_check(p);
	if (err != GH_OK) {
		GH_LOG_ERR(err, "argon2id parameters out of bounds");
		goto out;
	}
	err = password_ok(password, &pw_len);
	if (err != GH_OK)
		goto out;
	err = gh_rand_bytes(salt, sizeof salt);
	if (err != GH_OK)
		goto out;
	enc_len = argon2_encodedlen(p->t_cost, p->m_kib, p->parallelism,
	    PW_SALT_LEN, PW_TAG_LEN, Argon2_id);
	enc = malloc(enc_len);
	if (enc == NULL) {
		err = GH_ERR_NOMEM;
		goto out;
	}
	/* libargon2 wipes its working memory itself; the tag is wiped
	 * below. */
	rc = argon2id_run(p->t_cost, p->m_kib, p->parallelism, password,
	    pw_len, salt, sizeof salt, tag, sizeof tag);
	if (rc == ARGON2_MEMORY_ALLOCATION_ERROR) {
		err = GH_ERR_NOMEM;
		GH_LOG_ERR(err, "argon2id: %s", argon2_error_message(rc));
		goto out;
	}
	if (rc != ARGON2_OK) {
		err = GH_ERR_CRYPTO;
		GH_LOG_ERR(err, "argon2id: %s", argon2_error_message(rc));
		goto out;
	}
	b64_encode_nopad(salt, sizeof salt, salt64);
	b64_encode_nopad(tag, sizeof tag, tag64);
	if ((size_t)snprintf(enc, enc_len, "$argon2id$v=19$m=%u,t=%u,p=%u$%s$%s",
	    (unsigned)p->m_kib, (unsigned)p->t_cost, (unsigned)p->parallelism,
	    salt64, tag64) >= enc_len) {
		err = GH_ERR_INTERNAL;
		GH_LOG_ERR(err, "argon2id: encoded hash too long");
		goto out;
	}
	*hash_out = enc;
	enc = NULL;
out:
	gh_wipe(salt, sizeof salt);
	gh_wipe(tag, sizeof tag);
	gh_wipe(tag64, sizeof tag64);
	free(enc);
	return err;
}

/* Parses a decimal uint32 at *sp, advancing it. No sign, no leading zero. */
static bool
parse_u32(const char **sp, uint32_t *out)
{
	const char *s = *sp;
	uint64_t v = 0;
	int n = 0;

	if (s[0] == '0' && s[1] >= '0' && s[1] <= '9')
		return false;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > UINT32_MAX || ++n > 10)
			return false;
		s++;
	}
	if (n == 0)
		return false;
	*sp = s;
	*out = (uint32_t)v;
	return true;
}

static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Decodes standard base64 without padding (the PHC form) from s[0..n) into
 * out, at most cap bytes. Refuses stray characters and non-zero spare bits.
 */
static bool
b64_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *len_out)
{
	uint32_t acc = 0;
	size_t i, o = 0;
	int bits = 0;

	if (n % 4 == 1)
		return false;
	for (i = 0; i < n; i++) {
		int v = b64_value(s[i]);

		if (v < 0)
			return false;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == cap)
				return false;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0)
		return false;
	*len_out = o;
	return true;
}

/* Parses an argon2id PHC string of version 19. */
static bool
argon2_phc_parse(const char *hash, struct argon2_phc *phc)
{
	static const char prefix[] = "$argon2id$v=19$m=";
	const char *s = hash, *salt, *dollar;

	if (strncmp(s, prefix, sizeof prefix - 1) != 0)
		return false;
	s += sizeof prefix - 1;
	if (!parse_u32(&s, &phc->m_kib) || strncmp(s, ",t=", 3) != 0)
		return false;
	s += 3;
	if (!parse_u32(&s, &phc->t_cost) || strncmp(s, ",p=", 3) != 0)
		return false;
	s += 3;
	if (!parse_u32(&s, &phc->parallelism) || *s != '$')
		return false;
	salt = s + 1;
	dollar = strchr(salt, '$');
	if (dollar == NULL)
		return false;
	if (!b64_decode(salt, (size_t)(dollar - salt), phc->salt,
	    sizeof phc->salt, &phc->salt_len))
		return false;
	s = dollar + 1;
	if (!b64_decode(s, strlen(s), phc->tag, sizeof phc->tag,
	    &phc->tag_len))
		return false;
	if (phc->salt_len < ARGON2_MIN_SALT_LENGTH || phc->tag_len < PW_TAG_MIN)
		return false;
	/* What libargon2 requires, and our ceilings against slow imports. */
	if (phc->t_cost < 1 || phc->t_cost > PW_T_MAX)
		return false;
	if (phc->parallelism < 1 || phc->parallelism > PW_P_MAX)
		return false;
	if (phc->m_kib < 8 * phc->parallelism || phc->m_kib > PW_M_MAX)
		return false;
	return true;
}

/* True for "$2a$", "$2b$" or "$2y$", a cost of 04..BCRYPT_COST_MAX and 53
 * characters of bcrypt's base64. */
static bool
bcrypt_shape_ok(const char *hash)
{
	static const char alphabet[] = "./ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789";
	int cost;
	size_t i;

	if (strnlen(hash, BCRYPT_LEN + 1) != BCRYPT_LEN)
		return false;
	if (hash[0] != '$' || hash[1] != '2' ||
	    (hash[2] != 'a' && hash[2] != 'b' && hash[2] != 'y') ||
	    hash[3] != '$' || hash[6] != '$')
		return false;
	if (hash[4] < '0' || hash[4] > '9' || hash[5] < '0' || hash[5] > '9')
		return false;
	cost = (hash[4] - '0') * 10 + (hash[5] - '0');
	if (cost < 4 || cost > BCRYPT_COST_MAX)
		return false;
	for (i = 7; i < BCRYPT_LEN; i++)
		if (strchr(alphabet, hash[i]) == NULL)
			return false;
	return true;
}

bool
gh_auth_pw_hash_supported(const char *hash)
{
	struct argon2_phc phc;
	bool ok;

	if (hash == NULL)
		return false;
	if (bcrypt_shape_ok(hash))
		return true;
	ok = argon2_phc_parse(hash, &phc);
	gh_wipe(&phc, sizeof phc);
	return ok;
}

static gh_err
argon2_verify_phc(const struct argon2_phc *phc, const char *password,
    size_t pw_len)
{
	uint8_t tag[PW_TAG_MAX];
	gh_err err;
	int rc;

	rc = argon2id_run(phc->t_cost, phc->m_kib, phc->parallelism,
	    password, pw_len, phc->salt, phc->salt_len, tag, phc->tag_len);
	if (rc == ARGON2_MEMORY_ALLOCATION_ERROR) {
		err = GH_ERR_NOMEM;
		GH_LOG_ERR(err, "argon2id: %s", argon2_error_message(rc));
	} else if (rc != ARGON2_OK) {
		err = GH_ERR_CRYPTO;
		GH_LOG_ERR(err, "argon2id: %s", argon2_error_message(rc));
	} else if (gh_ct_eq(tag, phc->tag, phc->tag_len)) {
		err = GH_OK;
	} else {
		err = GH_ERR_DENIED;
	}
	gh_wipe(tag, sizeof tag);
	return err;
}

static gh_err
bcrypt_verify(const char *hash, const char *password)
{
	struct crypt_data *cd;
	const char *res;
	unsigned lanes;
	gh_err err;

	/* struct crypt_data is large (32 KiB) and will hold the password:
	 * keep it off the stack, and wipe it before it is freed. */
	cd = calloc(1, sizeof *cd);
	if (cd == NULL)
		return GH_ERR_NOMEM;
	lanes = gate_enter(1);
	res = crypt_rn(password, hash, cd, (int)sizeof *cd);
	gate_leave(lanes);
	if (res == NULL || res[0] == '*') {
		/* The shape was checked, so libxcrypt refused the setting
		 * itself (a salt it does not accept): not a hash we support. */
		err = GH_ERR_INVALID;
		GH_LOG_WARN(err, "bcrypt: crypt_rn refused the stored hash");
	} else if (strnlen(res, BCRYPT_LEN + 1) == BCRYPT_LEN &&
	    gh_ct_eq(res, hash, BCRYPT_LEN)) {
		err = GH_OK;
	} else {
		err = GH_ERR_DENIED;
	}
	gh_wipe(cd, sizeof *cd);
	free(cd);
	return err;
}

gh_err
gh_auth_pw_verify(const struct gh_pw_params *p, const char *hash,
    const char *password, bool *needs_rehash)
{
	struct argon2_phc phc;
	size_t pw_len;
	gh_err err;

	*needs_rehash = false;
	if (p == NULL || hash == NULL)
		return GH_ERR_INVALID;
	err = password_ok(password, &pw_len);
	if (err != GH_OK)
		return err;
	if (bcrypt_shape_ok(hash)) {
		err = bcrypt_verify(hash, password);
		/* bcrypt is only for imports: always upgrade to argon2id. */
		if (err == GH_OK)
			*needs_rehash = true;
		return err;
	}
	if (!argon2_phc_parse(hash, &phc)) {
		gh_wipe(&phc, sizeof phc);
		return GH_ERR_INVALID;
	}
	err = argon2_verify_phc(&phc, password, pw_len);
	if (err == GH_OK)
		*needs_rehash = phc.m_kib < p->m_kib ||
		    phc.t_cost < p->t_cost ||
		    phc.parallelism < p->parallelism;
	gh_wipe(&phc, sizeof phc);
	return err;
}

/*
 * The dummy hash for unknown users: made once, with the parameters of the
 * first call, of a random password nobody knows. pthread_once takes no
 * argument, so the parameters reach the initialiser through a thread-local
 * pointer set by the thread that runs it.
 */
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static _Thread_local const struct gh_pw_params *dummy_params_arg;
static struct gh_pw_params dummy_params;	/* written once, under once */
static char *dummy_hash;			/* written once, under once */

static void
dummy_init(void)
{
	uint8_t raw[32];
	char secret[44];

	if (gh_rand_bytes(raw, sizeof raw) != GH_OK)
		goto out;
	gh_b64url_encode(raw, sizeof raw, secret);
	if (gh_auth_pw_hash(dummy_params_arg, secret, &dummy_hash) != GH_OK)
		goto out;
	dummy_params = *dummy_params_arg;
out:
	gh_wipe(raw, sizeof raw);
	gh_wipe(secret, sizeof secret);
}

void
gh_auth_pw_verify_dummy(const struct gh_pw_params *p, const char *password)
{
	struct argon2_phc phc;
	size_t pw_len;
	bool rehash;

	/* Same refusals, in the same order, as gh_auth_pw_verify. */
	if (p == NULL || password_ok(password, &pw_len) != GH_OK)
		return;
	if (gh_auth_pw_params_check(p) != GH_OK)
		return;
	dummy_params_arg = p;
	pthread_once(&dummy_once, dummy_init);
	dummy_params_arg = NULL;
	if (dummy_hash != NULL && dummy_params.t_cost == p->t_cost &&
	    dummy_params.m_kib == p->m_kib &&
	    dummy_params.parallelism == p->parallelism) {
		/* The result is meaningless: nobody knows the password. */
		if (gh_auth_pw_verify(p, dummy_hash, password, &rehash) ==
		    GH_OK)
			GH_LOG_WARN(GH_ERR_INTERNAL, "dummy hash matched");
		return;
	}
	/* The parameters changed since the dummy was made (or making it
	 * failed): one argon2id computation with p costs the same as a
	 * verification against a hash made with p. */
	memset(&phc, 0, sizeof phc);
	phc.t_cost = p->t_cost;
	phc.m_kib = p->m_kib;
	phc.parallelism = p->parallelism;
	phc.salt_len = PW_SALT_LEN;
	phc.tag_len = PW_TAG_LEN;
	(void)argon2_verify_phc(&phc, password, pw_len);
	gh_wipe(&phc, sizeof phc);
}
