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
 * The thread wakes on a kick (a request that ended sessions, ctx_close),
 * when a retry falls due, at start and every BCL_SCAN_MS (sessions ended
 * by the CLI in another process).
 *
 * Untrusted input: the client's HTTP answer (only its status is read).
 * Secrets: the private signing key while signing (src/api/oidc_keys.c);
 * logout tokens are never stored nor logged.
 */
#include "api/oidc_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BCL_BATCH 20
#define BCL_MAX_ATTEMPTS 5
#define BCL_TIMEOUT_S 5
#define BCL_TOKEN_TTL_S 120
#define BCL_RETRY_DEFAULT_S 30
#define BCL_SCAN_MS (300 * 1000)
#define BCL_QUEUE_MAX 256
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

struct oidc_bcl;
static bool stopping(struct oidc_bcl *b);

/* Sends the due logouts of one org (db acquired by the caller), until b
 * is asked to stop. */
static gh_err
drain(struct oidc_bcl *b, struct gh_app *app, const struct gh_org *org,
    struct gh_db *db, int64_t retry_ms)
{
	struct pending_logout batch[BCL_BATCH];
	struct api_ctx ctx;
	int n = 0;
	gh_err err;

	memset(&ctx, 0, sizeof ctx);
	ctx.app = app;
	ctx.org = *org;
	ctx.db = db;
	ctx.actor.type = "system";
	ctx.actor.id = "oidc-backchannel-logout";
	err = load_batch(db, gh_now_ms(), batch, &n);
	for (int i = 0; err == GH_OK && i < n && !stopping(b); i++)
		err = send_one(&ctx, &batch[i], retry_ms);
	return err;
}

/* ---- the thread ---------------------------------------------------------- */

struct queued {
	char org_id[GH_ID_LEN + 1];
	int64_t due_ms;
};

struct oidc_bcl {
	struct gh_app *app;
	int64_t retry_ms;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	int64_t scan_at;	/* the next look through every org */
	struct queued q[BCL_QUEUE_MAX];
	size_t qlen;
};

static bool
stopping(struct oidc_bcl *b)
{
	bool stop;

	pthread_mutex_lock(&b->mu);
	stop = b->stop;
	pthread_mutex_unlock(&b->mu);
	return stop;
}

/* Adds org_id due at due_ms or brings its entry forward; with mu held. */
static void
queue_put(struct oidc_bcl *b, const char *org_id, int64_t due_ms)
{
	for (size_t i = 0; i < b->qlen; i++) {
		if (strcmp(b->q[i].org_id, org_id) == 0) {
			if (due_ms < b->q[i].due_ms)
				b->q[i].due_ms = due_ms;
			return;
		}
	}
	if (b->qlen == BCL_QUEUE_MAX) {
		b->scan_at = 0;	/* too many: look everywhere */
		return;
	}
	gh_strlcpy(b->q[b->qlen].org_id, org_id, sizeof b->q[0].org_id);
	b->q[b->qlen].due_ms = due_ms;
	b->qlen++;
}

