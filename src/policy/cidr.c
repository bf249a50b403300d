/*
 * cidr.c: IPv4 and IPv6 CIDR ranges and client addresses, parsed with
 * inet_pton into one 16-byte form (IPv4 as IPv4-mapped IPv6), matched by
 * prefix. Pure functions.
 *
 * Untrusted input: CIDR strings in admin policy bodies and in the country
 * file; the client address (from the socket or a trusted proxy's
 * X-Forwarded-For). Everything is length-checked before it is copied.
 * Secrets: none.
 */
#include "policy/policy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static const uint8_t v4_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0xff, 0xff };

/* Parses an address without prefix; *v4_out tells the family written. */
static gh_err
addr_parse(const char *s, uint8_t out[static 16], bool *v4_out)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strchr(s, ':') == NULL) {
		if (inet_pton(AF_INET, s, &a4) != 1)
			return GH_ERR_INVALID;
		memcpy(out, v4_prefix, sizeof v4_prefix);
		memcpy(out + 12, &a4, 4);
		*v4_out = true;
		return GH_OK;
	}
	if (inet_pton(AF_INET6, s, &a6) != 1)
		return GH_ERR_INVALID;
	memcpy(out, &a6, 16);
	*v4_out = false;
	return GH_OK;
}

gh_err
gh_policy_ip_parse(const char *s, uint8_t out[static 16])
{
	char buf[GH_CIDR_STR_MAX];
	bool v4;
	size_t n;

	if (s == NULL || (n = strnlen(s, sizeof buf)) == 0 || n >= sizeof buf)
		return GH_ERR_INVALID;
	memcpy(buf, s, n + 1);
	return addr_parse(buf, out, &v4);
}

/* Clears the bits of a below the first bits. */
static void
mask_host(uint8_t a[static 16], unsigned bits)
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned keep = bits > i * 8 ? bits - i * 8 : 0;

		if (keep >= 8)
			continue;
		a[i] &= (uint8_t)(0xff00 >> keep);
	}
}

gh_err
gh_policy_cidr_parse(const char *s, struct gh_cidr *out)
{
	char buf[GH_CIDR_STR_MAX];
	char *slash, *p;
	unsigned bits = 0, max;
	size_t n;

	memset(out, 0, sizeof *out);
	if (s == NULL || (n = strnlen(s, sizeof buf)) == 0 || n >= sizeof buf)
		return GH_ERR_INVALID;
	memcpy(buf, s, n + 1);
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash = '\0';
	if (addr_parse(buf, out->addr, &out->v4) != GH_OK)
		return GH_ERR_INVALID;
	max = out->v4 ? 32 : 128;
	if (slash == NULL) {
		bits = max;
	} else {
		/* Decimal digits only, no sign, no leading zero. */
		p = slash + 1;
		if (*p == '\0' || strlen(p) > 3 || (p[0] == '0' && p[1] != '\0'))
			return GH_ERR_INVALID;
		for (; *p != '\0'; p++) {
			if (*p < '0' || *p > '9')
				return GH_ERR_INVALID;
			bits = bits * 10 + (unsigned)(*p - '0');
		}
		if (bits > max)
			return GH_ERR_INVALID;
	}
	out->bits = out->v4 ? bits + 96 : bits;
	mask_host(out->addr, out->bits);
	return GH_OK;
}

void
gh_policy_cidr_format(const struct gh_cidr *c,
    char out[static GH_CIDR_STR_MAX])
{
	char a[INET6_ADDRSTRLEN];

	if (c->v4)
		inet_ntop(AF_INET, c->addr + 12, a, sizeof a);
	else
		inet_ntop(AF_INET6, c->addr, a, sizeof a);
	snprintf(out, GH_CIDR_STR_MAX, "%s/%u", a,
	    c->v4 ? c->bits - 96 : c->bits);
}

bool
gh_policy_cidr_match(const struct gh_cidr *c, const uint8_t ip[static 16])
{
	uint8_t a[16];

	memcpy(a, ip, 16);
	mask_host(a, c->bits);
	return memcmp(a, c->addr, 16) == 0;
}
