/*
 * scim.h: the pure parts of SCIM 2.0 (RFC 7643/7644): the filter language
 * of list queries, the attribute paths of PATCH operations, and PATCH
 * applied to a resource's JSON representation. Nothing here touches the
 * database or the network: src/api/scim.c maps resources to users and
 * groups.
 *
 * The parts that touch a database: the SCIM bearer tokens and the
 * externalId of groups (tables scim_tokens and scim_group_external_ids of
 * the tenant database; the caller owns the transaction).
 *
 * Untrusted input: filters, paths and PATCH bodies come from provisioning
 * clients. Every parser bounds its input (GH_SCIM_FILTER_MAX bytes,
 * GH_SCIM_FILTER_DEPTH nesting, GH_SCIM_FILTER_NODES nodes) and fails with
 * GH_ERR_INVALID (malformed) or GH_ERR_LIMIT (too large or complex).
 * Secrets: SCIM tokens, shown once, stored only as SHA-256 digests and
 * compared in constant time.
 */
#ifndef GH_SCIM_H
#define GH_SCIM_H

#include <jansson.h>

#include "core/core.h"
#include "store/store.h"

#define GH_SCIM_FILTER_MAX 1024		/* bytes of a filter or path */
#define GH_SCIM_FILTER_DEPTH 10		/* nesting of (), not, [] */
#define GH_SCIM_FILTER_NODES 50		/* operators and comparisons */

#define GH_SCIM_SCHEMA_USER "urn:ietf:params:scim:schemas:core:2.0:User"
#define GH_SCIM_SCHEMA_GROUP "urn:ietf:params:scim:schemas:core:2.0:Group"
#define GH_SCIM_SCHEMA_ENTERPRISE \
	"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
#define GH_SCIM_SCHEMA_ERROR "urn:ietf:params:scim:api:messages:2.0:Error"
#define GH_SCIM_SCHEMA_LIST "urn:ietf:params:scim:api:messages:2.0:ListResponse"
#define GH_SCIM_SCHEMA_PATCH "urn:ietf:params:scim:api:messages:2.0:PatchOp"

enum gh_scim_op {
	GH_SCIM_EQ = 1, GH_SCIM_NE, GH_SCIM_CO, GH_SCIM_SW, GH_SCIM_EW,
	GH_SCIM_PR, GH_SCIM_GT, GH_SCIM_GE, GH_SCIM_LT, GH_SCIM_LE,
	GH_SCIM_AND, GH_SCIM_OR, GH_SCIM_NOT,
	GH_SCIM_VALUE_PATH,	/* attr[filter]: some element matches */
};

/* One node of a parsed filter. attr is the attribute path as written,
 * with the core schema URN prefix removed ("emails.value",
 * "urn:...:enterprise:2.0:User:department"); value is the comparison value
 * (a JSON string, number, boolean or null; NULL for pr and the logical
 * operators). left/right: operands (NOT and VALUE_PATH use left only). */
struct gh_scim_node {
	enum gh_scim_op op;
	char *attr;
	json_t *value;
	struct gh_scim_node *left, *right;
};

/* A parsed filter; free with gh_scim_filter_free. */
struct gh_scim_filter {
	struct gh_scim_node *root;
	struct gh_scim_node nodes[GH_SCIM_FILTER_NODES];
	size_t n_nodes;
};

/*
 * Parses a SCIM filter (RFC 7644 section 3.4.2.2): attribute paths,
 * eq ne co sw ew pr gt ge lt le, and or not, parentheses and
 * attr[filter] value paths; keywords and operators in any case.
 * GH_ERR_INVALID with a message in msg when malformed, GH_ERR_LIMIT when
 * beyond the bounds above.
 */
gh_err gh_scim_filter_parse(const char *s, struct gh_scim_filter **out,
    char *msg, size_t msg_cap) GH_MUST_CHECK;
/* NULL is a no-op. */
void gh_scim_filter_free(struct gh_scim_filter *f);

/*
 * True when the resource (its SCIM JSON representation, borrowed)
 * matches. Attribute names match ignoring case; multi-valued attributes
 * match when any value does; a complex multi-valued attribute without a
 * sub-attribute compares its "value" members. Strings compare ignoring
 * case except id and externalId; gt/ge/lt/le compare RFC 3339 times as
 * times, numbers as numbers and other strings by bytes; booleans and null
 * only support eq and ne.
 */
bool gh_scim_filter_match(const struct gh_scim_filter *f, json_t *resource);
/* The same for one node (used for value paths and by tests). */
bool gh_scim_node_match(const struct gh_scim_node *n, json_t *resource);

/*
 * When f is exactly `attr eq "string"`, *value_out borrows the string and
 * true is returned: the caller may look it up by index. attr is compared
 * ignoring case.
 */
