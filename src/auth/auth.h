/*
 * auth.h: passwords (argon2id hashing, bcrypt import, strength policy),
 * sessions and API tokens.
 *
 * Secrets: passwords are only borrowed and never stored or logged; session
 * and API tokens are 256-bit random values returned once to the caller and
 * stored only as SHA-256 digests, compared in constant time.
 *
 * Functions that take a struct gh_db write to the tenant database but never
 * open a transaction: the caller opens it so that the change and its audit
 * event commit together.
 */
#ifndef GH_AUTH_H
#define GH_AUTH_H

#include <jansson.h>

#include "core/core.h"
#include "store/store.h"

/* ---- password hashing ----------------------------------------------------- */

#define GH_PW_MAX_LEN 256	/* bytes; longer passwords are refused */

struct gh_pw_params {
	uint32_t t_cost;	/* argon2id iterations, >= 2 */
	uint32_t m_kib;		/* memory in KiB, >= 19456 (OWASP minimum) */
	uint32_t parallelism;	/* lanes, >= 1 */
};

/* OWASP's minimum: m=19456 KiB, t=2, p=1. */
void gh_auth_pw_params_default(struct gh_pw_params *p);
/* GH_ERR_INVALID below OWASP's minimum or above sane ceilings
 * (t <= 10, m <= 1 GiB, p <= 16). */
gh_err gh_auth_pw_params_check(const struct gh_pw_params *p) GH_MUST_CHECK;

/* Hashes with argon2id and a fresh 16-byte random salt. *hash_out is the
 * PHC string ($argon2id$v=19$m=..,t=..,p=..$salt$hash), malloc'd. */
gh_err gh_auth_pw_hash(const struct gh_pw_params *p, const char *password,
    char **hash_out) GH_MUST_CHECK;

/*
 * Verifies password against a stored argon2id or bcrypt ($2b$, $2a$, $2y$)
 * hash. GH_OK on match, GH_ERR_DENIED on mismatch, GH_ERR_INVALID when the
 * hash is of no supported kind. On a match *needs_rehash is set when the
 * hash is bcrypt or argon2id with weaker parameters than p.
 */
gh_err gh_auth_pw_verify(const struct gh_pw_params *p, const char *hash,
    const char *password, bool *needs_rehash) GH_MUST_CHECK;

/* Spends about the time of one verification, for unknown users, so that the
 * response does not tell whether the user exists. */
void gh_auth_pw_verify_dummy(const struct gh_pw_params *p,
    const char *password);

/* True for the hash kinds gh_auth_pw_verify accepts (used when importing
 * users with existing hashes). */
/* Unmaps argon2id working memory kept from hashes that ended at least
 * idle_ms ago (the server calls it every second). */
void gh_auth_pw_mem_trim(uint64_t idle_ms);
bool gh_auth_pw_hash_supported(const char *hash);

/* ---- password policy ------------------------------------------------------ */

struct gh_pw_policy {
	int min_length;		/* characters (code points), 8..128 */
	int min_classes;	/* of lower, upper, digit, symbol: 0..4 */
	int min_score;		/* libpwquality score, 0..100 */
	bool reject_common;	/* common and breached-pattern passwords */
	bool reject_context;	/* username, e-mail, org name or slug */
};

/* min_length 10, min_classes 0, min_score 30, both rejections on. */
void gh_auth_pw_policy_default(struct gh_pw_policy *pol);
/* Checks the bounds above. On failure names the field in *field_out. */
gh_err gh_auth_pw_policy_validate(const struct gh_pw_policy *pol,
    const char **field_out) GH_MUST_CHECK;

/* What a password is checked against besides itself. Fields may be NULL. */
struct gh_pw_context {
	const char *username;
	const char *email;
	const char *org_slug;
	const char *org_name;
};

/*
 * GH_OK if password satisfies pol. Otherwise GH_ERR_INVALID, with a stable
 * reason code in *code_out ("too_short", "too_long", "too_few_classes",
 * "common", "contains_username", "contains_email", "contains_org",
 * "too_weak", "invalid_utf8") and a sentence for a person in reason (never
 * containing the password).
 */
gh_err gh_auth_pw_policy_check(const struct gh_pw_policy *pol,
    const char *password, const struct gh_pw_context *ctx,
    const char **code_out, char *reason, size_t reason_cap) GH_MUST_CHECK;

