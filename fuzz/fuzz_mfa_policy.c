/* fuzz_mfa_policy.c: libFuzzer target for the org MFA policy an admin
 * sends (PATCH /mfa-policy): JSON body parsing, then
 * gh_auth_mfa_policy_parse with its methods and required_groups list, then
 * the JSON view read back as storage does. */
#include <stdint.h>
#include <string.h>

#include "auth/auth.h"
#include "http/http_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gh_mfa_policy p, back;
	char msg[200];
	json_t *j, *view;

	if (gh_http_json_parse((const char *)data, size, &j, msg,
	    sizeof msg) != GH_OK)
		return 0;
	gh_auth_mfa_policy_default(&p);
	if (gh_auth_mfa_policy_parse(j, true, &p, msg, sizeof msg) != GH_OK) {
		if (memchr(msg, '\0', sizeof msg) == NULL || msg[0] == '\0')
			__builtin_trap();
		json_decref(j);
		return 0;
	}
	json_decref(j);
	/* Whatever passed holds distinct valid ids, within the limit. */
	if (p.n_groups > GH_MFA_GROUPS_MAX ||
	    (!p.allow_totp && !p.allow_webauthn) ||
	    p.grace_days < 0 || p.grace_days > 365)
		__builtin_trap();
	for (size_t i = 0; i < p.n_groups; i++) {
		if (!gh_id_valid(p.groups[i].group_id))
			__builtin_trap();
		for (size_t k = 0; k < i; k++)
			if (strcmp(p.groups[i].group_id,
			    p.groups[k].group_id) == 0)
				__builtin_trap();
	}
	/* The stored form reads back to the same policy. */
	view = gh_auth_mfa_policy_json(&p);
	if (view == NULL)
		return 0;
	gh_auth_mfa_policy_default(&back);
	if (gh_auth_mfa_policy_parse(view, false, &back, msg, sizeof msg) !=
	    GH_OK || back.n_groups != p.n_groups ||
	    back.required != p.required || back.grace_days != p.grace_days ||
	    back.allow_totp != p.allow_totp ||
	    back.allow_webauthn != p.allow_webauthn ||
	    back.allow_recovery != p.allow_recovery ||
	    back.allow_approval != p.allow_approval ||
	    back.remember_device_days != p.remember_device_days)
		__builtin_trap();
	for (size_t i = 0; i < p.n_groups; i++)
		if (strcmp(back.groups[i].group_id, p.groups[i].group_id) != 0)
			__builtin_trap();
	json_decref(view);
	return 0;
}
