/*
 * oidc_bcl.c: OpenID Connect Back-Channel Logout 1.0, the sending side.
 * When a session ends, src/auth/session.c queues one row per client that
 * got tokens in it (oidc_logout_outbox) in the transaction that ends it.
 * This file's thread takes each due row, makes a logout token (a JWS
 * signed with the org's key of the client's id_token_signed_response_alg,
 * typ logout+jwt) and POSTs it as logout_token to the client's
 * backchannel_logout_uri (oidc_bcl_post.c, libcurl): 5 s in all, no
 * redirects, http and https only. 2xx: delivered; 4xx (or a redirect): rejected, given
 * up; network errors and 5xx: retried with doubling waits, at most
 * BCL_MAX_ATTEMPTS times. Every attempt is audited as
 * oidc.backchannel_logout; the row goes once the outcome is final.
 *
 * The sending runs on an outbox worker of kind "bcl" (src/notify/outbox.c):
 * an org is run on a kick (a request that ended sessions, ctx_close), when
 * a retry falls due, and when its outbox hint (written by session.c before
 * the row commits, in whichever process: the CLI too) is read, within
 * BCL_POLL_MS of a new hint and at start and every BCL_SCAN_MS for all.
 *
 * Untrusted input: the client's HTTP answer (only its status is read).
 * Secrets: the private signing key while signing (src/api/oidc_keys.c);
 * logout tokens are never stored nor logged.
 */
#include "api/oidc_int.h"
#include "notify/notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BCL_BATCH 20
#define BCL_MAX_ATTEMPTS 5
#define BCL_TIMEOUT_S 5
#define BCL_TOKEN_TTL_S 120
#define BCL_RETRY_DEFAULT_S 30
#define BCL_SCAN_MS (300 * 1000)
#define BCL_EVENT "http://schemas.openid.net/event/backchannel-logout"

struct pending_logout {
	char session_id[GH_ID_LEN + 1];
	char client_id[GH_ID_LEN + 1];
	char user_id[GH_ID_LEN + 1];
	int attempts;
};

