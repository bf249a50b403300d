/*
 * audit.h: the audit log of every create, update and delete, and the
 * sign-in log. Events go to the tenant database in the caller's transaction,
 * so an event exists exactly when its change committed; operator actions
 * from the CLI go to the directory database's operator_audit table.
 *
 * Secrets: callers pass field names and non-secret values only; a secret
 * field is recorded as "set" or "changed", never its value.
 */
#ifndef GH_AUDIT_H
#define GH_AUDIT_H

#include <jansson.h>

#include "core/core.h"
#include "store/store.h"

/* Who did it. Strings are borrowed; id, source_ip, request_id may be NULL. */
struct gh_audit_actor {
	const char *type;	/* "user", "api_token", "operator", "system" */
	const char *id;
	const char *source_ip;
	const char *request_id;
};

/*
 * Appends an event to a tenant database. Must run inside the transaction of
 * the change it records. changes is a JSON object (borrowed; NULL means
 * {}), e.g. {"email": {"from": "a", "to": "b"}, "password": "changed"}.
 */
gh_err gh_audit_append(struct gh_db *db, const struct gh_audit_actor *actor,
    const char *action, const char *target_type, const char *target_id,
    json_t *changes) GH_MUST_CHECK;

/* Appends to the directory's operator audit, inside the caller's
 * transaction. actor names the operator (e.g. "cli:root"). */
gh_err gh_audit_operator_append(struct gh_db *dir, const char *actor,
    const char *action, const char *target_type, const char *target_id,
    json_t *changes) GH_MUST_CHECK;

#define GH_AUDIT_LIST_MAX 200

struct gh_audit_filter {
	const char *action;		/* exact; NULL for any */
	const char *actor_id;
	const char *target_type;
	const char *target_id;
	int64_t since_ms;		/* 0 for no bound */
	int64_t until_ms;		/* 0 for no bound; exclusive */
	int64_t before_seq;		/* cursor: 0 for the newest */
	int limit;			/* 1..GH_AUDIT_LIST_MAX */
};

/* Lists events newest first as a JSON array (owned by the caller).
 * *next_out is the cursor for the next page, 0 when there is none. */
gh_err gh_audit_list(struct gh_db *db, const struct gh_audit_filter *f,
    json_t **events_out, int64_t *next_out) GH_MUST_CHECK;

/* Lists the directory's operator audit, newest first. */
gh_err gh_audit_operator_list(struct gh_db *dir, int limit,
    json_t **events_out) GH_MUST_CHECK;

/* ---- sign-in log ------------------------------------------------------------ */

struct gh_signin_record {
	const char *user_id;	/* NULL when the user is unknown */
	const char *username;	/* as typed, truncated to 64 bytes */
	const char *source_ip;
	const char *user_agent;	/* truncated to 256 bytes */
	bool success;
	const char *reason;	/* "ok", "bad_credentials", ... */
};

/* Records an attempt (in the caller's transaction, or alone). */
gh_err gh_audit_signin_record(struct gh_db *db,
    const struct gh_signin_record *r) GH_MUST_CHECK;

struct gh_signin_filter {
	const char *user_id;	/* NULL for any */
	const char *result;	/* "success", "failure" or NULL */
	int64_t before_seq;
	int limit;
};

gh_err gh_audit_signin_list(struct gh_db *db, const struct gh_signin_filter *f,
    json_t **events_out, int64_t *next_out) GH_MUST_CHECK;

#endif
