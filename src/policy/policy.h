/*
 * policy.h: security policies. Named sets of sign-in rules (password
 * rules, MFA, session limits, IP and country allow-lists) attached to
 * groups with a priority; a user's effective policy is computed here and
 * nowhere else. Also the pure pieces the rules need: CIDR parsing and
 * matching (IPv4 and IPv6) and the country lookup (gh_geo).
 *
 * Functions taking a gh_db never BEGIN or COMMIT: the caller's transaction
 * covers them, so that a change and its audit event commit together.
 */
#ifndef GH_POLICY_H
#define GH_POLICY_H

#include <jansson.h>
#include <stdint.h>

#include "auth/auth.h"
#include "core/core.h"

struct gh_db;

/* ---- CIDR ranges and addresses --------------------------------------------------
 *
 * Addresses are held as 16 bytes: an IPv4 address as its IPv4-mapped IPv6
 * form (::ffff:a.b.c.d), so that a client reaching an IPv6 socket with a
 * mapped address matches IPv4 ranges. A range "a.b.c.d/n" is stored as
 * ::ffff:a.b.c.d/(96+n). Host bits set below the prefix are accepted and
 * cleared ("10.1.2.3/8" means "10.0.0.0/8"). A bare address is a /32 or a
 * /128.
 */

/* The longest normalised form, NUL included. */
#define GH_CIDR_STR_MAX 64

struct gh_cidr {
	uint8_t addr[16];	/* host bits cleared */
	unsigned bits;		/* 0..128 over the 16-byte form */
	bool v4;		/* written as IPv4 */
};

/* Parses s (at most GH_CIDR_STR_MAX - 1 bytes). GH_ERR_INVALID when it is
 * not an IPv4 or IPv6 address with an optional /prefix in range. */
gh_err gh_policy_cidr_parse(const char *s, struct gh_cidr *out)
    GH_MUST_CHECK;
/* The normalised text: "10.0.0.0/8", "2001:db8::/32". */
void gh_policy_cidr_format(const struct gh_cidr *c,
    char out[static GH_CIDR_STR_MAX]);
/* Parses an IPv4 or IPv6 address (no prefix) into the 16-byte form. */
gh_err gh_policy_ip_parse(const char *s, uint8_t out[static 16])
    GH_MUST_CHECK;
/* True when ip lies in c. */
bool gh_policy_cidr_match(const struct gh_cidr *c,
    const uint8_t ip[static 16]);

/* ---- countries -------------------------------------------------------------------
 *
 * A country database read from a CSV file of "cidr,country" lines
 * (ISO 3166 alpha-2; blank lines and lines starting with '#' skipped). The
 * most specific matching range wins. Immutable once loaded: shared by all
 * threads.
 */
#define GH_GEO_MAX_ENTRIES 1000000

struct gh_geo;

/* Loads path. On GH_ERR_INVALID msg names the line; GH_ERR_IO when the
 * file cannot be read; GH_ERR_LIMIT past GH_GEO_MAX_ENTRIES lines. */
gh_err gh_geo_load(const char *path, struct gh_geo **out, char *msg,
    size_t msg_cap) GH_MUST_CHECK;
/* Parses CSV text of len bytes (the loader's core; fuzzed). */
gh_err gh_geo_parse(const char *text, size_t len, struct gh_geo **out,
    char *msg, size_t msg_cap) GH_MUST_CHECK;
/* NULL is a no-op. */
void gh_geo_free(struct gh_geo *geo);
/* The country of ip into cc ("FR"), true when known. geo may be NULL (no
 * database configured): unknown. An unparsable ip is unknown. */
bool gh_geo_country(const struct gh_geo *geo, const char *ip,
    char cc[static 3]);

/* ---- settings --------------------------------------------------------------------
 *
 * A policy's settings: an object of optional sections, each of optional
 * fields; an absent field falls through (see gh_policy_effective).
 *   password: min_length 8..128, min_classes 0..4, min_score 0..100,
 *             reject_common, reject_context (booleans)
 *   mfa:      required (boolean), methods (non-empty subset of "totp",
 *             "webauthn", "recovery", "approval" holding "totp" or
 *             "webauthn"), reauth_interval_s 0..7776000
 *   session:  lifetime_s 60..7776000, idle_timeout_s 60..7776000,
 *             max_concurrent 1..1000
 *   network:  allowed_cidrs (at most GH_POLICY_LIST_MAX CIDR strings),
 *             allowed_countries (at most GH_POLICY_LIST_MAX alpha-2 codes)
 * A null field is the same as an absent one.
 */
#define GH_POLICY_LIST_MAX 64
#define GH_POLICY_NAME_MAX 64
#define GH_POLICY_PRIORITY_MAX 1000000
#define GH_POLICY_DEFAULT_ID "00000000000000000000000000000001"

/* Validates and normalises in (CIDRs normalised and de-duplicated,
 * countries upper-cased) into a new object *out. On GH_ERR_INVALID msg
 * names the field and *code_out is "invalid_cidr" (a bad CIDR entry) or
 * "invalid_request". */
gh_err gh_policy_settings_parse(json_t *in, json_t **out, char *msg,
    size_t msg_cap, const char **code_out) GH_MUST_CHECK;
/* Applies the JSON merge patch (RFC 7396, two levels deep) of settings
 * patch over base into a new object *out (not yet validated). */
gh_err gh_policy_settings_merge(json_t *base, json_t *patch, json_t **out)
    GH_MUST_CHECK;

