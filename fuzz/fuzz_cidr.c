/* fuzz_cidr.c: libFuzzer target for the address parsers of security
 * policies: a CIDR string (allowed_cidrs entries), then the same bytes as a
 * client address and as a geoip_file CSV. Checks that a parsed range
 * prints to a form that parses back to the same range, that it matches
 * its own base address, and that country lookups stay in bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[GH_CIDR_STR_MAX + 8], back[GH_CIDR_STR_MAX], msg[128], cc[3];
	struct gh_cidr c, c2;
	struct gh_geo *geo = NULL;
	uint8_t ip[16];
	size_t n = size < sizeof text - 1 ? size : sizeof text - 1;

	memcpy(text, data, n);
	text[n] = '\0';
	if (gh_policy_cidr_parse(text, &c) == GH_OK) {
		if (c.bits > 128 || (c.v4 && c.bits < 96))
			__builtin_trap();
		gh_policy_cidr_format(&c, back);
		if (gh_policy_cidr_parse(back, &c2) != GH_OK ||
		    memcmp(c.addr, c2.addr, 16) != 0 || c.bits != c2.bits ||
		    c.v4 != c2.v4)
			__builtin_trap();
		if (!gh_policy_cidr_match(&c, c.addr))
			__builtin_trap();
	}
	if (gh_policy_ip_parse(text, ip) == GH_OK &&
	    gh_policy_cidr_parse(text, &c) == GH_OK &&
	    !gh_policy_cidr_match(&c, ip))
		__builtin_trap();
	if (gh_geo_parse((const char *)data, size, &geo, msg, sizeof msg) ==
	    GH_OK) {
		(void)gh_geo_country(geo, "127.0.0.1", cc);
		(void)gh_geo_country(geo, "::1", cc);
		if (cc[0] != '\0' && strlen(cc) != 2)
			__builtin_trap();
		gh_geo_free(geo);
	} else if (geo != NULL) {
		__builtin_trap();
	}
	return 0;
}
