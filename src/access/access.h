/*
 * access.h: apps, app roles, who is assigned to an app (users, groups,
 * rules), and conditional assignment rules: a small expression language
 * over user fields, custom attributes and group membership, whose matches
 * get an app (and role) or a group membership automatically.
 *
 * Untrusted input: app and role names and descriptions, rule expressions
 * (parsed by gh_access_rule_parse, a pure function with a fuzz target),
 * ids from paths. Secrets: none held; rules over encrypted attributes are
 * compared through the blind index, never decrypted.
 *
 * Writes never open a transaction: the caller does, so that the change and
 * its audit event commit together.
 */
#ifndef GH_ACCESS_H
#define GH_ACCESS_H

#include <jansson.h>

#include "audit/audit.h"
#include "core/core.h"
#include "kms/kms.h"
#include "store/store.h"

/* ---- apps ------------------------------------------------------------------ */

#define GH_APP_NAME_MAX 128		/* bytes */
#define GH_APP_DESC_MAX 1024		/* bytes */
#define GH_APP_ROLE_MAX 64
#define GH_APP_LIST_MAX 200
#define GH_APP_ROLES_MAX 100		/* roles per app */

struct gh_access_app {
	char id[GH_ID_LEN + 1];
	char name[GH_APP_NAME_MAX + 1];
	char description[GH_APP_DESC_MAX + 1];
	char kind[8];			/* "oidc", "saml", "other" */
	bool first_party;
	char state[12];			/* "active", "disabled" */
	int64_t created_at;
	int64_t updated_at;
};

/* 1-128 bytes of UTF-8 without control characters, not starting or
 * ending with a space. Unique ignoring ASCII case. */
bool gh_access_app_name_valid(const char *name);
/* 0-1024 bytes of UTF-8 without control characters. */
bool gh_access_app_desc_valid(const char *desc);
bool gh_access_app_kind_valid(const char *kind);
bool gh_access_app_state_valid(const char *state);
/* 1-64 chars of [a-z0-9_.-]. */
bool gh_access_role_name_valid(const char *name);

/* Fills a new active app of kind "other" with a fresh id and the current
 * time. GH_ERR_INVALID when name is not valid. */
gh_err gh_access_app_init(struct gh_access_app *a, const char *name)
    GH_MUST_CHECK;
/* GH_ERR_CONFLICT when the name is taken ignoring case. */
gh_err gh_access_app_insert(struct gh_db *db, const struct gh_access_app *a)
    GH_MUST_CHECK;
/* Writes name, description, kind, first_party and state, bumping
 * updated_at. GH_ERR_CONFLICT for a taken name, GH_ERR_NOTFOUND. */
gh_err gh_access_app_update(struct gh_db *db, struct gh_access_app *a)
    GH_MUST_CHECK;
/* GH_ERR_NOTFOUND when absent or malformed. */
gh_err gh_access_app_get(struct gh_db *db, const char *id,
    struct gh_access_app *out) GH_MUST_CHECK;
/* Deletes the app with its roles, assignments and the rules that assign
 * it (*rules_out, *assignments_out may be NULL). */
gh_err gh_access_app_delete(struct gh_db *db, const char *id,
    int64_t *assignments_out, int64_t *rules_out) GH_MUST_CHECK;
/* Lists apps oldest first (q: substring of the name, ignoring ASCII case),
 * paging as gh_identity_user_list. GH_ERR_INVALID for a bad cursor. */
gh_err gh_access_app_list(struct gh_db *db, const char *q,
    const char *cursor, int limit, json_t **apps_out, char **next_out)
    GH_MUST_CHECK;
/* {"id", "name", "description", "kind", "first_party", "state",
 * "created_at", "updated_at"}; NULL on ENOMEM. */
json_t *gh_access_app_json(const struct gh_access_app *a);

/* Adds a role. GH_ERR_CONFLICT when it exists, GH_ERR_LIMIT past
 * GH_APP_ROLES_MAX. */
gh_err gh_access_role_insert(struct gh_db *db, const char *app_id,
    const char *name, const char *description) GH_MUST_CHECK;
/* GH_ERR_NOTFOUND when absent; GH_ERR_CONFLICT while an assignment or a
 * rule uses it. */
gh_err gh_access_role_delete(struct gh_db *db, const char *app_id,
    const char *name) GH_MUST_CHECK;
gh_err gh_access_role_exists(struct gh_db *db, const char *app_id,
    const char *name, bool *out) GH_MUST_CHECK;
/* [{"name", "description", "created_at"}] ordered by name. */
gh_err gh_access_role_list(struct gh_db *db, const char *app_id,
    json_t **out) GH_MUST_CHECK;

