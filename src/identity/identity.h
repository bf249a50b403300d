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
#include "kms/kms.h"
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
/* By id. GH_ERR_NOTFOUND when absent or the id is malformed. */
gh_err gh_identity_org_get_id(struct gh_db *dir, const char *org_id,
    struct gh_org *out) GH_MUST_CHECK;
gh_err gh_identity_org_list(struct gh_db *dir,
    void (*fn)(const struct gh_org *org, void *arg), void *arg)
    GH_MUST_CHECK;
gh_err gh_identity_org_set_state(struct gh_db *dir, const char *org_id,
    const char *state) GH_MUST_CHECK;
gh_err gh_identity_org_set_name(struct gh_db *dir, const char *org_id,
    const char *name) GH_MUST_CHECK;
/* Records that a deleted org's keys and data were destroyed. */
gh_err gh_identity_org_mark_purged(struct gh_db *dir, const char *org_id)
    GH_MUST_CHECK;
/* Calls fn for each deleted, not yet purged org deleted at or before
 * deleted_before (ms). */
gh_err gh_identity_org_purge_due(struct gh_db *dir, int64_t deleted_before,
    void (*fn)(const struct gh_org *org, void *arg), void *arg)
    GH_MUST_CHECK;
/* {"id", "slug", "name", "state", "region", "created_at"}; NULL on ENOMEM. */
json_t *gh_identity_org_json(const struct gh_org *org);

/*
 * A cache of organisations by slug, shared by all threads, so that most
 * requests resolve {org} without the directory database. Never stale: each
 * lookup first reads the organisations' generation (gh_store_org_gen,
 * which sees a commit of any process, the CLI's included) and the cache
 * is emptied when it moved, so a change that committed before the lookup
 * began is always seen. Bounded (GH_ORG_CACHE_MAX entries; emptied when
 * full). Deleted organisations are cached as rows like any other; unknown
 * slugs are not cached.
 */
#define GH_ORG_CACHE_MAX 4096
struct gh_org_cache;
gh_err gh_identity_org_cache_new(struct gh_org_cache **out) GH_MUST_CHECK;
/* NULL is a no-op. */
void gh_identity_org_cache_free(struct gh_org_cache *c);
/* gh_identity_org_get through the cache; st gives the directory on a
 * miss. GH_ERR_NOTFOUND when absent or the slug is malformed. */
gh_err gh_identity_org_cache_get(struct gh_org_cache *c, struct gh_store *st,
    const char *slug, struct gh_org *out) GH_MUST_CHECK;

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
/* The columns gh_identity_user_from_stmt reads, of users aliased u: for a
 * query of another capability that joins users (the session check reads
 * the signed-in user in its own statement). */
#define GH_IDENTITY_USER_COLUMNS_U "u.id, u.username, u.email, " \
	"u.display_name, u.state, u.role, u.password_hash, u.created_at, " \
	"u.updated_at, u.last_signin_at, u.password_changed_at"
/* Reads a user from st's current row, GH_IDENTITY_USER_COLUMNS_U starting
 * at column first. */
void gh_identity_user_from_stmt(struct gh_stmt *st, int first,
    struct gh_user *out);
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

/* ---- groups -------------------------------------------------------------------
 *
 * Named sets of users, nested at most one level: a group may have a
 * parent, a group with a parent cannot be a parent, and a group with
 * children cannot get a parent. A member of a child group is an
 * "effective" member of its parent. Deleting a group is refused while it
 * has children (GH_ERR_CONFLICT); its memberships go with it. Names are
 * unique ignoring case. The caller owns the transaction, as for users.
 */

#define GH_GROUP_NAME_MAX 64
#define GH_GROUP_DESC_MAX 1024	/* bytes */
#define GH_GROUP_LIST_MAX 200

