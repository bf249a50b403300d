/*
 * parse.c: pure parsers for untrusted request bytes: request paths,
 * x-www-form-urlencoded bodies, Cookie headers, IP addresses and CIDR
 * blocks, X-Forwarded-For chains, media types and JSON bodies.
 *
 * Untrusted input: all of it. Every function bounds its input and fails
 * closed. Secrets: cookie values may be session tokens; they are wiped on
 * free and never logged.
 */
#include "http/http_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* ---- name/value lists ---------------------------------------------------- */

const char *
gh_http_kvs_get(const struct gh_http_kvs *kvs, const char *name)
{
	if (kvs == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < kvs->len; i++) {
		if (strcmp(kvs->v[i].name, name) == 0)
			return kvs->v[i].value;
	}
	return NULL;
}

void
gh_http_kvs_free(struct gh_http_kvs *kvs)
{
	if (kvs == NULL)
		return;
	for (size_t i = 0; i < kvs->len; i++) {
		free(kvs->v[i].name);
		gh_str_wipe_free(kvs->v[i].value);
	}
	free(kvs->v);
	kvs->v = NULL;
	kvs->len = 0;
}

/* Takes name and value (malloc'd) into kvs unless the name is already
 * there (first wins); frees them in that case. cap bounds the list. */
static gh_err
kvs_add(struct gh_http_kvs *kvs, size_t cap, char *name, char *value)
{
	struct gh_http_kv *v;

	if (gh_http_kvs_get(kvs, name) != NULL) {
		free(name);
		gh_str_wipe_free(value);
		return GH_OK;
	}
	if (kvs->len >= cap) {
		free(name);
		gh_str_wipe_free(value);
		return GH_ERR_LIMIT;
	}
	v = realloc(kvs->v, (kvs->len + 1) * sizeof *v);
	if (v == NULL) {
		free(name);
		gh_str_wipe_free(value);
		return GH_ERR_NOMEM;
	}
	kvs->v = v;
	kvs->v[kvs->len].name = name;
	kvs->v[kvs->len].value = value;
	kvs->len++;
	return GH_OK;
}

/* ---- percent-decoding ------------------------------------------------------- */

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes n bytes of s into a fresh string; plus turns '+' into a space.
 * A '%' not followed by two hex digits is an error. */
static gh_err
pct_decode(const char *s, size_t n, bool plus, char **out, size_t *out_len)
{
	char *d;
	size_t j = 0;

	*out = NULL;
	d = malloc(n + 1);
	if (d == NULL)
		return GH_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (n - i < 3)
				goto bad;
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				goto bad;
			d[j++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (plus && c == '+') {
			d[j++] = ' ';
		} else {
			d[j++] = (char)c;
		}
	}
	d[j] = '\0';
	*out = d;
	if (out_len != NULL)
		*out_len = j;
	return GH_OK;
bad:
	gh_wipe(d, n + 1);
	free(d);
	return GH_ERR_INVALID;
}

/* ---- paths -------------------------------------------------------------------- */

bool
gh_http_path_valid(const char *p, size_t n)
{
	size_t seg;

	if (p == NULL || n == 0 || n > GH_HTTP_PATH_MAX || p[0] != '/')
		return false;
	if (!gh_utf8_valid(p, n))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	if (n == 1)
		return true;	/* the root */
	seg = 1;
	for (size_t i = 1; i <= n; i++) {
		if (i == n || p[i] == '/') {
			size_t len = i - seg;

			if (len == 0)
				return false;
			if (len == 1 && p[seg] == '.')
				return false;
			if (len == 2 && p[seg] == '.' && p[seg + 1] == '.')
				return false;
			seg = i + 1;
		}
	}
	return true;
}

gh_err
gh_http_path_decode(const char *raw, size_t n, char **out)
{
	const char *q;
	char *d = NULL;
	size_t d_len;
	gh_err err;

	*out = NULL;
	q = memchr(raw, '?', n);
	if (q != NULL)
		n = (size_t)(q - raw);
	if (n == 0 || n > GH_HTTP_RAW_PATH_MAX || memchr(raw, '#', n) != NULL)
		return GH_ERR_INVALID;
	err = pct_decode(raw, n, false, &d, &d_len);
	if (err != GH_OK)
		return err;
	if (!gh_http_path_valid(d, d_len)) {
		free(d);
		return GH_ERR_INVALID;
	}
	*out = d;
	return GH_OK;
}