/* ---- assignments ------------------------------------------------------------- */

/* Assigns app_id (with role, or NULL) to the user or group principal_id
 * (principal_type "user" or "group"), by rule_id (NULL: by an admin,
 * created_by naming them). The id goes to id_out. GH_ERR_CONFLICT when the
 * same assignment exists; GH_ERR_NOTFOUND for a missing role or
 * principal. */
gh_err gh_access_assignment_add(struct gh_db *db, const char *app_id,
    const char *principal_type, const char *principal_id, const char *role,
    const char *rule_id, const char *created_by,
    char id_out[static GH_ID_LEN + 1]) GH_MUST_CHECK;
/* The assignment id of app_id as JSON {"id", "app_id", "principal_type",
 * "principal_id", "principal_name", "role", "rule_id", "created_at",
 * "created_by"}; GH_ERR_NOTFOUND. */
gh_err gh_access_assignment_get(struct gh_db *db, const char *app_id,
    const char *id, json_t **out) GH_MUST_CHECK;
gh_err gh_access_assignment_delete(struct gh_db *db, const char *app_id,
    const char *id) GH_MUST_CHECK;
/* Every assignment of app_id, oldest first, as above. */
gh_err gh_access_assignment_list(struct gh_db *db, const char *app_id,
    json_t **out) GH_MUST_CHECK;

/*
 * The apps user_id is effectively assigned (directly, through a group or
 * its child group, or by a rule), ordered by name: [{"app": app view,
 * "roles": [names], "via": [{"assignment_id", "type": "user"|"group",
 * "group_id"?, "rule_id", "role"}]}]. With active_only, disabled apps are
 * left out.
 */
gh_err gh_access_user_apps(struct gh_db *db, const char *user_id,
    bool active_only, json_t **out) GH_MUST_CHECK;
/* Whether user_id may use app_id: it is assigned in any way and the app
 * is active. The SSO gate. */
gh_err gh_access_user_assigned(struct gh_db *db, const char *user_id,
    const char *app_id, bool *out) GH_MUST_CHECK;
/* The app roles user_id holds in app_id (a JSON array of names, sorted,
 * possibly empty; also empty when the app is disabled). */
gh_err gh_access_user_app_roles(struct gh_db *db, const char *user_id,
    const char *app_id, json_t **roles_out) GH_MUST_CHECK;

/* ---- rule expressions ----------------------------------------------------------
 *
 *   expr    := or
 *   or      := and ("or" and)*
 *   and     := unary ("and" unary)*
 *   unary   := "not" unary | "(" expr ")" | "group" "(" STRING ")" | cmp
 *   cmp     := NAME ("==" | "!=" | "co" | "sw" | "ew") STRING
 *            | NAME "in" "[" STRING ("," STRING)* "]"
 *   NAME    := [a-z_][a-z0-9_]*        STRING := "..." with \" and \\
 *
 * Bounds: GH_RULE_EXPR_MAX bytes, GH_RULE_DEPTH_MAX nesting,
 * GH_RULE_NODES_MAX nodes (every operator, comparison, group() and list
 * member is one).
 */

#define GH_RULE_EXPR_MAX 2048
#define GH_RULE_DEPTH_MAX 16
#define GH_RULE_NODES_MAX 64
#define GH_RULE_NAME_MAX 128

struct gh_access_rule;

/* Why a rule was refused: code is "invalid_rule" (syntax, with pos the
 * byte offset), "unknown_attribute" (name), "unknown_group" (name). */
struct gh_access_rule_error {
	const char *code;
	size_t pos;
	char name[GH_RULE_NAME_MAX + 1];
	char msg[192];
};

/*
 * Parses src (len bytes, need not be NUL-terminated). Pure: no I/O, only
 * allocation. GH_ERR_INVALID (e filled in) for a syntax error or a bound
 * exceeded, GH_ERR_NOMEM. Free with gh_access_rule_free.
 */
gh_err gh_access_rule_parse(const char *src, size_t len,
    struct gh_access_rule **out, struct gh_access_rule_error *e)
    GH_MUST_CHECK;
void gh_access_rule_free(struct gh_access_rule *r);

/* What a rule is evaluated against. value gives the text a comparison
 * reads for a field or attribute name (NULL when unset): for an attribute
 * bound as encrypted, its blind index. in_group tells effective
 * membership of the group named name, ignoring ASCII case. */
struct gh_access_facts {
	const char *(*value)(void *arg, const char *name);
	bool (*in_group)(void *arg, const char *name);
	void *arg;
};

