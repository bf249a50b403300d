/* fuzz_jwt.c: libFuzzer target for compact JWS parsing and verification
 * (src/jose/jose.c): any bytes must be refused or, for a real signature,
 * accepted; never a fault, a leak or an unbounded read. The keys are made
 * once; the input is tried as a token against each of them and as a
 * public JWK for each algorithm. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jose/jose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gh_jose_key *keys[3];

static void
keys_init(void)
{
	enum gh_jose_alg algs[3] = { GH_JOSE_ES256, GH_JOSE_RS256,
	    GH_JOSE_EDDSA };

	for (int i = 0; i < 3; i++)
		if (keys[i] == NULL &&
		    gh_jose_key_generate(algs[i], &keys[i]) != GH_OK)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gh_jose_key *k = NULL;
	json_t *h = NULL, *c = NULL, *jwk;
	char *s;

	keys_init();
	s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (gh_jose_header(s, size, &h) == GH_OK && h == NULL)
		abort();
	json_decref(h);
	if (gh_jose_claims_unverified(s, size, &c) == GH_OK && c == NULL)
		abort();
	json_decref(c);
	for (int i = 0; i < 3; i++) {
		h = c = NULL;
		if (gh_jose_verify(keys[i], s, size, &h, &c) == GH_OK &&
		    (c == NULL || h == NULL))
			abort();
		json_decref(h);
		json_decref(c);
	}
	jwk = json_loadb(s, size, 0, NULL);
	if (jwk != NULL) {
		for (enum gh_jose_alg a = GH_JOSE_ES256; a <= GH_JOSE_EDDSA;
		    a++) {
			if (gh_jose_key_from_jwk(a, jwk, &k) == GH_OK)
				gh_jose_key_free(k);
			k = NULL;
		}
		json_decref(jwk);
	}
	free(s);
	return 0;
}
