/*
 * fuzz_webauthn_att_obj.c: libFuzzer target for the CBOR attestationObject
 * and the authenticatorData of WebAuthn verification. The first input byte
 * picks the path: even runs the rest as an attestationObject through
 * registration, odd as authenticatorData through an assertion (with a
 * fixed, valid clientDataJSON for each and an arbitrary signature).
 */
#include <string.h>

#include "auth/webauthn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const origins[] = { "https://login.example.com" };
static const uint8_t challenge[32] = {
	0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b,
	0x4c, 0x4d, 0x4e, 0x4f, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57,
	0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f,
};
/* The P-256 generator: a valid point, so the stored key loads. */
static const uint8_t pubkey[64] = {
	0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5,
	0x63, 0xa4, 0x40, 0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0,
	0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96, 0x4f, 0xe3, 0x42, 0xe2,
	0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16,
	0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68,
	0x37, 0xbf, 0x51, 0xf5,
};
#define CHAL_B64 "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8"
static const char cd_create[] = "{\"type\":\"webauthn.create\","
    "\"challenge\":\"" CHAL_B64 "\",\"origin\":\"https://login.example.com\"}";
static const char cd_get[] = "{\"type\":\"webauthn.get\","
    "\"challenge\":\"" CHAL_B64 "\",\"origin\":\"https://login.example.com\"}";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t sig[8] = { 0x30, 0x06, 0x02, 0x01, 0x01, 0x02,
		0x01, 0x01 };
	struct gh_wa_expect exp = { challenge, sizeof challenge,
		"login.example.com", origins, 1, false };
	struct gh_wa_stored st = { GH_WA_ALG_ES256, pubkey, sizeof pubkey, 0,
		NULL, 0 };
	struct gh_wa_assertion as = { 0 };
	struct gh_wa_credential cred;
	struct gh_wa_assert_result res;
	enum gh_wa_reason why;
	gh_err err;

	gh_log_set_level(GH_LOG_LEVEL_ERR);
	if (size < 1)
		return 0;
	if ((data[0] & 1) == 0) {
		/* "none" and self attestation can be forged by anyone, so a
		 * success is possible; it must then be consistent. */
		err = gh_auth_webauthn_register_verify(&exp, data + 1, size - 1,
		    (const uint8_t *)cd_create, strlen(cd_create), &cred, &why);
		if ((err == GH_OK) != (why == GH_WA_OK))
			__builtin_trap();
		if (err == GH_OK && (cred.id_len == 0 ||
		    cred.id_len > GH_WA_CRED_ID_MAX || cred.pubkey_len == 0 ||
		    cred.pubkey_len > GH_WA_PUBKEY_MAX))
			__builtin_trap();
		return 0;
	}
	as.auth_data = data + 1;
	as.auth_data_len = size - 1;
	as.client_data = (const uint8_t *)cd_get;
	as.client_data_len = strlen(cd_get);
	as.sig = sig;
	as.sig_len = sizeof sig;
	/* No private key for the generator point is known: never valid. */
	if (gh_auth_webauthn_assert_verify(&exp, &st, &as, &res, &why) ==
	    GH_OK || why == GH_WA_OK)
		__builtin_trap();
	return 0;
}
