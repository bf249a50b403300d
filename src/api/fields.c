/*
 * fields.c: JSON-to-struct for user bodies of the admin API, kept free of
 * HTTP so that a fuzz target can drive it.
 * Untrusted input: the parsed body. Secrets: a password member is only
 * pointed to, never copied.
 */
#include "api/api_int.h"

#include <stdio.h>
#include <string.h>

static gh_err
fail(char *msg, size_t cap, const char *text)
{
	snprintf(msg, cap, "%s", text);
	return GH_ERR_INVALID;
}

static gh_err
member(json_t *body, const char *key, const char **out, char *msg, size_t cap)
{
	json_t *v = json_object_get(body, key);

	*out = NULL;
	if (v == NULL)
		return GH_OK;
	if (!json_is_string(v)) {
		snprintf(msg, cap, "%s: must be a string", key);
		return GH_ERR_INVALID;
	}
	*out = json_string_value(v);
	/* jansson admits NUL inside strings only with JSON_ALLOW_NUL; check
	 * anyway, so that a C string is the whole value. */
	if (strlen(*out) != json_string_length(v)) {
		snprintf(msg, cap, "%s: must not contain NUL", key);
		return GH_ERR_INVALID;
	}
	return GH_OK;
}

/*
 * The shape of an "attributes" member: an object of at most
 * GH_ATTR_DEFS_MAX members whose values are scalars or null. Which names
 * exist and what each value must be depends on the org's definitions,
 * checked by src/identity when the values are written.
 */
static gh_err
attributes_shape(json_t *attrs, char *msg, size_t cap)
{
	const char *key;
	json_t *v;

	if (attrs == NULL)
		return GH_OK;
	if (!json_is_object(attrs) || json_object_size(attrs) > GH_ATTR_DEFS_MAX)
		return fail(msg, cap, "attributes: must be an object of at most "
		    "100 members");
	json_object_foreach(attrs, key, v) {
		if (json_is_object(v) || json_is_array(v)) {
			snprintf(msg, cap, "attributes.%.64s: must be a string, "
			    "number, boolean or null", key);
			return GH_ERR_INVALID;
		}
	}
	return GH_OK;
}

gh_err
user_fields_parse(json_t *body, struct user_fields *f, char *msg,
    size_t msg_cap)
{
	static const struct {
		const char *key;
		size_t off;
	} members[] = {
		{ "username", offsetof(struct user_fields, username) },
		{ "display_name", offsetof(struct user_fields, display_name) },
		{ "role", offsetof(struct user_fields, role) },
		{ "state", offsetof(struct user_fields, state) },
		{ "password", offsetof(struct user_fields, password) },
		{ "password_hash", offsetof(struct user_fields, password_hash) },
	};
	gh_err err = GH_OK;

	memset(f, 0, sizeof *f);
	if (!json_is_object(body))
		return fail(msg, msg_cap, "body must be a JSON object");
	for (size_t i = 0; err == GH_OK && i < sizeof members / sizeof *members;
	    i++)
		err = member(body, members[i].key,
		    (const char **)((char *)f + members[i].off), msg, msg_cap);
	if (err != GH_OK)
		return err;
	if (json_is_null(json_object_get(body, "email")))
		f->email = "";
	else if ((err = member(body, "email", &f->email, msg, msg_cap)) != GH_OK)
		return err;
	if (f->username && !gh_identity_username_valid(f->username))
		return fail(msg, msg_cap, "username: 1 to 64 letters, digits or "
		    "._@+-");
	if (f->email && f->email[0] && !gh_identity_email_valid(f->email))
		return fail(msg, msg_cap, "email: not a valid e-mail address");
	if (f->display_name && !gh_identity_display_name_valid(f->display_name))
		return fail(msg, msg_cap, "display_name: at most 128 bytes of "
		    "text");
	if (f->role && !gh_identity_role_valid(f->role))
		return fail(msg, msg_cap, "role: one of owner, admin, member");
	if (f->state && !gh_identity_user_state_valid(f->state))
		return fail(msg, msg_cap, "state: one of active, disabled");
	if (f->password && f->password_hash)
		return fail(msg, msg_cap, "password_hash: give a password or a "
		    "hash, not both");
	if (f->password && (f->password[0] == '\0' ||
	    strlen(f->password) > GH_PW_MAX_LEN))
		return fail(msg, msg_cap, "password: 1 to 256 bytes");
	if (f->password_hash && (strlen(f->password_hash) > GH_PW_HASH_MAX ||
	    !gh_auth_pw_hash_supported(f->password_hash)))
		return fail(msg, msg_cap, "password_hash: must be an argon2id or "
		    "bcrypt ($2b$) hash");
	return attributes_shape(json_object_get(body, "attributes"), msg,
	    msg_cap);
}
