/*
 * admin.c: the organisation admin API: organisation settings, password
 * policy, users (with their custom attributes), users' sessions, API
 * tokens, the audit and sign-in logs. Each route checks its permission
 * and scope (ctx_open_perm, src/api/rbac.c; docs/api.md "Roles and
 * permissions").
 * Untrusted input: bodies, ids in paths, list filters. Secrets: passwords
 * in user bodies (hashed on the worker pool, wiped), new API tokens (shown
 * once, wiped) and values of encrypted attributes (decrypted by
 * src/identity only into the responses of callers allowed to see them;
 * never logged, never audited).
 */
#include "api/api_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers -------------------------------------------------------- */

static bool
query_time(struct gh_http_req *req, const char *name, int64_t *out)
{
	const char *s = gh_http_req_query(req, name);

	*out = 0;
	if (s == NULL)
		return true;
	if (gh_time_parse_rfc3339(s, out) != GH_OK || *out <= 0) {
		respond_invalid(req, "%s: must be an RFC 3339 UTC time", name);
		return false;
	}
	return true;
}

static void
respond_cursor_list(struct gh_http_req *req, const char *key, json_t *arr,
    int64_t next)
{
	char cur[24];
	json_t *body;

	snprintf(cur, sizeof cur, "%" PRId64, next);
	body = json_pack("{s:o, s:o}", key, arr, "next_cursor",
	    next > 0 ? json_string(cur) : json_null());
	gh_http_respond_json(req, 200, body);
}

/* Admins may not act on owners nor make anyone an owner. */
static bool
may_manage(struct api_ctx *ctx, const char *target_role, const char *new_role)
{
	if (strcmp(ctx->user.role, "owner") == 0)
		return true;
	if (strcmp(target_role, "owner") == 0 ||
	    (new_role != NULL && strcmp(new_role, "owner") == 0)) {
		gh_http_respond_error(ctx->req, 403, "forbidden",
		    "Only an owner may manage owners.");
		return false;
	}
	return true;
}

/* Changing a user's legacy role (owner, admin, member) grants or takes
 * away every permission org-wide: it needs roles.write org-wide. */
static bool
may_set_role(struct api_ctx *ctx, const char *from, const char *to)
{
	if (to == NULL || strcmp(from, to) == 0)
		return true;
	if (!gh_rbac_holds(&ctx->grants, GH_PERM_ROLES_WRITE)) {
		gh_http_respond_error(ctx->req, 403, "permission_denied",
		    "Changing a role needs the permission roles.write.");
		return false;
	}
	return ctx_may_org(ctx, "roles.write");
}

/* ---- organisation ------------------------------------------------------------ */

static void
h_org_get(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;

	if (!ctx_open_perm(app, req, &ctx, "org.read"))
		return;
	gh_http_respond_json(req, 200, gh_identity_org_json(&ctx.org));
	ctx_close(&ctx);
}

static void
h_org_patch(void *app, struct gh_http_req *req)
{
	static const char *const keys[] = { "name", NULL };
	struct gh_db *dir = NULL;
	const char *name = NULL;
	struct api_ctx ctx;
	json_t *body, *changes;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "org.write"))
		return;
	body = body_object(req, keys);
	if (body == NULL || !member_str(req, body, "name", &name))
		goto out;
	if (name != NULL && !gh_identity_org_name_valid(name)) {
		respond_invalid(req, "name: 1 to %d bytes of text",
		    GH_ORG_NAME_MAX);
		goto out;
	}
	if (name == NULL || strcmp(name, ctx.org.name) == 0) {
		gh_http_respond_json(req, 200, gh_identity_org_json(&ctx.org));
		goto out;
	}
	/*
	 * The name lives in the directory, the event in the tenant's log: two
	 * databases, so no single transaction. Both transactions open, the
	 * event commits first and the name last, so that a failure can leave
	 * an event for a change that did not happen, never a change without
	 * its event. The tenant's opens first: a tenant transaction may wait
	 * for the directory (an outbox hint, gh_db_outbox_hint), so nothing
	 * may hold the directory's write lock while waiting for an existing
	 * tenant's.
	 */
	changes = json_pack("{s:{s:s, s:s}}", "name", "from", ctx.org.name,
	    "to", name);
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_store_directory(ctx.app->store, &dir);
	if (err == GH_OK)
		err = gh_db_begin(dir);
	if (err == GH_OK)
		err = gh_identity_org_set_name(dir, ctx.org.id, name);
	if (err == GH_OK)
		err = gh_audit_append(ctx.db, &ctx.actor, "org.update", "org",
		    ctx.org.id, changes);
	json_decref(changes);
	if (finish(&ctx, err)) {
		err = gh_db_commit(dir);
		if (err != GH_OK) {
			GH_LOG_ERR(err, "org %s: rename audited but not saved",
			    ctx.org.id);
			respond_err(req, err);
		} else {
			gh_strlcpy(ctx.org.name, name, sizeof ctx.org.name);
			gh_http_respond_json(req, 200,
			    gh_identity_org_json(&ctx.org));
		}
	}
	gh_db_release(dir);
