/*
 * settings.c: a security policy's settings: validation and normalisation
 * of what an admin sends, the merge patch of an update, the typed view
 * used at sign-in and the decisions over it (network allow-lists, MFA,
 * password and session overlays).
 *
 * Untrusted input: the settings object of admin requests (every member
 * typed and bounded, unknown members refused) and client addresses.
 * Secrets: none.
 */
#include "policy/policy.h"

#include <stdio.h>
#include <string.h>

enum field_type { F_BOOL, F_INT, F_METHODS, F_CIDRS, F_COUNTRIES };

struct field {
	const char *section, *name;
	enum field_type type;
	int64_t lo, hi;
};

#define DAYS_90 (90 * 86400)

static const struct field fields[] = {
	{ "password", "min_length", F_INT, 8, 128 },
	{ "password", "min_classes", F_INT, 0, 4 },
	{ "password", "min_score", F_INT, 0, 100 },
	{ "password", "reject_common", F_BOOL, 0, 0 },
	{ "password", "reject_context", F_BOOL, 0, 0 },
	{ "mfa", "required", F_BOOL, 0, 0 },
	{ "mfa", "methods", F_METHODS, 0, 0 },
	{ "mfa", "reauth_interval_s", F_INT, 0, DAYS_90 },
	{ "session", "lifetime_s", F_INT, 60, DAYS_90 },
	{ "session", "idle_timeout_s", F_INT, 60, DAYS_90 },
	{ "session", "max_concurrent", F_INT, 1, 1000 },
	{ "network", "allowed_cidrs", F_CIDRS, 0, 0 },
	{ "network", "allowed_countries", F_COUNTRIES, 0, 0 },
};
#define N_FIELDS (sizeof fields / sizeof fields[0])

static const char *const sections[] = { "password", "mfa", "session",
	"network" };
static const char *const methods[] = { "totp", "webauthn", "recovery",
	"approval" };

static const struct field *
field_find(const char *section, const char *name)
{
	for (size_t i = 0; i < N_FIELDS; i++)
		if (strcmp(fields[i].section, section) == 0 &&
		    strcmp(fields[i].name, name) == 0)
			return &fields[i];
	return NULL;
}

static bool
section_known(const char *s)
{
	for (size_t i = 0; i < sizeof sections / sizeof *sections; i++)
		if (strcmp(sections[i], s) == 0)
			return true;
	return false;
}

static int
method_index(const char *m)
{
	for (size_t i = 0; i < sizeof methods / sizeof *methods; i++)
		if (strcmp(methods[i], m) == 0)
			return (int)i;
	return -1;
}

/* Validates a methods array into a new array in canonical order. */
static json_t *
methods_norm(json_t *v)
{
	bool seen[4] = { false };
	json_t *out, *m;
	size_t i;
	int k;

	if (!json_is_array(v) || json_array_size(v) == 0)
		return NULL;
	json_array_foreach(v, i, m) {
		if (!json_is_string(m) ||
		    (k = method_index(json_string_value(m))) < 0 || seen[k])
			return NULL;
		seen[k] = true;
	}
	if (!seen[0] && !seen[1])
		return NULL;
	out = json_array();
	for (k = 0; k < 4 && out != NULL; k++)
		if (seen[k] && json_array_append_new(out,
		    json_string(methods[k])) != 0) {
			json_decref(out);
			out = NULL;
		}
	return out;
}

/* Validates a CIDR list into a new array of normalised, distinct
 * entries; on a bad entry writes its message and *code_out. */
