/* fuzz_user_fields.c: libFuzzer target for the admin API's JSON-to-struct
 * step: JSON body parsing, then user field extraction and validation. */
#include <stdint.h>
#include <string.h>

#include "api/api_int.h"
#include "http/http_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct user_fields f;
	char msg[200];
	json_t *j;

	if (gh_http_json_parse((const char *)data, size, &j, msg,
	    sizeof msg) != GH_OK)
		return 0;
	if (user_fields_parse(j, &f, msg, sizeof msg) == GH_OK) {
		/* Whatever passed must satisfy the validators it claims. */
		if ((f.username && !gh_identity_username_valid(f.username)) ||
		    (f.role && !gh_identity_role_valid(f.role)) ||
		    (f.password && f.password_hash))
			__builtin_trap();
	} else if (memchr(msg, '\0', sizeof msg) == NULL) {
		__builtin_trap();
	}
	json_decref(j);
	return 0;
}