/* ---- forms ---------------------------------------------------------------------- */

gh_err
gh_http_form_parse(const char *s, size_t n, struct gh_http_kvs *out)
{
	size_t i = 0, fields = 0;
	gh_err err = GH_OK;

	out->v = NULL;
	out->len = 0;
	while (i < n) {
		const char *amp = memchr(s + i, '&', n - i);
		size_t end = amp != NULL ? (size_t)(amp - s) : n;
		const char *eq;
		size_t name_end, nlen, vlen;
		char *name = NULL, *value = NULL;

		if (end == i) {		/* "a=1&&b=2": skip the empty pair */
			i = end + 1;
			continue;
		}
		if (++fields > GH_HTTP_FORM_FIELDS_MAX) {
			err = GH_ERR_LIMIT;
			goto fail;
		}
		eq = memchr(s + i, '=', end - i);
		name_end = eq != NULL ? (size_t)(eq - s) : end;
		err = pct_decode(s + i, name_end - i, true, &name, &nlen);
		if (err != GH_OK)
			goto fail;
		if (eq != NULL)
			err = pct_decode(eq + 1, end - name_end - 1, true, &value,
			    &vlen);
		else
			err = pct_decode("", 0, true, &value, &vlen);
		if (err != GH_OK) {
			free(name);
			goto fail;
		}
		if (nlen == 0 || !gh_utf8_valid(name, nlen) ||
		    !gh_utf8_valid(value, vlen)) {
			free(name);
			gh_str_wipe_free(value);
			err = GH_ERR_INVALID;
			goto fail;
		}
		err = kvs_add(out, GH_HTTP_FORM_FIELDS_MAX, name, value);
		if (err != GH_OK)
			goto fail;
		i = end + 1;
	}
	return GH_OK;
fail:
	gh_http_kvs_free(out);
	return err;
}

/* ---- cookies -------------------------------------------------------------------- */

static bool
is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

bool
gh_http_token_valid(const char *s, size_t n)
{
	if (s == NULL || n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!is_tchar((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* cookie-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E */
static bool
is_cookie_octet(unsigned char c)
{
	return c == 0x21 || (c >= 0x23 && c <= 0x2b) ||
	    (c >= 0x2d && c <= 0x3a) || (c >= 0x3c && c <= 0x5b) ||
	    (c >= 0x5d && c <= 0x7e);
}

static bool
cookie_octets_valid(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!is_cookie_octet((unsigned char)s[i]))
			return false;
	}
	return true;
}

bool
gh_http_cookie_name_valid(const char *name)
{
	return name != NULL && strlen(name) <= GH_HTTP_COOKIE_NAME_MAX &&
	    gh_http_token_valid(name, strlen(name));
}

bool
gh_http_cookie_value_valid(const char *value)
{
	return value != NULL && strlen(value) <= GH_HTTP_COOKIE_VALUE_MAX &&
	    cookie_octets_valid(value, strlen(value));
}

static char *
dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d == NULL)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

gh_err
gh_http_cookie_parse(const char *s, size_t n, struct gh_http_kvs *out)
{
	size_t i = 0, pairs = 0;
	gh_err err = GH_OK;

	out->v = NULL;
	out->len = 0;
	if (n > GH_HTTP_COOKIE_HEADER_MAX)
		return GH_ERR_LIMIT;
	while (i < n) {
		const char *semi = memchr(s + i, ';', n - i);
		size_t end = semi != NULL ? (size_t)(semi - s) : n;
		size_t a = i, b = end;
		const char *eq;
		size_t nlen, vstart, vlen;
		char *name, *value;

		i = end + 1;
		while (a < b && (s[a] == ' ' || s[a] == '\t'))
			a++;
		while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
			b--;
		if (a == b)
			continue;
		if (++pairs > GH_HTTP_COOKIES_MAX) {
			err = GH_ERR_LIMIT;
			goto fail;
		}
		eq = memchr(s + a, '=', b - a);
		if (eq == NULL)
			continue;
		nlen = (size_t)(eq - (s + a));
		vstart = (size_t)(eq - s) + 1;
		vlen = b - vstart;
		if (vlen >= 2 && s[vstart] == '"' && s[b - 1] == '"') {
			vstart++;
			vlen -= 2;
		}
		if (nlen > GH_HTTP_COOKIE_NAME_MAX ||
		    vlen > GH_HTTP_COOKIE_VALUE_MAX ||
		    !gh_http_token_valid(s + a, nlen) ||
		    !cookie_octets_valid(s + vstart, vlen))
			continue;	/* skip junk, keep the rest */
		name = dup_n(s + a, nlen);
		value = dup_n(s + vstart, vlen);
		if (name == NULL || value == NULL) {
			free(name);
			gh_str_wipe_free(value);
			err = GH_ERR_NOMEM;
			goto fail;
		}
		err = kvs_add(out, GH_HTTP_COOKIES_MAX, name, value);
		if (err != GH_OK)
			goto fail;
	}
	return GH_OK;
fail:
	gh_http_kvs_free(out);
	return err;
}

/* ---- addresses -------------------------------------------------------------------- */

bool
gh_http_ip_parse(const char *s, size_t n, struct gh_http_cidr *out)
{
	char tmp[GH_HTTP_IP_STR_MAX];
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0xff, 0xff };

	memset(out, 0, sizeof *out);
	if (s == NULL || n == 0 || n >= sizeof tmp || memchr(s, '\0', n))
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (inet_pton(AF_INET, tmp, out->addr) == 1) {
		out->family = AF_INET;
		out->prefix = 32;
		return true;
	}
	if (strchr(tmp, '%') == NULL && inet_pton(AF_INET6, tmp,
	    out->addr) == 1) {
		if (memcmp(out->addr, mapped, sizeof mapped) == 0) {
			memmove(out->addr, out->addr + 12, 4);
			memset(out->addr + 4, 0, 12);
			out->family = AF_INET;
			out->prefix = 32;
			return true;
		}
		out->family = AF_INET6;
		out->prefix = 128;
		return true;
	}
	memset(out, 0, sizeof *out);
	return false;
}

