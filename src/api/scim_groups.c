/*
 * scim_groups.c: SCIM 2.0 Groups at /o/{org}/scim/v2/Groups: list (filter,
 * paging, excludedAttributes=members), create, get, replace, PATCH
 * (applied by src/scim, then the member changes are synced) and delete.
 * Groups map to the org's groups, members to the group's user members;
 * every change is audited as the SCIM caller, in the transaction of the
 * change.
 *
 * Untrusted input: bodies, filters, ids and member lists from provisioning
 * clients (parsed by src/scim, bounded by SCIM_MEMBERS_MAX).
 */
#include "api/scim_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static gh_err
group_members(struct api_ctx *ctx, const char *group_id, json_t *out)
{
	char *cursor = NULL, *next = NULL, loc[512];
	json_t *page = NULL, *m;
	size_t i;
	gh_err err;

	do {
		err = gh_identity_group_member_list(ctx->db, group_id, cursor,
		    GH_USER_LIST_MAX, &page, &next);
		free(cursor);
		cursor = next;
		next = NULL;
		json_array_foreach(page, i, m) {
			const char *id = json_string_value(json_object_get(m,
			    "id"));

			if (err != GH_OK || id == NULL)
				break;
			scim_location(ctx, "Users", id, loc);
			if (json_array_append_new(out, json_pack("{s:s, s:O?, "
			    "s:s, s:s}", "value", id, "display",
			    json_object_get(m, "username"), "type", "User",
			    "$ref", loc)) != 0)
				err = GH_ERR_NOMEM;
		}
		json_decref(page);
		page = NULL;
		if (err == GH_OK && json_array_size(out) > SCIM_MEMBERS_MAX)
			err = GH_ERR_LIMIT;
	} while (err == GH_OK && cursor != NULL);
	free(cursor);
	return err;
}

static gh_err
group_resource(struct api_ctx *ctx, const struct gh_group *g, json_t **out)
{
	char ext[GH_SCIM_EXTERNAL_ID_MAX + 1];
	json_t *r, *members;
	gh_err err;

	*out = NULL;
	r = json_pack("{s:[s], s:s, s:s, s:[]}", "schemas",
	    GH_SCIM_SCHEMA_GROUP, "id", g->id, "displayName", g->name,
	    "members");
	if (r == NULL)
		return GH_ERR_NOMEM;
	members = json_object_get(r, "members");
	err = gh_scim_group_external_id_get(ctx->db, g->id, ext);
	if (err == GH_OK && ext[0] != '\0' &&
	    json_object_set_new(r, "externalId", json_string(ext)) != 0)
		err = GH_ERR_NOMEM;
	if (err == GH_OK)
		err = group_members(ctx, g->id, members);
	if (err == GH_OK)
		err = scim_add_meta(ctx, r, "Group", "Groups", g->id, g->created_at,
		    g->updated_at);
	if (err != GH_OK) {
		json_decref(r);
		return err;
	}
	*out = r;
	return GH_OK;
}

static gh_err
group_resource_by_id(struct api_ctx *ctx, const char *id, bool members,
    json_t **out)
{
	struct gh_group g;
	gh_err err;

	(void)members;
	err = gh_identity_group_get(ctx->db, id, &g);
	if (err == GH_OK)
		err = group_resource(ctx, &g, out);
	return err;
}

/* The member ids of a client's group resource; answers 400 and returns
 * NULL when malformed. */
static json_t *
member_ids(struct api_ctx *ctx, json_t *r)
{
	json_t *m = gh_scim_get_ci(r, "members"), *ids = json_object(), *e;
	const char *id;
	size_t i;

	if (ids == NULL)
		return NULL;
	if (m != NULL && !json_is_null(m) && !json_is_array(m))
		goto bad;
	json_array_foreach(m, i, e) {
		id = json_string_value(gh_scim_get_ci(e, "value"));
		if (id == NULL)
			goto bad;
		json_object_set_new(ids, id, json_true());
	}
	if (json_object_size(ids) > SCIM_MEMBERS_MAX)
		goto bad;
	return ids;
bad:
	json_decref(ids);
	scim_error(ctx->req, 400, "invalidValue", "members: an array of at "
	    "most %d {\"value\": user id}", SCIM_MEMBERS_MAX);
	return NULL;
}

