/* fuzz_cookie.c: libFuzzer target for the Cookie header parser and the
 * cookie name/value checks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gh_http_kvs kv;
	char *s;

	if (gh_http_cookie_parse((const char *)data, size, &kv) == GH_OK) {
		for (size_t i = 0; i < kv.len; i++) {
			if (!gh_http_cookie_name_valid(kv.v[i].name) ||
			    !gh_http_cookie_value_valid(kv.v[i].value))
				__builtin_trap();
		}
		if (kv.len > GH_HTTP_COOKIES_MAX)
			__builtin_trap();
		gh_http_kvs_free(&kv);
	}
	s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	(void)gh_http_cookie_name_valid(s);
	(void)gh_http_cookie_value_valid(s);
	(void)gh_http_media_type_is(s, "application/json");
	free(s);
	return 0;
}
