/*
 * ruleset.c: stored assignment rules, binding an expression to the org's
 * attributes, the facts of one user, and applying rules: granting and
 * taking back app assignments and group memberships, each audited as made
 * by the system on behalf of the rule.
 *
 * Untrusted input: expressions (parsed by rule.c) and rule bodies already
 * validated by the API. Secrets: none; encrypted attributes are matched by
 * blind index only, never decrypted.
 */
#include "access/access_int.h"
#include "identity/identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ATTR_TABLE "user_attributes"	/* as src/identity/attrs.c */
#define BLIND_HEX_LEN (2 * GH_KMS_INDEX_LEN)
#define APPLY_ROUNDS 4

#define RULE_COLUMNS "id, name, expression, app_id, app_role, group_id, " \
	"enabled, created_at, updated_at"

bool
gh_access_rule_name_valid(const char *name)
{
	return access_text_ok(name, 1, GH_RULE_NAME_MAX);
}

static bool
row_valid(const struct gh_access_rule_row *r)
{
	return gh_id_valid(r->id) && gh_access_rule_name_valid(r->name) &&
	    strlen(r->expression) > 0 &&
	    (r->app_id[0] != '\0') != (r->group_id[0] != '\0') &&
	    (r->app_role[0] == '\0' || r->app_id[0] != '\0');
}

static const char *
null_if_empty(const char *s)
{
	return s[0] != '\0' ? s : NULL;
}

gh_err
gh_access_rule_insert(struct gh_db *db, struct gh_access_rule_row *r)
{
	char key[GH_RULE_NAME_MAX + 1];
	gh_err err;

	err = gh_id_new(r->id);
	if (err != GH_OK)
		return err;
	r->created_at = r->updated_at = gh_now_ms();
	if (!row_valid(r))
		return GH_ERR_INVALID;
	access_name_key(r->name, key, sizeof key);
	return gh_db_run(db, "INSERT INTO rules (" RULE_COLUMNS ", name_key) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "ttttttiiit", r->id,
	    r->name, r->expression, null_if_empty(r->app_id),
	    null_if_empty(r->app_role), null_if_empty(r->group_id),
	    (int64_t)r->enabled, r->created_at, r->updated_at, key);
}

gh_err
gh_access_rule_update(struct gh_db *db, struct gh_access_rule_row *r)
{
	char key[GH_RULE_NAME_MAX + 1];
	gh_err err;

	if (!row_valid(r))
		return GH_ERR_INVALID;
	access_name_key(r->name, key, sizeof key);
	r->updated_at = gh_now_ms();
	err = gh_db_run(db, "UPDATE rules SET name = ?, name_key = ?, "
	    "expression = ?, app_id = ?, app_role = ?, group_id = ?, "
	    "enabled = ?, updated_at = ? WHERE id = ?", "ttttttiit", r->name,
	    key, r->expression, null_if_empty(r->app_id),
	    null_if_empty(r->app_role), null_if_empty(r->group_id),
	    (int64_t)r->enabled, r->updated_at, r->id);
	if (err == GH_OK && gh_db_changes(db) == 0)
		err = GH_ERR_NOTFOUND;
	return err;
}

static void
copy_col(struct gh_stmt *st, int col, char *dst, size_t cap)
{
	const char *s = gh_stmt_text(st, col);

	gh_strlcpy(dst, s ? s : "", cap);
}

static void
row_from_stmt(struct gh_stmt *st, struct gh_access_rule_row *r)
{
	memset(r, 0, sizeof *r);
	copy_col(st, 0, r->id, sizeof r->id);
	copy_col(st, 1, r->name, sizeof r->name);
	copy_col(st, 2, r->expression, sizeof r->expression);
	copy_col(st, 3, r->app_id, sizeof r->app_id);
	copy_col(st, 4, r->app_role, sizeof r->app_role);
	copy_col(st, 5, r->group_id, sizeof r->group_id);
	r->enabled = gh_stmt_int(st, 6) != 0;
	r->created_at = gh_stmt_int(st, 7);
	r->updated_at = gh_stmt_int(st, 8);
}

gh_err
gh_access_rule_get(struct gh_db *db, const char *id,
    struct gh_access_rule_row *out)
{
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	memset(out, 0, sizeof *out);
	if (id == NULL || !gh_id_valid(id))
		return GH_ERR_NOTFOUND;
	err = gh_db_prepare(db, "SELECT " RULE_COLUMNS " FROM rules WHERE "
	    "id = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", id);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && !row)
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK)
		row_from_stmt(st, out);
	gh_stmt_free(st);
	return err;
}

