/*
 * metrics.c: request counters, latency histograms and sign-in counters,
 * rendered in the Prometheus text exposition format.
 *
 * Untrusted input: the request method (folded onto a fixed set so clients
 * cannot grow the label space) and the sign-in result labels passed by
 * handlers (bounded to 16 values). Secrets: none.
 */
#include "http/http_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char *const methods[] = { "GET", "HEAD", "POST", "PUT",
	"PATCH", "DELETE", "OPTIONS", "OTHER" };
#define NMETHODS (sizeof methods / sizeof methods[0])

static const double bounds[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5, 10 };
#define NBOUNDS (sizeof bounds / sizeof bounds[0])

/* Counter table slots: routes x methods x statuses actually seen. */
#define COUNTERS_MAX 4096

struct counter {
	bool used;
	uint32_t route;		/* index; nroutes is "unmatched" */
	uint8_t method;
	uint16_t status;
	uint64_t n;
};

struct hist {
	uint64_t buckets[NBOUNDS + 1];	/* the last is +Inf */
	uint64_t sum_ns;
	uint64_t count;
};

struct signin {
	char result[33];
	uint64_t n;
};

struct gh_http_metrics {
	pthread_mutex_t mu;
	const struct gh_http_router *router;
	size_t nroutes;
	struct hist *hist;		/* nroutes + 1 */
	struct counter *counters;	/* COUNTERS_MAX, open addressing */
	size_t ncounters;
	struct signin signins[GH_HTTP_SIGNIN_RESULTS_MAX];
	size_t nsignins;
};

gh_err
gh_http_metrics_new(const struct gh_http_router *r,
    struct gh_http_metrics **out)
{
	struct gh_http_metrics *m;

	*out = NULL;
	m = calloc(1, sizeof *m);
	if (m == NULL)
		return GH_ERR_NOMEM;
	m->router = r;
	m->nroutes = gh_http_router_len(r);
	m->hist = calloc(m->nroutes + 1, sizeof *m->hist);
	m->counters = calloc(COUNTERS_MAX, sizeof *m->counters);
	if (m->hist == NULL || m->counters == NULL) {
		free(m->hist);
		free(m->counters);
		free(m);
		return GH_ERR_NOMEM;
	}
	pthread_mutex_init(&m->mu, NULL);
	*out = m;
	return GH_OK;
}

void
gh_http_metrics_free(struct gh_http_metrics *m)
{
	if (m == NULL)
		return;
	pthread_mutex_destroy(&m->mu);
	free(m->hist);
	free(m->counters);
	free(m);
}

static uint8_t
method_index(const char *method)
{
	for (size_t i = 0; i + 1 < NMETHODS; i++) {
		if (method != NULL && strcmp(method, methods[i]) == 0)
			return (uint8_t)i;
	}
	return NMETHODS - 1;
}

void
gh_http_metrics_observe(struct gh_http_metrics *m, int route,
    const char *method, unsigned status, uint64_t duration_ns)
{
	uint32_t ri = route < 0 || (size_t)route >= m->nroutes ?
	    (uint32_t)m->nroutes : (uint32_t)route;
	uint8_t mi = method_index(method);
	uint16_t st = status > 999 ? 999 : (uint16_t)status;
	uint64_t h = ((uint64_t)ri * 31 + mi) * 1009 + st;
	struct hist *hs;
	size_t b;

	pthread_mutex_lock(&m->mu);
	for (size_t probe = 0; probe < COUNTERS_MAX; probe++) {
		struct counter *c = &m->counters[(h + probe) % COUNTERS_MAX];

		if (!c->used) {
			/* Keep a quarter free so probing stays short. */
			if (m->ncounters >= COUNTERS_MAX / 4 * 3)
				break;
			c->used = true;
			c->route = ri;
			c->method = mi;
			c->status = st;
			m->ncounters++;
		}
		if (c->route == ri && c->method == mi && c->status == st) {
			c->n++;
			break;
		}
	}
	hs = &m->hist[ri];
	for (b = 0; b < NBOUNDS; b++) {
		if ((double)duration_ns / 1e9 <= bounds[b])
			break;
	}
	hs->buckets[b]++;
	hs->sum_ns += duration_ns;
	hs->count++;
	pthread_mutex_unlock(&m->mu);
}

