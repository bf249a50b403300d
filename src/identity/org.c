/*
 * org.c: organisations in the directory database.
 * Untrusted input: slugs and names (validated before any query).
 */
#include "identity/identity.h"
#include "identity/identity_int.h"

#include <string.h>

bool
gh_identity_slug_valid(const char *slug)
{
	size_t n;

	if (slug == NULL)
		return false;
	n = strlen(slug);
	if (n < 2 || n > GH_SLUG_MAX || slug[0] == '-' || slug[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = slug[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-'))
			return false;
	}
	return true;
}

/* Valid UTF-8, no C0/DEL control characters, within max bytes. */
bool
identity_text_ok(const char *s, size_t min, size_t max)
{
	size_t n;

	if (s == NULL)
		return false;
	n = strlen(s);
	if (n < min || n > max || !gh_utf8_valid(s, n))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

bool
gh_identity_org_name_valid(const char *name)
{
	return identity_text_ok(name, 1, GH_ORG_NAME_MAX);
}

bool
gh_identity_display_name_valid(const char *name)
{
	return identity_text_ok(name, 0, GH_DISPLAY_NAME_MAX);
}

bool
gh_identity_org_state_valid(const char *state)
{
	return state != NULL && (strcmp(state, "active") == 0 ||
	    strcmp(state, "suspended") == 0 || strcmp(state, "deleted") == 0);
}

#define ORG_COLUMNS "id, slug, name, state, region, created_at, updated_at"

/* Every change of the orgs table bumps the generation in the caller's
 * transaction, after the change: caches of organisations (org_cache.c)
 * drop what they hold when it moves (see gh_store_org_gen). */
static gh_err
org_gen_bump(struct gh_db *dir)
{
	return gh_db_run(dir, "UPDATE org_generation SET gen = gen + 1 "
	    "WHERE id = 1", "");
}

static void
org_from_row(struct gh_stmt *st, struct gh_org *o)
{
	memset(o, 0, sizeof *o);
	gh_strlcpy(o->id, gh_stmt_text(st, 0), sizeof o->id);
	gh_strlcpy(o->slug, gh_stmt_text(st, 1), sizeof o->slug);
	gh_strlcpy(o->name, gh_stmt_text(st, 2), sizeof o->name);
	gh_strlcpy(o->state, gh_stmt_text(st, 3), sizeof o->state);
	gh_strlcpy(o->region, gh_stmt_text(st, 4), sizeof o->region);
	o->created_at = gh_stmt_int(st, 5);
	o->updated_at = gh_stmt_int(st, 6);
}

gh_err
gh_identity_org_create(struct gh_db *dir, const char *slug, const char *name,
    const char *region, struct gh_org *out)
{
	struct gh_org o;
	gh_err err;

	if (!gh_identity_slug_valid(slug) || !gh_identity_org_name_valid(name) ||
	    !gh_store_region_valid(region))
		return GH_ERR_INVALID;
	memset(&o, 0, sizeof o);
	err = gh_id_new(o.id);
	if (err != GH_OK)
		return err;
	gh_strlcpy(o.slug, slug, sizeof o.slug);
	gh_strlcpy(o.name, name, sizeof o.name);
	gh_strlcpy(o.state, "active", sizeof o.state);
	gh_strlcpy(o.region, region, sizeof o.region);
	o.created_at = o.updated_at = gh_now_ms();
	err = gh_db_run(dir, "INSERT INTO orgs (" ORG_COLUMNS ") VALUES (?, ?, "
	    "?, ?, ?, ?, ?)", "tttttii", o.id, o.slug, o.name, o.state,
	    o.region, o.created_at, o.updated_at);
	if (err == GH_OK)
		err = org_gen_bump(dir);
	if (err != GH_OK)
		return err;
	*out = o;
	return GH_OK;
}

gh_err
gh_identity_org_get(struct gh_db *dir, const char *slug, struct gh_org *out)
{
	int64_t gen;

	return identity_org_get_gen(dir, slug, out, &gen);
}

gh_err
gh_identity_org_get_id(struct gh_db *dir, const char *org_id,
    struct gh_org *out)
{
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	if (org_id == NULL || !gh_id_valid(org_id))
		return GH_ERR_NOTFOUND;
	err = gh_db_prepare(dir, "SELECT " ORG_COLUMNS " FROM orgs WHERE "
	    "id = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", org_id);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && !row)
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK)
		org_from_row(st, out);
	gh_stmt_free(st);
	return err;
}

gh_err
identity_org_get_gen(struct gh_db *dir, const char *slug, struct gh_org *out,
    int64_t *gen_out)
{
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	if (!gh_identity_slug_valid(slug))
		return GH_ERR_NOTFOUND;
	/* One statement, one snapshot: the row and the generation it
	 * belongs to. */
	err = gh_db_prepare(dir, "SELECT " ORG_COLUMNS ", (SELECT gen FROM "
	    "org_generation WHERE id = 1) FROM orgs WHERE slug = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", slug);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && !row)
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK) {
		org_from_row(st, out);
		*gen_out = gh_stmt_int(st, 7);
	}
	gh_stmt_free(st);
	return err;
}

