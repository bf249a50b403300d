/*
 * batch.c: group commit with parked connections. A commit of a tenant
 * database waits for an fsync, under the database's write lock; for
 * small, frequent writes (a token row and its audit event) that wait is
 * the whole cost of the request.
 *
 * So such a request does not wait on a thread: its handler decides
 * everything (and signs), queues its writes here and suspends its
 * connection (gh_http_suspend), freeing the HTTP thread for the next
 * request. One writer thread takes everything queued, and for each org
 * runs the writes of its jobs, each in its own savepoint, in one
 * transaction on its own connection, and commits once: one fsync for as
 * many requests as arrived during the previous commit. Only then does it
 * answer each job (its done callback, which sends the response prepared
 * before) and resume the connection. A request is therefore answered
 * success only once its writes are durable; when the commit fails every
 * job of the transaction is answered with the error and nothing of what it
 * prepared leaves the process.
 *
 * Bounds: at most BATCH_QUEUE_MAX jobs queued or in flight; beyond, and
 * while the server stops, batch_park refuses and the caller answers 503.
 * Shutdown: gh_http_server_stop waits for every suspended connection, and
 * the writer keeps running until batch_free (after the server stopped),
 * so every parked request is answered.
 *
 * No untrusted input and no secrets here: the writes are the callers'.
 */
#include "api/api_int.h"

#include <pthread.h>
#include <string.h>

#define BATCH_QUEUE_MAX 1024	/* jobs queued or being written */

struct batch_job {
	struct batch_job *next;
	struct api_batch *b;
	struct gh_http_req *req;
	char org_id[GH_ID_LEN + 1];
	char region[sizeof ((struct gh_org *)0)->region];
	batch_write_fn write;
	batch_done_fn done;
	void *arg;
	gh_err err;
};

struct api_batch {
	struct gh_store *store;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct batch_job *head, **tail;
	size_t count;		/* parked: queued or being written */
	bool stopping;
	bool started;
	pthread_t thread;
};

/* One job in its savepoint on db. */
static gh_err
job_run(struct gh_db *db, struct batch_job *j)
{
	gh_err err;

	err = gh_db_exec(db, "SAVEPOINT batch_job");
	if (err != GH_OK)
		return err;
	err = j->write(db, j->arg);
	if (err != GH_OK) {
		if (gh_db_exec(db, "ROLLBACK TO batch_job") != GH_OK)
			return GH_ERR_STORE;	/* undoes the whole group */
		j->err = err;
	}
	return gh_db_exec(db, "RELEASE batch_job");
}

/* Runs the jobs of list (one org) in one transaction. */
static void
group_run(struct api_batch *b, struct batch_job *list)
{
	struct gh_db *db = NULL;
	struct batch_job *j;
	size_t n = 0;
	gh_err err;

	for (j = list; j != NULL; j = j->next) {
		j->err = GH_OK;
		n++;
	}
	err = gh_store_tenant(b->store, list->org_id, list->region, false,
	    &db);
	if (err == GH_OK)
		err = gh_db_begin(db);
	for (j = list; err == GH_OK && j != NULL; j = j->next)
		err = job_run(db, j);
	if (err == GH_OK)
		err = gh_db_commit(db);
	/* The group's size: how many requests share this fsync. */
	GH_LOG_DEBUG("org %s: group commit of %zu jobs", list->org_id, n);
	if (err != GH_OK) {
		GH_LOG_ERR(err, "org %s: group commit failed", list->org_id);
		if (db != NULL)
			gh_db_rollback(db);
		for (j = list; j != NULL; j = j->next)
			j->err = err == GH_ERR_NOTFOUND ? GH_ERR_STORE : err;
	}
	gh_db_release(db);
}

/* Answers and resumes every job of list, then frees them. */
static void
group_answer(struct api_batch *b, struct batch_job *list)
{
	struct batch_job *j, *next;
	size_t n = 0;

	for (j = list; j != NULL; j = next) {
		next = j->next;
		j->done(j->req, j->arg, j->err);
		gh_http_resume(j->req);
		free(j);
		n++;
	}
	pthread_mutex_lock(&b->mu);
	b->count -= n;
	pthread_mutex_unlock(&b->mu);
}

