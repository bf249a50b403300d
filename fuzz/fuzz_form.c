/* fuzz_form.c: libFuzzer target for the x-www-form-urlencoded parser. */
#include <stdint.h>
#include <string.h>

#include "http/http_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gh_http_kvs kv;

	if (gh_http_form_parse((const char *)data, size, &kv) == GH_OK) {
		/* Every kept pair is valid UTF-8 and names are unique. */
		for (size_t i = 0; i < kv.len; i++) {
			if (!gh_utf8_valid(kv.v[i].name, strlen(kv.v[i].name))
			    || !gh_utf8_valid(kv.v[i].value,
			    strlen(kv.v[i].value)))
				__builtin_trap();
			if (gh_http_kvs_get(&kv, kv.v[i].name) !=
			    kv.v[i].value)
				__builtin_trap();
		}
		if (kv.len > GH_HTTP_FORM_FIELDS_MAX)
			__builtin_trap();
		gh_http_kvs_free(&kv);
	} else if (kv.len != 0) {
		__builtin_trap();
	}
	return 0;
}