out:
	json_decref(body);
	ctx_close(&ctx);
}

/* ---- password policy ------------------------------------------------------- */

static json_t *
policy_json(const struct gh_pw_policy *p)
{
	return json_pack("{s:i, s:i, s:i, s:b, s:b}", "min_length",
	    p->min_length, "min_classes", p->min_classes, "min_score",
	    p->min_score, "reject_common", p->reject_common, "reject_context",
	    p->reject_context);
}

static void
h_policy_get(void *app, struct gh_http_req *req)
{
	struct gh_pw_policy pol;
	struct api_ctx ctx;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "org.read"))
		return;
	err = gh_api_pw_policy_load(ctx.db, &pol);
	if (err != GH_OK)
		respond_err(req, err);
	else
		gh_http_respond_json(req, 200, policy_json(&pol));
	ctx_close(&ctx);
}

static bool
member_int(struct gh_http_req *req, json_t *obj, const char *key, int *out)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL)
		return true;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > 1000) {
		respond_invalid(req, "%s: must be a small integer", key);
		return false;
	}
	*out = (int)json_integer_value(v);
	return true;
}

static bool
member_bool(struct gh_http_req *req, json_t *obj, const char *key, bool *out)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL)
		return true;
	if (!json_is_boolean(v)) {
		respond_invalid(req, "%s: must be true or false", key);
		return false;
	}
	*out = json_is_true(v);
	return true;
}

static void
h_policy_patch(void *app, struct gh_http_req *req)
{
	static const char *const keys[] = { "min_length", "min_classes",
		"min_score", "reject_common", "reject_context", NULL };
	struct gh_pw_policy pol;
	const char *field = NULL;
	struct api_ctx ctx;
	json_t *body, *stored = NULL;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "org.write"))
		return;
	body = body_object(req, keys);
	if (body == NULL)
		goto out;
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_api_pw_policy_load(ctx.db, &pol);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	if (!member_int(req, body, "min_length", &pol.min_length) ||
	    !member_int(req, body, "min_classes", &pol.min_classes) ||
	    !member_int(req, body, "min_score", &pol.min_score) ||
	    !member_bool(req, body, "reject_common", &pol.reject_common) ||
	    !member_bool(req, body, "reject_context", &pol.reject_context)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	if (gh_auth_pw_policy_validate(&pol, &field) != GH_OK) {
		gh_db_rollback(ctx.db);
		respond_invalid(req, "%s: out of range", field ? field : "policy");
		goto out;
	}
	stored = policy_json(&pol);
	err = gh_identity_setting_put(ctx.db, "password_policy", stored);
	if (err == GH_OK)
		err = gh_audit_append(ctx.db, &ctx.actor,
		    "password_policy.update", "password_policy", NULL, body);
	if (finish(&ctx, err)) {
		gh_http_respond_json(req, 200, stored);
		stored = NULL;
	}
out:
	json_decref(stored);
	json_decref(body);
	ctx_close(&ctx);
}

/* ---- users' custom attributes ------------------------------------------------- */

static void
respond_keys_unavailable(struct gh_http_req *req)
{
	gh_http_respond_error(req, 503, "keys_unavailable",
	    "The encryption keys of this organisation are unavailable.");
}

/* finish() for writes that touch attributes: keys that are unavailable
 * answer 503 keys_unavailable rather than 403. */
static bool
finish_user(struct api_ctx *ctx, gh_err err)
{
	if (err != GH_ERR_DENIED)
		return finish(ctx, err);
	gh_db_rollback(ctx->db);
	respond_keys_unavailable(ctx->req);
	return false;
}

/* Writes a body's "attributes" for user_id inside the open transaction
 * and records the changes. On failure rolls back, answers and returns
 * false. */
static bool
attrs_write(struct api_ctx *ctx, const char *user_id, json_t *attrs,
    bool creating, json_t *changes)
{
	struct gh_attr_defs defs;
	char msg[256] = "";
	gh_err err;

	err = gh_identity_attr_def_list(ctx->db, &defs);
	if (err != GH_OK)
		return finish(ctx, err);
	err = gh_identity_attr_values_set(ctx->db, ctx->app->kms, &defs,
	    user_id, attrs, creating, changes, msg, sizeof msg);
	gh_identity_attr_defs_free(&defs);
	if (err == GH_OK)
		return true;
	if (err == GH_ERR_INVALID) {
		gh_db_rollback(ctx->db);
		gh_http_respond_error(ctx->req, 400, "invalid_request", msg);
	} else if (err == GH_ERR_CONFLICT) {
		gh_db_rollback(ctx->db);
		gh_http_respond_error(ctx->req, 409, "attribute_not_unique",
		    msg);
	} else {
		finish_user(ctx, err);
	}
	return false;
}

