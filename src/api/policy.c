/*
 * policy.c: the admin API for security policies (src/policy) and their
 * enforcement at sign-in.
 *
 * Routes: GET/POST /o/{org}/api/v1/security-policies, GET/PATCH/DELETE
 * /security-policies/{id}, PUT/DELETE /security-policies/{id}/groups/
 * {group_id}, GET /users/{id}/effective-policy. Reads need policies.read,
 * changes policies.write org-wide; attaching or detaching also needs
 * groups.read over the group, and the effective policy users.read over
 * the user. Each change is audited in its own transaction. A change is made
 * in the transaction first and then judged against the caller's effective
 * policy and every owner's (self-lockout protection), rolled back when it
 * would lock them out.
 *
 * Sign-in: policy_signin_gate refuses a blocked IP or country;
 * session_start takes the session limits and the concurrent-session cap
 * from the user's effective policy; mfa_policy_for lays the policy's MFA
 * fields over the org's MFA policy before gh_auth_mfa_need decides.
 *
 * Untrusted input: policy bodies (src/policy validates the settings), ids
 * in paths, the "confirm" flag, the client address. Secrets: none.
 */
#include "api/api_int.h"
#include "policy/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
gh_api_app_set_geo(struct gh_app *app, const struct gh_geo *geo)
{
	app->geo = geo;
}

/* The org-level values a policy falls back to, as a settings object:
 * the password policy and the org MFA policy's switch and methods. */
static gh_err
org_fallback(struct api_ctx *ctx, json_t **out)
{
	struct gh_pw_policy pw;
	struct gh_mfa_policy mfa;
	json_t *methods;
	gh_err err;

	*out = NULL;
	err = gh_api_pw_policy_load(ctx->db, &pw);
	if (err == GH_OK)
		err = mfa_policy_load(ctx->db, &mfa);
	if (err != GH_OK)
		return err;
	methods = json_array();
	if (methods != NULL && mfa.allow_totp)
		json_array_append_new(methods, json_string("totp"));
	if (methods != NULL && mfa.allow_webauthn)
		json_array_append_new(methods, json_string("webauthn"));
	if (methods != NULL && mfa.allow_recovery)
		json_array_append_new(methods, json_string("recovery"));
	if (methods != NULL && mfa.allow_approval)
		json_array_append_new(methods, json_string("approval"));
	*out = json_pack("{s:{s:i, s:i, s:i, s:b, s:b}, s:{s:b, s:o}}",
	    "password", "min_length", pw.min_length, "min_classes",
	    pw.min_classes, "min_score", pw.min_score, "reject_common",
	    pw.reject_common, "reject_context", pw.reject_context, "mfa",
	    "required", mfa.required, "methods", methods);
	return *out != NULL ? GH_OK : GH_ERR_NOMEM;
}

/* The typed effective policy of user_id without the org fallback (what
 * the enforcement needs), read now; the JSON view it is read from is
 * dropped. */
static gh_err
effective_fresh(struct api_ctx *ctx, const char *user_id,
    struct gh_policy_eff *e)
{
	json_t *view = NULL;
	gh_err err;

	err = gh_policy_effective(ctx->db, user_id, NULL, &view, e);
	json_decref(view);
	return err;
}

/* effective_fresh read once per request and user (ctx->policy): one
 * password sign-in asks up to three times (the address gate, the MFA
 * decision, the session limits). Only for the sign-in checks, which
 * change no policy; a check after a change in the same request
 * (lockout_ok) reads afresh. */
static gh_err
effective_of(struct api_ctx *ctx, const char *user_id,
    struct gh_policy_eff *e)
{
	gh_err err;

	if (ctx->policy != NULL && strcmp(ctx->policy_user, user_id) == 0) {
		*e = *ctx->policy;
		return GH_OK;
	}
	err = effective_fresh(ctx, user_id, e);
	if (err != GH_OK || strlen(user_id) > GH_ID_LEN)
		return err;
	if (ctx->policy == NULL &&
	    (ctx->policy = malloc(sizeof *ctx->policy)) == NULL)
		return GH_OK;	/* only the memo is lost */
	*ctx->policy = *e;
	gh_strlcpy(ctx->policy_user, user_id, sizeof ctx->policy_user);
	return GH_OK;
}

