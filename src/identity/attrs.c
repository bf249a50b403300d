/*
 * attrs.c: custom user attributes: definitions, validation of values,
 * users' values (plain or encrypted through src/kms) and equality search.
 *
 * Untrusted input: definition bodies, attribute names and values from
 * clients, list filters; every one is validated and bound as a parameter.
 * Secrets: plaintext of encrypted values, held only in GH_BUF_SECRET
 * buffers and wiped; ciphertexts read back are authenticated by src/kms
 * before use. Values never reach the log; only attribute names and ids do.
 */
#include "identity/identity.h"
#include "identity/identity_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ATTR_TABLE "user_attributes"
#define BLIND_HEX_LEN (2 * GH_KMS_INDEX_LEN)
/* Ciphertext of the longest value, with room to spare. */
#define CT_MAX (GH_ATTR_STRING_MAX + GH_KMS_OVERHEAD + 64)
/* Canonical text of the longest value. */
#define CANON_MAX (GH_ATTR_STRING_MAX + 1)

static const char *const type_names[] = {
	[GH_ATTR_STRING] = "string", [GH_ATTR_NUMBER] = "number",
	[GH_ATTR_DATE] = "date", [GH_ATTR_BOOLEAN] = "boolean",
	[GH_ATTR_ENUM] = "enum",
};

static const char *const class_names[] = {
	[GH_ATTR_PUBLIC] = "public", [GH_ATTR_INTERNAL] = "internal",
	[GH_ATTR_PERSONAL] = "personal", [GH_ATTR_SENSITIVE] = "sensitive",
};

static gh_err
fail(char *msg, size_t cap, const char *fmt, ...) GH_PRINTF(3, 4);

static gh_err
fail(char *msg, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, cap, fmt, ap);
	va_end(ap);
	return GH_ERR_INVALID;
}

/* ---- names ----------------------------------------------------------------- */

bool
gh_identity_attr_name_valid(const char *name)
{
	size_t n;

	if (name == NULL)
		return false;
	n = strlen(name);
	if (n < 1 || n > GH_ATTR_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '_'))
			return false;
	}
	return true;
}

const char *
gh_identity_attr_type_name(enum gh_attr_type type)
{
	if (type < GH_ATTR_STRING || type > GH_ATTR_ENUM)
		GH_PANIC("attribute type %d", (int)type);
	return type_names[type];
}

bool
gh_identity_attr_type_parse(const char *s, enum gh_attr_type *out)
{
	for (int t = GH_ATTR_STRING; s != NULL && t <= GH_ATTR_ENUM; t++) {
		if (strcmp(s, type_names[t]) == 0) {
			*out = (enum gh_attr_type)t;
			return true;
		}
	}
	return false;
}

const char *
gh_identity_attr_class_name(enum gh_attr_class c)
{
	if (c < GH_ATTR_PUBLIC || c > GH_ATTR_SENSITIVE)
		GH_PANIC("attribute classification %d", (int)c);
	return class_names[c];
}

bool
gh_identity_attr_class_parse(const char *s, enum gh_attr_class *out)
{
	for (int c = GH_ATTR_PUBLIC; s != NULL && c <= GH_ATTR_SENSITIVE; c++) {
		if (strcmp(s, class_names[c]) == 0) {
			*out = (enum gh_attr_class)c;
			return true;
		}
	}
	return false;
}

void
gh_identity_attr_def_clear(struct gh_attr_def *d)
{
	if (d == NULL)
		return;
	json_decref(d->enum_values);
	memset(d, 0, sizeof *d);
}

void
gh_identity_attr_defs_free(struct gh_attr_defs *defs)
{
	if (defs == NULL)
		return;
	for (size_t i = 0; i < defs->len; i++)
		gh_identity_attr_def_clear(&defs->v[i]);
	free(defs->v);
	defs->v = NULL;
	defs->len = 0;
}

const struct gh_attr_def *
gh_identity_attr_defs_find(const struct gh_attr_defs *defs, const char *name)
{
	for (size_t i = 0; i < defs->len; i++)
		if (strcmp(defs->v[i].name, name) == 0)
			return &defs->v[i];
	return NULL;
}

/* ---- definitions: validation and JSON ------------------------------------------ */

static bool
enum_has(json_t *members, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(members, i, v)
		if (strcmp(json_string_value(v), s) == 0)
			return true;
	return false;
}

static gh_err
enum_check(json_t *a, char *msg, size_t cap)
{
	size_t n = json_array_size(a);

	if (!json_is_array(a) || n < 1 || n > GH_ATTR_ENUM_MAX)
		return fail(msg, cap, "enum_values: an array of 1 to %d strings",
		    GH_ATTR_ENUM_MAX);
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_array_get(a, i);
		size_t len = json_string_length(v);

		if (!json_is_string(v) || len < 1 ||
		    len > GH_ATTR_ENUM_VALUE_MAX ||
		    !gh_utf8_valid(json_string_value(v), len))
			return fail(msg, cap, "enum_values: each member a "
			    "non-empty string of at most %d bytes",
			    GH_ATTR_ENUM_VALUE_MAX);
		for (size_t j = 0; j < i; j++)
			if (strcmp(json_string_value(json_array_get(a, j)),
			    json_string_value(v)) == 0)
				return fail(msg, cap, "enum_values: members "
				    "must be distinct");
	}
	return GH_OK;
}

static gh_err
member_bool(json_t *body, const char *key, bool *out, char *msg, size_t cap)
{
	json_t *v = json_object_get(body, key);

	if (v == NULL)
		return GH_OK;
	if (!json_is_boolean(v))
		return fail(msg, cap, "%s: must be true or false", key);
	*out = json_is_true(v);
	return GH_OK;
}