/* Adds "attributes" (every classification: callers reach this only with
 * users.read over the user) to a user object whose "id" names the user. */
static gh_err
user_add_attrs(struct api_ctx *ctx, json_t *user)
{
	const char *id = json_string_value(json_object_get(user, "id"));
	json_t *attrs = NULL;
	gh_err err;

	if (id == NULL)
		return GH_ERR_NOMEM;
	err = gh_identity_attr_values_json(ctx->db, ctx->app->kms, id,
	    GH_ATTR_SENSITIVE, &attrs);
	if (err == GH_OK && json_object_set_new(user, "attributes", attrs) != 0)
		err = GH_ERR_NOMEM;
	return err;
}

/* The admin view of u: the user object with its attributes. */
static gh_err
user_view(struct api_ctx *ctx, const struct gh_user *u, json_t **out)
{
	json_t *j = gh_identity_user_json(u);
	gh_err err;

	*out = NULL;
	if (j == NULL)
		return GH_ERR_NOMEM;
	err = user_add_attrs(ctx, j);
	if (err != GH_OK) {
		json_decref(j);
		return err;
	}
	*out = j;
	return GH_OK;
}

/* Answers 200 with the admin view of u, or the error. */
static void
respond_user(struct api_ctx *ctx, const struct gh_user *u)
{
	json_t *view;
	gh_err err;

	err = user_view(ctx, u, &view);
	if (err == GH_ERR_DENIED)
		respond_keys_unavailable(ctx->req);
	else if (err != GH_OK)
		respond_err(ctx->req, err);
	else
		gh_http_respond_json(ctx->req, 200, view);
}

/*
 * Reads the attr.NAME=VALUE filters of a user list: one query argument
 * per defined attribute is looked up (the HTTP layer offers no way to
 * enumerate arguments, so an attr.* name that is not defined is not
 * seen). conds borrow names from defs. False after answering.
 */
static bool
attr_filters(struct api_ctx *ctx, const struct gh_attr_defs *defs,
    struct gh_attr_cond conds[static GH_ATTR_FILTERS_MAX], size_t *n_out)
{
	char qname[GH_ATTR_NAME_MAX + 6];
	const char *v;

	*n_out = 0;
	for (size_t i = 0; i < defs->len; i++) {
		snprintf(qname, sizeof qname, "attr.%s", defs->v[i].name);
		if ((v = gh_http_req_query(ctx->req, qname)) == NULL)
			continue;
		if (*n_out == GH_ATTR_FILTERS_MAX) {
			respond_invalid(ctx->req, "attr.*: at most %d attribute "
			    "filters", GH_ATTR_FILTERS_MAX);
			return false;
		}
		conds[*n_out].name = defs->v[i].name;
		conds[*n_out].value = v;
		(*n_out)++;
	}
	return true;
}

/* ---- users -------------------------------------------------------------------- */

static void
h_users_list(void *app, struct gh_http_req *req)
{
	struct gh_attr_cond conds[GH_ATTR_FILTERS_MAX];
	struct gh_attr_defs defs = { 0 };
	struct gh_user_filter f = { 0 };
	struct api_ctx ctx;
	json_t *users = NULL, *v;
	char *next = NULL, msg[256] = "";
	size_t n_conds = 0, i;
	int64_t limit;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "users.read"))
		return;
	if (!query_int(req, "limit", 1, GH_USER_LIST_MAX, 50, &limit))
		goto out;
	f.limit = (int)limit;
	f.q = gh_http_req_query(req, "q");
	f.state = gh_http_req_query(req, "state");
	f.role = gh_http_req_query(req, "role");
	f.cursor = gh_http_req_query(req, "cursor");
	if (f.q != NULL && strlen(f.q) > 128) {
		respond_invalid(req, "q: at most 128 bytes");
		goto out;
	}
	if ((f.state && !gh_identity_user_state_valid(f.state)) ||
	    (f.role && !gh_identity_role_valid(f.role))) {
		respond_invalid(req, "%s: unknown value",
		    f.state && !gh_identity_user_state_valid(f.state) ?
		    "state" : "role");
		goto out;
	}
	err = gh_identity_attr_def_list(ctx.db, &defs);
	if (err != GH_OK) {
		respond_err(req, err);
		goto out;
	}
	if (!attr_filters(&ctx, &defs, conds, &n_conds))
		goto out;
	/* Attribute filters match exactly: the canonical text of plain
	 * values, the blind index of encrypted ones; nothing is decrypted
	 * to search. */
	if (n_conds > 0)
		err = gh_identity_attr_user_list(ctx.db, ctx.app->kms, &f, conds,
		    n_conds, &users, &next, msg, sizeof msg);
	else
		err = gh_identity_user_list(ctx.db, &f, &users, &next);
	/* Scoped callers see their users only; a page may then hold fewer
	 * than limit users, and next_cursor still pages on. */
	if (err == GH_OK)
		err = ctx_filter_users(&ctx, "users.read", users, "id");
	json_array_foreach(users, i, v) {
		if (err == GH_OK)
			err = user_add_attrs(&ctx, v);
	}
	if (err == GH_ERR_INVALID && msg[0] != '\0')
		respond_invalid(req, "%s", msg);
	else if (err == GH_ERR_INVALID)
		respond_invalid(req, "cursor: not a cursor from this API");
	else if (err == GH_ERR_DENIED)
		respond_keys_unavailable(req);
	else if (err != GH_OK)
		respond_err(req, err);
	else
		gh_http_respond_json(req, 200, json_pack("{s:O, s:o}", "users",
		    users, "next_cursor", next ? json_string(next) :
		    json_null()));
	json_decref(users);
	free(next);