gh_err
mfa_policy_for(struct api_ctx *ctx, const char *user_id,
    struct gh_mfa_policy *out)
{
	struct gh_policy_eff *e;
	gh_err err;

	err = mfa_policy_load(ctx->db, out);
	if (err != GH_OK || user_id == NULL || user_id[0] == '\0')
		return err;
	if ((e = malloc(sizeof *e)) == NULL)
		return GH_ERR_NOMEM;
	err = effective_of(ctx, user_id, e);
	if (err == GH_OK)
		gh_policy_mfa_apply(e, out);
	free(e);
	return err;
}

gh_err
pw_policy_for(struct api_ctx *ctx, const char *user_id,
    struct gh_pw_policy *out)
{
	struct gh_policy_eff *e;
	gh_err err;

	err = gh_api_pw_policy_load(ctx->db, out);
	if (err != GH_OK || user_id == NULL || user_id[0] == '\0')
		return err;
	if ((e = malloc(sizeof *e)) == NULL)
		return GH_ERR_NOMEM;
	err = effective_of(ctx, user_id, e);
	if (err == GH_OK)
		gh_policy_pw_apply(e, out);
	free(e);
	return err;
}

static const char *
verdict_reason(enum gh_policy_verdict v)
{
	switch (v) {
	case GH_POLICY_IP_BLOCKED:
		return "ip_not_allowed";
	case GH_POLICY_COUNTRY_BLOCKED:
		return "country_not_allowed";
	case GH_POLICY_ALLOW:
		break;
	}
	return NULL;
}

gh_err
policy_signin_gate(struct api_ctx *ctx, const char *user_id,
    const char **reason_out)
{
	struct gh_policy_eff *e;
	gh_err err;

	*reason_out = NULL;
	if ((e = malloc(sizeof *e)) == NULL)
		return GH_ERR_NOMEM;
	err = effective_of(ctx, user_id, e);
	if (err == GH_OK)
		*reason_out = verdict_reason(gh_policy_network_check(e,
		    gh_http_req_client_ip(ctx->req), ctx->app->geo));
	free(e);
	return err;
}

void
policy_respond_refusal(struct gh_http_req *req, const char *reason)
{
	if (strcmp(reason, "country_not_allowed") == 0)
		gh_http_respond_error(req, 403, reason, "Your security policy "
		    "does not allow sign-in from this country (or the country "
		    "of this address is unknown).");
	else
		gh_http_respond_error(req, 403, reason, "Your security policy "
		    "does not allow sign-in from this IP address.");
}

struct trim {
	int64_t keep, seen;
	size_t n;
	char (*ids)[GH_ID_LEN + 1];
	size_t cap;
	bool nomem;
};

static void
trim_collect(const struct gh_session *s, void *arg)
{
	struct trim *t = arg;

	/* Newest first: every session past the first keep goes. */
	if (++t->seen <= t->keep || t->nomem)
		return;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		char (*grown)[GH_ID_LEN + 1] = realloc(t->ids,
		    cap * sizeof *t->ids);

		if (grown == NULL) {
			t->nomem = true;
			return;
		}
		t->ids = grown;
		t->cap = cap;
	}
	gh_strlcpy(t->ids[t->n++], s->id, GH_ID_LEN + 1);
}

/* Revokes the oldest live sessions of user_id beyond max (the newest
 * included), auditing each, in the caller's transaction. */
static gh_err
sessions_trim(struct api_ctx *ctx, const char *user_id, int64_t max)
{
	struct trim t = { .keep = max };
	json_t *changes;
	gh_err err;

	err = gh_auth_session_list(ctx->db, user_id, &ctx->app->cfg.session,
	    trim_collect, &t);
	if (err == GH_OK && t.nomem)
		err = GH_ERR_NOMEM;
	ctx->sessions_ended = true;
	for (size_t i = 0; err == GH_OK && i < t.n; i++) {
		err = gh_auth_session_revoke(ctx->db, t.ids[i], user_id);
		if (err == GH_ERR_NOTFOUND) {
			err = GH_OK;
			continue;
		}
		changes = json_pack("{s:s, s:s, s:I}", "user_id", user_id,
		    "reason", "policy_max_concurrent", "max_concurrent",
		    (json_int_t)max);
		if (err == GH_OK)
			err = gh_audit_append(ctx->db, &ctx->actor,
			    "session.revoke", "session", t.ids[i], changes);
		json_decref(changes);
	}
	free(t.ids);
	return err;
}