gh_err
gh_access_rule_delete(struct gh_db *db, const char *id)
{
	gh_err err;

	err = gh_db_run(db, "DELETE FROM rules WHERE id = ?", "t", id);
	if (err == GH_OK && gh_db_changes(db) == 0)
		err = GH_ERR_NOTFOUND;
	return err;
}

gh_err
gh_access_membership_by_rule(struct gh_db *db, const char *group_id,
    const char *user_id, bool *out)
{
	int64_t n = 0;
	gh_err err;

	err = access_count(db, "SELECT COUNT(*) FROM rule_memberships WHERE "
	    "group_id = ? AND user_id = ?", group_id, user_id, &n);
	*out = err == GH_OK && n > 0;
	return err;
}

json_t *
gh_access_rule_row_json(const struct gh_access_rule_row *r)
{
	json_t *action;

	if (r->app_id[0] != '\0')
		action = json_pack("{s:s, s:o}", "app_id", r->app_id, "role",
		    r->app_role[0] ? json_string(r->app_role) : json_null());
	else
		action = json_pack("{s:s}", "group_id", r->group_id);
	return json_pack("{s:s, s:s, s:s, s:o, s:b, s:o, s:o}", "id", r->id,
	    "name", r->name, "expression", r->expression, "action", action,
	    "enabled", r->enabled, "created_at",
	    access_time_json(r->created_at), "updated_at",
	    access_time_json(r->updated_at));
}

/* Calls fn for every rule, oldest first. */
static gh_err
rules_each(struct gh_db *db, gh_err (*fn)(const struct gh_access_rule_row *r,
    void *arg), void *arg)
{
	struct gh_access_rule_row *rows = NULL, *grown;
	struct gh_stmt *st = NULL;
	size_t n = 0, i;
	bool row;
	gh_err err;

	/* Collect first: fn may run statements of its own. */
	err = gh_db_prepare(db, "SELECT " RULE_COLUMNS " FROM rules ORDER BY "
	    "created_at, id", &st);
	while (err == GH_OK) {
		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		if ((grown = realloc(rows, (n + 1) * sizeof *rows)) == NULL) {
			err = GH_ERR_NOMEM;
			break;
		}
		rows = grown;
		row_from_stmt(st, &rows[n++]);
	}
	gh_stmt_free(st);
	for (i = 0; err == GH_OK && i < n; i++)
		err = fn(&rows[i], arg);
	free(rows);
	return err;
}

static gh_err
list_one(const struct gh_access_rule_row *r, void *arg)
{
	return json_array_append_new(arg, gh_access_rule_row_json(r)) == 0 ?
	    GH_OK : GH_ERR_NOMEM;
}

gh_err
gh_access_rule_list(struct gh_db *db, json_t **out)
{
	json_t *arr = json_array();
	gh_err err;

	*out = NULL;
	if (arr == NULL)
		return GH_ERR_NOMEM;
	err = rules_each(db, list_one, arr);
	if (err != GH_OK) {
		json_decref(arr);
		return err;
	}
	*out = arr;
	return GH_OK;
}

/* ---- binding ---------------------------------------------------------------------- */

static gh_err
bind_error(struct gh_access_rule_error *e, const char *code,
    const struct rule_node *n, gh_err err, const char *fmt, const char *arg)
{
	e->code = code;
	e->pos = n->pos;
	gh_strlcpy(e->name, arg, sizeof e->name);
	snprintf(e->msg, sizeof e->msg, fmt, arg);
	return err;
}

/* Puts each literal of n in d's canonical text, or its blind index. */
static gh_err
bind_literals(struct gh_db *db, struct gh_kms *kms,
    const struct gh_attr_def *d, struct rule_node *n,
    struct gh_access_rule_error *e)
{
	uint8_t mac[GH_KMS_INDEX_LEN];
	struct gh_buf canon;
	char msg[160], *v;
	size_t i;
	gh_err err = GH_OK;