/* ---- tokens ----------------------------------------------------------------- */

/* Session tokens and API tokens: 32 random bytes, base64url (43 chars).
 * API tokens carry the prefix "gh_" so that scanners can spot leaks. */
#define GH_TOKEN_LEN 43
#define GH_API_TOKEN_PREFIX "gh_"
#define GH_API_TOKEN_LEN (3 + GH_TOKEN_LEN)
/* Digest of a token as 64 lowercase hex chars plus NUL. */
#define GH_TOKEN_HASH_LEN 64

/* ---- sessions ------------------------------------------------------------- */

struct gh_session {
	char id[GH_ID_LEN + 1];		/* public id, not the secret */
	char user_id[GH_ID_LEN + 1];
	int64_t created_at;
	int64_t last_seen_at;
	int64_t expires_at;		/* absolute expiry */
	char source_ip[64];
	char user_agent[256];		/* truncated */
	int64_t mfa_at;			/* made with a second factor; 0 if not */
};

struct gh_session_limits {
	int64_t absolute_ms;	/* lifetime from creation */
	int64_t idle_ms;	/* lifetime from last use */
};

/*
 * Creates a session for user_id. Writes the secret token (GH_TOKEN_LEN
 * chars + NUL) to token_out, which the caller wipes after setting the
 * cookie, and the new row to *out.
 */
gh_err gh_auth_session_create(struct gh_db *db, const char *user_id,
    const struct gh_session_limits *lim, const char *source_ip,
    const char *user_agent, char token_out[static GH_TOKEN_LEN + 1],
    struct gh_session *out) GH_MUST_CHECK;

/*
 * Finds the live session for token: not revoked, not past its absolute or
 * idle expiry, and its user active. Refreshes last_seen_at (at most once a
 * minute, to spare writes). GH_ERR_DENIED when there is none.
 */
gh_err gh_auth_session_check(struct gh_db *db, const char *token,
    const struct gh_session_limits *lim, struct gh_session *out)
    GH_MUST_CHECK;
/*
 * As gh_auth_session_check, and reads more columns of the session's user
 * (aliased u) in the same statement, on the same snapshot: extra_cols, an
 * SQL column list (a constant, never client text), read from the row by
 * read_extra(st, first_column, arg) once the session is found live and
 * before it is refreshed. Spares the caller a second lookup of the user.
 * arg is arg_size plain bytes that read_extra fills entirely (no pointers
 * out of it).
 *
 * A live answer is remembered in db's connection (GH_AUTH_SESSION_MEMO_N
 * of them, by token digest, extra_cols and limits) while nothing commits to
 * the database: as long as gh_db_version is unchanged, the same statement
 * would return the same row, so only the time limits are checked again (in
 * C, as SESSION_LIVE does in SQL) and the remembered row and arg bytes are
 * given back. Any commit (a revocation, a disabled user, a policy change,
 * another process's write, this check's own refresh of last_seen_at) drops
 * them all; so does an open transaction (no memo is used or filled in one).
 */
#define GH_AUTH_SESSION_MEMO_N 8
gh_err gh_auth_session_check_with(struct gh_db *db, const char *token,
    const struct gh_session_limits *lim, struct gh_session *out,
    const char *extra_cols,
    void (*read_extra)(struct gh_stmt *st, int first, void *arg), void *arg,
    size_t arg_size)
    GH_MUST_CHECK;

/* The CSRF token bound to a session token: base64url(SHA-256("csrf" ||
 * token)), GH_TOKEN_LEN chars + NUL. */
void gh_auth_session_csrf(const char *token, char out[static GH_TOKEN_LEN + 1]);
/* Constant-time check of a submitted CSRF token. */
bool gh_auth_session_csrf_ok(const char *token, const char *submitted);

/* Calls fn for each live session of user_id, newest first. */
gh_err gh_auth_session_list(struct gh_db *db, const char *user_id,
    const struct gh_session_limits *lim,
    void (*fn)(const struct gh_session *s, void *arg), void *arg)
    GH_MUST_CHECK;

/* Records that the live session session_id was made with a second factor
 * (TOTP, recovery code, WebAuthn, passkey or an approval). GH_ERR_NOTFOUND
 * when there is no such unrevoked session. */
gh_err gh_auth_session_mark_mfa(struct gh_db *db, const char *session_id,
    int64_t now_ms) GH_MUST_CHECK;
