/*
 * cmd_db.c: gatehouse db sql --org SLUG [--write] [--params JSON] SQL.
 * The operator's window into an organisation's (encrypted) database: runs
 * one statement through the store, with the org's keys, and prints the
 * rows as a JSON array of objects. Read-only unless --write; a write runs
 * in a transaction with an audit event in the org's log and one in the
 * operator audit, naming the statement by its SHA-256 only.
 * Untrusted input: none beyond the operator's own. Secrets: whatever the
 * operator selects (password hashes are hashes; tokens are digests).
 */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

static gh_err
bind_params(struct gh_stmt *q, json_t *params)
{
	size_t i;
	json_t *v;
	gh_err err = GH_OK;

	json_array_foreach(params, i, v) {
		if (err != GH_OK)
			break;
		if (json_is_integer(v))
			err = gh_stmt_bind_at(q, (int)i + 1, "i",
			    (int64_t)json_integer_value(v));
		else if (json_is_string(v))
			err = gh_stmt_bind_at(q, (int)i + 1, "t",
			    json_string_value(v));
		else if (json_is_null(v))
			err = gh_stmt_bind_at(q, (int)i + 1, "n");
		else
			err = GH_ERR_INVALID;
	}
	return err;
}

static json_t *
row_json(struct gh_stmt *q)
{
	json_t *row = json_object();
	int n = gh_stmt_columns(q);

	for (int c = 0; c < n; c++) {
		const char *name = gh_stmt_column_name(q, c);
		json_t *v;

		switch (gh_stmt_column_type(q, c)) {
		case GH_COL_NULL:
			v = json_null();
			break;
		case GH_COL_INT:
			v = json_integer(gh_stmt_int(q, c));
			break;
		case GH_COL_BLOB: {
			size_t len = 0;
			const void *b = gh_stmt_blob(q, c, &len);
			char *hex = malloc(2 * len + 1);

			if (hex == NULL)
				v = json_null();
			else {
				gh_hex_encode(b, len, hex);
				v = json_pack("{s:s}", "hex", hex);
				free(hex);
			}
			break;
		}
		default:
			v = json_string(gh_stmt_text(q, c) ?
			    gh_stmt_text(q, c) : "");
			break;
		}
		json_object_set_new(row, name ? name : "?", v);
	}
	return row;
}

static gh_err
run_sql(struct gh_db *db, const char *sql, json_t *params, bool write,
    json_t *rows)
{
	struct gh_stmt *q = NULL;
	bool row;
	gh_err err;

	err = gh_db_prepare(db, sql, &q);
	if (err == GH_OK && !write && !gh_stmt_readonly(q)) {
		fprintf(stderr, "gatehouse: the statement writes: add --write\n");
		err = GH_ERR_DENIED;
	}
	if (err == GH_OK)
		err = bind_params(q, params);
	while (err == GH_OK) {
		err = gh_stmt_step(q, &row);
		if (err != GH_OK || !row)
			break;
		json_array_append_new(rows, row_json(q));
	}
	gh_stmt_free(q);
	return err;
}

static gh_err
audit_write(struct gh_store *st, struct gh_db *db, const struct gh_org *org,
    const char *sql)
{
	struct gh_audit_actor actor = { "operator", cli_operator(), NULL,
		NULL };
	uint8_t digest[GH_SHA256_LEN];
	char hex[2 * GH_SHA256_LEN + 1];
	struct gh_db *dir = NULL;
	json_t *changes;
	gh_err err;

	gh_sha256(sql, strlen(sql), digest);
	gh_hex_encode(digest, sizeof digest, hex);
	changes = json_pack("{s:s}", "statement_sha256", hex);
	err = gh_audit_append(db, &actor, "db.sql_write", "org", org->id,
	    changes);
	if (err == GH_OK)
		err = gh_store_directory(st, &dir);
	if (err == GH_OK)
		err = gh_audit_operator_append(dir, cli_operator(),
		    "db.sql_write", "org", org->id, changes);
	gh_db_release(dir);
	json_decref(changes);
	return err;
}

int
cmd_db(int argc, char **argv)
{
	struct gh_store *st = NULL;
	struct gh_kms *kms = NULL;
	struct gh_db *dir = NULL, *db = NULL;
	json_t *params = NULL, *rows = NULL;
	struct gh_config cfg;
	struct cli_opts o;
	struct gh_org org;
	int rc = EXIT_FAIL;
	gh_err err;

	/* Options may stand anywhere: "db --data-dir D sql --org X SQL". */
	if (cli_parse(argc, argv, "config data-dir org write params", &o) !=
	    GH_OK || o.nargs != 2 || strcmp(o.args[0], "sql") != 0 ||
	    o.org == NULL) {
		fprintf(stderr, "gatehouse: db sql --org SLUG [--write] "
		    "[--params JSON-ARRAY] SQL\n");
		return EXIT_USAGE;
	}
	if (cli_config(&o, &cfg) != GH_OK)
		return EXIT_USAGE;
	params = json_loads(o.params ? o.params : "[]", JSON_REJECT_DUPLICATES,
	    NULL);
	if (!json_is_array(params)) {
		fprintf(stderr, "gatehouse: --params: a JSON array\n");
		json_decref(params);
		return EXIT_USAGE;
	}
	if (cli_store(&cfg, &st, &kms) != GH_OK)
		goto out;
	err = gh_store_directory(st, &dir);
	if (err == GH_OK)
		err = gh_identity_org_get(dir, o.org, &org);
	gh_db_release(dir);
	if (err == GH_OK)
		err = gh_store_tenant(st, org.id, org.region, false, &db);
	if (err != GH_OK) {
		fprintf(stderr, "gatehouse: %s: %s\n", o.org, gh_err_str(err));
		goto out;
	}
	rows = json_array();
	err = o.write ? gh_db_begin(db) : GH_OK;
	if (err == GH_OK)
		err = run_sql(db, o.args[1], params, o.write, rows);
	if (err == GH_OK && o.write)
		err = audit_write(st, db, &org, o.args[1]);
	if (err == GH_OK && o.write)
		err = gh_db_commit(db);
	if (err != GH_OK) {
		gh_db_rollback(db);
		if (err != GH_ERR_DENIED)
			fprintf(stderr, "gatehouse: the statement failed: %s\n",
			    gh_err_str(err));
	} else {
		char *s = json_dumps(rows, JSON_COMPACT);

		if (s != NULL)
			puts(s);
		free(s);
		rc = 0;
	}
out:
	gh_db_release(db);
	json_decref(rows);
	json_decref(params);
	cli_close(st, kms);
	return rc;
}