void
gh_http_ip_format(const struct gh_http_cidr *ip,
    char out[static GH_HTTP_IP_STR_MAX])
{
	if (inet_ntop(ip->family, ip->addr, out, GH_HTTP_IP_STR_MAX) == NULL)
		gh_strlcpy(out, "invalid", GH_HTTP_IP_STR_MAX);
}

bool
gh_http_ip_loopback(const struct gh_http_cidr *ip)
{
	static const uint8_t v6_loop[16] = { [15] = 1 };

	if (ip->family == AF_INET)
		return ip->addr[0] == 127;
	return ip->family == AF_INET6 &&
	    memcmp(ip->addr, v6_loop, sizeof v6_loop) == 0;
}

static bool
cidr_contains(const struct gh_http_cidr *net, const struct gh_http_cidr *ip)
{
	unsigned bits = net->prefix, full = bits / 8, rest = bits % 8;

	if (net->family != ip->family)
		return false;
	if (memcmp(net->addr, ip->addr, full) != 0)
		return false;
	if (rest != 0) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));

		if ((net->addr[full] & mask) != (ip->addr[full] & mask))
			return false;
	}
	return true;
}

gh_err
gh_http_proxies_parse(const char *const *list, size_t n,
    struct gh_http_proxies *out, char *errmsg, size_t errmsg_cap)
{
	memset(out, 0, sizeof *out);
	if (n > GH_HTTP_MAX_PROXIES) {
		snprintf(errmsg, errmsg_cap,
		    "trusted_proxies: at most %d entries", GH_HTTP_MAX_PROXIES);
		return GH_ERR_INVALID;
	}
	for (size_t i = 0; i < n; i++) {
		const char *s = list[i], *slash;
		struct gh_http_cidr c;
		size_t alen;
		unsigned long prefix;

		if (s == NULL)
			goto bad;
		slash = strchr(s, '/');
		alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
		if (!gh_http_ip_parse(s, alen, &c))
			goto bad;
		if (slash != NULL) {
			char *end;
			unsigned max = c.family == AF_INET ? 32 : 128;

			/* A mapped IPv6 block would need its prefix shifted;
			 * refuse rather than guess. */
			if (c.family == AF_INET && strchr(s, ':') != NULL)
				goto bad;
			if (slash[1] < '0' || slash[1] > '9')
				goto bad;
			prefix = strtoul(slash + 1, &end, 10);
			if (*end != '\0' || prefix > max)
				goto bad;
			c.prefix = (unsigned)prefix;
		}
		out->v[out->len++] = c;
		continue;
bad:
		snprintf(errmsg, errmsg_cap,
		    "trusted_proxies: entry %zu is not an IP address or CIDR "
		    "block", i + 1);
		memset(out, 0, sizeof *out);
		return GH_ERR_INVALID;
	}
	return GH_OK;
}