/* *out: user_id has at least one live session made with a second factor
 * (who could approve a sign-in). */
gh_err gh_auth_session_mfa_live(struct gh_db *db, const char *user_id,
    const struct gh_session_limits *lim, bool *out) GH_MUST_CHECK;

/* Revokes one session. When user_id is not NULL the session must belong to
 * that user (else GH_ERR_NOTFOUND). GH_ERR_NOTFOUND when already revoked.
 * Both revoke calls also queue, in the caller's transaction, an OpenID
 * Connect back-channel logout for every client that got tokens in each
 * session ended (oidc_logout_outbox; src/api/oidc_bcl.c sends them). */
gh_err gh_auth_session_revoke(struct gh_db *db, const char *session_id,
    const char *user_id) GH_MUST_CHECK;
/* Revokes every live session of user_id; *count_out gets how many. */
gh_err gh_auth_session_revoke_user(struct gh_db *db, const char *user_id,
    int64_t *count_out) GH_MUST_CHECK;

/* ---- API tokens ------------------------------------------------------------ */

struct gh_api_token {
	char id[GH_ID_LEN + 1];
	char user_id[GH_ID_LEN + 1];
	char name[65];
	int64_t created_at;
	int64_t expires_at;
	int64_t last_used_at;	/* 0 if never */
};

#define GH_API_TOKEN_MAX_TTL_MS (366LL * 24 * 3600 * 1000)

/* Creates a token for user_id named name (1-64 chars), expiring at
 * expires_at (in the future, at most GH_API_TOKEN_MAX_TTL_MS away). The
 * secret goes to token_out, shown once. */
gh_err gh_auth_api_token_create(struct gh_db *db, const char *user_id,
    const char *name, int64_t expires_at,
    char token_out[static GH_API_TOKEN_LEN + 1], struct gh_api_token *out)
    GH_MUST_CHECK;
/* Finds the live token (not revoked, not expired, user active) and
 * records its use. GH_ERR_DENIED when there is none. */
gh_err gh_auth_api_token_check(struct gh_db *db, const char *token,
    struct gh_api_token *out) GH_MUST_CHECK;
/* Lists the live tokens of user_id (all users when NULL). */
gh_err gh_auth_api_token_list(struct gh_db *db, const char *user_id,
    void (*fn)(const struct gh_api_token *t, void *arg), void *arg)
    GH_MUST_CHECK;
/* Revokes; GH_ERR_NOTFOUND if absent or already revoked. */
gh_err gh_auth_api_token_revoke(struct gh_db *db, const char *token_id)
    GH_MUST_CHECK;
/* Revokes every unexpired token of user_id (a disabled user's tokens must
 * not come back when the user is enabled again); *count_out gets how
 * many. */
gh_err gh_auth_api_token_revoke_user(struct gh_db *db, const char *user_id,
    int64_t *count_out) GH_MUST_CHECK;

/* ---- multi-factor authentication ------------------------------------------ */

/*
 * TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps) and recovery codes.
 * Seeds are 20 random bytes, encrypted through src/kms (GH_KMS_SECRETS,
 * AAD {org, "mfa_totp", "seed", user id}) and decrypted only into wiped
 * buffers for the duration of one check. Recovery codes and pending
 * sign-in tokens are stored as hex SHA-256 digests only.
 */
#define GH_MFA_SEED_LEN 20
#define GH_MFA_SECRET_B32_LEN 32	/* base32 of the seed, no padding */
#define GH_MFA_TOTP_DIGITS 6
#define GH_MFA_TOTP_STEP_S 30
#define GH_MFA_TOTP_WINDOW 1		/* steps accepted either side */
#define GH_MFA_RECOVERY_COUNT 10
#define GH_MFA_RECOVERY_LEN 19		/* XXXX-XXXX-XXXX-XXXX */
#define GH_MFA_PENDING_TTL_MS (5 * 60 * 1000)
#define GH_MFA_PENDING_MAX_FAILS 5	/* wrong codes that kill a pending */
#define GH_MFA_LOCK_FAILS 10		/* consecutive failures that lock */
#define GH_MFA_LOCK_MS (15 * 60 * 1000)

struct gh_kms;