gh_err
policy_session_limits(struct api_ctx *ctx, const char *user_id,
    struct gh_session_limits *lim, int64_t *max_concurrent_out,
    const char **refusal_out)
{
	struct gh_policy_eff *e;
	gh_err err;

	*lim = ctx->app->cfg.session;
	*max_concurrent_out = 0;
	*refusal_out = NULL;
	if ((e = malloc(sizeof *e)) == NULL)
		return GH_ERR_NOMEM;
	err = effective_of(ctx, user_id, e);
	if (err == GH_OK) {
		gh_policy_session_apply(e, lim);
		*max_concurrent_out = e->max_concurrent;
		*refusal_out = verdict_reason(gh_policy_network_check(e,
		    gh_http_req_client_ip(ctx->req), ctx->app->geo));
	}
	free(e);
	return err;
}

gh_err
policy_sessions_trim(struct api_ctx *ctx, const char *user_id, int64_t max)
{
	return max > 0 ? sessions_trim(ctx, user_id, max) : GH_OK;
}

/* ---- self-lockout protection ---------------------------------------------- */

/* After a change in the open transaction: refuses (409, rolled back) when
 * every active owner would be blocked everywhere, or when the caller's own
 * address would be refused and confirm is false. *confirmed_out tells that
 * confirm overrode the caller's lock-out. True when the change may go on. */
static bool
lockout_ok(struct api_ctx *ctx, bool confirm, bool *confirmed_out)
{
	struct gh_user_filter f = { .role = "owner", .state = "active",
		.limit = GH_USER_LIST_MAX };
	struct gh_policy_eff *e;
	json_t *owners = NULL, *o;
	char *next = NULL, cursor[256] = "";
	bool any = false, reachable = false;
	size_t i;
	gh_err err;

	*confirmed_out = false;
	if ((e = malloc(sizeof *e)) == NULL) {
		err = GH_ERR_NOMEM;
		goto fail;
	}
	do {
		f.cursor = cursor[0] ? cursor : NULL;
		err = gh_identity_user_list(ctx->db, &f, &owners, &next);
		if (err != GH_OK)
			goto fail;
		json_array_foreach(owners, i, o) {
			any = true;
			err = effective_fresh(ctx, json_string_value(
			    json_object_get(o, "id")), e);
			if (err != GH_OK)
				goto fail;
			if (!gh_policy_blocks_everywhere(e))
				reachable = true;
		}
		json_decref(owners);
		owners = NULL;
		gh_strlcpy(cursor, next ? next : "", sizeof cursor);
		free(next);
		next = NULL;
	} while (cursor[0] != '\0' && !reachable);
	if (any && !reachable) {
		gh_db_rollback(ctx->db);
		gh_http_respond_error(ctx->req, 409, "would_lock_out_all_admins",
		    "After this change no owner of the organisation could sign "
		    "in from anywhere (an empty allow-list).");
		free(e);
		return false;
	}
	err = effective_fresh(ctx, ctx->user.id, e);
	if (err != GH_OK)
		goto fail;
	if (verdict_reason(gh_policy_network_check(e,
	    gh_http_req_client_ip(ctx->req), ctx->app->geo)) != NULL) {
		if (!confirm) {
			gh_db_rollback(ctx->db);
			gh_http_respond_error(ctx->req, 409,
			    "would_lock_out_caller", "This change would block "
			    "your own sign-in from your current IP address or "
			    "country. Send \"confirm\": true to make it anyway.");
			free(e);
			return false;
		}
		*confirmed_out = true;
	}
	free(e);
	return true;
fail:
	json_decref(owners);
	free(next);
	free(e);
	finish(ctx, err);
	return false;
}

/* ---- the admin API ----------------------------------------------------------- */

/* Reads "confirm" from body (may be NULL) or the query (confirm=true).
 * Responds 400 and returns false when it is not a boolean. */