struct gh_group {
	char id[GH_ID_LEN + 1];
	char name[GH_GROUP_NAME_MAX + 1];
	char description[GH_GROUP_DESC_MAX + 1];
	char parent_id[GH_ID_LEN + 1];		/* "" when none */
	int64_t created_at;
	int64_t updated_at;
};

/* 1-64 chars of [A-Za-z0-9 ._-], not starting or ending with a space.
 * ASCII only, so that "ignoring case" is exact. */
bool gh_identity_group_name_valid(const char *name);
/* 0-1024 bytes of valid UTF-8 without control characters. */
bool gh_identity_group_description_valid(const char *desc);

/* Fills a new top-level group with a fresh id and the current time.
 * GH_ERR_INVALID when name is not valid. */
gh_err gh_identity_group_init(struct gh_group *g, const char *name)
    GH_MUST_CHECK;
/*
 * Inserts g, or writes every mutable field of g (name, description,
 * parent) and bumps updated_at. Both check the nesting rules first and
 * refuse with GH_ERR_INVALID, setting *why_out to a stable code:
 * "parent_not_found", "group_cycle" (its own parent), "nesting_too_deep"
 * (the parent has a parent), "group_has_children" (g is a parent and
 * would get one). GH_ERR_CONFLICT (*why_out "group_exists") when the
 * name is taken ignoring case; GH_ERR_NOTFOUND when updating a missing
 * group. GH_ERR_INVALID with *why_out NULL for an invalid field.
 */
gh_err gh_identity_group_insert(struct gh_db *db, const struct gh_group *g,
    const char **why_out) GH_MUST_CHECK;
gh_err gh_identity_group_update(struct gh_db *db, struct gh_group *g,
    const char **why_out) GH_MUST_CHECK;
/* By id; GH_ERR_NOTFOUND when absent or malformed. */
gh_err gh_identity_group_get(struct gh_db *db, const char *id,
    struct gh_group *out) GH_MUST_CHECK;
/* By name, ignoring case; GH_ERR_NOTFOUND when absent or invalid. */
gh_err gh_identity_group_find(struct gh_db *db, const char *name,
    struct gh_group *out) GH_MUST_CHECK;
/* Deletes the group and its memberships; *members_out (may be NULL) gets
 * how many memberships went. GH_ERR_CONFLICT while it has child groups,
 * GH_ERR_NOTFOUND when absent. */
gh_err gh_identity_group_delete(struct gh_db *db, const char *id,
    int64_t *members_out) GH_MUST_CHECK;

struct gh_group_filter {
	const char *q;		/* substring of the name, ignoring case */
	const char *parent_id;	/* only the children of this group */
	const char *cursor;	/* from a previous page, or NULL */
	int limit;		/* 1..GH_GROUP_LIST_MAX */
};

/* Lists groups oldest first into a JSON array of group views; paging as
 * in gh_identity_user_list. GH_ERR_INVALID for a bad cursor or limit. */
gh_err gh_identity_group_list(struct gh_db *db,
    const struct gh_group_filter *f, json_t **groups_out, char **next_out)
    GH_MUST_CHECK;

/* Adds user_id to group_id at now_ms; *added_out is false (and nothing
 * changes) when it is a member already. GH_ERR_NOTFOUND when the group or
 * the user does not exist. */
gh_err gh_identity_group_member_add(struct gh_db *db, const char *group_id,
    const char *user_id, int64_t now_ms, bool *added_out) GH_MUST_CHECK;
/* GH_ERR_NOTFOUND when user_id is not a direct member of group_id. */
gh_err gh_identity_group_member_remove(struct gh_db *db,
    const char *group_id, const char *user_id) GH_MUST_CHECK;
/* The direct members of group_id, first added first, as user views with
 * "added_at"; paging as in gh_identity_user_list (limit
 * 1..GH_USER_LIST_MAX). */
gh_err gh_identity_group_member_list(struct gh_db *db, const char *group_id,
    const char *cursor, int limit, json_t **members_out, char **next_out)
    GH_MUST_CHECK;
