/*
 * bare_mhd.c: the ceiling for any HTTP work in the benchmarks.
 *
 * A bare libmicrohttpd server that answers every request with a fixed small
 * JSON body, configured the way Gatehouse runs MHD: a thread pool of one
 * thread per core, epoll, and the two-phase access handler (the first call
 * only marks the connection, the response is queued on a later call) so
 * that keep-alive survives. No routing, no headers beyond Content-Type, no
 * logging, no metrics: whatever Gatehouse does above this costs throughput.
 *
 *   bare_mhd PORT        serves on 127.0.0.1:PORT until SIGINT or SIGTERM
 *
 * Loopback only, by construction.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char body[] = "{\"status\":\"ok\"}";
static struct MHD_Response *resp;
static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static enum MHD_Result
on_access(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_size, void **con_cls)
{
	static int marker;

	(void)cls;
	(void)url;
	(void)method;
	(void)version;
	(void)upload_data;
	/* Phase 1: remember the connection, answer nothing yet. Queueing here
	 * would make MHD close the connection after the response. */
	if (*con_cls == NULL) {
		*con_cls = &marker;
		return MHD_YES;
	}
	/* Swallow any body. */
	if (*upload_size != 0) {
		*upload_size = 0;
		return MHD_YES;
	}
	return MHD_queue_response(conn, MHD_HTTP_OK, resp);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sa;
	struct MHD_Daemon *d;
	long ncpu;
	char *end;
	long port;
	sigset_t set, old;

	if (argc != 2) {
		fprintf(stderr, "usage: %s PORT\n", argv[0]);
		return 2;
	}
	port = strtol(argv[1], &end, 10);
	if (*end != '\0' || port < 1 || port > 65535) {
		fprintf(stderr, "bad port: %s\n", argv[1]);
		return 2;
	}
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu < 1)
		ncpu = 1;

	resp = MHD_create_response_from_buffer(sizeof body - 1, (void *)body,
	    MHD_RESPMEM_PERSISTENT);
	if (resp == NULL ||
	    MHD_add_response_header(resp, "Content-Type",
	    "application/json") != MHD_YES)
		return 1;

	/* Blocked before MHD starts its threads (they inherit the mask), so
	 * only sigsuspend below takes them: no lost wake-up. */
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, &old);

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	    MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL, on_access, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)ncpu,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)1024,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
	    MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "bare_mhd: cannot listen on 127.0.0.1:%ld\n",
		    port);
		return 1;
	}
	fprintf(stderr, "bare_mhd: serving on 127.0.0.1:%ld with %ld "
	    "threads\n", port, ncpu);

	while (!stop)
		sigsuspend(&old);
	MHD_stop_daemon(d);
	MHD_destroy_response(resp);
	return 0;
}