/* Takes the jobs of the first job's org out of *list, in order. */
static struct batch_job *
org_take(struct batch_job **list)
{
	struct batch_job *mine = NULL, **mt = &mine, **pp = list, *j;
	const char *org = (*list)->org_id;
	char want[GH_ID_LEN + 1];

	gh_strlcpy(want, org, sizeof want);
	while ((j = *pp) != NULL) {
		if (strcmp(j->org_id, want) == 0) {
			*pp = j->next;
			j->next = NULL;
			*mt = j;
			mt = &j->next;
		} else {
			pp = &j->next;
		}
	}
	return mine;
}

static void *
writer_main(void *arg)
{
	struct api_batch *b = arg;
	struct batch_job *list, *group;

	pthread_mutex_lock(&b->mu);
	for (;;) {
		while (b->head == NULL && !b->stopping)
			pthread_cond_wait(&b->cv, &b->mu);
		if (b->head == NULL)	/* stopping, and drained */
			break;
		list = b->head;
		b->head = NULL;
		b->tail = &b->head;
		pthread_mutex_unlock(&b->mu);
		while (list != NULL) {
			group = org_take(&list);
			group_run(b, group);
			group_answer(b, group);
		}
		pthread_mutex_lock(&b->mu);
	}
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

gh_err
batch_new(struct gh_store *store, struct api_batch **out)
{
	struct api_batch *b;

	*out = NULL;
	b = calloc(1, sizeof *b);
	if (b == NULL)
		return GH_ERR_NOMEM;
	b->store = store;
	b->tail = &b->head;
	if (pthread_mutex_init(&b->mu, NULL) != 0) {
		free(b);
		return GH_ERR_INTERNAL;
	}
	if (pthread_cond_init(&b->cv, NULL) != 0) {
		pthread_mutex_destroy(&b->mu);
		free(b);
		return GH_ERR_INTERNAL;
	}
	if (pthread_create(&b->thread, NULL, writer_main, b) != 0) {
		pthread_cond_destroy(&b->cv);
		pthread_mutex_destroy(&b->mu);
		free(b);
		return GH_ERR_INTERNAL;
	}
	b->started = true;
	*out = b;
	return GH_OK;
}

void
batch_free(struct api_batch *b)
{
	if (b == NULL)
		return;
	/* The server has stopped: every parked job was answered, so the
	 * writer finds nothing more to do. */
	pthread_mutex_lock(&b->mu);
	b->stopping = true;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
	if (b->started)
		pthread_join(b->thread, NULL);
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

/* gh_http_suspend's go: the handler has returned; hand the job over. */
static void
job_go(void *arg)
{
	struct batch_job *j = arg;
	struct api_batch *b = j->b;

	pthread_mutex_lock(&b->mu);
	*b->tail = j;
	b->tail = &j->next;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

bool
batch_park(struct api_ctx *ctx, batch_write_fn write, batch_done_fn done,
    void *arg)
{
	struct api_batch *b = ctx->app->batch;
	struct batch_job *j;
	bool ok;

	j = calloc(1, sizeof *j);
	if (j == NULL)
		return false;
	j->b = b;
	j->req = ctx->req;
	gh_strlcpy(j->org_id, ctx->org.id, sizeof j->org_id);
	gh_strlcpy(j->region, ctx->org.region, sizeof j->region);
	j->write = write;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&b->mu);
	ok = !b->stopping && b->count < BATCH_QUEUE_MAX;
	if (ok)
		b->count++;
	pthread_mutex_unlock(&b->mu);
	if (ok && !gh_http_suspend(ctx->req, job_go, j)) {
		pthread_mutex_lock(&b->mu);
		b->count--;
		pthread_mutex_unlock(&b->mu);
		ok = false;
	}
	if (!ok)
		free(j);
	return ok;
}