out:
	gh_identity_attr_defs_free(&defs);
	ctx_close(&ctx);
}

/* Loads the user named by {id}; responds 404 when absent. */
static bool
target_user(struct api_ctx *ctx, struct gh_user *u)
{
	gh_err err;

	err = gh_identity_user_get(ctx->db, gh_http_req_param(ctx->req, "id"),
	    u);
	if (err != GH_OK) {
		respond_err(ctx->req, err);
		return false;
	}
	return true;
}

static void
h_user_get(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	struct gh_user u;

	if (!ctx_open_perm(app, req, &ctx, "users.read"))
		return;
	if (target_user(&ctx, &u) && ctx_may_user(&ctx, "users.read", u.id))
		respond_user(&ctx, &u);
	gh_wipe(&u, sizeof u);
	ctx_close(&ctx);
}

static bool
user_fields_read(struct gh_http_req *req, json_t *body, struct user_fields *f)
{
	char msg[200];

	if (user_fields_parse(body, f, msg, sizeof msg) != GH_OK) {
		gh_http_respond_error(req, 400, "invalid_request", msg);
		return false;
	}
	return true;
}

static void
wipe_body_secret(json_t *body, const char *key)
{
	json_t *v = json_object_get(body, key);

	if (json_is_string(v))
		gh_wipe((char *)json_string_value(v), json_string_length(v));
}

static void
w_users_create(void *appv, struct gh_http_req *req)
{
	static const char *const keys[] = { "username", "email",
		"display_name", "role", "state", "password", "password_hash",
		"attributes", NULL };
	struct user_fields f;
	struct api_ctx ctx;
	struct gh_user u;
	json_t *body = NULL, *changes = NULL, *view = NULL;
	char *hash = NULL;
	gh_err err;

	memset(&u, 0, sizeof u);
	if (!ctx_open_perm(appv, req, &ctx, "users.write"))
		return;
	if ((body = body_object(req, keys)) == NULL ||
	    !user_fields_read(req, body, &f))
		goto out;
	if (f.username == NULL) {
		respond_invalid(req, "username: required");
		goto out;
	}
	/* A scoped user admin's new user would be outside their scope. */
	if (!ctx_may_org(&ctx, "users.write") ||
	    !may_set_role(&ctx, "member", f.role) ||
	    !may_manage(&ctx, "member", f.role))
		goto out;
	if (f.password != NULL) {
		if (!password_acceptable(&ctx, f.password, f.username, f.email))
			goto out;
		err = gh_auth_pw_hash(&ctx.app->cfg.pw, f.password, &hash);
		if (err != GH_OK) {
			respond_err(req, err);
			goto out;
		}
	}
	err = gh_identity_user_init(&u, f.username);
	if (err != GH_OK) {
		respond_err(req, err);
		goto out;
	}
	if (f.email)
		gh_strlcpy(u.email, f.email, sizeof u.email);
	if (f.display_name)
		gh_strlcpy(u.display_name, f.display_name,
		    sizeof u.display_name);
	if (f.role)
		gh_strlcpy(u.role, f.role, sizeof u.role);
	if (f.state)
		gh_strlcpy(u.state, f.state, sizeof u.state);
	if (hash != NULL || f.password_hash != NULL) {
		gh_strlcpy(u.password_hash, hash ? hash : f.password_hash,
		    sizeof u.password_hash);
		u.password_changed_at = u.created_at;
	}
	changes = json_pack("{s:s, s:s?, s:s, s:s, s:s}", "username",
	    u.username, "email", u.email[0] ? u.email : NULL, "display_name",
	    u.display_name, "role", u.role, "state", u.state);
	if (changes != NULL && u.password_hash[0] != '\0')
		json_object_set_new(changes, "password", json_string(
		    f.password_hash ? "imported" : "set"));
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_identity_user_insert(ctx.db, &u);
	if (err == GH_ERR_CONFLICT) {
		gh_db_rollback(ctx.db);
		gh_http_respond_error(req, 409, "username_taken",
		    "That username is taken.");
		goto out;
	}
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	/* Always, even without "attributes": required ones must be given. */
	if (!attrs_write(&ctx, u.id, json_object_get(body, "attributes"), true,
	    changes))
		goto out;
	err = gh_audit_append(ctx.db, &ctx.actor, "user.create", "user", u.id,
	    changes);
	/* Assignment rules apply to the new user at once. */
	if (err == GH_OK)
		err = access_rules_apply_user(&ctx, u.id);
	if (err == GH_OK)
		err = user_view(&ctx, &u, &view);
	if (finish_user(&ctx, err)) {
		gh_http_respond_json(req, 201, view);
		view = NULL;
	}
out:
	json_decref(view);
	if (body != NULL)
		wipe_body_secret(body, "password");
	json_decref(changes);
	json_decref(body);
	gh_str_wipe_free(hash);
	gh_wipe(&u, sizeof u);
	ctx_close(&ctx);
}