	if (d->encrypted && n->op != RO_EQ && n->op != RO_NE &&
	    n->op != RO_IN)
		return bind_error(e, "invalid_rule", n, GH_ERR_INVALID,
		    "%s is encrypted: only ==, != and in compare it", d->name);
	n->encrypted = d->encrypted;
	for (i = 0; err == GH_OK && i < n->n_vals; i++) {
		gh_buf_init(&canon, GH_ATTR_STRING_MAX + 1,
		    d->encrypted ? GH_BUF_SECRET : 0);
		err = n->op == RO_EQ || n->op == RO_NE || n->op == RO_IN ?
		    gh_identity_attr_canon_text(d, n->vals[i], &canon, msg,
		    sizeof msg) : GH_OK;
		if (err == GH_ERR_INVALID) {
			bind_error(e, "invalid_rule", n, err, "%s", msg);
		} else if (err == GH_OK && d->encrypted) {
			if (kms == NULL)
				err = GH_ERR_DENIED;
			else
				err = gh_kms_blind_index(kms, gh_db_org_id(db),
				    ATTR_TABLE, d->name, canon.data, canon.len,
				    mac);
			if (err == GH_ERR_NOTFOUND)
				err = GH_ERR_DENIED;
			if (err == GH_OK) {
				if ((v = malloc(BLIND_HEX_LEN + 1)) == NULL)
					err = GH_ERR_NOMEM;
				else
					gh_hex_encode(mac, sizeof mac, v);
			}
			if (err == GH_OK) {
				gh_str_wipe_free(n->vals[i]);
				n->vals[i] = v;
			}
			gh_wipe(mac, sizeof mac);
		} else if (err == GH_OK && canon.len > 0 &&
		    strcmp(gh_buf_cstr(&canon), n->vals[i]) != 0) {
			if ((v = strdup(gh_buf_cstr(&canon))) == NULL)
				err = GH_ERR_NOMEM;
			else {
				free(n->vals[i]);
				n->vals[i] = v;
			}
		}
		gh_buf_free(&canon);
	}
	return err;
}

gh_err
gh_access_rule_compile(struct gh_db *db, struct gh_kms *kms, const char *expr,
    bool check_groups, struct gh_access_rule **out,
    struct gh_access_rule_error *e)
{
	struct gh_access_rule *r = NULL;
	struct gh_attr_defs defs = { 0 };
	const struct gh_attr_def *d;
	struct gh_group g;
	size_t i;
	gh_err err;

	*out = NULL;
	err = gh_access_rule_parse(expr, strlen(expr), &r, e);
	if (err == GH_OK)
		err = gh_identity_attr_def_list(db, &defs);
	for (i = 0; err == GH_OK && r != NULL && i < r->n; i++) {
		struct rule_node *n = &r->nodes[i];

		if (n->kind == RK_GROUP && check_groups) {
			err = gh_identity_group_find(db, n->name, &g);
			if (err == GH_ERR_NOTFOUND)
				bind_error(e, "unknown_group", n, err,
				    "group(\"%s\"): no such group", n->name);
		}
		if (n->kind != RK_CMP || gh_access_rule_builtin(n->name))
			continue;
		d = gh_identity_attr_defs_find(&defs, n->name);
		if (d == NULL)
			err = bind_error(e, "unknown_attribute", n,
			    GH_ERR_NOTFOUND, "%s: no such field or attribute",
			    n->name);
		else
			err = bind_literals(db, kms, d, n, e);
	}
	gh_identity_attr_defs_free(&defs);
	if (err != GH_OK) {
		gh_access_rule_free(r);
		return err;
	}
	*out = r;
	return GH_OK;
}

/* ---- the facts of one user ------------------------------------------------------ */

#define FACTS_GROUPS_MAX 256

struct facts {
	struct gh_user u;
	json_t *attrs;		/* {name: text or blind index} */
	json_t *groups;		/* {lowercased name: true} */
};

static const char *
facts_value(void *arg, const char *name)
{
	struct facts *f = arg;

	if (strcmp(name, "username") == 0)
		return f->u.username;
	if (strcmp(name, "email") == 0)
		return f->u.email[0] ? f->u.email : NULL;
	if (strcmp(name, "display_name") == 0)
		return f->u.display_name[0] ? f->u.display_name : NULL;
	if (strcmp(name, "state") == 0)
		return f->u.state;
	return json_string_value(json_object_get(f->attrs, name));
}

static bool
facts_in_group(void *arg, const char *name)
{
	struct facts *f = arg;
	char key[GH_GROUP_NAME_MAX + 1];

	if (strlen(name) > GH_GROUP_NAME_MAX)
		return false;
	access_name_key(name, key, sizeof key);
	return json_object_get(f->groups, key) != NULL;
}

static void
facts_clear(struct facts *f)
{
	json_decref(f->attrs);
	json_decref(f->groups);
	gh_wipe(&f->u, sizeof f->u);
	f->attrs = f->groups = NULL;
}

