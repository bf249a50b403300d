/*
 * scim.c: SCIM 2.0 (RFC 7643/7644) at /o/{org}/scim/v2/: discovery
 * (ServiceProviderConfig, ResourceTypes, Schemas), Users with list (filter,
 * paging), create, replace, PATCH and delete, weak ETags and If-Match, and
 * what Groups (scim_groups.c) shares: responses, authentication, meta and
 * lists. Users map to the org's users (userName, displayName, the
 * primary e-mail, active = state) and custom attributes (externalId, name
 * parts and the enterprise extension; see attr_map), groups to groups.
 *
 * Callers present a SCIM token (scim_tokens.c) or an API token of an
 * active owner or admin as a bearer token; sessions are not accepted.
 * Every write is audited as that token in the transaction of the change.
 *
 * Untrusted input: bodies, filters, paths, ids and headers from
 * provisioning clients (parsed by src/scim, bounded). Secrets: the bearer
 * token (checked by its digest in src/auth, never logged). SCIM passwords
 * are refused, never stored.
 */
#include "api/scim_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SCIM_COUNT_MAX 200	/* largest page */
#define SCIM_SCAN_MAX 5000	/* resources a non-indexed filter may scan */

/* ---- responses --------------------------------------------------------- */

void
scim_respond(struct gh_http_req *req, unsigned status, json_t *body)
{
	char *s = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;

	json_decref(body);
	if (s == NULL) {
		gh_http_respond_error(req, 500, "internal", "JSON encoding");
		return;
	}
	gh_http_respond(req, status, SCIM_CT, s, strlen(s));
	free(s);
}

/* {"schemas": [Error], "status": "400", "scimType": type, "detail": d} */
void
scim_error(struct gh_http_req *req, unsigned status, const char *type,
    const char *fmt, ...)
{
	char detail[300], st[8];
	json_t *body;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	snprintf(st, sizeof st, "%u", status);
	body = json_pack("{s:[s], s:s, s:s}", "schemas", GH_SCIM_SCHEMA_ERROR,
	    "status", st, "detail", detail);
	if (body != NULL && type != NULL)
		json_object_set_new(body, "scimType", json_string(type));
	scim_respond(req, status, body);
}

void
scim_err(struct gh_http_req *req, gh_err err)
{
	switch (err) {
	case GH_ERR_NOTFOUND:
		scim_error(req, 404, NULL, "No such resource.");
		break;
	case GH_ERR_CONFLICT:
		scim_error(req, 409, "uniqueness", "The value is taken.");
		break;
	case GH_ERR_INVALID:
		scim_error(req, 400, "invalidValue",
		    "The request is not valid.");
		break;
	case GH_ERR_DENIED:
		scim_error(req, 503, NULL, "The organisation's keys are "
		    "unavailable.");
		break;
	case GH_ERR_LIMIT:
		scim_error(req, 400, NULL, "A limit was reached: at most %d "
		    "members per group, %d custom attribute definitions.",
		    SCIM_MEMBERS_MAX, GH_ATTR_DEFS_MAX);
		break;
	case GH_ERR_BUSY:
		if (gh_http_resp_header(req, "Retry-After", "1") != GH_OK)
			GH_LOG_WARN(GH_ERR_INTERNAL, "Retry-After not set");
		scim_error(req, 503, NULL, "The database is busy; retry.");
		break;
	default:
		scim_error(req, 500, NULL, "Internal error (request %s).",
		    gh_http_req_id(req));
		break;
	}
}

/* Commits (or rolls back and answers); true when committed. */
bool
scim_finish(struct api_ctx *ctx, gh_err err)
{
	if (err == GH_OK)
		err = gh_db_commit(ctx->db);
	if (err == GH_OK)
		return true;
	gh_db_rollback(ctx->db);
	scim_err(ctx->req, err);
	return false;
}

/* ---- authentication ---------------------------------------------------- */

/* ctx_open, then the bearer token: a SCIM token, or an API token of an
 * active owner or admin. On failure it has answered and closed. */
bool
scim_open(struct gh_app *app, struct gh_http_req *req, struct api_ctx *ctx)
{
	struct gh_scim_token st;
	bool scim_token = false;
	const char *authz;
	gh_err err;

	if (!ctx_open(app, req, ctx))
		return false;
	authz = gh_http_req_header(req, "Authorization");
	if (authz == NULL || strncasecmp(authz, "Bearer ", 7) != 0) {
		err = GH_ERR_DENIED;
	} else if (strncmp(authz + 7, GH_SCIM_TOKEN_PREFIX, 4) == 0) {
		/* A SCIM token stands for no user: it acts as an admin
		 * that may not touch owners (may_change). */
		err = gh_db_begin(ctx->db);
		if (err == GH_OK)
			err = gh_scim_token_check(ctx->db, authz + 7, &st);
		if (err == GH_OK)
			err = gh_db_commit(ctx->db);
		else
			gh_db_rollback(ctx->db);
		if (err != GH_OK)
			goto checked;
		gh_strlcpy(ctx->token.id, st.id, sizeof ctx->token.id);
		gh_strlcpy(ctx->user.role, "admin", sizeof ctx->user.role);
		scim_token = true;
	} else {
		err = gh_auth_api_token_check(ctx->db, authz + 7, &ctx->token);
		if (err == GH_ERR_INVALID)
			err = GH_ERR_DENIED;
	}
	if (err == GH_OK && !scim_token)
		err = gh_identity_user_get(ctx->db, ctx->token.user_id,
		    &ctx->user);
checked:
	if (err == GH_ERR_DENIED) {
		if (gh_http_resp_header(req, "WWW-Authenticate", "Bearer") !=
		    GH_OK)
			GH_LOG_WARN(GH_ERR_INTERNAL, "header not set");
		scim_error(req, 401, NULL, "A valid bearer token is required.");
		goto fail;
	}
	if (err != GH_OK) {
		scim_err(req, err);
		goto fail;
	}
	if (strcmp(ctx->user.role, "owner") != 0 &&
	    strcmp(ctx->user.role, "admin") != 0) {
		scim_error(req, 403, NULL, "The token's user is not an "
		    "organisation owner or admin.");
		goto fail;
	}
	ctx->actor.type = "api_token";
	ctx->actor.id = ctx->token.id;
	ctx->authed = true;
	return true;
fail:
	ctx_close(ctx);
	return false;
}

