/* identity_int.h: private to src/identity and its tests. The user list
 * and the attribute-filtered user list page and search the same way. */
#ifndef GH_IDENTITY_INT_H
#define GH_IDENTITY_INT_H

#include "identity/identity.h"

/* Parses a user-list cursor, "<created_at>.<id>" of the last row of the
 * previous page. GH_ERR_INVALID for anything else. */
gh_err identity_cursor_parse(const char *c, int64_t *at_out,
    char id_out[static GH_ID_LEN + 1]) GH_MUST_CHECK;

/* "%" + q with LIKE's metacharacters escaped + "%", lowercased: how q
 * matches usernames, e-mails and display names. malloc'd; NULL on
 * ENOMEM. */
char *identity_like_pattern(const char *q);

/* Valid UTF-8, no C0/DEL control characters, min..max bytes. */
bool identity_text_ok(const char *s, size_t min, size_t max);

/* RFC 3339 text of ms, or JSON null when ms <= 0. */
json_t *identity_time_json(int64_t ms);

/* gh_identity_org_get, with the organisations' generation read in the
 * same statement (the snapshot the row belongs to). */
gh_err identity_org_get_gen(struct gh_db *dir, const char *slug,
    struct gh_org *out, int64_t *gen_out) GH_MUST_CHECK;

#endif
