/* fuzz_policy_settings.c: libFuzzer target for the settings of a security
 * policy an admin sends (POST/PATCH /security-policies): JSON body
 * parsing, gh_policy_settings_parse, then the stored form parsed again
 * (normalisation is idempotent) and read into the typed view. */
#include <stdint.h>
#include <string.h>

#include "http/http_int.h"
#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gh_policy_eff e;
	const char *code;
	json_t *j, *norm = NULL, *again = NULL, *merged = NULL;
	char msg[256];

	if (gh_http_json_parse((const char *)data, size, &j, msg,
	    sizeof msg) != GH_OK)
		return 0;
	if (gh_policy_settings_parse(j, &norm, msg, sizeof msg, &code) !=
	    GH_OK) {
		if (norm != NULL || msg[0] == '\0' ||
		    memchr(msg, '\0', sizeof msg) == NULL)
			__builtin_trap();
		json_decref(j);
		return 0;
	}
	if (gh_policy_settings_parse(norm, &again, msg, sizeof msg, &code) !=
	    GH_OK || !json_equal(norm, again))
		__builtin_trap();
	if (gh_policy_eff_read(norm, &e) != GH_OK ||
	    e.n_cidrs > GH_POLICY_LIST_MAX ||
	    e.n_countries > GH_POLICY_LIST_MAX)
		__builtin_trap();
	/* The body as a merge patch over its own normalised form. */
	if (gh_policy_settings_merge(norm, j, &merged) == GH_OK)
		json_decref(merged);
	json_decref(again);
	json_decref(norm);
	json_decref(j);
	return 0;
}