static bool
confirm_flag(struct gh_http_req *req, json_t *body, bool *out)
{
	json_t *v = json_object_get(body, "confirm");
	const char *q = gh_http_req_query(req, "confirm");

	*out = false;
	if (v != NULL && !json_is_boolean(v)) {
		respond_invalid(req, "confirm: must be true or false");
		return false;
	}
	if (q != NULL && strcmp(q, "true") != 0 && strcmp(q, "false") != 0) {
		respond_invalid(req, "confirm: must be true or false");
		return false;
	}
	*out = json_is_true(v) || (q != NULL && strcmp(q, "true") == 0);
	return true;
}

static void
respond_policy_err(struct gh_http_req *req, gh_err err, const char *why)
{
	if (why != NULL && strcmp(why, "policy_exists") == 0)
		gh_http_respond_error(req, 409, why, "A security policy with "
		    "that name exists (names ignore case).");
	else if (why != NULL && strcmp(why, "priority_taken") == 0)
		gh_http_respond_error(req, 409, why, "Another security policy "
		    "has that priority; priorities are unique.");
	else
		respond_err(req, err);
}

/* Reads name and priority of body over p. Responds and returns false when
 * invalid. */
static bool
policy_fields_read(struct gh_http_req *req, json_t *body, struct gh_policy *p)
{
	const char *name = NULL;
	json_t *prio;

	if (!member_str(req, body, "name", &name))
		return false;
	if (name != NULL && !gh_policy_name_valid(name)) {
		respond_invalid(req, "name: 1 to %d printable ASCII characters, "
		    "not starting or ending with a space", GH_POLICY_NAME_MAX);
		return false;
	}
	prio = json_object_get(body, "priority");
	if (prio != NULL && (!json_is_integer(prio) ||
	    json_integer_value(prio) < 0 ||
	    json_integer_value(prio) > GH_POLICY_PRIORITY_MAX)) {
		respond_invalid(req, "priority: an integer from 0 to %d (lower "
		    "wins)", GH_POLICY_PRIORITY_MAX);
		return false;
	}
	if (prio != NULL && p->is_default &&
	    json_integer_value(prio) != p->priority) {
		gh_http_respond_error(req, 400, "default_policy",
		    "priority: the default policy always comes last.");
		return false;
	}
	if (name != NULL)
		gh_strlcpy(p->name, name, sizeof p->name);
	if (prio != NULL)
		p->priority = json_integer_value(prio);
	return true;
}

/* Validates settings into *out; responds (400 invalid_cidr or
 * invalid_request) and returns false when invalid. */
static bool
settings_read(struct gh_http_req *req, json_t *in, json_t **out)
{
	const char *code = "invalid_request";
	char msg[256];
	gh_err err;

	err = gh_policy_settings_parse(in, out, msg, sizeof msg, &code);
	if (err == GH_ERR_INVALID)
		gh_http_respond_error(req, 400, code, msg);
	else if (err != GH_OK)
		respond_err(req, err);
	return err == GH_OK;
}

static void
h_policies_list(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	json_t *list = NULL;
	gh_err err;

	if (!ctx_open_perm(app, req, &ctx, "policies.read"))
		return;
	err = gh_policy_list(ctx.db, &list);
	if (err != GH_OK)
		respond_err(req, err);
	else
		gh_http_respond_json(req, 200, json_pack("{s:o}", "policies",
		    list));
	ctx_close(&ctx);
}

static const char *const create_keys[] = { "name", "priority", "settings",
	"confirm", NULL };