/* The JSON body (application/json or application/scim+json). */
json_t *
scim_body(struct gh_http_req *req)
{
	char msg[200];
	json_t *b;

	if (gh_http_req_json_alt(req, SCIM_CT, &b, msg, sizeof msg) != GH_OK) {
		scim_error(req, 400, "invalidSyntax", "%s", msg);
		return NULL;
	}
	return b;
}

/* ---- meta and versions ------------------------------------------------- */

void
scim_location(struct api_ctx *ctx, const char *kind, const char *id,
    char out[static 512])
{
	snprintf(out, 512, "/o/%s/scim/v2/%s/%s", ctx->org.slug, kind, id);
}

/* Adds meta to r: the version is a digest of everything else, so any
 * change to what a client sees changes it. */
gh_err
scim_add_meta(struct api_ctx *ctx, json_t *r, const char *type, const char *kind,
    const char *id, int64_t created, int64_t updated)
{
	uint8_t md[GH_SHA256_LEN];
	char hex[2 * GH_SHA256_LEN + 1], ver[2 * GH_SHA256_LEN + 8];
	char loc[512], c[25], u[25];
	char *s;

	s = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
	if (s == NULL)
		return GH_ERR_NOMEM;
	gh_sha256(s, strlen(s), md);
	free(s);
	gh_hex_encode(md, 10, hex);
	snprintf(ver, sizeof ver, "W/\"%s\"", hex);
	scim_location(ctx, kind, id, loc);
	gh_time_rfc3339(created, c);
	gh_time_rfc3339(updated, u);
	if (json_object_set_new(r, "meta", json_pack("{s:s, s:s, s:s, s:s, "
	    "s:s}", "resourceType", type, "created", c, "lastModified", u,
	    "location", loc, "version", ver)) != 0)
		return GH_ERR_NOMEM;
	return GH_OK;
}

static const char *
version_of(json_t *r)
{
	return json_string_value(json_object_get(json_object_get(r, "meta"),
	    "version"));
}

/* If-Match: true when absent, "*" or naming the current version;
 * otherwise answers 412 and returns false. */
bool
scim_if_match(struct api_ctx *ctx, json_t *current)
{
	const char *im = gh_http_req_header(ctx->req, "If-Match");
	const char *v = version_of(current);

	if (im == NULL || strcmp(im, "*") == 0 ||
	    (v != NULL && strstr(im, v + 2) != NULL))
		return true;
	scim_error(ctx->req, 412, NULL, "preconditionFailed: the resource "
	    "changed; its version is now %s.", v ? v : "unknown");
	return false;
}

/* Answers status with r, its ETag and (for 201) Location. */
void
scim_respond_resource(struct api_ctx *ctx, unsigned status, json_t *r)
{
	json_t *meta = json_object_get(r, "meta");
	const char *v = version_of(r);
	const char *loc = json_string_value(json_object_get(meta, "location"));

	if ((v != NULL && gh_http_resp_header(ctx->req, "ETag", v) != GH_OK) ||
	    (status == 201 && loc != NULL &&
	    gh_http_resp_header(ctx->req, "Location", loc) != GH_OK))
		GH_LOG_WARN(GH_ERR_INTERNAL, "response header not set");
	scim_respond(ctx->req, status, r);
}

/* ---- users: mapping ---------------------------------------------------- */

/*
 * SCIM attributes kept as custom user attributes. A definition that does
 * not exist is created (type string, classification internal, audited as
 * attribute.create) the first time a value arrives; an admin may define
 * it beforehand with another type or classification.
 */
static const struct {
	const char *attr;	/* custom attribute name */
	bool enterprise;	/* in the enterprise extension object */
	const char *parent;	/* complex attribute holding it, or NULL */
	const char *name;	/* SCIM (sub-)attribute */
} attr_map[] = {
	{ "scim_external_id", false, NULL, "externalId" },
	{ "scim_given_name", false, "name", "givenName" },
	{ "scim_family_name", false, "name", "familyName" },
	{ "employee_number", true, NULL, "employeeNumber" },
	{ "department", true, NULL, "department" },
	{ "cost_center", true, NULL, "costCenter" },
	{ "organization", true, NULL, "organization" },
	{ "division", true, NULL, "division" },
	{ "manager_id", true, "manager", "value" },
};
#define ATTR_MAP_LEN (sizeof attr_map / sizeof attr_map[0])

/* The object holding attr_map[i] in r, made when make is true. */
static json_t *
map_holder(json_t *r, size_t i, bool make)
{
	json_t *h = r, *c;

	if (attr_map[i].enterprise) {
		c = gh_scim_get_ci(h, GH_SCIM_SCHEMA_ENTERPRISE);
		if (c == NULL && make) {
			c = json_object();
			json_object_set_new(h, GH_SCIM_SCHEMA_ENTERPRISE, c);
		}
		h = c;
	}
	if (h != NULL && attr_map[i].parent != NULL) {
		c = gh_scim_get_ci(h, attr_map[i].parent);
		if (c == NULL && make) {
			c = json_object();
			json_object_set_new(h, attr_map[i].parent, c);
		}
		h = json_is_object(c) ? c : NULL;
	}
	return h;
}

