/*
 * group_ext.c: the externalId of groups provisioned over SCIM, in
 * scim_group_external_ids. Untrusted input: the externalId (bounded,
 * UTF-8 checked). No secrets. The caller owns the transaction.
 */
#include "scim/scim.h"

#include <string.h>

bool
gh_scim_external_id_valid(const char *s)
{
	size_t n;

	if (s == NULL)
		return false;
	n = strnlen(s, GH_SCIM_EXTERNAL_ID_MAX + 1);
	return n > 0 && n <= GH_SCIM_EXTERNAL_ID_MAX && gh_utf8_valid(s, n);
}

gh_err
gh_scim_group_external_id_get(struct gh_db *db, const char *group_id,
    char out[static GH_SCIM_EXTERNAL_ID_MAX + 1])
{
	struct gh_stmt *st = NULL;
	const char *s;
	bool row = false;
	gh_err err;

	out[0] = '\0';
	err = gh_db_prepare(db, "SELECT external_id FROM "
	    "scim_group_external_ids WHERE group_id = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", group_id);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && row && (s = gh_stmt_text(st, 0)) != NULL)
		gh_strlcpy(out, s, GH_SCIM_EXTERNAL_ID_MAX + 1);
	gh_stmt_free(st);
	return err;
}

gh_err
gh_scim_group_external_id_set(struct gh_db *db, const char *group_id,
    const char *external_id)
{
	if (external_id == NULL)
		return gh_db_run(db, "DELETE FROM scim_group_external_ids "
		    "WHERE group_id = ?", "t", group_id);
	if (!gh_scim_external_id_valid(external_id))
		return GH_ERR_INVALID;
	return gh_db_run(db, "INSERT INTO scim_group_external_ids (group_id, "
	    "external_id) VALUES (?, ?) ON CONFLICT (group_id) DO UPDATE SET "
	    "external_id = excluded.external_id", "tt", group_id, external_id);
}
