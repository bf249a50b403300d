/*
 * mailer.c: mails pending notices, from an outbox worker (outbox.c) of
 * kind "mail". It runs an org on a kick (after a request committed a
 * notice), when a retry falls due, and when the org's outbox hint shows
 * mail queued by another process or left pending by an earlier one.
 */
#include "notify/notify_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/identity.h"

#define DRAIN_BATCH 20
#define RETRY_BASE_MS (30 * 1000)

struct pending_mail {
	char id[GH_ID_LEN + 1];
	char kind[64];
	char *data;
	int64_t created_at;
	int attempts;
	char email[255];
	char username[129];
};

/* Appends "Label: value" for a string member of data when present. */
static void
put_fact(struct gh_buf *b, json_t *data, const char *key, const char *label)
{
	const char *v = json_string_value(json_object_get(data, key));

	if (v != NULL && v[0] != '\0' && strpbrk(v, "\r\n") == NULL)
		gh_buf_printf(b, "%s: %.256s\n", label, v);
}

static char *
mail_body(const struct pending_mail *p, const struct gh_mailer_config *cfg,
    const char *org_slug, const char *org_name)
{
	const struct notice_kind *k = notice_kind_find(p->kind);
	json_t *data = json_loads(p->data ? p->data : "{}", 0, NULL);
	struct gh_buf b;
	char at[25];
	char *out;

	gh_time_rfc3339(p->created_at, at);
	gh_buf_init(&b, 64 * 1024, 0);
	gh_buf_printf(&b, "Hello %s,\n\n%s\n\nWhen: %s\n", p->username,
	    k != NULL ? k->text : "", at);
	put_fact(&b, data, "method", "Method");
	put_fact(&b, data, "by", "By");
	put_fact(&b, data, "source_ip", "From IP address");
	put_fact(&b, data, "user_agent", "Device");
	gh_buf_printf(&b, "\nIf this was not you, contact the administrators "
	    "of %s at once.\n", org_name);
	if (cfg->base_url[0] != '\0')
		gh_buf_printf(&b, "Your account: %s/o/%s/account\n",
		    cfg->base_url, org_slug);
	gh_buf_put_str(&b, "\n-- \nGatehouse (automatic message)\n");
	json_decref(data);
	out = gh_buf_take(&b, NULL);
	gh_buf_free(&b);
	return out;
}

static gh_err
load_batch(struct gh_db *db, int64_t now_ms, struct pending_mail *out,
    int *n_out)
{
	struct gh_stmt *st = NULL;
	bool row = true;
	gh_err err;
	int n = 0;

	*n_out = 0;
	err = gh_db_run(db, "UPDATE notifications SET mail_state = 'failed', "
	    "mail_error = 'expired' WHERE mail_state = 'pending' AND "
	    "created_at < ?", "i", now_ms - GH_MAIL_MAX_AGE_MS);
	if (err == GH_OK)
		err = gh_db_prepare(db, "SELECT n.id, n.kind, n.data, "
		    "n.created_at, n.mail_attempts, u.email, u.username FROM "
		    "notifications n JOIN users u ON u.id = n.user_id WHERE "
		    "n.mail_state = 'pending' AND n.mail_next_at <= ? ORDER BY "
		    "n.created_at LIMIT ?", &st);
	if (err == GH_OK)
		err = gh_stmt_bind(st, "ii", now_ms, (int64_t)DRAIN_BATCH);
	while (err == GH_OK && n < DRAIN_BATCH) {
		struct pending_mail *p = &out[n];

		err = gh_stmt_step(st, &row);
		if (err != GH_OK || !row)
			break;
		memset(p, 0, sizeof *p);
		gh_strlcpy(p->id, gh_stmt_text(st, 0), sizeof p->id);
		gh_strlcpy(p->kind, gh_stmt_text(st, 1), sizeof p->kind);
		p->data = gh_strdup(gh_stmt_text(st, 2));
		p->created_at = gh_stmt_int(st, 3);
		p->attempts = (int)gh_stmt_int(st, 4);
		if (gh_stmt_text(st, 5) != NULL)
			gh_strlcpy(p->email, gh_stmt_text(st, 5),
			    sizeof p->email);
		gh_strlcpy(p->username, gh_stmt_text(st, 6),
		    sizeof p->username);
		n++;
	}
	gh_stmt_free(st);
	*n_out = n;
	return err;
}

/* Records the outcome of one attempt. */
static gh_err
record_attempt(struct gh_db *db, const struct pending_mail *p, gh_err sent,
    const char *why, int64_t now_ms)
{
	int attempts = p->attempts + 1;
	bool give_up = sent == GH_ERR_DENIED || sent == GH_ERR_INVALID ||
	    attempts >= GH_MAIL_MAX_ATTEMPTS;

	if (sent == GH_OK)
		return gh_db_run(db, "UPDATE notifications SET mail_state = "
		    "'sent', mail_attempts = ?, mail_error = NULL WHERE id = ?",
		    "it", (int64_t)attempts, p->id);
	return gh_db_run(db, "UPDATE notifications SET mail_state = ?, "
	    "mail_attempts = ?, mail_next_at = ?, mail_error = ? WHERE id = ?",
	    "tiitt", give_up ? "failed" : "pending", (int64_t)attempts,
	    now_ms + (RETRY_BASE_MS << (attempts < 10 ? attempts : 10)), why,
	    p->id);
}

