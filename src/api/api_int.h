/* api_int.h: shared by the files of src/api; not for other capabilities. */
#ifndef GH_API_INT_H
#define GH_API_INT_H

#include <jansson.h>

#include "api/api.h"
#include "audit/audit.h"
#include "identity/identity.h"
#include "kms/kms.h"
#include "rbac/rbac.h"

#define SESSION_COOKIE "gh_session"
#define LOGIN_CSRF_COOKIE "gh_login_csrf"
#define MFA_COOKIE "gh_mfa"	/* pending second-factor sign-in (mfa.c) */
#define DEVICE_COOKIE "gh_device"	/* remembered device (mfa.c) */
#define RETURN_COOKIE "gh_return_to"	/* where the sign-in form goes next */
#define RETURN_TO_MAX 4096
#define RETURN_TO_TTL_S 900

struct gh_mailer;
struct gh_geo;
struct oidc_bcl;
struct gh_policy_eff;

struct gh_app {
	struct gh_store *store;
	struct gh_kms *kms;	/* borrowed; NULL only in tests without keys */
	struct gh_mailer *mailer;	/* borrowed; NULL: no mail */
	struct gh_rl *rl;		/* sign-in rate limits (guard.c) */
	const struct gh_geo *geo;	/* borrowed; NULL: countries unknown */
	struct oidc_bcl *bcl;	/* back-channel logout sender; NULL: none */
	struct gh_app_config cfg;
	struct oidc_keycache *oidc_keys;	/* oidc_keys.c */
	struct api_batch *batch;		/* batch.c */
	struct gh_org_cache *orgs;		/* {org} slugs, ctx_open */
};

/* Everything a request against /o/{org}/... needs. */
struct api_ctx {
	struct gh_app *app;
	struct gh_http_req *req;
	struct gh_org org;
	struct gh_db *db;		/* the org's tenant database, acquired */
	bool authed;
	struct gh_user user;		/* the caller, when authed */
	bool via_session;
	/* Set before ctx_auth: the session check also tells, in the same
	 * statement, whether the user has any attribute (has_attrs); an
	 * API token caller gets has_attrs = true (not probed). */
	bool probe_attrs;
	bool has_attrs;
	struct gh_session session;
	char session_token[GH_TOKEN_LEN + 1];
	struct gh_api_token token;	/* when via an API token */
	struct gh_audit_actor actor;
	struct gh_rbac_grants grants;	/* the caller's, after ctx_open_perm */
	bool notified;			/* a notice was written: kick the mailer */
	bool sessions_ended;		/* kick the back-channel logout sender */
	int64_t retry_after_s;		/* with GH_ERR_LIMIT from a sign-in */
	/* The effective security policy of policy_user, read once per
	 * request (a password sign-in needs it for the address gate, the
	 * MFA decision and the session limits); freed by ctx_close. */
	struct gh_policy_eff *policy;
	char policy_user[GH_ID_LEN + 1];
};

/* Asks the back-channel logout sender (src/api/oidc_bcl.c) to look at
 * org_id's outbox soon. No-op without a sender. */
void oidc_bcl_kick(struct gh_app *app, const char *org_id);

/* Resolves {org} and acquires its tenant database. On failure the error
 * response has been sent and false is returned. Close with ctx_close. */
bool ctx_open(struct gh_app *app, struct gh_http_req *req,
    struct api_ctx *ctx);
/* ctx_open for sign-in endpoints: a refused attempt against a suspended
 * organisation is still recorded in its sign-in log. */
bool ctx_open_signin(struct gh_app *app, struct gh_http_req *req,
    struct api_ctx *ctx, const char *username);
/* Authenticates the caller by API token or session cookie, checking CSRF
 * for unsafe cookie requests; with admin, requires the owner or admin role.
 * On failure responds and returns false. */
bool ctx_auth(struct api_ctx *ctx, bool admin);
/*
 * The start of every admin route (src/api/rbac.c): ctx_open, ctx_auth,
 * then the caller's grants (ctx->grants). Responds 403 permission_denied
 * naming perm (a name of the vocabulary in src/rbac/rbac.h) when the
 * caller holds it in no scope. On failure it has responded and closed;
 * returns false.
 */