gh_err
gh_identity_attr_def_apply(json_t *body, bool create, struct gh_attr_def *d,
    char *msg, size_t msg_cap)
{
	json_t *name, *type, *cls, *ev;
	gh_err err;

	if (!json_is_object(body))
		return fail(msg, msg_cap, "body must be a JSON object");
	name = json_object_get(body, "name");
	type = json_object_get(body, "type");
	cls = json_object_get(body, "classification");
	ev = json_object_get(body, "enum_values");
	if (create) {
		if (!json_is_string(name) ||
		    !gh_identity_attr_name_valid(json_string_value(name)))
			return fail(msg, msg_cap, "name: required, 1 to %d of "
			    "a-z, 0-9 and _", GH_ATTR_NAME_MAX);
		gh_strlcpy(d->name, json_string_value(name), sizeof d->name);
		if (type == NULL)
			return fail(msg, msg_cap, "type: required");
		d->classification = GH_ATTR_INTERNAL;
	} else if (name != NULL) {
		return fail(msg, msg_cap, "name: cannot be changed");
	}
	if (type != NULL && !gh_identity_attr_type_parse(json_string_value(type),
	    &d->type))
		return fail(msg, msg_cap, "type: one of string, number, date, "
		    "boolean, enum");
	if (cls != NULL && !gh_identity_attr_class_parse(json_string_value(cls),
	    &d->classification))
		return fail(msg, msg_cap, "classification: one of public, "
		    "internal, personal, sensitive");
	if ((err = member_bool(body, "required", &d->required, msg,
	    msg_cap)) != GH_OK ||
	    (err = member_bool(body, "unique", &d->unique, msg,
	    msg_cap)) != GH_OK ||
	    (err = member_bool(body, "encrypted", &d->encrypted, msg,
	    msg_cap)) != GH_OK)
		return err;
	if (ev != NULL) {
		if (d->type != GH_ATTR_ENUM)
			return fail(msg, msg_cap, "enum_values: only for type "
			    "enum");
		if ((err = enum_check(ev, msg, msg_cap)) != GH_OK)
			return err;
		json_decref(d->enum_values);
		if ((d->enum_values = json_deep_copy(ev)) == NULL)
			return GH_ERR_NOMEM;
	}
	if (d->type != GH_ATTR_ENUM) {
		json_decref(d->enum_values);
		d->enum_values = NULL;
	} else if (d->enum_values == NULL) {
		return fail(msg, msg_cap, "enum_values: required for type enum");
	}
	return GH_OK;
}

static json_t *
time_json(int64_t ms)
{
	char s[25];

	if (ms <= 0)
		return json_null();
	gh_time_rfc3339(ms, s);
	return json_string(s);
}

json_t *
gh_identity_attr_def_json(const struct gh_attr_def *d)
{
	json_t *j;

	j = json_pack("{s:s, s:s, s:b, s:b, s:s, s:b, s:o, s:o}", "name",
	    d->name, "type", gh_identity_attr_type_name(d->type), "required",
	    d->required, "unique", d->unique, "classification",
	    gh_identity_attr_class_name(d->classification), "encrypted",
	    d->encrypted, "created_at", time_json(d->created_at), "updated_at",
	    time_json(d->updated_at));
	if (j != NULL && d->enum_values != NULL &&
	    json_object_set(j, "enum_values", d->enum_values) != 0) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* ---- definitions: storage ------------------------------------------------------ */

#define DEF_COLUMNS "id, name, type, enum_values, required, is_unique, " \
	"classification, encrypted, created_at, updated_at"

static gh_err
def_from_row(struct gh_db *db, struct gh_stmt *st, struct gh_attr_def *d)
{
	const char *ev;

	memset(d, 0, sizeof *d);
	gh_strlcpy(d->id, gh_stmt_text(st, 0), sizeof d->id);
	gh_strlcpy(d->name, gh_stmt_text(st, 1), sizeof d->name);
	d->required = gh_stmt_int(st, 4) != 0;
	d->unique = gh_stmt_int(st, 5) != 0;
	d->encrypted = gh_stmt_int(st, 7) != 0;
	d->created_at = gh_stmt_int(st, 8);
	d->updated_at = gh_stmt_int(st, 9);
	ev = gh_stmt_text(st, 3);
	if (ev != NULL)
		d->enum_values = json_loads(ev, JSON_REJECT_DUPLICATES, NULL);
	if (!gh_identity_attr_type_parse(gh_stmt_text(st, 2), &d->type) ||
	    !gh_identity_attr_class_parse(gh_stmt_text(st, 6),
	    &d->classification) || (ev != NULL) != (d->enum_values != NULL) ||
	    (d->enum_values != NULL && !json_is_array(d->enum_values))) {
		GH_LOG_ERR(GH_ERR_STORE, "org %s: attribute %s: stored "
		    "definition is damaged", gh_db_org_id(db), d->name);
		gh_identity_attr_def_clear(d);
		return GH_ERR_STORE;
	}
	return GH_OK;
}

static gh_err
count_query(struct gh_db *db, const char *sql, const char *a, const char *b,
    int64_t *out)
{
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	*out = 0;
	err = gh_db_prepare(db, sql, &st);
	if (err == GH_OK && a != NULL)
		err = b != NULL ? gh_stmt_bind(st, "tt", a, b) :
		    gh_stmt_bind(st, "t", a);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && !row)
		err = GH_ERR_STORE;
	if (err == GH_OK)
		*out = gh_stmt_int(st, 0);
	gh_stmt_free(st);
	return err;
}

static char *
enum_text(const struct gh_attr_def *d)
{
	return json_dumps(d->enum_values, JSON_COMPACT);
}

gh_err
gh_identity_attr_def_insert(struct gh_db *db, struct gh_attr_def *d)
{
	char *ev = NULL;
	int64_t n;
	gh_err err;

	if (!gh_identity_attr_name_valid(d->name) ||
	    (d->type == GH_ATTR_ENUM) != (d->enum_values != NULL))
		return GH_ERR_INVALID;
	err = count_query(db, "SELECT COUNT(*) FROM attribute_definitions",
	    NULL, NULL, &n);
	if (err != GH_OK)
		return err;
	if (n >= GH_ATTR_DEFS_MAX)
		return GH_ERR_LIMIT;
	if ((err = gh_id_new(d->id)) != GH_OK)
		return err;
	d->created_at = d->updated_at = gh_now_ms();
	if (d->enum_values != NULL && (ev = enum_text(d)) == NULL)
		return GH_ERR_NOMEM;
	err = gh_db_run(db, "INSERT INTO attribute_definitions (" DEF_COLUMNS
	    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "tttt" "iiti" "ii",
	    d->id, d->name, gh_identity_attr_type_name(d->type), ev,
	    (int64_t)d->required, (int64_t)d->unique,
	    gh_identity_attr_class_name(d->classification),
	    (int64_t)d->encrypted, d->created_at, d->updated_at);
	free(ev);
	return err;
}