static gh_err
user_resource(struct api_ctx *ctx, const struct gh_user *u, json_t **out)
{
	json_t *r, *attrs = NULL, *v, *ent;
	gh_err err;

	*out = NULL;
	err = gh_identity_attr_values_json(ctx->db, ctx->app->kms, u->id,
	    GH_ATTR_SENSITIVE, &attrs);
	if (err != GH_OK)
		return err;
	r = json_pack("{s:[s], s:s, s:s, s:s, s:b, s:{s:s}}", "schemas",
	    GH_SCIM_SCHEMA_USER, "id", u->id, "userName", u->username,
	    "displayName", u->display_name, "active",
	    strcmp(u->state, "active") == 0, "name", "formatted",
	    u->display_name);
	if (r == NULL) {
		json_decref(attrs);
		return GH_ERR_NOMEM;
	}
	if (u->email[0] != '\0')
		json_object_set_new(r, "emails", json_pack("[{s:s, s:s, s:b}]",
		    "value", u->email, "type", "work", "primary", 1));
	for (size_t i = 0; i < ATTR_MAP_LEN; i++) {
		v = json_object_get(attrs, attr_map[i].attr);
		if (v == NULL || json_is_null(v))
			continue;
		json_object_set(map_holder(r, i, true), attr_map[i].name, v);
	}
	json_decref(attrs);
	if ((ent = json_object_get(r, GH_SCIM_SCHEMA_ENTERPRISE)) != NULL &&
	    json_object_size(ent) > 0)
		json_array_append_new(json_object_get(r, "schemas"),
		    json_string(GH_SCIM_SCHEMA_ENTERPRISE));
	err = scim_add_meta(ctx, r, "User", "Users", u->id, u->created_at,
	    u->updated_at);
	if (err != GH_OK) {
		json_decref(r);
		return err;
	}
	*out = r;
	return GH_OK;
}

/* A user resource read from a client, validated. Strings point into the
 * resource JSON. */
struct scim_user {
	const char *username, *display_name, *email;
	bool active;
	json_t *attrs;		/* owned: {attr: string or null} */
};

static bool
str_or_null(json_t *v)
{
	return v == NULL || json_is_null(v) || json_is_string(v);
}

/* Reads an attribute value: Entra ID sends booleans as "True"/"False". */
static bool
read_bool(json_t *v, bool def, bool *out)
{
	const char *s = json_string_value(v);

	*out = def;
	if (v == NULL || json_is_null(v))
		return true;
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return true;
	}
	if (s != NULL && (strcasecmp(s, "true") == 0 ||
	    strcasecmp(s, "false") == 0)) {
		*out = strcasecmp(s, "true") == 0;
		return true;
	}
	return false;
}

/* The primary address, else the work one, else the first. */
static const char *
pick_email(json_t *emails)
{
	json_t *e, *best = NULL;
	bool primary, work = false;
	size_t i;

	json_array_foreach(emails, i, e) {
		const char *type = json_string_value(gh_scim_get_ci(e,
		    "type"));

		if (read_bool(gh_scim_get_ci(e, "primary"), false, &primary) &&
		    primary) {
			best = e;
			break;
		}
		if (best == NULL || (type && strcasecmp(type, "work") == 0 &&
		    !work)) {
			best = e;
			work = type && strcasecmp(type, "work") == 0;
		}
	}
	return json_string_value(gh_scim_get_ci(best, "value"));
}

static gh_err
user_parse(json_t *r, struct scim_user *su, char *msg, size_t cap)
{
	json_t *v, *name = gh_scim_get_ci(r, "name"), *emails, *h;
	memset(su, 0, sizeof su[0]);
#define BAD(...) do { snprintf(msg, cap, __VA_ARGS__); return GH_ERR_INVALID; \
	} while (0)
	if (gh_scim_get_ci(r, "password") != NULL)
		BAD("password: not accepted over SCIM");
	su->username = json_string_value(gh_scim_get_ci(r, "userName"));
	if (su->username == NULL || !gh_identity_username_valid(su->username))
		BAD("userName: required, 1-%d characters of [A-Za-z0-9._@+-]",
		    GH_USERNAME_MAX);
	v = gh_scim_get_ci(r, "displayName");
	if (!str_or_null(v) || (name != NULL && !json_is_object(name)))
		BAD("displayName: must be a string");
	su->display_name = json_string_value(v);
	if (su->display_name == NULL)
		su->display_name = json_string_value(gh_scim_get_ci(name,
		    "formatted"));
	if (su->display_name == NULL)
		su->display_name = json_string_value(gh_scim_get_ci(name,
		    "givenName"));
	if (su->display_name == NULL)
		su->display_name = "";
	if (!gh_identity_display_name_valid(su->display_name))
		BAD("displayName: at most %d bytes of text",
		    GH_DISPLAY_NAME_MAX);
	if (!read_bool(gh_scim_get_ci(r, "active"), true, &su->active))
		BAD("active: must be true or false");
	emails = gh_scim_get_ci(r, "emails");
	if (emails != NULL && !json_is_array(emails) && !json_is_null(emails))
		BAD("emails: must be an array");
	su->email = pick_email(emails);
	if (su->email != NULL && !gh_identity_email_valid(su->email))
		BAD("emails: not an e-mail address");
	su->attrs = json_object();
	if (su->attrs == NULL)
		return GH_ERR_NOMEM;
	for (size_t i = 0; i < ATTR_MAP_LEN; i++) {
		h = map_holder(r, i, false);
		v = gh_scim_get_ci(h, attr_map[i].name);
		if (v != NULL && attr_map[i].parent != NULL && h == NULL)
			v = NULL;
		if (!str_or_null(v)) {
			json_decref(su->attrs);
			su->attrs = NULL;
			BAD("%s: must be a string", attr_map[i].name);
		}
		json_object_set_new(su->attrs, attr_map[i].attr,
		    v && json_string_length(v) > 0 ? json_incref(v) :
		    json_null());
	}
	/* The enterprise manager may come as a bare id. */
	h = gh_scim_get_ci(gh_scim_get_ci(r, GH_SCIM_SCHEMA_ENTERPRISE),
	    "manager");
	if (json_is_string(h))
		json_object_set(su->attrs, "manager_id", h);