bool ctx_open_perm(struct gh_app *app, struct gh_http_req *req,
    struct api_ctx *ctx, const char *perm);
/* ctx_open_perm without the permission: for routes whose permission
 * depends on the target (rules: the action's app or group). */
bool ctx_open_grants(struct gh_app *app, struct gh_http_req *req,
    struct api_ctx *ctx);
/* True when the caller holds perm in some scope; else responds 403
 * permission_denied naming it and returns false. */
bool ctx_holds(struct api_ctx *ctx, const char *perm);
/* For list endpoints: true when the caller holds perm over app_id (no
 * response). */
bool ctx_sees_app(struct api_ctx *ctx, const char *perm, const char *app_id);
/* Scope checks after ctx_open_perm: true when the caller holds perm over
 * the target, else responds 403 out_of_scope and returns false. For
 * users.write (and any write) a caller who holds perm only through a
 * scope may not touch a user who holds a role (owner, admin or any
 * assignment): a scoped admin cannot take over a peer or a superior. A
 * group scope covers the group and its child groups. */
bool ctx_may_user(struct api_ctx *ctx, const char *perm, const char *user_id);
bool ctx_may_group(struct api_ctx *ctx, const char *perm,
    const char *group_id);
bool ctx_may_app(struct api_ctx *ctx, const char *perm, const char *app_id);
/* True when the caller holds perm org-wide; else responds 403
 * out_of_scope (held only in a scope) and returns false. */
bool ctx_may_org(struct api_ctx *ctx, const char *perm);
/* For list endpoints: true when the caller may see user_id / group_id
 * under perm (no response). On a store failure *err_out is set. */
bool ctx_sees_user(struct api_ctx *ctx, const char *perm, const char *user_id,
    gh_err *err_out);
bool ctx_sees_group(struct api_ctx *ctx, const char *perm,
    const char *group_id, const char *parent_id);
/* Keeps only the elements of arr (objects) whose member key (a user id)
 * ctx_sees_user under perm; no-op for org-wide holders. */
gh_err ctx_filter_users(struct api_ctx *ctx, const char *perm, json_t *arr,
    const char *key) GH_MUST_CHECK;

/* Like ctx_auth for HTML pages: no response on failure. */
bool ctx_auth_quiet(struct api_ctx *ctx);
/* Releases the tenant database and wipes the token copy. */
void ctx_close(struct api_ctx *ctx);

/* Answers for a failed operation: maps the error code to a status. */
void respond_err(struct gh_http_req *req, gh_err err);
/* Ends the open transaction: commits when err is GH_OK, else (or when
 * the commit fails) rolls back and answers the error. True when
 * committed. */
bool finish(struct api_ctx *ctx, gh_err err);
void respond_invalid(struct gh_http_req *req, const char *fmt, ...)
    GH_PRINTF(2, 3);

/* Brute-force protection (src/api/guard.c). */
gh_err guard_new(struct gh_app *app) GH_MUST_CHECK;
void guard_free(struct gh_app *app);
/* oidc_keys.c: the OpenID provider's loaded keys, shared by the request
 * threads. */
gh_err oidc_keycache_new(struct oidc_keycache **out) GH_MUST_CHECK;
void oidc_keycache_free(struct oidc_keycache *c);

/* Group commit with parked connections (src/api/batch.c). write runs on
 * the writer thread, in a savepoint of a transaction that may hold other
 * requests' writes of the same org: it must use only db, do nothing but
 * database writes (sign, format and decide before) and return an error to
 * undo its own writes. Then done runs on the writer thread with the
 * outcome (GH_OK: committed, durable), answers req with one
 * gh_http_respond* call and frees arg. */
typedef gh_err (*batch_write_fn)(struct gh_db *db, void *arg);
typedef void (*batch_done_fn)(struct gh_http_req *req, void *arg,
    gh_err err);
gh_err batch_new(struct gh_store *store, struct api_batch **out)
    GH_MUST_CHECK;
/* After the HTTP server has stopped. */
void batch_free(struct api_batch *b);
/* Call outside a transaction, as the handler's last act with ctx->req
 * (ctx may be closed right after). Queues the job and suspends the
 * connection: true when write and done will run. False when the queue is
 * full or the server stops: nothing queued, the caller answers (503) and
 * still owns arg. */