/* What TOTP enrolment shows the user once. */
struct gh_mfa_enrolment {
	char secret[GH_MFA_SECRET_B32_LEN + 1];	/* base32 seed */
	char *otpauth_uri;	/* malloc'd; wiped by _free */
	char *qr_svg;		/* malloc'd SVG document of the URI */
};
/* Wipes and frees the members; the struct itself is the caller's. */
void gh_auth_mfa_enrolment_free(struct gh_mfa_enrolment *e);

/* The RFC 6238 code of seed at unix time t_s, digits 6..8 (for tests and
 * for the window check). */
gh_err gh_auth_totp_code(const uint8_t *seed, size_t seed_len, int64_t t_s,
    int digits, char out[static 9]) GH_MUST_CHECK;
/* True when code is exactly GH_MFA_TOTP_DIGITS ASCII digits. */
bool gh_auth_totp_code_shape_ok(const char *code);
/* Renders text as a QR code (ECC level M) in an SVG document, malloc'd. */
gh_err gh_auth_qr_svg(const char *text, char **svg_out) GH_MUST_CHECK;

/*
 * Starts TOTP enrolment: a fresh seed replaces any unconfirmed one.
 * GH_ERR_CONFLICT when the user has a confirmed TOTP already. issuer (the
 * org name) and account (the username) label the otpauth URI.
 */
gh_err gh_auth_totp_begin(struct gh_db *db, struct gh_kms *kms,
    const char *org_id, const char *user_id, const char *issuer,
    const char *account, struct gh_mfa_enrolment *out) GH_MUST_CHECK;
/* Confirms the pending enrolment with a current code. GH_ERR_NOTFOUND
 * without one (or when already confirmed), GH_ERR_DENIED for a wrong
 * code, GH_ERR_INVALID for a code of the wrong shape. */
gh_err gh_auth_totp_confirm(struct gh_db *db, struct gh_kms *kms,
    const char *org_id, const char *user_id, const char *code, int64_t now_ms)
    GH_MUST_CHECK;
/* Checks a code against the confirmed TOTP, within GH_MFA_TOTP_WINDOW
 * steps, and records its step. GH_ERR_DENIED for a wrong code; with
 * *replay_out set when the code is right but its step was used already
 * (or an earlier one). GH_ERR_NOTFOUND without a confirmed TOTP,
 * GH_ERR_INVALID for a code of the wrong shape. */
gh_err gh_auth_totp_verify(struct gh_db *db, struct gh_kms *kms,
    const char *org_id, const char *user_id, const char *code, int64_t now_ms,
    bool *replay_out) GH_MUST_CHECK;
/* Removes the user's TOTP (confirmed or not). GH_ERR_NOTFOUND if none. */
gh_err gh_auth_totp_remove(struct gh_db *db, const char *user_id)
    GH_MUST_CHECK;

struct gh_mfa_factors {
	bool totp;			/* confirmed TOTP */
	bool totp_pending;		/* enrolment started, unconfirmed */
	int64_t totp_confirmed_at;
	int recovery_remaining;		/* unused recovery codes */
	int64_t recovery_created_at;	/* 0 when none */
};
gh_err gh_auth_mfa_factors(struct gh_db *db, const char *user_id,
    struct gh_mfa_factors *out) GH_MUST_CHECK;

/* Replaces every recovery code of user_id with GH_MFA_RECOVERY_COUNT new
 * ones, written to codes (shown once; the caller wipes them). */
gh_err gh_auth_recovery_generate(struct gh_db *db, const char *user_id,
    char codes[static GH_MFA_RECOVERY_COUNT][GH_MFA_RECOVERY_LEN + 1])
    GH_MUST_CHECK;
/* Spends one unused recovery code (case, dashes and spaces ignored).
 * GH_ERR_DENIED when it is wrong or used, GH_ERR_INVALID when it cannot
 * be a code. */
gh_err gh_auth_recovery_use(struct gh_db *db, const char *user_id,
    const char *code, int64_t now_ms) GH_MUST_CHECK;

/* Removes every factor, pending sign-in and the lockout of user_id and
 * revokes their remembered devices. */
gh_err gh_auth_mfa_reset(struct gh_db *db, const char *user_id)
    GH_MUST_CHECK;

/* GH_ERR_LIMIT while the user's MFA is locked (*until_out: when it ends). */
gh_err gh_auth_mfa_lock_check(struct gh_db *db, const char *user_id,
    int64_t now_ms, int64_t *until_out) GH_MUST_CHECK;