static void
h_users_create(void *app, struct gh_http_req *req)
{
	gh_http_defer(req, w_users_create);
}

/* Adds {"field": {"from": a, "to": b}} when a and b differ. */
static void
diff_str(json_t *changes, const char *field, const char *from, const char *to)
{
	if (strcmp(from, to) == 0)
		return;
	json_object_set_new(changes, field, json_pack("{s:o, s:o}", "from",
	    from[0] ? json_string(from) : json_null(), "to",
	    to[0] ? json_string(to) : json_null()));
}

/* Refuses to leave the organisation without an active owner. */
static bool
keeps_an_owner(struct api_ctx *ctx, const struct gh_user *before,
    const struct gh_user *after)
{
	int64_t others = 0;
	gh_err err;

	if (strcmp(before->role, "owner") != 0 ||
	    strcmp(before->state, "active") != 0)
		return true;
	if (after != NULL && strcmp(after->role, "owner") == 0 &&
	    strcmp(after->state, "active") == 0)
		return true;
	err = gh_identity_owner_count(ctx->db, before->id, &others);
	if (err != GH_OK) {
		respond_err(ctx->req, err);
		return false;
	}
	if (others == 0) {
		gh_http_respond_error(ctx->req, 409, "last_owner",
		    "The organisation must keep at least one active owner.");
		return false;
	}
	return true;
}

/* Applies f and the attributes attrs (may be NULL) to u inside the open
 * transaction, audits it under action, and answers. Consumes nothing. */