gh_err
gh_mailer_drain(struct gh_db *db, const struct gh_mailer_config *cfg,
    const char *org_slug, const char *org_name, int64_t now_ms, int *sent_out)
{
	struct pending_mail batch[DRAIN_BATCH];
	int n = 0;
	gh_err err;

	*sent_out = 0;
	err = load_batch(db, now_ms, batch, &n);
	for (int i = 0; i < n; i++) {
		struct pending_mail *p = &batch[i];
		char subject[512], why[256] = "";
		char *body = mail_body(p, cfg, org_slug, org_name);
		struct gh_mail_msg msg = { cfg->from, p->email, subject, body };
		gh_err sent = GH_ERR_NOMEM;

		snprintf(subject, sizeof subject, "[%s] %s", org_name,
		    gh_notify_title(p->kind));
		if (body != NULL && err == GH_OK)
			sent = gh_mail_send(cfg->host, cfg->port, cfg->helo,
			    cfg->timeout_s, &msg, why, sizeof why);
		if (sent == GH_OK)
			(*sent_out)++;
		else if (err == GH_OK)
			GH_LOG_WARN(sent, "org %s: mailing notice %s failed: %s",
			    org_slug, p->id, why);
		if (err == GH_OK)
			err = record_attempt(db, p, sent, why, now_ms);
		free(body);
		free(p->data);
	}
	return err;
}

/* ---- the thread --------------------------------------------------------------- */

/* Orgs with mail queued by another process (the CLI) are found through
 * their outbox hints within about this long. */
#define MAIL_POLL_MS (2 * 1000)
#define MAIL_SCAN_MS (300 * 1000)

struct gh_mailer {
	struct gh_mailer_config cfg;
	struct gh_outbox *w;
};

void
gh_mailer_kick(struct gh_mailer *m, const char *org_id)
{
	if (m != NULL)
		gh_outbox_kick(m->w, org_id);
}

/* The earliest pending retry of an org, 0 when none. */
static gh_err
next_retry(struct gh_db *db, int64_t *next_out)
{
	struct gh_stmt *st = NULL;
	bool row = false;
	gh_err err;

	*next_out = 0;
	err = gh_db_prepare(db, "SELECT MIN(mail_next_at) FROM notifications "
	    "WHERE mail_state = 'pending'", &st);
	if (err == GH_OK)
		err = gh_stmt_step(st, &row);
	if (err == GH_OK && row && !gh_stmt_is_null(st, 0))
		*next_out = gh_stmt_int(st, 0);
	gh_stmt_free(st);
	return err;
}

/* The outbox worker's run: one org's due mail. */
static gh_err
mail_run(void *arg, struct gh_outbox *w, const struct gh_org *org,
    struct gh_db *db, int64_t *next_out)
{
	struct gh_mailer *m = arg;
	int sent = 0;
	gh_err err;

	(void)w;
	*next_out = 0;
	err = gh_mailer_drain(db, &m->cfg, org->slug, org->name, gh_now_ms(),
	    &sent);
	if (sent > 0)
		GH_LOG_INFO("org %s: %d notice(s) mailed", org->slug, sent);
	if (err == GH_OK)
		err = next_retry(db, next_out);
	return err;
}

gh_err
gh_mailer_start(struct gh_store *st, const struct gh_mailer_config *cfg,
    struct gh_mailer **out)
{
	struct gh_outbox_ops ops = { .name = "mail", .run = mail_run,
	    .st = st, .kind = "mail", .poll_ms = MAIL_POLL_MS,
	    .scan_ms = MAIL_SCAN_MS, .retry_ms = RETRY_BASE_MS };
	struct gh_mailer *m;
	gh_err err;

	*out = NULL;
	if (cfg->host[0] == '\0' || !gh_mail_addr_valid(cfg->from) ||
	    cfg->port == 0 || cfg->port > 65535)
		return GH_ERR_INVALID;
	m = calloc(1, sizeof *m);
	if (m == NULL)
		return GH_ERR_NOMEM;
	m->cfg = *cfg;
	if (m->cfg.helo[0] == '\0')
		gh_strlcpy(m->cfg.helo, "localhost", sizeof m->cfg.helo);
	if (m->cfg.timeout_s == 0)
		m->cfg.timeout_s = 10;
	ops.arg = m;
	err = gh_outbox_start(&ops, &m->w);
	if (err != GH_OK) {
		free(m);
		return err;
	}
	*out = m;
	return GH_OK;
}

void
gh_mailer_stop(struct gh_mailer *m)
{
	if (m == NULL)
		return;
	gh_outbox_stop(m->w);
	free(m);
}
