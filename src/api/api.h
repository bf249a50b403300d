/*
 * api.h: the HTTP surface of Gatehouse: the JSON admin and account API, the
 * HTML sign-in pages, and health and metrics, wired onto the http router.
 * It is the glue between http/ and the capabilities (identity, auth, audit);
 * the rules themselves live in those capabilities.
 *
 * Untrusted input: every request. Secrets: passwords in sign-in bodies
 * (wiped after hashing), session and API tokens (hashed before lookup).
 */
#ifndef GH_API_H
#define GH_API_H

#include <jansson.h>

#include "auth/auth.h"
#include "core/core.h"
#include "http/http.h"
#include "store/store.h"

struct gh_app;

struct gh_app_config {
	struct gh_pw_params pw;		/* argon2id parameters */
	struct gh_session_limits session;
	char base_url[300];		/* scheme://host[:port], no slash */
	int64_t approval_ttl_ms;	/* sign-in approvals; 0: default */
	int64_t oidc_key_delay_ms;	/* new OIDC signing key: published
					 * this long before it signs */
	unsigned bcl_retry_s;		/* first back-channel logout retry
					 * wait, doubling; 0: 30 s */
	struct gh_guard_config {	/* brute-force protection; 0: off */
		unsigned signin_ip_per_min;	/* sign-in requests */
		unsigned signin_org_per_min;
		unsigned lockout_failures;	/* per account and address */
		unsigned lockout_max_s;		/* longest wait */
		char redis_url[256];	/* shared counters; "": this node */
	} guard;
};

struct gh_kms;

/* Makes the serving context. The store and the kms are borrowed and must
 * outlive it. */
gh_err gh_api_app_new(struct gh_store *store, struct gh_kms *kms,
    const struct gh_app_config *cfg, struct gh_app **out) GH_MUST_CHECK;
void gh_api_app_free(struct gh_app *app);
/* Notices written by requests are mailed through mailer (borrowed; it
 * must outlive the app). Without one they are only shown in the
 * account. */
struct gh_mailer;
void gh_api_app_set_mailer(struct gh_app *app, struct gh_mailer *mailer);
/* Countries of client addresses come from geo (borrowed; it must outlive
 * the app; src/policy). Without one every country is unknown. */
struct gh_geo;
void gh_api_app_set_geo(struct gh_app *app, const struct gh_geo *geo);

/* Starts the OpenID Connect back-channel logout sender (src/api/
 * oidc_bcl.c), a thread that posts the logout tokens queued when sessions
 * end; without it they wait in the outbox. Call before serving, from the
 * main thread. */
gh_err gh_api_bcl_start(struct gh_app *app) GH_MUST_CHECK;
/* Stops the sender after the post in flight (at most a few seconds).
 * Call after the HTTP server stopped; gh_api_app_free calls it too. */
void gh_api_bcl_stop(struct gh_app *app);

/* Registers every route on r; handlers receive the gh_app as their app. */
gh_err gh_api_routes(struct gh_http_router *r) GH_MUST_CHECK;

/* The organisation's password policy (the defaults when never set). */
gh_err gh_api_pw_policy_load(struct gh_db *db, struct gh_pw_policy *out)
    GH_MUST_CHECK;


/* ---- OpenID Connect clients (src/api/oidc_clients.c), shared with the
 * CLI. None opens a transaction; those that write audit as actor. ---- */
#define GH_API_OIDC_SECRET_LEN 43	/* base64url of 256 bits */
struct gh_audit_actor;
/* Validates body (the members of PUT /apps/{id}/oidc) into complete
 * client settings (*settings_out, new reference). GH_ERR_INVALID with msg
 * saying why. db is read for the attributes that claims name. */
gh_err gh_api_oidc_client_check(struct gh_db *db, json_t *body,
    json_t **settings_out, char *msg, size_t msg_cap) GH_MUST_CHECK;
/* Stores checked settings for the oidc app app_id (audited as
 * oidc.client.update). */
gh_err gh_api_oidc_client_save(struct gh_db *db,
    const struct gh_audit_actor *actor, const char *app_id, json_t *settings)
    GH_MUST_CHECK;
/* The settings view of GET /apps/{id}/oidc; GH_ERR_NOTFOUND. */
gh_err gh_api_oidc_client_json(struct gh_db *db, const char *app_id,
    json_t **out) GH_MUST_CHECK;
/* A new client secret for app_id (audited as oidc.secret.rotate), to be
 * shown once; the caller wipes it. GH_ERR_NOTFOUND without settings,
 * GH_ERR_CONFLICT for a public client. */
gh_err gh_api_oidc_secret_rotate(struct gh_db *db,
    const struct gh_audit_actor *actor, const char *app_id,
    char secret[static GH_API_OIDC_SECRET_LEN + 1]) GH_MUST_CHECK;

#endif