/* The admin API's member event, plus "via": "scim". */
static gh_err
audit_member(struct api_ctx *ctx, const char *action,
    const struct gh_group *g, const char *user_id)
{
	struct gh_user u;
	json_t *changes;
	gh_err err;

	err = gh_identity_user_get(ctx->db, user_id, &u);
	if (err != GH_OK)
		return err;
	changes = json_pack("{s:s, s:s, s:s, s:s}", "group_name", g->name,
	    "user_id", user_id, "username", u.username, "via", "scim");
	err = gh_audit_append(ctx->db, &ctx->actor, action, "group", g->id,
	    changes);
	json_decref(changes);
	gh_wipe(&u, sizeof u);
	return err;
}

/* Makes the members of g exactly want (an object of user ids), audited
 * one by one. GH_ERR_NOTFOUND (after answering 400) for an unknown user. */
static gh_err
members_sync(struct api_ctx *ctx, const struct gh_group *g, json_t *have,
    json_t *want, bool *changed)
{
	const char *id;
	json_t *v, *e;
	size_t i;
	bool added;
	gh_err err = GH_OK;

	json_array_foreach(have, i, e) {
		id = json_string_value(json_object_get(e, "value"));
		if (json_object_get(want, id) != NULL) {
			json_object_del(want, id);
			continue;
		}
		err = gh_identity_group_member_remove(ctx->db, g->id, id);
		if (err == GH_OK)
			err = audit_member(ctx, "group.member.remove", g, id);
		if (err != GH_OK)
			return err;
		*changed = true;
	}
	json_object_foreach(want, id, v) {
		err = gh_identity_group_member_add(ctx->db, g->id, id,
		    gh_now_ms(), &added);
		if (err == GH_ERR_NOTFOUND) {
			gh_db_rollback(ctx->db);
			scim_error(ctx->req, 400, "invalidValue", "members: "
			    "no user %.40s", id);
			return err;
		}
		if (err == GH_OK && added)
			err = audit_member(ctx, "group.member.add", g, id);
		if (err != GH_OK)
			return err;
		*changed = true;
	}
	return GH_OK;
}

/* Validates a displayName; answers 400 and returns NULL when bad. */
static const char *
group_name(struct api_ctx *ctx, json_t *r)
{
	const char *name = json_string_value(gh_scim_get_ci(r, "displayName"));

	if (name == NULL || !gh_identity_group_name_valid(name)) {
		scim_error(ctx->req, 400, "invalidValue", "displayName: "
		    "required, 1-%d characters of [A-Za-z0-9 ._-]",
		    GH_GROUP_NAME_MAX);
		return NULL;
	}
	return name;
}

/* Reads a group's externalId (NULL when absent or null); answers 400 and
 * returns false when it is not a valid string. */
static bool
group_ext(struct api_ctx *ctx, json_t *r, const char **out)
{
	json_t *v = gh_scim_get_ci(r, "externalId");

	*out = json_string_value(v);
	if (v == NULL || json_is_null(v) ||
	    (*out != NULL && (*out)[0] == '\0')) {
		*out = NULL;
		return true;
	}
	if (*out != NULL && gh_scim_external_id_valid(*out))
		return true;
	scim_error(ctx->req, 400, "invalidValue", "externalId: a string of "
	    "1 to %d bytes", GH_SCIM_EXTERNAL_ID_MAX);
	return false;
}

/* Answers a refused group write (the transaction is open). */
static void
group_refused(struct api_ctx *ctx, gh_err err, const char *why)
{
	gh_db_rollback(ctx->db);
	if (err == GH_ERR_CONFLICT && why != NULL &&
	    strcmp(why, "group_exists") == 0)
		scim_error(ctx->req, 409, "uniqueness", "displayName: taken");
	else if (err == GH_ERR_CONFLICT)
		scim_error(ctx->req, 409, NULL, "The group has child groups.");
	else if (err == GH_ERR_INVALID)
		scim_error(ctx->req, 400, "invalidValue", "%s",
		    why ? why : "The group is not valid.");
	else
		scim_err(ctx->req, err);
}