static gh_err
load_batch(struct gh_db *db, int64_t now_ms, struct pending_logout *out,
    int *n_out)
{
	struct gh_stmt *st = NULL;
	bool row = true;
	gh_err err;
	int n = 0;

	*n_out = 0;
	err = gh_db_prepare(db, "SELECT session_id, client_id, user_id, "
	    "attempts FROM oidc_logout_outbox WHERE next_at <= ? ORDER BY "
	    "next_at LIMIT ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "ii", now_ms, (int64_t)BCL_BATCH);
	while (err == GH_OK && n < BCL_BATCH) {
		struct pending_logout *p = &out[n];

		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		gh_strlcpy(p->session_id, gh_stmt_text(st, 0),
		    sizeof p->session_id);
		gh_strlcpy(p->client_id, gh_stmt_text(st, 1),
		    sizeof p->client_id);
		gh_strlcpy(p->user_id, gh_stmt_text(st, 2), sizeof p->user_id);
		p->attempts = (int)gh_stmt_int(st, 3);
		n++;
	}
	gh_stmt_free(st);
	*n_out = n;
	return err;
}

/* The logout token for p, signed like the client's ID tokens. */
static gh_err
logout_token(struct api_ctx *ctx, const struct oidc_client *c,
    const struct pending_logout *p, char **jws_out)
{
	struct gh_jose_key *key = NULL;
	char kid[OIDC_KID_LEN + 1], jti[GH_ID_LEN + 1], iss[400];
	int64_t now = gh_now_ms() / 1000;
	enum gh_jose_alg alg;
	json_t *claims = NULL;
	gh_err err;

	*jws_out = NULL;
	err = gh_jose_alg_parse(oidc_client_str(c,
	    "id_token_signed_response_alg"), &alg);
	if (err != GH_OK)
		alg = GH_JOSE_ES256;
	err = oidc_signer(ctx, alg, &key, kid);
	if (err == GH_OK)
		err = gh_id_new(jti);
	if (err != GH_OK)
		goto out;
	oidc_issuer(ctx, iss, sizeof iss);
	/* No nonce: the specification forbids it in logout tokens. */
	claims = json_pack("{s:s, s:s, s:I, s:I, s:s, s:{s:{}}, s:s, s:s}",
	    "iss", iss, "aud", c->app.id, "iat", (json_int_t)now, "exp",
	    (json_int_t)(now + BCL_TOKEN_TTL_S), "jti", jti, "events",
	    BCL_EVENT, "sub", p->user_id, "sid", p->session_id);
	err = claims != NULL ? gh_jose_sign(key, kid, "logout+jwt", claims,
	    jws_out) : GH_ERR_NOMEM;
out:
	json_decref(claims);
	gh_jose_key_free(key);
	return err;
}

/* POSTs logout_token=jws to uri; *status_out gets the HTTP status (0 when
 * there was no answer, with the cause in errbuf). */
static void
post_token(const char *uri, const char *jws, long *status_out, char *errbuf,
    size_t errcap)
{
	struct gh_buf body;
	int status = 0;

	*status_out = 0;
	gh_buf_init(&body, 64 * 1024, GH_BUF_SECRET);
	gh_buf_put_str(&body, "logout_token=");
	gh_buf_put_str(&body, jws);	/* base64url and dots: form-safe */
	if (gh_buf_err(&body) != GH_OK)
		snprintf(errbuf, errcap, "out of memory");
	else if (oidc_http_post_form(uri, gh_buf_cstr(&body), BCL_TIMEOUT_S,
	    &status, errbuf, errcap) == GH_OK)
		*status_out = status;
	gh_buf_free(&body);
}

/* Records one attempt's outcome (result: delivered, retrying, failed or
 * rejected) and its audit event in one transaction. */
static gh_err
record_attempt(struct api_ctx *ctx, const struct pending_logout *p,
    const char *result, long status, const char *why, int64_t next_at)
{
	json_t *changes;
	gh_err err;

	changes = json_pack("{s:s, s:s, s:s, s:i, s:i}", "client_id",
	    p->client_id, "session_id", p->session_id, "result", result,
	    "attempt", p->attempts + 1, "status", (int)status);
	if (changes == NULL)
		return GH_ERR_NOMEM;
	if (why != NULL && why[0] != '\0')
		json_object_set_new(changes, "error", json_string(why));
	err = gh_db_begin(ctx->db);
	if (err == GH_OK && next_at > 0)
		err = gh_db_run(ctx->db, "UPDATE oidc_logout_outbox SET "
		    "attempts = attempts + 1, next_at = ?, last_error = ? WHERE "
		    "session_id = ? AND client_id = ?", "ittt", next_at,
		    why, p->session_id, p->client_id);
	else if (err == GH_OK)
		err = gh_db_run(ctx->db, "DELETE FROM oidc_logout_outbox WHERE "
		    "session_id = ? AND client_id = ?", "tt", p->session_id,
		    p->client_id);
	if (err == GH_OK)
		err = gh_audit_append(ctx->db, &ctx->actor,
		    "oidc.backchannel_logout", "app", p->client_id, changes);
	if (err == GH_OK)
		err = gh_db_commit(ctx->db);
	if (err != GH_OK)
		gh_db_rollback(ctx->db);
	json_decref(changes);
	return err;
}

/* Sends one queued logout and records what happened. */
static gh_err
send_one(struct api_ctx *ctx, const struct pending_logout *p,
    int64_t retry_ms)
{
	struct oidc_client c;
	const char *uri, *result;
	char why[256] = "";
	char *jws = NULL;
	int64_t next_at = 0;
	long status = 0;
	gh_err err;

	err = oidc_client_load(ctx->db, p->client_id, &c);
	uri = err == GH_OK ? oidc_client_str(&c, "backchannel_logout_uri") :
	    "";
	if (err == GH_ERR_NOTFOUND || (err == GH_OK && uri[0] == '\0')) {
		/* Nowhere to send to (no URI, or the app is gone). */
		oidc_client_free(&c);
		return gh_db_run(ctx->db, "DELETE FROM oidc_logout_outbox "
		    "WHERE session_id = ? AND client_id = ?", "tt",
		    p->session_id, p->client_id);
	}
	if (err != GH_OK)
		goto out;
	/* A token that cannot be signed (keys unavailable) counts as an
	 * attempt without an answer: retried, then given up. */
	if (logout_token(ctx, &c, p, &jws) != GH_OK)
		snprintf(why, sizeof why, "cannot sign the logout token");
	else
		post_token(uri, jws, &status, why, sizeof why);
	if (status >= 200 && status < 300) {
		result = "delivered";
	} else if (status == 0 || status >= 500) {
		if (status != 0)
			snprintf(why, sizeof why, "HTTP status %ld", status);
		result = p->attempts + 1 >= BCL_MAX_ATTEMPTS ? "failed" :
		    "retrying";
		if (strcmp(result, "retrying") == 0)
			next_at = gh_now_ms() + (retry_ms << p->attempts);
	} else {
		snprintf(why, sizeof why, "HTTP status %ld", status);
		result = "rejected";
	}
	if (strcmp(result, "delivered") != 0)
		GH_LOG_WARN(GH_ERR_IO, "org %s: back-channel logout to client "
		    "%s: %s (%s)", ctx->org.slug, p->client_id, result, why);
	err = record_attempt(ctx, p, result, status, why, next_at);
out:
	if (jws != NULL) {
		gh_wipe(jws, strlen(jws));
		free(jws);
	}
	oidc_client_free(&c);
	return err;
}

/* Orgs with logouts queued by another process (the CLI) are found
 * through their outbox hints within about this long. */
#define BCL_POLL_MS (2 * 1000)

struct oidc_bcl {
	struct gh_app *app;
	int64_t retry_ms;
	struct gh_outbox *w;
};

/* The earliest pending attempt of an org, 0 when none. */
static gh_err
next_due(struct gh_db *db, int64_t *next_out)
{
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	*next_out = 0;
	err = gh_db_prepare(db, "SELECT MIN(next_at) FROM oidc_logout_outbox",
	    &st);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && row && !gh_stmt_is_null(st, 0))
		*next_out = gh_stmt_int(st, 0);
	gh_stmt_free(st);
	return err;
}