#undef BAD
	return GH_OK;
}

/* Defines the mapped attributes that get a value and are not defined yet,
 * audited; drops null values of undefined ones. In the open transaction. */
static gh_err
ensure_defs(struct api_ctx *ctx, json_t *attrs)
{
	struct gh_attr_defs defs = { 0 };
	struct gh_attr_def d;
	const char *k;
	char msg[200];
	json_t *v, *tmp, *body, *changes;
	gh_err err;

	err = gh_identity_attr_def_list(ctx->db, &defs);
	if (err != GH_OK)
		return err;
	json_object_foreach_safe(attrs, tmp, k, v) {
		if (gh_identity_attr_defs_find(&defs, k) != NULL)
			continue;
		if (json_is_null(v)) {
			json_object_del(attrs, k);
			continue;
		}
		memset(&d, 0, sizeof d);
		body = json_pack("{s:s, s:s}", "name", k, "type", "string");
		err = body ? gh_identity_attr_def_apply(body, true, &d, msg,
		    sizeof msg) : GH_ERR_NOMEM;
		json_decref(body);
		if (err == GH_OK)
			err = gh_identity_attr_def_insert(ctx->db, &d);
		if (err == GH_OK) {
			changes = json_pack("{s:s, s:s, s:s}", "name", k,
			    "type", "string", "reason", "scim");
			err = gh_audit_append(ctx->db, &ctx->actor,
			    "attribute.create", "attribute", d.id, changes);
			json_decref(changes);
		}
		gh_identity_attr_def_clear(&d);
		if (err != GH_OK)
			break;
	}
	gh_identity_attr_defs_free(&defs);
	return err;
}

/* Writes su's attributes for user_id; on a refused value answers 400 or
 * 409 and returns GH_ERR_INVALID after rolling back. */
static gh_err
attrs_put(struct api_ctx *ctx, const char *user_id, json_t *attrs,
    bool creating, json_t *changes)
{
	struct gh_attr_defs defs = { 0 };
	char msg[256] = "";
	gh_err err;

	err = ensure_defs(ctx, attrs);
	if (err == GH_OK)
		err = gh_identity_attr_def_list(ctx->db, &defs);
	if (err == GH_OK)
		err = gh_identity_attr_values_set(ctx->db, ctx->app->kms, &defs,
		    user_id, attrs, creating, changes, msg, sizeof msg);
	gh_identity_attr_defs_free(&defs);
	if (err == GH_ERR_INVALID || err == GH_ERR_CONFLICT) {
		gh_db_rollback(ctx->db);
		scim_error(ctx->req, err == GH_ERR_INVALID ? 400 : 409,
		    err == GH_ERR_INVALID ? "invalidValue" : "uniqueness",
		    "%s", msg);
		return GH_ERR_INVALID;
	}
	return err;
}

/* Loads {id} as a user in the open transaction; answers 404. */
static bool
target_user(struct api_ctx *ctx, struct gh_user *u)
{
	gh_err err = gh_identity_user_get(ctx->db,
	    gh_http_req_param(ctx->req, "id"), u);

	if (err != GH_OK) {
		gh_db_rollback(ctx->db);
		scim_err(ctx->req, err);
		return false;
	}
	return true;
}

/* Owners are managed only by owners, and the last active owner stays. */
static bool
may_change(struct api_ctx *ctx, const struct gh_user *u, bool removing)
{
	int64_t others = 0;
	gh_err err;

	if (strcmp(u->role, "owner") != 0)
		return true;
	if (strcmp(ctx->user.role, "owner") != 0) {
		gh_db_rollback(ctx->db);
		scim_error(ctx->req, 403, NULL, "Only an owner's token may "
		    "change an owner.");
		return false;
	}
	if (!removing || strcmp(u->state, "active") != 0)
		return true;
	err = gh_identity_owner_count(ctx->db, u->id, &others);
	if (err != GH_OK || others == 0) {
		gh_db_rollback(ctx->db);
		if (err != GH_OK)
			scim_err(ctx->req, err);
		else
			scim_error(ctx->req, 409, "mutability", "The "
			    "organisation must keep an active owner.");
		return false;
	}
	return true;
}

void
scim_diff_str(json_t *changes, const char *field, const char *from, const char *to)
{
	if (strcmp(from, to) != 0)
		json_object_set_new(changes, field, json_pack("{s:s, s:s}",
		    "from", from, "to", to));
}

/*
 * Writes su over u (in the open transaction), audited as user.update with
 * "via": "scim"; disabling ends the user's sessions, remembered devices
 * and API tokens as the admin API does. Commits and answers 200.
 */