bool batch_park(struct api_ctx *ctx, batch_write_fn write,
    batch_done_fn done, void *arg) GH_MUST_CHECK;
/* Takes one sign-in request from the client address's and the org's
 * budgets; over either, responds 429 rate_limited (Retry-After) and
 * returns false. Call first in every unauthenticated sign-in handler. */
bool guard_signin_rate(struct gh_app *app, struct gh_http_req *req);
/* True while the account as typed must wait, from this address or from
 * anywhere; *retry_s_out: how long. */
bool guard_account_locked(struct api_ctx *ctx, const char *username,
    int64_t *retry_s_out);
void guard_account_failed(struct api_ctx *ctx, const char *username);
void guard_account_succeeded(struct api_ctx *ctx, const char *username);
/* 429 too_many_attempts with Retry-After. */
void guard_respond_locked(struct gh_http_req *req, int64_t retry_s);

/* Parses the integer query argument name in [lo, hi] (absent: def).
 * Responds 400 and returns false when it is malformed. */
bool query_int(struct gh_http_req *req, const char *name, int64_t lo,
    int64_t hi, int64_t def, int64_t *out);

/* A list's "limit" query argument, 1..max (absent: 50). */
bool query_limit(struct gh_http_req *req, int max, int *out);

/* Parses the JSON body as an object whose keys must all be in allowed
 * (NULL-terminated). Responds and returns NULL on failure. */
json_t *body_object(struct gh_http_req *req, const char *const *allowed);
/* Reads an optional string member: true if absent or a string (then *out
 * points into obj), false (after responding) otherwise. */
bool member_str(struct gh_http_req *req, json_t *obj, const char *key,
    const char **out);

/* Checks pw against the password rules of the user named username (the
 * org's password policy with their security policy laid over it; the
 * org's alone for a user not created yet); responds 400 weak_password and
 * returns false when it fails. */
bool password_acceptable(struct api_ctx *ctx, const char *pw,
    const char *username, const char *email);

/* Makes a session and sets the cookie; the caller's transaction covers
 * the session, its audit event and the sign-in record. */
gh_err session_start(struct api_ctx *ctx, const struct gh_user *u,
    char csrf_out[static GH_TOKEN_LEN + 1], struct gh_session *s_out);

/* Runs the password sign-in for username/password, with the sign-in
 * record and metrics. On success fills *u_out and *s_out and the CSRF
 * token, and *reason_out is NULL, or "mfa_remembered_device" when the
 * browser's gh_device cookie stood in for the second factor; on failure
 * *reason_out is the reason code recorded. When *need_out is
 * GH_MFA_NEED_VERIFY or GH_MFA_NEED_ENROL_NOW no session was made:
 * mfa_token_out holds a pending sign-in token instead (src/api/mfa.c). */
gh_err signin_password(struct api_ctx *ctx, const char *username,
    const char *password, struct gh_user *u_out, struct gh_session *s_out,
    char csrf_out[static GH_TOKEN_LEN + 1], const char **reason_out,
    enum gh_mfa_need *need_out, char mfa_token_out[static GH_TOKEN_LEN + 1]);

/* Revokes the current session (audited) and clears the cookie. */
gh_err session_end(struct api_ctx *ctx);
/* Revokes every live session of user_id except keep (NULL: all), in the
 * caller's transaction, without audit. */
gh_err revoke_sessions_except(struct api_ctx *ctx, const char *user_id,
    const char *keep, int64_t *count_out);
/* Answers {"sessions": [...]} for user_id. */
void respond_sessions(struct api_ctx *ctx, const char *user_id);

/* Records a refused sign-in attempt (its own transaction) and counts it
 * in the metrics. user_id may be NULL. */
void record_failure(struct api_ctx *ctx, const char *user_id,
    const char *username, const char *reason);

json_t *session_json(const struct gh_session *s, bool current);

/* Validated fields of a user create or update body; strings point into
 * the JSON object. */
struct user_fields {
	const char *username, *email, *display_name, *role, *state;
	const char *password, *password_hash;
};

/* Reads the user members of body (each optional, each a string; a null
 * email clears it) and validates them. On failure writes a message naming
 * the field to msg and returns GH_ERR_INVALID. Pure: the fuzz target
 * fuzz/fuzz_user_fields.c drives it. */