gh_err
gh_identity_attr_def_get(struct gh_db *db, const char *name,
    struct gh_attr_def *out)
{
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	memset(out, 0, sizeof *out);
	if (!gh_identity_attr_name_valid(name))
		return GH_ERR_NOTFOUND;
	err = gh_db_prepare(db, "SELECT " DEF_COLUMNS " FROM "
	    "attribute_definitions WHERE name = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", name);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && !row)
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK)
		err = def_from_row(db, st, out);
	gh_stmt_free(st);
	return err;
}

gh_err
gh_identity_attr_def_list(struct gh_db *db, struct gh_attr_defs *out)
{
	struct gh_stmt *st = NULL;
	struct gh_attr_defs defs = { 0 };
	bool row;
	gh_err err;

	out->v = NULL;
	out->len = 0;
	/* The definitions are few (GH_ATTR_DEFS_MAX): one allocation. */
	defs.v = calloc(GH_ATTR_DEFS_MAX, sizeof *defs.v);
	if (defs.v == NULL)
		return GH_ERR_NOMEM;
	err = gh_db_prepare(db, "SELECT " DEF_COLUMNS " FROM "
	    "attribute_definitions ORDER BY name LIMIT ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "i", (int64_t)GH_ATTR_DEFS_MAX);
	while (err == GH_OK) {
		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		err = def_from_row(db, st, &defs.v[defs.len]);
		if (err == GH_OK)
			defs.len++;
	}
	gh_stmt_free(st);
	if (err != GH_OK) {
		gh_identity_attr_defs_free(&defs);
		return err;
	}
	*out = defs;
	return GH_OK;
}

gh_err
gh_identity_attr_value_count(struct gh_db *db, const struct gh_attr_def *d,
    int64_t *out)
{
	return count_query(db, "SELECT COUNT(*) FROM user_attributes WHERE "
	    "attribute_id = ?", d->id, NULL, out);
}

/* ---- keys --------------------------------------------------------------------- */

/* An unknown, shredded or revoked org key, or no kms at all, all mean the
 * same to a caller: the keys are unavailable. */
static gh_err
kms_err(gh_err err)
{
	if (err == GH_ERR_NOTFOUND || err == GH_ERR_DENIED)
		return GH_ERR_DENIED;
	return err;
}

static gh_err
blind_hex(struct gh_kms *kms, const char *org_id, const char *name,
    const char *canon, size_t len, char out[static BLIND_HEX_LEN + 1])
{
	uint8_t mac[GH_KMS_INDEX_LEN];
	gh_err err;

	out[0] = '\0';
	if (kms == NULL)
		return GH_ERR_DENIED;
	err = gh_kms_blind_index(kms, org_id, ATTR_TABLE, name, canon, len,
	    mac);
	if (err == GH_OK)
		gh_hex_encode(mac, sizeof mac, out);
	gh_wipe(mac, sizeof mac);
	return kms_err(err);
}

gh_err
gh_identity_attr_def_update(struct gh_db *db, struct gh_kms *kms,
    const struct gh_attr_def *before, struct gh_attr_def *after,
    const char **conflict_out)
{
	char blind[BLIND_HEX_LEN + 1];
	char *ev = NULL;
	int64_t n, used;
	size_t i;
	json_t *v;
	gh_err err;

	*conflict_out = NULL;
	if (strcmp(before->id, after->id) != 0 ||
	    strcmp(before->name, after->name) != 0 ||
	    (after->type == GH_ATTR_ENUM) != (after->enum_values != NULL))
		return GH_ERR_INVALID;
	err = gh_identity_attr_value_count(db, before, &n);
	if (err != GH_OK)
		return err;
	if (n > 0 && (before->type != after->type ||
	    before->encrypted != after->encrypted)) {
		*conflict_out = "attribute_in_use";
		return GH_ERR_CONFLICT;
	}
	/* A removed enum member must not be held by anyone. */
	if (n > 0 && before->type == GH_ATTR_ENUM) {
		json_array_foreach(before->enum_values, i, v) {
			const char *m = json_string_value(v);

			if (enum_has(after->enum_values, m))
				continue;
			if (before->encrypted) {
				err = blind_hex(kms, gh_db_org_id(db),
				    before->name, m, strlen(m), blind);
				if (err == GH_OK)
					err = count_query(db, "SELECT COUNT(*) "
					    "FROM user_attributes WHERE "
					    "attribute_id = ? AND blind_index = ?",
					    before->id, blind, &used);
			} else {
				err = count_query(db, "SELECT COUNT(*) FROM "
				    "user_attributes WHERE attribute_id = ? "
				    "AND value_text = ?", before->id, m, &used);
			}
			if (err != GH_OK)
				return err;
			if (used > 0) {
				*conflict_out = "attribute_in_use";
				return GH_ERR_CONFLICT;
			}
		}
	}
	after->updated_at = gh_now_ms();
	if (after->enum_values != NULL && (ev = enum_text(after)) == NULL)
		return GH_ERR_NOMEM;
	err = gh_db_run(db, "UPDATE attribute_definitions SET type = ?, "
	    "enum_values = ?, required = ?, is_unique = ?, classification = ?, "
	    "encrypted = ?, updated_at = ? WHERE id = ?", "ttiitiit",
	    gh_identity_attr_type_name(after->type), ev,
	    (int64_t)after->required, (int64_t)after->unique,
	    gh_identity_attr_class_name(after->classification),
	    (int64_t)after->encrypted, after->updated_at, after->id);
	free(ev);
	if (err == GH_OK && gh_db_changes(db) == 0)
		err = GH_ERR_NOTFOUND;
	if (err != GH_OK || before->unique == after->unique)
		return err;
	/* The uniqueness key is the text, or the blind index when encrypted;
	 * filling it over duplicates violates the constraint. */
	err = gh_db_run(db, after->unique ?
	    "UPDATE user_attributes SET unique_key = COALESCE(blind_index, "
	    "value_text) WHERE attribute_id = ?" :
	    "UPDATE user_attributes SET unique_key = NULL WHERE "
	    "attribute_id = ?", "t", after->id);
	if (err == GH_ERR_CONFLICT)
		*conflict_out = "attribute_not_unique";
	return err;
}

gh_err
gh_identity_attr_def_delete(struct gh_db *db, const struct gh_attr_def *d,
    int64_t *values_out)
{
	gh_err err;

	/* Values go explicitly, not only by ON DELETE CASCADE, so that the
	 * count is exact and no backend setting matters. */
	err = gh_db_run(db, "DELETE FROM user_attributes WHERE attribute_id = ?",
	    "t", d->id);
	if (err == GH_OK && values_out != NULL)
		*values_out = gh_db_changes(db);
	if (err == GH_OK)
		err = gh_db_run(db, "DELETE FROM attribute_definitions WHERE "
		    "id = ?", "t", d->id);
	if (err == GH_OK && gh_db_changes(db) == 0)
		err = GH_ERR_NOTFOUND;
	return err;
}

/* ---- values: canonical text ------------------------------------------------------ */

/* The shortest text that reads back as x; integral values within int64
 * print as integers, so that 1, 1.0 and 1e0 are one value. */
static void
double_canon(double x, struct gh_buf *out)
{
	char s[40];

	if (x == 0) {
		gh_buf_put_str(out, "0");	/* also -0 */
		return;
	}
	if (x == trunc(x) && fabs(x) < 9.2e18) {
		gh_buf_printf(out, "%lld", (long long)x);
		return;
	}
	for (int p = 1; p <= 17; p++) {
		snprintf(s, sizeof s, "%.*g", p, x);
		if (strtod(s, NULL) == x)
			break;
	}
	gh_buf_put_str(out, s);
}

/* RFC 8259 number syntax: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool
number_syntax(const char *s, bool *integral)
{
	const char *p = s;

	*integral = true;
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (isdigit((unsigned char)*p))
			p++;
	else
		return false;
	if (*p == '.') {
		*integral = false;
		if (!isdigit((unsigned char)*++p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		*integral = false;
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	return *p == '\0';
}

static gh_err
number_canon(const struct gh_attr_def *d, const char *s, struct gh_buf *out,
    char *msg, size_t cap)
{
	bool integral;
	long long ll;
	double x;

	if (strlen(s) > 64 || !number_syntax(s, &integral))
		return fail(msg, cap, "attributes.%s: must be a number",
		    d->name);
	errno = 0;
	if (integral) {
		ll = strtoll(s, NULL, 10);
		if (errno == 0) {
			gh_buf_printf(out, "%lld", ll);
			return GH_OK;
		}
		errno = 0;
	}
	x = strtod(s, NULL);
	if (errno == ERANGE && !isfinite(x))
		return fail(msg, cap, "attributes.%s: the number is out of "
		    "range", d->name);
	double_canon(x, out);
	return GH_OK;
}

static bool
date_valid(const char *s)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
		30, 31 };
	int y, m, dd, max;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
			return false;
	y = atoi(s);
	m = atoi(s + 5);
	dd = atoi(s + 8);
	if (y < 1 || m < 1 || m > 12 || dd < 1)
		return false;
	max = days[m - 1];
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		max = 29;
	return dd <= max;
}

gh_err
gh_identity_attr_canon_text(const struct gh_attr_def *d, const char *s,
    struct gh_buf *out, char *msg, size_t msg_cap)
{
	size_t n = strlen(s);

	switch (d->type) {
	case GH_ATTR_STRING:
		if (n > GH_ATTR_STRING_MAX || !gh_utf8_valid(s, n))
			return fail(msg, msg_cap, "attributes.%s: at most %d "
			    "bytes of UTF-8 text", d->name, GH_ATTR_STRING_MAX);
		gh_buf_put(out, s, n);
		break;
	case GH_ATTR_NUMBER:
		return number_canon(d, s, out, msg, msg_cap);
	case GH_ATTR_DATE:
		if (!date_valid(s))
			return fail(msg, msg_cap, "attributes.%s: must be a date "
			    "YYYY-MM-DD", d->name);
		gh_buf_put(out, s, n);
		break;
	case GH_ATTR_BOOLEAN:
		if (strcmp(s, "true") != 0 && strcmp(s, "false") != 0)
			return fail(msg, msg_cap, "attributes.%s: must be true "
			    "or false", d->name);
		gh_buf_put(out, s, n);
		break;
	case GH_ATTR_ENUM:
		if (!enum_has(d->enum_values, s))
			return fail(msg, msg_cap, "attributes.%s: must be one of "
			    "its enum_values", d->name);
		gh_buf_put(out, s, n);
		break;
	default:
		GH_PANIC("attribute type %d", (int)d->type);
	}
	return gh_buf_err(out);
}

gh_err
gh_identity_attr_canon_json(const struct gh_attr_def *d, json_t *v,
    struct gh_buf *out, char *msg, size_t msg_cap)
{
	switch (d->type) {
	case GH_ATTR_NUMBER:
		if (json_is_integer(v)) {
			gh_buf_printf(out, "%" JSON_INTEGER_FORMAT,
			    json_integer_value(v));
		} else if (json_is_real(v)) {
			double_canon(json_real_value(v), out);
		} else {
			return fail(msg, msg_cap, "attributes.%s: must be a "
			    "number", d->name);
		}
		return gh_buf_err(out);
	case GH_ATTR_BOOLEAN:
		if (!json_is_boolean(v))
			return fail(msg, msg_cap, "attributes.%s: must be true "
			    "or false", d->name);
		gh_buf_put_str(out, json_is_true(v) ? "true" : "false");
		return gh_buf_err(out);
	default:
		if (!json_is_string(v) ||
		    strlen(json_string_value(v)) != json_string_length(v))
			return fail(msg, msg_cap, "attributes.%s: must be a "
			    "string", d->name);
		return gh_identity_attr_canon_text(d, json_string_value(v), out,
		    msg, msg_cap);
	}
}

json_t *
gh_identity_attr_value_json(enum gh_attr_type type, const char *text)
{
	switch (type) {
	case GH_ATTR_NUMBER:
		if (strpbrk(text, ".eE") != NULL)
			return json_real(strtod(text, NULL));
		return json_integer(strtoll(text, NULL, 10));
	case GH_ATTR_BOOLEAN:
		return json_boolean(strcmp(text, "true") == 0);
	default:
		return json_string(text);
	}
}

/* ---- values: storage -------------------------------------------------------------- */

/* The stored value of (user, attribute): its text (plain) or blind index
 * (encrypted) into *out, malloc'd; NULL when there is none. */
static gh_err
value_key_get(struct gh_db *db, const struct gh_attr_def *d,
    const char *user_id, char **out)
{
	struct gh_stmt *st = NULL;
	const char *s;
	bool row = false;
	gh_err err;

	*out = NULL;
	err = gh_db_prepare(db, "SELECT value_text, blind_index FROM "
	    "user_attributes WHERE user_id = ? AND attribute_id = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "tt", user_id, d->id);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && row) {
		s = gh_stmt_text(st, d->encrypted ? 1 : 0);
		if (s == NULL) {
			/* The definition's encrypted flag cannot change while
			 * values exist, so a row of the other kind is damage. */
			GH_LOG_ERR(GH_ERR_STORE, "org %s: attribute %s of user "
			    "%s is stored in the wrong form", gh_db_org_id(db),
			    d->name, user_id);
			err = GH_ERR_STORE;
		} else if ((*out = strdup(s)) == NULL) {
			err = GH_ERR_NOMEM;
		}
	}
	gh_stmt_free(st);
	return err;
}

static gh_err
value_put_plain(struct gh_db *db, const struct gh_attr_def *d,
    const char *user_id, const char *text)
{
	return gh_db_run(db, "INSERT INTO user_attributes (user_id, "
	    "attribute_id, value_text, value_ct, key_version, blind_index, "
	    "unique_key, updated_at) VALUES (?, ?, ?, NULL, NULL, NULL, ?, ?) "
	    "ON CONFLICT (user_id, attribute_id) DO UPDATE SET value_text = "
	    "excluded.value_text, value_ct = NULL, key_version = NULL, "
	    "blind_index = NULL, unique_key = excluded.unique_key, "
	    "updated_at = excluded.updated_at", "tttti", user_id, d->id, text,
	    d->unique ? text : NULL, gh_now_ms());
}

static gh_err
value_put_encrypted(struct gh_db *db, struct gh_kms *kms,
    const struct gh_attr_def *d, const char *user_id,
    const struct gh_buf *canon, const char *blind)
{
	const struct gh_kms_aad aad = { gh_db_org_id(db), ATTR_TABLE, d->name,
		user_id };
	struct gh_buf ct;
	uint32_t version = 0;
	gh_err err;

	gh_buf_init(&ct, CT_MAX, 0);
	err = gh_kms_encrypt(kms, GH_KMS_ATTRIBUTES, &aad, canon->data,
	    canon->len, &ct);
	if (err == GH_OK)
		err = gh_kms_ct_version(ct.data, ct.len, &version);
	err = kms_err(err);
	if (err == GH_OK)
		err = gh_db_run(db, "INSERT INTO user_attributes (user_id, "
		    "attribute_id, value_text, value_ct, key_version, "
		    "blind_index, unique_key, updated_at) VALUES (?, ?, NULL, "
		    "?, ?, ?, ?, ?) ON CONFLICT (user_id, attribute_id) DO "
		    "UPDATE SET value_text = NULL, value_ct = excluded.value_ct, "
		    "key_version = excluded.key_version, blind_index = "
		    "excluded.blind_index, unique_key = excluded.unique_key, "
		    "updated_at = excluded.updated_at", "ttbitti", user_id,
		    d->id, ct.data, ct.len, (int64_t)version, blind,
		    d->unique ? blind : NULL, gh_now_ms());
	gh_buf_free(&ct);
	return err;
}

static gh_err
value_clear(struct gh_db *db, const struct gh_attr_def *d,
    const char *user_id)
{
	return gh_db_run(db, "DELETE FROM user_attributes WHERE user_id = ? "
	    "AND attribute_id = ?", "tt", user_id, d->id);
}

/* Records one attribute's change under "attributes.<name>". from and to
 * are canonical text or NULL (absent). */
static gh_err
record_change(json_t *changes, const struct gh_attr_def *d, bool creating,
    const char *from, const char *to)
{
	char key[GH_ATTR_NAME_MAX + 16];
	json_t *v;

	if (changes == NULL)
		return GH_OK;
	snprintf(key, sizeof key, "attributes.%s", d->name);
	if (d->encrypted)
		v = json_string(creating ? "set" : "changed");
	else if (creating)
		v = gh_identity_attr_value_json(d->type, to);
	else
		v = json_pack("{s:o, s:o}", "from", from ? 
		    gh_identity_attr_value_json(d->type, from) : json_null(),
		    "to", to ? gh_identity_attr_value_json(d->type, to) :
		    json_null());
	if (v == NULL || json_object_set_new(changes, key, v) != 0)
		return GH_ERR_NOMEM;
	return GH_OK;
}

/* Sets (or with v JSON null, clears) one value. */
static gh_err
value_set_one(struct gh_db *db, struct gh_kms *kms,
    const struct gh_attr_def *d, const char *user_id, json_t *v,
    bool creating, json_t *changes, char *msg, size_t cap)
{
	char blind[BLIND_HEX_LEN + 1] = "";
	struct gh_buf canon;
	char *old = NULL;
	gh_err err;

	gh_buf_init(&canon, CANON_MAX, d->encrypted ? GH_BUF_SECRET : 0);
	if (json_is_null(v)) {
		if (d->required) {
			err = fail(msg, cap, "attributes.%s: required; it "
			    "cannot be cleared", d->name);
			goto out;
		}
		err = value_key_get(db, d, user_id, &old);
		if (err == GH_OK && old != NULL)
			err = value_clear(db, d, user_id);
		if (err == GH_OK && old != NULL)
			err = record_change(changes, d, creating,
			    d->encrypted ? NULL : old, NULL);
		goto out;
	}
	err = gh_identity_attr_canon_json(d, v, &canon, msg, cap);
	if (err != GH_OK)
		goto out;
	if (d->encrypted) {
		if (kms == NULL) {
			err = GH_ERR_DENIED;
			goto out;
		}
		err = blind_hex(kms, gh_db_org_id(db), d->name,
		    (const char *)canon.data, canon.len, blind);
	}
	if (err == GH_OK)
		err = value_key_get(db, d, user_id, &old);
	if (err != GH_OK)
		goto out;
	/* The same value again (same text, or same blind index) is no
	 * change: nothing is written or audited. */
	if (old != NULL && strcmp(old, d->encrypted ? blind :
	    gh_buf_cstr(&canon)) == 0)
		goto out;
	if (d->encrypted)
		err = value_put_encrypted(db, kms, d, user_id, &canon, blind);
	else
		err = value_put_plain(db, d, user_id, gh_buf_cstr(&canon));
	if (err == GH_ERR_CONFLICT) {
		snprintf(msg, cap, "attributes.%s: another user has this value",
		    d->name);
		goto out;
	}
	if (err == GH_OK)
		err = record_change(changes, d, creating,
		    d->encrypted ? NULL : old,
		    d->encrypted ? NULL : gh_buf_cstr(&canon));
out:
	free(old);
	gh_buf_free(&canon);
	return err;
}

gh_err
gh_identity_attr_values_set(struct gh_db *db, struct gh_kms *kms,
    const struct gh_attr_defs *defs, const char *user_id, json_t *attrs,
    bool creating, json_t *changes, char *msg, size_t msg_cap)
{
	const struct gh_attr_def *d;
	struct gh_buf unknown;
	const char *key;
	json_t *v;
	gh_err err = GH_OK;

	if (attrs != NULL && !json_is_object(attrs))
		return fail(msg, msg_cap, "attributes: must be an object");
	/* Name every unknown attribute at once, before writing anything. */
	gh_buf_init(&unknown, 512, 0);
	json_object_foreach(attrs, key, v) {
		if (gh_identity_attr_defs_find(defs, key) != NULL)
			continue;
		gh_buf_printf(&unknown, "%s%.64s", unknown.len ? ", " : "",
		    key);
	}
	if (unknown.len > 0 || gh_buf_err(&unknown) != GH_OK) {
		err = fail(msg, msg_cap, "attributes: unknown attribute: %s",
		    gh_buf_err(&unknown) == GH_OK ? gh_buf_cstr(&unknown) :
		    "(too many)");
		gh_buf_free(&unknown);
		return err;
	}
	gh_buf_free(&unknown);
	for (size_t i = 0; creating && i < defs->len; i++) {
		d = &defs->v[i];
		v = json_object_get(attrs, d->name);
		if (d->required && (v == NULL || json_is_null(v)))
			return fail(msg, msg_cap, "attributes.%s: required",
			    d->name);
	}
	json_object_foreach(attrs, key, v) {
		d = gh_identity_attr_defs_find(defs, key);
		err = value_set_one(db, kms, d, user_id, v, creating, changes,
		    msg, msg_cap);
		if (err != GH_OK)
			break;
	}
	return err;
}

gh_err
gh_identity_attr_values_json(struct gh_db *db, struct gh_kms *kms,
    const char *user_id, enum gh_attr_class max_class, json_t **out)
{
	struct gh_stmt *st = NULL;
	struct gh_buf pt;
	enum gh_attr_class cls;
	enum gh_attr_type type;
	json_t *obj, *v;
	bool row;
	gh_err err;

	*out = NULL;
	if ((obj = json_object()) == NULL)
		return GH_ERR_NOMEM;
	gh_buf_init(&pt, CANON_MAX, GH_BUF_SECRET);
	err = gh_db_prepare(db, "SELECT d.name, d.type, d.classification, "
	    "d.encrypted, v.value_text, v.value_ct FROM user_attributes v JOIN "
	    "attribute_definitions d ON d.id = v.attribute_id WHERE "
	    "v.user_id = ? ORDER BY d.name", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", user_id);
	while (err == GH_OK) {
		const char *name, *text;
		const void *ct;
		size_t ct_len = 0;

		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		name = gh_stmt_text(st, 0);
		if (!gh_identity_attr_type_parse(gh_stmt_text(st, 1), &type) ||
		    !gh_identity_attr_class_parse(gh_stmt_text(st, 2), &cls)) {
			err = GH_ERR_STORE;
			GH_LOG_ERR(err, "org %s: attribute %s: damaged "
			    "definition", gh_db_org_id(db), name);
			break;
		}
		if (cls > max_class)
			continue;
		text = gh_stmt_text(st, 4);
		ct = gh_stmt_blob(st, 5, &ct_len);
		if (gh_stmt_int(st, 3) == 0 && text != NULL) {
			v = gh_identity_attr_value_json(type, text);
		} else if (gh_stmt_int(st, 3) != 0 && ct != NULL) {
			const struct gh_kms_aad aad = { gh_db_org_id(db),
				ATTR_TABLE, name, user_id };

			if (kms == NULL) {
				err = GH_ERR_DENIED;
				break;
			}
			gh_buf_reset(&pt);
			err = gh_kms_decrypt(kms, GH_KMS_ATTRIBUTES, &aad, ct,
			    ct_len, &pt);
			if (err == GH_ERR_INVALID)
				err = GH_ERR_CRYPTO;
			err = kms_err(err);
			if (err != GH_OK) {
				GH_LOG_ERR(err, "org %s: attribute %s of user "
				    "%s does not decrypt", gh_db_org_id(db),
				    name, user_id);
				break;
			}
			v = gh_identity_attr_value_json(type, gh_buf_cstr(&pt));
		} else {
			err = GH_ERR_STORE;
			GH_LOG_ERR(err, "org %s: attribute %s of user %s is "
			    "stored in the wrong form", gh_db_org_id(db), name,
			    user_id);
			break;
		}
		if (v == NULL || json_object_set_new(obj, name, v) != 0)
			err = GH_ERR_NOMEM;
	}
	gh_stmt_free(st);
	gh_buf_free(&pt);
	if (err != GH_OK) {
		json_decref(obj);
		return err;
	}
	*out = obj;
	return GH_OK;
}

/* ---- search --------------------------------------------------------------------- */

/* One bound condition: the attribute's id and the value to match in
 * value_text (plain) or blind_index (encrypted); the other stays NULL. */
struct cond_bind {
	char attr_id[GH_ID_LEN + 1];
	char *text;
	char blind[BLIND_HEX_LEN + 1];
	bool used;
};

static gh_err
cond_prepare(struct gh_db *db, struct gh_kms *kms,
    const struct gh_attr_cond *c, struct cond_bind *b, char *msg, size_t cap)
{
	struct gh_attr_def d;
	struct gh_buf canon;
	gh_err err;

	err = gh_identity_attr_def_get(db, c->name, &d);
	if (err == GH_ERR_NOTFOUND)
		return fail(msg, cap, "attr.%.64s: unknown attribute", c->name);
	if (err != GH_OK)
		return err;
	gh_buf_init(&canon, CANON_MAX, d.encrypted ? GH_BUF_SECRET : 0);
	err = gh_identity_attr_canon_text(&d, c->value, &canon, msg, cap);
	if (err == GH_OK && d.encrypted)
		err = blind_hex(kms, gh_db_org_id(db), d.name,
		    (const char *)canon.data, canon.len, b->blind);
	else if (err == GH_OK && (b->text = strdup(gh_buf_cstr(&canon))) ==
	    NULL)
		err = GH_ERR_NOMEM;
	if (err == GH_OK) {
		gh_strlcpy(b->attr_id, d.id, sizeof b->attr_id);
		b->used = true;
	}
	gh_buf_free(&canon);
	gh_identity_attr_def_clear(&d);
	return err;
}

/* "" binds as NULL: an unused slot, or the unused half of a slot. */
static const char *
or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : NULL;
}

#define COND_SQL \
	" AND (CAST(? AS TEXT) IS NULL OR id IN (SELECT user_id FROM " \
	"user_attributes WHERE attribute_id = ? AND (value_text = ? OR " \
	"blind_index = ?)))"

gh_err
gh_identity_attr_user_list(struct gh_db *db, struct gh_kms *kms,
    const struct gh_user_filter *f, const struct gh_attr_cond *conds,
    size_t n_conds, json_t **users_out, char **next_out, char *msg,
    size_t msg_cap)
{
	struct cond_bind b[GH_ATTR_FILTERS_MAX];
	char after_id[GH_ID_LEN + 1] = "";
	char (*ids)[GH_ID_LEN + 1] = NULL;
	int64_t after_at = -1, last_at = 0;
	struct gh_stmt *st = NULL;
	struct gh_user u;
	char *pattern = NULL;
	json_t *arr = NULL;
	int n = 0;
	bool row, more = false;
	gh_err err = GH_OK;

	*users_out = NULL;
	*next_out = NULL;
	memset(b, 0, sizeof b);
	memset(&u, 0, sizeof u);
	if (n_conds < 1 || n_conds > GH_ATTR_FILTERS_MAX)
		return fail(msg, msg_cap, "attr.*: 1 to %d attribute filters",
		    GH_ATTR_FILTERS_MAX);
	if (f->limit < 1 || f->limit > GH_USER_LIST_MAX)
		return fail(msg, msg_cap, "limit: out of range");
	if (f->cursor != NULL &&
	    identity_cursor_parse(f->cursor, &after_at, after_id) != GH_OK)
		return fail(msg, msg_cap, "cursor: not a cursor from this API");
	for (size_t i = 0; err == GH_OK && i < n_conds; i++)
		err = cond_prepare(db, kms, &conds[i], &b[i], msg, msg_cap);
	if (err == GH_OK && f->q != NULL && (pattern = identity_like_pattern(f->q)) ==
	    NULL)
		err = GH_ERR_NOMEM;
	if (err == GH_OK && ((ids = calloc((size_t)f->limit, sizeof *ids)) ==
	    NULL || (arr = json_array()) == NULL))
		err = GH_ERR_NOMEM;
	if (err != GH_OK)
		goto out;
	err = gh_db_prepare(db, "SELECT id, created_at FROM users WHERE "
	    "(CAST(? AS TEXT) IS NULL OR username_key LIKE ? ESCAPE '\\' OR "
	    "LOWER(COALESCE(email, '')) LIKE ? ESCAPE '\\' OR "
	    "LOWER(display_name) LIKE ? ESCAPE '\\') AND "
	    "(CAST(? AS TEXT) IS NULL OR state = ?) AND "
	    "(CAST(? AS TEXT) IS NULL OR role = ?) AND "
	    "(created_at > ? OR (created_at = ? AND id > ?))"
	    COND_SQL COND_SQL COND_SQL COND_SQL
	    " ORDER BY created_at, id LIMIT ?", &st);
	_Static_assert(GH_ATTR_FILTERS_MAX == 4, "one COND_SQL per filter");
	if (err == GH_OK)
		err = gh_stmt_bind(st, "tttttttt" "iit" "tttt" "tttt" "tttt"
		    "tttt" "i", pattern, pattern, pattern, pattern, f->state,
		    f->state, f->role, f->role, after_at, after_at, after_id,
		    or_null(b[0].attr_id), b[0].attr_id, b[0].text,
		    or_null(b[0].blind),
		    or_null(b[1].attr_id), b[1].attr_id, b[1].text,
		    or_null(b[1].blind),
		    or_null(b[2].attr_id), b[2].attr_id, b[2].text,
		    or_null(b[2].blind),
		    or_null(b[3].attr_id), b[3].attr_id, b[3].text,
		    or_null(b[3].blind), (int64_t)f->limit + 1);
	while (err == GH_OK) {
		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		if (n == f->limit) {
			more = true;
			break;
		}
		gh_strlcpy(ids[n], gh_stmt_text(st, 0), sizeof ids[n]);
		last_at = gh_stmt_int(st, 1);
		n++;
	}
	gh_stmt_free(st);
	for (int i = 0; err == GH_OK && i < n; i++) {
		err = gh_identity_user_get(db, ids[i], &u);
		if (err == GH_OK && json_array_append_new(arr,
		    gh_identity_user_json(&u)) != 0)
			err = GH_ERR_NOMEM;
	}
	if (err == GH_OK && more) {
		char cur[64];

		snprintf(cur, sizeof cur, "%" PRId64 ".%s", last_at,
		    ids[n - 1]);
		if ((*next_out = strdup(cur)) == NULL)
			err = GH_ERR_NOMEM;
	}
out:
	for (size_t i = 0; i < GH_ATTR_FILTERS_MAX; i++)
		gh_str_wipe_free(b[i].text);
	gh_wipe(b, sizeof b);
	gh_wipe(&u, sizeof u);
	free(pattern);
	free(ids);
	if (err != GH_OK) {
		json_decref(arr);
		free(*next_out);
		*next_out = NULL;
		return err;
	}
	*users_out = arr;
	return GH_OK;
}

/* ---- re-encryption after a key rotation ---------------------------------- */

struct reenc_row {
	char user_id[GH_ID_LEN + 1];
	char attr_id[GH_ID_LEN + 1];
	char name[GH_ATTR_NAME_MAX + 1];
	uint8_t *ct;
	size_t ct_len;
};

/* Reads up to n encrypted values older than version into rows. */
static gh_err
reenc_fetch(struct gh_db *db, uint32_t version, struct reenc_row *rows,
    size_t n, size_t *got)
{
	struct gh_stmt *st = NULL;
	bool row;
	gh_err err;

	*got = 0;
	err = gh_db_prepare(db, "SELECT ua.user_id, ua.attribute_id, d.name, "
	    "ua.value_ct FROM user_attributes ua JOIN attribute_definitions d "
	    "ON d.id = ua.attribute_id WHERE ua.value_ct IS NOT NULL AND "
	    "ua.key_version < ? LIMIT ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "ii", (int64_t)version, (int64_t)n);
	while (err == GH_OK && *got < n) {
		struct reenc_row *r = &rows[*got];
		const void *b;

		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		gh_strlcpy(r->user_id, gh_stmt_text(st, 0), sizeof r->user_id);
		gh_strlcpy(r->attr_id, gh_stmt_text(st, 1), sizeof r->attr_id);
		gh_strlcpy(r->name, gh_stmt_text(st, 2), sizeof r->name);
		b = gh_stmt_blob(st, 3, &r->ct_len);
		if ((r->ct = malloc(r->ct_len ? r->ct_len : 1)) == NULL) {
			err = GH_ERR_NOMEM;
			break;
		}
		memcpy(r->ct, b, r->ct_len);
		(*got)++;
	}
	gh_stmt_free(st);
	return err;
}

/* Re-seals one value under the newest key, in the open transaction. */
static gh_err
reenc_one(struct gh_db *db, struct gh_kms *kms, const struct reenc_row *r)
{
	const struct gh_kms_aad aad = { gh_db_org_id(db), ATTR_TABLE, r->name,
		r->user_id };
	struct gh_buf pt, ct;
	uint32_t version = 0;
	gh_err err;

	gh_buf_init(&pt, CT_MAX, GH_BUF_SECRET);
	gh_buf_init(&ct, CT_MAX, 0);
	err = gh_kms_decrypt(kms, GH_KMS_ATTRIBUTES, &aad, r->ct, r->ct_len,
	    &pt);
	if (err == GH_OK)
		err = gh_kms_encrypt(kms, GH_KMS_ATTRIBUTES, &aad, pt.data,
		    pt.len, &ct);
	if (err == GH_OK)
		err = gh_kms_ct_version(ct.data, ct.len, &version);
	/* Only if the row still holds what was read: a concurrent update
	 * wrote the newest version already. */
	if (err == GH_OK)
		err = gh_db_run(db, "UPDATE user_attributes SET value_ct = ?, "
		    "key_version = ? WHERE user_id = ? AND attribute_id = ? "
		    "AND value_ct = ?", "bittb", ct.data, ct.len,
		    (int64_t)version, r->user_id, r->attr_id, r->ct, r->ct_len);
	gh_buf_free(&pt);
	gh_buf_free(&ct);
	return err;
}

gh_err
gh_identity_attr_reencrypt(struct gh_db *db, struct gh_kms *kms,
    int64_t *moved_out)
{
	struct reenc_row rows[64];
	uint32_t current;
	size_t got = 0;
	gh_err err;

	*moved_out = 0;
	if (kms == NULL)
		return GH_ERR_DENIED;
	err = gh_kms_current_version(kms, gh_db_org_id(db), GH_KMS_ATTRIBUTES,
	    &current);
	/* One transaction per batch: a crash loses at most one batch of
	 * work, and re-running picks up whatever is still old. */
	while (err == GH_OK) {
		memset(rows, 0, sizeof rows);
		err = gh_db_begin(db);
		if (err == GH_OK)
			err = reenc_fetch(db, current, rows,
			    sizeof rows / sizeof rows[0], &got);
		for (size_t i = 0; err == GH_OK && i < got; i++)
			err = reenc_one(db, kms, &rows[i]);
		if (err == GH_OK)
			err = gh_db_commit(db);
		else
			gh_db_rollback(db);
		for (size_t i = 0; i < got; i++)
			free(rows[i].ct);
		if (err == GH_OK)
			*moved_out += (int64_t)got;
		if (err != GH_OK || got == 0)
			break;
	}
	return err;
}

gh_err
gh_identity_attr_min_key_version(struct gh_db *db, uint32_t *version_out)
{
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	*version_out = 0;
	err = gh_db_prepare(db, "SELECT MIN(key_version) FROM user_attributes "
	    "WHERE value_ct IS NOT NULL", &st);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && row && !gh_stmt_is_null(st, 0))
		*version_out = (uint32_t)gh_stmt_int(st, 0);
	gh_stmt_free(st);
	return err;
}
