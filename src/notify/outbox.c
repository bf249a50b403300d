/*
 * outbox.c: the thread shared by the senders of per-organisation outboxes
 * (the mailer, src/notify/mailer.c; back-channel logouts,
 * src/api/oidc_bcl.c). It keeps the orgs with due work and when each is
 * due, sleeps until the earliest (or a kick), and hands one org at a time
 * to the kind's run callback. The orgs with work are found from the
 * directory's outbox hints (gh_store_outbox_hints): the new ones every
 * poll_ms, all of them at start and every scan_ms; no tenant database is
 * opened to look.
 */
#include "notify/notify.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "identity/identity.h"

/* A hint read by a poll is acted on this long after: the writer puts the
 * hint before its transaction commits, usually within milliseconds. */
#define HINT_SETTLE_MS 1000
#define DUE_MAX 100000

struct due {
	char org_id[GH_ID_LEN + 1];
	int64_t at;
};

struct gh_outbox {
	struct gh_outbox_ops ops;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	struct due *q;		/* unordered; an org at most once */
	size_t qlen, qcap;
	int64_t poll_at;	/* the next read of new hints */
	int64_t scan_at;	/* the next read of every hint */
	int64_t seq;		/* the newest hint read */
};

/* Adds org_id due at `at`, or brings its entry forward to `at` (unless
 * keep: then an org already queued keeps its time). With mu held. */
static void
due_put(struct gh_outbox *w, const char *org_id, int64_t at, bool keep)
{
	for (size_t i = 0; i < w->qlen; i++) {
		if (strcmp(w->q[i].org_id, org_id) == 0) {
			if (!keep && at < w->q[i].at)
				w->q[i].at = at;
			return;
		}
	}
	if (w->qlen == w->qcap) {
		size_t cap = w->qcap ? w->qcap * 2 : 64;
		struct due *q = cap <= DUE_MAX ? realloc(w->q, cap * sizeof *q) :
		    NULL;

		if (q == NULL) {
			/* Not lost: the org's hint stays, read again by the
			 * next full scan. */
			GH_LOG_WARN(GH_ERR_NOMEM, "%s: org %s left for the next "
			    "scan", w->ops.name, org_id);
			return;
		}
		w->q = q;
		w->qcap = cap;
	}
	gh_strlcpy(w->q[w->qlen].org_id, org_id, sizeof w->q[0].org_id);
	w->q[w->qlen].at = at;
	w->qlen++;
}

