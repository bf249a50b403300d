/*
 * audit.c: appends and lists audit events and sign-in records.
 * Untrusted input: list filters come from query strings (bound as SQL
 * parameters, never spliced). Holds no secrets; callers never pass any.
 */
#include "audit/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHANGES_MAX (64 * 1024)

/* The next sequence number. Writers are serialised by the transaction's
 * write lock, so MAX+1 cannot race. */
static gh_err
next_seq(struct gh_db *db, const char *table, int64_t *out)
{
	char sql[96];
	struct gh_stmt *st = NULL;
	bool row;
	gh_err err;

	snprintf(sql, sizeof sql, "SELECT COALESCE(MAX(seq), 0) + 1 FROM %s",
	    table);
	err = gh_db_prepare(db, sql, &st);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && !row)
		err = GH_ERR_STORE;
	if (err == GH_OK)
		*out = gh_stmt_int(st, 0);
	gh_stmt_free(st);
	return err;
}

static gh_err
changes_dump(json_t *changes, char **out)
{
	json_t *empty = NULL;

	if (changes == NULL)
		changes = empty = json_object();
	if (changes == NULL || !json_is_object(changes)) {
		json_decref(empty);
		return changes == NULL ? GH_ERR_NOMEM : GH_ERR_INVALID;
	}
	*out = json_dumps(changes, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(empty);
	if (*out == NULL)
		return GH_ERR_NOMEM;
	if (strlen(*out) > CHANGES_MAX) {
		free(*out);
		*out = NULL;
		return GH_ERR_LIMIT;
	}
	return GH_OK;
}

gh_err
gh_audit_append(struct gh_db *db, const struct gh_audit_actor *actor,
    const char *action, const char *target_type, const char *target_id,
    json_t *changes)
{
	char id[GH_ID_LEN + 1];
	char *text = NULL;
	int64_t seq;
	gh_err err;

	err = gh_id_new_ordered(id);
	if (err != GH_OK)
		return err;
	err = changes_dump(changes, &text);
	if (err != GH_OK)
		return err;
	err = next_seq(db, "audit_events", &seq);
	if (err == GH_OK)
		err = gh_db_run(db,
		    "INSERT INTO audit_events (id, seq, at, actor_type, "
		    "actor_id, action, target_type, target_id, changes, "
		    "source_ip, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
		    "?, ?)", "tiitttttttt", id, seq, gh_now_ms(), actor->type,
		    actor->id, action, target_type, target_id, text,
		    actor->source_ip, actor->request_id);
	if (err != GH_OK)
		GH_LOG_ERR(err, "org %s: audit append of %s failed",
		    gh_db_org_id(db), action);
	free(text);
	return err;
}

gh_err
gh_audit_operator_append(struct gh_db *dir, const char *actor,
    const char *action, const char *target_type, const char *target_id,
    json_t *changes)
{
	char id[GH_ID_LEN + 1];
	char *text = NULL;
	int64_t seq;
	gh_err err;

	err = gh_id_new_ordered(id);
	if (err != GH_OK)
		return err;
	err = changes_dump(changes, &text);
	if (err != GH_OK)
		return err;
	err = next_seq(dir, "operator_audit", &seq);
	if (err == GH_OK)
		err = gh_db_run(dir,
		    "INSERT INTO operator_audit (id, seq, at, actor, action, "
		    "target_type, target_id, changes, source) VALUES (?, ?, ?, "
		    "?, ?, ?, ?, ?, ?)", "tiitttttt", id, seq, gh_now_ms(),
		    actor, action, target_type, target_id, text, "cli");
	if (err != GH_OK)
		GH_LOG_ERR(err, "operator audit append of %s failed", action);
	free(text);
	return err;
}

static json_t *
time_or_null(int64_t ms)
{
	char when[25];

	gh_time_rfc3339(ms, when);
	return json_string(when);
}

static json_t *
text_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static json_t *
audit_row_json(struct gh_stmt *st)
{
	json_t *changes, *ev;

	changes = json_loads(gh_stmt_text(st, 7) ? gh_stmt_text(st, 7) : "{}",
	    0, NULL);
	if (changes == NULL)
		changes = json_object();
	ev = json_pack("{s:s?, s:o, s:{s:s?, s:o}, s:s?, s:{s:s?, s:o}, s:o, "
	    "s:o, s:o}",
	    "id", gh_stmt_text(st, 0),
	    "at", time_or_null(gh_stmt_int(st, 1)),
	    "actor", "type", gh_stmt_text(st, 2),
	    "id", text_or_null(gh_stmt_text(st, 3)),
	    "action", gh_stmt_text(st, 4),
	    "target", "type", gh_stmt_text(st, 5),
	    "id", text_or_null(gh_stmt_text(st, 6)),
	    "changes", changes,
	    "source_ip", text_or_null(gh_stmt_text(st, 8)),
	    "request_id", text_or_null(gh_stmt_text(st, 9)));
	return ev;
}

/* Steps through at most limit rows into arr; sets *next_out to the last
 * row's seq when one more row exists. The seq is column seq_col. */
static gh_err
collect(struct gh_stmt *st, int limit, int seq_col,
    json_t *(*row_json)(struct gh_stmt *), json_t *arr, int64_t *next_out)
{
	int64_t last = 0;
	int n = 0;
	bool row;
	gh_err err;

	*next_out = 0;
	for (;;) {
		json_t *ev;

		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			return err;
		if (n == limit) {
			*next_out = last;
			return GH_OK;
		}
		ev = row_json(st);
		if (ev == NULL || json_array_append_new(arr, ev) != 0)
			return GH_ERR_NOMEM;
		last = gh_stmt_int(st, seq_col);
		n++;
	}
}

static bool
limit_ok(int limit)
{
	return limit >= 1 && limit <= GH_AUDIT_LIST_MAX;
}

gh_err
gh_audit_list(struct gh_db *db, const struct gh_audit_filter *f,
    json_t **events_out, int64_t *next_out)
{
	struct gh_stmt *st = NULL;
	json_t *arr = NULL;
	gh_err err;

	*events_out = NULL;
	*next_out = 0;
	if (!limit_ok(f->limit))
		return GH_ERR_INVALID;
	arr = json_array();
	if (arr == NULL)
		return GH_ERR_NOMEM;
	/* Absent filters bind NULL and drop out of the WHERE clause. */
	err = gh_db_prepare(db,
	    "SELECT id, at, actor_type, actor_id, action, target_type, "
	    "target_id, changes, source_ip, request_id, seq "
	    "FROM audit_events WHERE "
	    "(CAST(? AS TEXT) IS NULL OR action = ?) AND "
	    "(CAST(? AS TEXT) IS NULL OR actor_id = ?) AND "
	    "(CAST(? AS TEXT) IS NULL OR target_type = ?) AND "
	    "(CAST(? AS TEXT) IS NULL OR target_id = ?) AND "
	    "(? = 0 OR at >= ?) AND (? = 0 OR at < ?) AND "
	    "(? = 0 OR seq < ?) ORDER BY seq DESC LIMIT ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "ttttttttiiiiiii", f->action, f->action,
		    f->actor_id, f->actor_id, f->target_type, f->target_type,
		    f->target_id, f->target_id, f->since_ms, f->since_ms,
		    f->until_ms, f->until_ms, f->before_seq, f->before_seq,
		    (int64_t)f->limit + 1);
	if (err == GH_OK)
		err = collect(st, f->limit, 10, audit_row_json, arr, next_out);
	gh_stmt_free(st);
	if (err != GH_OK) {
		json_decref(arr);
		return err;
	}
	*events_out = arr;
	return GH_OK;
}

static json_t *
operator_row_json(struct gh_stmt *st)
{
	json_t *changes;

	changes = json_loads(gh_stmt_text(st, 6) ? gh_stmt_text(st, 6) : "{}",
	    0, NULL);
	if (changes == NULL)
		changes = json_object();
	return json_pack("{s:s?, s:o, s:s?, s:s?, s:s?, s:o, s:o}",
	    "id", gh_stmt_text(st, 0), "at", time_or_null(gh_stmt_int(st, 1)),
	    "actor", gh_stmt_text(st, 2), "action", gh_stmt_text(st, 3),
	    "target_type", gh_stmt_text(st, 4),
	    "target_id", text_or_null(gh_stmt_text(st, 5)),
	    "changes", changes);
}

gh_err
gh_audit_operator_list(struct gh_db *dir, int limit, json_t **events_out)
{
	struct gh_stmt *st = NULL;
	json_t *arr;
	int64_t next;
	gh_err err;

	*events_out = NULL;
	if (!limit_ok(limit))
		return GH_ERR_INVALID;
	arr = json_array();
	if (arr == NULL)
		return GH_ERR_NOMEM;
	err = gh_db_prepare(dir, "SELECT id, at, actor, action, target_type, "
	    "target_id, changes, seq FROM operator_audit ORDER BY seq DESC "
	    "LIMIT ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "i", (int64_t)limit);
	if (err == GH_OK)
		err = collect(st, limit, 7, operator_row_json, arr, &next);
	gh_stmt_free(st);
	if (err != GH_OK) {
		json_decref(arr);
		return err;
	}
	*events_out = arr;
	return GH_OK;
}

/* Copies at most cap-1 bytes without splitting a UTF-8 sequence. */
static void
utf8_trunc(char *dst, const char *src, size_t cap)
{
	size_t n = strlen(src);

	if (n >= cap) {
		n = cap - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

gh_err
gh_audit_signin_record(struct gh_db *db, const struct gh_signin_record *r)
{
	char id[GH_ID_LEN + 1], username[65], ua[257];
	int64_t seq;
	gh_err err;

	utf8_trunc(username, r->username ? r->username : "", sizeof username);
	utf8_trunc(ua, r->user_agent ? r->user_agent : "", sizeof ua);
	err = gh_id_new_ordered(id);
	if (err == GH_OK)
		err = next_seq(db, "signin_events", &seq);
	if (err == GH_OK)
		err = gh_db_run(db,
		    "INSERT INTO signin_events (id, seq, at, user_id, username, "
		    "source_ip, user_agent, result, reason) VALUES (?, ?, ?, ?, "
		    "?, ?, ?, ?, ?)", "tiitttttt", id, seq, gh_now_ms(),
		    r->user_id, username, r->source_ip ? r->source_ip : "", ua,
		    r->success ? "success" : "failure", r->reason);
	if (err != GH_OK)
		GH_LOG_ERR(err, "org %s: sign-in record failed",
		    gh_db_org_id(db));
	return err;
}

static json_t *
signin_row_json(struct gh_stmt *st)
{
	return json_pack("{s:s?, s:o, s:o, s:s?, s:s?, s:s?, s:s?, s:s?}",
	    "id", gh_stmt_text(st, 0), "at", time_or_null(gh_stmt_int(st, 1)),
	    "user_id", text_or_null(gh_stmt_text(st, 2)),
	    "username", gh_stmt_text(st, 3), "source_ip", gh_stmt_text(st, 4),
	    "user_agent", gh_stmt_text(st, 5), "result", gh_stmt_text(st, 6),
	    "reason", gh_stmt_text(st, 7));
}

gh_err
gh_audit_signin_list(struct gh_db *db, const struct gh_signin_filter *f,
    json_t **events_out, int64_t *next_out)
{
	struct gh_stmt *st = NULL;
	json_t *arr;
	gh_err err;

	*events_out = NULL;
	*next_out = 0;
	if (!limit_ok(f->limit))
		return GH_ERR_INVALID;
	arr = json_array();
	if (arr == NULL)
		return GH_ERR_NOMEM;
	err = gh_db_prepare(db,
	    "SELECT id, at, user_id, username, source_ip, user_agent, result, "
	    "reason, seq FROM signin_events WHERE "
	    "(CAST(? AS TEXT) IS NULL OR user_id = ?) AND "
	    "(CAST(? AS TEXT) IS NULL OR result = ?) AND "
	    "(? = 0 OR seq < ?) ORDER BY seq DESC LIMIT ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "ttttiii", f->user_id, f->user_id,
		    f->result, f->result, f->before_seq, f->before_seq,
		    (int64_t)f->limit + 1);
	if (err == GH_OK)
		err = collect(st, f->limit, 8, signin_row_json, arr, next_out);
	gh_stmt_free(st);
	if (err != GH_OK) {
		json_decref(arr);
		return err;
	}
	*events_out = arr;
	return GH_OK;
}