gh_err user_fields_parse(json_t *body, struct user_fields *f, char *msg,
    size_t msg_cap) GH_MUST_CHECK;

/* Route groups. */
gh_err routes_account(struct gh_http_router *r);
gh_err routes_admin(struct gh_http_router *r);
gh_err routes_web(struct gh_http_router *r);
gh_err routes_attrs(struct gh_http_router *r);
gh_err routes_health(struct gh_http_router *r);
gh_err routes_keys(struct gh_http_router *r);
gh_err routes_mfa(struct gh_http_router *r);
gh_err routes_webauthn(struct gh_http_router *r);
/* The passkeys page and its script (webauthn_page.c), from routes_webauthn. */
gh_err routes_webauthn_page(struct gh_http_router *r);
gh_err routes_groups(struct gh_http_router *r);
gh_err routes_apps(struct gh_http_router *r);
gh_err routes_rules(struct gh_http_router *r);

/* Re-evaluates every assignment rule for user_id in the caller's
 * transaction (src/api/rules.c): call it wherever a user's fields,
 * attributes or group memberships change. GH_ERR_DENIED when a rule needs
 * keys that are unavailable. */
gh_err access_rules_apply_user(struct api_ctx *ctx, const char *user_id)
    GH_MUST_CHECK;
/* The same for every user: after a change that can move many users at
 * once (a group renamed, moved or deleted, an attribute deleted). */
gh_err access_rules_apply_all(struct api_ctx *ctx) GH_MUST_CHECK;
gh_err routes_policy(struct gh_http_router *r);

/* Security policies at sign-in (src/api/policy.c). */
/* The org's MFA policy with user_id's effective security policy laid
 * over it (mfa.required, mfa.methods): what gh_auth_mfa_need and the
 * second step decide by. user_id NULL or "": the org's policy alone. */
gh_err mfa_policy_for(struct api_ctx *ctx, const char *user_id,
    struct gh_mfa_policy *out) GH_MUST_CHECK;
/* The org's password policy with user_id's effective policy laid over. */
gh_err pw_policy_for(struct api_ctx *ctx, const char *user_id,
    struct gh_pw_policy *out) GH_MUST_CHECK;
/* Judges the client address against user_id's effective policy:
 * *reason_out NULL (allowed), "ip_not_allowed" or "country_not_allowed".
 * Reads only; the caller records a refusal (record_failure) and answers
 * it with policy_respond_refusal. */
gh_err policy_signin_gate(struct api_ctx *ctx, const char *user_id,
    const char **reason_out) GH_MUST_CHECK;
/* Answers 403 with the reason as the error code. */
void policy_respond_refusal(struct gh_http_req *req, const char *reason);
/* The session limits of user_id (the server's, shortened by the
 * policy), its max_concurrent (0: none) and the network verdict
 * (*refusal_out as in policy_signin_gate), for session_start. */
gh_err policy_session_limits(struct api_ctx *ctx, const char *user_id,
    struct gh_session_limits *lim, int64_t *max_concurrent_out,
    const char **refusal_out) GH_MUST_CHECK;
/* Revokes the oldest live sessions of user_id beyond max (0: none),
 * audited as session.revoke, in the caller's transaction. */
gh_err policy_sessions_trim(struct api_ctx *ctx, const char *user_id,
    int64_t max) GH_MUST_CHECK;
gh_err routes_rbac(struct gh_http_router *r);
gh_err routes_scim(struct gh_http_router *r);
gh_err routes_scim_tokens(struct gh_http_router *r);
gh_err routes_oidc(struct gh_http_router *r);
gh_err routes_oidc_admin(struct gh_http_router *r);

/* Writes the notice that an audited action on user_id's MFA owes that
 * user (src/api/notices.c), in the caller's transaction: recovery code
 * used, factors reset, a factor added or removed, a possible cloned
 * authenticator. Other actions owe none: GH_OK. */
gh_err notify_for_action(struct api_ctx *ctx, const char *action,
    const char *user_id, const char *method);
/* Writes a notice of kind (GH_NOTICE_*) for user_id naming method and the
 * device (ip, ua) it is about, in the caller's transaction. */
gh_err notify_kind(struct api_ctx *ctx, const char *user_id, const char *kind,
    const char *method, const char *ip, const char *ua);