static void
h_policy_create(void *app, struct gh_http_req *req)
{
	struct gh_policy p;
	struct api_ctx ctx;
	const char *why = NULL;
	json_t *body = NULL, *changes = NULL, *settings;
	bool confirm, confirmed = false;
	gh_err err;

	memset(&p, 0, sizeof p);
	if (!ctx_open_perm(app, req, &ctx, "policies.write"))
		return;
	if (!ctx_may_org(&ctx, "policies.write"))
		goto out;
	if ((body = body_object(req, create_keys)) == NULL ||
	    !confirm_flag(req, body, &confirm) ||
	    !policy_fields_read(req, body, &p))
		goto out;
	if (p.name[0] == '\0' || json_object_get(body, "priority") == NULL) {
		respond_invalid(req, "%s: required", p.name[0] == '\0' ?
		    "name" : "priority");
		goto out;
	}
	settings = json_object_get(body, "settings");
	if (settings == NULL)
		p.settings = json_object();
	else if (!settings_read(req, settings, &p.settings))
		goto out;
	err = gh_db_begin(ctx.db);
	if (err == GH_OK)
		err = gh_policy_insert(ctx.db, &p, &why);
	if (err != GH_OK) {
		gh_db_rollback(ctx.db);
		respond_policy_err(req, err, why);
		goto out;
	}
	if (!lockout_ok(&ctx, confirm, &confirmed))
		goto out;
	changes = json_pack("{s:s, s:I, s:O}", "name", p.name, "priority",
	    (json_int_t)p.priority, "settings", p.settings);
	if (changes != NULL && confirmed)
		json_object_set_new(changes, "lockout_confirmed", json_true());
	err = gh_audit_append(ctx.db, &ctx.actor, "policy.create",
	    "security_policy", p.id, changes);
	if (finish(&ctx, err))
		gh_http_respond_json(req, 201, gh_policy_json(&p, NULL));
out:
	gh_policy_clear(&p);
	json_decref(changes);
	json_decref(body);
	ctx_close(&ctx);
}

/* Loads {id}; answers 404 policy_not_found. */
static bool
target_policy(struct api_ctx *ctx, struct gh_policy *p)
{
	gh_err err;

	err = gh_policy_get(ctx->db, gh_http_req_param(ctx->req, "id"), p);
	if (err == GH_ERR_NOTFOUND)
		gh_http_respond_error(ctx->req, 404, "policy_not_found",
		    "No such security policy.");
	else if (err != GH_OK)
		respond_err(ctx->req, err);
	return err == GH_OK;
}

static void
h_policy_get(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	struct gh_policy p;
	json_t *groups = NULL;
	gh_err err;

	memset(&p, 0, sizeof p);
	if (!ctx_open_perm(app, req, &ctx, "policies.read"))
		return;
	if (target_policy(&ctx, &p)) {
		err = gh_policy_groups(ctx.db, p.id, &groups);
		if (err != GH_OK)
			respond_err(req, err);
		else
			gh_http_respond_json(req, 200, gh_policy_json(&p,
			    groups));
	}
	json_decref(groups);
	gh_policy_clear(&p);
	ctx_close(&ctx);
}

static void
h_policy_patch(void *app, struct gh_http_req *req)
{
	struct gh_policy before, after;
	struct api_ctx ctx;
	const char *why = NULL;
	json_t *body = NULL, *changes = NULL, *merged = NULL, *patch;
	bool confirm, confirmed = false;
	gh_err err;

	memset(&before, 0, sizeof before);
	memset(&after, 0, sizeof after);
	if (!ctx_open_perm(app, req, &ctx, "policies.write"))
		return;
	if (!ctx_may_org(&ctx, "policies.write"))
		goto out;
	if ((body = body_object(req, create_keys)) == NULL ||
	    !confirm_flag(req, body, &confirm))
		goto out;
	err = gh_db_begin(ctx.db);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	if (!target_policy(&ctx, &before))
		goto rollback;
	after = before;
	after.settings = NULL;
	if (!policy_fields_read(req, body, &after))
		goto rollback;
	patch = json_object_get(body, "settings");
	if (patch != NULL && !json_is_object(patch)) {
		respond_invalid(req, "settings: must be an object (a merge "
		    "patch: null removes a field)");
		goto rollback;
	}
	if (patch == NULL) {
		after.settings = json_incref(before.settings);
	} else {
		err = gh_policy_settings_merge(before.settings, patch, &merged);
		if (err != GH_OK) {
			gh_db_rollback(ctx.db);
			respond_err(req, err);
			goto out;
		}
		if (!settings_read(req, merged, &after.settings))
			goto rollback;
	}
	changes = json_object();
	if (strcmp(before.name, after.name) != 0)
		json_object_set_new(changes, "name", json_pack("{s:s, s:s}",
		    "from", before.name, "to", after.name));
	if (before.priority != after.priority)
		json_object_set_new(changes, "priority", json_pack("{s:I, s:I}",
		    "from", (json_int_t)before.priority, "to",
		    (json_int_t)after.priority));
	if (!json_equal(before.settings, after.settings))
		json_object_set_new(changes, "settings", json_pack("{s:O, s:O}",
		    "from", before.settings, "to", after.settings));
	if (json_object_size(changes) == 0) {
		gh_db_rollback(ctx.db);
		gh_http_respond_json(req, 200, gh_policy_json(&before, NULL));
		goto out;
	}
	err = gh_policy_update(ctx.db, &after, &why);
	if (err != GH_OK) {
		gh_db_rollback(ctx.db);
		respond_policy_err(req, err, why);
		goto out;
	}
	if (!lockout_ok(&ctx, confirm, &confirmed))
		goto out;
	if (confirmed)
		json_object_set_new(changes, "lockout_confirmed", json_true());
	err = gh_audit_append(ctx.db, &ctx.actor, "policy.update",
	    "security_policy", after.id, changes);
	if (finish(&ctx, err))
		gh_http_respond_json(req, 200, gh_policy_json(&after, NULL));
	goto out;
rollback:
	gh_db_rollback(ctx.db);
out:
	gh_policy_clear(&before);
	gh_policy_clear(&after);
	json_decref(merged);
	json_decref(changes);
	json_decref(body);
	ctx_close(&ctx);
}