static void
user_replace(struct api_ctx *ctx, struct gh_user *u, struct scim_user *su)
{
	struct gh_user before = *u;
	json_t *changes = json_object(), *r = NULL;
	int64_t n = 0;
	bool disable;
	gh_err err = GH_OK;

	if (strcasecmp(su->username, u->username) != 0) {
		gh_db_rollback(ctx->db);
		scim_error(ctx->req, 400, "mutability", "userName: cannot be "
		    "changed");
		goto out;
	}
	gh_strlcpy(u->email, su->email ? su->email : "", sizeof u->email);
	gh_strlcpy(u->display_name, su->display_name, sizeof u->display_name);
	gh_strlcpy(u->state, su->active ? "active" : "disabled",
	    sizeof u->state);
	disable = strcmp(before.state, "active") == 0 && !su->active;
	if (!may_change(ctx, &before, disable))
		goto out;
	scim_diff_str(changes, "email", before.email, u->email);
	scim_diff_str(changes, "display_name", before.display_name,
	    u->display_name);
	scim_diff_str(changes, "state", before.state, u->state);
	err = attrs_put(ctx, u->id, su->attrs, false, changes);
	if (err == GH_ERR_INVALID)
		goto out;
	if (err == GH_OK && json_object_size(changes) > 0) {
		err = gh_identity_user_update(ctx->db, u);
		if (err == GH_OK && disable) {
			ctx->sessions_ended = true;
			err = gh_auth_session_revoke_user(ctx->db, u->id, &n);
		}
		if (err == GH_OK && n > 0)
			json_object_set_new(changes, "sessions_revoked",
			    json_integer(n));
		if (err == GH_OK && disable)
			err = mfa_devices_revoke_all(ctx, u->id,
			    "user_disabled");
		n = 0;
		if (err == GH_OK && disable)
			err = gh_auth_api_token_revoke_user(ctx->db, u->id, &n);
		if (err == GH_OK && n > 0)
			json_object_set_new(changes, "api_tokens_revoked",
			    json_integer(n));
		json_object_set_new(changes, "via", json_string("scim"));
		if (err == GH_OK)
			err = gh_audit_append(ctx->db, &ctx->actor, disable ?
			    "user.disable" : "user.update", "user", u->id,
			    changes);
	}
	if (err == GH_OK)
		err = user_resource(ctx, u, &r);
	if (scim_finish(ctx, err)) {
		scim_respond_resource(ctx, 200, r);
		r = NULL;
	}
out:
	json_decref(r);
	json_decref(changes);
	gh_wipe(&before, sizeof before);
}

/* ---- users: routes ----------------------------------------------------- */

static void
h_user_get(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	struct gh_user u;
	json_t *r = NULL;
	gh_err err;

	if (!scim_open(app, req, &ctx))
		return;
	err = gh_identity_user_get(ctx.db, gh_http_req_param(req, "id"), &u);
	if (err == GH_OK)
		err = user_resource(&ctx, &u, &r);
	if (err != GH_OK)
		scim_err(req, err);
	else
		scim_respond_resource(&ctx, 200, r);
	gh_wipe(&u, sizeof u);
	ctx_close(&ctx);
}

static void
h_users_create(void *app, struct gh_http_req *req)
{
	struct scim_user su = { 0 };
	struct api_ctx ctx;
	struct gh_user u;
	json_t *body = NULL, *changes = NULL, *r = NULL;
	char msg[256];
	gh_err err;

	memset(&u, 0, sizeof u);
	if (!scim_open(app, req, &ctx))
		return;
	if ((body = scim_body(req)) == NULL)
		goto out;
	if ((err = user_parse(body, &su, msg, sizeof msg)) != GH_OK) {
		if (err == GH_ERR_INVALID)
			scim_error(req, 400, "invalidValue", "%s", msg);
		else
			scim_err(req, err);
		goto out;
	}
	if ((err = gh_identity_user_init(&u, su.username)) != GH_OK) {
		scim_err(req, err);
		goto out;
	}
	gh_strlcpy(u.email, su.email ? su.email : "", sizeof u.email);
	gh_strlcpy(u.display_name, su.display_name, sizeof u.display_name);
	gh_strlcpy(u.state, su.active ? "active" : "disabled", sizeof u.state);
	changes = json_pack("{s:s, s:s, s:s, s:s, s:s}", "username",
	    u.username, "email", u.email, "display_name", u.display_name,
	    "state", u.state, "via", "scim");
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_identity_user_insert(ctx.db, &u);
	if (err == GH_ERR_CONFLICT) {
		gh_db_rollback(ctx.db);
		scim_error(req, 409, "uniqueness", "userName: %s is taken",
		    u.username);
		goto out;
	}
	if (err == GH_OK) {
		err = attrs_put(&ctx, u.id, su.attrs, true, changes);
		if (err == GH_ERR_INVALID)
			goto out;
	}
	if (err == GH_OK)
		err = gh_audit_append(ctx.db, &ctx.actor, "user.create", "user",
		    u.id, changes);
	if (err == GH_OK)
		err = user_resource(&ctx, &u, &r);
	if (scim_finish(&ctx, err)) {
		scim_respond_resource(&ctx, 201, r);
		r = NULL;
	}
out:
	json_decref(r);
	json_decref(changes);
	json_decref(su.attrs);
	json_decref(body);
	ctx_close(&ctx);
}