/* Adds column 0 (and column 1 as the value, when two) of each row. */
static gh_err
facts_query(struct gh_db *db, const char *sql, const char *user_id,
    json_t *obj, bool pairs)
{
	struct gh_stmt *st = NULL;
	bool row;
	gh_err err;

	err = gh_db_prepare(db, sql, &st);
	if (err == GH_OK)
		err = pairs ? gh_stmt_bind(st, "t", user_id) :
		    gh_stmt_bind(st, "tt", user_id, user_id);
	while (err == GH_OK) {
		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		if (json_object_set_new(obj, gh_stmt_text(st, 0), pairs ?
		    json_string(gh_stmt_text(st, 1)) : json_true()) != 0)
			err = GH_ERR_NOMEM;
	}
	gh_stmt_free(st);
	return err;
}

static gh_err
facts_load(struct gh_db *db, const char *user_id, struct facts *f)
{
	gh_err err;

	memset(f, 0, sizeof *f);
	f->attrs = json_object();
	f->groups = json_object();
	if (f->attrs == NULL || f->groups == NULL)
		return GH_ERR_NOMEM;
	err = gh_identity_user_get(db, user_id, &f->u);
	if (err == GH_OK)
		err = facts_query(db, "SELECT d.name, COALESCE(v.value_text, "
		    "v.blind_index) FROM user_attributes v JOIN "
		    "attribute_definitions d ON d.id = v.attribute_id WHERE "
		    "v.user_id = ?", user_id, f->attrs, true);
	if (err == GH_OK)
		err = facts_query(db, "SELECT g.name_key FROM groups g WHERE "
		    "g.id IN (SELECT group_id FROM group_members WHERE "
		    "user_id = ?) OR g.id IN (SELECT c.parent_id FROM groups c "
		    "JOIN group_members m ON m.group_id = c.id WHERE "
		    "m.user_id = ?)", user_id, f->groups, false);
	return err;
}

static bool
facts_match(const struct gh_access_rule *r, struct facts *f)
{
	struct gh_access_facts af = { facts_value, facts_in_group, f };

	return r != NULL && gh_access_rule_eval(r, &af);
}

/* ---- applying ------------------------------------------------------------------- */

/* A rule ready to apply: its row and compiled expression (NULL when it
 * is disabled or no longer compiles: it then matches nobody). */
struct bound_rule {
	struct gh_access_rule_row row;
	struct gh_access_rule *expr;
};

struct ruleset {
	struct gh_db *db;
	struct gh_kms *kms;
	struct bound_rule *v;
	size_t n;
	gh_err err;
};

static gh_err
ruleset_add(const struct gh_access_rule_row *r, void *arg)
{
	struct ruleset *rs = arg;
	struct gh_access_rule_error e;
	struct bound_rule *grown;
	struct gh_access_rule *expr = NULL;
	gh_err err = GH_OK;

	if (r->enabled) {
		err = gh_access_rule_compile(rs->db, rs->kms, r->expression,
		    false, &expr, &e);
		/* A rule whose attribute was deleted since matches nobody:
		 * access is taken back rather than kept on a guess. */
		if (err == GH_ERR_INVALID || err == GH_ERR_NOTFOUND) {
			GH_LOG_WARN(err, "rule %s no longer compiles: %s",
			    r->id, e.code ? e.code : "?");
			err = GH_OK;
		}
		if (err != GH_OK)
			return err;
	}
	grown = realloc(rs->v, (rs->n + 1) * sizeof *rs->v);
	if (grown == NULL) {
		gh_access_rule_free(expr);
		return GH_ERR_NOMEM;
	}
	rs->v = grown;
	rs->v[rs->n].row = *r;
	rs->v[rs->n].expr = expr;
	rs->n++;
	return GH_OK;
}

static void
ruleset_free(struct ruleset *rs)
{
	size_t i;

	for (i = 0; i < rs->n; i++)
		gh_access_rule_free(rs->v[i].expr);
	free(rs->v);
	rs->v = NULL;
	rs->n = 0;
}