static void
h_policy_delete(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	struct gh_policy p;
	json_t *changes = NULL, *groups = NULL;
	bool confirm, confirmed = false;
	gh_err err;

	memset(&p, 0, sizeof p);
	if (!ctx_open_perm(app, req, &ctx, "policies.write"))
		return;
	if (!ctx_may_org(&ctx, "policies.write"))
		goto out;
	if (!confirm_flag(req, NULL, &confirm))
		goto out;
	err = gh_db_begin(ctx.db);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	if (!target_policy(&ctx, &p)) {
		gh_db_rollback(ctx.db);
		goto out;
	}
	err = gh_policy_groups(ctx.db, p.id, &groups);
	if (err == GH_OK)
		err = gh_policy_delete(ctx.db, p.id);
	if (err == GH_ERR_DENIED) {
		gh_db_rollback(ctx.db);
		gh_http_respond_error(req, 409, "default_policy",
		    "The default policy cannot be deleted.");
		goto out;
	}
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	if (!lockout_ok(&ctx, confirm, &confirmed))
		goto out;
	changes = json_pack("{s:s, s:I, s:O, s:O}", "name", p.name, "priority",
	    (json_int_t)p.priority, "settings", p.settings, "groups", groups);
	if (changes != NULL && confirmed)
		json_object_set_new(changes, "lockout_confirmed", json_true());
	err = gh_audit_append(ctx.db, &ctx.actor, "policy.delete",
	    "security_policy", p.id, changes);
	if (finish(&ctx, err))
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	json_decref(groups);
	json_decref(changes);
	gh_policy_clear(&p);
	ctx_close(&ctx);
}