static json_t *
cidrs_norm(json_t *v, const char *path, char *msg, size_t msg_cap,
    const char **code_out)
{
	char text[GH_CIDR_STR_MAX];
	struct gh_cidr c;
	json_t *out, *e;
	size_t i, j;
	bool dup;

	if (!json_is_array(v) || json_array_size(v) > GH_POLICY_LIST_MAX) {
		snprintf(msg, msg_cap, "%s: must be an array of at most %d CIDR "
		    "strings", path, GH_POLICY_LIST_MAX);
		return NULL;
	}
	out = json_array();
	json_array_foreach(v, i, e) {
		if (out == NULL)
			return NULL;
		if (!json_is_string(e) ||
		    gh_policy_cidr_parse(json_string_value(e), &c) != GH_OK) {
			snprintf(msg, msg_cap, "%s[%zu]: %s%.64s%s is not an IPv4 "
			    "or IPv6 CIDR (address/prefix)", path, i,
			    json_is_string(e) ? "'" : "",
			    json_is_string(e) ? json_string_value(e) : "entry",
			    json_is_string(e) ? "'" : "");
			*code_out = "invalid_cidr";
			json_decref(out);
			return NULL;
		}
		gh_policy_cidr_format(&c, text);
		dup = false;
		for (j = 0; j < json_array_size(out); j++)
			if (strcmp(json_string_value(json_array_get(out, j)),
			    text) == 0)
				dup = true;
		if (!dup && json_array_append_new(out, json_string(text)) != 0) {
			json_decref(out);
			out = NULL;
		}
	}
	return out;
}

static json_t *
countries_norm(json_t *v, const char *path, char *msg, size_t msg_cap)
{
	json_t *out, *e;
	const char *s;
	char cc[3];
	size_t i, j;
	bool dup;

	if (!json_is_array(v) || json_array_size(v) > GH_POLICY_LIST_MAX)
		goto bad;
	out = json_array();
	json_array_foreach(v, i, e) {
		if (out == NULL)
			return NULL;
		s = json_is_string(e) ? json_string_value(e) : "";
		if (strlen(s) != 2 || !((s[0] | 0x20) >= 'a' &&
		    (s[0] | 0x20) <= 'z' && (s[1] | 0x20) >= 'a' &&
		    (s[1] | 0x20) <= 'z')) {
			json_decref(out);
			goto bad;
		}
		cc[0] = (char)(s[0] & ~0x20);
		cc[1] = (char)(s[1] & ~0x20);
		cc[2] = '\0';
		dup = false;
		for (j = 0; j < json_array_size(out); j++)
			if (strcmp(json_string_value(json_array_get(out, j)),
			    cc) == 0)
				dup = true;
		if (!dup && json_array_append_new(out, json_string(cc)) != 0) {
			json_decref(out);
			out = NULL;
		}
	}
	return out;
bad:
	snprintf(msg, msg_cap, "%s: must be an array of at most %d ISO 3166 "
	    "alpha-2 country codes", path, GH_POLICY_LIST_MAX);
	return NULL;
}

/* Validates one field's value into a new normalised value. */
static json_t *
field_norm(const struct field *f, json_t *v, char *msg, size_t msg_cap,
    const char **code_out)
{
	char path[64];
	json_t *out = NULL;

	snprintf(path, sizeof path, "settings.%s.%s", f->section, f->name);
	switch (f->type) {
	case F_BOOL:
		if (json_is_boolean(v))
			return json_incref(v);
		snprintf(msg, msg_cap, "%s: must be true or false", path);
		return NULL;
	case F_INT:
		if (json_is_integer(v) && json_integer_value(v) >= f->lo &&
		    json_integer_value(v) <= f->hi)
			return json_incref(v);
		snprintf(msg, msg_cap, "%s: must be an integer from %lld to "
		    "%lld", path, (long long)f->lo, (long long)f->hi);
		return NULL;
	case F_METHODS:
		out = methods_norm(v);
		if (out == NULL)
			snprintf(msg, msg_cap, "%s: a non-empty list of distinct "
			    "methods from totp, webauthn, recovery, approval, "
			    "holding totp or webauthn", path);
		return out;
	case F_CIDRS:
		return cidrs_norm(v, path, msg, msg_cap, code_out);
	case F_COUNTRIES:
		return countries_norm(v, path, msg, msg_cap);
	}
	return NULL;
}