bool gh_scim_filter_is_eq(const struct gh_scim_filter *f, const char *attr,
    const char **value_out);

/* A PATCH path: attr, or attr[filter], or attr[filter].sub. */
struct gh_scim_path {
	char *attr;			/* as in gh_scim_node.attr */
	struct gh_scim_filter *filter;	/* NULL when none */
	char *sub;			/* NULL when none */
};

/* Parses a PATCH path; errors as gh_scim_filter_parse. Free with
 * gh_scim_path_free (NULL is a no-op). */
gh_err gh_scim_path_parse(const char *s, struct gh_scim_path **out,
    char *msg, size_t msg_cap) GH_MUST_CHECK;
void gh_scim_path_free(struct gh_scim_path *p);

/*
 * Applies the "Operations" array of a PatchOp body to resource, a SCIM
 * JSON representation (modified in place). op is add, replace or remove
 * in any case. Without a path, the value must be an object whose members
 * (plain or URN-prefixed attribute names, or an extension schema URN
 * holding an object) are added or replaced one by one. add appends to
 * arrays (skipping elements whose "value" is there already); replace
 * with a filtered path sets the sub-attribute of every matching element
 * and, when none matches and the filter is `attr eq "x"`, appends
 * {attr: "x", sub: value}; remove deletes the attribute, the matching
 * elements, or (with a value array, as Entra ID sends for members) the
 * elements whose "value" is listed.
 * On failure returns GH_ERR_INVALID with msg and *scim_type_out a SCIM
 * error type ("invalidSyntax", "invalidPath", "invalidValue",
 * "noTarget", "invalidFilter"), or GH_ERR_LIMIT (over 1000 operations),
 * leaving resource partially changed (the caller discards it).
 */
#define GH_SCIM_PATCH_OPS_MAX 1000
gh_err gh_scim_patch_apply(json_t *resource, json_t *operations, char *msg,
    size_t msg_cap, const char **scim_type_out) GH_MUST_CHECK;

/* Member of obj named key ignoring ASCII case, or NULL (borrowed). */
json_t *gh_scim_get_ci(json_t *obj, const char *key);

/* ---- SCIM bearer tokens ------------------------------------------------ */

#define GH_SCIM_TOKEN_PREFIX "ghs_"
#define GH_SCIM_TOKEN_LEN 47		/* "ghs_" + base64url of 32 bytes */
#define GH_SCIM_TOKEN_NAME_MAX 64

struct gh_scim_token {
	char id[GH_ID_LEN + 1];
	char name[GH_SCIM_TOKEN_NAME_MAX + 1];
	char created_by[GH_ID_LEN + 1];	/* "" when unknown */
	int64_t created_at;
	int64_t expires_at;
	int64_t last_used_at;		/* 0 if never */
};

/* Makes a token named name (1-64 bytes of text) by created_by (a user id
 * or NULL), expiring at expires_at (in the future). The secret goes to
 * token_out, to be shown once. GH_ERR_INVALID for a bad name or time. */
gh_err gh_scim_token_create(struct gh_db *db, const char *name,
    const char *created_by, int64_t expires_at,
    char token_out[static GH_SCIM_TOKEN_LEN + 1], struct gh_scim_token *out)
    GH_MUST_CHECK;
/* Finds the live (not revoked, not expired) token and records its use.
 * GH_ERR_DENIED when there is none or token is malformed. */
gh_err gh_scim_token_check(struct gh_db *db, const char *token,
    struct gh_scim_token *out) GH_MUST_CHECK;
/* Calls fn for each live token, oldest first. */
gh_err gh_scim_token_list(struct gh_db *db,
    void (*fn)(const struct gh_scim_token *t, void *arg), void *arg)
    GH_MUST_CHECK;
/* Revokes; its name goes to name_out. GH_ERR_NOTFOUND if absent or
 * revoked already. */
gh_err gh_scim_token_revoke(struct gh_db *db, const char *id,
    char name_out[static GH_SCIM_TOKEN_NAME_MAX + 1]) GH_MUST_CHECK;

/* ---- externalId of groups ---------------------------------------------- */

#define GH_SCIM_EXTERNAL_ID_MAX 256	/* bytes */

/* 1..GH_SCIM_EXTERNAL_ID_MAX bytes of UTF-8. */
bool gh_scim_external_id_valid(const char *s);
/* The externalId of group_id, "" when none. */
gh_err gh_scim_group_external_id_get(struct gh_db *db, const char *group_id,
    char out[static GH_SCIM_EXTERNAL_ID_MAX + 1]) GH_MUST_CHECK;
/* Sets it, or clears it when external_id is NULL. GH_ERR_INVALID when
 * not gh_scim_external_id_valid. */
gh_err gh_scim_group_external_id_set(struct gh_db *db, const char *group_id,
    const char *external_id) GH_MUST_CHECK;

#endif