static void
user_apply(struct api_ctx *ctx, struct gh_user *u, const struct user_fields *f,
    json_t *attrs, const char *hash, const char *action)
{
	struct gh_user before = *u;
	json_t *changes = json_object(), *view = NULL;
	bool disable;
	int64_t revoked = 0, tokens = 0;
	gh_err err = GH_OK;

	if (f->email)
		gh_strlcpy(u->email, f->email, sizeof u->email);
	if (f->display_name)
		gh_strlcpy(u->display_name, f->display_name,
		    sizeof u->display_name);
	if (f->role)
		gh_strlcpy(u->role, f->role, sizeof u->role);
	if (f->state)
		gh_strlcpy(u->state, f->state, sizeof u->state);
	if (hash != NULL) {
		gh_strlcpy(u->password_hash, hash, sizeof u->password_hash);
		u->password_changed_at = gh_now_ms();
	}
	if (!may_manage(ctx, before.role, f->role) ||
	    !keeps_an_owner(ctx, &before, u)) {
		gh_db_rollback(ctx->db);
		json_decref(changes);
		return;
	}
	diff_str(changes, "email", before.email, u->email);
	diff_str(changes, "display_name", before.display_name,
	    u->display_name);
	diff_str(changes, "role", before.role, u->role);
	diff_str(changes, "state", before.state, u->state);
	if (hash != NULL)
		json_object_set_new(changes, "password", json_string(
		    f->password_hash ? "imported" : "changed"));
	disable = strcmp(before.state, "active") == 0 &&
	    strcmp(u->state, "disabled") == 0;
	if (attrs != NULL && !attrs_write(ctx, u->id, attrs, false, changes)) {
		json_decref(changes);
		gh_wipe(&before, sizeof before);
		return;
	}
	if (json_object_size(changes) > 0) {
		err = gh_identity_user_update(ctx->db, u);
		/* A disabled user or a new password ends every session, and
		 * disabling also revokes API tokens: re-enabling the user
		 * must not bring either back. */
		if (err == GH_OK && (disable || hash != NULL)) {
			ctx->sessions_ended = true;
			err = gh_auth_session_revoke_user(ctx->db, u->id,
			    &revoked);
		}
		if (err == GH_OK && revoked > 0)
			json_object_set_new(changes, "sessions_revoked",
			    json_integer(revoked));
		/* Remembered devices would skip the second factor for
		 * whoever holds the new password: they go too. */
		if (err == GH_OK && (disable || hash != NULL))
			err = mfa_devices_revoke_all(ctx, u->id, disable ?
			    "user_disabled" : "password_reset");
		if (err == GH_OK && disable)
			err = gh_auth_api_token_revoke_user(ctx->db, u->id,
			    &tokens);
		if (err == GH_OK && tokens > 0)
			json_object_set_new(changes, "api_tokens_revoked",
			    json_integer(tokens));
		if (err == GH_OK)
			err = gh_audit_append(ctx->db, &ctx->actor, action,
			    "user", u->id, changes);
		/* The change may make rules match or stop matching. */
		if (err == GH_OK)
			err = access_rules_apply_user(ctx, u->id);
	}
	json_decref(changes);
	if (err == GH_OK)
		err = user_view(ctx, u, &view);
	if (finish_user(ctx, err)) {
		gh_http_respond_json(ctx->req, 200, view);
		view = NULL;
	}
	json_decref(view);
	gh_wipe(&before, sizeof before);
}

static void
w_user_patch(void *appv, struct gh_http_req *req)
{
	static const char *const keys[] = { "email", "display_name", "role",
		"state", "password", "password_hash", "attributes", NULL };
	struct user_fields f;
	struct api_ctx ctx;
	struct gh_user u;
	json_t *body = NULL;
	char *hash = NULL;
	gh_err err;

	memset(&u, 0, sizeof u);
	if (!ctx_open_perm(appv, req, &ctx, "users.write"))
		return;
	if ((body = body_object(req, keys)) == NULL ||
	    !user_fields_read(req, body, &f) || !target_user(&ctx, &u) ||
	    !ctx_may_user(&ctx, "users.write", u.id) ||
	    !may_set_role(&ctx, u.role, f.role))
		goto out;
	if (f.password != NULL) {
		if (!password_acceptable(&ctx, f.password, u.username,
		    f.email ? f.email : u.email))
			goto out;
		err = gh_auth_pw_hash(&ctx.app->cfg.pw, f.password, &hash);
		if (err != GH_OK) {
			respond_err(req, err);
			goto out;
		}
	}
	/* Re-read inside the transaction: the hash took a while. */
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_identity_user_get(ctx.db, u.id, &u);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	user_apply(&ctx, &u, &f, json_object_get(body, "attributes"),
	    hash ? hash : f.password_hash, "user.update");
out:
	if (body != NULL)
		wipe_body_secret(body, "password");
	json_decref(body);
	gh_str_wipe_free(hash);
	gh_wipe(&u, sizeof u);
	ctx_close(&ctx);
}

static void
h_user_patch(void *app, struct gh_http_req *req)
{
	gh_http_defer(req, w_user_patch);
}

static void
h_user_disable(void *app, struct gh_http_req *req)
{
	struct user_fields f = { .state = "disabled" };
	struct api_ctx ctx;
	struct gh_user u;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "users.write"))
		return;
	err = gh_db_begin(ctx.db);
	if (err != GH_OK) {
		finish(&ctx, err);
	} else if (!target_user(&ctx, &u) ||
	    !ctx_may_user(&ctx, "users.write", u.id)) {
		gh_db_rollback(ctx.db);
	} else {
		user_apply(&ctx, &u, &f, NULL, NULL, "user.disable");
		gh_wipe(&u, sizeof u);
	}
	ctx_close(&ctx);
}

static void
h_user_delete(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	struct gh_user u;
	json_t *changes;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "users.write"))
		return;
	err = gh_db_begin(ctx.db);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	if (!target_user(&ctx, &u) ||
	    !ctx_may_user(&ctx, "users.write", u.id) ||
	    !may_manage(&ctx, u.role, NULL) ||
	    !keeps_an_owner(&ctx, &u, NULL)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	changes = json_pack("{s:s}", "username", u.username);
	/* Revoked first so that the relying parties hear of it (back-channel
	 * logout); the rows then go with the user. */
	ctx.sessions_ended = true;
	err = gh_auth_session_revoke_user(ctx.db, u.id, NULL);
	if (err == GH_OK)
		err = gh_identity_user_delete(ctx.db, u.id);
	if (err == GH_OK)
		err = gh_audit_append(ctx.db, &ctx.actor, "user.delete", "user",
		    u.id, changes);
	json_decref(changes);
	if (finish(&ctx, err))
		gh_http_respond(req, 204, NULL, NULL, 0);
	gh_wipe(&u, sizeof u);
out:
	ctx_close(&ctx);
}