static void
h_groups_create(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	struct gh_group g;
	json_t *body = NULL, *want = NULL, *have = NULL, *r = NULL, *changes;
	const char *name, *why = NULL, *ext;
	bool changed = false;
	gh_err err;

	if (!scim_open(app, req, &ctx))
		return;
	if ((body = scim_body(req)) == NULL ||
	    (name = group_name(&ctx, body)) == NULL ||
	    !group_ext(&ctx, body, &ext) ||
	    (want = member_ids(&ctx, body)) == NULL)
		goto out;
	if ((err = gh_identity_group_init(&g, name)) != GH_OK) {
		scim_err(req, err);
		goto out;
	}
	have = json_array();
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_identity_group_insert(ctx.db, &g, &why);
	if (err == GH_ERR_CONFLICT || err == GH_ERR_INVALID) {
		group_refused(&ctx, err, why);
		goto out;
	}
	changes = json_pack("{s:s, s:s}", "name", g.name, "via", "scim");
	if (err == GH_OK && ext != NULL) {
		err = gh_scim_group_external_id_set(ctx.db, g.id, ext);
		json_object_set_new(changes, "external_id", json_string(ext));
	}
	if (err == GH_OK)
		err = gh_audit_append(ctx.db, &ctx.actor, "group.create",
		    "group", g.id, changes);
	json_decref(changes);
	if (err == GH_OK) {
		err = members_sync(&ctx, &g, have, want, &changed);
		if (err == GH_ERR_NOTFOUND)
			goto out;
	}
	if (err == GH_OK)
		err = group_resource(&ctx, &g, &r);
	if (scim_finish(&ctx, err)) {
		scim_respond_resource(&ctx, 201, r);
		r = NULL;
	}
out:
	json_decref(r);
	json_decref(have);
	json_decref(want);
	json_decref(body);
	ctx_close(&ctx);
}

static void
h_group_get(void *app, struct gh_http_req *req)
{
	const char *ex = gh_http_req_query(req, "excludedAttributes");
	struct api_ctx ctx;
	json_t *r = NULL;
	gh_err err;

	if (!scim_open(app, req, &ctx))
		return;
	err = group_resource_by_id(&ctx, gh_http_req_param(req, "id"), true,
	    &r);
	if (err != GH_OK) {
		scim_err(req, err);
	} else {
		if (ex != NULL && strcasestr(ex, "members") != NULL)
			json_object_del(r, "members");
		scim_respond_resource(&ctx, 200, r);
	}
	ctx_close(&ctx);
}