gh_err
gh_policy_settings_parse(json_t *in, json_t **out, char *msg, size_t msg_cap,
    const char **code_out)
{
	const struct field *f;
	const char *sname, *fname;
	json_t *res = NULL, *sec, *fv, *rsec, *nv;
	gh_err err = GH_ERR_INVALID;

	*out = NULL;
	*code_out = "invalid_request";
	if (!json_is_object(in)) {
		snprintf(msg, msg_cap, "settings: must be an object");
		return GH_ERR_INVALID;
	}
	if ((res = json_object()) == NULL)
		return GH_ERR_NOMEM;
	json_object_foreach(in, sname, sec) {
		if (!section_known(sname)) {
			snprintf(msg, msg_cap, "settings.%.32s: unknown section "
			    "(password, mfa, session, network)", sname);
			goto out;
		}
		if (json_is_null(sec))
			continue;
		if (!json_is_object(sec)) {
			snprintf(msg, msg_cap, "settings.%s: must be an object",
			    sname);
			goto out;
		}
		rsec = json_object();
		if (rsec == NULL || json_object_set_new(res, sname, rsec) != 0) {
			err = GH_ERR_NOMEM;
			goto out;
		}
		json_object_foreach(sec, fname, fv) {
			f = field_find(sname, fname);
			if (f == NULL) {
				snprintf(msg, msg_cap, "settings.%s.%.32s: unknown "
				    "field", sname, fname);
				goto out;
			}
			if (json_is_null(fv))
				continue;
			nv = field_norm(f, fv, msg, msg_cap, code_out);
			if (nv == NULL)
				goto out;
			if (json_object_set_new(rsec, fname, nv) != 0) {
				err = GH_ERR_NOMEM;
				goto out;
			}
		}
		if (json_object_size(rsec) == 0)
			json_object_del(res, sname);
	}
	*out = res;
	res = NULL;
	err = GH_OK;
out:
	json_decref(res);
	return err;
}

gh_err
gh_policy_settings_merge(json_t *base, json_t *patch, json_t **out)
{
	const char *sname, *fname;
	json_t *res, *sec, *rsec, *fv;

	*out = NULL;
	if (!json_is_object(patch))
		return GH_ERR_INVALID;
	res = json_deep_copy(json_is_object(base) ? base : NULL);
	if (res == NULL && (res = json_object()) == NULL)
		return GH_ERR_NOMEM;
	json_object_foreach(patch, sname, sec) {
		if (!json_is_object(sec)) {
			/* null removes the section; anything else is left
			 * for validation to refuse. */
			if (json_is_null(sec))
				json_object_del(res, sname);
			else
				json_object_set(res, sname, sec);
			continue;
		}
		rsec = json_object_get(res, sname);
		if (!json_is_object(rsec)) {
			rsec = json_object();
			json_object_set_new(res, sname, rsec);
		}
		json_object_foreach(sec, fname, fv) {
			if (json_is_null(fv))
				json_object_del(rsec, fname);
			else
				json_object_set(rsec, fname, fv);
		}
	}
	*out = res;
	return GH_OK;
}

static json_t *
get2(json_t *s, const char *section, const char *name)
{
	return json_object_get(json_object_get(s, section), name);
}

gh_err
gh_policy_eff_read(json_t *settings, struct gh_policy_eff *e)
{
	static const char *const pwf[5] = { "min_length", "min_classes",
		"min_score", "reject_common", "reject_context" };
	json_t *v, *x;
	size_t i;

	memset(e, 0, sizeof *e);
	e->mfa_required = -1;
	gh_auth_pw_policy_default(&e->pw);
	if ((v = get2(settings, "network", "allowed_cidrs")) != NULL) {
		if (!json_is_array(v) || json_array_size(v) > GH_POLICY_LIST_MAX)
			return GH_ERR_INVALID;
		e->has_cidrs = true;
		json_array_foreach(v, i, x)
			if (gh_policy_cidr_parse(json_string_value(x),
			    &e->cidrs[e->n_cidrs++]) != GH_OK)
				return GH_ERR_INVALID;
	}
	if ((v = get2(settings, "network", "allowed_countries")) != NULL) {
		if (!json_is_array(v) || json_array_size(v) > GH_POLICY_LIST_MAX)
			return GH_ERR_INVALID;
		e->has_countries = true;
		json_array_foreach(v, i, x) {
			if (!json_is_string(x) ||
			    strlen(json_string_value(x)) != 2)
				return GH_ERR_INVALID;
			memcpy(e->countries[e->n_countries++],
			    json_string_value(x), 3);
		}
	}
	if ((v = get2(settings, "mfa", "required")) != NULL)
		e->mfa_required = json_is_true(v);
	if ((v = get2(settings, "mfa", "methods")) != NULL) {
		e->has_methods = true;
		json_array_foreach(v, i, x) {
			switch (method_index(json_string_value(x) ?
			    json_string_value(x) : "")) {
			case 0: e->allow_totp = true; break;
			case 1: e->allow_webauthn = true; break;
			case 2: e->allow_recovery = true; break;
			case 3: e->allow_approval = true; break;
			default: return GH_ERR_INVALID;
			}
		}
	}
	e->reauth_interval_s = json_integer_value(get2(settings, "mfa",
	    "reauth_interval_s"));
	e->lifetime_s = json_integer_value(get2(settings, "session",
	    "lifetime_s"));
	e->idle_timeout_s = json_integer_value(get2(settings, "session",
	    "idle_timeout_s"));
	e->max_concurrent = json_integer_value(get2(settings, "session",
	    "max_concurrent"));
	for (i = 0; i < 5; i++) {
		v = get2(settings, "password", pwf[i]);
		if (v == NULL)
			continue;
		e->has_pw[i] = true;
		switch (i) {
		case 0: e->pw.min_length = (int)json_integer_value(v); break;
		case 1: e->pw.min_classes = (int)json_integer_value(v); break;
		case 2: e->pw.min_score = (int)json_integer_value(v); break;
		case 3: e->pw.reject_common = json_is_true(v); break;
		case 4: e->pw.reject_context = json_is_true(v); break;
		}
	}
	return GH_OK;
}

