/*
 * notify.c: the notices table (account feed and mail outbox) and the
 * wording of each kind.
 */
#include "notify/notify_int.h"

#include <string.h>

static const struct notice_kind kinds[] = {
	{ GH_NOTICE_RECOVERY_CODE_USED,
	  "A recovery code was used to sign in to your account",
	  "One of your recovery codes was just used to sign in to your "
	  "account. It cannot be used again." },
	{ GH_NOTICE_MFA_RESET,
	  "Your second factors were reset by an administrator",
	  "An administrator removed every second factor of your account "
	  "(authenticator app, recovery codes, security keys and passkeys). "
	  "Enrol a new one at your next sign-in." },
	{ GH_NOTICE_FACTOR_ADDED,
	  "A second factor was added to your account",
	  "A new second factor was added to your account." },
	{ GH_NOTICE_FACTOR_REMOVED,
	  "A second factor was removed from your account",
	  "A second factor was removed from your account." },
	{ GH_NOTICE_SIGNIN_DENIED,
	  "A sign-in to your account was denied",
	  "A sign-in to your account was denied from one of your signed-in "
	  "devices. Someone may know your password: change it." },
	{ GH_NOTICE_CLONED_KEY,
	  "A security key of your account may have been cloned",
	  "A sign-in used one of your security keys or passkeys with a "
	  "signature counter lower than before, which is what a cloned "
	  "authenticator does. The sign-in was refused." },
};

const struct notice_kind *
notice_kind_find(const char *kind)
{
	if (kind == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strcmp(kinds[i].kind, kind) == 0)
			return &kinds[i];
	return NULL;
}

bool
gh_notify_kind_valid(const char *kind)
{
	return notice_kind_find(kind) != NULL;
}

const char *
gh_notify_title(const char *kind)
{
	const struct notice_kind *k = notice_kind_find(kind);

	return k != NULL ? k->title : "Account notice";
}

/* Whether user_id exists and has an e-mail address that can be mailed. */
static gh_err
user_mailable(struct gh_db *db, const char *user_id, bool *mailable_out)
{
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	*mailable_out = false;
	err = gh_db_prepare(db, "SELECT email FROM users WHERE id = ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", user_id);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && !row)
		err = GH_ERR_NOTFOUND;
	if (err == GH_OK)
		*mailable_out = gh_mail_addr_valid(gh_stmt_text(st, 0));
	gh_stmt_free(st);
	return err;
}

gh_err
gh_notify_user(struct gh_db *db, const char *user_id, const char *kind,
    json_t *data)
{
	char id[GH_ID_LEN + 1];
	char *text = NULL;
	bool mailable;
	gh_err err;

	if (!gh_notify_kind_valid(kind) || user_id == NULL ||
	    (data != NULL && !json_is_object(data))) {
		GH_LOG_ERR(GH_ERR_INVALID, "notice %s: unknown kind or bad "
		    "data", kind ? kind : "(null)");
		return GH_ERR_INVALID;
	}
	err = user_mailable(db, user_id, &mailable);
	if (err != GH_OK)
		return err;
	err = gh_id_new(id);
	if (err != GH_OK)
		return err;
	text = data != NULL ? json_dumps(data, JSON_COMPACT) : strdup("{}");
	if (text == NULL)
		return GH_ERR_NOMEM;
	/* The hint first: it commits now, before the caller's transaction
	 * (the mailer of any process then finds this org). */
	if (mailable)
		err = gh_db_outbox_hint(db, "mail");
	if (err == GH_OK)
		err = gh_db_run(db, "INSERT INTO notifications (id, user_id, "
		    "kind, data, created_at, mail_state) VALUES (?, ?, ?, ?, ?, "
		    "?)", "ttttit", id, user_id, kind, text, gh_now_ms(),
		    mailable ? "pending" : "none");
	free(text);
	return err;
}

static json_t *
notice_json(struct gh_stmt *st)
{
	char at[25];
	json_t *data;

	data = json_loads(gh_stmt_text(st, 2) ? gh_stmt_text(st, 2) : "{}", 0,
	    NULL);
	if (data == NULL)
		data = json_object();
	gh_time_rfc3339(gh_stmt_int(st, 3), at);
	return json_pack("{s:s, s:s, s:s, s:o, s:s, s:b}",
	    "id", gh_stmt_text(st, 0), "kind", gh_stmt_text(st, 1),
	    "title", gh_notify_title(gh_stmt_text(st, 1)), "data", data,
	    "created_at", at, "read", !gh_stmt_is_null(st, 4));
}

static gh_err
count_unread(struct gh_db *db, const char *user_id, int64_t *out)
{
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	*out = 0;
	err = gh_db_prepare(db, "SELECT COUNT(*) FROM notifications WHERE "
	    "user_id = ? AND read_at IS NULL", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "t", user_id);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && row)
		*out = gh_stmt_int(st, 0);
	gh_stmt_free(st);
	return err;
}

gh_err
gh_notify_list(struct gh_db *db, const char *user_id, bool unread_only,
    int limit, json_t **out, int64_t *unread_out)
{
	struct gh_stmt *st = NULL;
	json_t *arr, *item;
	bool row = true;
	gh_err err;

	*out = NULL;
	if (limit < 1 || limit > GH_NOTIFY_LIST_MAX)
		return GH_ERR_INVALID;
	arr = json_array();
	if (arr == NULL)
		return GH_ERR_NOMEM;
	err = gh_db_prepare(db, "SELECT id, kind, data, created_at, read_at "
	    "FROM notifications WHERE user_id = ? AND (? = 0 OR read_at IS "
	    "NULL) ORDER BY created_at DESC, id DESC LIMIT ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "tii", user_id, (int64_t)unread_only,
		    (int64_t)limit);
	while (err == GH_OK) {
		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		item = notice_json(st);
		if (item == NULL || json_array_append_new(arr, item) != 0)
			err = GH_ERR_NOMEM;
	}
	gh_stmt_free(st);
	if (err == GH_OK)
		err = count_unread(db, user_id, unread_out);
	if (err != GH_OK) {
		json_decref(arr);
		return err;
	}
	*out = arr;
	return GH_OK;
}

gh_err
gh_notify_mark_read(struct gh_db *db, const char *user_id, const char *id,
    int64_t now_ms, int64_t *count_out)
{
	bool known = false;
	gh_err err;

	*count_out = 0;
	if (id != NULL) {
		struct gh_stmt *st = NULL;

		err = gh_db_prepare(db, "SELECT 1 FROM notifications WHERE "
		    "id = ? AND user_id = ?", &st);
		if (err == GH_OK)
			err = gh_stmt_bind(st, "tt", id, user_id);
		if (err == GH_OK)
			err = gh_stmt_step(st, &known);
		gh_stmt_free(st);
		if (err != GH_OK)
			return err;
		if (!known)
			return GH_ERR_NOTFOUND;
	}
	err = gh_db_run(db, "UPDATE notifications SET read_at = ? WHERE "
	    "user_id = ? AND read_at IS NULL AND (? IS NULL OR id = ?)",
	    "ittt", now_ms, user_id, id, id);
	if (err == GH_OK)
		*count_out = gh_db_changes(db);
	return err;
}