void
oidc_bcl_kick(struct gh_app *app, const char *org_id)
{
	struct oidc_bcl *b = app != NULL ? app->bcl : NULL;

	if (b == NULL || org_id == NULL || !gh_id_valid(org_id))
		return;
	pthread_mutex_lock(&b->mu);
	queue_put(b, org_id, 0);
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

/* The earliest pending attempt of an org, 0 when none. */
static int64_t
next_due(struct gh_db *db)
{
	struct gh_stmt *st = NULL;
	int64_t next = 0;
	bool row = false;

	if (gh_db_prepare(db, "SELECT MIN(next_at) FROM oidc_logout_outbox",
	    &st) == GH_OK && gh_stmt_step(st, &row) == GH_OK && row &&
	    !gh_stmt_is_null(st, 0))
		next = gh_stmt_int(st, 0);
	gh_stmt_free(st);
	return next;
}

static void
drain_org(struct oidc_bcl *b, const struct gh_org *org)
{
	struct gh_db *db = NULL;
	int64_t next;
	gh_err err;

	if (strcmp(org->state, "active") != 0)
		return;
	err = gh_store_tenant(b->app->store, org->id, org->region, false, &db);
	if (err == GH_OK)
		err = drain(b, b->app, org, db, b->retry_ms);
	next = err == GH_OK ? next_due(db) : gh_now_ms() + b->retry_ms;
	gh_db_release(db);
	if (err != GH_OK)
		GH_LOG_WARN(err, "org %s: back-channel logout outbox",
		    org->slug);
	if (next > 0) {
		pthread_mutex_lock(&b->mu);
		queue_put(b, org->id, next);
		pthread_mutex_unlock(&b->mu);
	}
}

struct org_list {
	struct gh_org *v;
	size_t n, cap;
	const char *only;	/* NULL: every active org */
	bool nomem;
};

static void
collect_org(const struct gh_org *org, void *arg)
{
	struct org_list *l = arg;

	if (l->nomem || strcmp(org->state, "active") != 0 ||
	    (l->only != NULL && strcmp(org->id, l->only) != 0))
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct gh_org *v = realloc(l->v, cap * sizeof *v);

		if (v == NULL) {
			l->nomem = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *org;
}

/* Drains org_id, or every active org when NULL. The directory handle is
 * released before any tenant is opened. */
static void
drain_orgs(struct oidc_bcl *b, const char *org_id)
{
	struct org_list l = { .only = org_id };
	struct gh_db *dir = NULL;
	gh_err err;

	err = gh_store_directory(b->app->store, &dir);
	if (err == GH_OK)
		err = gh_identity_org_list(dir, collect_org, &l);
	gh_db_release(dir);
	if (err == GH_OK && l.nomem)
		err = GH_ERR_NOMEM;
	if (err != GH_OK)
		GH_LOG_WARN(err, "back-channel logout: listing organisations");
	for (size_t i = 0; err == GH_OK && i < l.n && !stopping(b); i++)
		drain_org(b, &l.v[i]);
	free(l.v);
}

/* Takes the next due org (or the time for a full scan) off the queue,
 * waiting until one is due. False when stopping. With mu held. */
static bool
next_job(struct oidc_bcl *b, char org_id[static GH_ID_LEN + 1], bool *all)
{
	for (;;) {
		int64_t now = gh_now_ms(), wake = b->scan_at;
		struct timespec ts;

		if (b->stop)
			return false;
		*all = b->scan_at <= now;
		if (*all) {
			b->scan_at = now + BCL_SCAN_MS;
			return true;
		}
		for (size_t i = 0; i < b->qlen; i++) {
			if (b->q[i].due_ms <= now) {
				gh_strlcpy(org_id, b->q[i].org_id,
				    GH_ID_LEN + 1);
				b->q[i] = b->q[--b->qlen];
				return true;
			}
			if (b->q[i].due_ms < wake)
				wake = b->q[i].due_ms;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (wake - now) / 1000;
		ts.tv_nsec += ((wake - now) % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&b->cv, &b->mu, &ts);
	}
}

static void *
bcl_main(void *arg)
{
	struct oidc_bcl *b = arg;
	char org_id[GH_ID_LEN + 1];
	bool all;

	pthread_mutex_lock(&b->mu);
	while (next_job(b, org_id, &all)) {
		pthread_mutex_unlock(&b->mu);
		drain_orgs(b, all ? NULL : org_id);
		pthread_mutex_lock(&b->mu);
	}
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

gh_err
gh_api_bcl_start(struct gh_app *app)
{
	struct oidc_bcl *b;

	if (app->bcl != NULL)
		return GH_OK;
	b = calloc(1, sizeof *b);
	if (b == NULL)
		return GH_ERR_NOMEM;
	b->app = app;
	b->retry_ms = (int64_t)(app->cfg.bcl_retry_s ? app->cfg.bcl_retry_s :
	    BCL_RETRY_DEFAULT_S) * 1000;
	b->scan_at = 0;
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	if (pthread_create(&b->thread, NULL, bcl_main, b) != 0) {
		pthread_cond_destroy(&b->cv);
		pthread_mutex_destroy(&b->mu);
		free(b);
		return GH_ERR_INTERNAL;
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
	pthread_mutex_lock(&b->mu);
	b->stop = true;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
	/* At most one post in flight, bounded by its timeouts. */
	pthread_join(b->thread, NULL);
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	free(b);
	app->bcl = NULL;
}
