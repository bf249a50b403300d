/*
 * core.h: the shared primitives every capability uses: error codes, the
 * growable buffer, locked secret memory, logging, randomness, encodings and
 * time. Nothing here touches the network or the database.
 *
 * Untrusted input: the encoders/decoders and the UTF-8 check take bytes from
 * clients and bound every length. Secrets: gh_secret and GH_BUF_SECRET buffers
 * are mlock'd where possible, excluded from core dumps and wiped on release.
 */
#ifndef GH_CORE_H
#define GH_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GH_MUST_CHECK __attribute__((warn_unused_result))
#define GH_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Error codes. GH_OK is 0; failures are negative and few. */
typedef enum {
	GH_OK = 0,
	GH_ERR_NOMEM = -1,	/* allocation failed */
	GH_ERR_INVALID = -2,	/* bad input from the caller or client */
	GH_ERR_NOTFOUND = -3,	/* no such object */
	GH_ERR_DENIED = -4,	/* authentication or authorisation refused */
	GH_ERR_LIMIT = -5,	/* a size or rate bound was hit */
	GH_ERR_CRYPTO = -6,	/* a cryptographic primitive failed */
	GH_ERR_STORE = -7,	/* the database failed */
	GH_ERR_INTERNAL = -8,	/* a bug or an unexpected system failure */
	GH_ERR_CONFLICT = -9,	/* the object exists already (unique key) */
	GH_ERR_BUSY = -10,	/* the database is locked; retry later */
	GH_ERR_FULL = -11,	/* the disk or database is full */
	GH_ERR_IO = -12,	/* a network peer failed or refused for now */
} gh_err;

/* A static string naming the code, for logs. */
const char *gh_err_str(gh_err err);

/* Aborts with a message: only for broken invariants, never for input. */
#define GH_PANIC(...) gh_panic(__func__, __FILE__, __LINE__, __VA_ARGS__)
_Noreturn void gh_panic(const char *fn, const char *file, int line,
    const char *fmt, ...) GH_PRINTF(4, 5);

/* ---- logging --------------------------------------------------------- */

enum gh_log_level { GH_LOG_LEVEL_DEBUG, GH_LOG_LEVEL_INFO, GH_LOG_LEVEL_WARN,
	GH_LOG_LEVEL_ERR };

/* Sets the lowest level written to stderr. Call before threads start. */
void gh_log_set_level(enum gh_log_level level);
/* Parses "debug", "info", "warn" or "error". */
gh_err gh_log_level_parse(const char *s, enum gh_log_level *out) GH_MUST_CHECK;

void gh_log(enum gh_log_level level, const char *fn, gh_err err,
    const char *fmt, ...) GH_PRINTF(4, 5);

/* Log IDs and codes, never secrets, tokens or bodies. */
#define GH_LOG_ERR(err, ...) \
	gh_log(GH_LOG_LEVEL_ERR, __func__, (err), __VA_ARGS__)
#define GH_LOG_WARN(err, ...) \
	gh_log(GH_LOG_LEVEL_WARN, __func__, (err), __VA_ARGS__)
#define GH_LOG_INFO(...) gh_log(GH_LOG_LEVEL_INFO, __func__, GH_OK, __VA_ARGS__)
#define GH_LOG_DEBUG(...) \
	gh_log(GH_LOG_LEVEL_DEBUG, __func__, GH_OK, __VA_ARGS__)

/* ---- growable buffer ---------------------------------------------------- */

#define GH_BUF_SECRET 0x1u	/* locked, undumpable, wiped on reset/free/grow */

/*
 * The only growable buffer. It stays NUL-terminated (the NUL is not counted
 * in len). The first failure (allocation, ceiling) makes it sticky: the
 * buffer empties itself and every later put is a no-op until gh_buf_reset.
 */
struct gh_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t used;		/* bytes ever written since the last wipe (with
				 * the NUL): what a secret reset must wipe */
	size_t max;		/* ceiling on len; required */
	unsigned flags;
	gh_err err;		/* sticky */
};

void gh_buf_init(struct gh_buf *b, size_t max, unsigned flags);
/* Empties the buffer, wipes it if secret, and clears the sticky error. */
void gh_buf_reset(struct gh_buf *b);
/* Releases the memory (wiping secret buffers). The struct may be reused
 * after gh_buf_init. */
void gh_buf_free(struct gh_buf *b);
gh_err gh_buf_err(const struct gh_buf *b);
void gh_buf_put(struct gh_buf *b, const void *p, size_t n);
/* Makes room for n more bytes at once (one allocation instead of several
 * doublings); false once the buffer is in error. */
bool gh_buf_reserve(struct gh_buf *b, size_t n);
/* Appends n bytes the caller must fill in place (they are not cleared);
 * returns where they start (valid until the next put), or NULL once the
 * buffer is in error. */
uint8_t *gh_buf_append(struct gh_buf *b, size_t n);
void gh_buf_put_str(struct gh_buf *b, const char *s);
void gh_buf_put_u8(struct gh_buf *b, uint8_t v);
/* Big-endian fixed width. */
void gh_buf_put_u64(struct gh_buf *b, uint64_t v);
/* A 16-bit length prefix then the bytes: unambiguous concatenation. */
void gh_buf_put_str16(struct gh_buf *b, const char *s);
void gh_buf_printf(struct gh_buf *b, const char *fmt, ...) GH_PRINTF(2, 3);
void gh_buf_vprintf(struct gh_buf *b, const char *fmt, va_list ap);
/* Hands the bytes (NUL-terminated, malloc'd) to the caller and empties the
 * buffer. Returns NULL if the buffer is in error. *len_out may be NULL. */