gh_err routes_notices(struct gh_http_router *r);
gh_err routes_approval(struct gh_http_router *r);

/* MFA sign-in helpers (src/api/mfa.c). The org's MFA policy: */
gh_err mfa_policy_load(struct gh_db *db, struct gh_mfa_policy *out)
    GH_MUST_CHECK;
/* Completes the pending sign-in of token with method ("totp" or
 * "recovery") and code, recording the attempt: on GH_OK a session as
 * signin_password makes it, and with remember (when the policy allows it)
 * a remembered device (*remembered_out). Refusals: GH_ERR_DENIED
 * (*error_out is "mfa_token_invalid", "invalid_mfa_code",
 * "mfa_enrolment_required" or "mfa_method_not_allowed"), GH_ERR_LIMIT
 * (locked; *retry_after_out seconds), GH_ERR_INVALID (a malformed code or
 * method). Any other code is a store failure. */
gh_err mfa_signin_complete(struct api_ctx *ctx, const char *token,
    const char *method, const char *code, bool remember,
    struct gh_user *u_out, struct gh_session *s_out,
    char csrf_out[static GH_TOKEN_LEN + 1], const char **error_out,
    int64_t *retry_after_out, bool *remembered_out) GH_MUST_CHECK;
/* After a second factor of u, in the caller's transaction: when the
 * policy has remember_device_days, remembers this browser (replacing the
 * row of a gh_device cookie it sent), audits mfa.device.remember and sets
 * the cookie; *done_out tells whether it did. */
gh_err mfa_device_remember(struct api_ctx *ctx, const struct gh_user *u,
    const struct gh_mfa_policy *pol, bool *done_out) GH_MUST_CHECK;
/* Revokes every remembered device of user_id in the caller's transaction,
 * auditing mfa.device.revoke with reason when there were any. */
gh_err mfa_devices_revoke_all(struct api_ctx *ctx, const char *user_id,
    const char *reason) GH_MUST_CHECK;
/* Authenticates an enrolment request: a session or API token as usual, or
 * (with no other credentials) a pending sign-in of purpose "enrol" (the
 * gh_mfa cookie or body's "mfa_token"), whose id goes to pending_id. On
 * failure responds and returns false. */
bool mfa_enrol_auth(struct api_ctx *ctx, json_t *body,
    char pending_id[static GH_ID_LEN + 1]);
/* Ends an enrol-purpose pending sign-in after an enrolment, in the
 * caller's transaction: deletes it, makes the session, records the
 * sign-in with reason. */
gh_err mfa_enrol_signin(struct api_ctx *ctx, const char *pending_id,
    const char *reason, char csrf_out[static GH_TOKEN_LEN + 1],
    struct gh_session *s_out) GH_MUST_CHECK;
/* Clears the pending sign-in cookie. */
void mfa_cookie_clear(struct api_ctx *ctx);
/* Responds 403 mfa_method_not_allowed naming method. */
void mfa_respond_not_allowed(struct gh_http_req *req, const char *method);
/* Appends the audit event action about user_id's factor method (reason
 * may be NULL) in the caller's transaction. */
gh_err audit_mfa(struct api_ctx *ctx, const char *action,
    const char *user_id, const char *method, const char *reason)
    GH_MUST_CHECK;
/* Confirms ctx->user's pending TOTP enrolment with code in its own
 * transaction, audited; makes recovery codes when the user has none
 * (*fresh_out, codes). With pending (a pending sign-in id of purpose
 * "enrol"; "" for none) it also ends that sign-in with a session (s_out,
 * csrf_out, cookie set). GH_ERR_DENIED: wrong or malformed code (counted
 * against a pending sign-in); GH_ERR_NOTFOUND: no enrolment started. */
gh_err mfa_totp_confirm(struct api_ctx *ctx, const char *pending,
    const char *code,
    char codes[static GH_MFA_RECOVERY_COUNT][GH_MFA_RECOVERY_LEN + 1],
    bool *fresh_out, char csrf_out[static GH_TOKEN_LEN + 1],
    struct gh_session *s_out) GH_MUST_CHECK;
/* Checks ctx->user's current factor (method "totp" or "recovery") before
 * a change to their factors, counting failures. GH_OK leaves a
 * transaction open; GH_ERR_DENIED: wrong code; GH_ERR_LIMIT: locked
 * (*retry_after_out seconds). */
