/* fuzz_oidc_request.c: libFuzzer target for the OpenID provider's parsers
 * of request bytes (src/api/oidc_clients.c, oidc_device.c): the token
 * endpoint's Authorization: Basic header, redirect URIs an admin
 * registers, the user codes people type, and for back-channel logout
 * the URL split and the receiver's status line. Any bytes must be refused or
 * give bounded, well-formed results. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/oidc_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char id[GH_ID_LEN + 1], secret[128], code[OIDC_USER_CODE_LEN + 1];
	struct oidc_url u;
	char *s = malloc(size + 1);
	int status;

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
	if (oidc_url_split(s, &u) && (u.port < 1 || u.port > 65535 ||
	    u.path[0] != '/' || strlen(u.host) == 0))
		abort();
	status = oidc_http_status(s, size);
	if (status != -1 && (status < 100 || status > 999))
		abort();
	free(s);
	return 0;
}