/* Counts a failed second factor; the GH_MFA_LOCK_FAILS-th consecutive one
 * locks for GH_MFA_LOCK_MS (*locked_out true). */
gh_err gh_auth_mfa_fail(struct gh_db *db, const char *user_id, int64_t now_ms,
    bool *locked_out) GH_MUST_CHECK;
/* Clears the failure counter after a correct second factor. */
gh_err gh_auth_mfa_succeed(struct gh_db *db, const char *user_id)
    GH_MUST_CHECK;

/* ---- pending second-factor sign-ins ---------------------------------------- */

enum gh_mfa_purpose { GH_MFA_PURPOSE_VERIFY, GH_MFA_PURPOSE_ENROL };

struct gh_mfa_pending {
	char id[GH_ID_LEN + 1];
	char user_id[GH_ID_LEN + 1];
	enum gh_mfa_purpose purpose;
	int64_t created_at;
	int64_t expires_at;
	int failures;
};

/* Creates a pending sign-in for user_id living GH_MFA_PENDING_TTL_MS; the
 * token (GH_TOKEN_LEN chars + NUL, shown once) goes to token_out. */
gh_err gh_auth_mfa_pending_create(struct gh_db *db, const char *user_id,
    enum gh_mfa_purpose purpose, const char *source_ip,
    const char *user_agent, char token_out[static GH_TOKEN_LEN + 1],
    struct gh_mfa_pending *out) GH_MUST_CHECK;
/* Finds the unexpired pending sign-in of token whose user is active.
 * GH_ERR_DENIED when there is none. */
gh_err gh_auth_mfa_pending_check(struct gh_db *db, const char *token,
    struct gh_mfa_pending *out) GH_MUST_CHECK;
/* Counts a wrong code; the GH_MFA_PENDING_MAX_FAILS-th deletes the
 * pending sign-in (*killed_out true). */
gh_err gh_auth_mfa_pending_fail(struct gh_db *db, const char *id,
    bool *killed_out) GH_MUST_CHECK;
gh_err gh_auth_mfa_pending_delete(struct gh_db *db, const char *id)
    GH_MUST_CHECK;

/* ---- MFA policy -------------------------------------------------------------- */

#define GH_MFA_REMEMBER_DAYS_MAX 90

/* The org setting "mfa_policy": {"required", "grace_days", "methods",
 * "remember_device_days", "required_since", "required_groups",
 * "required_groups_since"}. "methods" is a non-empty
 * subset of "totp", "webauthn", "recovery" holding "totp" or "webauthn".
 * A method not allowed is refused at the second step of sign-in and for
 * enrolment. */
#define GH_MFA_GROUPS_MAX 64

/* MFA is required for the effective members of group_id since since
 * (ms), when the org-wide "required" is off. */
struct gh_mfa_group_rule {
	char group_id[GH_ID_LEN + 1];
	int64_t since;
};

struct gh_mfa_policy {
	bool required;
	int grace_days;			/* 0..365 */
	int64_t required_since;		/* ms; 0 when never required */
	bool allow_totp;
	bool allow_recovery;
	bool allow_webauthn;		/* security keys and passkeys */
	int remember_device_days;	/* 0 (off) .. GH_MFA_REMEMBER_DAYS_MAX */
	bool allow_approval;		/* from a signed-in device */
	/* From the user's security policies, never from the org setting:
	 * how long a completed second factor counts (seconds; 0 unset). */
	int64_t reauth_interval_s;
	size_t n_groups;
	struct gh_mfa_group_rule groups[GH_MFA_GROUPS_MAX];
};
/* Not required, grace 7 days, every method allowed, no remembered
 * devices, no groups. */
void gh_auth_mfa_policy_default(struct gh_mfa_policy *p);
/* Applies the members present in j (an object) over *p. GH_ERR_INVALID
 * naming the member in msg when one is of the wrong type or range;
 * required_groups must be an array of at most GH_MFA_GROUPS_MAX distinct
 * ids (whether the groups exist is the caller's check). required_since
 * and the groups' since are not read from j when parsing a client's body
 * (from_client); gh_auth_mfa_policy_stamp sets them. */
gh_err gh_auth_mfa_policy_parse(json_t *j, bool from_client,
    struct gh_mfa_policy *p, char *msg, size_t msg_cap) GH_MUST_CHECK;