enum gh_policy_verdict
gh_policy_network_check(const struct gh_policy_eff *e, const char *ip,
    const struct gh_geo *geo)
{
	uint8_t a[16];
	bool ok, parsed;
	char cc[3];
	size_t i;

	parsed = ip != NULL && gh_policy_ip_parse(ip, a) == GH_OK;
	if (e->has_cidrs) {
		ok = false;
		for (i = 0; parsed && i < e->n_cidrs && !ok; i++)
			ok = gh_policy_cidr_match(&e->cidrs[i], a);
		if (!ok)
			return GH_POLICY_IP_BLOCKED;
	}
	if (e->has_countries) {
		/* Unknown country: refused (fail closed). */
		if (!parsed || !gh_geo_country(geo, ip, cc))
			return GH_POLICY_COUNTRY_BLOCKED;
		ok = false;
		for (i = 0; i < e->n_countries && !ok; i++)
			ok = strcmp(e->countries[i], cc) == 0;
		if (!ok)
			return GH_POLICY_COUNTRY_BLOCKED;
	}
	return GH_POLICY_ALLOW;
}

bool
gh_policy_blocks_everywhere(const struct gh_policy_eff *e)
{
	return (e->has_cidrs && e->n_cidrs == 0) ||
	    (e->has_countries && e->n_countries == 0);
}

void
gh_policy_mfa_apply(const struct gh_policy_eff *e, struct gh_mfa_policy *pol)
{
	if (e->mfa_required == 0) {
		pol->required = false;
		pol->n_groups = 0;
	} else if (e->mfa_required == 1 && !pol->required) {
		pol->required = true;
		pol->required_since = 0;	/* no grace window */
	}
	if (e->has_methods) {
		pol->allow_totp = e->allow_totp;
		pol->allow_webauthn = e->allow_webauthn;
		pol->allow_recovery = e->allow_recovery;
		pol->allow_approval = e->allow_approval;
	}
	pol->reauth_interval_s = e->reauth_interval_s;
}

void
gh_policy_pw_apply(const struct gh_policy_eff *e, struct gh_pw_policy *pol)
{
	if (e->has_pw[0])
		pol->min_length = e->pw.min_length;
	if (e->has_pw[1])
		pol->min_classes = e->pw.min_classes;
	if (e->has_pw[2])
		pol->min_score = e->pw.min_score;
	if (e->has_pw[3])
		pol->reject_common = e->pw.reject_common;
	if (e->has_pw[4])
		pol->reject_context = e->pw.reject_context;
}

void
gh_policy_session_apply(const struct gh_policy_eff *e,
    struct gh_session_limits *lim)
{
	if (e->lifetime_s > 0 && e->lifetime_s * 1000 < lim->absolute_ms)
		lim->absolute_ms = e->lifetime_s * 1000;
	if (e->idle_timeout_s > 0 && e->idle_timeout_s * 1000 < lim->idle_ms)
		lim->idle_ms = e->idle_timeout_s * 1000;
}