static gh_err
audit_rule(struct gh_db *db, const char *request_id, const char *action,
    const char *target_type, const char *target_id,
    const struct gh_access_rule_row *r, const struct gh_user *u,
    const char *assignment_id)
{
	struct gh_audit_actor actor = { .type = "system",
		.request_id = request_id };
	json_t *changes;
	gh_err err;

	changes = json_pack("{s:s, s:s, s:s, s:s}", "rule_id", r->id,
	    "rule_name", r->name, "user_id", u->id, "username", u->username);
	if (changes == NULL)
		return GH_ERR_NOMEM;
	if (r->app_role[0] != '\0')
		json_object_set_new(changes, "role", json_string(r->app_role));
	if (assignment_id != NULL)
		json_object_set_new(changes, "assignment_id",
		    json_string(assignment_id));
	err = gh_audit_append(db, &actor, action, target_type, target_id,
	    changes);
	json_decref(changes);
	return err;
}

/* The assignment id rule r made for user_id ("" when none). */
static gh_err
rule_assignment(struct gh_db *db, const struct gh_access_rule_row *r,
    const char *user_id, char id[static GH_ID_LEN + 1])
{
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	id[0] = '\0';
	err = gh_db_prepare(db, "SELECT id FROM app_assignments WHERE "
	    "rule_id = ? AND user_id = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "tt", r->id, user_id);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && row)
		gh_strlcpy(id, gh_stmt_text(st, 0), GH_ID_LEN + 1);
	gh_stmt_free(st);
	return err;
}

static gh_err
rule_granted(struct gh_db *db, const struct gh_access_rule_row *r,
    const char *user_id, bool *out)
{
	char id[GH_ID_LEN + 1];
	int64_t n = 0;
	gh_err err;

	if (r->app_id[0] != '\0') {
		err = rule_assignment(db, r, user_id, id);
		*out = id[0] != '\0';
		return err;
	}
	/* Only while the membership still exists: one an admin removed is
	 * granted again while the rule matches. */
	err = access_count(db, "SELECT COUNT(*) FROM rule_memberships r JOIN "
	    "group_members m ON m.group_id = r.group_id AND m.user_id = "
	    "r.user_id WHERE r.rule_id = ? AND r.user_id = ?", r->id, user_id,
	    &n);
	*out = n > 0;
	return err;
}

/* Grants or takes back what rule b gives u; *changed_out tells whether a
 * group membership changed. */
static gh_err
apply_one(struct gh_db *db, const char *request_id, const struct bound_rule *b,
    struct facts *f, bool *changed_out)
{
	const struct gh_access_rule_row *r = &b->row;
	char id[GH_ID_LEN + 1];
	bool match = facts_match(b->expr, f), has = false, added = false;
	gh_err err;

	*changed_out = false;
	err = rule_granted(db, r, f->u.id, &has);
	if (err != GH_OK || match == has)
		return err;
	if (r->app_id[0] != '\0' && match) {
		err = gh_access_assignment_add(db, r->app_id, "user", f->u.id,
		    null_if_empty(r->app_role), r->id, NULL, id);
		if (err == GH_OK)
			err = audit_rule(db, request_id,
			    "app.assignment.create", "app", r->app_id, r, &f->u,
			    id);
	} else if (r->app_id[0] != '\0') {
		err = rule_assignment(db, r, f->u.id, id);
		if (err == GH_OK)
			err = gh_access_assignment_delete(db, r->app_id, id);
		if (err == GH_OK)
			err = audit_rule(db, request_id,
			    "app.assignment.delete", "app", r->app_id, r, &f->u,
			    id);
	} else if (match) {
		/* An existing membership stays the admin's: not recorded as
		 * the rule's, so the rule never takes it away. */
		err = gh_identity_group_member_add(db, r->group_id, f->u.id,
		    gh_now_ms(), &added);
		if (err == GH_OK && added)
			err = gh_db_run(db, "INSERT INTO rule_memberships "
			    "(rule_id, group_id, user_id) VALUES (?, ?, ?) "
			    "ON CONFLICT DO NOTHING", "ttt", r->id,
			    r->group_id, f->u.id);
		if (err == GH_OK && added)
			err = audit_rule(db, request_id, "group.member.add",
			    "group", r->group_id, r, &f->u, NULL);
		*changed_out = added;
	} else {
		err = gh_db_run(db, "DELETE FROM rule_memberships WHERE "
		    "rule_id = ? AND user_id = ?", "tt", r->id, f->u.id);
		if (err == GH_OK)
			err = gh_identity_group_member_remove(db, r->group_id,
			    f->u.id);
		if (err == GH_OK)
			err = audit_rule(db, request_id, "group.member.remove",
			    "group", r->group_id, r, &f->u, NULL);
		else if (err == GH_ERR_NOTFOUND)	/* an admin removed it */
			err = GH_OK;
		*changed_out = true;
	}
	return err;
}

static gh_err
apply_user(struct ruleset *rs, const char *user_id, const char *request_id)
{
	struct facts f;
	bool changed = true, one;
	size_t i;
	int round;
	gh_err err = GH_OK;

	for (round = 0; err == GH_OK && changed && round < APPLY_ROUNDS;
	    round++) {
		changed = false;
		err = facts_load(rs->db, user_id, &f);
		for (i = 0; err == GH_OK && i < rs->n; i++) {
			err = apply_one(rs->db, request_id, &rs->v[i], &f,
			    &one);
			changed = changed || one;
		}
		facts_clear(&f);
	}
	return err;
}

static gh_err
ruleset_load(struct gh_db *db, struct gh_kms *kms, struct ruleset *rs)
{
	memset(rs, 0, sizeof *rs);
	rs->db = db;
	rs->kms = kms;
	return rules_each(db, ruleset_add, rs);
}

gh_err
gh_access_rules_apply_user(struct gh_db *db, struct gh_kms *kms,
    const char *user_id, const char *request_id)
{
	struct ruleset rs;
	gh_err err;

	err = ruleset_load(db, kms, &rs);
	if (err == GH_OK && rs.n > 0)
		err = apply_user(&rs, user_id, request_id);
	ruleset_free(&rs);
	return err;
}

/* The ids of every user, as a JSON array. */
static gh_err
user_ids(struct gh_db *db, json_t **out)
{
	struct gh_stmt *st = NULL;
	json_t *arr = json_array();
	bool row;
	gh_err err;

	*out = NULL;
	if (arr == NULL)
		return GH_ERR_NOMEM;
	err = gh_db_prepare(db, "SELECT id FROM users ORDER BY created_at, id",
	    &st);
	while (err == GH_OK) {
		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		if (json_array_append_new(arr, json_string(gh_stmt_text(st,
		    0))) != 0)
			err = GH_ERR_NOMEM;
	}
	gh_stmt_free(st);
	if (err != GH_OK) {
		json_decref(arr);
		return err;
	}
	*out = arr;
	return GH_OK;
}

gh_err
gh_access_rules_apply_all(struct gh_db *db, struct gh_kms *kms,
    const char *request_id)
{
	struct ruleset rs;
	json_t *ids = NULL;
	size_t i;
	gh_err err;

	err = ruleset_load(db, kms, &rs);
	if (err == GH_OK)
		err = user_ids(db, &ids);
	for (i = 0; err == GH_OK && i < json_array_size(ids); i++)
		err = apply_user(&rs, json_string_value(json_array_get(ids, i)),
		    request_id);
	json_decref(ids);
	ruleset_free(&rs);
	return err;
}

gh_err
gh_access_rule_dry_run(struct gh_db *db, const struct gh_access_rule *r,
    const struct gh_access_rule_row *row, json_t **add_out,
    json_t **remove_out)
{
	json_t *ids = NULL, *add = json_array(), *remove = json_array();
	struct facts f;
	bool match, has, member;
	int64_t n;
	size_t i;
	gh_err err = GH_OK;

	*add_out = *remove_out = NULL;
	if (add == NULL || remove == NULL)
		err = GH_ERR_NOMEM;
	if (err == GH_OK)
		err = user_ids(db, &ids);
	for (i = 0; err == GH_OK && i < json_array_size(ids); i++) {
		const char *uid = json_string_value(json_array_get(ids, i));

		err = facts_load(db, uid, &f);
		match = err == GH_OK && facts_match(r, &f);
		has = false;
		member = false;
		if (err == GH_OK && row->id[0] != '\0')
			err = rule_granted(db, row, uid, &has);
		/* Adding to a group the user is in already changes nothing. */
		if (err == GH_OK && match && !has && row->group_id[0] != '\0') {
			err = access_count(db, "SELECT COUNT(*) FROM "
			    "group_members WHERE group_id = ? AND user_id = ?",
			    row->group_id, uid, &n);
			member = n > 0;
		}
		if (err == GH_OK && match != has && !(match && member) &&
		    json_array_append_new(match ? add : remove, json_pack(
		    "{s:s, s:s}", "id", f.u.id, "username", f.u.username)) != 0)
			err = GH_ERR_NOMEM;
		facts_clear(&f);
	}
	json_decref(ids);
	if (err != GH_OK) {
		json_decref(add);
		json_decref(remove);
		return err;
	}
	*add_out = add;
	*remove_out = remove;
	return GH_OK;
}