/*
 * The groups of user_id: *direct_out the groups it was added to (group
 * views with "added_at"), *effective_out those plus their parents (group
 * views with "direct": whether it is a direct member, and "via": the
 * child group ids that make it a member). Both ordered by name.
 */
gh_err gh_identity_user_groups(struct gh_db *db, const char *user_id,
    json_t **direct_out, json_t **effective_out) GH_MUST_CHECK;

/* {"id", "name", "description", "parent_id", "created_at", "updated_at"};
 * NULL on ENOMEM. */
json_t *gh_identity_group_json(const struct gh_group *g);

/* ---- custom user attributes ---------------------------------------------------
 *
 * An organisation defines attributes (name, type, required, unique,
 * classification, encrypted); its users carry values, validated against
 * the definition and stored as canonical text:
 *   string   the UTF-8 text itself (at most GH_ATTR_STRING_MAX bytes)
 *   number   a JSON number: integers in decimal ("42", "-7"), others as the
 *            shortest text that reads back to the same double ("0.1",
 *            "1.5e+300"); integral doubles within int64 print as integers
 *   date     "YYYY-MM-DD", a real calendar day from year 0001 to 9999
 *   boolean  "true" or "false"
 *   enum     one of the definition's members
 *
 * Encrypted attributes keep only ciphertext: gh_kms_encrypt with purpose
 * GH_KMS_ATTRIBUTES and AAD {org id, "user_attributes", attribute name,
 * user id}, plus a blind index (gh_kms_blind_index over the canonical
 * text) for equality search and uniqueness. Nothing ever decrypts values to
 * search them. A blind index reveals which users share a value, so an
 * encrypted attribute supports equality only, never ranges or prefixes.
 * Plaintext of encrypted values lives in GH_BUF_SECRET buffers and is wiped.
 *
 * kms may be NULL (no keys configured): plain attributes work, and anything
 * that needs a key fails with GH_ERR_DENIED, as it does when the org's keys
 * are unavailable (revoked customer key, shredded org). Values never reach
 * the log. The caller owns the transaction, as for users.
 */

#define GH_ATTR_NAME_MAX 64
#define GH_ATTR_STRING_MAX 1024		/* bytes of a string value */
#define GH_ATTR_ENUM_MAX 100		/* members of an enum */
#define GH_ATTR_ENUM_VALUE_MAX 128	/* bytes of one member */
#define GH_ATTR_DEFS_MAX 100		/* definitions per organisation */
#define GH_ATTR_FILTERS_MAX 4		/* attribute conditions per list */

enum gh_attr_type {
	GH_ATTR_STRING = 1,
	GH_ATTR_NUMBER,
	GH_ATTR_DATE,
	GH_ATTR_BOOLEAN,
	GH_ATTR_ENUM,
};

/* Ordered: each level may see the ones below it. */
enum gh_attr_class {
	GH_ATTR_PUBLIC = 1,
	GH_ATTR_INTERNAL,
	GH_ATTR_PERSONAL,
	GH_ATTR_SENSITIVE,
};

struct gh_attr_def {
	char id[GH_ID_LEN + 1];
	char name[GH_ATTR_NAME_MAX + 1];
	enum gh_attr_type type;
	json_t *enum_values;	/* owned array of strings for enum, else NULL */
	bool required;
	bool unique;
	bool encrypted;
	enum gh_attr_class classification;
	int64_t created_at;
	int64_t updated_at;
};

/* Every definition of an organisation, ordered by name. */
struct gh_attr_defs {
	struct gh_attr_def *v;
	size_t len;
};

/* 1-64 chars of [a-z0-9_]. */
bool gh_identity_attr_name_valid(const char *name);
const char *gh_identity_attr_type_name(enum gh_attr_type type);
bool gh_identity_attr_type_parse(const char *s, enum gh_attr_type *out);
const char *gh_identity_attr_class_name(enum gh_attr_class c);
bool gh_identity_attr_class_parse(const char *s, enum gh_attr_class *out);