static bool
result_valid(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		if (n >= 32 || !((s[n] >= 'a' && s[n] <= 'z') ||
		    (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
			return false;
	}
	return n > 0;
}

void
gh_http_metrics_signin_count(struct gh_http_metrics *m, const char *result)
{
	const char *label = result != NULL && result_valid(result) ?
	    result : "other";
	size_t i;

	pthread_mutex_lock(&m->mu);
	for (i = 0; i < m->nsignins; i++) {
		if (strcmp(m->signins[i].result, label) == 0)
			break;
	}
	if (i == m->nsignins) {
		if (m->nsignins == GH_HTTP_SIGNIN_RESULTS_MAX) {
			/* The table is full: fold into "other" if it exists. */
			for (i = 0; i < m->nsignins; i++) {
				if (strcmp(m->signins[i].result, "other") == 0)
					break;
			}
			if (i == m->nsignins) {
				pthread_mutex_unlock(&m->mu);
				GH_LOG_WARN(GH_ERR_LIMIT,
				    "too many sign-in result labels");
				return;
			}
		} else {
			gh_strlcpy(m->signins[i].result, label,
			    sizeof m->signins[i].result);
			m->nsignins++;
		}
	}
	m->signins[i].n++;
	pthread_mutex_unlock(&m->mu);
}

/* Writes a label value with Prometheus escaping. */
static void
put_label(struct gh_buf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			gh_buf_put_str(out, "\\\\");
		else if (*s == '"')
			gh_buf_put_str(out, "\\\"");
		else if (*s == '\n')
			gh_buf_put_str(out, "\\n");
		else
			gh_buf_put(out, s, 1);
	}
}

static const char *
route_label(const struct gh_http_metrics *m, size_t ri)
{
	return ri < m->nroutes ? gh_http_router_label(m->router, ri) :
	    "unmatched";
}

void
gh_http_metrics_write(struct gh_http_metrics *m, struct gh_buf *out)
{
	pthread_mutex_lock(&m->mu);
	gh_buf_put_str(out,
	    "# HELP gatehouse_http_requests_total HTTP requests answered.\n"
	    "# TYPE gatehouse_http_requests_total counter\n");
	for (size_t i = 0; i < COUNTERS_MAX; i++) {
		const struct counter *c = &m->counters[i];

		if (!c->used || c->n == 0)
			continue;
		gh_buf_put_str(out, "gatehouse_http_requests_total{route=\"");
		put_label(out, route_label(m, c->route));
		gh_buf_printf(out, "\",method=\"%s\",status=\"%u\"} %llu\n",
		    methods[c->method], (unsigned)c->status,
		    (unsigned long long)c->n);
	}
	gh_buf_put_str(out,
	    "# HELP gatehouse_http_request_duration_seconds Time from the "
	    "request line to the response.\n"
	    "# TYPE gatehouse_http_request_duration_seconds histogram\n");
	for (size_t ri = 0; ri <= m->nroutes; ri++) {
		const struct hist *hs = &m->hist[ri];
		uint64_t cum = 0;

		if (hs->count == 0)
			continue;
		for (size_t b = 0; b <= NBOUNDS; b++) {
			cum += hs->buckets[b];
			gh_buf_put_str(out, "gatehouse_http_request_duration_"
			    "seconds_bucket{route=\"");
			put_label(out, route_label(m, ri));
			if (b < NBOUNDS)
				gh_buf_printf(out, "\",le=\"%g\"} %llu\n",
				    bounds[b], (unsigned long long)cum);
			else
				gh_buf_printf(out, "\",le=\"+Inf\"} %llu\n",
				    (unsigned long long)cum);
		}
		gh_buf_put_str(out,
		    "gatehouse_http_request_duration_seconds_sum{route=\"");
		put_label(out, route_label(m, ri));
		gh_buf_printf(out, "\"} %.9f\n", (double)hs->sum_ns / 1e9);
		gh_buf_put_str(out,
		    "gatehouse_http_request_duration_seconds_count{route=\"");
		put_label(out, route_label(m, ri));
		gh_buf_printf(out, "\"} %llu\n",
		    (unsigned long long)hs->count);
	}
	gh_buf_put_str(out,
	    "# HELP gatehouse_signins_total Sign-in attempts by result.\n"
	    "# TYPE gatehouse_signins_total counter\n");
	for (size_t i = 0; i < m->nsignins; i++)
		gh_buf_printf(out, "gatehouse_signins_total{result=\"%s\"} "
		    "%llu\n", m->signins[i].result,
		    (unsigned long long)m->signins[i].n);
	pthread_mutex_unlock(&m->mu);
}
