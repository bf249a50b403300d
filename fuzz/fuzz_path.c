/* fuzz_path.c: libFuzzer target for request-target decoding, the path
 * check and the X-Forwarded-For walk. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const list[] = { "10.0.0.0/8", "::1",
		"2001:db8::/32" };
	struct gh_http_proxies p;
	struct gh_http_cidr peer;
	char out[GH_HTTP_IP_STR_MAX], msg[128], *path, *s;

	if (gh_http_path_decode((const char *)data, size, &path) == GH_OK) {
		/* A decoded path never holds a dot segment or a NUL. */
		if (!gh_http_path_valid(path, strlen(path)) ||
		    strstr(path, "/../") != NULL || strstr(path, "//") != NULL)
			__builtin_trap();
		free(path);
	}
	(void)gh_http_path_valid((const char *)data, size);

	s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (gh_http_proxies_parse(list, 3, &p, msg, sizeof msg) != GH_OK ||
	    !gh_http_ip_parse("10.1.1.1", 8, &peer))
		__builtin_trap();
	gh_http_client_ip(&p, &peer, s, out);
	if (!gh_http_ip_parse(out, strlen(out), &peer))
		__builtin_trap();
	free(s);
	return 0;
}