/* PUT (patch false) or PATCH (patch true) of /Users/{id}. */
static void
user_write(void *app, struct gh_http_req *req, bool patch)
{
	struct scim_user su = { 0 };
	struct api_ctx ctx;
	struct gh_user u;
	json_t *body = NULL, *cur = NULL, *next;
	const char *type = NULL;
	char msg[256];
	gh_err err;

	memset(&u, 0, sizeof u);
	if (!scim_open(app, req, &ctx))
		return;
	if ((body = scim_body(req)) == NULL)
		goto out;
	if ((err = gh_db_begin(ctx.db)) != GH_OK) {
		scim_finish(&ctx, err);
		goto out;
	}
	if (!target_user(&ctx, &u))
		goto out;
	if ((err = user_resource(&ctx, &u, &cur)) != GH_OK) {
		scim_finish(&ctx, err);
		goto out;
	}
	if (!scim_if_match(&ctx, cur)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	next = body;
	if (patch) {
		err = gh_scim_patch_apply(cur, gh_scim_get_ci(body,
		    "Operations"), msg, sizeof msg, &type);
		if (err == GH_ERR_INVALID || err == GH_ERR_LIMIT) {
			gh_db_rollback(ctx.db);
			scim_error(req, 400, type, "%s", msg);
			goto out;
		}
		next = cur;
	}
	if (err == GH_OK)
		err = user_parse(next, &su, msg, sizeof msg);
	if (err != GH_OK) {
		gh_db_rollback(ctx.db);
		if (err == GH_ERR_INVALID)
			scim_error(req, 400, "invalidValue", "%s", msg);
		else
			scim_err(req, err);
		goto out;
	}
	user_replace(&ctx, &u, &su);
out:
	json_decref(su.attrs);
	json_decref(cur);
	json_decref(body);
	gh_wipe(&u, sizeof u);
	ctx_close(&ctx);
}

static void
h_user_put(void *app, struct gh_http_req *req)
{
	user_write(app, req, false);
}

static void
h_user_patch(void *app, struct gh_http_req *req)
{
	user_write(app, req, true);
}

static void
h_user_delete(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	struct gh_user u;
	json_t *cur = NULL, *changes;
	gh_err err;

	if (!scim_open(app, req, &ctx))
		return;
	if ((err = gh_db_begin(ctx.db)) != GH_OK) {
		scim_finish(&ctx, err);
		goto out;
	}
	if (!target_user(&ctx, &u))
		goto out;
	if ((err = user_resource(&ctx, &u, &cur)) != GH_OK) {
		scim_finish(&ctx, err);
		goto out;
	}
	if (!scim_if_match(&ctx, cur)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	if (!may_change(&ctx, &u, true))
		goto out;
	changes = json_pack("{s:s, s:s}", "username", u.username, "via",
	    "scim");
	/* Revoked first so that relying parties hear of it (back-channel
	 * logout). */
	ctx.sessions_ended = true;
	err = gh_auth_session_revoke_user(ctx.db, u.id, NULL);
	if (err == GH_OK)
		err = gh_identity_user_delete(ctx.db, u.id);
	if (err == GH_OK)
		err = gh_audit_append(ctx.db, &ctx.actor, "user.delete", "user",
		    u.id, changes);
	json_decref(changes);
	if (scim_finish(&ctx, err))
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	json_decref(cur);
	gh_wipe(&u, sizeof u);
	ctx_close(&ctx);
}

/* ---- lists ------------------------------------------------------------- */

static bool
query_num(struct gh_http_req *req, const char *name, int64_t def,
    int64_t *out)
{
	const char *s = gh_http_req_query(req, name);
	char *end;
	long long v;

	*out = def;
	if (s == NULL)
		return true;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (s[0] == '\0' || *end != '\0' || errno != 0) {
		scim_error(req, 400, "invalidValue", "%s: must be an integer",
		    name);
		return false;
	}
	*out = v;
	return true;
}

/* Reads filter, startIndex and count (RFC 7644 section 3.4.2.4: below 1
 * means 1, a negative count means 0; count is capped). */
bool
scim_page_read(struct gh_http_req *req, struct scim_page *pg)
{
	const char *f = gh_http_req_query(req, "filter");
	const char *ex = gh_http_req_query(req, "excludedAttributes");
	char msg[200];
	gh_err err;

	memset(pg, 0, sizeof *pg);
	if (!query_num(req, "startIndex", 1, &pg->start) ||
	    !query_num(req, "count", 100, &pg->count))
		return false;
	if (pg->start < 1)
		pg->start = 1;
	if (pg->count < 0)
		pg->count = 0;
	if (pg->count > SCIM_COUNT_MAX)
		pg->count = SCIM_COUNT_MAX;
	pg->no_members = ex != NULL && strcasestr(ex, "members") != NULL;
	if (f == NULL)
		return true;
	err = gh_scim_filter_parse(f, &pg->filter, msg, sizeof msg);
	if (err != GH_OK) {
		scim_error(req, 400, err == GH_ERR_LIMIT ? "tooMany" :
		    "invalidFilter", "filter: %s", msg);
		return false;
	}
	return true;
}

/* Appends the ids of table (oldest first) to ids: at most limit from
 * offset; *total_out gets the row count. */
static gh_err
ids_page(struct gh_db *db, const char *table, int64_t offset, int64_t limit,
    json_t *ids, int64_t *total_out)
{
	char sql[128];
	struct gh_stmt *st = NULL;
	bool row;
	gh_err err;

	snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
	err = gh_db_prepare(db, sql, &st);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK)
		*total_out = row ? gh_stmt_int(st, 0) : 0;
	gh_stmt_free(st);
	st = NULL;
	snprintf(sql, sizeof sql, "SELECT id FROM %s ORDER BY created_at, id "
	    "LIMIT ? OFFSET ?", table);
	if (err == GH_OK)
		err = gh_db_prepare(db, sql, &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "ii", limit, offset);
	while (err == GH_OK && (err = gh_stmt_step(st, &row)) == GH_OK && row)
		if (json_array_append_new(ids, json_string(gh_stmt_text(st,
		    0))) != 0)
			err = GH_ERR_NOMEM;
	gh_stmt_free(st);
	return err;
}

static void
respond_list(struct api_ctx *ctx, const struct scim_page *pg, json_t *items,
    int64_t total)
{
	scim_respond(ctx->req, 200, json_pack("{s:[s], s:I, s:I, s:I, s:O}",
	    "schemas", GH_SCIM_SCHEMA_LIST, "totalResults", (json_int_t)total,
	    "startIndex", (json_int_t)pg->start, "itemsPerPage",
	    (json_int_t)json_array_size(items), "Resources", items));
}

/*
 * The list: without a filter a page straight from the table; with one,
 * the fast path by id (fast, may be NULL: "" when the filter's value
 * matches nothing) or a scan of at most SCIM_SCAN_MAX resources filtered
 * in memory.
 */
void
scim_list(struct api_ctx *ctx, const struct scim_page *pg, const char *table,
    scim_resource_fn fn, const char *fast)
{
	json_t *ids = json_array(), *items = json_array(), *r;
	int64_t total = 0, matched = 0;
	size_t i;
	json_t *id;
	gh_err err = ids && items ? GH_OK : GH_ERR_NOMEM;

	if (err == GH_OK && pg->filter == NULL)
		err = ids_page(ctx->db, table, pg->start - 1, pg->count, ids,
		    &total);
	else if (err == GH_OK && fast != NULL && fast[0] != '\0')
		err = json_array_append_new(ids, json_string(fast)) ?
		    GH_ERR_NOMEM : GH_OK;
	else if (err == GH_OK && fast == NULL) {
		err = ids_page(ctx->db, table, 0, SCIM_SCAN_MAX + 1, ids,
		    &total);
		if (err == GH_OK && total > SCIM_SCAN_MAX) {
			scim_error(ctx->req, 400, "tooMany", "This filter "
			    "would scan more than %d resources; filter on an "
			    "indexed attribute (see the docs).",
			    SCIM_SCAN_MAX);
			goto out;
		}
	}
	json_array_foreach(ids, i, id) {
		if (err != GH_OK)
			break;
		err = fn(ctx, json_string_value(id), !pg->no_members, &r);
		if (err != GH_OK)
			break;
		if (pg->filter != NULL) {
			if (!gh_scim_filter_match(pg->filter, r)) {
				json_decref(r);
				continue;
			}
			matched++;
			if (matched < pg->start ||
			    (int64_t)json_array_size(items) >= pg->count) {
				json_decref(r);
				continue;
			}
		}
		if (pg->no_members)
			json_object_del(r, "members");
		json_array_append_new(items, r);
	}
	if (pg->filter != NULL)
		total = matched;
	if (err != GH_OK)
		scim_err(ctx->req, err);
	else
		respond_list(ctx, pg, items, total);
out:
	json_decref(ids);
	json_decref(items);
}

static gh_err
user_resource_by_id(struct api_ctx *ctx, const char *id, bool members,
    json_t **out)
{
	struct gh_user u;
	gh_err err;

	(void)members;
	err = gh_identity_user_get(ctx->db, id, &u);
	if (err == GH_OK)
		err = user_resource(ctx, &u, out);
	gh_wipe(&u, sizeof u);
	return err;
}

static void
h_users_list(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	struct scim_page pg;
	struct gh_user u;
	const char *name, *fast = NULL;
	gh_err err;

	if (!scim_open(app, req, &ctx))
		return;
	if (!scim_page_read(req, &pg))
		goto out;
	/* userName eq "x", what the clients ask before each create, is a
	 * lookup by the unique username index. */
	if (pg.filter != NULL && gh_scim_filter_is_eq(pg.filter, "userName",
	    &name)) {
		err = gh_identity_user_find(ctx.db, name, &u);
		if (err != GH_OK && err != GH_ERR_NOTFOUND) {
			scim_err(req, err);
			goto out;
		}
		fast = err == GH_OK ? u.id : "";
	}
	scim_list(&ctx, &pg, "users", user_resource_by_id, fast);
	gh_wipe(&u, sizeof u);
out:
	gh_scim_filter_free(pg.filter);
	ctx_close(&ctx);
}

/* ---- discovery --------------------------------------------------------- */

static void
h_spc(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;

	if (!scim_open(app, req, &ctx))
		return;
	scim_respond(req, 200, json_pack("{s:[s], s:{s:b}, s:{s:b, s:i, "
	    "s:i}, s:{s:b, s:i}, s:{s:b}, s:{s:b}, s:{s:b}, s:[{s:s, s:s, "
	    "s:s, s:b}], s:{s:s}}",
	    "schemas", "urn:ietf:params:scim:schemas:core:2.0:"
	    "ServiceProviderConfig",
	    "patch", "supported", 1,
	    "bulk", "supported", 0, "maxOperations", 0, "maxPayloadSize", 0,
	    "filter", "supported", 1, "maxResults", SCIM_COUNT_MAX,
	    "changePassword", "supported", 0,
	    "sort", "supported", 0,
	    "etag", "supported", 1,
	    "authenticationSchemes", "type", "oauthbearertoken", "name",
	    "Bearer token", "description", "An API token of an organisation "
	    "owner or admin.", "primary", 1,
	    "meta", "resourceType", "ServiceProviderConfig"));
	ctx_close(&ctx);
}

static json_t *
resource_types(void)
{
	return json_pack("[{s:[s], s:s, s:s, s:s, s:s, s:[{s:s, s:b}]}, "
	    "{s:[s], s:s, s:s, s:s, s:s}]",
	    "schemas", "urn:ietf:params:scim:schemas:core:2.0:ResourceType",
	    "id", "User", "name", "User", "endpoint", "/Users", "schema",
	    GH_SCIM_SCHEMA_USER, "schemaExtensions", "schema",
	    GH_SCIM_SCHEMA_ENTERPRISE, "required", 0,
	    "schemas", "urn:ietf:params:scim:schemas:core:2.0:ResourceType",
	    "id", "Group", "name", "Group", "endpoint", "/Groups", "schema",
	    GH_SCIM_SCHEMA_GROUP);
}

static void
h_resource_types(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	json_t *items;

	if (!scim_open(app, req, &ctx))
		return;
	items = resource_types();
	scim_respond(req, 200, json_pack("{s:[s], s:I, s:I, s:I, s:o}",
	    "schemas", GH_SCIM_SCHEMA_LIST, "totalResults",
	    (json_int_t)json_array_size(items), "startIndex", (json_int_t)1,
	    "itemsPerPage", (json_int_t)json_array_size(items), "Resources",
	    items));
	ctx_close(&ctx);
}

static json_t *
attr_def(const char *name, const char *type, bool multi, bool required,
    const char *uniqueness)
{
	return json_pack("{s:s, s:s, s:b, s:b, s:b, s:s, s:s, s:s}", "name",
	    name, "type", type, "multiValued", multi, "required", required,
	    "caseExact", false, "mutability", "readWrite", "returned",
	    "default", "uniqueness", uniqueness);
}

static json_t *
schemas(void)
{
	json_t *user, *group, *ent;

	user = json_pack("{s:s, s:s, s:s, s:[o, o, o, o, o, o]}", "id",
	    GH_SCIM_SCHEMA_USER, "name", "User", "description", "User account",
	    "attributes", attr_def("userName", "string", false, true, "server"),
	    attr_def("displayName", "string", false, false, "none"),
	    attr_def("name", "complex", false, false, "none"),
	    attr_def("emails", "complex", true, false, "none"),
	    attr_def("active", "boolean", false, false, "none"),
	    attr_def("externalId", "string", false, false, "none"));
	group = json_pack("{s:s, s:s, s:s, s:[o, o]}", "id",
	    GH_SCIM_SCHEMA_GROUP, "name", "Group", "description", "Group",
	    "attributes", attr_def("displayName", "string", false, true,
	    "server"), attr_def("members", "complex", true, false, "none"));
	ent = json_pack("{s:s, s:s, s:s, s:[o, o, o, o, o, o]}", "id",
	    GH_SCIM_SCHEMA_ENTERPRISE, "name", "EnterpriseUser",
	    "description", "Enterprise user", "attributes",
	    attr_def("employeeNumber", "string", false, false, "none"),
	    attr_def("costCenter", "string", false, false, "none"),
	    attr_def("organization", "string", false, false, "none"),
	    attr_def("division", "string", false, false, "none"),
	    attr_def("department", "string", false, false, "none"),
	    attr_def("manager", "complex", false, false, "none"));
	return json_pack("[o, o, o]", user, group, ent);
}

static void
h_schemas(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	json_t *items;

	if (!scim_open(app, req, &ctx))
		return;
	items = schemas();
	scim_respond(req, 200, json_pack("{s:[s], s:I, s:I, s:I, s:o}",
	    "schemas", GH_SCIM_SCHEMA_LIST, "totalResults",
	    (json_int_t)json_array_size(items), "startIndex", (json_int_t)1,
	    "itemsPerPage", (json_int_t)json_array_size(items), "Resources",
	    items));
	ctx_close(&ctx);
}

/* One entry of a discovery list by its id; 404 when none. */
static void
discovery_one(void *app, struct gh_http_req *req, json_t *(*all)(void))
{
	const char *id = gh_http_req_param(req, "id");
	struct api_ctx ctx;
	json_t *items, *e, *found = NULL;
	size_t i;

	if (!scim_open(app, req, &ctx))
		return;
	items = all();
	json_array_foreach(items, i, e) {
		if (id != NULL && strcmp(json_string_value(json_object_get(e,
		    "id")), id) == 0)
			found = json_incref(e);
	}
	json_decref(items);
	if (found == NULL)
		scim_error(req, 404, NULL, "No such resource.");
	else
		scim_respond(req, 200, found);
	ctx_close(&ctx);
}

static void
h_resource_type(void *app, struct gh_http_req *req)
{
	discovery_one(app, req, resource_types);
}

static void
h_schema(void *app, struct gh_http_req *req)
{
	discovery_one(app, req, schemas);
}

gh_err
routes_scim(struct gh_http_router *r)
{
	static const struct gh_http_route_def defs[] = {
		{ "GET", "/o/{org}/scim/v2/ServiceProviderConfig", h_spc },
		{ "GET", "/o/{org}/scim/v2/ResourceTypes", h_resource_types },
		{ "GET", "/o/{org}/scim/v2/Schemas", h_schemas },
		{ "GET", "/o/{org}/scim/v2/ResourceTypes/{id}",
		    h_resource_type },
		{ "GET", "/o/{org}/scim/v2/Schemas/{id}", h_schema },
		{ "GET", "/o/{org}/scim/v2/Users", h_users_list },
		{ "POST", "/o/{org}/scim/v2/Users", h_users_create },
		{ "GET", "/o/{org}/scim/v2/Users/{id}", h_user_get },
		{ "PUT", "/o/{org}/scim/v2/Users/{id}", h_user_put },
		{ "PATCH", "/o/{org}/scim/v2/Users/{id}", h_user_patch },
		{ "DELETE", "/o/{org}/scim/v2/Users/{id}", h_user_delete },
	};
	gh_err err;

	err = gh_http_routes(r, defs, sizeof defs / sizeof defs[0]);
	return err == GH_OK ? scim_routes_groups(r) : err;
}