bool
gh_http_proxies_match(const struct gh_http_proxies *p,
    const struct gh_http_cidr *ip)
{
	for (size_t i = 0; i < p->len; i++) {
		if (cidr_contains(&p->v[i], ip))
			return true;
	}
	return false;
}

void
gh_http_client_ip(const struct gh_http_proxies *p,
    const struct gh_http_cidr *peer, const char *xff,
    char out[static GH_HTTP_IP_STR_MAX])
{
	size_t end, walked = 0;

	gh_http_ip_format(peer, out);
	if (xff == NULL || !gh_http_proxies_match(p, peer))
		return;
	end = strlen(xff);
	while (end > 0 && walked++ < GH_HTTP_XFF_MAX) {
		size_t start = end, a, b;
		struct gh_http_cidr ip;

		while (start > 0 && xff[start - 1] != ',')
			start--;
		a = start;
		b = end;
		while (a < b && (xff[a] == ' ' || xff[a] == '\t'))
			a++;
		while (b > a && (xff[b - 1] == ' ' || xff[b - 1] == '\t'))
			b--;
		if (!gh_http_ip_parse(xff + a, b - a, &ip))
			return;		/* forged or garbled: the peer */
		if (!gh_http_proxies_match(p, &ip)) {
			gh_http_ip_format(&ip, out);
			return;
		}
		end = start > 0 ? start - 1 : 0;
	}
}

/* ---- bodies ---------------------------------------------------------------------- */

static const char *
skip_ows(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

bool
gh_http_media_type_is(const char *ct, const char *type)
{
	size_t tlen = strlen(type);
	const char *p;

	if (ct == NULL)
		return false;
	p = skip_ows(ct);
	if (strncasecmp(p, type, tlen) != 0)
		return false;
	p = skip_ows(p + tlen);
	if (*p == '\0')
		return true;
	if (*p != ';')
		return false;
	p = skip_ows(p + 1);
	if (strncasecmp(p, "charset", 7) != 0)
		return false;
	p = skip_ows(p + 7);
	if (*p != '=')
		return false;
	p = skip_ows(p + 1);
	if (strncasecmp(p, "utf-8", 5) == 0)
		p += 5;
	else if (strncasecmp(p, "\"utf-8\"", 7) == 0)
		p += 7;
	else
		return false;
	p = skip_ows(p);
	return *p == '\0';
}

gh_err
gh_http_json_parse(const char *body, size_t n, json_t **out, char *errmsg,
    size_t errmsg_cap)
{
	json_error_t jerr;
	json_t *j;

	*out = NULL;
	if (n == 0) {
		snprintf(errmsg, errmsg_cap, "body is empty");
		return GH_ERR_INVALID;
	}
	if (memchr(body, '\0', n) != NULL) {
		snprintf(errmsg, errmsg_cap, "body contains a NUL byte");
		return GH_ERR_INVALID;
	}
	if (!gh_utf8_valid(body, n)) {
		snprintf(errmsg, errmsg_cap, "body is not valid UTF-8");
		return GH_ERR_INVALID;
	}
	j = json_loadb(body, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
	    &jerr);
	if (j == NULL) {
		if (json_error_code(&jerr) == json_error_duplicate_key)
			snprintf(errmsg, errmsg_cap,
			    "duplicate key at line %d column %d", jerr.line,
			    jerr.column);
		else
			snprintf(errmsg, errmsg_cap,
			    "invalid JSON at line %d column %d: %s", jerr.line,
			    jerr.column, jerr.text);
		return GH_ERR_INVALID;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		snprintf(errmsg, errmsg_cap, "body must be a JSON object");
		return GH_ERR_INVALID;
	}
	*out = j;
	return GH_OK;
}