/* Attaches (attach true) or detaches {id} and {group_id}. */
static void
group_link(void *app, struct gh_http_req *req, bool attach)
{
	struct api_ctx ctx;
	struct gh_policy p;
	struct gh_group g;
	json_t *changes = NULL;
	bool confirm, confirmed = false, added = false;
	gh_err err;

	memset(&p, 0, sizeof p);
	if (!ctx_open_perm(app, req, &ctx, "policies.write"))
		return;
	/* A policy reaches the group's members: the group must be one the
	 * caller may see. */
	if (!ctx_may_org(&ctx, "policies.write") ||
	    !ctx_holds(&ctx, "groups.read") ||
	    !ctx_may_group(&ctx, "groups.read", gh_http_req_param(req,
	    "group_id")))
		goto out;
	if (!confirm_flag(req, NULL, &confirm))
		goto out;
	err = gh_db_begin(ctx.db);
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	if (!target_policy(&ctx, &p))
		goto rollback;
	err = gh_identity_group_get(ctx.db, gh_http_req_param(req,
	    "group_id"), &g);
	if (err == GH_ERR_NOTFOUND) {
		gh_http_respond_error(req, 404, "group_not_found",
		    "No such group.");
		goto rollback;
	}
	if (err == GH_OK)
		err = attach ? gh_policy_attach(ctx.db, p.id, g.id, &added) :
		    gh_policy_detach(ctx.db, p.id, g.id);
	if (err == GH_ERR_DENIED) {
		gh_http_respond_error(req, 400, "default_policy",
		    "The default policy applies to everyone; it is not "
		    "attached to groups.");
		goto rollback;
	}
	if (err == GH_ERR_NOTFOUND) {
		gh_http_respond_error(req, 404, "not_attached",
		    "The policy is not attached to that group.");
		goto rollback;
	}
	if (err != GH_OK) {
		finish(&ctx, err);
		goto out;
	}
	if (attach && !added) {
		/* Attached already: nothing changes, nothing recorded. */
		gh_db_rollback(ctx.db);
		gh_http_respond_json(req, 200, json_pack("{s:s, s:s, s:b}",
		    "policy_id", p.id, "group_id", g.id, "attached", false));
		goto out;
	}
	if (!lockout_ok(&ctx, confirm, &confirmed))
		goto out;
	changes = json_pack("{s:s, s:s, s:s}", "policy_name", p.name,
	    "group_id", g.id, "group_name", g.name);
	if (changes != NULL && confirmed)
		json_object_set_new(changes, "lockout_confirmed", json_true());
	err = gh_audit_append(ctx.db, &ctx.actor, attach ?
	    "policy.group.attach" : "policy.group.detach", "security_policy",
	    p.id, changes);
	if (!finish(&ctx, err))
		goto out;
	if (attach)
		gh_http_respond_json(req, 201, json_pack("{s:s, s:s, s:b}",
		    "policy_id", p.id, "group_id", g.id, "attached", true));
	else
		gh_http_respond(req, 204, NULL, NULL, 0);
	goto out;
rollback:
	gh_db_rollback(ctx.db);
out:
	json_decref(changes);
	gh_policy_clear(&p);
	ctx_close(&ctx);
}

static void
h_group_attach(void *app, struct gh_http_req *req)
{
	group_link(app, req, true);
}

static void
h_group_detach(void *app, struct gh_http_req *req)
{
	group_link(app, req, false);
}

static void
h_effective(void *app, struct gh_http_req *req)
{
	json_t *fallback = NULL, *view = NULL;
	struct api_ctx ctx;
	struct gh_user u;
	gh_err err;

	memset(&u, 0, sizeof u);
	if (!ctx_open_perm(app, req, &ctx, "policies.read"))
		return;
	if (!ctx_holds(&ctx, "users.read"))
		goto out;
	err = gh_identity_user_get(ctx.db, gh_http_req_param(req, "id"), &u);
	if (err == GH_OK && !ctx_may_user(&ctx, "users.read", u.id))
		goto out;
	if (err == GH_OK)
		err = org_fallback(&ctx, &fallback);
	if (err == GH_OK)
		err = gh_policy_effective(ctx.db, u.id, fallback, &view, NULL);
	if (err == GH_ERR_NOTFOUND)
		gh_http_respond_error(req, 404, "user_not_found",
		    "No such user.");
	else if (err != GH_OK)
		respond_err(req, err);
	else
		gh_http_respond_json(req, 200, json_incref(view));
out:
	json_decref(view);
	json_decref(fallback);
	gh_wipe(&u, sizeof u);
	ctx_close(&ctx);
}

gh_err
routes_policy(struct gh_http_router *r)
{
	static const struct gh_http_route_def routes[] = {
		{ "GET", "/o/{org}/api/v1/security-policies", h_policies_list },
		{ "POST", "/o/{org}/api/v1/security-policies",
		    h_policy_create },
		{ "GET", "/o/{org}/api/v1/security-policies/{id}",
		    h_policy_get },
		{ "PATCH", "/o/{org}/api/v1/security-policies/{id}",
		    h_policy_patch },
		{ "DELETE", "/o/{org}/api/v1/security-policies/{id}",
		    h_policy_delete },
		{ "PUT", "/o/{org}/api/v1/security-policies/{id}/groups/"
		    "{group_id}", h_group_attach },
		{ "DELETE", "/o/{org}/api/v1/security-policies/{id}/groups/"
		    "{group_id}", h_group_detach },
		{ "GET", "/o/{org}/api/v1/users/{id}/effective-policy",
		    h_effective },
	};

	return gh_http_routes(r, routes, sizeof routes / sizeof *routes);
}
