/* fuzz_scim_filter.c: libFuzzer target for the SCIM filter and PATCH path
 * parsers, the filter evaluator, and PATCH applied with the input as the
 * path of each kind of operation. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scim/scim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gh_scim_filter *f = NULL;
	struct gh_scim_path *p = NULL;
	char *s, msg[256];
	json_t *r;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	r = json_loads("{\"userName\":\"a\",\"emails\":[{\"value\":\"x\","
	    "\"type\":\"work\"}],\"name\":{\"givenName\":\"g\"},"
	    "\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\":"
	    "{\"department\":\"d\"}}", 0, NULL);
	if (gh_scim_filter_parse(s, &f, msg, sizeof msg) == GH_OK) {
		if (f == NULL || f->root == NULL ||
		    f->n_nodes > GH_SCIM_FILTER_NODES)
			__builtin_trap();
		(void)gh_scim_filter_match(f, r);
	} else if (f != NULL) {
		__builtin_trap();
	}
	if (gh_scim_path_parse(s, &p, msg, sizeof msg) == GH_OK) {
		if (p == NULL || p->attr == NULL)
			__builtin_trap();
	} else if (p != NULL) {
		__builtin_trap();
	}
	if (gh_utf8_valid(s, size)) {
		static const char *const kinds[] = { "add", "replace",
			"remove" };
		const char *type;

		for (size_t i = 0; i < 3; i++) {
			json_t *ops = json_pack("[{s:s, s:s, s:[{s:s}]}]", "op",
			    kinds[i], "path", s, "value", "value", "x");

			if (ops != NULL && gh_scim_patch_apply(r, ops, msg,
			    sizeof msg, &type) != GH_OK && type == NULL)
				__builtin_trap();
			json_decref(ops);
		}
	}
	gh_scim_filter_free(f);
	gh_scim_path_free(p);
	json_decref(r);
	free(s);
	return 0;
}