void
gh_outbox_due(struct gh_outbox *w, const char *org_id, int64_t at)
{
	if (w == NULL || org_id == NULL || !gh_id_valid(org_id))
		return;
	pthread_mutex_lock(&w->mu);
	due_put(w, org_id, at, false);
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void
gh_outbox_kick(struct gh_outbox *w, const char *org_id)
{
	gh_outbox_due(w, org_id, 0);
}

bool
gh_outbox_stopping(struct gh_outbox *w)
{
	bool stop;

	pthread_mutex_lock(&w->mu);
	stop = w->stop;
	pthread_mutex_unlock(&w->mu);
	return stop;
}

/* ---- finding the orgs with work ------------------------------------------ */

struct hint_list {
	char (*v)[GH_ID_LEN + 1];
	size_t n, cap;
	bool nomem;
};

static void
hint_found(const char *org_id, void *arg)
{
	struct hint_list *l = arg;

	if (l->nomem || !gh_id_valid(org_id))
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		char (*v)[GH_ID_LEN + 1] = realloc(l->v, cap * sizeof *v);

		if (v == NULL) {
			l->nomem = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	gh_strlcpy(l->v[l->n++], org_id, GH_ID_LEN + 1);
}

/* Reads the hints written since the last read, or every one when full,
 * and queues their orgs: a new hint brings its org forward (new work may
 * be due), a full scan only adds the orgs not queued yet (a queued one
 * keeps its retry time). Called by the thread, without mu. */
static void
read_hints(struct gh_outbox *w, bool full, int64_t now)
{
	struct hint_list l = { 0 };
	int64_t seq = 0;
	gh_err err;

	err = gh_store_outbox_hints(w->ops.st, w->ops.kind, full ? 0 : w->seq,
	    hint_found, &l, &seq);
	if (err == GH_OK && l.nomem)
		err = GH_ERR_NOMEM;
	if (err == GH_OK && seq > w->seq)
		w->seq = seq;
	if (err != GH_OK)
		GH_LOG_WARN(err, "%s: reading the outbox hints", w->ops.name);
	pthread_mutex_lock(&w->mu);
	for (size_t i = 0; i < l.n; i++)
		due_put(w, l.v[i], full ? now : now + HINT_SETTLE_MS, full);
	pthread_mutex_unlock(&w->mu);
	free(l.v);
}

/* ---- one org --------------------------------------------------------------- */

struct org_find {
	struct gh_org org;
	bool found;
};

/* The directory's row of org_id; f->found false when there is none. */
static gh_err
org_lookup(struct gh_store *st, const char *org_id, struct org_find *f)
{
	struct gh_db *dir = NULL;
	gh_err err;

	memset(f, 0, sizeof *f);
	err = gh_store_directory(st, &dir);
	if (err == GH_OK)
		err = gh_identity_org_get_id(dir, org_id, &f->org);
	gh_db_release(dir);
	f->found = err == GH_OK;
	return err == GH_ERR_NOTFOUND ? GH_OK : err;
}

/* Runs the kind's work for org_id: the org looked up, its tenant acquired
 * and released (before the directory is written), the hint cleared when
 * the outbox was found empty. Returns when the org is next due, 0 when
 * not at all. */
static int64_t
run_org(struct gh_outbox *w, const char *org_id)
{
	int64_t checked_at = gh_now_ms(), next = 0;
	bool kept = false;
	struct org_find f;
	struct gh_db *db = NULL;
	gh_err err;

	if (w->ops.st == NULL) {
		memset(&f, 0, sizeof f);
		gh_strlcpy(f.org.id, org_id, sizeof f.org.id);
		err = w->ops.run(w->ops.arg, w, &f.org, NULL, &next);
		return err == GH_OK ? next : gh_now_ms() + w->ops.retry_ms;
	}
	err = org_lookup(w->ops.st, org_id, &f);
	if (err == GH_OK && (!f.found || strcmp(f.org.state, "deleted") == 0)) {
		/* Nothing will ever be sent for it. */
		err = gh_store_outbox_hint_clear(w->ops.st, org_id,
		    w->ops.kind, INT64_MAX / 2, NULL);
		return err == GH_OK ? 0 : gh_now_ms() + w->ops.retry_ms;
	}
	/* A suspended org keeps its hint and is looked at again by the
	 * full scans, without opening its database. */
	if (err == GH_OK && strcmp(f.org.state, "active") != 0)
		return 0;
	if (err == GH_OK)
		err = gh_store_tenant(w->ops.st, f.org.id, f.org.region, false,
		    &db);
	if (err == GH_OK)
		err = w->ops.run(w->ops.arg, w, &f.org, db, &next);
	gh_db_release(db);
	if (err == GH_OK && next == 0) {
		err = gh_store_outbox_hint_clear(w->ops.st, org_id,
		    w->ops.kind, checked_at, &kept);
		/* A young hint stays: its writer's row may commit after this
		 * look (another process, a slow transaction). Look again soon
		 * rather than at the next full scan. */
		if (err == GH_OK && kept)
			next = gh_now_ms() + w->ops.poll_ms + HINT_SETTLE_MS;
	}
	if (err != GH_OK) {
		GH_LOG_WARN(err, "org %s: %s outbox", f.found ? f.org.slug :
		    org_id, w->ops.name);
		next = gh_now_ms() + w->ops.retry_ms;
	}
	return next;
}

/* ---- the thread ------------------------------------------------------------- */

enum job { JOB_STOP, JOB_ORG, JOB_POLL, JOB_SCAN };

/* Waits for the next job: a due org (copied to org_id and taken off the
 * queue), a poll or a full scan of the hints. With mu held. */
static enum job
next_job(struct gh_outbox *w, char org_id[static GH_ID_LEN + 1])
{
	for (;;) {
		int64_t now = gh_now_ms(), wake = now + 60 * 1000;
		struct timespec ts;

		if (w->stop)
			return JOB_STOP;
		if (w->ops.st != NULL && w->scan_at <= now) {
			w->scan_at = w->ops.scan_ms > 0 ? now + w->ops.scan_ms :
			    INT64_MAX;
			w->poll_at = now + w->ops.poll_ms;
			return JOB_SCAN;
		}
		if (w->ops.st != NULL && w->poll_at <= now) {
			w->poll_at = now + w->ops.poll_ms;
			return JOB_POLL;
		}
		if (w->ops.st != NULL) {
			if (w->scan_at < wake)
				wake = w->scan_at;
			if (w->poll_at < wake)
				wake = w->poll_at;
		}
		for (size_t i = 0; i < w->qlen; i++) {
			if (w->q[i].at <= now) {
				gh_strlcpy(org_id, w->q[i].org_id,
				    GH_ID_LEN + 1);
				w->q[i] = w->q[--w->qlen];
				return JOB_ORG;
			}
			if (w->q[i].at < wake)
				wake = w->q[i].at;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (wake - now) / 1000;
		ts.tv_nsec += ((wake - now) % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	}
}

static void *
outbox_main(void *arg)
{
	struct gh_outbox *w = arg;
	char org_id[GH_ID_LEN + 1];
	enum job job;
	int64_t next;

	pthread_mutex_lock(&w->mu);
	while ((job = next_job(w, org_id)) != JOB_STOP) {
		pthread_mutex_unlock(&w->mu);
		if (job == JOB_ORG) {
			next = run_org(w, org_id);
			if (next > 0)
				gh_outbox_due(w, org_id, next);
		} else {
			read_hints(w, job == JOB_SCAN, gh_now_ms());
		}
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

gh_err
gh_outbox_start(const struct gh_outbox_ops *ops, struct gh_outbox **out)
{
	struct gh_outbox *w;

	*out = NULL;
	if (ops->run == NULL || ops->name == NULL || ops->retry_ms <= 0 ||
	    (ops->st != NULL && (ops->kind == NULL || ops->poll_ms <= 0)))
		return GH_ERR_INVALID;
	w = calloc(1, sizeof *w);
	if (w == NULL)
		return GH_ERR_NOMEM;
	w->ops = *ops;
	w->scan_at = 0;		/* every hint, first thing */
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->thread, NULL, outbox_main, w) != 0) {
		gh_outbox_stop(w);
		return GH_ERR_INTERNAL;
	}
	w->started = true;
	*out = w;
	return GH_OK;
}

void
gh_outbox_stop(struct gh_outbox *w)
{
	if (w == NULL)
		return;
	if (w->started) {
		pthread_mutex_lock(&w->mu);
		w->stop = true;
		pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->thread, NULL);
	}
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w->q);
	free(w);
}