/* Frees enum_values and zeroes d. NULL is a no-op. */
void gh_identity_attr_def_clear(struct gh_attr_def *d);
void gh_identity_attr_defs_free(struct gh_attr_defs *defs);
/* The definition named name, or NULL (borrowed from defs). */
const struct gh_attr_def *gh_identity_attr_defs_find(
    const struct gh_attr_defs *defs, const char *name);

/*
 * Applies a definition body to d: on create (d zeroed) the members name
 * and type are required and the rest default to required false, unique
 * false, classification "internal", encrypted false; on update name must
 * not appear. enum_values must be given when the type becomes enum and is
 * dropped when it stops being one. Then checks the whole definition: name,
 * type, enum members (1..GH_ATTR_ENUM_MAX distinct non-empty UTF-8 strings
 * of at most GH_ATTR_ENUM_VALUE_MAX bytes, only for enum). On failure
 * returns GH_ERR_INVALID with a message naming the member in msg and
 * leaves d in an unspecified but clearable state.
 */
gh_err gh_identity_attr_def_apply(json_t *body, bool create,
    struct gh_attr_def *d, char *msg, size_t msg_cap) GH_MUST_CHECK;
/* {"name", "type", "enum_values"?, "required", "unique", "classification",
 * "encrypted", "created_at", "updated_at"}; NULL on ENOMEM. */
json_t *gh_identity_attr_def_json(const struct gh_attr_def *d);

/* Inserts d (gh_identity_attr_def_apply'd; id and times are set here).
 * GH_ERR_CONFLICT when the name is taken, GH_ERR_LIMIT beyond
 * GH_ATTR_DEFS_MAX definitions. */
gh_err gh_identity_attr_def_insert(struct gh_db *db, struct gh_attr_def *d)
    GH_MUST_CHECK;
/* By name; GH_ERR_NOTFOUND when absent or malformed. Clear *out after. */
gh_err gh_identity_attr_def_get(struct gh_db *db, const char *name,
    struct gh_attr_def *out) GH_MUST_CHECK;
/* Every definition; free with gh_identity_attr_defs_free. */
gh_err gh_identity_attr_def_list(struct gh_db *db, struct gh_attr_defs *out)
    GH_MUST_CHECK;
/*
 * Replaces the stored definition before with after (same id and name) and
 * brings the values in line: turning unique on fills the uniqueness keys
 * and off clears them. Refuses with GH_ERR_CONFLICT, setting *conflict_out
 * to a stable code: "attribute_in_use" when the type or encrypted changes
 * while values exist or an enum member still in use is removed (found by
 * text, or by blind index for encrypted values, which needs kms);
 * "attribute_not_unique" when unique is turned on over duplicates.
 */
gh_err gh_identity_attr_def_update(struct gh_db *db, struct gh_kms *kms,
    const struct gh_attr_def *before, struct gh_attr_def *after,
    const char **conflict_out) GH_MUST_CHECK;
/* Deletes the definition and every value of it; *values_out (may be
 * NULL) gets how many values went. */
gh_err gh_identity_attr_def_delete(struct gh_db *db,
    const struct gh_attr_def *d, int64_t *values_out) GH_MUST_CHECK;
/* Number of users holding a value of d. */
gh_err gh_identity_attr_value_count(struct gh_db *db,
    const struct gh_attr_def *d, int64_t *out) GH_MUST_CHECK;

/*
 * Canonical text of a value for d: from JSON (the body of a user) or from
 * text (a list filter). Appends to out (use a GH_BUF_SECRET buffer for
 * encrypted attributes). GH_ERR_INVALID with a message naming the
 * attribute when the value does not fit the definition.
 */
gh_err gh_identity_attr_canon_json(const struct gh_attr_def *d, json_t *v,
    struct gh_buf *out, char *msg, size_t msg_cap) GH_MUST_CHECK;