static void
h_user_sessions(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	struct gh_user u;

	if (!ctx_open_perm(app, req, &ctx, "users.read"))
		return;
	if (target_user(&ctx, &u) && ctx_may_user(&ctx, "users.read", u.id))
		respond_sessions(&ctx, u.id);
	ctx_close(&ctx);
}

static void
h_user_sessions_delete(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	struct gh_user u;
	int64_t n = 0;
	json_t *changes;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "users.write"))
		return;
	if (!target_user(&ctx, &u) ||
	    !ctx_may_user(&ctx, "users.write", u.id) ||
	    !may_manage(&ctx, u.role, NULL))
		goto out;
	ctx.sessions_ended = true;
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_auth_session_revoke_user(ctx.db, u.id, &n);
	if (err == GH_OK && n > 0) {
		changes = json_pack("{s:I}", "sessions_revoked", (json_int_t)n);
		err = gh_audit_append(ctx.db, &ctx.actor, "session.revoke",
		    "user", u.id, changes);
		json_decref(changes);
	}
	if (finish(&ctx, err))
		gh_http_respond_json(req, 200, json_pack("{s:I}", "revoked",
		    (json_int_t)n));
out:
	ctx_close(&ctx);
}

/* ---- API tokens ------------------------------------------------------------- */

static json_t *
token_json(const struct gh_api_token *t)
{
	char created[25], expires[25], used[25];

	gh_time_rfc3339(t->created_at, created);
	gh_time_rfc3339(t->expires_at, expires);
	gh_time_rfc3339(t->last_used_at, used);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "id", t->id, "name",
	    t->name, "user_id", t->user_id, "created_at", created, "expires_at",
	    expires, "last_used_at", t->last_used_at > 0 ? json_string(used) :
	    json_null());
}

static void
h_tokens_create(void *app, struct gh_http_req *req)
{
	static const char *const keys[] = { "name", "expires_in_days", NULL };
	char secret[GH_API_TOKEN_LEN + 1];
	struct gh_api_token t;
	const char *name = NULL;
	json_int_t days = 90;
	struct api_ctx ctx;
	json_t *body, *v, *out, *changes;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "tokens.write"))
		return;
	body = body_object(req, keys);
	if (body == NULL || !member_str(req, body, "name", &name))
		goto out;
	v = json_object_get(body, "expires_in_days");
	if (v != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 366) {
			respond_invalid(req, "expires_in_days: an integer from "
			    "1 to 366");
			goto out;
		}
		days = json_integer_value(v);
	}
	if (name == NULL || name[0] == '\0' || strlen(name) > 64 ||
	    !gh_identity_display_name_valid(name)) {
		respond_invalid(req, "name: required, 1 to 64 bytes of text");
		goto out;
	}
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_auth_api_token_create(ctx.db, ctx.user.id, name,
		    gh_now_ms() + (int64_t)days * 86400000, secret, &t);
	if (err == GH_OK) {
		changes = json_pack("{s:s, s:s, s:I}", "name", name, "user_id",
		    ctx.user.id, "expires_in_days", days);
		err = gh_audit_append(ctx.db, &ctx.actor, "api_token.create",
		    "api_token", t.id, changes);
		json_decref(changes);
	}
	if (finish(&ctx, err)) {
		out = token_json(&t);
		json_object_set_new(out, "token", json_string(secret));
		gh_http_respond_json(req, 201, out);
	}
	gh_wipe(secret, sizeof secret);
out:
	json_decref(body);
	ctx_close(&ctx);
}

static void
collect_token(const struct gh_api_token *t, void *arg)
{
	json_array_append_new(arg, token_json(t));
}

static void
h_tokens_list(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	json_t *arr;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "tokens.write"))
		return;
	arr = json_array();
	err = gh_auth_api_token_list(ctx.db, NULL, collect_token, arr);
	if (err != GH_OK) {
		json_decref(arr);
		respond_err(req, err);
	} else {
		gh_http_respond_json(req, 200, json_pack("{s:o}", "tokens",
		    arr));
	}
	ctx_close(&ctx);
}

