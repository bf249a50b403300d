/*
 * mailer.c: the thread that mails pending notices. It wakes on a kick
 * (after a request committed a notice), when a retry falls due, and once
 * at start to pick up what an earlier process left pending.
 */
#include "notify/notify_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/identity.h"

#define DRAIN_BATCH 20
#define RETRY_BASE_MS (30 * 1000)
#define QUEUE_MAX 256

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

struct queued {
	char org_id[GH_ID_LEN + 1];
	int64_t due_ms;
};

struct gh_mailer {
	struct gh_store *st;
	struct gh_mailer_config cfg;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	bool scan_all;
	struct queued q[QUEUE_MAX];
	size_t qlen;
};

/* Adds org_id due at due_ms, or brings an existing entry forward. Called
 * with mu held. */
static void
queue_put(struct gh_mailer *m, const char *org_id, int64_t due_ms)
{
	for (size_t i = 0; i < m->qlen; i++) {
		if (strcmp(m->q[i].org_id, org_id) == 0) {
			if (due_ms < m->q[i].due_ms)
				m->q[i].due_ms = due_ms;
			return;
		}
	}
	if (m->qlen == QUEUE_MAX) {
		m->scan_all = true;	/* too many: look everywhere later */
		return;
	}
	gh_strlcpy(m->q[m->qlen].org_id, org_id, sizeof m->q[0].org_id);
	m->q[m->qlen].due_ms = due_ms;
	m->qlen++;
}

void
gh_mailer_kick(struct gh_mailer *m, const char *org_id)
{
	if (m == NULL || org_id == NULL || !gh_id_valid(org_id))
		return;
	pthread_mutex_lock(&m->mu);
	queue_put(m, org_id, 0);
	pthread_cond_signal(&m->cv);
	pthread_mutex_unlock(&m->mu);
}

/* The earliest pending retry of an org, 0 when none. */
static int64_t
next_retry(struct gh_db *db)
{
	struct gh_stmt *st = NULL;
	int64_t next = 0;
	bool row = false;

	if (gh_db_prepare(db, "SELECT MIN(mail_next_at) FROM notifications "
	    "WHERE mail_state = 'pending'", &st) == GH_OK &&
	    gh_stmt_step(st, &row) == GH_OK && row && !gh_stmt_is_null(st, 0))
		next = gh_stmt_int(st, 0);
	gh_stmt_free(st);
	return next;
}

struct org_ref {
	struct gh_org org;
	bool found;
	const char *want_id;
};

static void
find_org(const struct gh_org *org, void *arg)
{
	struct org_ref *r = arg;

	if (!r->found && strcmp(org->id, r->want_id) == 0) {
		r->org = *org;
		r->found = true;
	}
}

static void
drain_org(struct gh_mailer *m, const struct gh_org *org)
{
	struct gh_db *db = NULL;
	int64_t retry;
	int sent = 0;
	gh_err err;

	if (strcmp(org->state, "active") != 0)
		return;
	err = gh_store_tenant(m->st, org->id, org->region, false, &db);
	if (err == GH_OK)
		err = gh_mailer_drain(db, &m->cfg, org->slug, org->name,
		    gh_now_ms(), &sent);
	retry = err == GH_OK ? next_retry(db) : gh_now_ms() + RETRY_BASE_MS;
	gh_db_release(db);
	if (err != GH_OK)
		GH_LOG_WARN(err, "org %s: mail outbox", org->slug);
	if (sent > 0)
		GH_LOG_INFO("org %s: %d notice(s) mailed", org->slug, sent);
	if (retry > 0) {
		pthread_mutex_lock(&m->mu);
		queue_put(m, org->id, retry);
		pthread_mutex_unlock(&m->mu);
	}
}

static void
drain_by_id(struct gh_mailer *m, const char *org_id)
{
	struct org_ref r = { .want_id = org_id };
	struct gh_db *dir = NULL;
	gh_err err;

	err = gh_store_directory(m->st, &dir);
	if (err == GH_OK)
		err = gh_identity_org_list(dir, find_org, &r);
	gh_db_release(dir);
	if (err == GH_OK && r.found)
		drain_org(m, &r.org);
}