/* PUT (patch false) or PATCH of /Groups/{id}. */
static void
group_write(void *app, struct gh_http_req *req, bool patch)
{
	struct api_ctx ctx;
	struct gh_group g, before;
	json_t *body = NULL, *cur = NULL, *want = NULL, *r = NULL, *next;
	json_t *changes = NULL, *have = NULL, *cur_ext = NULL;
	const char *type = NULL, *name, *why = NULL, *ext, *old_ext;
	bool changed = false;
	char msg[256];
	gh_err err;

	if (!scim_open(app, req, &ctx))
		return;
	if ((body = scim_body(req)) == NULL)
		goto out;
	if ((err = gh_db_begin(ctx.db)) == GH_OK)
		err = gh_identity_group_get(ctx.db, gh_http_req_param(req,
		    "id"), &g);
	if (err == GH_OK)
		err = group_resource(&ctx, &g, &cur);
	if (err != GH_OK) {
		scim_finish(&ctx, err);
		goto out;
	}
	if (!scim_if_match(&ctx, cur)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	/* The members and externalId as stored, before PATCH changes cur. */
	have = json_deep_copy(json_object_get(cur, "members"));
	cur_ext = json_pack("{s:O?}", "externalId", json_object_get(cur,
	    "externalId"));
	if (have == NULL || cur_ext == NULL) {
		scim_finish(&ctx, GH_ERR_NOMEM);
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
		if (err != GH_OK) {
			scim_finish(&ctx, err);
			goto out;
		}
		next = cur;
	}
	if ((name = group_name(&ctx, next)) == NULL ||
	    !group_ext(&ctx, next, &ext) ||
	    (want = member_ids(&ctx, next)) == NULL) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	before = g;
	changes = json_object();
	if (strcmp(name, g.name) != 0) {
		gh_strlcpy(g.name, name, sizeof g.name);
		scim_diff_str(changes, "name", before.name, g.name);
		changed = true;
	}
	old_ext = json_string_value(json_object_get(cur_ext, "externalId"));
	if (strcmp(old_ext ? old_ext : "", ext ? ext : "") != 0) {
		err = gh_scim_group_external_id_set(ctx.db, g.id, ext);
		scim_diff_str(changes, "external_id", old_ext ? old_ext : "",
		    ext ? ext : "");
		changed = true;
		if (err != GH_OK) {
			scim_finish(&ctx, err);
			goto out;
		}
	}
	err = members_sync(&ctx, &g, have, want, &changed);
	if (err == GH_ERR_NOTFOUND)
		goto out;
	/* The rename, or a bump of updated_at for lastModified. */
	if (err == GH_OK && changed) {
		err = gh_identity_group_update(ctx.db, &g, &why);
		if (err == GH_ERR_CONFLICT || err == GH_ERR_INVALID) {
			group_refused(&ctx, err, why);
			goto out;
		}
	}
	if (err == GH_OK && json_object_size(changes) > 0) {
		json_object_set_new(changes, "via", json_string("scim"));
		err = gh_audit_append(ctx.db, &ctx.actor, "group.update",
		    "group", g.id, changes);
	}
	if (err == GH_OK)
		err = group_resource(&ctx, &g, &r);
	if (scim_finish(&ctx, err)) {
		scim_respond_resource(&ctx, 200, r);
		r = NULL;
	}
out:
	json_decref(cur_ext);
	json_decref(have);
	json_decref(changes);
	json_decref(r);
	json_decref(want);
	json_decref(cur);
	json_decref(body);
	ctx_close(&ctx);
}

static void
h_group_put(void *app, struct gh_http_req *req)
{
	group_write(app, req, false);
}

static void
h_group_patch(void *app, struct gh_http_req *req)
{
	group_write(app, req, true);
}

static void
h_group_delete(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	struct gh_group g;
	json_t *cur = NULL, *changes;
	int64_t n = 0;
	gh_err err;

	if (!scim_open(app, req, &ctx))
		return;
	if ((err = gh_db_begin(ctx.db)) == GH_OK)
		err = gh_identity_group_get(ctx.db, gh_http_req_param(req,
		    "id"), &g);
	if (err == GH_OK)
		err = group_resource(&ctx, &g, &cur);
	if (err != GH_OK) {
		scim_finish(&ctx, err);
		goto out;
	}
	if (!scim_if_match(&ctx, cur)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	err = gh_identity_group_delete(ctx.db, g.id, &n);
	if (err == GH_ERR_CONFLICT) {
		group_refused(&ctx, err, NULL);
		goto out;
	}
	changes = json_pack("{s:s, s:I, s:s}", "name", g.name, "members",
	    (json_int_t)n, "via", "scim");
	if (err == GH_OK)
		err = gh_audit_append(ctx.db, &ctx.actor, "group.delete",
		    "group", g.id, changes);
	json_decref(changes);
	if (scim_finish(&ctx, err))
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	json_decref(cur);
	ctx_close(&ctx);
}

static void
h_groups_list(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	struct scim_page pg;
	struct gh_group g;
	const char *name, *fast = NULL;
	gh_err err;

	if (!scim_open(app, req, &ctx))
		return;
	if (!scim_page_read(req, &pg))
		goto out;
	if (pg.filter != NULL && gh_scim_filter_is_eq(pg.filter,
	    "displayName", &name)) {
		err = gh_identity_group_find(ctx.db, name, &g);
		if (err != GH_OK && err != GH_ERR_NOTFOUND) {
			scim_err(req, err);
			goto out;
		}
		fast = err == GH_OK ? g.id : "";
	}
	scim_list(&ctx, &pg, "groups", group_resource_by_id, fast);
out:
	gh_scim_filter_free(pg.filter);
	ctx_close(&ctx);
}

gh_err
scim_routes_groups(struct gh_http_router *r)
{
	static const struct gh_http_route_def defs[] = {
		{ "GET", "/o/{org}/scim/v2/Groups", h_groups_list },
		{ "POST", "/o/{org}/scim/v2/Groups", h_groups_create },
		{ "GET", "/o/{org}/scim/v2/Groups/{id}", h_group_get },
		{ "PUT", "/o/{org}/scim/v2/Groups/{id}", h_group_put },
		{ "PATCH", "/o/{org}/scim/v2/Groups/{id}", h_group_patch },
		{ "DELETE", "/o/{org}/scim/v2/Groups/{id}", h_group_delete },
	};

	return gh_http_routes(r, defs, sizeof defs / sizeof defs[0]);
}