/* Evaluates r. An unset value matches nothing but "!=". co, sw and ew
 * ignore ASCII case; == and != are exact. Pure. */
bool gh_access_rule_eval(const struct gh_access_rule *r,
    const struct gh_access_facts *f);

/* The built-in user fields a rule may name. */
bool gh_access_rule_builtin(const char *name);

/*
 * Parses and binds expr for the org of db: every name must be a built-in
 * field or a defined attribute (GH_ERR_NOTFOUND, e->code
 * "unknown_attribute"); literals are put in the attribute's canonical text
 * (GH_ERR_INVALID "invalid_rule" when they do not fit its type); encrypted
 * attributes allow only ==, != and in, whose literals become blind indexes
 * (needs kms; GH_ERR_DENIED without usable keys). With check_groups, a
 * group() naming no group is GH_ERR_NOTFOUND "unknown_group".
 */
gh_err gh_access_rule_compile(struct gh_db *db, struct gh_kms *kms,
    const char *expr, bool check_groups, struct gh_access_rule **out,
    struct gh_access_rule_error *e) GH_MUST_CHECK;

/* ---- rules ---------------------------------------------------------------------- */

/* Whether an enabled or disabled rule made user_id's membership of
 * group_id (such a membership is the rule's to take back). */
gh_err gh_access_membership_by_rule(struct gh_db *db, const char *group_id,
    const char *user_id, bool *out) GH_MUST_CHECK;

#define GH_RULE_LIST_MAX 200

struct gh_access_rule_row {
	char id[GH_ID_LEN + 1];
	char name[GH_RULE_NAME_MAX + 1];
	char expression[GH_RULE_EXPR_MAX + 1];
	char app_id[GH_ID_LEN + 1];	/* "" unless it assigns an app */
	char app_role[GH_APP_ROLE_MAX + 1];	/* "" for none */
	char group_id[GH_ID_LEN + 1];	/* "" unless it adds to a group */
	bool enabled;
	int64_t created_at;
	int64_t updated_at;
};

/* 1-128 bytes of UTF-8 without control characters; unique ignoring ASCII
 * case. */
bool gh_access_rule_name_valid(const char *name);

/* Fills id and times. GH_ERR_CONFLICT for a taken name. */
gh_err gh_access_rule_insert(struct gh_db *db, struct gh_access_rule_row *r)
    GH_MUST_CHECK;
gh_err gh_access_rule_update(struct gh_db *db, struct gh_access_rule_row *r)
    GH_MUST_CHECK;
gh_err gh_access_rule_get(struct gh_db *db, const char *id,
    struct gh_access_rule_row *out) GH_MUST_CHECK;
/* Deletes the row only (with the assignments it made): disable it and
 * apply it to everyone first so that its grants are taken back, audited. */
gh_err gh_access_rule_delete(struct gh_db *db, const char *id)
    GH_MUST_CHECK;
/* All rules, oldest first, as JSON views. */
gh_err gh_access_rule_list(struct gh_db *db, json_t **out) GH_MUST_CHECK;
/* {"id", "name", "expression", "action": {"app_id", "role"} or
 * {"group_id"}, "enabled", "created_at", "updated_at"}. */
json_t *gh_access_rule_row_json(const struct gh_access_rule_row *r);

/*
 * Brings the grants of every rule in line for user_id: a rule that matches
 * and has not granted its app (role) or group membership grants it; a rule
 * that granted and no longer matches (or is disabled, or no longer
 * compiles) takes back what it made, never what an admin made. Repeats
 * while group memberships change (rules over group() see the rules' own
 * memberships), at most a few rounds. Each change is audited with actor
 * {type "system", request_id} and changes {"rule_id", "rule_name", ...}.
 * GH_ERR_DENIED when a rule needs keys that are unavailable.
 */
gh_err gh_access_rules_apply_user(struct gh_db *db, struct gh_kms *kms,
    const char *user_id, const char *request_id) GH_MUST_CHECK;
/* gh_access_rules_apply_user for every user of the org. */
gh_err gh_access_rules_apply_all(struct gh_db *db, struct gh_kms *kms,
    const char *request_id) GH_MUST_CHECK;

/*
 * What a rule with compiled expression r and action (app_id+role or
 * group_id, as in row) would change now: *add_out the users it matches and
 * has not granted, *remove_out those it granted (row->id; "" for a new
 * rule) that no longer match. Arrays of {"id", "username"}. Changes
 * nothing.
 */
gh_err gh_access_rule_dry_run(struct gh_db *db,
    const struct gh_access_rule *r, const struct gh_access_rule_row *row,
    json_t **add_out, json_t **remove_out) GH_MUST_CHECK;

#endif
