/*
 * util.c: randomness, identifiers, SHA-256, hex and base64url, UTF-8
 * validation, time formatting and small string helpers.
 * The decoders and the UTF-8 check read client bytes; every length is bound
 * by the caller's capacity.
 */
#include "core.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

gh_err
gh_rand_bytes(void *out, size_t n)
{
	if (n > INT32_MAX || RAND_bytes(out, (int)n) != 1) {
		GH_LOG_ERR(GH_ERR_CRYPTO, "RAND_bytes failed");
		return GH_ERR_CRYPTO;
	}
	return GH_OK;
}

gh_err
gh_id_new(char out[static GH_ID_LEN + 1])
{
	uint8_t raw[GH_ID_LEN / 2];
	gh_err err;

	err = gh_rand_public(raw, sizeof raw);
	if (err != GH_OK)
		return err;
	gh_hex_encode(raw, sizeof raw, out);
	return GH_OK;
}

gh_err
gh_id_new_ordered(char out[static GH_ID_LEN + 1])
{
	uint8_t raw[GH_ID_LEN / 2];
	uint64_t ms = (uint64_t)gh_now_ms();
	gh_err err;
	int i;

	for (i = 0; i < 6; i++)
		raw[i] = (uint8_t)(ms >> (40 - 8 * i));
	err = gh_rand_public(raw + 6, sizeof raw - 6);
	if (err != GH_OK)
		return err;
	gh_hex_encode(raw, sizeof raw, out);
	return GH_OK;
}

bool
gh_id_valid(const char *s)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= GH_ID_LEN)
			return false;
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return i == GH_ID_LEN;
}

/* SHA-256 fetched from the default provider once: an implicit fetch on
 * every digest was most of the cost of hashing a session token. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void
gh_sha256(const void *p, size_t n, uint8_t out[static GH_SHA256_LEN])
{
	unsigned int len = GH_SHA256_LEN;

	pthread_once(&sha256_once, sha256_fetch);
	if (EVP_Digest(p, n, out, &len, sha256_md != NULL ? sha256_md :
	    EVP_sha256(), NULL) != 1)
		GH_PANIC("SHA-256 failed");
}

void
gh_hex_encode(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t
gh_b64url_len(size_t n)
{
	return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

void
gh_b64url_encode(const uint8_t *p, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 |
		    p[i + 2];
		out[o++] = b64url[v >> 18];
		out[o++] = b64url[(v >> 12) & 63];
		out[o++] = b64url[(v >> 6) & 63];
		out[o++] = b64url[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		out[o++] = b64url[v >> 18];
		out[o++] = b64url[(v >> 12) & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		out[o++] = b64url[v >> 18];
		out[o++] = b64url[(v >> 12) & 63];
		out[o++] = b64url[(v >> 6) & 63];
	}
	out[o] = '\0';
}

static int
b64url_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

gh_err
gh_b64url_decode(const char *s, size_t s_len, uint8_t *out, size_t out_cap,
    size_t *out_len)
{
	uint32_t acc = 0;
	size_t o = 0;
	int bits = 0;

	*out_len = 0;
	if (s_len % 4 == 1)
		return GH_ERR_INVALID;
	for (size_t i = 0; i < s_len; i++) {
		int v = b64url_val(s[i]);

		if (v < 0)
			return GH_ERR_INVALID;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= out_cap)
				return GH_ERR_LIMIT;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* Leftover bits must be zero: one encoding per value. */
	if (acc != 0)
		return GH_ERR_INVALID;
	*out_len = o;
	return GH_OK;
}

bool
gh_utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		uint32_t cp;
		size_t len;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

int64_t
gh_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t
gh_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Writes v as n decimal digits (v < 10^n). */
static void
put_digits(char *out, unsigned v, int n)
{
	while (n-- > 0) {
		out[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

/*
 * The proleptic Gregorian date of days since 1970-01-01 (days >= 0), by
 * 400-year eras of 146097 days (the civil_from_days method): no gmtime_r
 * and no strftime, which showed in the profile of every response with
 * times in it.
 */
static void
civil_from_days(int64_t days, int64_t *y_out, unsigned *m_out,
    unsigned *d_out)
{
	int64_t z = days + 719468, era = z / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;

	*d_out = doy - (153 * mp + 2) / 5 + 1;
	*m_out = mp < 10 ? mp + 3 : mp - 9;
	*y_out = (int64_t)yoe + era * 400 + (*m_out <= 2);
}

void
gh_time_rfc3339(int64_t ms, char out[static 25])
{
	int64_t secs, y;
	unsigned m, d, sod;

	if (ms < 0) {
		strcpy(out, "1970-01-01T00:00:00.000Z");
		return;
	}
	secs = ms / 1000;
	sod = (unsigned)(secs % 86400);
	civil_from_days(secs / 86400, &y, &m, &d);
	/* The year is clamped to 4 digits, the rest kept, as before. */
	put_digits(out, y > 9999 ? 9999 : (unsigned)y, 4);
	out[4] = '-';
	put_digits(out + 5, m, 2);
	out[7] = '-';
	put_digits(out + 8, d, 2);
	out[10] = 'T';
	put_digits(out + 11, sod / 3600, 2);
	out[13] = ':';
	put_digits(out + 14, sod / 60 % 60, 2);
	out[16] = ':';
	put_digits(out + 17, sod % 60, 2);
	out[19] = '.';
	put_digits(out + 20, (unsigned)(ms % 1000), 3);
	out[23] = 'Z';
	out[24] = '\0';
}

gh_err
gh_time_parse_rfc3339(const char *s, int64_t *ms_out)
{
	struct tm tm;
	const char *p;
	int frac = 0;

	memset(&tm, 0, sizeof tm);
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (p == NULL)
		return GH_ERR_INVALID;
	if (*p == '.') {
		int digits = 0;

		p++;
		while (*p >= '0' && *p <= '9') {
			if (digits < 3) {
				frac = frac * 10 + (*p - '0');
				digits++;
			}
			p++;
		}
		if (digits == 0)
			return GH_ERR_INVALID;
		while (digits++ < 3)
			frac *= 10;
	}
	if (strcmp(p, "Z") != 0)
		return GH_ERR_INVALID;
	*ms_out = (int64_t)timegm(&tm) * 1000 + frac;
	return GH_OK;
}

bool
gh_strlcpy(char *dst, const char *src, size_t cap)
{
	size_t n = strlen(src);

	if (cap == 0)
		return n == 0;
	if (n >= cap) {
		memcpy(dst, src, cap - 1);
		dst[cap - 1] = '\0';
		return false;
	}
	memcpy(dst, src, n + 1);
	return true;
}

char *
gh_strdup(const char *s)
{
	return s == NULL ? NULL : strdup(s);
}
