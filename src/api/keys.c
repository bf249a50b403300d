/*
 * keys.c: bring your own key. A holder of keys.write supplies a customer key that
 * wraps the org key, or revokes it, which locks the org's data until an
 * operator sets the same key again (`gatehouse keys customer-key set`):
 * while the data is locked nobody of the org can sign in to restore it.
 * Untrusted input: the key in the body. Secrets: the customer key (wiped).
 */
#include "api/api_int.h"

#include <string.h>

static bool
keys_open(void *app, struct gh_http_req *req, struct api_ctx *ctx)
{
	if (!ctx_open_perm(app, req, ctx, "keys.write"))
		return false;
	if (ctx->app->kms == NULL) {
		gh_http_respond_error(req, 503, "keys_unavailable",
		    "This server has no key management configured.");
		ctx_close(ctx);
		return false;
	}
	return true;
}

/* Writes the audit event of a key change in its own transaction. */
static gh_err
audit_key_event(struct api_ctx *ctx, const char *action)
{
	gh_err err;

	err = gh_db_begin(ctx->db);
	if (err == GH_OK)
		err = gh_audit_append(ctx->db, &ctx->actor, action, "org",
		    ctx->org.id, NULL);
	if (err == GH_OK)
		err = gh_db_commit(ctx->db);
	if (err != GH_OK)
		gh_db_rollback(ctx->db);
	return err;
}

static void
h_customer_key_put(void *app, struct gh_http_req *req)
{
	static const char *const keys[] = { "key", NULL };
	uint8_t key[GH_KMS_KEY_LEN];
	const char *b64 = NULL;
	struct api_ctx ctx;
	json_t *body = NULL;
	size_t n = 0;
	gh_err err;

	if (!keys_open(app, req, &ctx))
		return;
	body = body_object(req, keys);
	if (body == NULL || !member_str(req, body, "key", &b64))
		goto out;
	if (b64 == NULL || gh_b64url_decode(b64, strlen(b64), key, sizeof key,
	    &n) != GH_OK || n != sizeof key) {
		respond_invalid(req, "key: 32 bytes in unpadded base64url "
		    "(43 characters)");
		goto out;
	}
	/* Audited first: an event may outlive a failed change, never the
	 * reverse. */
	err = audit_key_event(&ctx, "keys.customer_set");
	if (err == GH_OK)
		err = gh_kms_customer_key_set(ctx.app->kms, ctx.org.id, key);
	if (err == GH_ERR_DENIED)
		gh_http_respond_error(req, 409, "customer_key_mismatch",
		    "That key does not match the revoked customer key.");
	else if (err != GH_OK)
		respond_err(req, err);
	else
		gh_http_respond(req, 204, NULL, NULL, 0);
out:
	gh_wipe(key, sizeof key);
	if (b64 != NULL)
		gh_wipe((char *)b64, strlen(b64));
	json_decref(body);
	ctx_close(&ctx);
}

static void
h_customer_key_delete(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;
	gh_err err;

	if (!keys_open(app, req, &ctx))
		return;
	err = audit_key_event(&ctx, "keys.customer_revoke");
	if (err == GH_OK)
		err = gh_kms_customer_key_revoke(ctx.app->kms, ctx.org.id);
	ctx_close(&ctx);
	if (err != GH_OK) {
		respond_err(req, err);
		return;
	}
	/* Cached connections hold page keys: drop them so that the data is
	 * unreadable from now on. */
	gh_store_tenant_evict(((struct gh_app *)app)->store, ctx.org.id);
	gh_http_respond(req, 204, NULL, NULL, 0);
}

gh_err
routes_keys(struct gh_http_router *r)
{
	static const struct gh_http_route_def routes[] = {
		{ "PUT", "/o/{org}/api/v1/keys/customer", h_customer_key_put },
		{ "DELETE", "/o/{org}/api/v1/keys/customer",
		    h_customer_key_delete },
	};

	return gh_http_routes(r, routes, sizeof routes / sizeof *routes);
}