static void
h_tokens_delete(void *app, struct gh_http_req *req)
{
	const char *id = gh_http_req_param(req, "id");
	struct api_ctx ctx;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "tokens.write"))
		return;
	if (!gh_id_valid(id)) {
		respond_err(req, GH_ERR_NOTFOUND);
		goto out;
	}
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_auth_api_token_revoke(ctx.db, id);
	if (err == GH_OK)
		err = gh_audit_append(ctx.db, &ctx.actor, "api_token.revoke",
		    "api_token", id, NULL);
	if (finish(&ctx, err))
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	ctx_close(&ctx);
}

/* ---- logs -------------------------------------------------------------------- */

static void
h_audit(void *app, struct gh_http_req *req)
{
	struct gh_audit_filter f = { 0 };
	int64_t limit, cursor, next;
	struct api_ctx ctx;
	json_t *events;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "audit.read"))
		return;
	if (!query_int(req, "limit", 1, GH_AUDIT_LIST_MAX, 50, &limit) ||
	    !query_int(req, "cursor", 1, INT64_MAX, 0, &cursor) ||
	    !query_time(req, "since", &f.since_ms) ||
	    !query_time(req, "until", &f.until_ms))
		goto out;
	f.limit = (int)limit;
	f.before_seq = cursor;
	f.action = gh_http_req_query(req, "action");
	f.actor_id = gh_http_req_query(req, "actor_id");
	f.target_type = gh_http_req_query(req, "target_type");
	f.target_id = gh_http_req_query(req, "target_id");
	err = gh_audit_list(ctx.db, &f, &events, &next);
	if (err != GH_OK)
		respond_err(req, err);
	else
		respond_cursor_list(req, "events", events, next);
out:
	ctx_close(&ctx);
}

static void
h_signins(void *app, struct gh_http_req *req)
{
	struct gh_signin_filter f = { 0 };
	int64_t limit, cursor, next;
	struct api_ctx ctx;
	json_t *events;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "signins.read"))
		return;
	if (!query_int(req, "limit", 1, GH_AUDIT_LIST_MAX, 50, &limit) ||
	    !query_int(req, "cursor", 1, INT64_MAX, 0, &cursor))
		goto out;
	f.limit = (int)limit;
	f.before_seq = cursor;
	f.user_id = gh_http_req_query(req, "user_id");
	f.result = gh_http_req_query(req, "result");
	if (f.result && strcmp(f.result, "success") != 0 &&
	    strcmp(f.result, "failure") != 0) {
		respond_invalid(req, "result: success or failure");
		goto out;
	}
	if (f.user_id != NULL && !ctx_may_user(&ctx, "signins.read",
	    f.user_id))
		goto out;
	err = gh_audit_signin_list(ctx.db, &f, &events, &next);
	/* Scoped callers see the sign-ins of their users only. */
	if (err == GH_OK) {
		err = ctx_filter_users(&ctx, "signins.read", events, "user_id");
		if (err != GH_OK)
			json_decref(events);
	}
	if (err != GH_OK)
		respond_err(req, err);
	else
		respond_cursor_list(req, "signins", events, next);
out:
	ctx_close(&ctx);
}

gh_err
routes_admin(struct gh_http_router *r)
{
	static const struct gh_http_route_def routes[] = {
		{ "GET", "/o/{org}/api/v1/org", h_org_get },
		{ "PATCH", "/o/{org}/api/v1/org", h_org_patch },
		{ "GET", "/o/{org}/api/v1/password-policy", h_policy_get },
		{ "PATCH", "/o/{org}/api/v1/password-policy", h_policy_patch },
		{ "GET", "/o/{org}/api/v1/users", h_users_list },
		{ "POST", "/o/{org}/api/v1/users", h_users_create },
		{ "GET", "/o/{org}/api/v1/users/{id}", h_user_get },
		{ "PATCH", "/o/{org}/api/v1/users/{id}", h_user_patch },
		{ "DELETE", "/o/{org}/api/v1/users/{id}", h_user_delete },
		{ "POST", "/o/{org}/api/v1/users/{id}/disable", h_user_disable },
		{ "GET", "/o/{org}/api/v1/users/{id}/sessions",
		    h_user_sessions },
		{ "DELETE", "/o/{org}/api/v1/users/{id}/sessions",
		    h_user_sessions_delete },
		{ "POST", "/o/{org}/api/v1/tokens", h_tokens_create },
		{ "GET", "/o/{org}/api/v1/tokens", h_tokens_list },
		{ "DELETE", "/o/{org}/api/v1/tokens/{id}", h_tokens_delete },
		{ "GET", "/o/{org}/api/v1/audit", h_audit },
		{ "GET", "/o/{org}/api/v1/signins", h_signins },
	};

	return gh_http_routes(r, routes, sizeof routes / sizeof *routes);
}