char *gh_buf_take(struct gh_buf *b, size_t *len_out);
/* The contents as a C string; "" when empty or in error. Borrowed until the
 * next put. */
const char *gh_buf_cstr(const struct gh_buf *b);
/* Puts the buffer in error err (a no-op if it already is): it empties
 * itself and later puts are no-ops until gh_buf_reset. */
void gh_buf_fail(struct gh_buf *b, gh_err err);

/* ---- JSON writer (json.c) --------------------------------------------------- */

/* Appends s as a JSON string (quoted, escaped exactly as jansson's
 * json_dumps escapes it; NULL is ""). Text that is not well-formed UTF-8
 * puts b in error GH_ERR_INVALID instead. */
void gh_json_put_str(struct gh_buf *b, const char *s);
/* Appends ms as a quoted RFC 3339 time (gh_time_rfc3339), or null when
 * ms <= 0. */
void gh_json_put_time(struct gh_buf *b, int64_t ms);

/* ---- secrets ------------------------------------------------------------ */

/* Fixed-size secret bytes in locked, undumpable memory. */
struct gh_secret {
	uint8_t *data;
	size_t len;
};

/* Allocates len zeroed bytes. */
gh_err gh_secret_new(size_t len, struct gh_secret **out) GH_MUST_CHECK;
/* Copies a NUL-terminated string (the NUL is kept, not counted in len). */
gh_err gh_secret_from_str(const char *s, struct gh_secret **out) GH_MUST_CHECK;
/* Wipes and frees. NULL is a no-op. */
void gh_secret_free(struct gh_secret *s);

/* Wipes then frees a malloc'd C string. NULL is a no-op. */
void gh_str_wipe_free(char *s);
/* Wipes n bytes in a way the compiler cannot drop. */
void gh_wipe(void *p, size_t n);
/* Constant-time equality of two equal-length byte strings. */
bool gh_ct_eq(const void *a, const void *b, size_t n);

/* ---- randomness, hashing, encodings ------------------------------------- */

/* Fills out with CSPRNG bytes. */
gh_err gh_rand_bytes(void *out, size_t n) GH_MUST_CHECK;
/* Fills out with CSPRNG bytes from this thread's pool (src/core/rand.c):
 * for values public once used (ids, nonces), never for secrets. Each byte
 * is handed out once, also across fork. */
gh_err gh_rand_public(void *out, size_t n) GH_MUST_CHECK;

#define GH_ID_LEN 32		/* hex chars of a 128-bit identifier */
/* Writes a random 128-bit id as 32 lowercase hex chars plus NUL. Ids are
 * public (drawn with gh_rand_public). */
gh_err gh_id_new(char out[static GH_ID_LEN + 1]) GH_MUST_CHECK;
/* Like gh_id_new, but ordered by time: 48 bits of milliseconds since the
 * epoch, then 80 random bits. For the rows of append-mostly tables (token
 * rows, audit events): an index on such ids grows at its right edge instead
 * of dirtying a random page per insert. Reveals its creation time. */
gh_err gh_id_new_ordered(char out[static GH_ID_LEN + 1]) GH_MUST_CHECK;
/* True if s is exactly GH_ID_LEN lowercase hex chars. */
bool gh_id_valid(const char *s);

#define GH_SHA256_LEN 32
void gh_sha256(const void *p, size_t n, uint8_t out[static GH_SHA256_LEN]);

/* Lowercase hex; out must hold 2*n+1 bytes. */
void gh_hex_encode(const uint8_t *p, size_t n, char *out);
/* base64url without padding. out must hold gh_b64url_len(n)+1 bytes. */
size_t gh_b64url_len(size_t n);
void gh_b64url_encode(const uint8_t *p, size_t n, char *out);
/* Decodes unpadded base64url; fails on any other character or a bad length.
 * Writes at most out_cap bytes. */
gh_err gh_b64url_decode(const char *s, size_t s_len, uint8_t *out,
    size_t out_cap, size_t *out_len) GH_MUST_CHECK;

/* True if the n bytes are well-formed UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF) and contain no NUL. */
bool gh_utf8_valid(const char *s, size_t n);

/* ---- time ----------------------------------------------------------------- */

/* Wall-clock milliseconds since the epoch. */
int64_t gh_now_ms(void);
/* Monotonic nanoseconds, for durations. */
uint64_t gh_mono_ns(void);
/* Formats ms since the epoch as RFC 3339 UTC with milliseconds; out must
 * hold 25 bytes. */
void gh_time_rfc3339(int64_t ms, char out[static 25]);
/* Parses an RFC 3339 UTC time ("...Z"); fails on anything else. */
gh_err gh_time_parse_rfc3339(const char *s, int64_t *ms_out) GH_MUST_CHECK;

/* ---- small string helpers -------------------------------------------------- */

/* Copies with truncation; always NUL-terminates when cap > 0. Returns
 * false if truncated. */
bool gh_strlcpy(char *dst, const char *src, size_t cap);
/* strdup that returns NULL on NULL input. */
char *gh_strdup(const char *s);

#endif
