/*
 * identity.h: organisations (directory database) and their users (tenant
 * database): validation of names, rows in and out, JSON views.
 *
 * Untrusted input: slugs, usernames, e-mails and display names come from
 * clients and the CLI; each has a validator, and the store functions refuse
 * what the validators refuse. Secrets: users carry password hashes, which
 * never appear in the JSON views.
 *
 * Writes never open a transaction: the caller does, so that the change and
 * its audit event commit together.
 */
#ifndef GH_IDENTITY_H
#define GH_IDENTITY_H

#include <jansson.h>

#include "core/core.h"
#include "store/store.h"

/* ---- organisations --------------------------------------------------------- */

#define GH_SLUG_MAX 63
#define GH_ORG_NAME_MAX 128	/* bytes */

struct gh_org {
	char id[GH_ID_LEN + 1];
	char slug[GH_SLUG_MAX + 1];
	char name[GH_ORG_NAME_MAX + 1];
	char state[12];		/* "active", "suspended", "deleted" */
	char region[33];
	int64_t created_at;
	int64_t updated_at;
};

/* 2-63 chars of [a-z0-9-], starting with a letter or digit, not ending
 * with '-'. */
bool gh_identity_slug_valid(const char *slug);
/* 1-128 bytes of valid UTF-8 without control characters. */
bool gh_identity_org_name_valid(const char *name);
bool gh_identity_org_state_valid(const char *state);

/* Inserts a new active organisation; writes the row to *out.
 * GH_ERR_CONFLICT if the slug is taken. */
gh_err gh_identity_org_create(struct gh_db *dir, const char *slug,
    const char *name, const char *region, struct gh_org *out) GH_MUST_CHECK;
/* By slug. GH_ERR_NOTFOUND when absent or the slug is malformed. */
gh_err gh_identity_org_get(struct gh_db *dir, const char *slug,
    struct gh_org *out) GH_MUST_CHECK;
gh_err gh_identity_org_list(struct gh_db *dir,
    void (*fn)(const struct gh_org *org, void *arg), void *arg)
    GH_MUST_CHECK;
gh_err gh_identity_org_set_state(struct gh_db *dir, const char *org_id,
    const char *state) GH_MUST_CHECK;
gh_err gh_identity_org_set_name(struct gh_db *dir, const char *org_id,
    const char *name) GH_MUST_CHECK;
/* {"id", "slug", "name", "state", "region", "created_at"}; NULL on ENOMEM. */
json_t *gh_identity_org_json(const struct gh_org *org);

/* ---- users ---------------------------------------------------------------- */

#define GH_USERNAME_MAX 64
#define GH_EMAIL_MAX 254
#define GH_DISPLAY_NAME_MAX 128
#define GH_PW_HASH_MAX 255

struct gh_user {
	char id[GH_ID_LEN + 1];
	char username[GH_USERNAME_MAX + 1];
	char email[GH_EMAIL_MAX + 1];		/* "" when none */
	char display_name[GH_DISPLAY_NAME_MAX + 1];
	char state[12];				/* "active", "disabled" */
	char role[12];				/* "owner", "admin", "member" */
	char password_hash[GH_PW_HASH_MAX + 1];	/* "" when none */
	int64_t created_at;
	int64_t updated_at;
	int64_t last_signin_at;			/* 0 when never */
	int64_t password_changed_at;		/* 0 when never */
};

/* 1-64 chars of [A-Za-z0-9._@+-]. */
bool gh_identity_username_valid(const char *username);
/* A plausible address: local@domain, printable ASCII, at most 254 bytes. */
bool gh_identity_email_valid(const char *email);
/* 0-128 bytes of valid UTF-8 without control characters. */
bool gh_identity_display_name_valid(const char *name);
bool gh_identity_role_valid(const char *role);
bool gh_identity_user_state_valid(const char *state);

/* Inserts u (its id, timestamps and fields filled in by the caller; see
 * gh_identity_user_init). GH_ERR_CONFLICT when the username is taken,
 * ignoring case. */
gh_err gh_identity_user_insert(struct gh_db *db, const struct gh_user *u)
    GH_MUST_CHECK;
/* Fills a new active member with a fresh id and the current time. */
gh_err gh_identity_user_init(struct gh_user *u, const char *username)
    GH_MUST_CHECK;
gh_err gh_identity_user_get(struct gh_db *db, const char *id,
    struct gh_user *out) GH_MUST_CHECK;
/* By username, ignoring case. */
gh_err gh_identity_user_find(struct gh_db *db, const char *username,
    struct gh_user *out) GH_MUST_CHECK;
/* Writes every mutable field of u (email, display name, state, role,
 * password hash and its time, last sign-in) and bumps updated_at. */
gh_err gh_identity_user_update(struct gh_db *db, struct gh_user *u)
    GH_MUST_CHECK;
/* Records a successful sign-in time; nothing else changes. */
gh_err gh_identity_user_touch_signin(struct gh_db *db, const char *id,
    int64_t at) GH_MUST_CHECK;
/* Replaces the password hash only if it is still old_hash (a re-hash must
 * not undo a concurrent password change); GH_ERR_CONFLICT otherwise. */
gh_err gh_identity_user_swap_hash(struct gh_db *db, const char *id,
    const char *old_hash, const char *new_hash) GH_MUST_CHECK;
gh_err gh_identity_user_delete(struct gh_db *db, const char *id)
    GH_MUST_CHECK;
/* Active owners other than except_id (which may be NULL). */
gh_err gh_identity_owner_count(struct gh_db *db, const char *except_id,
    int64_t *out) GH_MUST_CHECK;

#define GH_USER_LIST_MAX 200

struct gh_user_filter {
	const char *q;		/* substring of username/email/display name */
	const char *state;
	const char *role;
	const char *cursor;	/* from a previous page, or NULL */
	int limit;		/* 1..GH_USER_LIST_MAX */
};

/* Lists users oldest first into a JSON array of user views. *next_out
 * receives a malloc'd cursor for the next page, or NULL. GH_ERR_INVALID
 * for a malformed cursor or limit. */
gh_err gh_identity_user_list(struct gh_db *db, const struct gh_user_filter *f,
    json_t **users_out, char **next_out) GH_MUST_CHECK;

/* The public view (no password hash); NULL on ENOMEM. */
json_t *gh_identity_user_json(const struct gh_user *u);

/* ---- organisation settings --------------------------------------------------- */

/* Reads a JSON setting; GH_ERR_NOTFOUND when unset. */
gh_err gh_identity_setting_get(struct gh_db *db, const char *key,
    json_t **out) GH_MUST_CHECK;
/* Writes (inserts or replaces) a JSON setting (value borrowed). */
gh_err gh_identity_setting_put(struct gh_db *db, const char *key,
    json_t *value) GH_MUST_CHECK;

#endif
