/* fuzz_json.c: libFuzzer target for the JSON body parser. */
#include <stdint.h>

#include "http/http_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j;
	char msg[256];

	if (gh_http_json_parse((const char *)data, size, &j, msg,
	    sizeof msg) == GH_OK) {
		if (!json_is_object(j))
			__builtin_trap();
		json_decref(j);
	} else if (j != NULL) {
		__builtin_trap();
	}
	return 0;
}