/* The typed view of an effective settings object, for enforcement. */
struct gh_policy_eff {
	bool has_cidrs;
	size_t n_cidrs;
	struct gh_cidr cidrs[GH_POLICY_LIST_MAX];
	bool has_countries;
	size_t n_countries;
	char countries[GH_POLICY_LIST_MAX][3];
	int mfa_required;		/* -1: not set */
	bool has_methods;
	bool allow_totp, allow_webauthn, allow_recovery, allow_approval;
	int64_t reauth_interval_s;	/* 0: not set */
	int64_t lifetime_s;		/* 0: not set */
	int64_t idle_timeout_s;		/* 0: not set */
	int64_t max_concurrent;		/* 0: not set */
	bool has_pw[5];			/* the gh_pw_policy fields, in order */
	struct gh_pw_policy pw;
};

/* Reads settings (normalised by gh_policy_settings_parse or merged by
 * gh_policy_effective) into *out. */
gh_err gh_policy_eff_read(json_t *settings, struct gh_policy_eff *out)
    GH_MUST_CHECK;

enum gh_policy_verdict {
	GH_POLICY_ALLOW,
	GH_POLICY_IP_BLOCKED,		/* not in allowed_cidrs */
	GH_POLICY_COUNTRY_BLOCKED,	/* not in allowed_countries, or unknown */
};

/* Decides whether a sign-in from ip may go on. An unknown country (no
 * database, no entry, bad address) is refused when allowed_countries is
 * set: the rule fails closed. */
enum gh_policy_verdict gh_policy_network_check(const struct gh_policy_eff *e,
    const char *ip, const struct gh_geo *geo);
/* True when an allow-list is set and empty: no sign-in from anywhere. */
bool gh_policy_blocks_everywhere(const struct gh_policy_eff *e);
/* Lays the policy's MFA fields over the org's MFA policy for one user:
 * mfa.required (true: required at once, no grace window unless the org
 * policy already runs one; false: not required, the org's required groups
 * included) and mfa.methods. */
void gh_policy_mfa_apply(const struct gh_policy_eff *e,
    struct gh_mfa_policy *pol);
/* Lays the policy's password fields over the org's password policy. */
void gh_policy_pw_apply(const struct gh_policy_eff *e,
    struct gh_pw_policy *pol);
/* Shortens lim (never lengthens) by the policy's session fields. */
void gh_policy_session_apply(const struct gh_policy_eff *e,
    struct gh_session_limits *lim);

/* ---- stored policies ------------------------------------------------------------- */

struct gh_policy {
	char id[GH_ID_LEN + 1];
	char name[GH_POLICY_NAME_MAX + 1];
	int64_t priority;	/* lower wins; the default's is INT32_MAX */
	bool is_default;
	json_t *settings;	/* owned; normalised */
	int64_t created_at;
	int64_t updated_at;
};

/* 1..GH_POLICY_NAME_MAX printable ASCII characters, not starting or ending
 * with a space. */
bool gh_policy_name_valid(const char *name);
/* Releases p->settings. */
void gh_policy_clear(struct gh_policy *p);

/* Inserts p (fresh id and times filled here). GH_ERR_CONFLICT with
 * *why_out "policy_exists" (name, ignoring case) or "priority_taken". */
gh_err gh_policy_insert(struct gh_db *db, struct gh_policy *p,
    const char **why_out) GH_MUST_CHECK;
/* Writes name, priority and settings; bumps updated_at. Conflicts as for
 * insert. The default's priority cannot change (GH_ERR_INVALID). */
gh_err gh_policy_update(struct gh_db *db, struct gh_policy *p,
    const char **why_out) GH_MUST_CHECK;
gh_err gh_policy_get(struct gh_db *db, const char *id, struct gh_policy *out)
    GH_MUST_CHECK;
/* GH_ERR_DENIED for the default policy. */
gh_err gh_policy_delete(struct gh_db *db, const char *id) GH_MUST_CHECK;
/* Every policy by priority (the default last), as JSON views with their
 * group ids. */
gh_err gh_policy_list(struct gh_db *db, json_t **out) GH_MUST_CHECK;
/* {"id", "name", "priority", "is_default", "settings", "groups",
 * "created_at", "updated_at"}; groups may be NULL (then left out). */
json_t *gh_policy_json(const struct gh_policy *p, json_t *groups);
/* The group ids policy_id is attached to, as a JSON array. */
gh_err gh_policy_groups(struct gh_db *db, const char *policy_id,
    json_t **out) GH_MUST_CHECK;
/* *added_out false when attached already. GH_ERR_DENIED for the default
 * policy (it applies to everyone). */
gh_err gh_policy_attach(struct gh_db *db, const char *policy_id,
    const char *group_id, bool *added_out) GH_MUST_CHECK;
/* GH_ERR_NOTFOUND when not attached. */
gh_err gh_policy_detach(struct gh_db *db, const char *policy_id,
    const char *group_id) GH_MUST_CHECK;

/*
 * The effective policy of user_id, the one place it is computed: the
 * policies attached to the user's effective groups (direct groups and
 * their parents), by priority, then the default policy, merged field by
 * field (the first policy that sets a field gives it); then, for fields
 * no policy sets, org_fallback (a settings object of the org-level
 * values, may be NULL). *out:
 *   {"user_id", "policies": [{"id", "name", "priority", "is_default"}],
 *    "settings": {...}, "sources": {"section.field": {"kind": "policy",
 *    "id", "name"} or {"kind": "org"}}}
 * *eff_out (may be NULL) gets the typed view of "settings".
 */
gh_err gh_policy_effective(struct gh_db *db, const char *user_id,
    json_t *org_fallback, json_t **out, struct gh_policy_eff *eff_out)
    GH_MUST_CHECK;

#endif