/* Stamps the times of after, a change of before made at now_ms: MFA
 * (org-wide, or per group) becoming required starts its grace window now;
 * a group already required keeps its time; no longer required clears it. */
void gh_auth_mfa_policy_stamp(const struct gh_mfa_policy *before,
    struct gh_mfa_policy *after, int64_t now_ms);
/* Removes group_id from the required groups; true when it was there. */
bool gh_auth_mfa_policy_drop_group(struct gh_mfa_policy *p,
    const char *group_id);
json_t *gh_auth_mfa_policy_json(const struct gh_mfa_policy *p);

/* ---- remembered devices ------------------------------------------------------ */

/*
 * A browser that completed a second factor may be remembered for the
 * policy's remember_device_days: its gh_device cookie holds a random token
 * (GH_TOKEN_LEN chars) of which only the SHA-256 digest is stored. It
 * stands in for a second factor (GH_MFA_NEED_VERIFY), never for
 * enrolment. None of these functions BEGINs or COMMITs.
 */
struct gh_mfa_device {
	char id[GH_ID_LEN + 1];
	char user_id[GH_ID_LEN + 1];
	int64_t created_at;
	int64_t expires_at;
	int64_t last_used_at;		/* 0 when never used */
	char ip[64];
	char user_agent[256];
};
/* Remembers a device of user_id for days (1..GH_MFA_REMEMBER_DAYS_MAX)
 * from now_ms. When old_token (the cookie the browser sent, may be NULL)
 * names a row of the same user, that row is replaced: one row per device
 * per user. The new token goes to token_out (the caller wipes it). */
gh_err gh_auth_mfa_device_create(struct gh_db *db, const char *user_id,
    int days, const char *old_token, const char *ip, const char *user_agent,
    int64_t now_ms, char token_out[static GH_TOKEN_LEN + 1],
    struct gh_mfa_device *out) GH_MUST_CHECK;
/* GH_OK when token names a row of user_id that is not revoked, not expired
 * and created (its second factor completed) less than max_age_s before
 * now_ms: the current policy's days, or less when the security policy's
 * reauth_interval_s is shorter. Records the use. GH_ERR_DENIED otherwise
 * (max_age_s <= 0 included). */
gh_err gh_auth_mfa_device_check(struct gh_db *db, const char *user_id,
    const char *token, int64_t max_age_s, int64_t now_ms, char id_out[static
    GH_ID_LEN + 1]) GH_MUST_CHECK;
/* Calls fn for each live (unrevoked, unexpired) device of user_id, newest
 * first. The row is borrowed for the call. */
gh_err gh_auth_mfa_device_list(struct gh_db *db, const char *user_id,
    int64_t now_ms, void (*fn)(const struct gh_mfa_device *d, void *arg),
    void *arg) GH_MUST_CHECK;
/* Revokes device id of user_id. GH_ERR_NOTFOUND if absent, another
 * user's, or revoked already. */
gh_err gh_auth_mfa_device_revoke(struct gh_db *db, const char *user_id,
    const char *id, int64_t now_ms) GH_MUST_CHECK;
/* Revokes every unrevoked device of user_id; *count_out (may be NULL)
 * gets how many. */
gh_err gh_auth_mfa_device_revoke_user(struct gh_db *db, const char *user_id,
    int64_t now_ms, int64_t *count_out) GH_MUST_CHECK;
/* Revokes every unrevoked device of the org (the option was turned off);
 * *count_out (may be NULL) gets how many. */
gh_err gh_auth_mfa_device_revoke_all(struct gh_db *db, int64_t now_ms,
    int64_t *count_out) GH_MUST_CHECK;

enum gh_mfa_need {
	GH_MFA_NEED_NONE,	/* sign in with the password alone */
	GH_MFA_NEED_VERIFY,	/* ask for a second factor */
	GH_MFA_NEED_ENROL_GRACE,/* required, none yet, within the grace */
	GH_MFA_NEED_ENROL_NOW,	/* required, none, grace over */
};
/*
 * The one place that decides whether user_id needs a second factor at
 * sign-in: a confirmed TOTP or a WebAuthn credential always asks for it;
 * otherwise the org policy's "required" asks for enrolment, with a grace
 * window of grace_days from required_since. When "required" is off, the
 * policy's required groups ask for it from the effective members of those
 * groups (direct members, and members of their child groups; read from
 * the tenant tables groups and group_members), with the grace window from
 * the later of the group's since and the membership's added_at (the
 * earliest such start when several groups apply). pol is the policy for
 * this user: the org's MFA policy with the user's effective security
 * policy laid over it (src/policy gh_policy_mfa_apply, through
 * mfa_policy_for in src/api), so the org policy is the fallback.
 */