struct org_list {
	struct gh_org *v;
	size_t n, cap;
	bool nomem;
};

static void
collect_org(const struct gh_org *org, void *arg)
{
	struct org_list *l = arg;

	if (l->nomem || strcmp(org->state, "active") != 0)
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct gh_org *v = realloc(l->v, cap * sizeof *v);

		if (v == NULL) {
			l->nomem = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *org;
}

/* Drains every active org. The directory handle is released before any
 * tenant is opened or any mail sent. */
static void
scan_all(struct gh_mailer *m)
{
	struct org_list l = { 0 };
	struct gh_db *dir = NULL;
	gh_err err;

	err = gh_store_directory(m->st, &dir);
	if (err == GH_OK)
		err = gh_identity_org_list(dir, collect_org, &l);
	gh_db_release(dir);
	if (err == GH_OK && l.nomem)
		err = GH_ERR_NOMEM;
	if (err != GH_OK)
		GH_LOG_WARN(err, "mailer: listing organisations");
	for (size_t i = 0; err == GH_OK && i < l.n; i++)
		drain_org(m, &l.v[i]);
	free(l.v);
}

/* Takes the next due org id (or the scan-all flag) off the queue, waiting
 * until one is due. False when stopping. Called with mu held. */
static bool
next_job(struct gh_mailer *m, char org_id[static GH_ID_LEN + 1], bool *all)
{
	for (;;) {
		int64_t now = gh_now_ms(), wake = now + 60 * 1000;
		struct timespec ts;

		if (m->stop)
			return false;
		*all = m->scan_all;
		if (*all) {
			m->scan_all = false;
			return true;
		}
		for (size_t i = 0; i < m->qlen; i++) {
			if (m->q[i].due_ms <= now) {
				gh_strlcpy(org_id, m->q[i].org_id,
				    GH_ID_LEN + 1);
				m->q[i] = m->q[--m->qlen];
				return true;
			}
			if (m->q[i].due_ms < wake)
				wake = m->q[i].due_ms;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (wake - now) / 1000;
		ts.tv_nsec += ((wake - now) % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&m->cv, &m->mu, &ts);
	}
}

static void *
mailer_main(void *arg)
{
	struct gh_mailer *m = arg;
	char org_id[GH_ID_LEN + 1];
	bool all;

	pthread_mutex_lock(&m->mu);
	while (next_job(m, org_id, &all)) {
		pthread_mutex_unlock(&m->mu);
		if (all)
			scan_all(m);
		else
			drain_by_id(m, org_id);
		pthread_mutex_lock(&m->mu);
	}
	pthread_mutex_unlock(&m->mu);
	return NULL;
}

gh_err
gh_mailer_start(struct gh_store *st, const struct gh_mailer_config *cfg,
    struct gh_mailer **out)
{
	struct gh_mailer *m;

	*out = NULL;
	if (cfg->host[0] == '\0' || !gh_mail_addr_valid(cfg->from) ||
	    cfg->port == 0 || cfg->port > 65535)
		return GH_ERR_INVALID;
	m = calloc(1, sizeof *m);
	if (m == NULL)
		return GH_ERR_NOMEM;
	m->st = st;
	m->cfg = *cfg;
	if (m->cfg.helo[0] == '\0')
		gh_strlcpy(m->cfg.helo, "localhost", sizeof m->cfg.helo);
	if (m->cfg.timeout_s == 0)
		m->cfg.timeout_s = 10;
	m->scan_all = true;
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cv, NULL);
	if (pthread_create(&m->thread, NULL, mailer_main, m) != 0) {
		gh_mailer_stop(m);
		return GH_ERR_INTERNAL;
	}
	m->started = true;
	*out = m;
	return GH_OK;
}

void
gh_mailer_stop(struct gh_mailer *m)
{
	if (m == NULL)
		return;
	if (m->started) {
		pthread_mutex_lock(&m->mu);
		m->stop = true;
		pthread_cond_signal(&m->cv);
		pthread_mutex_unlock(&m->mu);
		pthread_join(m->thread, NULL);
	}
	pthread_cond_destroy(&m->cv);
	pthread_mutex_destroy(&m->mu);
	free(m);
}