gh_err gh_identity_attr_canon_text(const struct gh_attr_def *d,
    const char *s, struct gh_buf *out, char *msg, size_t msg_cap)
    GH_MUST_CHECK;
/* The JSON value of canonical text (a number, boolean or string); NULL
 * on ENOMEM. */
json_t *gh_identity_attr_value_json(enum gh_attr_type type, const char *text);

/*
 * Sets and clears the values of user_id from attrs, an object of
 * {name: value or null} (borrowed; NULL sets nothing), validated against
 * defs. With creating, every required definition must get a non-null
 * value; otherwise a required value cannot be cleared. Records what
 * changed in changes under "attributes.<name>": on create the value (or
 * "set" when encrypted); on update {"from", "to"} (or "changed" when
 * encrypted). An unchanged value records nothing.
 * GH_ERR_INVALID: an unknown name or a bad value (msg names it);
 * GH_ERR_CONFLICT: a unique attribute's value is taken (msg names it);
 * GH_ERR_DENIED: an encrypted attribute and no usable keys.
 */
gh_err gh_identity_attr_values_set(struct gh_db *db, struct gh_kms *kms,
    const struct gh_attr_defs *defs, const char *user_id, json_t *attrs,
    bool creating, json_t *changes, char *msg, size_t msg_cap) GH_MUST_CHECK;
/*
 * The values of user_id as a new object {name: value}, decrypted, limited
 * to attributes classified at most max_class. GH_ERR_DENIED when an
 * encrypted value needs keys that are unavailable; GH_ERR_CRYPTO when a
 * ciphertext fails to authenticate (logged with the attribute and user id).
 */
gh_err gh_identity_attr_values_json(struct gh_db *db, struct gh_kms *kms,
    const char *user_id, enum gh_attr_class max_class, json_t **out)
    GH_MUST_CHECK;

/* One exact-equality condition of a user list: the attribute named name
 * equals value (as text; see gh_identity_attr_canon_text). */
struct gh_attr_cond {
	const char *name;
	const char *value;
};

/*
 * gh_identity_user_list restricted to the users whose attributes satisfy
 * every condition (1..GH_ATTR_FILTERS_MAX): plain attributes are matched
 * on their canonical text, encrypted ones on their blind index. The other
 * members of f and the cursors work as in gh_identity_user_list.
 * GH_ERR_INVALID with msg for an unknown attribute, a value that does not
 * fit its type, or a bad cursor; GH_ERR_DENIED for an encrypted attribute
 * without usable keys.
 */
gh_err gh_identity_attr_user_list(struct gh_db *db, struct gh_kms *kms,
    const struct gh_user_filter *f, const struct gh_attr_cond *conds,
    size_t n_conds, json_t **users_out, char **next_out, char *msg,
    size_t msg_cap) GH_MUST_CHECK;

/* ---- organisation settings --------------------------------------------------- */

/* Reads a JSON setting; GH_ERR_NOTFOUND when unset. */
gh_err gh_identity_setting_get(struct gh_db *db, const char *key,
    json_t **out) GH_MUST_CHECK;
/* Writes (inserts or replaces) a JSON setting (value borrowed). */
gh_err gh_identity_setting_put(struct gh_db *db, const char *key,
    json_t *value) GH_MUST_CHECK;

/* Moves every encrypted attribute value older than the org's newest
 * attribute key to that key, in batches of one transaction each (so a
 * crash loses one batch at most and re-running resumes). *moved_out gets
 * how many values moved. */
gh_err gh_identity_attr_reencrypt(struct gh_db *db, struct gh_kms *kms,
    int64_t *moved_out) GH_MUST_CHECK;
/* The oldest attribute-key version any stored value uses; 0 if none. */
gh_err gh_identity_attr_min_key_version(struct gh_db *db,
    uint32_t *version_out) GH_MUST_CHECK;

#endif