gh_err gh_auth_mfa_need(struct gh_db *db, const struct gh_mfa_policy *pol,
    const char *user_id, int64_t now_ms, enum gh_mfa_need *out) GH_MUST_CHECK;

/* ---- approval of a sign-in from a signed-in device -------------------------- */

/*
 * A pending sign-in (purpose verify) may be completed by approval from a
 * live MFA session of the same user: the new device shows a two-digit
 * number the user types on the approving device, or a QR code carrying a
 * 256-bit secret (stored as a SHA-256 digest) that the approving device
 * opens. A request lives ttl_ms (default GH_APPROVAL_TTL_MS); three wrong
 * numbers deny it. The number is compared in constant time.
 */
#define GH_APPROVAL_TTL_MS (120 * 1000)
#define GH_APPROVAL_MAX_FAILS 3

enum gh_approval_state {
	GH_APPROVAL_PENDING,
	GH_APPROVAL_APPROVED,
	GH_APPROVAL_DENIED,
	GH_APPROVAL_EXPIRED,	/* pending past expires_at; never stored */
};

struct gh_approval {
	char id[GH_ID_LEN + 1];
	char pending_id[GH_ID_LEN + 1];
	char user_id[GH_ID_LEN + 1];
	int number;			/* 10..99 */
	enum gh_approval_state state;
	int failures;
	int64_t created_at;
	int64_t expires_at;
	char source_ip[64];
	char user_agent[256];
};

/* "pending", "approved", "denied" or "expired". */
const char *gh_auth_approval_state_str(enum gh_approval_state st);

/*
 * Creates the approval request of pending sign-in p (replacing any earlier
 * one of p), living ttl_ms (1 s .. 10 min). The QR secret (GH_TOKEN_LEN
 * chars + NUL, shown once) goes to code_out.
 */
gh_err gh_auth_approval_create(struct gh_db *db,
    const struct gh_mfa_pending *p, int64_t ttl_ms, const char *source_ip,
    const char *user_agent, char code_out[static GH_TOKEN_LEN + 1],
    struct gh_approval *out) GH_MUST_CHECK;
/* The request of pending sign-in pending_id, GH_ERR_NOTFOUND if none. A
 * pending request past its expiry reads as GH_APPROVAL_EXPIRED. */
gh_err gh_auth_approval_of_pending(struct gh_db *db, const char *pending_id,
    struct gh_approval *out) GH_MUST_CHECK;
/* The request id of user_id (GH_ERR_NOTFOUND for another user's). */
gh_err gh_auth_approval_get(struct gh_db *db, const char *id,
    const char *user_id, struct gh_approval *out) GH_MUST_CHECK;
/* The request whose QR secret is code (of user_id); GH_ERR_NOTFOUND when
 * none matches. */
gh_err gh_auth_approval_by_code(struct gh_db *db, const char *code,
    const char *user_id, struct gh_approval *out) GH_MUST_CHECK;

/*
 * Decides request id of user_id at now_ms. approve with number (ignored
 * when by_code: the QR secret was the proof) or deny. GH_ERR_CONFLICT when
 * it is no longer pending (*out tells its state, EXPIRED included);
 * GH_ERR_DENIED for a wrong number, counted: the GH_APPROVAL_MAX_FAILS-th
 * denies the request (out->state DENIED). GH_ERR_NOTFOUND for no such
 * request of user_id.
 */
gh_err gh_auth_approval_decide(struct gh_db *db, const char *id,
    const char *user_id, bool approve, bool by_code, int number,
    int64_t now_ms, struct gh_approval *out) GH_MUST_CHECK;
/* Calls fn for each undecided, unexpired request of user_id, newest first. */
gh_err gh_auth_approval_list(struct gh_db *db, const char *user_id,
    int64_t now_ms, void (*fn)(const struct gh_approval *a, void *arg),
    void *arg) GH_MUST_CHECK;
/* Deletes the request (once its sign-in is complete). */
gh_err gh_auth_approval_delete(struct gh_db *db, const char *id)
    GH_MUST_CHECK;

#endif
