/*
 * batch.c: group commit. A commit of a tenant database waits for an
 * fsync, under the database's write lock; for small, frequent writes
 * (a token row and its audit event) that wait is the whole cost of the
 * request. Here the requests of one org that arrive while a commit is in
 * progress queue up; the next request to find no commit in progress leads:
 * it runs every queued write, each in its own savepoint, in one
 * transaction on its own connection, commits once, and wakes the others.
 * Each caller returns only after the commit that holds its write (or with
 * the error that undid it), so an answered request is as durable as with
 * its own transaction.
 *
 * No untrusted input and no secrets here: the writes are the callers'.
 */
#include "api/api_int.h"

#include <pthread.h>
#include <string.h>

#define BATCH_ORGS 32		/* orgs batching at once; beyond: alone */

struct batch_job {
	struct batch_job *next;
	struct api_ctx *ctx;
	batch_fn fn;
	void *arg;
	gh_err err;
	bool done;
};

struct batch_org {
	char org_id[GH_ID_LEN + 1];
	unsigned users;			/* 0: free slot */
	bool leading;			/* a commit is in progress */
	struct batch_job *head, **tail;
};

struct api_batch {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct batch_org orgs[BATCH_ORGS];
};

gh_err
batch_new(struct api_batch **out)
{
	struct api_batch *b;

	*out = NULL;
	b = calloc(1, sizeof *b);
	if (b == NULL)
		return GH_ERR_NOMEM;
	if (pthread_mutex_init(&b->mu, NULL) != 0) {
		free(b);
		return GH_ERR_INTERNAL;
	}
	if (pthread_cond_init(&b->cv, NULL) != 0) {
		pthread_mutex_destroy(&b->mu);
		free(b);
		return GH_ERR_INTERNAL;
	}
	*out = b;
	return GH_OK;
}

void
batch_free(struct api_batch *b)
{
	if (b == NULL)
		return;
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

/* The slot of org_id, claimed if needed; NULL when all are taken. Called
 * with b->mu held. */
static struct batch_org *
org_slot(struct api_batch *b, const char *org_id)
{
	struct batch_org *free_slot = NULL;

	for (int i = 0; i < BATCH_ORGS; i++) {
		struct batch_org *o = &b->orgs[i];

		if (o->users > 0 && strcmp(o->org_id, org_id) == 0)
			return o;
		if (o->users == 0 && free_slot == NULL)
			free_slot = o;
	}
	if (free_slot != NULL) {
		gh_strlcpy(free_slot->org_id, org_id, sizeof free_slot->org_id);
		free_slot->head = NULL;
		free_slot->tail = &free_slot->head;
		free_slot->leading = false;
	}
	return free_slot;
}

/* One job in its savepoint on db (the leader's connection, lent to the
 * job's context for the call: its own thread is waiting). */
static gh_err
job_run(struct gh_db *db, struct batch_job *j)
{
	struct gh_db *own = j->ctx->db;
	gh_err err;

	err = gh_db_exec(db, "SAVEPOINT batch_job");
	if (err != GH_OK)
		return err;
	j->ctx->db = db;
	err = j->fn(j->ctx, j->arg);
	j->ctx->db = own;
	if (err != GH_OK) {
		if (gh_db_exec(db, "ROLLBACK TO batch_job") != GH_OK)
			return GH_ERR_STORE;	/* undoes the whole group */
		j->err = err;
	}
	return gh_db_exec(db, "RELEASE batch_job");
}

/* Runs the jobs of list in one transaction on db. */
static void
group_run(struct gh_db *db, struct batch_job *list)
{
	struct batch_job *j;
	gh_err err;

	for (j = list; j != NULL; j = j->next)
		j->err = GH_OK;
	err = gh_db_begin(db);
	for (j = list; err == GH_OK && j != NULL; j = j->next)
		err = job_run(db, j);
	if (err == GH_OK)
		err = gh_db_commit(db);
	if (err != GH_OK) {
		gh_db_rollback(db);
		for (j = list; j != NULL; j = j->next)
			j->err = err;
	}
}

gh_err
batch_run(struct api_ctx *ctx, batch_fn fn, void *arg)
{
	struct api_batch *b = ctx->app->batch;
	struct batch_job job = { .ctx = ctx, .fn = fn, .arg = arg };
	struct batch_job *list, *j;
	struct batch_org *o;
	gh_err err;

	pthread_mutex_lock(&b->mu);
	o = org_slot(b, ctx->org.id);
	if (o == NULL) {
		pthread_mutex_unlock(&b->mu);
		/* Too many orgs at once: a transaction of its own. */
		job.next = NULL;
		group_run(ctx->db, &job);
		return job.err;
	}
	o->users++;
	*o->tail = &job;
	o->tail = &job.next;
	while (!job.done) {
		if (o->leading) {
			pthread_cond_wait(&b->cv, &b->mu);
			continue;
		}
		o->leading = true;
		list = o->head;
		o->head = NULL;
		o->tail = &o->head;
		pthread_mutex_unlock(&b->mu);
		group_run(ctx->db, list);
		pthread_mutex_lock(&b->mu);
		for (j = list; j != NULL; j = j->next)
			j->done = true;
		o->leading = false;
		pthread_cond_broadcast(&b->cv);
	}
	o->users--;
	err = job.err;
	pthread_mutex_unlock(&b->mu);
	return err;
}