gh_err
gh_identity_org_list(struct gh_db *dir,
    void (*fn)(const struct gh_org *org, void *arg), void *arg)
{
	struct gh_stmt *st = NULL;
	struct gh_org o;
	bool row;
	gh_err err;

	err = gh_db_prepare(dir, "SELECT " ORG_COLUMNS " FROM orgs ORDER BY "
	    "slug", &st);
	while (err == GH_OK) {
		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		org_from_row(st, &o);
		fn(&o, arg);
	}
	gh_stmt_free(st);
	return err;
}

static gh_err
org_update(struct gh_db *dir, const char *sql, const char *value,
    const char *org_id)
{
	gh_err err;

	err = gh_db_run(dir, sql, "tit", value, gh_now_ms(), org_id);
	if (err == GH_OK && gh_db_changes(dir) == 0)
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK)
		err = org_gen_bump(dir);
	return err;
}

gh_err
gh_identity_org_set_state(struct gh_db *dir, const char *org_id,
    const char *state)
{
	if (!gh_identity_org_state_valid(state))
		return GH_ERR_INVALID;
	if (strcmp(state, "deleted") == 0) {
		int64_t now = gh_now_ms();
		gh_err err;

		err = gh_db_run(dir, "UPDATE orgs SET state = ?, updated_at = ?, "
		    "deleted_at = ? WHERE id = ?", "tiit", state, now, now,
		    org_id);
		if (err == GH_OK && gh_db_changes(dir) == 0)
			err = GH_ERR_NOTFOUND;
		if (err == GH_OK)
			err = org_gen_bump(dir);
		return err;
	}
	return org_update(dir, "UPDATE orgs SET state = ?, updated_at = ?, "
	    "deleted_at = NULL WHERE id = ?", state, org_id);
}

gh_err
gh_identity_org_set_name(struct gh_db *dir, const char *org_id,
    const char *name)
{
	if (!gh_identity_org_name_valid(name))
		return GH_ERR_INVALID;
	return org_update(dir, "UPDATE orgs SET name = ?, updated_at = ? WHERE "
	    "id = ?", name, org_id);
}

json_t *
gh_identity_org_json(const struct gh_org *org)
{
	char created[25];

	gh_time_rfc3339(org->created_at, created);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", org->id,
	    "slug", org->slug, "name", org->name, "state", org->state,
	    "region", org->region, "created_at", created);
}

gh_err
gh_identity_org_mark_purged(struct gh_db *dir, const char *org_id)
{
	gh_err err;

	err = gh_db_run(dir, "UPDATE orgs SET purged_at = ? WHERE id = ? AND "
	    "state = 'deleted'", "it", gh_now_ms(), org_id);
	if (err == GH_OK && gh_db_changes(dir) == 0)
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK)
		err = org_gen_bump(dir);
	return err;
}

gh_err
gh_identity_org_purge_due(struct gh_db *dir, int64_t deleted_before,
    void (*fn)(const struct gh_org *org, void *arg), void *arg)
{
	struct gh_stmt *st = NULL;
	struct gh_org o;
	bool row;
	gh_err err;

	err = gh_db_prepare(dir, "SELECT " ORG_COLUMNS " FROM orgs WHERE "
	    "state = 'deleted' AND purged_at IS NULL AND deleted_at <= ? "
	    "ORDER BY deleted_at", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "i", deleted_before);
	while (err == GH_OK) {
		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		org_from_row(st, &o);
		fn(&o, arg);
	}
	gh_stmt_free(st);
	return err;
}
