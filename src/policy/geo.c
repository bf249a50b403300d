/*
 * geo.c: the country of an address, from a CSV file of "cidr,country"
 * lines named by the geoip_file setting. Loaded once at start; a sorted
 * array searched linearly from the most specific prefix (files are small:
 * a real geolocation database will replace this behind the same call).
 *
 * Untrusted input: the file (operator-supplied, still parsed defensively:
 * line and entry bounds, every field checked) and client addresses.
 * Secrets: none.
 */
#include "policy/policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEO_FILE_MAX (256u * 1024 * 1024)
#define GEO_LINE_MAX 200

struct geo_entry {
	struct gh_cidr cidr;
	char cc[3];
};

struct gh_geo {
	size_t n;
	struct geo_entry *e;	/* most specific first */
};

static int
by_bits_desc(const void *a, const void *b)
{
	const struct geo_entry *x = a, *y = b;

	return (int)y->cidr.bits - (int)x->cidr.bits;
}

/* Parses one line (without its newline) into e; *skip_out for blank lines
 * and comments. */
static gh_err
line_parse(char *line, struct geo_entry *e, bool *skip_out)
{
	char *comma, *cc;
	size_t n = strlen(line);

	*skip_out = false;
	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' '))
		line[--n] = '\0';
	if (n == 0 || line[0] == '#') {
		*skip_out = true;
		return GH_OK;
	}
	comma = strchr(line, ',');
	if (comma == NULL)
		return GH_ERR_INVALID;
	*comma = '\0';
	cc = comma + 1;
	while (*cc == ' ')
		cc++;
	if (strlen(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' ||
	    cc[1] > 'Z')
		return GH_ERR_INVALID;
	if (gh_policy_cidr_parse(line, &e->cidr) != GH_OK)
		return GH_ERR_INVALID;
	memcpy(e->cc, cc, 3);
	return GH_OK;
}

gh_err
gh_geo_parse(const char *text, size_t len, struct gh_geo **out, char *msg,
    size_t msg_cap)
{
	struct gh_geo *geo = NULL;
	char line[GEO_LINE_MAX + 1];
	size_t pos = 0, lineno = 0, cap = 0, ll;
	const char *nl;
	struct geo_entry e, *grown;
	bool skip;
	gh_err err = GH_OK;

	*out = NULL;
	geo = calloc(1, sizeof *geo);
	if (geo == NULL)
		return GH_ERR_NOMEM;
	while (pos < len) {
		lineno++;
		nl = memchr(text + pos, '\n', len - pos);
		ll = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
		if (ll > GEO_LINE_MAX || memchr(text + pos, '\0', ll) != NULL) {
			snprintf(msg, msg_cap, "line %zu: too long or not text",
			    lineno);
			err = GH_ERR_INVALID;
			goto out;
		}
		memcpy(line, text + pos, ll);
		line[ll] = '\0';
		pos += ll + (nl != NULL);
		if (line_parse(line, &e, &skip) != GH_OK) {
			snprintf(msg, msg_cap, "line %zu: expected "
			    "\"cidr,CC\" (an IPv4 or IPv6 range and an ISO "
			    "3166 alpha-2 code)", lineno);
			err = GH_ERR_INVALID;
			goto out;
		}
		if (skip)
			continue;
		if (geo->n >= GH_GEO_MAX_ENTRIES) {
			snprintf(msg, msg_cap, "more than %u entries",
			    GH_GEO_MAX_ENTRIES);
			err = GH_ERR_LIMIT;
			goto out;
		}
		if (geo->n == cap) {
			cap = cap ? cap * 2 : 64;
			grown = realloc(geo->e, cap * sizeof *geo->e);
			if (grown == NULL) {
				err = GH_ERR_NOMEM;
				goto out;
			}
			geo->e = grown;
		}
		geo->e[geo->n++] = e;
	}
	if (geo->n > 1)
		qsort(geo->e, geo->n, sizeof *geo->e, by_bits_desc);
	*out = geo;
	geo = NULL;
out:
	gh_geo_free(geo);
	return err;
}

gh_err
gh_geo_load(const char *path, struct gh_geo **out, char *msg, size_t msg_cap)
{
	FILE *f;
	char *text = NULL;
	size_t len = 0, cap = 0, n;
	gh_err err = GH_OK;

	*out = NULL;
	f = fopen(path, "r");
	if (f == NULL) {
		snprintf(msg, msg_cap, "%s: %s", path, strerror(errno));
		return GH_ERR_IO;
	}
	for (;;) {
		if (len == cap) {
			char *grown;

			if (cap >= GEO_FILE_MAX) {
				snprintf(msg, msg_cap, "%s: larger than %u bytes",
				    path, GEO_FILE_MAX);
				err = GH_ERR_LIMIT;
				goto out;
			}
			cap = cap ? cap * 2 : 65536;
			grown = realloc(text, cap);
			if (grown == NULL) {
				err = GH_ERR_NOMEM;
				goto out;
			}
			text = grown;
		}
		n = fread(text + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		snprintf(msg, msg_cap, "%s: read error", path);
		err = GH_ERR_IO;
		goto out;
	}
	err = gh_geo_parse(text ? text : "", len, out, msg, msg_cap);
out:
	fclose(f);
	free(text);
	return err;
}

void
gh_geo_free(struct gh_geo *geo)
{
	if (geo == NULL)
		return;
	free(geo->e);
	free(geo);
}

bool
gh_geo_country(const struct gh_geo *geo, const char *ip, char cc[static 3])
{
	uint8_t a[16];

	cc[0] = '\0';
	if (geo == NULL || gh_policy_ip_parse(ip, a) != GH_OK)
		return false;
	for (size_t i = 0; i < geo->n; i++) {
		if (gh_policy_cidr_match(&geo->e[i].cidr, a)) {
			memcpy(cc, geo->e[i].cc, 3);
			return true;
		}
	}
	return false;
}