/* The outbox worker's run: sends the due logouts of one org (db held by
 * the worker) until asked to stop. */
static gh_err
bcl_run(void *arg, struct gh_outbox *w, const struct gh_org *org,
    struct gh_db *db, int64_t *next_out)
{
	struct oidc_bcl *b = arg;
	struct pending_logout batch[BCL_BATCH];
	struct api_ctx ctx;
	int n = 0;
	gh_err err;

	*next_out = 0;
	memset(&ctx, 0, sizeof ctx);
	ctx.app = b->app;
	ctx.org = *org;
	ctx.db = db;
	ctx.actor.type = "system";
	ctx.actor.id = "oidc-backchannel-logout";
	err = load_batch(db, gh_now_ms(), batch, &n);
	for (int i = 0; err == GH_OK && i < n && !gh_outbox_stopping(w); i++)
		err = send_one(&ctx, &batch[i], b->retry_ms);
	if (err == GH_OK)
		err = next_due(db, next_out);
	return err;
}

/* ---- the thread ---------------------------------------------------------- */

void
oidc_bcl_kick(struct gh_app *app, const char *org_id)
{
	struct oidc_bcl *b = app != NULL ? app->bcl : NULL;

	if (b != NULL)
		gh_outbox_kick(b->w, org_id);
}

gh_err
gh_api_bcl_start(struct gh_app *app)
{
	struct gh_outbox_ops ops = { .name = "back-channel logout",
	    .run = bcl_run, .st = app->store, .kind = "bcl",
	    .poll_ms = BCL_POLL_MS, .scan_ms = BCL_SCAN_MS };
	struct oidc_bcl *b;
	gh_err err;

	if (app->bcl != NULL)
		return GH_OK;
	b = calloc(1, sizeof *b);
	if (b == NULL)
		return GH_ERR_NOMEM;
	b->app = app;
	b->retry_ms = (int64_t)(app->cfg.bcl_retry_s ? app->cfg.bcl_retry_s :
	    BCL_RETRY_DEFAULT_S) * 1000;
	ops.retry_ms = b->retry_ms;
	ops.arg = b;
	err = gh_outbox_start(&ops, &b->w);
	if (err != GH_OK) {
		free(b);
		return err;
	}
	app->bcl = b;
	return GH_OK;
}

void
gh_api_bcl_stop(struct gh_app *app)
{
	struct oidc_bcl *b = app != NULL ? app->bcl : NULL;

	if (b == NULL)
		return;
	/* At most one post in flight, bounded by its timeouts. */
	gh_outbox_stop(b->w);
	free(b);
	app->bcl = NULL;
}