gh_err mfa_proof(struct api_ctx *ctx, const char *method, const char *code,
    int64_t *retry_after_out) GH_MUST_CHECK;
/* In the caller's transaction: removes ctx->user's TOTP and recovery
 * codes, audited. */
gh_err mfa_totp_remove(struct api_ctx *ctx) GH_MUST_CHECK;
/* In the caller's transaction: replaces ctx->user's recovery codes,
 * audited. GH_ERR_CONFLICT when TOTP is not enrolled. */
gh_err mfa_recovery_regenerate(struct api_ctx *ctx,
    char codes[static GH_MFA_RECOVERY_COUNT][GH_MFA_RECOVERY_LEN + 1])
    GH_MUST_CHECK;

/* HTML helpers (src/api/web.c), used by web_mfa.c. */
/* Appends s with &<>"' escaped. */
void put_escaped(struct gh_buf *b, const char *s);
/* Starts a page: doctype, viewport, title, stylesheet, <main>. With
 * script, also loads /static/webauthn.js. */
void page_open(struct gh_buf *b, const char *title);
void page_open_script(struct gh_buf *b, const char *title);
/* Ends the page and sends it; frees b. */
void page_send(struct gh_http_req *req, unsigned status, struct gh_buf *b);
/* Redirects to /o/{org}/page. */
void redirect_to(struct api_ctx *ctx, const char *page);
/* The sign-in form with an optional error. */
void login_page(struct api_ctx *ctx, unsigned status, const char *error,
    const char *username);
/* True when both tokens are GH_TOKEN_LEN long and equal. */
bool csrf_form_ok(const char *form_csrf, const char *cookie_csrf);
/* Clears the login CSRF cookie once the sign-in is over. */
void clear_login_csrf(struct api_ctx *ctx);
/* True when s is a same-origin path under /o/{org}/ of printable ASCII
 * (at most RETURN_TO_MAX bytes): the only return_to accepted. */
bool return_to_safe(const struct api_ctx *ctx, const char *s);
/* Remembers target (return_to_safe) in the gh_return_to cookie. */
gh_err return_to_set(struct api_ctx *ctx, const char *target)
    GH_MUST_CHECK;
/* After a completed form sign-in: redirects to the remembered return_to
 * (clearing it) or to the account page. */
void signin_done_redirect(struct api_ctx *ctx);

/* Pages of src/api/web_mfa.c. */
/* Answers the password step's GH_MFA_NEED_ENROL_NOW in the form sign-in:
 * sets the gh_mfa cookie (pending token) and shows the TOTP enrolment
 * page bound to it; csrf is the login CSRF token. */
void web_enrol_now(struct api_ctx *ctx, const char *mfa_token,
    const char *csrf);
/* The second-step page: security key (when the user has one), TOTP and
 * recovery code forms. token: the pending sign-in (cookie). */
void web_mfa_page(struct api_ctx *ctx, unsigned status, const char *error,
    const char *csrf, const char *token);
gh_err routes_web_mfa(struct gh_http_router *r);

/* Sign-in approval from a signed-in device (src/api/approval.c). True when
 * the caller came through a session made with a second factor, the only
 * kind that may approve. */
bool approval_session_ok(const struct api_ctx *ctx);
/* The public view of a request (no number, no secret). */
json_t *approval_json(const struct gh_approval *a);
/*
 * Approves or denies for the caller (approval_session_ok) the request id
 * with number, or the request whose QR secret is code (then id and number
 * are ignored). Commits the decision with its audit events; a denial is
 * recorded as a possible attack (audit, sign-in log, MFA lockout count).
 * GH_OK: *state_out approved or denied. Refusals set *error_out:
 * GH_ERR_NOTFOUND "approval_not_found", GH_ERR_CONFLICT "approval_expired"
 * or "approval_decided", GH_ERR_DENIED "approval_number_mismatch" (counted;
 * *state_out denied after the last allowed try). Other codes: store
 * failures.
 */
gh_err approval_decide(struct api_ctx *ctx, const char *id, const char *code,
    bool approve, int number, const char **error_out,
    enum gh_approval_state *state_out) GH_MUST_CHECK;

#endif
