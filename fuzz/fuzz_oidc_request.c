/* fuzz_oidc_request.c: libFuzzer target for the OpenID provider's parsers
 * of request bytes (src/api/oidc_clients.c, oidc_device.c): the token
 * endpoint's Authorization: Basic header, redirect URIs an admin
 * registers (back-channel logout URIs too) and the user codes people
 * type. Any bytes must be refused or give bounded, well-formed results. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/oidc_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char id[GH_ID_LEN + 1], secret[128], code[OIDC_USER_CODE_LEN + 1];
	char *s = malloc(size + 1);

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (oidc_basic_parse(s, id, secret, sizeof secret) &&
	    (strlen(id) != GH_ID_LEN || strlen(secret) >= sizeof secret))
		abort();
	if (oidc_redirect_uri_valid(s) && (strlen(s) > OIDC_URI_MAX ||
	    strchr(s, '#') != NULL))
		abort();
	if (oidc_user_code_norm(s, code) &&
	    strlen(code) != OIDC_USER_CODE_LEN)
		abort();
	free(s);
	return 0;
}
